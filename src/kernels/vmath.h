/* Vectorized exp and the activations built on it (sigmoid, SiLU,
 * hard-swish, ReLU, ReLU6) for GCC vector types of 4, 8 and 16 floats,
 * one set of always-inline functions per instruction set so that the
 * kernels' epilogues can call them from their own target:
 *   ww_vm4_*   no target attribute (SSE2 on x86-64, NEON on ARM)
 *   ww_vm8_*   target("avx2,fma")
 *   ww_vm16_*  target("avx512f")
 *
 * exp(x): n = round(x / ln 2), r = x - n ln 2 (Cody-Waite: ln 2 split in a
 * 9-bit high part, so n * high is exact, and a low correction), exp(r) by
 * its Taylor polynomial to degree 7 (|r| <= ln 2 / 2, truncation error
 * < 1e-8 relative), then scaled by 2^n built in the exponent bits. x is
 * clamped to [-87.3, 88.3] so 2^n stays a normal float: exp of very
 * negative x returns ~1e-38 instead of a denormal or 0, exp of very large x
 * returns ~2e38 instead of inf; both are harmless in 1 / (1 + exp(-x)).
 * The AVX2 and AVX-512 sets compute the same with their rounding and
 * scaling instructions (WW_VM_DEFINE_EXP_X86). Measured error against expf: see
 * tests/ops/test_ops_activation.c. */
#ifndef WW_KERNELS_VMATH_H
#define WW_KERNELS_VMATH_H

#include "ops/ops.h"

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

typedef float ww_vm4f __attribute__((vector_size(16)));
typedef int32_t ww_vm4i __attribute__((vector_size(16)));
#if defined(__x86_64__) || defined(__i386__)
typedef float ww_vm8f __attribute__((vector_size(32)));
typedef int32_t ww_vm8i __attribute__((vector_size(32)));
typedef float ww_vm16f __attribute__((vector_size(64)));
typedef int32_t ww_vm16i __attribute__((vector_size(64)));
#endif

/* Vector ?: is C++ only: blend with a comparison mask (all ones = a). */
#define WW_VM_SELECT(F, I, mask, a, b) ((F)(((I)(a) & (mask)) | ((I)(b) & ~(mask))))

/* Defines PREFIX_splat, PREFIX_exp and PREFIX_exp_neg (exp(-x)) for vector
 * type F (int vector I) compiled with TARGET; FMA(a, b, c) is c + a * b.
 * The x86 sets have their own (WW_VM_DEFINE_EXP_X86). */
