/* `wanwu serve`: shared state of the HTTP side (http.c) and the command
 * (serve.c). */
#ifndef WW_SERVER_SERVER_H
#define WW_SERVER_SERVER_H

#include "server/metrics.h"
#include "server/pool.h"
#include "wanwu.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WW_SERVE_MAX_MODELS WW_METRICS_MAX_MODELS

typedef struct ww_serve_options {
    const char *host;
    int port;
    int workers;
    int threads_per_worker;
    size_t max_upload_bytes;
    int64_t max_pixels;
    int queue_capacity;
    int timeout_ms;
    int client_timeout_s; /* idle time after which a connection is closed */
    const char *token;    /* NULL: no authentication */
} ww_serve_options;

typedef enum ww_phase { WW_PHASE_STARTING, WW_PHASE_READY, WW_PHASE_DRAINING } ww_phase;

typedef struct ww_served_model {
    char name[128]; /* how clients pick it: the architecture, or the file stem */
    char file[256]; /* file name, without directories */
    wanwu_model *model;
    double load_seconds;
} ww_served_model;

typedef struct ww_server {
    ww_serve_options options;

    /* Written before `phase` becomes READY and read-only afterwards. */
    ww_served_model models[WW_SERVE_MAX_MODELS];
    int model_count;
    const char *model_names[WW_SERVE_MAX_MODELS];
    const wanwu_model *model_handles[WW_SERVE_MAX_MODELS];
    double model_load_seconds[WW_SERVE_MAX_MODELS];
    ww_pool *pool;

    _Atomic int phase;     /* ww_phase */
    _Atomic int in_flight; /* requests between their headers and their completion */
    ww_metrics metrics;
    struct MHD_Daemon *daemon;
    int bound_port;
} ww_server;

/* Starts listening (phase STARTING: the API answers 503 until the models
 * and workers are ready). */
wanwu_status ww_http_start(ww_server *server, wanwu_error *err);

/* Stops accepting connections; open connections are still served. */
void ww_http_stop_accepting(ww_server *server);

/* Closes every connection and stops the HTTP threads. No request may be
 * waiting for a worker (ww_pool_cancel_all first). */
void ww_http_stop(ww_server *server);

#endif
