#include "cli/bench_suite.h"

#include "cli/cli.h"
#include "cli/progress.h"
#include "core/fileio.h"
#include "core/json.h"
#include "model/model.h"
#include "model/model_dir.h"
#include "model/weight_cache.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double ww_model_gmacs(const wanwu_model *model)
{
    double macs = 0;
    const ww_graph *g = &model->graph;
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        if (n->op == WW_OP_CONV2D) {
            const ww_conv2d_shape *s = &n->conv;
            int groups = s->groups > 0 ? s->groups : 1;
            macs += (double)s->out_c * s->out_h * s->out_w * (double)(s->in_c / groups) *
                    s->kernel_h * s->kernel_w;
        } else if (n->op == WW_OP_LINEAR) {
            macs += (double)n->in_features * n->out_features;
        }
    }
    return macs / 1e9;
}

void ww_bench_model_result_free(ww_bench_model_result *r)
{
    free(r->inference_ms);
    free(r->e2e_ms);
    free(r->soak);
    r->inference_ms = r->e2e_ms = NULL;
    r->soak = NULL;
}

double ww_bench_soak_slope_mb_per_hour(const ww_bench_model_result *r)
{
    if (r->soak_count < 2) return 0;
    double *t = malloc((size_t)r->soak_count * sizeof *t);
    double *rss = malloc((size_t)r->soak_count * sizeof *rss);
    double slope = 0;
    if (t && rss) {
        for (int i = 0; i < r->soak_count; i++)
            t[i] = r->soak[i].t_s, rss[i] = r->soak[i].rss_mb;
        slope = ww_linear_slope(t, rss, r->soak_count) * 3600.0;
    }
    free(t);
    free(rss);
    return slope;
}

/* ---- one model, in the child process ------------------------------------ */

/* Marks r failed with "prefix" + detail (cut to fit). */
static void fail_result(ww_bench_model_result *r, const char *prefix, const char *detail)
{
    r->ok = 0;
    int room = (int)(sizeof r->error - 1 - strlen(prefix));
    snprintf(r->error, sizeof r->error, "%s%.*s", prefix, room > 0 ? room : 0, detail);
}

static void sleep_until_ms(double target_ms)
{
    for (;;) {
        double wait = target_ms - ww_cli_now_ms();
        if (wait <= 0) return;
        struct timespec ts = {(time_t)(wait / 1000.0), (long)(fmod(wait, 1000.0) * 1e6)};
        if (nanosleep(&ts, NULL) == 0) return;
    }
}

