/* The reference operators against small hand-computed cases, so that a bug
 * shared by a reference and its optimized twin is still caught; plus the
 * window formula and shape validation. */
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
#include <string.h>

static void assert_floats(const float *got, const float *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol))
            fail_msg("element %d: got %.7g, want %.7g", i, got[i], want[i]);
}

static void test_window_out_dim(void **state)
{
    (void)state;
    assert_int_equal(ww_window_out_dim(224, 7, 2, 3, 3, 1), 112); /* ResNet stem */
    assert_int_equal(ww_window_out_dim(112, 3, 2, 1, 1, 1), 56);  /* ResNet max pool */
    assert_int_equal(ww_window_out_dim(56, 1, 2, 0, 0, 1), 28);   /* downsample */
    assert_int_equal(ww_window_out_dim(7, 1, 2, 0, 0, 1), 4);
    assert_int_equal(ww_window_out_dim(5, 3, 1, 0, 0, 2), 1);  /* dilated span 5 */
    assert_int_equal(ww_window_out_dim(10, 3, 3, 2, 0, 1), 4); /* asymmetric: (10+2-3)/3+1 */
    assert_int_equal(ww_window_out_dim(1, 3, 1, 1, 1, 1), 1);
    assert_true(ww_window_out_dim(4, 3, 1, 0, 0, 2) <= 0); /* window wider than input */
    assert_true(ww_window_out_dim(2, 3, 1, 0, 0, 1) <= 0);
    assert_true(ww_window_out_dim(5, 3, 0, 0, 0, 1) <= 0); /* nonsense arguments */
    assert_true(ww_window_out_dim(5, 0, 1, 0, 0, 1) <= 0);
    assert_true(ww_window_out_dim(5, 3, 1, -1, 0, 1) <= 0);
    assert_true(ww_window_out_dim(2000000000, 3, 1, 2000000000, 2000000000, 1) <= 0);
}

static ww_conv2d_shape resnet_stem(void)
{
    return (ww_conv2d_shape){.in_c = 3,
                             .in_h = 224,
                             .in_w = 224,
                             .out_c = 64,
                             .out_h = 112,
                             .out_w = 112,
                             .kernel_h = 7,
                             .kernel_w = 7,
                             .stride_h = 2,
                             .stride_w = 2,
                             .pad_top = 3,
                             .pad_left = 3,
                             .pad_bottom = 3,
                             .pad_right = 3,
                             .dilation_h = 1,
                             .dilation_w = 1,
                             .groups = 1};
}

