/* wanwu serve: the HTTP service and its web page. */
#include "cli/cli.h"
#include "model/model_dir.h"
#include "server/server.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: wanwu serve [options]\n"
            "\n"
            "Serves a web page (/) and a JSON API (/api/v1/classify, /api/v1/models) that\n"
            "classify uploaded images, plus /healthz and /metrics (Prometheus). Uploads are\n"
            "kept in memory only. SIGINT/SIGTERM stop accepting connections, let requests in\n"
            "flight finish and exit 0.\n"
            "\n"
            "options:\n"
            "  --model PATH|NAME       a model to serve (repeat for several; the first is the\n"
            "                          default). Path, file name in the models directory, or\n"
            "                          architecture. Clients pick a model by its architecture\n"
            "                          name, or by file stem when two share one.\n"
            "                          Default: as for 'wanwu classify'.\n"
            "  --host ADDR             address to listen on (default 127.0.0.1; 0.0.0.0 or ::\n"
            "                          for every interface)\n"
            "  --port N                TCP port (default 8080; 0 picks a free one)\n"
            "  --workers N             inference workers (default: number of CPUs)\n"
            "  --threads-per-worker N  threads of one inference (default 1)\n"
            "  --max-upload-mb N       largest request body in MiB (default 20)\n"
            "  --max-pixels N          largest image, width x height (default 40000000)\n"
            "  --queue N               requests that may wait for a worker (default 64);\n"
            "                          more are refused with 503 and Retry-After\n"
            "  --timeout-ms N          time a request may wait and run before 504 (default\n"
            "                          10000)\n"
            "  --client-timeout-s N    close connections idle this long, e.g. a stalled\n"
            "                          upload (default 30)\n"
            "  --token TOKEN           require 'Authorization: Bearer TOKEN' on /api/\n"
            "  -h, --help              this text\n");
}

/* Copies src into out[size], cutting it short if it does not fit. */
static void copy_truncated(char *out, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) n = size - 1;
    memcpy(out, src, n);
    out[n] = '\0';
}

/* "dir/resnet18-f37072fd.pth" -> "resnet18-f37072fd" */
static void file_stem(const char *path, char *out, size_t size)
{
    const char *base = strrchr(path, '/');
    copy_truncated(out, size, base ? base + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

static int load_models(ww_server *s, const char *const *specs, int spec_count)
{
    for (int i = 0; i < (spec_count ? spec_count : 1); i++) {
        const char *spec = spec_count ? specs[i] : NULL;
        char path[4096];
        wanwu_error err;
        if (ww_model_resolve(spec, NULL, path, sizeof path, &err) != WANWU_OK) {
            fprintf(stderr, "wanwu serve: %s\n", err.message);
            return 0;
        }
        double load_ms = 0;
        ww_served_model *m = &s->models[i];
        m->model = ww_cli_load_model(path, NULL, &load_ms);
        if (!m->model) return 0;
        s->model_count = i + 1;
        m->load_seconds = load_ms / 1e3;
        const char *base = strrchr(path, '/');
        copy_truncated(m->file, sizeof m->file, base ? base + 1 : path);
        fprintf(stderr, "wanwu serve: loaded %s (%s) in %.0f ms\n", m->file,
                wanwu_model_arch(m->model), load_ms);
        file_stem(path, m->name, sizeof m->name); /* final name chosen below */
    }
    /* Architecture names, unless two models share one. */
    for (int i = 0; i < s->model_count; i++) {
        const char *arch = wanwu_model_arch(s->models[i].model);
        int shared = 0;
        for (int j = 0; j < s->model_count; j++)
            if (j != i && strcmp(wanwu_model_arch(s->models[j].model), arch) == 0) shared = 1;
        if (!shared) copy_truncated(s->models[i].name, sizeof s->models[i].name, arch);
    }
    for (int i = 0; i < s->model_count; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(s->models[i].name, s->models[j].name) == 0) {
                fprintf(stderr,
                        "wanwu serve: two --model options give the same model name '%s' (%s and "
                        "%s); serve each file once\n",
                        s->models[i].name, s->models[j].file, s->models[i].file);
                return 0;
            }
        }
        s->model_names[i] = s->models[i].name;
        s->model_handles[i] = s->models[i].model;
        s->model_load_seconds[i] = s->models[i].load_seconds;
    }
    return 1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Lets requests in flight finish, up to `limit_ms`. */
static void wait_for_in_flight(ww_server *s, int limit_ms)
{
    for (int waited = 0; atomic_load(&s->in_flight) > 0 && waited < limit_ms; waited += 10)
        sleep_ms(10);
}

static void free_server(ww_server *s)
{
    ww_http_stop(s);
    ww_pool_free(s->pool);
    s->pool = NULL;
    for (int i = 0; i < s->model_count; i++)
        wanwu_model_free(s->models[i].model);
    s->model_count = 0;
    ww_metrics_destroy(&s->metrics);
}

static int parse_int64(const char *option, const char *value, long long min, long long max,
                       long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "wanwu: %s needs a whole number from %lld to %lld, not '%s'\n", option, min,
                max, value);
        return 0;
    }
    *out = v;
    return 1;
}

