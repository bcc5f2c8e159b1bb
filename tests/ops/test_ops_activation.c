/* The vectorized exp (kernels/vmath.h) against libm over the whole float
 * range, and the element-wise kernels (activation, add, binary ops, SE
 * channel scale) against their references for every instruction set the
 * CPU has, on sizes around the vector and block widths, 1-3 threads. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "kernels/vmath.h"
#include "ops/ops.h"
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- exp, sigmoid, SiLU against double-precision libm -------------------- */

typedef void (*vec_fn)(const float *in, float *out); /* one vector of floats */

typedef float vm4u __attribute__((vector_size(16), aligned(4)));
static void exp_portable(const float *in, float *out)
{
    *(vm4u *)out = ww_vm4_exp(*(const vm4u *)in);
}
static void sigmoid_portable(const float *in, float *out)
{
    *(vm4u *)out = ww_vm4_sigmoid(*(const vm4u *)in);
}
static void silu_portable(const float *in, float *out)
{
    *(vm4u *)out = ww_vm4_silu(*(const vm4u *)in);
}
#if defined(__x86_64__) || defined(__i386__)
typedef float vm8u __attribute__((vector_size(32), aligned(4)));
typedef float vm16u __attribute__((vector_size(64), aligned(4)));
__attribute__((target("avx2,fma"))) static void exp_avx2(const float *in, float *out)
{
    *(vm8u *)out = ww_vm8_exp(*(const vm8u *)in);
}
__attribute__((target("avx2,fma"))) static void sigmoid_avx2(const float *in, float *out)
{
    *(vm8u *)out = ww_vm8_sigmoid(*(const vm8u *)in);
}
__attribute__((target("avx2,fma"))) static void silu_avx2(const float *in, float *out)
{
    *(vm8u *)out = ww_vm8_silu(*(const vm8u *)in);
}
__attribute__((target("avx512f"))) static void exp_avx512(const float *in, float *out)
{
    *(vm16u *)out = ww_vm16_exp(*(const vm16u *)in);
}
__attribute__((target("avx512f"))) static void sigmoid_avx512(const float *in, float *out)
{
    *(vm16u *)out = ww_vm16_sigmoid(*(const vm16u *)in);
}
__attribute__((target("avx512f"))) static void silu_avx512(const float *in, float *out)
{
    *(vm16u *)out = ww_vm16_silu(*(const vm16u *)in);
}
#endif

typedef struct vm_variant {
    ww_isa isa;
    int lanes;
    vec_fn exp, sigmoid, silu;
} vm_variant;

static const vm_variant variants[] = {
    {WW_ISA_PORTABLE, 4, exp_portable, sigmoid_portable, silu_portable},
#if defined(__x86_64__) || defined(__i386__)
    {WW_ISA_AVX2, 8, exp_avx2, sigmoid_avx2, silu_avx2},
    {WW_ISA_AVX512, 16, exp_avx512, sigmoid_avx512, silu_avx512},
#endif
};

/* Distance in units of the last place of the float nearest to `exact`. */
static double ulps(float got, double exact)
{
    float e = (float)exact;
    double ulp = nextafterf(fabsf(e), INFINITY) - fabsf(e);
    return fabs((double)got - exact) / ulp;
}

/* Applies fn to n inputs (a multiple of no particular size). */
static void apply(vec_fn fn, int lanes, const float *in, size_t n, float *out)
{
    float a[16], b[16];
    for (size_t i = 0; i < n; i += (size_t)lanes) {
        size_t m = n - i < (size_t)lanes ? n - i : (size_t)lanes;
        for (int l = 0; l < lanes; l++)
            a[l] = l < (int)m ? in[i + l] : 0.0f;
        fn(a, b);
        memcpy(out + i, b, m * sizeof *b);
    }
}

