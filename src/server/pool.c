#include "server/pool.h"

#include "cli/cli.h"
#include "cli/result_json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum job_state { JOB_NEW, JOB_WAITING, JOB_RUNNING, JOB_ANSWERED } job_state;

struct ww_job {
    uint8_t *image;
    size_t image_size;
    char *file_name;
    int model_index;
    int top_k;
    ww_job_answered_fn on_answered;
    void *on_answered_ctx;

    int http_status;
    char *body;
    size_t body_size;

    /* Guarded by the pool's lock from submission on. */
    job_state state;
    int refs;
    double deadline_ms;
    ww_job *waiting_prev, *waiting_next;       /* the queue, oldest first */
    ww_job *unanswered_prev, *unanswered_next; /* all unanswered jobs, by deadline */
};

typedef struct ww_worker {
    ww_pool *pool;
    pthread_t thread;
    wanwu_session **sessions; /* one per model */
} ww_worker;

struct ww_pool {
    ww_pool_options options;
    pthread_mutex_t lock;
    pthread_cond_t work_ready;       /* a job was queued, or stopping */
    pthread_cond_t deadlines_change; /* the earliest deadline changed, or stopping */
    pthread_cond_t callbacks_done;   /* callbacks_running dropped */
    ww_job *waiting_head, *waiting_tail;
    ww_job *unanswered_head, *unanswered_tail;
    int waiting_count;
    int busy_workers;
    int callbacks_running;
    int refusing; /* no new submissions (shutting down) */
    int stopping; /* threads exit */
    ww_worker *workers;
    int workers_started;
    pthread_t timeout_thread;
    int timeout_thread_started;
};

/* ---- jobs ------------------------------------------------------------- */

ww_job *ww_job_create(uint8_t *image, size_t image_size, char *file_name, int model_index,
                      int top_k, ww_job_answered_fn on_answered, void *on_answered_ctx)
{
    ww_job *job = calloc(1, sizeof *job);
    if (!job) {
        free(image);
        free(file_name);
        return NULL;
    }
    job->image = image;
    job->image_size = image_size;
    job->file_name = file_name;
    job->model_index = model_index;
    job->top_k = top_k;
    job->on_answered = on_answered;
    job->on_answered_ctx = on_answered_ctx;
    job->state = JOB_NEW;
    job->refs = 1;
    return job;
}

static void job_free(ww_job *job)
{
    free(job->image);
    free(job->file_name);
    free(job->body);
    free(job);
}

static void release_locked(ww_job *job)
{
    if (--job->refs == 0) job_free(job);
}

