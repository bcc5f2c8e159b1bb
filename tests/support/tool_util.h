/* Helpers shared by the micro-benchmark tools (tool_*.c under tests/; not
 * tests): a monotonic clock and a deterministic fill. Header-only, since
 * the tools link only the library. */
#ifndef WW_TEST_TOOL_UTIL_H
#define WW_TEST_TOOL_UTIL_H

#include <stddef.h>
#include <time.h>

static inline double ww_tool_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Values in [-0.5, 0.5) from a linear congruential sequence. */
static inline void ww_tool_fill(float *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
}

#endif