static void test_exp_accuracy(void **state)
{
    (void)state;
    /* Evenly spaced float magnitudes (every ~7500th float) up to 88.3, both
     * signs down to -87.3, plus inputs that exercise the clamps and NaN. */
    size_t cap = 300000, n = 0;
    float *x = malloc(cap * sizeof *x), *got = malloc(cap * sizeof *got);
    assert_non_null(x);
    assert_non_null(got);
    float top = 88.3f;
    uint32_t top_bits;
    memcpy(&top_bits, &top, sizeof top_bits);
    uint32_t step = top_bits / (uint32_t)(cap / 2 - 1);
    for (uint32_t bits = 0; bits <= top_bits && n + 2 <= cap; bits += step) {
        float v;
        memcpy(&v, &bits, sizeof v);
        x[n++] = v;
        if (v <= 87.3f) x[n++] = -v;
    }
    double libm_worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double u = ulps(expf(x[i]), exp((double)x[i]));
        if (u > libm_worst) libm_worst = u;
    }
    for (size_t k = 0; k < sizeof variants / sizeof variants[0]; k++) {
        const vm_variant *v = &variants[k];
        if (!ww_isa_supported(v->isa)) continue;
        apply(v->exp, v->lanes, x, n, got);
        double worst = 0.0, sig_worst = 0.0, silu_worst = 0.0;
        float worst_at = 0.0f;
        for (size_t i = 0; i < n; i++) {
            double u = ulps(got[i], exp((double)x[i]));
            if (u > worst) {
                worst = u;
                worst_at = x[i];
            }
        }
        /* Sigmoid and SiLU only matter on [-30, 30] (beyond it they are 0/1
         * or x to float precision): absolute error of sigmoid, relative
         * error of SiLU in ulps of the exact value. */
        float *sx = malloc(n * sizeof *sx), *sg = malloc(n * sizeof *sg);
        float *sl = malloc(n * sizeof *sl);
        assert_non_null(sx);
        assert_non_null(sg);
        assert_non_null(sl);
        for (size_t i = 0; i < n; i++)
            sx[i] = x[i] * (30.0f / 88.3f);
        apply(v->sigmoid, v->lanes, sx, n, sg);
        apply(v->silu, v->lanes, sx, n, sl);
        double silu_ref_worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            double xd = sx[i], s = 1.0 / (1.0 + exp(-xd));
            double d = fabs(sg[i] - s);
            if (d > sig_worst) sig_worst = d;
            if (xd != 0.0) {
                double u = ulps(sl[i], xd * s);
                if (u > silu_worst) silu_worst = u;
                u = ulps(ww_activate(sx[i], WW_ACT_SILU), xd * s);
                if (u > silu_ref_worst) silu_ref_worst = u;
            }
        }
        printf("[%s] exp: max %.2f ulp (at %g; libm expf %.2f ulp), sigmoid: max abs error %.3g, "
               "silu: max %.2f ulp (reference %.2f ulp)\n",
               ww_isa_name(v->isa), worst, worst_at, libm_worst, sig_worst, silu_worst,
               silu_ref_worst);
        assert_true(worst <= 2.0);
        assert_true(sig_worst <= 1e-7);
        assert_true(silu_worst <= 4.0);
        free(sx);
        free(sg);
        free(sl);

        /* Clamped and special inputs: finite, no NaN, right magnitude. */
        float special[16] = {-1e30f, -1e4f, -200.0f,   -88.0f,   -87.4f, 88.4f, 89.0f,  200.0f,
                             1e4f,   1e30f, -INFINITY, INFINITY, 0.0f,   -0.0f, 1e-30f, -1e-30f};
        float out[16];
        apply(v->exp, v->lanes, special, 16, out);
        for (int i = 0; i < 16; i++) {
            assert_true(isfinite(out[i]));
            if (special[i] < -80.0f) assert_true(out[i] >= 0.0f && out[i] < 1e-34f);
            if (special[i] > 80.0f) assert_true(out[i] > 1e34f);
            if (fabsf(special[i]) < 1.0f) assert_true(out[i] == 1.0f);
        }
        apply(v->sigmoid, v->lanes, special, 16, out);
        for (int i = 0; i < 16; i++) {
            assert_true(out[i] >= 0.0f && out[i] <= 1.0f);
            if (special[i] < -80.0f) assert_true(out[i] < 1e-34f);
            if (special[i] > 80.0f) assert_true(out[i] == 1.0f);
        }
        apply(v->silu, v->lanes, special, 16, out);
        for (int i = 0; i < 16; i++) {
            if (special[i] > 80.0f) assert_true(out[i] == special[i]);
            /* x / ~2e38 (exp clamped): 0 to within 1e-8 even for x = -1e30 */
            if (special[i] < -80.0f && isfinite(special[i]))
                assert_true(out[i] <= 0.0f && out[i] > -1e-8f);
        }
        /* NaN in, NaN out. */
        float nan_in[16], nan_out[16];
        for (int i = 0; i < 16; i++)
            nan_in[i] = NAN;
        apply(v->exp, v->lanes, nan_in, 16, nan_out);
        for (int i = 0; i < 16; i++)
            assert_true(isnan(nan_out[i]));
    }
    free(x);
    free(got);
}

/* ---- element-wise kernels against their references ----------------------- */

static const size_t sizes[] = {1, 3, 4, 5, 15, 16, 17, 31, 33, 4095, 4096, 4097, 3 * 4096 + 7};

static float *random_floats(ww_rng *rng, size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    ww_rng_fill(rng, x, n, lo, hi);
    return x;
}

/* The exp-based activations differ from libm's by a few ulp; the rest
 * must match exactly. */
static double act_tolerance(ww_activation act)
{
    return act == WW_ACT_SIGMOID || act == WW_ACT_SILU ? 1e-6 : 0.0;
}

