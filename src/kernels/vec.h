/* Portable 4-lane float vectors (GCC vector extensions) for the simple
 * memory-bound kernels; SSE2 on x86-64, NEON on ARM. */
#ifndef WW_KERNELS_VEC_H
#define WW_KERNELS_VEC_H

#include <stdint.h>

typedef float ww_f4 __attribute__((vector_size(16)));
typedef float ww_f4u __attribute__((vector_size(16), aligned(4))); /* unaligned access */
typedef int32_t ww_i4 __attribute__((vector_size(16)));

#define WW_F4_SPLAT(x) ((ww_f4){(x), (x), (x), (x)})
#define WW_F4_LOAD(p) (*(const ww_f4u *)(p))
#define WW_F4_STORE(p, v) (*(ww_f4u *)(p) = (v))
#define WW_F4_SUM(v) ((v)[0] + (v)[1] + (v)[2] + (v)[3])

/* max(v, 0) and min(max(v, 0), 6) via comparison masks (vector ?: is C++ only). */
#define WW_F4_RELU(v) ((ww_f4)((ww_i4)(v) & ((v) > (ww_f4){0})))
#define WW_F4_MIN6(v)                                                                              \
    ((ww_f4)(((ww_i4)(v) & ((v) < WW_F4_SPLAT(6.0f))) |                                            \
             ((ww_i4)WW_F4_SPLAT(6.0f) & ~((v) < WW_F4_SPLAT(6.0f)))))

#endif
