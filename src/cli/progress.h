/* A one-line progress bar on stderr (done/total, rate, ETA), drawn only
 * when stderr is a terminal: piped or redirected output stays clean. */
#ifndef WW_CLI_PROGRESS_H
#define WW_CLI_PROGRESS_H

typedef struct ww_progress {
    int enabled;
    char label[64];
    long total;
    double start_ms, last_draw_ms;
} ww_progress;

/* Starts a bar; `total` 0 means unknown. WANWU_PROGRESS=0 disables it,
 * WANWU_PROGRESS=1 forces it even when stderr is not a terminal. */
void ww_progress_start(ww_progress *p, const char *label, long total);
/* Redraws at most 10 times a second (and always at done == total). */
void ww_progress_update(ww_progress *p, long done);
/* Erases the bar. */
void ww_progress_finish(ww_progress *p);

#endif
