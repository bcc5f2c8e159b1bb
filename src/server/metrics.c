#include "server/metrics.h"

#include <string.h>
#include <unistd.h>

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double latency_bounds[WW_LATENCY_BUCKETS - 1] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
};

const char *ww_route_label(ww_route route)
{
    switch (route) {
    case WW_ROUTE_PAGE: return "/";
    case WW_ROUTE_CLASSIFY: return "/api/v1/classify";
    case WW_ROUTE_MODELS: return "/api/v1/models";
    case WW_ROUTE_HEALTHZ: return "/healthz";
    case WW_ROUTE_METRICS: return "/metrics";
    default: return "other";
    }
}

void ww_metrics_init(ww_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
}

void ww_metrics_destroy(ww_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

void ww_metrics_count_request(ww_metrics *m, ww_route route, int http_status)
{
    if ((unsigned)route >= WW_ROUTE_COUNT || http_status < 100 || http_status >= 600) return;
    pthread_mutex_lock(&m->lock);
    m->requests[route][http_status]++;
    pthread_mutex_unlock(&m->lock);
}

void ww_metrics_observe_latency(ww_metrics *m, int model_index, double seconds)
{
    if (model_index < 0 || model_index >= WW_METRICS_MAX_MODELS) return;
    int b = 0;
    while (b < WW_LATENCY_BUCKETS - 1 && seconds > latency_bounds[b])
        b++;
    pthread_mutex_lock(&m->lock);
    ww_latency_histogram *h = &m->latency[model_index];
    h->buckets[b]++;
    h->count++;
    h->sum_seconds += seconds;
    pthread_mutex_unlock(&m->lock);
}

/* Resident set size from /proc/self/statm (pages), or -1. */
static long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size_pages, resident_pages;
    int n = fscanf(f, "%lld %lld", &size_pages, &resident_pages);
    fclose(f);
    if (n != 2) return -1;
    return resident_pages * (long long)sysconf(_SC_PAGESIZE);
}

/* A quoted label value with the escapes the text format defines. */
static void write_label(FILE *out, const char *value)
{
    fputc('"', out);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            fputc('\\', out), fputc(*p, out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

void ww_metrics_render(ww_metrics *m, const ww_metrics_snapshot *s, FILE *out)
{
    pthread_mutex_lock(&m->lock);
    fputs("# HELP wanwu_http_requests_total HTTP requests answered, by route and status.\n"
          "# TYPE wanwu_http_requests_total counter\n",
          out);
    for (int r = 0; r < WW_ROUTE_COUNT; r++)
        for (int code = 100; code < 600; code++)
            if (m->requests[r][code])
                fprintf(out, "wanwu_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        ww_route_label((ww_route)r), code,
                        (unsigned long long)m->requests[r][code]);

    fputs("# HELP wanwu_classify_duration_seconds Time from a classify request's headers to "
          "its answer, by model.\n"
          "# TYPE wanwu_classify_duration_seconds histogram\n",
          out);
    for (int i = 0; i < s->model_count && i < WW_METRICS_MAX_MODELS; i++) {
        const ww_latency_histogram *h = &m->latency[i];
        uint64_t cumulative = 0;
        for (int b = 0; b < WW_LATENCY_BUCKETS; b++) {
            cumulative += h->buckets[b];
            fputs("wanwu_classify_duration_seconds_bucket{model=", out);
            write_label(out, s->model_names[i]);
            if (b < WW_LATENCY_BUCKETS - 1)
                fprintf(out, ",le=\"%g\"} %llu\n", latency_bounds[b],
                        (unsigned long long)cumulative);
            else
                fprintf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
        }
        fputs("wanwu_classify_duration_seconds_sum{model=", out);
        write_label(out, s->model_names[i]);
        fprintf(out, "} %.6f\n", h->sum_seconds);
        fputs("wanwu_classify_duration_seconds_count{model=", out);
        write_label(out, s->model_names[i]);
        fprintf(out, "} %llu\n", (unsigned long long)h->count);
    }
    pthread_mutex_unlock(&m->lock);

    fprintf(out,
            "# HELP wanwu_http_requests_in_flight Requests received and not yet answered.\n"
            "# TYPE wanwu_http_requests_in_flight gauge\n"
            "wanwu_http_requests_in_flight %d\n"
            "# HELP wanwu_queue_depth Classify jobs waiting for a free worker.\n"
            "# TYPE wanwu_queue_depth gauge\n"
            "wanwu_queue_depth %d\n"
            "# HELP wanwu_queue_capacity Jobs the queue holds before answering 503.\n"
            "# TYPE wanwu_queue_capacity gauge\n"
            "wanwu_queue_capacity %d\n"
            "# HELP wanwu_workers Inference worker threads.\n"
            "# TYPE wanwu_workers gauge\n"
            "wanwu_workers %d\n"
            "# HELP wanwu_workers_busy Inference workers running a job now.\n"
            "# TYPE wanwu_workers_busy gauge\n"
            "wanwu_workers_busy %d\n"
            "# HELP wanwu_up 1 when models are loaded and workers are up, 0 while starting or "
            "draining.\n"
            "# TYPE wanwu_up gauge\n"
            "wanwu_up %d\n",
            s->in_flight, s->queue_depth, s->queue_capacity, s->workers, s->busy_workers,
            s->ready && !s->draining);
    fputs("# HELP wanwu_model_load_seconds Time taken to load each model at startup.\n"
          "# TYPE wanwu_model_load_seconds gauge\n",
          out);
    for (int i = 0; i < s->model_count; i++) {
        fputs("wanwu_model_load_seconds{model=", out);
        write_label(out, s->model_names[i]);
        fprintf(out, "} %.6f\n", s->model_load_seconds[i]);
    }
    long long rss = resident_bytes();
    if (rss >= 0)
        fprintf(out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                "# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %lld\n",
                rss);
}
