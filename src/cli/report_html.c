/* `wanwu bench --report FILE.html`: one self-contained page (inline CSS and
 * SVG, no scripts, nothing fetched) with the tables and charts. */
#include "cli/bench_suite.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define PALETTE_SIZE (sizeof palette / sizeof palette[0])

enum { CHART_W = 760, LEFT = 150, RIGHT = 110, ROW_H = 34, TOP = 30, BOTTOM = 40 };

static void html_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

static const char *name_of(const ww_bench_model_result *r)
{
    return r->arch[0] ? r->arch : r->spec;
}

/* A "nice" axis maximum at or above v (1, 1.2, 1.5, 2, ..., 8 x 10^k). */
static double nice_ceiling(double v)
{
    if (v <= 0) return 1;
    double base = 1;
    while (base * 10 <= v)
        base *= 10;
    while (base > v)
        base /= 10;
    const double steps[] = {1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] * base >= v) return steps[i] * base;
    return 10 * base;
}

static void axis_x(FILE *out, double x0, double x1, double y_top, double y_bottom, double max,
                   const char *unit)
{
    for (int t = 0; t <= 5; t++) {
        double x = x0 + (x1 - x0) * t / 5.0;
        fprintf(out,
                "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                "<text x='%.1f' y='%.1f' text-anchor='middle' class='tick'>%g</text>\n",
                x, y_top, x, y_bottom, x, y_bottom + 14, max * t / 5.0);
    }
    fprintf(out, "<text x='%.1f' y='%.1f' text-anchor='middle' class='unit'>", (x0 + x1) / 2,
            y_bottom + 30);
    html_text(out, unit);
    fputs("</text>\n", out);
}

/* Horizontal bars: one group per model, `series` bars per group. */
static void bar_chart(FILE *out, const char *title, const char *unit, int models,
                      const char *const *names, const double *values, int series,
                      const char *const *series_names, const char *value_format)
{
    double max = 0;
    for (int i = 0; i < models * series; i++)
        if (values[i] > max) max = values[i];
    max = nice_ceiling(max);
    int group_h = series * 18 + 12;
    int height = TOP + models * group_h + BOTTOM;
    double x0 = LEFT, x1 = CHART_W - RIGHT;
    fprintf(out, "<figure><figcaption>");
    html_text(out, title);
    fprintf(out,
            "</figcaption><svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "viewBox='0 0 %d %d' role='img'>\n",
            CHART_W, height, CHART_W, height);
    axis_x(out, x0, x1, TOP - 6, TOP + models * group_h, max, unit);
    for (int m = 0; m < models; m++) {
        double gy = TOP + m * group_h;
        fprintf(out, "<text x='%d' y='%.1f' text-anchor='end' class='label'>", LEFT - 8,
                gy + group_h / 2.0);
        html_text(out, names[m]);
        fputs("</text>\n", out);
        for (int s = 0; s < series; s++) {
            double v = values[m * series + s];
            double w = (x1 - x0) * (v / max);
            double y = gy + 4 + s * 18;
            const char *color = palette[(series > 1 ? s : m) % PALETTE_SIZE];
            fprintf(out, "<rect x='%.1f' y='%.1f' width='%.1f' height='15' fill='%s'>", x0, y,
                    w < 0 ? 0 : w, color);
            fputs("<title>", out);
            html_text(out, names[m]);
            if (series_names) {
                fputs(" ", out);
                html_text(out, series_names[s]);
            }
            fprintf(out, ": ");
            fprintf(out, value_format, v);
            fputs("</title></rect>", out);
            fprintf(out, "<text x='%.1f' y='%.1f' class='value'>", x0 + w + 4, y + 12);
            if (series_names) {
                html_text(out, series_names[s]);
                fputs(" ", out);
            }
            fprintf(out, value_format, v);
            fputs("</text>\n", out);
        }
    }
    fputs("</svg></figure>\n", out);
}

