/* Max pooling, global average pooling, linear and add kernels match their
 * references on random shapes with 1, 2 and 3 threads. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "ops/ops.h"
#include "test_support.h"

#include <math.h>
#include <stdlib.h>

#define TOLERANCE 1e-4


static float *random_floats(ww_rng *rng, size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    ww_rng_fill(rng, x, n, lo, hi);
    return x;
}

static void check_maxpool(const ww_pool2d_shape *s, uint64_t seed)
{
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    size_t in_n = (size_t)s->channels * s->in_h * s->in_w;
    size_t out_n = (size_t)s->channels * s->out_h * s->out_w;
    float *in = random_floats(&rng, in_n, -3, -1); /* all negative: padding must not win */
    float *want = malloc(out_n * sizeof *want), *got = malloc(out_n * sizeof *got);
    ww_maxpool2d_ref(s, in, want);
    for (int threads = 1; threads <= 3; threads++) {
        for (size_t i = 0; i < out_n; i++)
            got[i] = NAN;
        ww_maxpool2d(s, in, got, ww_test_pools[threads]);
        double diff = ww_max_rel_diff(got, want, out_n);
        if (!(diff <= 0.0))
            fail_msg("maxpool c %d in %dx%d k %dx%d s %dx%d pad %d %d %d %d, %d threads: %g",
                     s->channels, s->in_h, s->in_w, s->kernel_h, s->kernel_w, s->stride_h,
                     s->stride_w, s->pad_top, s->pad_left, s->pad_bottom, s->pad_right, threads,
                     diff);
    }
    free(in);
    free(want);
    free(got);
}

static void test_maxpool(void **state)
{
    (void)state;
    /* ResNet's pool on an odd input, and a 1x1 input. */
    ww_pool2d_shape resnet = {3, 17, 17, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1};
    check_maxpool(&resnet, 1);
    ww_pool2d_shape tiny = {5, 1, 1, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1};
    check_maxpool(&tiny, 2);
    ww_rng rng;
    ww_rng_seed(&rng, 31337);
    for (int iter = 0; iter < 200;) {
        ww_pool2d_shape s;
        s.channels = ww_rng_int(&rng, 1, 7);
        s.in_h = ww_rng_int(&rng, 1, 20);
        s.in_w = ww_rng_int(&rng, 1, 20);
        s.kernel_h = ww_rng_int(&rng, 1, 5);
        s.kernel_w = ww_rng_int(&rng, 1, 5);
        s.stride_h = ww_rng_int(&rng, 1, 3);
        s.stride_w = ww_rng_int(&rng, 1, 3);
        /* PyTorch allows padding up to half the kernel, asymmetric here. */
        s.pad_top = ww_rng_int(&rng, 0, s.kernel_h / 2);
        s.pad_bottom = ww_rng_int(&rng, 0, s.kernel_h / 2);
        s.pad_left = ww_rng_int(&rng, 0, s.kernel_w / 2);
        s.pad_right = ww_rng_int(&rng, 0, s.kernel_w / 2);
        s.out_h = ww_window_out_dim(s.in_h, s.kernel_h, s.stride_h, s.pad_top, s.pad_bottom, 1);
        s.out_w = ww_window_out_dim(s.in_w, s.kernel_w, s.stride_w, s.pad_left, s.pad_right, 1);
        if (s.out_h <= 0 || s.out_w <= 0) continue;
        check_maxpool(&s, 100 + (uint64_t)iter);
        iter++;
    }
}

static void test_global_avgpool(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {3, 7}, {512, 49}, {33, 1}, {7, 3136}, {1280, 9}};
    ww_rng rng;
    ww_rng_seed(&rng, 5);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int c = shapes[i][0], hw = shapes[i][1];
        float *in = random_floats(&rng, (size_t)c * hw, -1, 1);
        float *want = malloc((size_t)c * sizeof *want), *got = malloc((size_t)c * sizeof *got);
        ww_global_avgpool_ref(c, hw, in, want);
        for (int threads = 1; threads <= 3; threads++) {
            ww_global_avgpool(c, hw, in, got, ww_test_pools[threads]);
            assert_true(ww_max_rel_diff(got, want, (size_t)c) <= TOLERANCE);
        }
        free(in);
        free(want);
        free(got);
    }
}

static void test_linear(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1},   {3, 5},      {15, 7},   {16, 16},
                                    {17, 33}, {512, 1000}, {1280, 10}};
    ww_rng rng;
    ww_rng_seed(&rng, 6);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int nin = shapes[i][0], nout = shapes[i][1];
        float *in = random_floats(&rng, (size_t)nin, -1, 1);
        float *w = random_floats(&rng, (size_t)nin * nout, -1, 1);
        float *b = random_floats(&rng, (size_t)nout, -1, 1);
        float *want = malloc((size_t)nout * sizeof *want);
        float *got = malloc((size_t)nout * sizeof *got);
        for (int variant = 0; variant < 6; variant++) {
            ww_activation act = (ww_activation)(variant % 3);
            const float *bias = variant < 3 ? b : NULL;
            ww_linear_ref(nin, nout, in, w, bias, act, want);
            for (int threads = 1; threads <= 3; threads++) {
                ww_linear(nin, nout, in, w, bias, act, got, ww_test_pools[threads]);
                double diff = ww_max_rel_diff(got, want, (size_t)nout);
                if (!(diff <= TOLERANCE)) fail_msg("linear %d -> %d: %g", nin, nout, diff);
            }
        }
        free(in);
        free(w);
        free(b);
        free(want);
        free(got);
    }
}

static void test_add(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 3, 4, 5, 4095, 4096, 4097, 3 * 4096 + 7, 64 * 56 * 56};
    ww_rng rng;
    ww_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        float *a = random_floats(&rng, n, -8, 8), *b = random_floats(&rng, n, -8, 8);
        float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
        for (int act = 0; act < 3; act++) {
            ww_add_ref(n, a, b, (ww_activation)act, want);
            for (int threads = 1; threads <= 3; threads++) {
                ww_add(n, a, b, (ww_activation)act, got, ww_test_pools[threads]);
                assert_true(ww_max_rel_diff(got, want, n) <= 0.0);
            }
        }
        /* In place into a. */
        ww_add_ref(n, a, b, WW_ACT_RELU, want);
        ww_add(n, a, b, WW_ACT_RELU, a, ww_test_pools[2]);
        assert_true(ww_max_rel_diff(a, want, n) <= 0.0);
        free(a);
        free(b);
        free(want);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_add),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