static void test_activate_array(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 101);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        float *in = random_floats(&rng, n, -12, 12);
        in[0] = n > 1 ? -100.0f : in[0]; /* one deep in the saturated range */
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        float *inplace = malloc(n * sizeof *inplace);
        for (int act = WW_ACT_NONE; act <= WW_ACT_HARDSWISH; act++) {
            ww_activation_ref(n, in, (ww_activation)act, want);
            for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
                if (!ww_isa_supported(isa)) continue;
                for (int threads = 1; threads <= 3; threads++) {
                    for (size_t k = 0; k < n; k++)
                        got[k] = NAN;
                    ww_activate_array_isa(isa, n, in, (ww_activation)act, got,
                                          ww_test_pools[threads]);
                    double d = ww_max_rel_diff(got, want, n);
                    if (!(d <= act_tolerance((ww_activation)act)))
                        fail_msg("activation %d n %zu [%s, %d threads]: %g", act, n,
                                 ww_isa_name(isa), threads, d);
                }
                memcpy(inplace, in, n * sizeof *in);
                ww_activate_array_isa(isa, n, inplace, (ww_activation)act, inplace,
                                      ww_test_pools[2]);
                assert_true(ww_max_rel_diff(inplace, want, n) <= act_tolerance((ww_activation)act));
            }
        }
        free(in);
        free(want);
        free(got);
        free(inplace);
    }
}

static void test_add_all_activations(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 102);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        float *a = random_floats(&rng, n, -8, 8), *b = random_floats(&rng, n, -8, 8);
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        for (int act = WW_ACT_NONE; act <= WW_ACT_HARDSWISH; act++) {
            ww_add_ref(n, a, b, (ww_activation)act, want);
            for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
                if (!ww_isa_supported(isa)) continue;
                for (int threads = 1; threads <= 3; threads++) {
                    for (size_t k = 0; k < n; k++)
                        got[k] = NAN;
                    ww_add_isa(isa, n, a, b, (ww_activation)act, got, ww_test_pools[threads]);
                    double d = ww_max_rel_diff(got, want, n);
                    if (!(d <= act_tolerance((ww_activation)act)))
                        fail_msg("add act %d n %zu [%s, %d threads]: %g", act, n, ww_isa_name(isa),
                                 threads, d);
                }
            }
        }
        free(a);
        free(b);
        free(want);
        free(got);
    }
}

static void test_eltwise_and_mul_channel(void **state)
{
    (void)state;
    /* channels x hw: SE on 1x1 and 7x7 maps, odd sizes, block-crossing ones */
    static const int shapes[][2] = {
        {1, 1},    {5, 1},    {3, 7}, {16, 49}, {17, 3}, {1, 4097}, {96, 112 * 112 / 4},
        {33, 196}, {1152, 49}};
    ww_rng rng;
    ww_rng_seed(&rng, 103);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int c = shapes[i][0], hw = shapes[i][1];
        size_t n = (size_t)c * hw;
        float *a = random_floats(&rng, n, -4, 4), *full = random_floats(&rng, n, 0.5f, 4);
        float *per_channel = random_floats(&rng, (size_t)c, 0.5f, 4);
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
            if (!ww_isa_supported(isa)) continue;
            for (int threads = 1; threads <= 3; threads++) {
                ww_threadpool *pool = ww_test_pools[threads];
                ww_mul_channel_ref(c, hw, a, per_channel, want);
                ww_mul_channel_isa(isa, c, hw, a, per_channel, got, pool);
                if (!(ww_max_rel_diff(got, want, n) <= 0.0))
                    fail_msg("mul_channel %d x %d [%s, %d threads]", c, hw, ww_isa_name(isa),
                             threads);
                for (int op = WW_ELT_ADD; op <= WW_ELT_DIV; op++)
                    for (int swap = 0; swap <= 1; swap++)
                        for (int kind = 0; kind < 3; kind++) {
                            const float *b = kind == 0 ? full : per_channel;
                            size_t b_count = kind == 0 ? n : (kind == 1 ? (size_t)c : 1);
                            /* a swapped divisor must not be 0: a stays away from it */
                            ww_eltwise_ref(n, hw, a, b, b_count, (ww_eltwise_op)op, swap, want);
                            for (size_t k = 0; k < n; k++)
                                got[k] = NAN;
                            ww_eltwise_isa(isa, n, hw, a, b, b_count, (ww_eltwise_op)op, swap, got,
                                           pool);
                            if (!(ww_max_rel_diff(got, want, n) <= 0.0))
                                fail_msg("eltwise op %d swap %d b_count %zu, %d x %d [%s, %d "
                                         "threads]",
                                         op, swap, b_count, c, hw, ww_isa_name(isa), threads);
                        }
            }
        }
        free(a);
        free(full);
        free(per_channel);
        free(want);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_activate_array),
        cmocka_unit_test(test_add_all_activations),
        cmocka_unit_test(test_eltwise_and_mul_channel),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
