/* Winograd F(2x2, 3x3) and F(4x4, 3x3) (kernels/winograd.h) against the reference
 * convolution: random 3x3 stride-1 shapes including odd sizes, 1x1 and
 * 2x2 spatial extents, padding 0, 1 and 2 (also asymmetric), odd channel
 * counts, bias/residual/activation epilogues, every instruction set the
 * CPU runs and 1-3 threads; and that ww_conv2d picks it for ResNet's 3x3
 * layers. Buffers are exact-size so the sanitizer build catches overruns. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "kernels/winograd.h"
#include "ops/ops.h"
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Half the 1e-4 the optimized kernels are held to; F(2x2, 3x3) stays at
 * ~1e-5 up to 512 channels. */
#define TOLERANCE 5e-5

/* F(4x4, 3x3) rounds ~5x more than F(2x2, 3x3) (larger transform
 * coefficients): with these tests' uniform [-1, 1] weights (outputs ~8-15
 * rms, not BN-scaled) its error is judged against the output's scale,
 * max |got - expect| / (1 + max |expect|); a wrong coefficient or a
 * misplaced tile gives errors of the order of the output itself. */
#define TOLERANCE4 2e-5

static double max_scaled_diff(const float *got, const float *expect, size_t n)
{
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)expect[i]);
        if (!(d <= worst)) worst = d; /* NaN propagates as worst */
        if (fabs((double)expect[i]) > scale) scale = fabs((double)expect[i]);
    }
    return worst / (1.0 + scale);
}

/* 1 when got is within the tolerance of the tile size; *diff gets the
 * difference measured that tile size's way. */
static int close_enough(int tile, const float *got, const float *expect, size_t n, double *diff)
{
    *diff = tile == 2 ? ww_max_rel_diff(got, expect, n) : max_scaled_diff(got, expect, n);
    return *diff <= (tile == 2 ? TOLERANCE : TOLERANCE4);
}

/* Checks one shape with F(2x2, 3x3) and F(4x4, 3x3) on every ISA and
 * thread count, directly through the Winograd kernel. Returns the worst
 * difference seen (F(2x2): relative, F(4x4): scaled, see TOLERANCE4). */
