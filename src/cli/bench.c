/* wanwu bench: inference-only latency on a fixed preprocessed input. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "core/json.h"

static void print_help(FILE *out)
{
    fprintf(out, "usage: wanwu bench [--model PATH|NAME] [--arch NAME] [--threads N] [--runs R]\n"
                 "                   [--warmup W] [--batch 1] [--json]\n"
                 "\n"
                 "Times inference only (no decoding or preprocessing) on a fixed input after W\n"
                 "warm-up runs, and reports median, p90, p99, min and mean latency in ms,\n"
                 "images/s, model load time and peak resident memory.\n"
                 "Defaults: --threads 1 --runs 50 --warmup 5. Only batch 1 is supported so far.\n");
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

int ww_cmd_bench(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},  {"arch", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'}, {"runs", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'}, {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_spec = NULL, *arch = NULL;
    int threads = 1, runs = 50, warmup = 5, batch = 1, json = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'm': model_spec = optarg; break;
        case 'a': arch = optarg; break;
        case 't':
            if ((threads = ww_cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2;
            break;
        case 'r':
            if ((runs = ww_cli_parse_int("--runs", optarg, 1, 1000000)) < 0) return 2;
            break;
        case 'w':
            if ((warmup = ww_cli_parse_int("--warmup", optarg, 0, 1000000)) < 0) return 2;
            break;
        case 'b':
            if ((batch = ww_cli_parse_int("--batch", optarg, 1, 1)) < 0) return 2;
            break;
        case 'j': json = 1; break;
        case 'h': print_help(stdout); return 0;
        default: fprintf(stderr, "see 'wanwu bench --help'\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wanwu bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    double load_ms = 0;
    wanwu_model *model = ww_cli_load_model(model_spec, arch, &load_ms);
    if (!model) return 1;
    wanwu_session *session = NULL;
    wanwu_error err;
    wanwu_session_options sopts = {threads};
    int status = 1;
    int size = wanwu_model_input_size(model);
    size_t input_floats = 3 * (size_t)size * (size_t)size;
    float *input = malloc(input_floats * sizeof *input);
    float *logits = malloc((size_t)wanwu_model_num_classes(model) * sizeof *logits);
    double *times = malloc((size_t)runs * sizeof *times);
    if (!input || !logits || !times) {
        fprintf(stderr, "wanwu: out of memory\n");
        goto done;
    }
    if (wanwu_session_create(model, &sopts, &session, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu: %s\n", err.message);
        goto done;
    }
    /* a fixed, image-like input: values of a normalized tensor */
    unsigned int seed = 12345;
    for (size_t i = 0; i < input_floats; i++) {
        seed = seed * 1103515245u + 12345u;
        input[i] = (float)((seed >> 8) & 0xFFFF) / 65535.0f * 4.0f - 2.0f;
    }
    for (int i = 0; i < warmup; i++) wanwu_run(session, input, logits, NULL);
    double sum = 0;
    for (int i = 0; i < runs; i++) {
        double t0 = ww_cli_now_ms();
        wanwu_run(session, input, logits, NULL);
        times[i] = ww_cli_now_ms() - t0;
        sum += times[i];
    }
    qsort(times, (size_t)runs, sizeof *times, compare_doubles);
    double median = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
    double p90 = percentile(times, runs, 90), p99 = percentile(times, runs, 99);
    double mean = sum / runs;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    const char *name = wanwu_model_arch(model);
    if (json) {
        fputs("{\"model\":", stdout);
        ww_json_write_string(stdout, name);
        printf(",\"threads\":%d,\"batch\":%d,\"runs\":%d,\"median_ms\":%.4f,\"p90_ms\":%.4f,"
               "\"p99_ms\":%.4f,\"min_ms\":%.4f,\"mean_ms\":%.4f,\"load_ms\":%.3f,"
               "\"peak_rss_mb\":%.1f}\n",
               threads, batch, runs, median, p90, p99, times[0], mean, load_ms, peak_rss_mb);
    } else {
        printf("model %s, %d thread%s, batch %d, %d runs after %d warm-up\n", name, threads,
               threads == 1 ? "" : "s", batch, runs, warmup);
        printf("  median %.3f ms  p90 %.3f  p99 %.3f  min %.3f  mean %.3f  (%.1f images/s)\n",
               median, p90, p99, times[0], mean, 1000.0 / median);
        printf("  model load %.1f ms, peak RSS %.1f MB\n", load_ms, peak_rss_mb);
    }
    status = 0;
done:
    free(input);
    free(logits);
    free(times);
    wanwu_session_free(session);
    wanwu_model_free(model);
    return status;
}