/* Box plots of latency: whiskers min..max, box p50..p90, tick at p99. */
static void latency_chart(FILE *out, const char *title, int models,
                          const ww_bench_model_result *results, int end_to_end)
{
    double max = 0;
    int shown = 0;
    for (int m = 0; m < models; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok) continue;
        ww_latency_summary s;
        if (end_to_end)
            ww_latency_summarize(r->e2e_ms, r->e2e_count, &s);
        else
            ww_latency_summarize(r->inference_ms, r->inference_count, &s);
        if (!s.count) continue;
        shown++;
        if (s.max > max) max = s.max;
    }
    if (!shown) return;
    max = nice_ceiling(max);
    int height = TOP + shown * ROW_H + BOTTOM;
    double x0 = LEFT, x1 = CHART_W - RIGHT;
    fputs("<figure><figcaption>", out);
    html_text(out, title);
    fprintf(out,
            "</figcaption><svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "viewBox='0 0 %d %d' role='img'>\n",
            CHART_W, height, CHART_W, height);
    axis_x(out, x0, x1, TOP - 6, TOP + shown * ROW_H, max,
           "ms (whiskers min-max, box p50-p90, bar p99, dots every run)");
    int row = 0;
    for (int m = 0; m < models; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok) continue;
        const double *ms = end_to_end ? r->e2e_ms : r->inference_ms;
        int count = end_to_end ? r->e2e_count : r->inference_count;
        ww_latency_summary s;
        ww_latency_summarize(ms, count, &s);
        if (!s.count) continue;
        double cy = TOP + row * ROW_H + ROW_H / 2.0;
        const char *color = palette[m % PALETTE_SIZE];
#define X(v) (x0 + (x1 - x0) * ((v) / max))
        fprintf(out, "<text x='%d' y='%.1f' text-anchor='end' class='label'>", LEFT - 8, cy + 4);
        html_text(out, name_of(r));
        fputs("</text>\n", out);
        for (int i = 0; i < count; i++)
            fprintf(out, "<circle cx='%.1f' cy='%.1f' r='1.6' fill='%s' opacity='0.35'/>", X(ms[i]),
                    cy + 11 + (double)((i * 7) % 5) - 2, color);
        fprintf(out,
                "\n<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s'/>"
                "<rect x='%.1f' y='%.1f' width='%.1f' height='14' fill='%s' opacity='0.8'>"
                "<title>mean %.2f, p50 %.2f, p90 %.2f, p99 %.2f, min %.2f, max %.2f ms</title>"
                "</rect>"
                "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#000' stroke-width='2'/>"
                "<text x='%.1f' y='%.1f' class='value'>p50 %.2f ms</text>\n",
                X(s.min), cy, X(s.max), cy, color, X(s.p50), cy - 7, X(s.p90) - X(s.p50) + 0.5,
                color, s.mean, s.p50, s.p90, s.p99, s.min, s.max, X(s.p99), cy - 9, X(s.p99),
                cy + 9, X(s.max) + 6, cy + 4, s.p50);
#undef X
        row++;
    }
    fputs("</svg></figure>\n", out);
}

