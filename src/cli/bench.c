/* wanwu bench: inference-only latency on a fixed preprocessed input for one
 * model, or the full comparison of several models (bench_suite.c). */
#include "cli/bench_suite.h"
#include "cli/cli.h"
#include "core/json.h"
#include "model/model_dir.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: wanwu bench [--model PATH|NAME] [--arch NAME] [--threads N] [--runs R]\n"
            "                   [--warmup W] [--batch 1] [--profile] [--json]\n"
            "       wanwu bench --models M1,M2,... [--images DIR | --labels FILE.tsv] [--limit N]\n"
            "                   [--threads N] [--runs R] [--warmup W] [--soak DURATION]\n"
            "                   [--interval 2s] [--report report.html] [--json]\n"
            "\n"
            "With one --model: times inference only (no decoding or preprocessing) on a fixed\n"
            "input after W warm-up runs, and reports median, p90, p99, min and mean latency in\n"
            "ms, images/s, model load time, peak resident memory and the instruction set the\n"
            "kernels used (isa: avx512, avx2 or portable; WANWU_ISA=avx2|scalar forces a\n"
            "narrower one).\n"
            "--profile: then R more runs with every layer timed, printed per layer of the\n"
            "optimized graph (convolutions include their fused BatchNorm, activation,\n"
            "residual add and max pool, op Conv2d+MaxPool2d): mean ms, share of the total\n"
            "and GFLOP/s (2 per multiply-add);\n"
            "with --json as \"layers\": [{name, op, output [c,h,w], macs, ms}].\n"
            "\n"
            "With --models (or --images, --labels, --soak, --report): compares models, each in\n"
            "a fresh process, and prints Markdown tables (or with --json one JSON document):\n"
            "  accuracy   top-1 and top-5 over labelled images, end to end (decode + preprocess\n"
            "             + inference). --images DIR: every JPEG/PNG in DIR named like\n"
            "             nXXXXXXXX_*.JPEG (the ImageNet synset gives the class); --labels\n"
            "             FILE.tsv: lines file<TAB>class_index (or a header with file and\n"
            "             class_index columns); --limit N: the first N images (sorted by name)\n"
            "  latency    mean, p50, p90, p99, min, max: inference only (R runs on a fixed\n"
            "             input) and end to end (each image once)\n"
            "  cost       model load time, file size, parameters, GMACs, peak RSS, average CPU\n"
            "             use during the inference runs (%% of one core)\n"
            "  stability  --soak DURATION (e.g. 1h, 10m, 30s): one classification every\n"
            "             --interval (default 2s); latency over time, RSS at start and end and\n"
            "             its slope, error count\n"
            "  --report FILE.html  a self-contained page with the tables and SVG charts\n"
            "The JSON document has \"models\": one object per model with the single-model\n"
            "keys (model, threads, batch, runs, median_ms, p90_ms, p99_ms, min_ms, mean_ms,\n"
            "load_ms, peak_rss_mb) and every other figure; with one model those keys are also\n"
            "at the top level. A progress bar is drawn on stderr when it is a terminal.\n"
            "Defaults: --threads 1 --runs 50 --warmup 5. Only batch 1 is supported so far.\n"
            "Exit status: 0, 1 if a model or an image failed, 2 on usage errors.\n");
}

/* Splits "a,b,c" into a NULL-free array of pointers into `list` (modified). */
static int split_models(char *list, const char **specs, int max)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok && n < max; tok = strtok(NULL, ","))
        if (*tok) specs[n++] = tok;
    return n;
}

typedef struct suite_options {
    char *models;
    const char *images_dir, *labels_tsv, *report;
    int limit;
    double soak_s, interval_s;
} suite_options;

