/* The inference side of `wanwu serve`: a fixed set of worker threads, each
 * with its own session per model, fed from one bounded queue. HTTP threads
 * only submit jobs and are told when the answer is ready; they never run
 * inference. Every submitted job is answered exactly once: by a worker, by
 * the timeout thread (504) or by ww_pool_cancel_all at shutdown. */
#ifndef WW_SERVER_POOL_H
#define WW_SERVER_POOL_H

#include "wanwu.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ww_pool ww_pool;
typedef struct ww_job ww_job;

/* Called once per job, without the pool's lock held, by the thread that
 * answered it. The job stays valid at least until the caller's reference
 * is released. */
typedef void (*ww_job_answered_fn)(void *ctx);

typedef struct ww_pool_options {
    const wanwu_model *const *models; /* shared, read-only; outlive the pool */
    const char *const *model_names;   /* as shown in answers */
    int model_count;
    int workers;
    int threads_per_worker;
    int queue_capacity; /* jobs waiting for a worker, not counting running ones */
    int timeout_ms;     /* from submission to answer */
} ww_pool_options;

wanwu_status ww_pool_create(const ww_pool_options *options, ww_pool **out, wanwu_error *err);

/* Stops the workers and the timeout thread and frees the pool. Every job
 * must have been answered (ww_pool_cancel_all) and released. */
void ww_pool_free(ww_pool *pool);

/* A job takes ownership of `image` and `file_name` (malloc'd; the name may
 * be NULL and is echoed as the answer's "file"). Returns NULL when out of
 * memory, having freed both. Two references: the caller's and, once
 * submitted, the pool's. */
ww_job *ww_job_create(uint8_t *image, size_t image_size, char *file_name, int model_index,
                      int top_k, ww_job_answered_fn on_answered, void *on_answered_ctx);
void ww_job_release(ww_pool *pool, ww_job *job);

typedef enum ww_submit_result {
    WW_SUBMIT_OK,
    WW_SUBMIT_QUEUE_FULL,
    WW_SUBMIT_STOPPING
} ww_submit_result;

ww_submit_result ww_pool_submit(ww_pool *pool, ww_job *job);

/* The answer: an HTTP status and a JSON body (NUL-terminated, owned by
 * the job). Valid once the answered callback has run. */
int ww_job_http_status(const ww_job *job);
const char *ww_job_body(const ww_job *job, size_t *size);

/* Answers every unanswered job with 503 and waits until every answered
 * callback has returned, so the HTTP side can be stopped safely. New
 * submissions are refused from then on. */
void ww_pool_cancel_all(ww_pool *pool);

/* Jobs waiting for a worker. */
int ww_pool_queue_depth(ww_pool *pool);
int ww_pool_busy_workers(ww_pool *pool);

#endif