static void measure_model(const ww_bench_config *cfg, const char *spec, ww_bench_model_result *r)
{
    wanwu_error err;
    snprintf(r->spec, sizeof r->spec, "%s", spec);
    if (ww_model_resolve(spec, NULL, r->path, sizeof r->path, &err) != WANWU_OK) {
        fail_result(r, "", err.message);
        return;
    }
    struct stat st;
    if (stat(r->path, &st) == 0) r->file_mb = (double)st.st_size / (1024.0 * 1024.0);

    char cache_dir[4096];
    wanwu_model_options mopts = {
        .arch = cfg->arch, .cache_dir = ww_weight_cache_default_dir(cache_dir, sizeof cache_dir)};
    wanwu_model *model = NULL;
    double t0 = ww_cli_now_ms();
    if (wanwu_model_load(r->path, &mopts, &model, &err) != WANWU_OK) {
        fail_result(r, "cannot load model: ", err.message);
        return;
    }
    r->load_ms = ww_cli_now_ms() - t0;
    snprintf(r->arch, sizeof r->arch, "%s", wanwu_model_arch(model));
    r->params = wanwu_model_num_params(model);
    r->gmacs = ww_model_gmacs(model);

    wanwu_session *session = NULL;
    wanwu_session_options sopts = {cfg->threads};
    int size = wanwu_model_input_size(model);
    size_t input_floats = 3 * (size_t)size * (size_t)size;
    int classes = wanwu_model_num_classes(model);
    float *input = malloc(input_floats * sizeof *input);
    float *logits = malloc((size_t)classes * sizeof *logits);
    r->inference_ms = malloc((size_t)cfg->runs * sizeof *r->inference_ms);
    int n_images = cfg->images ? cfg->images->count : 0;
    if (n_images) r->e2e_ms = malloc((size_t)n_images * sizeof *r->e2e_ms);
    int soak_cap = cfg->soak_s > 0 ? (int)(cfg->soak_s / cfg->interval_s) + 2 : 0;
    if (soak_cap) r->soak = malloc((size_t)soak_cap * sizeof *r->soak);
    if (!input || !logits || !r->inference_ms || (n_images && !r->e2e_ms) ||
        (soak_cap && !r->soak)) {
        fail_result(r, "", "out of memory");
        goto done;
    }
    if (wanwu_session_create(model, &sopts, &session, &err) != WANWU_OK) {
        fail_result(r, "", err.message);
        goto done;
    }
    /* the same fixed, image-like input as the single-model bench */
    unsigned int seed = 12345;
    for (size_t i = 0; i < input_floats; i++) {
        seed = seed * 1103515245u + 12345u;
        input[i] = (float)((seed >> 8) & 0xFFFF) / 65535.0f * 4.0f - 2.0f;
    }
    for (int i = 0; i < cfg->warmup; i++)
        wanwu_run(session, input, logits, NULL);

    /* inference only: latency and CPU use */
    char label[96];
    ww_progress bar;
    snprintf(label, sizeof label, "%s: latency", r->arch);
    ww_progress_start(&bar, label, cfg->runs);
    double cpu0 = ww_proc_cpu_ms(), wall0 = ww_cli_now_ms();
    for (int i = 0; i < cfg->runs; i++) {
        double t = ww_cli_now_ms();
        if (wanwu_run(session, input, logits, &err) != WANWU_OK) {
            ww_progress_finish(&bar);
            fail_result(r, "inference failed: ", err.message);
            goto done;
        }
        r->inference_ms[i] = ww_cli_now_ms() - t;
        r->inference_count = i + 1;
        ww_progress_update(&bar, i + 1);
    }
    double wall = ww_cli_now_ms() - wall0;
    r->cpu_percent = wall > 0 ? 100.0 * (ww_proc_cpu_ms() - cpu0) / wall : 0;
    ww_progress_finish(&bar);

    /* accuracy and end-to-end latency: every image once */
    if (n_images) {
        int top_k = classes < 5 ? classes : 5;
        wanwu_prediction preds[5];
        snprintf(label, sizeof label, "%s: accuracy", r->arch);
        ww_progress_start(&bar, label, n_images);
        for (int i = 0; i < n_images; i++) {
            const ww_labelled_image *im = &cfg->images->images[i];
            double t = ww_cli_now_ms();
            wanwu_status s = wanwu_classify_file(session, im->path, NULL, top_k, preds, NULL, &err);
            double ms = ww_cli_now_ms() - t;
            r->accuracy_images++;
            if (s != WANWU_OK) {
                r->failed_images++;
                if (r->failed_images == 1) fprintf(stderr, "wanwu bench: %s\n", err.message);
            } else {
                r->e2e_ms[r->e2e_count++] = ms;
                if (preds[0].class_index == im->class_index) r->top1_correct++;
                for (int k = 0; k < top_k; k++)
                    if (preds[k].class_index == im->class_index) r->top5_correct++;
            }
            ww_progress_update(&bar, i + 1);
        }
        ww_progress_finish(&bar);
    }

    /* stability: one classification every interval */
    if (soak_cap) {
        snprintf(label, sizeof label, "%s: soak", r->arch);
        int planned = (int)(cfg->soak_s / cfg->interval_s) + 1;
        if (planned > soak_cap) planned = soak_cap;
        ww_progress_start(&bar, label, planned);
        double start = ww_cli_now_ms();
        r->rss_start_mb = ww_proc_rss_mb();
        for (int k = 0; k < planned; k++) {
            sleep_until_ms(start + k * cfg->interval_s * 1000.0);
            double t = ww_cli_now_ms();
            wanwu_status s;
            if (n_images) {
                wanwu_prediction pred;
                s = wanwu_classify_file(session, cfg->images->images[k % n_images].path, NULL, 1,
                                        &pred, NULL, &err);
            } else {
                s = wanwu_run(session, input, logits, &err);
            }
            double done_ms = ww_cli_now_ms();
            ww_soak_sample *sample = &r->soak[r->soak_count++];
            sample->t_s = (t - start) / 1000.0;
            sample->ms = s == WANWU_OK ? done_ms - t : -1;
            sample->rss_mb = ww_proc_rss_mb();
            if (s != WANWU_OK) r->soak_errors++;
            ww_progress_update(&bar, k + 1);
        }
        r->rss_end_mb = ww_proc_rss_mb();
        ww_progress_finish(&bar);
    }
    r->peak_rss_mb = ww_proc_peak_rss_mb();
    r->ok = 1;
done:
    free(input);
    free(logits);
    wanwu_session_free(session);
    wanwu_model_free(model);
}

