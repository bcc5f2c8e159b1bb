/* In-process A/B of two wanwu builds (see bench/ab-builds): build B's
 * public functions are renamed B_wanwu_*, so both live in one process, on
 * the same CPUs, and alternate in blocks of runs. On a VM whose speed
 * swings by tens of percent within seconds, comparing separate processes
 * cannot resolve a few percent; the per-round ratio of neighbouring blocks
 * can. Prints the medians and the median of the per-round B/A ratios with
 * its quartiles, and the largest logit difference between the builds.
 * Usage: ab_builds MODEL.pth THREADS ROUNDS [RUNS_PER_BLOCK] */
#define _POSIX_C_SOURCE 200809L
#include "wanwu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

wanwu_status B_wanwu_model_load(const char *path, const wanwu_model_options *options,
                                wanwu_model **out, wanwu_error *err);
wanwu_status B_wanwu_session_create(wanwu_model *model, const wanwu_session_options *options,
                                    wanwu_session **out, wanwu_error *err);
wanwu_status B_wanwu_run(wanwu_session *session, const float *input, float *logits,
                         wanwu_error *err);
int B_wanwu_model_input_size(const wanwu_model *model);
int B_wanwu_model_num_classes(const wanwu_model *model);
void B_wanwu_session_free(wanwu_session *session);
void B_wanwu_model_free(wanwu_model *model);

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static wanwu_status run(int build, wanwu_session *s, const float *in, float *logits,
                        wanwu_error *err)
{
    return build == 0 ? wanwu_run(s, in, logits, err) : B_wanwu_run(s, in, logits, err);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.pth THREADS ROUNDS [RUNS_PER_BLOCK]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]), rounds = atoi(argv[3]), per = argc > 4 ? atoi(argv[4]) : 10;
    if (threads < 1 || rounds < 1 || per < 1 || per > 1000) {
        fprintf(stderr, "threads, rounds and runs per block must be positive (runs <= 1000)\n");
        return 2;
    }
    wanwu_model *m[2] = {NULL, NULL};
    wanwu_session *s[2] = {NULL, NULL};
    wanwu_error err;
    wanwu_session_options o = {.threads = threads};
    if (wanwu_model_load(argv[1], NULL, &m[0], &err) != WANWU_OK ||
        B_wanwu_model_load(argv[1], NULL, &m[1], &err) != WANWU_OK ||
        wanwu_session_create(m[0], &o, &s[0], &err) != WANWU_OK ||
        B_wanwu_session_create(m[1], &o, &s[1], &err) != WANWU_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.message);
        return 1;
    }
    int side = wanwu_model_input_size(m[0]), classes = wanwu_model_num_classes(m[0]);
    if (side != B_wanwu_model_input_size(m[1]) || classes != B_wanwu_model_num_classes(m[1])) {
        fprintf(stderr, "the two builds read %s differently\n", argv[1]);
        return 1;
    }
    size_t in_n = (size_t)3 * side * side;
    float *in = malloc(in_n * sizeof *in), *logits[2];
    logits[0] = malloc((size_t)classes * sizeof(float));
    logits[1] = malloc((size_t)classes * sizeof(float));
    double *block[2] = {malloc((size_t)rounds * sizeof(double)),
                        malloc((size_t)rounds * sizeof(double))};
    double *ratio = malloc((size_t)rounds * sizeof(double)),
           *times = malloc((size_t)per * sizeof(double));
    if (!in || !logits[0] || !logits[1] || !block[0] || !block[1] || !ratio || !times) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < in_n; i++)
        in[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 5; w++)
            if (run(b, s[b], in, logits[b], &err) != WANWU_OK) {
                fprintf(stderr, "build %c: %s\n", "AB"[b], err.message);
                return 1;
            }
    double diff = 0;
    for (int i = 0; i < classes; i++)
        diff = fmax(diff, fabs((double)logits[0][i] - logits[1][i]));
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int b = (r + k) % 2;               /* alternate which build goes first */
            run(b, s[b], in, logits[b], &err); /* untimed: caches after the switch */
            for (int j = 0; j < per; j++) {
                double t0 = now_ms();
                run(b, s[b], in, logits[b], &err);
                times[j] = now_ms() - t0;
            }
            block[b][r] = median(times, per);
        }
        ratio[r] = block[1][r] / block[0][r];
    }
    double a = median(block[0], rounds), b = median(block[1], rounds);
    double q = median(ratio, rounds);
    printf("%s, %d thread%s, %d rounds x %d runs: A %.3f ms, B %.3f ms, B/A %.3f "
           "(quartiles %.3f..%.3f), max |logit A - logit B| %.3g\n",
           argv[1], threads, threads == 1 ? "" : "s", rounds, per, a, b, q, ratio[rounds / 4],
           ratio[(3 * rounds) / 4], diff);
    wanwu_session_free(s[0]);
    wanwu_model_free(m[0]);
    B_wanwu_session_free(s[1]);
    B_wanwu_model_free(m[1]);
    free(in);
    free(logits[0]);
    free(logits[1]);
    free(block[0]);
    free(block[1]);
    free(ratio);
    free(times);
    return 0;
}
