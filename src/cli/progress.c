#include "cli/progress.h"

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BAR_WIDTH = 30 };

void ww_progress_start(ww_progress *p, const char *label, long total)
{
    memset(p, 0, sizeof *p);
    const char *force = getenv("WANWU_PROGRESS");
    if (force && strcmp(force, "0") == 0)
        p->enabled = 0;
    else if (force && strcmp(force, "1") == 0)
        p->enabled = 1;
    else
        p->enabled = isatty(STDERR_FILENO);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->start_ms = ww_cli_now_ms();
    p->last_draw_ms = -1e9;
}

static void format_seconds(double s, char *buf, size_t size)
{
    if (s < 0 || s > 1e7) {
        snprintf(buf, size, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

void ww_progress_update(ww_progress *p, long done)
{
    if (!p->enabled) return;
    double now = ww_cli_now_ms();
    if (now - p->last_draw_ms < 100 && done != p->total) return;
    p->last_draw_ms = now;
    double elapsed_s = (now - p->start_ms) / 1000.0;
    double rate = elapsed_s > 0 ? done / elapsed_s : 0;
    char bar[BAR_WIDTH + 1], eta[32];
    int filled = p->total > 0 ? (int)((double)done / (double)p->total * BAR_WIDTH) : 0;
    if (filled > BAR_WIDTH) filled = BAR_WIDTH;
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    format_seconds(rate > 0 && p->total > 0 ? (double)(p->total - done) / rate : -1, eta,
                   sizeof eta);
    if (p->total > 0)
        fprintf(stderr, "\r\033[K%s [%s] %ld/%ld  %.1f/s  ETA %s", p->label, bar, done, p->total,
                rate, eta);
    else
        fprintf(stderr, "\r\033[K%s %ld  %.1f/s", p->label, done, rate);
    fflush(stderr);
}

void ww_progress_finish(ww_progress *p)
{
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