static double check_shape(int in_c, int in_h, int in_w, int out_c, int pt, int pl, int pb, int pr,
                          int has_bias, int has_residual, ww_activation act, uint64_t seed)
{
    ww_conv2d_shape s = {.in_c = in_c,
                         .in_h = in_h,
                         .in_w = in_w,
                         .out_c = out_c,
                         .kernel_h = 3,
                         .kernel_w = 3,
                         .stride_h = 1,
                         .stride_w = 1,
                         .pad_top = pt,
                         .pad_left = pl,
                         .pad_bottom = pb,
                         .pad_right = pr,
                         .dilation_h = 1,
                         .dilation_w = 1,
                         .groups = 1};
    s.out_h = ww_window_out_dim(in_h, 3, 1, pt, pb, 1);
    s.out_w = ww_window_out_dim(in_w, 3, 1, pl, pr, 1);
    if (s.out_h < 1 || s.out_w < 1) return 0.0;
    assert_true(ww_winograd_suits(&s));
    size_t in_n = (size_t)in_c * in_h * in_w, out_n = (size_t)out_c * s.out_h * s.out_w;
    size_t w_n = (size_t)out_c * in_c * 9;
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    float *in = malloc(in_n * sizeof *in), *weight = malloc(w_n * sizeof *weight);
    float *bias = has_bias ? malloc((size_t)out_c * sizeof *bias) : NULL;
    float *residual = has_residual ? malloc(out_n * sizeof *residual) : NULL;
    float *expect = malloc(out_n * sizeof *expect), *got = malloc(out_n * sizeof *got);
    assert_true(in && weight && expect && got);
    ww_rng_fill(&rng, in, in_n, -1.0f, 1.0f);
    ww_rng_fill(&rng, weight, w_n, -1.0f, 1.0f);
    if (bias) ww_rng_fill(&rng, bias, (size_t)out_c, -1.0f, 1.0f);
    if (residual) ww_rng_fill(&rng, residual, out_n, -2.0f, 2.0f);
    ww_conv2d_ref(&s, in, weight, bias, residual, act, expect);
    double worst = 0.0;
    for (int tile = 2; tile <= 4; tile += 2) {
        for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
            if (!ww_isa_supported(isa)) continue;
            ww_winograd *w = ww_winograd_create_tiled(&s, weight, ww_gemm_kernel_for(isa), tile);
            assert_non_null(w);
            assert_int_equal(ww_winograd_tile(w), tile);
            for (int threads = 1; threads <= 3; threads++) {
                size_t scratch_n = ww_winograd_scratch_floats(w, threads);
                float *scratch = malloc(scratch_n * sizeof *scratch);
                assert_non_null(scratch);
                /* NaN everywhere: a run that read scratch it had not
                 * written would carry it into the output */
                for (size_t i = 0; i < scratch_n; i++)
                    scratch[i] = NAN;
                for (size_t i = 0; i < out_n; i++)
                    got[i] = 12345.0f; /* every output must be written */
                ww_winograd_run(w, in, bias, residual, act, got, scratch, ww_test_pools[threads]);
                double diff;
                if (!close_enough(tile, got, expect, out_n, &diff))
                    fail_msg("in %dx%dx%d out_c %d pad t%d l%d b%d r%d bias %d res %d act %d "
                             "[F(%dx%d), %s, %d threads]: max diff %g",
                             in_c, in_h, in_w, out_c, pt, pl, pb, pr, has_bias, has_residual,
                             (int)act, tile, tile, ww_isa_name(isa), threads, diff);
                if (getenv("WG_TEST_VERBOSE"))
                    printf("F%d %dx%dx%d->%d %s t%d: %g\n", tile, in_c, in_h, in_w, out_c,
                           ww_isa_name(isa), threads, diff);
                if (diff > worst) worst = diff;
                free(scratch);
            }
            ww_winograd_free(w);
        }
    }
    free(in);
    free(weight);
    free(bias);
    free(residual);
    free(expect);
    free(got);
    return worst;
}

static void test_edge_shapes(void **state)
{
    (void)state;
    /* 1x1 and 2x2 spatial, odd sizes, pad 0/1/2 and asymmetric, odd channels. */
    check_shape(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, WW_ACT_NONE, 1);
    check_shape(3, 1, 1, 5, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 2);
    check_shape(2, 2, 2, 3, 1, 1, 1, 1, 1, 0, WW_ACT_NONE, 3);
    check_shape(5, 3, 3, 7, 0, 0, 0, 0, 1, 1, WW_ACT_RELU6, 4);
    check_shape(7, 5, 9, 9, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 5);
    check_shape(17, 7, 7, 33, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 6);
    check_shape(16, 13, 11, 17, 0, 1, 2, 0, 0, 1, WW_ACT_NONE, 7);
    check_shape(31, 6, 6, 65, 2, 2, 2, 2, 1, 0, WW_ACT_RELU, 8);
    check_shape(64, 14, 14, 64, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 9);
    check_shape(33, 9, 40, 20, 1, 0, 1, 2, 1, 1, WW_ACT_RELU6, 10);
    check_shape(300, 4, 5, 40, 1, 1, 1, 1, 1, 0, WW_ACT_NONE, 11); /* C > KC: K blocks */
    check_shape(8, 37, 3, 12, 1, 1, 0, 0, 0, 0, WW_ACT_NONE, 12);
    /* the exp-based epilogues, with and without residual, on a vector tail */
    check_shape(16, 9, 7, 19, 1, 1, 1, 1, 1, 1, WW_ACT_SILU, 13);
    check_shape(17, 6, 5, 33, 1, 1, 1, 1, 1, 0, WW_ACT_SIGMOID, 14);
    check_shape(16, 5, 8, 16, 1, 1, 1, 1, 0, 1, WW_ACT_HARDSWISH, 15);
    /* K a multiple of 16 with whole 4-wide tiles: AVX-512's F(4x4) output
     * transform for them (rows cut at the bottom, every fused epilogue;
     * the 11-wide map also has cut tiles at the right) */
    check_shape(24, 12, 16, 32, 1, 1, 1, 1, 1, 1, WW_ACT_RELU6, 16);
    check_shape(20, 9, 11, 48, 1, 1, 1, 1, 1, 0, WW_ACT_RELU6, 17);
    check_shape(8, 10, 12, 16, 1, 1, 1, 1, 0, 1, WW_ACT_RELU, 18);
    check_shape(12, 7, 8, 64, 0, 1, 1, 1, 1, 1, WW_ACT_NONE, 19);
}

