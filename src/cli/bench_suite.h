/* `wanwu bench --models ...`: accuracy, latency, cost and stability of
 * several models on the same images, each model measured in a fresh
 * child process (so load time, peak memory and CPU use are its own). */
#ifndef WW_CLI_BENCH_SUITE_H
#define WW_CLI_BENCH_SUITE_H

#include "cli/bench_dataset.h"
#include "cli/bench_stats.h"

#include <stdint.h>
#include <stdio.h>

typedef struct ww_bench_config {
    const char *const *model_specs; /* paths, file names or architectures */
    int model_count;
    const char *arch;         /* forced architecture, or NULL */
    const ww_dataset *images; /* NULL: no accuracy or end-to-end figures */
    const char *images_source;
    int threads, runs, warmup;
    double soak_s, interval_s; /* soak_s 0: no stability run */
} ww_bench_config;

typedef struct ww_soak_sample {
    double t_s;    /* since the start of the run */
    double ms;     /* latency of this classification; < 0 for an error */
    double rss_mb; /* resident memory after it */
} ww_soak_sample;

typedef struct ww_bench_model_result {
    char spec[256];
    char arch[32];
    char path[1024];
    int ok;
    char error[512];

    double load_ms, file_mb, gmacs, peak_rss_mb, cpu_percent;
    int64_t params;

    int accuracy_images, top1_correct, top5_correct, failed_images;

    int inference_count, e2e_count, soak_count, soak_errors;
    double *inference_ms; /* fixed-input runs */
    double *e2e_ms;       /* one per image: decode + preprocess + inference */
    ww_soak_sample *soak;
    double rss_start_mb, rss_end_mb;
} ww_bench_model_result;

/* Runs every model; results[i] for model i (always filled, ok = 0 with a
 * message when that model failed). Returns the number that failed. */
int ww_bench_run_all(const ww_bench_config *cfg, ww_bench_model_result *results);
void ww_bench_model_result_free(ww_bench_model_result *r);

/* Outputs. */
void ww_bench_write_markdown(FILE *out, const ww_bench_config *cfg,
                             const ww_bench_model_result *results);
void ww_bench_write_json(FILE *out, const ww_bench_config *cfg,
                         const ww_bench_model_result *results);
/* A self-contained HTML page with inline SVG charts (report_html.c). */
int ww_bench_write_html(const char *path, const ww_bench_config *cfg,
                        const ww_bench_model_result *results);

/* RSS growth over a soak run in MB per hour (least squares). */
double ww_bench_soak_slope_mb_per_hour(const ww_bench_model_result *r);

/* Multiply-accumulates of one inference, in billions (convolutions and
 * fully connected layers). */
double ww_model_gmacs(const wanwu_model *model);

#endif