/* Soak: one line per model of `ms` (what = 0) or RSS (what = 1) over time. */
static void soak_chart(FILE *out, const char *title, const char *unit, int models,
                       const ww_bench_model_result *results, int what)
{
    double tmax = 0, vmax = 0, vmin = 1e300;
    for (int m = 0; m < models; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok) continue;
        for (int i = 0; i < r->soak_count; i++) {
            double v = what ? r->soak[i].rss_mb : r->soak[i].ms;
            if (v < 0) continue;
            if (r->soak[i].t_s > tmax) tmax = r->soak[i].t_s;
            if (v > vmax) vmax = v;
            if (v < vmin) vmin = v;
        }
    }
    if (vmax <= 0) return;
    /* memory: a window just around the values, so that growth shows */
    double lo = what ? floor(vmin / 10.0) * 10.0 - 10.0 : 0;
    if (lo < 0) lo = 0;
    double hi = lo + nice_ceiling((vmax - lo) * 1.05);
    /* the last sample lands a little after the nominal end: no extra axis step for that */
    tmax = nice_ceiling(tmax > 0 ? tmax * 0.99 : 1);
    int width = CHART_W, height = 260;
    double x0 = 70, x1 = width - 140, y0 = 20, y1 = height - 45;
    fputs("<figure><figcaption>", out);
    html_text(out, title);
    fprintf(out,
            "</figcaption><svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "viewBox='0 0 %d %d' role='img'>\n",
            width, height, width, height);
    for (int t = 0; t <= 4; t++) {
        double y = y1 - (y1 - y0) * t / 4.0;
        fprintf(out,
                "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>"
                "<text x='%.1f' y='%.1f' text-anchor='end' class='tick'>%.4g</text>\n",
                x0, y, x1, y, x0 - 6, y + 4, lo + (hi - lo) * t / 4.0);
        double x = x0 + (x1 - x0) * t / 4.0;
        fprintf(out, "<text x='%.1f' y='%.1f' text-anchor='middle' class='tick'>%.4g</text>\n", x,
                y1 + 16, tmax * t / 4.0);
    }
    fprintf(out,
            "<text x='%.1f' y='%.1f' text-anchor='middle' class='unit'>seconds since start; "
            "y: ",
            (x0 + x1) / 2, y1 + 34);
    html_text(out, unit);
    fputs("</text>\n", out);
    int legend = 0;
    for (int m = 0; m < models; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok || !r->soak_count) continue;
        const char *color = palette[m % PALETTE_SIZE];
        fprintf(out, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
        for (int i = 0; i < r->soak_count; i++) {
            double v = what ? r->soak[i].rss_mb : r->soak[i].ms;
            if (v < 0) continue;
            fprintf(out, "%.1f,%.1f ", x0 + (x1 - x0) * r->soak[i].t_s / tmax,
                    y1 - (y1 - y0) * (v - lo) / (hi - lo));
        }
        fputs("'/>\n", out);
        for (int i = 0; i < r->soak_count; i++)
            if (r->soak[i].ms < 0)
                fprintf(out, "<text x='%.1f' y='%.1f' fill='#d62728' class='tick'>x</text>",
                        x0 + (x1 - x0) * r->soak[i].t_s / tmax, y0 + 10);
        fprintf(out,
                "<rect x='%.1f' y='%.1f' width='12' height='3' fill='%s'/>"
                "<text x='%.1f' y='%.1f' class='label'>",
                x1 + 12, y0 + 10 + legend * 18, color, x1 + 28, y0 + 14 + legend * 18);
        html_text(out, name_of(r));
        fputs("</text>\n", out);
        legend++;
    }
    fputs("</svg></figure>\n", out);
}

static void table_row_start(FILE *out, const char *name)
{
    fputs("<tr><th>", out);
    html_text(out, name);
    fputs("</th>", out);
}

static void summary_table(FILE *out, const ww_bench_config *cfg,
                          const ww_bench_model_result *results)
{
    fputs("<table><tr><th>model</th><th>top-1</th><th>top-5</th><th>mean latency (ms)</th>"
          "<th>end to end (ms)</th><th>load time (ms)</th><th>peak memory (MB)</th>"
          "<th>CPU (% of one core)</th><th>file size (MB)</th><th>params (M)</th>"
          "<th>GMACs</th></tr>\n",
          out);
    for (int m = 0; m < cfg->model_count; m++) {
        const ww_bench_model_result *r = &results[m];
        table_row_start(out, name_of(r));
        if (!r->ok) {
            fputs("<td colspan='10' class='error'>failed: ", out);
            html_text(out, r->error);
            fputs("</td></tr>\n", out);
            continue;
        }
        ww_latency_summary inf, e2e;
        ww_latency_summarize(r->inference_ms, r->inference_count, &inf);
        ww_latency_summarize(r->e2e_ms, r->e2e_count, &e2e);
        if (r->accuracy_images)
            fprintf(out, "<td>%.1f%% (%d/%d)</td><td>%.1f%%</td>",
                    100.0 * r->top1_correct / r->accuracy_images, r->top1_correct,
                    r->accuracy_images, 100.0 * r->top5_correct / r->accuracy_images);
        else
            fputs("<td>–</td><td>–</td>", out);
        fprintf(out, "<td>%.2f</td>", inf.mean);
        if (e2e.count)
            fprintf(out, "<td>%.2f</td>", e2e.mean);
        else
            fputs("<td>–</td>", out);
        fprintf(out,
                "<td>%.1f</td><td>%.1f</td><td>%.0f</td><td>%.1f</td><td>%.2f</td>"
                "<td>%.2f</td></tr>\n",
                r->load_ms, r->peak_rss_mb, r->cpu_percent, r->file_mb, (double)r->params / 1e6,
                r->gmacs);
    }
    fputs("</table>\n", out);
}