#define WW_VM_DEFINE_EXP(PREFIX, F, I, TARGET, FMA)                                                \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_splat(float x)          \
    {                                                                                              \
        return (F){0} + x;                                                                         \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_exp(F x)                \
    {                                                                                              \
        const F hi = PREFIX##_splat(88.3f), lo = PREFIX##_splat(-87.3f);                           \
        I above = x > hi, below = x < lo;                                                          \
        x = WW_VM_SELECT(F, I, above, hi, x);                                                      \
        x = WW_VM_SELECT(F, I, below, lo, x);                                                      \
        /* Adding 1.5 * 2^23 rounds to an integer, held in the low mantissa bits. */               \
        const F shifter = PREFIX##_splat(12582912.0f);                                             \
        F t = FMA(x, PREFIX##_splat(1.44269504088896341f), shifter);                               \
        F n = t - shifter;                                                                         \
        F r = FMA(n, PREFIX##_splat(-0.693359375f), x);                                            \
        r = FMA(n, PREFIX##_splat(2.12194440e-4f), r);                                             \
        F p = PREFIX##_splat(1.0f / 5040.0f);                                                      \
        p = FMA(p, r, PREFIX##_splat(1.0f / 720.0f));                                              \
        p = FMA(p, r, PREFIX##_splat(1.0f / 120.0f));                                              \
        p = FMA(p, r, PREFIX##_splat(1.0f / 24.0f));                                               \
        p = FMA(p, r, PREFIX##_splat(1.0f / 6.0f));                                                \
        p = FMA(p, r, PREFIX##_splat(0.5f));                                                       \
        p = FMA(p, r, PREFIX##_splat(1.0f));                                                       \
        p = FMA(p, r, PREFIX##_splat(1.0f));                                                       \
        I scale = ((I)t - (I)PREFIX##_splat(12582912.0f) + 127) << 23;                             \
        return p * (F)scale;                                                                       \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_exp_neg(F x)            \
    {                                                                                              \
        return PREFIX##_exp(-x);                                                                   \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused))                                    \
    F PREFIX##_one_plus_exp_neg_silu(F x)                                                          \
    {                                                                                              \
        return PREFIX##_splat(1.0f) + PREFIX##_exp(-x);                                            \
    }

/* Defines PREFIX_sigmoid, _silu, _relu, _relu6, _hardswish and _activate
 * on top of PREFIX_splat and PREFIX_exp_neg. MAX0(x) and MIN6(x) are
 * max(x, 0) and min(x, 6) for a variable x, with NaN x giving 0 in MAX0:
 * x86's max and min instructions (2 operations for ReLU6 where compare
 * masks took 4) return their second operand when one is NaN, and the
 * portable forms below spell the same with masks. */
#define WW_VM_MAX0_MASK(F, I, x) ((F)((I)(x) & ((x) > (F){0})))
#define WW_VM_DEFINE_ACTIVATIONS(PREFIX, F, I, TARGET, MAX0, MIN6)                                 \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_sigmoid(F x)            \
    {                                                                                              \
        return PREFIX##_splat(1.0f) / (PREFIX##_splat(1.0f) + PREFIX##_exp_neg(x));                \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_silu(F x)               \
    {                                                                                              \
        return x / PREFIX##_one_plus_exp_neg_silu(x);                                              \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_relu(F x)               \
    {                                                                                              \
        return MAX0(x);                                                                            \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_relu6(F x)              \
    {                                                                                              \
        x = PREFIX##_relu(x);                                                                      \
        return MIN6(x);                                                                            \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_hardswish(F x)          \
    {                                                                                              \
        return x * PREFIX##_relu6(x + PREFIX##_splat(3.0f)) / PREFIX##_splat(6.0f);                \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused))                                    \
    F PREFIX##_activate(F x, ww_activation a)                                                      \
    {                                                                                              \
        switch (a) {                                                                               \
        case WW_ACT_RELU: return PREFIX##_relu(x);                                                 \
        case WW_ACT_RELU6: return PREFIX##_relu6(x);                                               \
        case WW_ACT_SIGMOID: return PREFIX##_sigmoid(x);                                           \
        case WW_ACT_SILU: return PREFIX##_silu(x);                                                 \
        case WW_ACT_HARDSWISH: return PREFIX##_hardswish(x);                                       \
        case WW_ACT_NONE: break;                                                                   \
        }                                                                                          \
        return x;                                                                                  \
    }

#define WW_VM_FMA_PLAIN(a, b, c) ((c) + (a) * (b))
WW_VM_DEFINE_EXP(ww_vm4, ww_vm4f, ww_vm4i, , WW_VM_FMA_PLAIN)
#define WW_VM4_MAX0(x) WW_VM_MAX0_MASK(ww_vm4f, ww_vm4i, x)
#define WW_VM4_MIN6(x)                                                                             \
    WW_VM_SELECT(ww_vm4f, ww_vm4i, (x) < ww_vm4_splat(6.0f), (x), ww_vm4_splat(6.0f))
WW_VM_DEFINE_ACTIVATIONS(ww_vm4, ww_vm4f, ww_vm4i, , WW_VM4_MAX0, WW_VM4_MIN6)
#if defined(__x86_64__) || defined(__i386__)
/* x86: exp(s * x), s = +-1, as 2^(s * x * log2 e) = 2^f * 2^n, with the
 * rounding instruction for n (vroundps, vrndscaleps) and, on AVX-512,
 * vscalefps for the scaling: the generic code spells these as compare and
 * blend pairs and integer arithmetic. SiLU per 16 floats on one Zen 5
 * core: AVX2 ~5.2 -> ~4.2 ns, AVX-512 ~2.9 -> ~2.4 ns (every multiply-add,
 * min and max competes for the same two pipes). x is clamped so that
 * s * x lies in [-87.3, 88.3], as in the generic code (finite results;
 * NaN stays NaN: vmaxps/vminps return their second operand, x, when it is
 * NaN). f = s * x * log2 e - n is formed by one FMA from the exact
 * product, plus x times the low part of log2 e, so |f| <= 0.5 to within
 * 1e-9 for |x| <= 88.3; 2^f is a degree-6 polynomial fitted for least
 * maximal relative error on [-0.5, 0.5] (1.9e-9). SCALE(p, n) is p * 2^n,
 * SCALE_PLUS1(p, n) 1 + p * 2^n (plus_one: SiLU's denominator, where AVX2
 * folds the add into the scaling multiply, one operation less; the
 * product by 2^n is exact, so the results do not change: SiLU per 16
 * floats 5.4-5.7 -> 4.9-5.0 ns on this VM, EfficientNet-B0 on AVX2 0.981x).
 * SiLU's exp(-x) takes degree 5 (9e-8, 1.5 ulp; SiLU 2.05 -> 2.88 ulp at
 * most): one multiply-add less, SiLU per 16 floats ~2.35 -> ~2.05 ns on
 * AVX-512, EfficientNet-B0 0.985x the time at 1 thread (SiLU runs on
 * ~6 M values per image there). AVX-512 goes further with a table
 * (ww_vm16_one_plus_exp_neg_silu below).
 * Defines PREFIX_splat, PREFIX_exp, PREFIX_exp_neg and PREFIX_exp_signed. */
#define WW_VM_DEFINE_EXP_X86(PREFIX, F, V, TARGET, SET1, MAX, MIN, MUL, ROUND, FMSUB, FMADD,       \
                             SCALE, SCALE_PLUS1)                                                   \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_splat(float x)          \
    {                                                                                              \
        return (F){0} + x;                                                                         \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused))                                    \
    F PREFIX##_exp_signed(F xv, float s, int degree, int plus_one)                                 \
    {                                                                                              \
        V x = (V)xv;                                                                               \
        x = MAX(SET1(s > 0 ? -87.3f : -88.3f), x);                                                 \
        x = MIN(SET1(s > 0 ? 88.3f : 87.3f), x);                                                   \
        const V log2e = SET1(s * 1.44269504f);                                                     \
        V n = ROUND(MUL(x, log2e));                                                                \
        V f = FMSUB(x, log2e, n);                                                                  \
        f = FMADD(x, SET1(s * 1.925963e-8f), f); /* log2 e - (float)log2 e */                      \
        V p;                                                                                       \
        if (degree == 6) {                                                                         \
            p = FMADD(SET1(1.534581243e-4f), f, SET1(1.339993090e-3f));                            \
            p = FMADD(p, f, SET1(9.618489072e-3f));                                                \
            p = FMADD(p, f, SET1(5.550328642e-2f));                                                \
        } else {                                                                                   \
            p = FMADD(SET1(1.326471916e-3f), f, SET1(9.671513923e-3f));                            \
            p = FMADD(p, f, SET1(5.550733954e-2f));                                                \
        }                                                                                          \
        p = FMADD(p, f, SET1(degree == 6 ? 2.402264625e-1f : 2.402224243e-1f));                    \
        p = FMADD(p, f, SET1(degree == 6 ? 6.931471825e-1f : 6.931470037e-1f));                    \
        p = FMADD(p, f, SET1(1.0f));                                                               \
        return plus_one ? (F)SCALE_PLUS1(p, n) : (F)SCALE(p, n);                                   \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_exp(F x)                \
    {                                                                                              \
        return PREFIX##_exp_signed(x, 1.0f, 6, 0);                                                 \
    }                                                                                              \
    TARGET static inline __attribute__((always_inline, unused)) F PREFIX##_exp_neg(F x)            \
    {                                                                                              \
        return PREFIX##_exp_signed(x, -1.0f, 6, 0);                                                \
    }

#define WW_VM8_TARGET __attribute__((target("avx2,fma")))
#define WW_VM8_ROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
/* n is in [-126, 127] after the clamp: 2^n built in the exponent bits;
 * SCALE_PLUS1 is 1 + p * 2^n in one multiply-add (SiLU's denominator) */
#define WW_VM8_POW2(n)                                                                             \
    _mm256_castsi256_ps(                                                                           \
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define WW_VM8_SCALE(p, n) _mm256_mul_ps((p), WW_VM8_POW2(n))
#define WW_VM8_SCALE_PLUS1(p, n) _mm256_fmadd_ps((p), WW_VM8_POW2(n), _mm256_set1_ps(1.0f))
WW_VM_DEFINE_EXP_X86(ww_vm8, ww_vm8f, __m256, WW_VM8_TARGET, _mm256_set1_ps, _mm256_max_ps,
                     _mm256_min_ps, _mm256_mul_ps, WW_VM8_ROUND, _mm256_fmsub_ps, _mm256_fmadd_ps,
                     WW_VM8_SCALE, WW_VM8_SCALE_PLUS1)
WW_VM8_TARGET static inline __attribute__((always_inline, unused)) ww_vm8f
ww_vm8_one_plus_exp_neg_silu(ww_vm8f x)
{
    return ww_vm8_exp_signed(x, -1.0f, 5, 1);
}
#define WW_VM8_MAX0(x) ((ww_vm8f)_mm256_max_ps((__m256)(x), _mm256_setzero_ps()))
#define WW_VM8_MIN6(x) ((ww_vm8f)_mm256_min_ps((__m256)(x), _mm256_set1_ps(6.0f)))
WW_VM_DEFINE_ACTIVATIONS(ww_vm8, ww_vm8f, ww_vm8i, WW_VM8_TARGET, WW_VM8_MAX0, WW_VM8_MIN6)

#define WW_VM16_TARGET __attribute__((target("avx512f")))
#define WW_VM16_ROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define WW_VM16_SCALE_PLUS1(p, n) _mm512_add_ps(_mm512_scalef_ps((p), (n)), _mm512_set1_ps(1.0f))
WW_VM_DEFINE_EXP_X86(ww_vm16, ww_vm16f, __m512, WW_VM16_TARGET, _mm512_set1_ps, _mm512_max_ps,
                     _mm512_min_ps, _mm512_mul_ps, WW_VM16_ROUND, _mm512_fmsub_ps, _mm512_fmadd_ps,
                     _mm512_scalef_ps, WW_VM16_SCALE_PLUS1)
/* 1 + exp(-x), SiLU's denominator, on AVX-512: exp(-x) = 2^y, y = -x log2 e, split as
 * 2^floor(y) * 2^(j/32) * 2^f with j/32 + floor(y) = y rounded to a
 * multiple of 1/32 and |f| <= 1/64. Adding 1.5 * 2^18 does that rounding
 * and leaves j in the low 5 mantissa bits, which vpermt2ps reads as its
 * index into a 32-entry table of 2^(j/32) held in two registers; 2^f
 * then needs only degree 2 (fitted for least relative error on
 * [-1/64, 1/64]: 5.3e-8), and vscalefps applies 2^floor(y) from y itself
 * to the table entry; the last multiply-add also adds the 1. f is formed
 * from x exactly as in exp_signed (FMA from the exact product plus the low
 * part of log2 e).
 * On this Zen 5 core FMAs, multiplies and vpermt2ps share one pipe (one
 * 512-bit operation per cycle), while adds, min/max, vscalefps and integer
 * operations run beside them; SiLU per 16 floats takes ~2.6 ns where the
 * degree-5 form took ~3.3 (7 operations on the FMA pipe, 2 beside it, the
 * scale and the division, against 8 + 4 + 1). Worst error: 2.9 ulp on
 * tests/ops/test_ops_activation.c's sample of [-30, 30], which allows 4
 * (3.6 on a denser sample). */
WW_VM16_TARGET static inline __attribute__((always_inline, unused)) ww_vm16f
ww_vm16_one_plus_exp_neg_silu(ww_vm16f xv)
{
    const __m512 table_lo =
        _mm512_setr_ps(1.0f, 1.0218972f, 1.04427373f, 1.06714046f, 1.09050775f, 1.1143868f,
                       1.13878858f, 1.1637249f, 1.18920708f, 1.21524739f, 1.24185777f, 1.26905096f,
                       1.29683959f, 1.32523668f, 1.35425556f, 1.38390994f);
    const __m512 table_hi =
        _mm512_setr_ps(1.41421354f, 1.44518077f, 1.47682619f, 1.50916445f, 1.54221082f, 1.5759809f,
                       1.61049032f, 1.64575553f, 1.68179286f, 1.71861935f, 1.75625217f, 1.79470909f,
                       1.8340081f, 1.87416768f, 1.91520655f, 1.95714414f);
    /* Only the top is clamped: past it the rounding below breaks down
     * (|y| >= 2^18), and SiLU must stay x / 1 up to +inf. Below x = -88.3
     * exp(-x) overflows to +inf (vscalefps gives +inf, and 2^f's
     * polynomial 1 + f (c1 + c2 f) is positive for every f, +inf where a
     * huge x leaves f = -inf), and SiLU's x / (1 + inf) is -0 as in the
     * scalar form; x = -inf gives NaN, as x / (1 + expf(-x)) does.
     * Dropping the bottom clamp: SiLU 2.86 -> 2.70 ns per 16 floats. */
    __m512 x = _mm512_min_ps(_mm512_set1_ps(87.3f), (__m512)xv);
    const __m512 neg_log2e = _mm512_set1_ps(-1.44269504f);
    const __m512 shifter = _mm512_set1_ps(393216.0f); /* 1.5 * 2^18: ulp 1/32 */
    __m512 shifted = _mm512_fmadd_ps(x, neg_log2e, shifter);
    __m512 y = _mm512_sub_ps(shifted, shifter);
    __m512 f = _mm512_fmsub_ps(x, neg_log2e, y);
    f = _mm512_fmadd_ps(x, _mm512_set1_ps(-1.925963e-8f), f); /* log2 e - (float)log2 e */
    __m512 t = _mm512_permutex2var_ps(table_lo, _mm512_castps_si512(shifted), table_hi);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0.2402265966f), f, _mm512_set1_ps(0.6931573153f));
    __m512 p = _mm512_fmadd_ps(q, f, one);           /* 2^f */
    __m512 scale = _mm512_scalef_ps(t, y);           /* 2^(j/32) 2^floor(y) */
    return (ww_vm16f)_mm512_fmadd_ps(scale, p, one); /* 1 + 2^y: 2.70 -> 2.62 ns */
}
#define WW_VM16_MAX0(x) ((ww_vm16f)_mm512_max_ps((__m512)(x), _mm512_setzero_ps()))
#define WW_VM16_MIN6(x) ((ww_vm16f)_mm512_min_ps((__m512)(x), _mm512_set1_ps(6.0f)))
WW_VM_DEFINE_ACTIVATIONS(ww_vm16, ww_vm16f, ww_vm16i, WW_VM16_TARGET, WW_VM16_MAX0, WW_VM16_MIN6)
#undef WW_VM8_TARGET
#undef WW_VM8_ROUND
#undef WW_VM8_SCALE
#undef WW_VM8_SCALE_PLUS1
#undef WW_VM8_POW2
#undef WW_VM16_SCALE_PLUS1
#undef WW_VM16_TARGET
#undef WW_VM16_ROUND
#endif

#endif