static void expect_rejected(const ww_conv2d_shape *s, const char *word)
{
    wanwu_error err = {0};
    assert_int_equal(ww_conv2d_shape_check(s, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_int_equal(err.status, WANWU_ERR_INVALID_ARGUMENT);
    if (!strstr(err.message, word)) fail_msg("message \"%s\" lacks \"%s\"", err.message, word);
}

static void test_shape_check(void **state)
{
    (void)state;
    ww_conv2d_shape good = resnet_stem();
    assert_int_equal(ww_conv2d_shape_check(&good, NULL), WANWU_OK);
    ww_conv2d_shape dw = ww_test_conv3x3_same(32, 112, 112, 32, 32);
    assert_int_equal(ww_conv2d_shape_check(&dw, NULL), WANWU_OK);

    ww_conv2d_shape s = good;
    s.out_h = 111;
    expect_rejected(&s, "window formula");
    s = good;
    s.out_w = 113;
    expect_rejected(&s, "112");
    s = good;
    s.in_c = 0;
    expect_rejected(&s, "positive");
    s = good;
    s.stride_w = 0;
    expect_rejected(&s, "stride");
    s = good;
    s.dilation_h = 0;
    expect_rejected(&s, "dilation");
    s = good;
    s.pad_left = -1;
    expect_rejected(&s, "padding");
    s = good;
    s.groups = 2; /* does not divide in_c = 3 */
    expect_rejected(&s, "groups");
    s = dw;
    s.out_c = 48; /* 32 groups do not divide 48 */
    expect_rejected(&s, "groups");
    s = good;
    s.groups = 0;
    expect_rejected(&s, "groups");
    s = good;
    s.kernel_h = 0;
    expect_rejected(&s, "kernel");
    s = good;
    s.in_h = 4; /* a 7-row kernel fits 4 rows only thanks to the padding */
    s.out_h = ww_window_out_dim(4, 7, 2, 3, 3, 1);
    assert_int_equal(ww_conv2d_shape_check(&s, NULL), WANWU_OK);
    s.pad_top = s.pad_bottom = 0; /* now it does not */
    expect_rejected(&s, "does not fit");
    assert_int_equal(ww_conv2d_shape_check(NULL, NULL), WANWU_ERR_INVALID_ARGUMENT);

    /* Absurd sizes (a corrupt model file) are refused before any arithmetic overflows. */
    wanwu_error err = {0};
    s = good;
    s.stride_w = 1 << 30;
    s.out_w = ww_window_out_dim(s.in_w, s.kernel_w, s.stride_w, s.pad_left, s.pad_right, 1);
    assert_int_equal(ww_conv2d_shape_check(&s, &err), WANWU_ERR_LIMIT);
    s = good;
    s.in_c = 1 << 20;
    s.in_h = s.in_w = 1 << 10;
    s.out_h = s.out_w = ww_window_out_dim(1 << 10, 7, 2, 3, 3, 1);
    assert_int_equal(ww_conv2d_shape_check(&s, &err), WANWU_ERR_LIMIT);
    assert_non_null(strstr(err.message, "too large"));
}

static ww_conv2d_shape simple_shape(int in_c, int h, int w, int out_c, int k, int stride, int pad,
                                    int dilation, int groups)
{
    ww_conv2d_shape s = {.in_c = in_c,
                         .in_h = h,
                         .in_w = w,
                         .out_c = out_c,
                         .kernel_h = k,
                         .kernel_w = k,
                         .stride_h = stride,
                         .stride_w = stride,
                         .pad_top = pad,
                         .pad_left = pad,
                         .pad_bottom = pad,
                         .pad_right = pad,
                         .dilation_h = dilation,
                         .dilation_w = dilation,
                         .groups = groups};
    s.out_h = ww_window_out_dim(h, k, stride, pad, pad, dilation);
    s.out_w = ww_window_out_dim(w, k, stride, pad, pad, dilation);
    return s;
}

static void test_conv2d_ref(void **state)
{
    (void)state;
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* 1 x 3 x 3 */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float out[9];

    /* 2x2 box sum, no padding. */
    ww_conv2d_shape s = simple_shape(1, 3, 3, 1, 2, 1, 0, 1, 1);
    ww_conv2d_ref(&s, x, ones, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){12, 16, 24, 28}, 4, 0);

    /* 3x3 box sum with zero padding: corners see 4 cells, centre all 9. */
    s = simple_shape(1, 3, 3, 1, 3, 1, 1, 1, 1);
    ww_conv2d_ref(&s, x, ones, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){12, 21, 16, 27, 45, 33, 24, 39, 28}, 9, 0);

    /* Stride 2 with padding picks the corners' windows. Bias -20 and a
     * residual of 1, then ReLU: the residual is added before the ReLU. */
    s = simple_shape(1, 3, 3, 1, 3, 2, 1, 1, 1);
    const float bias[1] = {-20};
    const float residual[4] = {1, 1, 1, 1};
    ww_conv2d_ref(&s, x, ones, bias, residual, WW_ACT_RELU, out);
    assert_floats(out, (const float[]){0, 0, 5, 9}, 4, 0); /* 12 16 24 28 - 19 */

    /* ReLU6 clamps; asymmetric weights show the kernel is not flipped. */
    const float corner[4] = {1, 0, 0, 0}; /* picks the top-left tap */
    s = simple_shape(1, 3, 3, 1, 2, 1, 0, 1, 1);
    ww_conv2d_ref(&s, x, corner, NULL, NULL, WW_ACT_RELU6, out);
    assert_floats(out, (const float[]){1, 2, 4, 5}, 4, 0);
    const float big[4] = {0, 0, 0, 1}; /* bottom-right tap */
    ww_conv2d_ref(&s, x, big, NULL, NULL, WW_ACT_RELU6, out);
    assert_floats(out, (const float[]){5, 6, 6, 6}, 4, 0);

    /* Dilation 2 on 5x5: a 3x3 kernel touches rows/cols 0, 2, 4. */
    float x5[25];
    for (int i = 0; i < 25; i++)
        x5[i] = (float)i;
    s = simple_shape(1, 5, 5, 1, 3, 1, 0, 2, 1);
    assert_int_equal(s.out_h, 1);
    ww_conv2d_ref(&s, x5, ones, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24}, 1, 0);

    /* Two input channels, two output channels, 1x1. */
    const float x2[2] = {3, 5};             /* 2 x 1 x 1 */
    const float w_full[4] = {1, 2, -1, 10}; /* out0 = 3 + 10, out1 = -3 + 50 */
    s = simple_shape(2, 1, 1, 2, 1, 1, 0, 1, 1);
    ww_conv2d_ref(&s, x2, w_full, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){13, 47}, 2, 0);
    /* Same with groups = 2: each output sees only its own channel. */
    const float w_grouped[2] = {2, -3};
    s = simple_shape(2, 1, 1, 2, 1, 1, 0, 1, 2);
    ww_conv2d_ref(&s, x2, w_grouped, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){6, -15}, 2, 0);
    /* Depthwise multiplier 2: outputs 0,1 read channel 0, outputs 2,3 channel 1. */
    const float w_mult[4] = {1, 2, 3, 4};
    s = simple_shape(2, 1, 1, 4, 1, 1, 0, 1, 2);
    ww_conv2d_ref(&s, x2, w_mult, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){3, 6, 15, 20}, 4, 0);

    /* Asymmetric padding: pad only the left by 1 on a 1x3 row, kernel 1x2. */
    ww_conv2d_shape a = {.in_c = 1,
                         .in_h = 1,
                         .in_w = 3,
                         .out_c = 1,
                         .out_h = 1,
                         .out_w = 3,
                         .kernel_h = 1,
                         .kernel_w = 2,
                         .stride_h = 1,
                         .stride_w = 1,
                         .pad_left = 1,
                         .dilation_h = 1,
                         .dilation_w = 1,
                         .groups = 1};
    const float w12[2] = {1, 10};
    ww_conv2d_ref(&a, x, w12, NULL, NULL, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){10, 21, 32}, 3, 0);
}