/* ---- the child -> parent channel ---------------------------------------- */

static int write_all(int fd, const void *data, size_t size)
{
    return ww_write_full(fd, data, size) == size ? 0 : -1;
}

static int read_all(int fd, void *data, size_t size)
{
    return ww_read_full(fd, data, size) == size ? 0 : -1;
}

static int send_result(int fd, const ww_bench_model_result *r)
{
    ww_bench_model_result header = *r;
    header.inference_ms = header.e2e_ms = NULL;
    header.soak = NULL;
    if (!r->inference_ms) header.inference_count = 0;
    if (!r->e2e_ms) header.e2e_count = 0;
    if (!r->soak) header.soak_count = 0;
    if (write_all(fd, &header, sizeof header)) return -1;
    if (write_all(fd, r->inference_ms, (size_t)header.inference_count * sizeof(double))) return -1;
    if (write_all(fd, r->e2e_ms, (size_t)header.e2e_count * sizeof(double))) return -1;
    return write_all(fd, r->soak, (size_t)header.soak_count * sizeof(ww_soak_sample));
}

static int receive_result(int fd, ww_bench_model_result *r)
{
    if (read_all(fd, r, sizeof *r)) return -1;
    r->inference_ms = malloc((size_t)r->inference_count * sizeof(double) + 1);
    r->e2e_ms = malloc((size_t)r->e2e_count * sizeof(double) + 1);
    r->soak = malloc((size_t)r->soak_count * sizeof(ww_soak_sample) + 1);
    if (!r->inference_ms || !r->e2e_ms || !r->soak) return -1;
    if (read_all(fd, r->inference_ms, (size_t)r->inference_count * sizeof(double))) return -1;
    if (read_all(fd, r->e2e_ms, (size_t)r->e2e_count * sizeof(double))) return -1;
    return read_all(fd, r->soak, (size_t)r->soak_count * sizeof(ww_soak_sample));
}

static void run_one(const ww_bench_config *cfg, const char *spec, ww_bench_model_result *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->spec, sizeof out->spec, "%s", spec);
    int fds[2];
    if (pipe(fds) != 0) {
        fail_result(out, "cannot create a pipe: ", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        fail_result(out, "cannot start a process for the model: ", strerror(errno));
        return;
    }
    if (pid == 0) { /* child: measure, send, leave without running the parent's exit path */
        close(fds[0]);
        ww_bench_model_result r;
        memset(&r, 0, sizeof r);
        measure_model(cfg, spec, &r);
        int rc = send_result(fds[1], &r) ? 1 : 0;
        ww_bench_model_result_free(&r);
        close(fds[1]);
        fflush(stderr);
        exit(rc); /* exit (not _exit) so that leak checkers see the child too */
    }
    close(fds[1]);
    int received = receive_result(fds[0], out) == 0;
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!received) {
        ww_bench_model_result_free(out);
        memset(out, 0, sizeof *out);
        snprintf(out->spec, sizeof out->spec, "%s", spec);
        char why[64];
        if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
        else
            snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
        fail_result(out, "the benchmark process for this model ended without a result: ", why);
    }
}