int ww_cmd_serve(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},
        {"threads-per-worker", required_argument, NULL, 't'},
        {"max-upload-mb", required_argument, NULL, 'u'},
        {"max-pixels", required_argument, NULL, 'x'},
        {"queue", required_argument, NULL, 'q'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"client-timeout-s", required_argument, NULL, 'c'},
        {"token", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long nprocs = sysconf(_SC_NPROCESSORS_ONLN);
    ww_serve_options o = {
        .host = "127.0.0.1",
        .port = 8080,
        .workers = nprocs > 0 ? (int)(nprocs < 256 ? nprocs : 256) : 1,
        .threads_per_worker = 1,
        .max_upload_bytes = (size_t)20 << 20,
        .max_pixels = 40000000,
        .queue_capacity = 64,
        .timeout_ms = 10000,
        .client_timeout_s = 30,
        .token = NULL,
    };
    const char *specs[WW_SERVE_MAX_MODELS];
    int spec_count = 0;
    long long v;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            if (spec_count == WW_SERVE_MAX_MODELS) {
                fprintf(stderr, "wanwu serve: at most %d models\n", WW_SERVE_MAX_MODELS);
                return 2;
            }
            specs[spec_count++] = optarg;
            break;
        case 'H': o.host = optarg; break;
        case 'p':
            if ((o.port = ww_cli_parse_int("--port", optarg, 0, 65535)) < 0) return 2;
            break;
        case 'w':
            if ((o.workers = ww_cli_parse_int("--workers", optarg, 1, 256)) < 0) return 2;
            break;
        case 't':
            if ((o.threads_per_worker = ww_cli_parse_int("--threads-per-worker", optarg, 1, 256)) <
                0)
                return 2;
            break;
        case 'u':
            if (!parse_int64("--max-upload-mb", optarg, 1, 4096, &v)) return 2;
            o.max_upload_bytes = (size_t)v << 20;
            break;
        case 'x':
            if (!parse_int64("--max-pixels", optarg, 1, (long long)1 << 40, &v)) return 2;
            o.max_pixels = v;
            break;
        case 'q':
            if ((o.queue_capacity = ww_cli_parse_int("--queue", optarg, 1, 1000000)) < 0) return 2;
            break;
        case 'T':
            if ((o.timeout_ms = ww_cli_parse_int("--timeout-ms", optarg, 1, 3600000)) < 0) return 2;
            break;
        case 'c':
            if ((o.client_timeout_s = ww_cli_parse_int("--client-timeout-s", optarg, 1, 3600)) < 0)
                return 2;
            break;
        case 'k':
            if (!*optarg) {
                fprintf(stderr, "wanwu serve: --token must not be empty\n");
                return 2;
            }
            o.token = optarg;
            break;
        case 'h': print_help(stdout); return 0;
        default: fprintf(stderr, "see 'wanwu serve --help'\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wanwu serve: unexpected argument '%s'; see 'wanwu serve --help'\n",
                argv[optind]);
        return 2;
    }

    /* Every thread started from here on inherits the blocked signals; the
     * main thread takes them with sigwait. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    static ww_server server; /* large; lives until exit */
    ww_server *s = &server;
    memset(s, 0, sizeof *s);
    s->options = o;
    atomic_store(&s->phase, WW_PHASE_STARTING);
    ww_metrics_init(&s->metrics);

    wanwu_error err;
    if (ww_http_start(s, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu serve: %s\n", err.message);
        free_server(s);
        return 1;
    }
    if (!load_models(s, specs, spec_count)) {
        free_server(s);
        return 1;
    }
    ww_pool_options pool_options = {
        .models = s->model_handles,
        .model_names = s->model_names,
        .model_count = s->model_count,
        .workers = o.workers,
        .threads_per_worker = o.threads_per_worker,
        .queue_capacity = o.queue_capacity,
        .timeout_ms = o.timeout_ms,
    };
    if (ww_pool_create(&pool_options, &s->pool, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu serve: %s\n", err.message);
        free_server(s);
        return 1;
    }
    atomic_store(&s->phase, WW_PHASE_READY);

    int ipv6 = strchr(o.host, ':') != NULL;
    printf("wanwu serve: ready on http://%s%s%s:%d/ (", ipv6 ? "[" : "", o.host, ipv6 ? "]" : "",
           s->bound_port);
    for (int i = 0; i < s->model_count; i++)
        printf("%s%s", i ? ", " : "model ", s->model_names[i]);
    printf("; %d worker%s)\n", o.workers, o.workers == 1 ? "" : "s");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "wanwu serve: %s: finishing requests in flight\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&s->phase, WW_PHASE_DRAINING);
    ww_http_stop_accepting(s);
    /* A request may wait for its answer up to timeout_ms, and a stalled
     * upload holds its connection up to the client timeout. */
    wait_for_in_flight(s, o.timeout_ms + o.client_timeout_s * 1000 + 1000);
    ww_pool_cancel_all(s->pool);
    free_server(s);
    fprintf(stderr, "wanwu serve: stopped\n");
    return 0;
}
