/* Counters for GET /metrics (Prometheus text format 0.0.4). */
#ifndef WW_SERVER_METRICS_H
#define WW_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ww_route {
    WW_ROUTE_PAGE, /* "/" and the page's assets */
    WW_ROUTE_CLASSIFY,
    WW_ROUTE_MODELS,
    WW_ROUTE_HEALTHZ,
    WW_ROUTE_METRICS,
    WW_ROUTE_OTHER, /* anything unknown (404) */
    WW_ROUTE_COUNT
} ww_route;

const char *ww_route_label(ww_route route);

#define WW_METRICS_MAX_MODELS 16
#define WW_LATENCY_BUCKETS 12

typedef struct ww_latency_histogram {
    uint64_t buckets[WW_LATENCY_BUCKETS]; /* cumulative counts are computed when rendering */
    uint64_t count;
    double sum_seconds;
} ww_latency_histogram;

typedef struct ww_metrics {
    pthread_mutex_t lock;
    uint64_t requests[WW_ROUTE_COUNT][600]; /* by HTTP status code */
    ww_latency_histogram latency[WW_METRICS_MAX_MODELS];
} ww_metrics;

void ww_metrics_init(ww_metrics *m);
void ww_metrics_destroy(ww_metrics *m);

void ww_metrics_count_request(ww_metrics *m, ww_route route, int http_status);
void ww_metrics_observe_latency(ww_metrics *m, int model_index, double seconds);

/* What the server knows beyond the counters, read at render time. */
typedef struct ww_metrics_snapshot {
    int in_flight;
    int queue_depth;
    int queue_capacity;
    int workers;
    int busy_workers;
    int ready;    /* models loaded and workers up */
    int draining; /* shutting down */
    int model_count;
    const char *const *model_names;
    const double *model_load_seconds;
} ww_metrics_snapshot;

/* Writes the whole exposition. */
void ww_metrics_render(ww_metrics *m, const ww_metrics_snapshot *s, FILE *out);

#endif