int ww_bench_run_all(const ww_bench_config *cfg, ww_bench_model_result *results)
{
    int failed = 0;
    for (int i = 0; i < cfg->model_count; i++) {
        run_one(cfg, cfg->model_specs[i], &results[i]);
        if (!results[i].ok) {
            failed++;
            fprintf(stderr, "wanwu bench: %s: %s\n", cfg->model_specs[i], results[i].error);
        }
    }
    return failed;
}

/* ---- Markdown ----------------------------------------------------------- */

static const char *model_name(const ww_bench_model_result *r)
{
    return r->arch[0] ? r->arch : r->spec;
}

static void soak_latencies(const ww_bench_model_result *r, ww_latency_summary *s)
{
    double *ms = malloc((size_t)(r->soak_count ? r->soak_count : 1) * sizeof *ms);
    int n = 0;
    if (ms)
        for (int i = 0; i < r->soak_count; i++)
            if (r->soak[i].ms >= 0) ms[n++] = r->soak[i].ms;
    ww_latency_summarize(ms, n, s);
    free(ms);
}

/* Text in a table cell: '|' escaped, line breaks as spaces. */
static void markdown_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputs("\\|", out);
        else if (*p == '\n' || *p == '\r')
            fputc(' ', out);
        else
            fputc(*p, out);
    }
}

static void format_duration(double s, char *buf, size_t size)
{
    if (s >= 3600 && (long)s % 3600 == 0)
        snprintf(buf, size, "%ld h", (long)s / 3600);
    else if (s >= 60 && (long)s % 60 == 0)
        snprintf(buf, size, "%ld min", (long)s / 60);
    else
        snprintf(buf, size, "%g s", s);
}

void ww_bench_write_markdown(FILE *out, const ww_bench_config *cfg,
                             const ww_bench_model_result *results)
{
    int n_images = cfg->images ? cfg->images->count : 0;
    fprintf(out, "## wanwu bench: %d model%s", cfg->model_count, cfg->model_count == 1 ? "" : "s");
    if (n_images) fprintf(out, ", %d images from %s", n_images, cfg->images_source);
    fprintf(out, ", %d thread%s, %d inference runs\n\n", cfg->threads, cfg->threads == 1 ? "" : "s",
            cfg->runs);

    fprintf(out, "| model | top-1 | top-5 | mean latency (ms) | load time (ms) | peak memory (MB) "
                 "| CPU (%% of one core) | file size (MB) | params (M) | GMACs |\n");
    fprintf(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < cfg->model_count; i++) {
        const ww_bench_model_result *r = &results[i];
        if (!r->ok) {
            fputs("| ", out);
            markdown_cell(out, r->spec);
            fputs(" | failed: ", out);
            markdown_cell(out, r->error);
            fputs(" |||||||||\n", out);
            continue;
        }
        ww_latency_summary inf, e2e;
        ww_latency_summarize(r->inference_ms, r->inference_count, &inf);
        ww_latency_summarize(r->e2e_ms, r->e2e_count, &e2e);
        fprintf(out, "| %s ", model_name(r));
        if (r->accuracy_images)
            fprintf(out, "| %.1f%% (%d/%d) | %.1f%% ", 100.0 * r->top1_correct / r->accuracy_images,
                    r->top1_correct, r->accuracy_images,
                    100.0 * r->top5_correct / r->accuracy_images);
        else
            fprintf(out, "| – | – ");
        fprintf(out, "| %.2f", inf.mean);
        if (e2e.count) fprintf(out, " (%.2f end to end)", e2e.mean);
        fprintf(out, " | %.1f | %.1f | %.0f | %.1f | %.2f | %.2f |\n", r->load_ms, r->peak_rss_mb,
                r->cpu_percent, r->file_mb, (double)r->params / 1e6, r->gmacs);
    }

    fprintf(out,
            "\nLatency in ms (inference only: %d runs on a fixed input; end to end: decode + "
            "preprocess + inference, each image once):\n\n",
            cfg->runs);
    fprintf(out, "| model | measured | mean | p50 | p90 | p99 | min | max |\n");
    fprintf(out, "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < cfg->model_count; i++) {
        const ww_bench_model_result *r = &results[i];
        if (!r->ok) continue;
        for (int kind = 0; kind < 2; kind++) {
            ww_latency_summary s;
            if (kind == 0)
                ww_latency_summarize(r->inference_ms, r->inference_count, &s);
            else
                ww_latency_summarize(r->e2e_ms, r->e2e_count, &s);
            if (!s.count) continue;
            fprintf(out, "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", model_name(r),
                    kind == 0 ? "inference" : "end to end", s.mean, s.p50, s.p90, s.p99, s.min,
                    s.max);
        }
    }

    if (cfg->soak_s > 0) {
        char dur[32], every[32];
        format_duration(cfg->soak_s, dur, sizeof dur);
        format_duration(cfg->interval_s, every, sizeof every);
        fprintf(out, "\nStability: one classification every %s for %s:\n\n", every, dur);
        fprintf(out, "| model | classifications | errors | mean latency (ms) | p99 (ms) | max (ms) "
                     "| RSS start (MB) | RSS end (MB) | RSS slope (MB/h) |\n");
        fprintf(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < cfg->model_count; i++) {
            const ww_bench_model_result *r = &results[i];
            if (!r->ok) continue;
            ww_latency_summary s;
            soak_latencies(r, &s);
            fprintf(out, "| %s | %d | %d | %.2f | %.2f | %.2f | %.1f | %.1f | %+.2f |\n",
                    model_name(r), r->soak_count, r->soak_errors, s.mean, s.p99, s.max,
                    r->rss_start_mb, r->rss_end_mb, ww_bench_soak_slope_mb_per_hour(r));
        }
    }
}