/* Every map from 1x1 to 9x9 (F(4x4) tiles cut at every offset), odd and
 * vector-unaligned channel counts, varying padding and epilogues. */
static void test_small_maps(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 77);
    for (int h = 1; h <= 9; h++)
        for (int w = 1; w <= 9; w++) {
            int in_c = 2 * ww_rng_int(&rng, 0, 20) + 1, out_c = ww_rng_int(&rng, 1, 40);
            int pad = ww_rng_int(&rng, 0, 2);
            ww_activation act = (ww_activation)ww_rng_int(&rng, 0, WW_ACT_HARDSWISH);
            check_shape(in_c, h, w, out_c, pad, pad, ww_rng_int(&rng, 0, 2), pad,
                        ww_rng_int(&rng, 0, 1), ww_rng_int(&rng, 0, 1), act,
                        2000 + (uint64_t)(h * 10 + w));
        }
}

static void test_random_shapes(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 4242);
    double worst = 0.0;
    for (int i = 0; i < 40; i++) {
        int in_c = ww_rng_int(&rng, 1, 70), out_c = ww_rng_int(&rng, 1, 70);
        int h = ww_rng_int(&rng, 1, 20), w = ww_rng_int(&rng, 1, 20);
        int pt = ww_rng_int(&rng, 0, 2), pl = ww_rng_int(&rng, 0, 2);
        int pb = ww_rng_int(&rng, 0, 2), pr = ww_rng_int(&rng, 0, 2);
        ww_activation act = (ww_activation)ww_rng_int(&rng, 0, WW_ACT_HARDSWISH);
        double d = check_shape(in_c, h, w, out_c, pt, pl, pb, pr, ww_rng_int(&rng, 0, 1),
                               ww_rng_int(&rng, 0, 1), act, 1000 + (uint64_t)i);
        if (d > worst) worst = d;
    }
    printf("worst relative difference: %g\n", worst);
}

/* The run splits the tiles into per-thread ranges of whole MR panels and
 * those into L2-sized blocks of up to 8192 / (C + K) tiles (fused) unless
 * the weights outweigh V and M (C * K >= T * (C + K): one block, threads
 * share each step). Blocks end mid tile row and span several tile rows,
 * the last one stops short of its last panel; the few-tile wide layers
 * take the unfused path; activations without a vector form go through the
 * scalar finish. */
static void test_blocks(void **state)
{
    (void)state;
    /* fused, several blocks per thread, ragged ends (T = 31 * 34, 35 * 35, 29 * 30) */
    check_shape(3, 61, 67, 5, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 60);
    check_shape(8, 70, 70, 8, 1, 1, 1, 1, 0, 1, WW_ACT_NONE, 61);
    check_shape(37, 58, 60, 19, 1, 1, 1, 1, 1, 1, WW_ACT_RELU6, 62);
    check_shape(64, 57, 55, 72, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 63);
    /* fewer tiles than MR and than threads */
    check_shape(2, 3, 3, 3, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 64);
    check_shape(4, 5, 3, 4, 1, 1, 1, 1, 1, 0, WW_ACT_NONE, 65);
    /* unfused: C * K >= T * (C + K), odd K */
    check_shape(40, 5, 9, 41, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 66);
    check_shape(96, 8, 8, 33, 1, 1, 1, 1, 1, 1, WW_ACT_RELU6, 67);
    check_shape(130, 7, 7, 130, 1, 1, 1, 1, 0, 1, WW_ACT_NONE, 68);
    /* activations finished in scalar code */
    check_shape(9, 20, 21, 11, 1, 1, 1, 1, 1, 1, WW_ACT_SILU, 69);
    check_shape(40, 5, 9, 41, 1, 1, 1, 1, 1, 0, WW_ACT_HARDSWISH, 70);
    check_shape(16, 33, 31, 17, 0, 2, 1, 0, 0, 1, WW_ACT_SIGMOID, 71);
}

