/* Small measurement helpers for `wanwu bench` and batch classification:
 * latency summaries, process memory and CPU time, durations. */
#ifndef WW_CLI_BENCH_STATS_H
#define WW_CLI_BENCH_STATS_H

typedef struct ww_latency_summary {
    int count;
    double mean, p50, p90, p99, min, max; /* ms; all 0 when count is 0 */
} ww_latency_summary;

/* Summarizes `count` values (not modified). p50 is the median (mean of the
 * two middle values for an even count), p90/p99 are nearest-rank. */
void ww_latency_summarize(const double *ms, int count, ww_latency_summary *out);

/* Resident set size now and its peak (VmRSS / VmHWM of /proc/self/status),
 * in MB; 0 when unavailable. */
double ww_proc_rss_mb(void);
double ww_proc_peak_rss_mb(void);

/* CPU time used by the whole process (all threads), in ms. */
double ww_proc_cpu_ms(void);

/* Parses a duration: "90" or "90s", "500ms", "2m", "1h", "1h30m". Returns
 * seconds, or -1 when `text` is not a positive duration. */
double ww_parse_duration(const char *text);

/* Least-squares slope of y over x (0 with fewer than 2 points). */
double ww_linear_slope(const double *x, const double *y, int count);

#endif