/* ---- JSON --------------------------------------------------------------- */

static void json_summary(FILE *out, const double *ms, int count, int with_samples)
{
    if (!count) {
        fputs("null", out);
        return;
    }
    ww_latency_summary s;
    ww_latency_summarize(ms, count, &s);
    fprintf(out,
            "{\"count\":%d,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"min\":%.4f,"
            "\"max\":%.4f",
            s.count, s.mean, s.p50, s.p90, s.p99, s.min, s.max);
    if (with_samples) {
        fputs(",\"samples\":[", out);
        for (int i = 0; i < count; i++)
            fprintf(out, "%s%.4f", i ? "," : "", ms[i]);
        fputc(']', out);
    }
    fputc('}', out);
}

/* The keys of the single-model `wanwu bench --json` (scripts rely on them). */
static void json_legacy_keys(FILE *out, const ww_bench_config *cfg, const ww_bench_model_result *r)
{
    ww_latency_summary s;
    ww_latency_summarize(r->inference_ms, r->inference_count, &s);
    fputs("\"model\":", out);
    ww_json_write_string(out, model_name(r));
    fprintf(out,
            ",\"threads\":%d,\"batch\":1,\"runs\":%d,\"median_ms\":%.4f,\"p90_ms\":%.4f,"
            "\"p99_ms\":%.4f,\"min_ms\":%.4f,\"mean_ms\":%.4f,\"load_ms\":%.3f,"
            "\"peak_rss_mb\":%.1f",
            cfg->threads, r->inference_count, s.p50, s.p90, s.p99, s.min, s.mean, r->load_ms,
            r->peak_rss_mb);
}