static void latency_table(FILE *out, const ww_bench_config *cfg,
                          const ww_bench_model_result *results)
{
    fputs("<table><tr><th>model</th><th>measured</th><th>runs</th><th>mean</th><th>p50</th>"
          "<th>p90</th><th>p99</th><th>min</th><th>max</th></tr>\n",
          out);
    for (int m = 0; m < cfg->model_count; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok) continue;
        for (int kind = 0; kind < 2; kind++) {
            ww_latency_summary s;
            if (kind == 0)
                ww_latency_summarize(r->inference_ms, r->inference_count, &s);
            else
                ww_latency_summarize(r->e2e_ms, r->e2e_count, &s);
            if (!s.count) continue;
            table_row_start(out, name_of(r));
            fprintf(out,
                    "<td>%s</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>"
                    "<td>%.2f</td><td>%.2f</td><td>%.2f</td></tr>\n",
                    kind == 0 ? "inference" : "end to end", s.count, s.mean, s.p50, s.p90, s.p99,
                    s.min, s.max);
        }
    }
    fputs("</table>\n", out);
}

static void soak_table(FILE *out, const ww_bench_config *cfg, const ww_bench_model_result *results)
{
    fputs("<table><tr><th>model</th><th>classifications</th><th>errors</th>"
          "<th>mean latency (ms)</th><th>p99 (ms)</th><th>max (ms)</th><th>RSS start (MB)</th>"
          "<th>RSS end (MB)</th><th>RSS slope (MB/h)</th></tr>\n",
          out);
    for (int m = 0; m < cfg->model_count; m++) {
        const ww_bench_model_result *r = &results[m];
        if (!r->ok) continue;
        double *ms = malloc((size_t)(r->soak_count ? r->soak_count : 1) * sizeof *ms);
        int n = 0;
        if (ms)
            for (int i = 0; i < r->soak_count; i++)
                if (r->soak[i].ms >= 0) ms[n++] = r->soak[i].ms;
        ww_latency_summary s;
        ww_latency_summarize(ms, n, &s);
        free(ms);
        table_row_start(out, name_of(r));
        fprintf(out,
                "<td>%d</td><td%s>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>"
                "<td>%.1f</td><td>%.1f</td><td>%+.2f</td></tr>\n",
                r->soak_count, r->soak_errors ? " class='error'" : "", r->soak_errors, s.mean,
                s.p99, s.max, r->rss_start_mb, r->rss_end_mb, ww_bench_soak_slope_mb_per_hour(r));
    }
    fputs("</table>\n", out);
}

