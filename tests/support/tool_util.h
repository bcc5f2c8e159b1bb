/* Helpers shared by the micro-benchmark tools (tool_*.c under tests/; not
 * tests): a monotonic clock, a deterministic fill and the ISA argument. Header-only, since
 * the tools link only the library. */
#ifndef WW_TEST_TOOL_UTIL_H
#define WW_TEST_TOOL_UTIL_H

#include "ops/ops.h"

#include <stddef.h>
#include <string.h>
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

/* "avx512", "avx2" or "portable" (NULL or anything else: the best). */
static inline ww_isa ww_tool_parse_isa(const char *name)
{
    if (name && strcmp(name, "avx512") == 0) return WW_ISA_AVX512;
    if (name && strcmp(name, "avx2") == 0) return WW_ISA_AVX2;
    if (name && strcmp(name, "portable") == 0) return WW_ISA_PORTABLE;
    return WW_ISA_AUTO;
}

#endif