static void json_model(FILE *out, const ww_bench_config *cfg, const ww_bench_model_result *r)
{
    fputc('{', out);
    if (!r->ok) {
        fputs("\"model\":", out);
        ww_json_write_string(out, r->spec);
        fputs(",\"spec\":", out);
        ww_json_write_string(out, r->spec);
        fputs(",\"ok\":false,\"error\":", out);
        ww_json_write_string(out, r->error);
        fputc('}', out);
        return;
    }
    json_legacy_keys(out, cfg, r);
    fputs(",\"spec\":", out);
    ww_json_write_string(out, r->spec);
    fputs(",\"file\":", out);
    ww_json_write_string(out, r->path);
    fprintf(out,
            ",\"ok\":true,\"file_size_mb\":%.3f,\"params\":%lld,\"gmacs\":%.4f,"
            "\"cpu_percent\":%.1f,\"accuracy\":",
            r->file_mb, (long long)r->params, r->gmacs, r->cpu_percent);
    if (r->accuracy_images)
        fprintf(out,
                "{\"images\":%d,\"top1_correct\":%d,\"top5_correct\":%d,\"top1\":%.6f,"
                "\"top5\":%.6f,\"errors\":%d}",
                r->accuracy_images, r->top1_correct, r->top5_correct,
                (double)r->top1_correct / r->accuracy_images,
                (double)r->top5_correct / r->accuracy_images, r->failed_images);
    else
        fputs("null", out);
    fputs(",\"latency_ms\":{\"inference\":", out);
    json_summary(out, r->inference_ms, r->inference_count, 1);
    fputs(",\"end_to_end\":", out);
    json_summary(out, r->e2e_ms, r->e2e_count, 1);
    fputs("},\"soak\":", out);
    if (cfg->soak_s > 0) {
        ww_latency_summary s;
        soak_latencies(r, &s);
        fprintf(out,
                "{\"duration_s\":%.3f,\"interval_s\":%.3f,\"classifications\":%d,\"errors\":%d,"
                "\"rss_start_mb\":%.2f,\"rss_end_mb\":%.2f,\"rss_slope_mb_per_hour\":%.4f,"
                "\"latency_ms\":{\"count\":%d,\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,"
                "\"p99\":%.4f,\"min\":%.4f,\"max\":%.4f},\"series\":[",
                cfg->soak_s, cfg->interval_s, r->soak_count, r->soak_errors, r->rss_start_mb,
                r->rss_end_mb, ww_bench_soak_slope_mb_per_hour(r), s.count, s.mean, s.p50, s.p90,
                s.p99, s.min, s.max);
        for (int i = 0; i < r->soak_count; i++) {
            const ww_soak_sample *x = &r->soak[i];
            fprintf(out, "%s{\"t_s\":%.3f,\"ms\":", i ? "," : "", x->t_s);
            if (x->ms >= 0)
                fprintf(out, "%.4f", x->ms);
            else
                fputs("null", out);
            fprintf(out, ",\"rss_mb\":%.2f}", x->rss_mb);
        }
        fputs("]}", out);
    } else {
        fputs("null", out);
    }
    fputc('}', out);
}

void ww_bench_write_json(FILE *out, const ww_bench_config *cfg,
                         const ww_bench_model_result *results)
{
    fputc('{', out);
    /* one model: its figures also at the top level, like the single-model bench */
    if (cfg->model_count == 1 && results[0].ok) {
        json_legacy_keys(out, cfg, &results[0]);
        fputc(',', out);
    }
    fprintf(out, "\"wanwu_version\":\"%s\",\"threads\":%d,\"runs\":%d,\"warmup\":%d,\"images\":",
            WANWU_VERSION, cfg->threads, cfg->runs, cfg->warmup);
    if (cfg->images) {
        fprintf(out, "{\"count\":%d,\"source\":", cfg->images->count);
        ww_json_write_string(out, cfg->images_source);
        fputc('}', out);
    } else {
        fputs("null", out);
    }
    if (cfg->soak_s > 0)
        fprintf(out, ",\"soak\":{\"duration_s\":%.3f,\"interval_s\":%.3f}", cfg->soak_s,
                cfg->interval_s);
    else
        fputs(",\"soak\":null", out);
    fputs(",\"models\":[", out);
    for (int i = 0; i < cfg->model_count; i++) {
        if (i) fputc(',', out);
        json_model(out, cfg, &results[i]);
    }
    fputs("]}\n", out);
}