/* 1 when the default instruction set's kernel transforms this shape's
 * weights per run (pad 1 on every side, so out = in). */
static int lazy_for(int in_c, int hw_h, int hw_w, int out_c)
{
    ww_conv2d_shape s = ww_test_conv3x3_same(in_c, hw_h, hw_w, out_c, 1);
    float *weight = calloc((size_t)in_c * out_c * 9, sizeof *weight);
    assert_non_null(weight);
    ww_winograd *w = ww_winograd_create(&s, weight, ww_gemm_kernel_for(WW_ISA_AUTO));
    assert_non_null(w);
    int lazy = ww_winograd_transforms_weights_per_run(w);
    ww_winograd_free(w);
    free(weight);
    return lazy;
}

/* Weight-dominated layers (C * K >= 2 * T * (C + K)) keep raw weights and
 * transform U per column panel and KC block on every run: K not a multiple
 * of NR (partial last panel, K < NR), C not a multiple of the vector width
 * and above KC (several K blocks), fewer panels than threads, every
 * epilogue. ResNet-18's 14x14 layer3 is lazy since it keeps the model
 * under its RSS budget; its 28x28 layer2 and larger maps keep stored U. */
static void test_lazy_weights(void **state)
{
    (void)state;
    assert_true(lazy_for(512, 7, 7, 512));
    assert_true(lazy_for(130, 7, 7, 130));
    assert_true(lazy_for(70, 3, 3, 45));
    assert_true(lazy_for(513, 1, 1, 20));
    assert_true(lazy_for(64, 4, 4, 100));
    assert_true(lazy_for(256, 14, 14, 256));
    assert_false(lazy_for(128, 28, 28, 128));
    assert_false(lazy_for(256, 14, 14, 100)); /* 25600 < 2 * 49 * 356 */
    assert_false(lazy_for(40, 5, 9, 41));
    check_shape(70, 3, 3, 45, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 80);
    check_shape(300, 2, 3, 37, 1, 0, 1, 2, 1, 1, WW_ACT_RELU6, 81); /* T = 2, C > KC */
    check_shape(513, 1, 1, 20, 1, 1, 1, 1, 0, 1, WW_ACT_SILU, 82);  /* one partial panel */
    check_shape(64, 4, 4, 100, 1, 1, 1, 1, 1, 0, WW_ACT_HARDSWISH, 83);
    check_shape(131, 7, 7, 129, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 84);
    check_shape(512, 7, 7, 512, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 85);
    check_shape(200, 5, 6, 97, 1, 1, 1, 1, 1, 1, WW_ACT_SIGMOID, 86);
    check_shape(256, 14, 14, 256, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 87);
}

/* Scratch sized for 3 threads serves pools of 1 and 2 threads too (fewer
 * threads take bigger blocks); exact-size scratch, so the sanitizer build
 * catches an overrun. */
static void test_scratch_for_more_threads(void **state)
{
    (void)state;
    static const int shapes[][4] = {
        {4, 16, 10, 4}, {3, 9, 50, 5}, {64, 20, 20, 64}, {40, 5, 9, 41}, {130, 7, 7, 130}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        ww_conv2d_shape s =
            ww_test_conv3x3_same(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], 1);
        size_t in_n = (size_t)s.in_c * s.in_h * s.in_w, out_n = (size_t)s.out_c * s.out_h * s.out_w;
        size_t w_n = (size_t)s.out_c * s.in_c * 9;
        float *in = malloc(in_n * sizeof *in), *weight = malloc(w_n * sizeof *weight);
        float *expect = malloc(out_n * sizeof *expect), *got = malloc(out_n * sizeof *got);
        assert_true(in && weight && expect && got);
        ww_rng rng;
        ww_rng_seed(&rng, 90 + i);
        ww_rng_fill(&rng, in, in_n, -1.0f, 1.0f);
        ww_rng_fill(&rng, weight, w_n, -1.0f, 1.0f);
        ww_conv2d_ref(&s, in, weight, NULL, NULL, WW_ACT_RELU, expect);
        for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
            if (!ww_isa_supported(isa)) continue;
            ww_winograd *w = ww_winograd_create(&s, weight, ww_gemm_kernel_for(isa));
            assert_non_null(w);
            float *scratch = malloc(ww_winograd_scratch_floats(w, 3) * sizeof *scratch);
            assert_non_null(scratch);
            for (int threads = 1; threads <= 2; threads++) {
                ww_winograd_run(w, in, NULL, NULL, WW_ACT_RELU, got, scratch,
                                ww_test_pools[threads]);
                double diff;
                if (!close_enough(ww_winograd_tile(w), got, expect, out_n, &diff))
                    fail_msg("shape %zu [F(%d), %s, %d threads]: max diff %g", i,
                             ww_winograd_tile(w), ww_isa_name(isa), threads, diff);
            }
            free(scratch);
            ww_winograd_free(w);
        }
        free(in);
        free(weight);
        free(expect);
        free(got);
    }
}