static int run_suite(const char *model_spec, const char *arch, int threads, int runs, int warmup,
                     int json, suite_options *o)
{
    enum { MAX_MODELS = 64 };
    const char *specs[MAX_MODELS];
    int n_models = 0;
    char default_model[1024];
    wanwu_error err;
    if (o->models) {
        n_models = split_models(o->models, specs, MAX_MODELS);
    } else if (model_spec) {
        specs[n_models++] = model_spec;
    } else {
        if (ww_model_resolve(NULL, NULL, default_model, sizeof default_model, &err) != WANWU_OK) {
            fprintf(stderr, "wanwu bench: %s\n", err.message);
            return 1;
        }
        specs[n_models++] = default_model;
    }
    if (n_models == 0) {
        fprintf(stderr, "wanwu bench: --models needs a comma-separated list of models\n");
        return 2;
    }
    if (o->images_dir && o->labels_tsv) {
        fprintf(stderr, "wanwu bench: give --images DIR or --labels FILE.tsv, not both\n");
        return 2;
    }
    ww_dataset images = {0};
    const char *source = o->images_dir ? o->images_dir : o->labels_tsv;
    if (o->images_dir && ww_dataset_from_dir(o->images_dir, o->limit, &images, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu bench: %s\n", err.message);
        return 1;
    }
    if (o->labels_tsv && ww_dataset_from_tsv(o->labels_tsv, o->limit, &images, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu bench: %s\n", err.message);
        return 1;
    }
    ww_bench_config cfg = {
        .model_specs = specs,
        .model_count = n_models,
        .arch = arch,
        .images = source ? &images : NULL,
        .images_source = source,
        .threads = threads,
        .runs = runs,
        .warmup = warmup,
        .soak_s = o->soak_s,
        .interval_s = o->interval_s,
    };
    ww_bench_model_result *results = calloc((size_t)n_models, sizeof *results);
    if (!results) {
        fprintf(stderr, "wanwu: out of memory\n");
        ww_dataset_free(&images);
        return 1;
    }
    int failed = ww_bench_run_all(&cfg, results);
    if (json)
        ww_bench_write_json(stdout, &cfg, results);
    else
        ww_bench_write_markdown(stdout, &cfg, results);
    fflush(stdout);
    int status = failed ? 1 : 0;
    for (int i = 0; i < n_models; i++)
        if (results[i].ok && results[i].failed_images) status = 1;
    if (o->report && ww_bench_write_html(o->report, &cfg, results) != 0) status = 1;
    for (int i = 0; i < n_models; i++)
        ww_bench_model_result_free(&results[i]);
    free(results);
    ww_dataset_free(&images);
    return status;
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

static void print_layers_table(const wanwu_layer_time *layers, int n, int runs)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += layers[i].ms;
    printf("\n  per layer, mean of %d profiled runs (sum %.3f ms):\n", runs, total);
    printf("  %-32s %-16s %-14s %9s %6s %8s\n", "layer", "op", "output", "ms", "%", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        const wanwu_layer_time *l = &layers[i];
        char shape[48];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out_channels, l->out_height, l->out_width);
        printf("  %-32s %-16s %-14s %9.4f %6.1f", l->name[0] ? l->name : "-", l->op, shape, l->ms,
               total > 0 ? 100.0 * l->ms / total : 0.0);
        if (l->macs > 0 && l->ms > 0)
            printf(" %8.1f\n", 2.0 * (double)l->macs / (l->ms * 1e6));
        else
            printf(" %8s\n", "-");
    }
}

static void print_layers_json(const wanwu_layer_time *layers, int n)
{
    fputs(",\"layers\":[", stdout);
    for (int i = 0; i < n; i++) {
        const wanwu_layer_time *l = &layers[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        ww_json_write_string(stdout, l->name);
        fputs(",\"op\":", stdout);
        ww_json_write_string(stdout, l->op);
        printf(",\"output\":[%d,%d,%d],\"macs\":%lld,\"ms\":%.5f}", l->out_channels, l->out_height,
               l->out_width, (long long)l->macs, l->ms);
    }
    fputs("]", stdout);
}

int ww_cmd_bench(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"arch", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'},
        {"runs", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'w'},
        {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"models", required_argument, NULL, 'M'},
        {"images", required_argument, NULL, 'I'},
        {"labels", required_argument, NULL, 'L'},
        {"limit", required_argument, NULL, 'n'},
        {"soak", required_argument, NULL, 's'},
        {"interval", required_argument, NULL, 'i'},
        {"report", required_argument, NULL, 'R'},
        {"profile", no_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    suite_options suite = {.interval_s = 2.0};
    int suite_mode = 0;
    const char *model_spec = NULL, *arch = NULL;
    int threads = 1, runs = 50, warmup = 5, batch = 1, json = 0, profile = 0;
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
        case 'P': profile = 1; break;
        case 'M': suite.models = optarg, suite_mode = 1; break;
        case 'I': suite.images_dir = optarg, suite_mode = 1; break;
        case 'L': suite.labels_tsv = optarg, suite_mode = 1; break;
        case 'R': suite.report = optarg, suite_mode = 1; break;
        case 'n':
            if ((suite.limit = ww_cli_parse_int("--limit", optarg, 1, 100000000)) < 0) return 2;
            break;
        case 's':
        case 'i': {
            double v = ww_parse_duration(optarg);
            if (v <= 0) {
                fprintf(stderr,
                        "wanwu bench: --%s needs a duration like 2s, 500ms, 10m or 1h, "
                        "not '%s'\n",
                        opt == 's' ? "soak" : "interval", optarg);
                return 2;
            }
            if (opt == 's')
                suite.soak_s = v, suite_mode = 1;
            else
                suite.interval_s = v;
            break;
        }
        case 'h': print_help(stdout); return 0;
        default: fprintf(stderr, "see 'wanwu bench --help'\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wanwu bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (suite_mode && profile) {
        fprintf(stderr, "wanwu bench: --profile times the layers of one --model\n");
        return 2;
    }
    if (suite_mode) return run_suite(model_spec, arch, threads, runs, warmup, json, &suite);
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
    wanwu_layer_time *layers = NULL;
    int n_layers = 0, profiled_runs = 0;
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
    for (int i = 0; i < warmup; i++)
        wanwu_run(session, input, logits, NULL);
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
    if (profile) {
        if (wanwu_session_profile_enable(session, 1, &err) != WANWU_OK) {
            fprintf(stderr, "wanwu: %s\n", err.message);
            goto done;
        }
        for (int i = 0; i < runs; i++)
            wanwu_run(session, input, logits, NULL);
        n_layers = wanwu_session_profile(session, NULL, 0, NULL);
        layers = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *layers);
        if (!layers) {
            fprintf(stderr, "wanwu: out of memory\n");
            goto done;
        }
        n_layers = wanwu_session_profile(session, layers, n_layers, &profiled_runs);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
    const char *name = wanwu_model_arch(model);
    if (json) {
        fputs("{\"model\":", stdout);
        ww_json_write_string(stdout, name);
        printf(",\"threads\":%d,\"batch\":%d,\"runs\":%d,\"median_ms\":%.4f,\"p90_ms\":%.4f,"
               "\"p99_ms\":%.4f,\"min_ms\":%.4f,\"mean_ms\":%.4f,\"load_ms\":%.3f,"
               "\"peak_rss_mb\":%.1f,\"isa\":\"%s\",\"weight_cache\":\"%s\"",
               threads, batch, runs, median, p90, p99, times[0], mean, load_ms, peak_rss_mb,
               wanwu_kernel_isa(), wanwu_model_weight_cache(model));
        if (profile) print_layers_json(layers, n_layers);
        fputs("}\n", stdout);
    } else {
        printf("model %s, %d thread%s, batch %d, %d runs after %d warm-up\n", name, threads,
               threads == 1 ? "" : "s", batch, runs, warmup);
        printf("  median %.3f ms  p90 %.3f  p99 %.3f  min %.3f  mean %.3f  (%.1f images/s)\n",
               median, p90, p99, times[0], mean, 1000.0 / median);
        printf("  model load %.1f ms (weight cache: %s), peak RSS %.1f MB, %s kernels\n", load_ms,
               wanwu_model_weight_cache(model), peak_rss_mb, wanwu_kernel_isa());
        if (profile) print_layers_table(layers, n_layers, profiled_runs);
    }
    status = 0;
done:
    free(layers);
    free(input);
    free(logits);
    free(times);
    wanwu_session_free(session);
    wanwu_model_free(model);
    return status;
}