void ww_job_release(ww_pool *pool, ww_job *job)
{
    if (!job) return;
    if (!pool) { /* never submitted */
        release_locked(job);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    release_locked(job);
    pthread_mutex_unlock(&pool->lock);
}

int ww_job_http_status(const ww_job *job)
{
    return job->http_status;
}

const char *ww_job_body(const ww_job *job, size_t *size)
{
    *size = job->body_size;
    return job->body;
}

/* ---- lists (pool lock held) ------------------------------------------ */

static void waiting_push(ww_pool *pool, ww_job *job)
{
    job->waiting_prev = pool->waiting_tail;
    job->waiting_next = NULL;
    if (pool->waiting_tail)
        pool->waiting_tail->waiting_next = job;
    else
        pool->waiting_head = job;
    pool->waiting_tail = job;
    pool->waiting_count++;
}

static void waiting_unlink(ww_pool *pool, ww_job *job)
{
    if (job->waiting_prev)
        job->waiting_prev->waiting_next = job->waiting_next;
    else
        pool->waiting_head = job->waiting_next;
    if (job->waiting_next)
        job->waiting_next->waiting_prev = job->waiting_prev;
    else
        pool->waiting_tail = job->waiting_prev;
    job->waiting_prev = job->waiting_next = NULL;
    pool->waiting_count--;
}

/* Every job has the same timeout, so submission order is deadline order. */
static void unanswered_push(ww_pool *pool, ww_job *job)
{
    job->unanswered_prev = pool->unanswered_tail;
    job->unanswered_next = NULL;
    if (pool->unanswered_tail)
        pool->unanswered_tail->unanswered_next = job;
    else
        pool->unanswered_head = job;
    pool->unanswered_tail = job;
}

static void unanswered_unlink(ww_pool *pool, ww_job *job)
{
    if (job->unanswered_prev)
        job->unanswered_prev->unanswered_next = job->unanswered_next;
    else
        pool->unanswered_head = job->unanswered_next;
    if (job->unanswered_next)
        job->unanswered_next->unanswered_prev = job->unanswered_prev;
    else
        pool->unanswered_tail = job->unanswered_prev;
    job->unanswered_prev = job->unanswered_next = NULL;
}

/* Stores the answer and marks the job answered; the caller then runs the
 * callback with the lock released (see run_callback). */
static void answer_locked(ww_pool *pool, ww_job *job, int http_status, char *body, size_t body_size)
{
    job->http_status = http_status;
    job->body = body;
    job->body_size = body_size;
    job->state = JOB_ANSWERED;
    unanswered_unlink(pool, job);
    pool->callbacks_running++;
}

static void run_callback_unlocked(ww_pool *pool, ww_job *job)
{
    pthread_mutex_unlock(&pool->lock);
    job->on_answered(job->on_answered_ctx);
    pthread_mutex_lock(&pool->lock);
    if (--pool->callbacks_running == 0) pthread_cond_broadcast(&pool->callbacks_done);
}

/* A JSON error body; NULL only when out of memory (the HTTP side then
 * answers with a fixed text). */
static char *error_body(const char *message, size_t *size)
{
    char *body = NULL;
    FILE *out = open_memstream(&body, size);
    if (!out) return NULL;
    ww_result_json_write_error(out, NULL, message);
    if (fclose(out) != 0) {
        free(body);
        return NULL;
    }
    return body;
}

/* ---- workers ---------------------------------------------------------- */

static int status_for_error(wanwu_status st)
{
    switch (st) {
    case WANWU_ERR_FORMAT:
    case WANWU_ERR_UNSUPPORTED:
    case WANWU_ERR_INVALID_ARGUMENT: return 400;
    case WANWU_ERR_LIMIT: return 413;
    case WANWU_ERR_NO_MEMORY: return 503;
    default: return 500;
    }
}

/* Runs outside the lock: the job's inputs are not touched by anyone else
 * while it is running. */
static int run_job(ww_worker *worker, const ww_job *job, char **body, size_t *body_size)
{
    const ww_pool_options *o = &worker->pool->options;
    wanwu_error err;
    wanwu_timings timings;
    wanwu_prediction *top = calloc((size_t)job->top_k, sizeof *top);
    if (!top) {
        *body = error_body("out of memory", body_size);
        return 503;
    }
    wanwu_status st = wanwu_classify_memory(worker->sessions[job->model_index], job->image,
                                            job->image_size, NULL, job->top_k, top, &timings, &err);
    int http_status = 200;
    *body = NULL;
    FILE *out = open_memstream(body, body_size);
    if (out) {
        if (st == WANWU_OK) {
            ww_result_json_write(out, job->file_name, o->model_names[job->model_index], top,
                                 job->top_k, &timings);
        } else {
            http_status = status_for_error(st);
            ww_result_json_write_error(out, job->file_name, err.message);
        }
        if (fclose(out) != 0) {
            free(*body);
            *body = NULL;
        }
    }
    free(top);
    return *body ? http_status : 503;
}

static void *worker_main(void *arg)
{
    ww_worker *worker = arg;
    ww_pool *pool = worker->pool;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && !pool->waiting_head)
            pthread_cond_wait(&pool->work_ready, &pool->lock);
        if (!pool->waiting_head) break; /* stopping */
        ww_job *job = pool->waiting_head;
        waiting_unlink(pool, job);
        job->state = JOB_RUNNING;
        pool->busy_workers++;
        pthread_mutex_unlock(&pool->lock);

        char *body;
        size_t body_size = 0;
        int http_status = run_job(worker, job, &body, &body_size);

        pthread_mutex_lock(&pool->lock);
        pool->busy_workers--;
        if (job->state == JOB_RUNNING) {
            answer_locked(pool, job, http_status, body, body_size);
            run_callback_unlocked(pool, job);
        } else {
            free(body); /* timed out or cancelled meanwhile: already answered */
        }
        release_locked(job);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Answers jobs whose deadline has passed with 504. */
static void *timeout_main(void *arg)
{
    ww_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping) {
        ww_job *job = pool->unanswered_head;
        if (!job) {
            pthread_cond_wait(&pool->deadlines_change, &pool->lock);
            continue;
        }
        double now = ww_cli_now_ms();
        if (job->deadline_ms > now) {
            double until = job->deadline_ms;
            struct timespec ts;
            ts.tv_sec = (time_t)(until / 1e3);
            ts.tv_nsec = (long)((until - (double)ts.tv_sec * 1e3) * 1e6);
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&pool->deadlines_change, &pool->lock, &ts);
            continue;
        }
        int was_waiting = job->state == JOB_WAITING;
        if (was_waiting) waiting_unlink(pool, job);
        char message[160];
        snprintf(message, sizeof message, "timed out after %d ms %s", pool->options.timeout_ms,
                 was_waiting ? "waiting for a free worker" : "while classifying");
        size_t size = 0;
        char *body = error_body(message, &size);
        answer_locked(pool, job, 504, body, size);
        run_callback_unlocked(pool, job);
        if (was_waiting) release_locked(job); /* no worker will see it */
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* ---- the pool ---------------------------------------------------------- */

ww_submit_result ww_pool_submit(ww_pool *pool, ww_job *job)
{
    pthread_mutex_lock(&pool->lock);
    ww_submit_result result = WW_SUBMIT_OK;
    if (pool->refusing) {
        result = WW_SUBMIT_STOPPING;
    } else if (pool->waiting_count >= pool->options.queue_capacity) {
        result = WW_SUBMIT_QUEUE_FULL;
    } else {
        job->refs++; /* the pool's */
        job->state = JOB_WAITING;
        job->deadline_ms = ww_cli_now_ms() + pool->options.timeout_ms;
        waiting_push(pool, job);
        int first_deadline = pool->unanswered_head == NULL;
        unanswered_push(pool, job);
        pthread_cond_signal(&pool->work_ready);
        if (first_deadline) pthread_cond_signal(&pool->deadlines_change);
    }
    pthread_mutex_unlock(&pool->lock);
    return result;
}

void ww_pool_cancel_all(ww_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->refusing = 1;
    while (pool->unanswered_head) {
        ww_job *job = pool->unanswered_head;
        int was_waiting = job->state == JOB_WAITING;
        if (was_waiting) waiting_unlink(pool, job);
        size_t size = 0;
        char *body = error_body("the server is shutting down", &size);
        answer_locked(pool, job, 503, body, size);
        run_callback_unlocked(pool, job);
        if (was_waiting) release_locked(job);
    }
    while (pool->callbacks_running > 0)
        pthread_cond_wait(&pool->callbacks_done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

int ww_pool_queue_depth(ww_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = pool->waiting_count;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

int ww_pool_busy_workers(ww_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = pool->busy_workers;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

static void stop_threads(ww_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->refusing = 1;
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_cond_broadcast(&pool->deadlines_change);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->workers_started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pool->workers_started = 0;
    if (pool->timeout_thread_started) pthread_join(pool->timeout_thread, NULL);
    pool->timeout_thread_started = 0;
}

void ww_pool_free(ww_pool *pool)
{
    if (!pool) return;
    stop_threads(pool);
    if (pool->workers) {
        for (int i = 0; i < pool->options.workers; i++) {
            ww_worker *w = &pool->workers[i];
            if (!w->sessions) continue;
            for (int m = 0; m < pool->options.model_count; m++)
                wanwu_session_free(w->sessions[m]);
            free(w->sessions);
        }
        free(pool->workers);
    }
    pthread_cond_destroy(&pool->callbacks_done);
    pthread_cond_destroy(&pool->deadlines_change);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

wanwu_status ww_pool_create(const ww_pool_options *options, ww_pool **out, wanwu_error *err)
{
    *out = NULL;
    ww_pool *pool = calloc(1, sizeof *pool);
    if (!pool) goto out_of_memory;
    pool->options = *options;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->callbacks_done, NULL);
    /* Deadlines are on the monotonic clock, so the wait must be too. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->deadlines_change, &attr);
    pthread_condattr_destroy(&attr);

    pool->workers = calloc((size_t)options->workers, sizeof *pool->workers);
    if (!pool->workers) goto out_of_memory;
    wanwu_session_options session_options = {options->threads_per_worker};
    for (int i = 0; i < options->workers; i++) {
        ww_worker *w = &pool->workers[i];
        w->pool = pool;
        w->sessions = calloc((size_t)options->model_count, sizeof *w->sessions);
        if (!w->sessions) goto out_of_memory;
        for (int m = 0; m < options->model_count; m++) {
            if (wanwu_session_create(options->models[m], &session_options, &w->sessions[m], err) !=
                WANWU_OK) {
                ww_pool_free(pool);
                return err ? err->status : WANWU_ERR_NO_MEMORY;
            }
        }
    }
    for (int i = 0; i < options->workers; i++) {
        int rc = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (rc != 0) {
            ww_pool_free(pool);
            if (err) {
                err->status = WANWU_ERR_NO_MEMORY;
                snprintf(err->message, sizeof err->message, "cannot start a worker thread: %s",
                         strerror(rc));
            }
            return WANWU_ERR_NO_MEMORY;
        }
        pool->workers_started++;
    }
    int rc = pthread_create(&pool->timeout_thread, NULL, timeout_main, pool);
    if (rc != 0) {
        ww_pool_free(pool);
        if (err) {
            err->status = WANWU_ERR_NO_MEMORY;
            snprintf(err->message, sizeof err->message, "cannot start the timeout thread: %s",
                     strerror(rc));
        }
        return WANWU_ERR_NO_MEMORY;
    }
    pool->timeout_thread_started = 1;
    *out = pool;
    return WANWU_OK;

out_of_memory:
    ww_pool_free(pool);
    if (err) {
        err->status = WANWU_ERR_NO_MEMORY;
        snprintf(err->message, sizeof err->message, "out of memory creating the worker pool");
    }
    return WANWU_ERR_NO_MEMORY;
}