/* ResNet-18's 3x3 stride-1 layers go through Winograd inside ww_conv2d and
 * agree with the reference (residual + ReLU as in a basic block). */
static void test_resnet_layers_via_conv2d(void **state)
{
    (void)state;
    static const int layers[][2] = {{64, 56}, {128, 28}, {256, 14}, {512, 7}};
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int c = layers[l][0], hw = layers[l][1];
        double d = check_shape(c, hw, hw, c, 1, 1, 1, 1, 1, 1, WW_ACT_RELU, 50 + l);
        printf("%dx%dx%d: worst relative difference %g\n", c, hw, hw, d);
    }
    /* ww_conv2d uses it (scratch sized like Winograd's, bigger than im2col's panels). */
    ww_conv2d_shape s = ww_test_conv3x3_same(64, 56, 56, 64, 1);
    float *weight = calloc((size_t)64 * 64 * 9, sizeof *weight);
    assert_non_null(weight);
    ww_conv2d *conv = NULL;
    wanwu_error err;
    assert_int_equal(ww_conv2d_create(&s, weight, NULL, WW_ACT_NONE, &conv, &err), WANWU_OK);
    ww_winograd *w = ww_winograd_create(&s, weight, ww_gemm_kernel_for(WW_ISA_AUTO));
    assert_non_null(w);
    assert_int_equal(ww_conv2d_scratch_floats(conv, 2), ww_winograd_scratch_floats(w, 2));
    ww_winograd_free(w);
    /* F(4x4, 3x3) for the 56x56, 28x28 and (weights per run) 14x14 layers, F(2x2, 3x3) at 7x7 */
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int c = layers[l][0], hw = layers[l][1];
        ww_conv2d_shape ls = ww_test_conv3x3_same(c, hw, hw, c, 1);
        float *lw = calloc((size_t)c * c * 9, sizeof *lw);
        assert_non_null(lw);
        ww_winograd *lwg = ww_winograd_create(&ls, lw, ww_gemm_kernel_for(WW_ISA_AUTO));
        assert_non_null(lwg);
        assert_int_equal(ww_winograd_tile(lwg), hw >= 14 ? 4 : 2);
        ww_winograd_free(lwg);
        free(lw);
    }
    ww_conv2d_free(conv);
    free(weight);
}

static void test_suits(void **state)
{
    (void)state;
    ww_conv2d_shape s = ww_test_conv3x3_same(8, 8, 8, 8, 1);
    assert_true(ww_winograd_suits(&s));
    ww_conv2d_shape t = s;
    t.stride_h = t.stride_w = 2;
    assert_false(ww_winograd_suits(&t));
    t = s;
    t.groups = 8;
    assert_false(ww_winograd_suits(&t));
    t = s;
    t.dilation_h = 2;
    assert_false(ww_winograd_suits(&t));
    t = s;
    t.kernel_h = t.kernel_w = 1;
    assert_false(ww_winograd_suits(&t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suits),
        cmocka_unit_test(test_edge_shapes),
        cmocka_unit_test(test_small_maps),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_lazy_weights),
        cmocka_unit_test(test_scratch_for_more_threads),
        cmocka_unit_test(test_resnet_layers_via_conv2d),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
