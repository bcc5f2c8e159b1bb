#include "cli/bench_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double nearest_rank(const double *sorted, int n, double p)
{
    int rank = (int)(p / 100.0 * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

void ww_latency_summarize(const double *ms, int count, ww_latency_summary *out)
{
    memset(out, 0, sizeof *out);
    if (count <= 0) return;
    double *sorted = malloc((size_t)count * sizeof *sorted);
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += ms[i];
    out->count = count;
    out->mean = sum / count;
    if (!sorted) { /* degrade to what needs no sorting */
        out->min = out->max = ms[0];
        for (int i = 1; i < count; i++) {
            if (ms[i] < out->min) out->min = ms[i];
            if (ms[i] > out->max) out->max = ms[i];
        }
        out->p50 = out->p90 = out->p99 = out->mean;
        return;
    }
    memcpy(sorted, ms, (size_t)count * sizeof *sorted);
    qsort(sorted, (size_t)count, sizeof *sorted, compare_doubles);
    out->min = sorted[0];
    out->max = sorted[count - 1];
    out->p50 = count % 2 ? sorted[count / 2] : 0.5 * (sorted[count / 2 - 1] + sorted[count / 2]);
    out->p90 = nearest_rank(sorted, count, 90);
    out->p99 = nearest_rank(sorted, count, 99);
    free(sorted);
}

static double proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t key_len = strlen(key);
    double kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
            kb = strtod(line + key_len + 1, NULL);
            break;
        }
    }
    fclose(f);
    return kb;
}

double ww_proc_rss_mb(void)
{
    return proc_status_kb("VmRSS") / 1024.0;
}

double ww_proc_peak_rss_mb(void)
{
    return proc_status_kb("VmHWM") / 1024.0;
}

double ww_proc_cpu_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double ww_parse_duration(const char *text)
{
    if (!text || !*text) return -1;
    double total = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) return -1;
        p = end;
        if (strncmp(p, "ms", 2) == 0)
            total += v / 1000.0, p += 2;
        else if (*p == 'h')
            total += v * 3600.0, p++;
        else if (*p == 'm')
            total += v * 60.0, p++;
        else if (*p == 's')
            total += v, p++;
        else if (*p == '\0' && p != text && total == 0)
            total += v; /* bare seconds */
        else
            return -1;
    }
    return total > 0 ? total : -1;
}

double ww_linear_slope(const double *x, const double *y, int count)
{
    if (count < 2) return 0;
    double mx = 0, my = 0;
    for (int i = 0; i < count; i++)
        mx += x[i], my += y[i];
    mx /= count;
    my /= count;
    double sxy = 0, sxx = 0;
    for (int i = 0; i < count; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    return sxx > 0 ? sxy / sxx : 0;
}