static void test_maxpool2d_ref(void **state)
{
    (void)state;
    /* All values negative: padded cells must be ignored, not read as 0. */
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = -(float)(16 - i); /* -16 .. -1 */
    ww_pool2d_shape s = {.channels = 1,
                         .in_h = 4,
                         .in_w = 4,
                         .out_h = 2,
                         .out_w = 2,
                         .kernel_h = 3,
                         .kernel_w = 3,
                         .stride_h = 2,
                         .stride_w = 2,
                         .pad_top = 1,
                         .pad_left = 1,
                         .pad_bottom = 1,
                         .pad_right = 1};
    float out[4];
    ww_maxpool2d_ref(&s, x, out);
    /* Windows: rows -1..1 x cols -1..1 -> max at (1,1) = -11; (1,3) = -9;
     * (3,1) = -3; (3,3) = -1. */
    assert_floats(out, (const float[]){-11, -9, -3, -1}, 4, 0);

    /* 2x2 stride 2 without padding on two channels. */
    const float y[8] = {1, 5, 2, 0, /* channel 0: 2x2 */ -1, -2, -3, -4};
    ww_pool2d_shape t = {.channels = 2,
                         .in_h = 2,
                         .in_w = 2,
                         .out_h = 1,
                         .out_w = 1,
                         .kernel_h = 2,
                         .kernel_w = 2,
                         .stride_h = 2,
                         .stride_w = 2};
    ww_maxpool2d_ref(&t, y, out);
    assert_floats(out, (const float[]){5, -1}, 2, 0);
}

static void test_small_refs(void **state)
{
    (void)state;
    float out[8];
    const float x[6] = {1, 2, 3, 4, -5, 7};
    ww_global_avgpool_ref(2, 3, x, out);
    assert_floats(out, (const float[]){2, 2}, 2, 1e-6);

    /* out = W x + b with W 2x3. */
    const float w[6] = {1, 0, -1, 2, 2, 2};
    const float b[2] = {0.5f, -20};
    ww_linear_ref(3, 2, x, w, b, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){1 - 3 + 0.5f, 12 - 20}, 2, 1e-6);
    ww_linear_ref(3, 2, x, w, b, WW_ACT_RELU, out);
    assert_floats(out, (const float[]){0, 0}, 2, 0);
    ww_linear_ref(3, 2, x, w, NULL, WW_ACT_RELU6, out);
    assert_floats(out, (const float[]){0, 6}, 2, 0);

    const float a[4] = {1, -2, 3, 4};
    const float c[4] = {0.5f, 1, 4, -10};
    ww_add_ref(4, a, c, WW_ACT_NONE, out);
    assert_floats(out, (const float[]){1.5f, -1, 7, -6}, 4, 0);
    ww_add_ref(4, a, c, WW_ACT_RELU6, out);
    assert_floats(out, (const float[]){1.5f, 0, 6, 0}, 4, 0);

    float act[5] = {-1, 0, 3, 6.5f, 100};
    ww_activation_ref(5, act, WW_ACT_RELU6, out);
    assert_floats(out, (const float[]){0, 0, 3, 6, 6}, 5, 0);
    ww_activation_ref(5, act, WW_ACT_RELU, act); /* in place */
    assert_floats(act, (const float[]){0, 0, 3, 6.5f, 100}, 5, 0);

    /* channel 0: (x - 1) / sqrt(4) * 3 + 1; channel 1: (x + 2) / sqrt(0.25) * -1 + 0 */
    const float bn_in[4] = {1, 5, -2, 0};
    const float gamma[2] = {3, -1}, beta[2] = {1, 0}, mean[2] = {1, -2}, var[2] = {4, 0.25f};
    ww_batchnorm_ref(2, 2, bn_in, gamma, beta, mean, var, 0.0f, out);
    assert_floats(out, (const float[]){1, 7, 0, -4}, 4, 1e-6);
    ww_batchnorm_ref(2, 2, bn_in, gamma, beta, mean, var, 5.0f, out); /* eps matters */
    assert_floats(out, (const float[]){1, 1 + 4 * 3 / 3.0f, 0, -2 / sqrtf(5.25f)}, 4, 1e-6);

    const float logits[3] = {0, logf(2), logf(5)};
    ww_softmax_ref(3, logits, out);
    assert_floats(out, (const float[]){0.125f, 0.25f, 0.625f}, 3, 1e-6);
    const float huge[2] = {1000, 1000}; /* exp would overflow without the shift */
    ww_softmax_ref(2, huge, out);
    assert_floats(out, (const float[]){0.5f, 0.5f}, 2, 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_out_dim), cmocka_unit_test(test_shape_check),
        cmocka_unit_test(test_conv2d_ref),     cmocka_unit_test(test_maxpool2d_ref),
        cmocka_unit_test(test_small_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