static void write_page(FILE *out, const ww_bench_config *cfg, const ww_bench_model_result *results)
{
    int models = cfg->model_count;
    const char **names = calloc((size_t)models + 1, sizeof *names);
    double *values = calloc((size_t)models * 2 + 1, sizeof *values);
    int *index = calloc((size_t)models + 1, sizeof *index);
    if (!names || !values || !index) {
        free(names);
        free(values);
        free(index);
        fputs("<!DOCTYPE html><title>wanwu bench</title><p>out of memory</p>\n", out);
        return;
    }
    int ok = 0;
    for (int m = 0; m < models; m++)
        if (results[m].ok) index[ok] = m, names[ok++] = name_of(&results[m]);

    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\n"
          "<title>wanwu bench report</title>\n<style>\n"
          "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;"
          "max-width:1000px;color:#222;padding:0 16px}\n"
          "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}\n"
          "table{border-collapse:collapse;font-size:13px;margin:8px 0}\n"
          "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
          "th:first-child{text-align:left}tr:first-child th{background:#f3f3f3}\n"
          "figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}\n"
          ".tick{font-size:11px;fill:#555}.unit{font-size:11px;fill:#555}"
          ".label{font-size:12px;fill:#222}.value{font-size:11px;fill:#222}"
          ".error{color:#b00;fill:#b00}.meta{color:#555;font-size:13px}\n"
          "</style></head><body>\n<h1>wanwu bench report</h1>\n<p class='meta'>",
          out);
    fprintf(out, "%d model%s, %d thread%s, %d inference runs after %d warm-up", models,
            models == 1 ? "" : "s", cfg->threads, cfg->threads == 1 ? "" : "s", cfg->runs,
            cfg->warmup);
    if (cfg->images) {
        fprintf(out, "; %d labelled images from ", cfg->images->count);
        html_text(out, cfg->images_source);
    }
    fprintf(out, "; wanwu %s; %s.</p>\n", WANWU_VERSION, when);

    fputs("<h2>Summary</h2>\n", out);
    summary_table(out, cfg, results);

    if (cfg->images) {
        fputs("<h2>Accuracy</h2>\n", out);
        for (int i = 0; i < ok; i++) {
            const ww_bench_model_result *r = &results[index[i]];
            double n = r->accuracy_images ? r->accuracy_images : 1;
            values[2 * i] = 100.0 * r->top1_correct / n;
            values[2 * i + 1] = 100.0 * r->top5_correct / n;
        }
        const char *const series[] = {"top-1", "top-5"};
        bar_chart(out, "Accuracy per model (end to end: decode + preprocess + inference)",
                  "% of images", ok, names, values, 2, series, "%.1f%%");
    }

    fputs("<h2>Latency</h2>\n", out);
    latency_table(out, cfg, results);
    latency_chart(out, "Inference latency distribution (fixed input)", models, results, 0);
    if (cfg->images)
        latency_chart(out, "End-to-end latency distribution (each image once)", models, results, 1);

    fputs("<h2>Load time and memory</h2>\n", out);
    for (int i = 0; i < ok; i++)
        values[i] = results[index[i]].load_ms;
    bar_chart(out, "Model load time (fresh process)", "ms", ok, names, values, 1, NULL, "%.1f ms");
    for (int i = 0; i < ok; i++) {
        values[2 * i] = results[index[i]].peak_rss_mb;
        values[2 * i + 1] = results[index[i]].file_mb;
    }
    const char *const memory_series[] = {"peak RSS", "file"};
    bar_chart(out, "Peak resident memory and model file size", "MB", ok, names, values, 2,
              memory_series, "%.1f MB");
    for (int i = 0; i < ok; i++)
        values[i] = results[index[i]].cpu_percent;
    bar_chart(out, "Average CPU use during the inference runs", "% of one core", ok, names, values,
              1, NULL, "%.0f%%");

    if (cfg->soak_s > 0) {
        fputs("<h2>Stability</h2>\n", out);
        fprintf(out, "<p class='meta'>One classification every %g s for %g s per model.</p>\n",
                cfg->interval_s, cfg->soak_s);
        soak_table(out, cfg, results);
        soak_chart(out, "Soak latency over time", "ms", models, results, 0);
        soak_chart(out, "Resident memory over time", "RSS, MB", models, results, 1);
    }
    fputs("</body></html>\n", out);
    free(names);
    free(values);
    free(index);
}

int ww_bench_write_html(const char *path, const ww_bench_config *cfg,
                        const ww_bench_model_result *results)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 32);
    if (!tmp) {
        fprintf(stderr, "wanwu bench: out of memory writing %s\n", path);
        return -1;
    }
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "wanwu bench: cannot write report %s: %s\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    write_page(out, cfg, results);
    int failed = ferror(out);
    if (fclose(out) != 0) failed = 1;
    if (!failed && rename(tmp, path) != 0) failed = 1;
    if (failed) {
        fprintf(stderr, "wanwu bench: cannot write report %s: %s\n", path, strerror(errno));
        remove(tmp);
    }
    free(tmp);
    return failed ? -1 : 0;
}
