/* x[i] = (float)((double)x[i] * scale): folding BatchNorm into conv
 * weights (graph/passes.c), ~11 M products for ResNet-18 at every load.
 * The float -> double conversion is exact and the product is rounded
 * once to double, then once to float, so the vector variants give the
 * same bits as the scalar reference. */
#include "ops/ops.h"

#include <stddef.h>

void ww_scale_f64_ref(size_t n, float *x, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)x[i] * scale);
}

#define SCALE_F64_FN(name, target, lanes)                                                          \
    target static void name(size_t n, float *x, double scale)                                      \
    {                                                                                              \
        typedef float vf __attribute__((vector_size(lanes * 4), aligned(4)));                      \
        typedef double vd __attribute__((vector_size(lanes * 8)));                                 \
        size_t i = 0;                                                                              \
        for (; i + lanes <= n; i += lanes) {                                                       \
            vd d = __builtin_convertvector(*(const vf *)(x + i), vd) * scale;                      \
            *(vf *)(x + i) = __builtin_convertvector(d, vf);                                       \
        }                                                                                          \
        ww_scale_f64_ref(n - i, x + i, scale);                                                     \
    }

SCALE_F64_FN(scale_f64_portable, , 4)
#if defined(__x86_64__) || defined(__i386__)
SCALE_F64_FN(scale_f64_avx2, __attribute__((target("avx2"))), 4)
SCALE_F64_FN(scale_f64_avx512, __attribute__((target("avx512f"))), 8)
#endif

void ww_scale_f64_isa(ww_isa isa, size_t n, float *x, double scale)
{
    if (isa == WW_ISA_AUTO) isa = ww_isa_best();
    if (!ww_isa_supported(isa)) isa = WW_ISA_PORTABLE;
    switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    case WW_ISA_AVX512: scale_f64_avx512(n, x, scale); return;
    case WW_ISA_AVX2: scale_f64_avx2(n, x, scale); return;
#endif
    default: scale_f64_portable(n, x, scale); return;
    }
}

void ww_scale_f64(size_t n, float *x, double scale)
{
    ww_scale_f64_isa(WW_ISA_AUTO, n, x, scale);
}
