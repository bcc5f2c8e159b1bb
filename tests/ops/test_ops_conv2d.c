/* The optimized convolution matches ww_conv2d_ref on edge shapes and many
 * random ones, for every instruction set the CPU has and 1, 2, 3 threads. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOLERANCE 1e-4

typedef struct conv_case {
    int in_c, in_h, in_w, out_c;
    int kh, kw, sh, sw;
    int pt, pl, pb, pr;
    int dh, dw;
    int groups;
    int has_bias, has_residual;
    ww_activation act;
} conv_case;

static ww_conv2d_shape shape_of(const conv_case *c)
{
    ww_conv2d_shape s = {.in_c = c->in_c,
                         .in_h = c->in_h,
                         .in_w = c->in_w,
                         .out_c = c->out_c,
                         .kernel_h = c->kh,
                         .kernel_w = c->kw,
                         .stride_h = c->sh,
                         .stride_w = c->sw,
                         .pad_top = c->pt,
                         .pad_left = c->pl,
                         .pad_bottom = c->pb,
                         .pad_right = c->pr,
                         .dilation_h = c->dh,
                         .dilation_w = c->dw,
                         .groups = c->groups};
    s.out_h = ww_window_out_dim(c->in_h, c->kh, c->sh, c->pt, c->pb, c->dh);
    s.out_w = ww_window_out_dim(c->in_w, c->kw, c->sw, c->pl, c->pr, c->dw);
    return s;
}

static void describe(const conv_case *c, char *buf, size_t size)
{
    snprintf(buf, size,
             "in %dx%dx%d out_c %d k %dx%d s %dx%d pad t%d l%d b%d r%d dil %dx%d g %d bias %d "
             "res %d act %d",
             c->in_c, c->in_h, c->in_w, c->out_c, c->kh, c->kw, c->sh, c->sw, c->pt, c->pl, c->pb,
             c->pr, c->dh, c->dw, c->groups, c->has_bias, c->has_residual, (int)c->act);
}

/* One run of `conv`: ww_conv2d_run_means with means, ww_conv2d_run_scaled
 * with in_scale, else ww_conv2d_run. */
typedef struct conv_run_args {
    const ww_conv2d *conv;
    const float *in, *in_scale, *residual;
    float *got, *means, *scratch;
    ww_threadpool *pool;
} conv_run_args;

static void run_conv_once(const conv_run_args *a)
{
    if (a->means)
        ww_conv2d_run_means(a->conv, a->in, a->residual, a->got, a->means, a->scratch, a->pool);
    else if (a->in_scale)
        ww_conv2d_run_scaled(a->conv, a->in, a->in_scale, a->residual, a->got, a->scratch, a->pool);
    else
        ww_conv2d_run(a->conv, a->in, a->residual, a->got, a->scratch, a->pool);
}

/* A job of the pool the conv runs on: the conv's own parallel_for then
 * finds the pool busy and runs every slot on this one thread, in one call
 * (so a kernel's per-thread state walks all the thread shares, e.g. the
 * depthwise kernel's units across its row bands). */
static void run_conv_nested(void *p, int begin, int end)
{
    (void)end;
    if (begin == 0) run_conv_once(p);
}

/* Runs `conv` with 1, 2 and 3 threads, and once more sized for 2 threads
 * but run on one (run_conv_nested), against `expect` (out_n floats; `got`
 * is their buffer, set to NaN first so unwritten outputs fail); returns
 * the number of runs. */
/* With expect_means (one per output channel), the runs are
 * ww_conv2d_run_means and their means are checked too. */
static int check_runs_scaled(const ww_conv2d *conv, const float *in, const float *in_scale,
                             const float *residual, const float *expect, const float *expect_means,
                             float *got, size_t out_n, const char *what, ww_isa isa)
{
    int runs = 0;
    int channels = ww_conv2d_get_shape(conv)->out_c;
    float *means = expect_means ? malloc((size_t)channels * sizeof *means) : NULL;
    for (int variant = 1; variant <= 4; variant++) {
        int nested = variant == 4, threads = nested ? 2 : variant;
        size_t scratch_n = ww_conv2d_scratch_floats(conv, threads);
        float *scratch = scratch_n ? malloc(scratch_n * sizeof *scratch) : NULL;
        for (size_t i = 0; i < out_n; i++)
            got[i] = NAN;
        if (means)
            for (int i = 0; i < channels; i++)
                means[i] = NAN;
        conv_run_args args = {.conv = conv,
                              .in = in,
                              .in_scale = in_scale,
                              .residual = residual,
                              .got = got,
                              .means = means,
                              .scratch = scratch,
                              .pool = ww_test_pools[threads]};
        if (nested)
            ww_parallel_for(args.pool, 2, run_conv_nested, &args);
        else
            run_conv_once(&args);
        double mean_diff = means ? ww_max_rel_diff(means, expect_means, (size_t)channels) : 0;
        double diff = ww_max_rel_diff(got, expect, out_n);
        if (!(diff <= TOLERANCE) || !(mean_diff <= TOLERANCE))
            fail_msg("%s [%s, %d threads%s]: max rel diff %g, of the means %g", what,
                     ww_isa_name(isa), threads, nested ? ", run on one" : "", diff, mean_diff);
        free(scratch);
        runs++;
    }
    free(means);
    return runs;
}

static int check_runs(const ww_conv2d *conv, const float *in, const float *residual,
                      const float *expect, float *got, size_t out_n, const char *what, ww_isa isa)
{
    return check_runs_scaled(conv, in, NULL, residual, expect, NULL, got, out_n, what, isa);
}

/* Runs one case through every ISA x thread count; returns the number of
 * optimized runs compared. Buffers are allocated to the exact size so that
 * the sanitizer build catches any read or write past them. With
 * `in_scale`, the conv scales its input per channel (ww_conv2d_run_scaled)
 * by values in [0, 1] (a sigmoid's), the reference scales it first. With
 * `means`, the runs also compute the output's channel means
 * (ww_conv2d_run_means), checked against the reference's. */
/* With dw_link DW_BEFORE, the conv is told that its input comes from a
 * 3x3 depthwise conv of its input's shape (ww_conv2d_set_input_producer);
 * on AVX-512 its 2- and 3-thread runs then split K where that conv splits
 * its channels. With DW_AFTER, that a 3x3 depthwise conv of its output's
 * shape reads its output (ww_conv2d_set_output_consumer): the runs split
 * M that way. *splits counts the thread counts that split. */
/* With SIDE_FETCH (not a depthwise link), the conv fetches a side stream
 * of `side_bytes` while it runs (ww_conv2d_set_side_fetch): the results
 * must not change. */
enum { DW_NONE, DW_BEFORE, DW_AFTER, SIDE_FETCH };
static size_t side_bytes;
static int check_case_after(const conv_case *c, int in_scale, int means, int dw_link, int *splits,
                            uint64_t seed)
{
    ww_conv2d_shape s = shape_of(c);
    char what[256];
    describe(c, what, sizeof what);
    wanwu_error err = {0};
    if (ww_conv2d_shape_check(&s, &err) != WANWU_OK) fail_msg("%s: %s", what, err.message);

    size_t in_n = (size_t)s.in_c * s.in_h * s.in_w;
    size_t out_n = (size_t)s.out_c * s.out_h * s.out_w;
    size_t w_n = (size_t)s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    float *in = malloc(in_n * sizeof *in);
    float *weight = malloc(w_n * sizeof *weight);
    float *bias = c->has_bias ? malloc((size_t)s.out_c * sizeof *bias) : NULL;
    float *residual = c->has_residual ? malloc(out_n * sizeof *residual) : NULL;
    float *expect = malloc(out_n * sizeof *expect);
    float *got = malloc(out_n * sizeof *got);
    assert_non_null(in);
    assert_non_null(weight);
    assert_non_null(expect);
    assert_non_null(got);
    ww_rng_fill(&rng, in, in_n, -1.0f, 1.0f);
    ww_rng_fill(&rng, weight, w_n, -1.0f, 1.0f);
    if (bias) ww_rng_fill(&rng, bias, (size_t)s.out_c, -1.0f, 1.0f);
    if (residual) ww_rng_fill(&rng, residual, out_n, -2.0f, 2.0f);
    float *scale = NULL, *scaled_in = NULL;
    if (in_scale) {
        scale = malloc((size_t)s.in_c * sizeof *scale);
        scaled_in = malloc(in_n * sizeof *scaled_in);
        assert_true(scale && scaled_in);
        ww_rng_fill(&rng, scale, (size_t)s.in_c, 0.0f, 1.0f);
        ww_mul_channel_ref(s.in_c, s.in_h * s.in_w, in, scale, scaled_in);
    }
    ww_conv2d_ref(&s, in_scale ? scaled_in : in, weight, bias, residual, c->act, expect);
    float *expect_means = means ? malloc((size_t)s.out_c * sizeof *expect_means) : NULL;
    if (expect_means) ww_global_avgpool_ref(s.out_c, s.out_h * s.out_w, expect, expect_means);

    int runs = 0;
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        ww_conv2d *conv = NULL, *dw = NULL;
        if (ww_conv2d_create_isa(&s, weight, bias, c->act, isa, &conv, &err) != WANWU_OK)
            fail_msg("%s [%s]: %s", what, ww_isa_name(isa), err.message);
        float *side = NULL;
        if (dw_link == SIDE_FETCH) {
            /* odd start and length: the fetch rounds to whole lines */
            side = malloc(side_bytes + 64);
            assert_non_null(side);
            /* a first stream, replaced by the one the runs fetch */
            int taken = ww_conv2d_set_side_fetch(conv, side, 64);
            taken += ww_conv2d_set_side_fetch(conv, (const char *)side + 20, side_bytes);
            assert_int_equal(taken, strcmp(ww_conv2d_algorithm(conv), "gemm_1x1") == 0 &&
                                            s.out_h * s.out_w > 1
                                        ? 2
                                        : 0);
        } else if (dw_link != DW_NONE) {
            int dc = dw_link == DW_BEFORE ? s.in_c : s.out_c;
            int dh = dw_link == DW_BEFORE ? s.in_h : s.out_h;
            int dwid = dw_link == DW_BEFORE ? s.in_w : s.out_w;
            ww_conv2d_shape ds = ww_test_conv3x3_same(dc, dh, dwid, dc, dc);
            float *dw_weight = calloc((size_t)dc * 9, sizeof *dw_weight);
            assert_non_null(dw_weight);
            if (ww_conv2d_create_isa(&ds, dw_weight, NULL, WW_ACT_NONE, isa, &dw, &err) != WANWU_OK)
                fail_msg("%s [%s] depthwise: %s", what, ww_isa_name(isa), err.message);
            free(dw_weight);
            if (dw_link == DW_BEFORE)
                ww_conv2d_set_input_producer(conv, dw);
            else
                ww_conv2d_set_output_consumer(conv, dw);
            for (int threads = 2; threads <= 3; threads++)
                *splits += dw_link == DW_BEFORE ? ww_conv2d_splits_k(conv, threads)
                                                : ww_conv2d_splits_m(conv, threads);
        }
        runs += check_runs_scaled(conv, in, scale, residual, expect, expect_means, got, out_n, what,
                                  isa);
        ww_conv2d_free(conv);
        ww_conv2d_free(dw);
        free(side);
    }
    free(expect_means);
    free(scale);
    free(scaled_in);
    free(in);
    free(weight);
    free(bias);
    free(residual);
    free(expect);
    free(got);
    return runs;
}

static int check_case_with(const conv_case *c, int in_scale, int means, uint64_t seed)
{
    return check_case_after(c, in_scale, means, DW_NONE, NULL, seed);
}

static int check_case_scaled(const conv_case *c, int in_scale, uint64_t seed)
{
    return check_case_with(c, in_scale, 0, seed);
}

static int check_case(const conv_case *c, uint64_t seed)
{
    return check_case_with(c, 0, 0, seed);
}

static conv_case plain(int in_c, int in_h, int in_w, int out_c, int k, int stride, int pad)
{
    /* dilation 1, no groups, bias, no residual, ReLU */
    return (conv_case){in_c, in_h, in_w, out_c, k, k, stride, stride, pad,
                       pad,  pad,  pad,  1,     1, 1, 1,      0,      WW_ACT_RELU};
}

static void test_edge_shapes(void **state)
{
    (void)state;
    conv_case cases[80];
    int n = 0;
    cases[n++] = plain(3, 29, 31, 8, 7, 2, 3);  /* ResNet stem, odd input */
    cases[n++] = plain(5, 1, 1, 7, 1, 1, 0);    /* 1x1 spatial, pointwise */
    cases[n++] = plain(3, 1, 1, 5, 3, 1, 1);    /* 1x1 spatial, 3x3 all padding but centre */
    cases[n++] = plain(1, 1, 1, 1, 1, 1, 0);    /* smallest possible */
    cases[n++] = plain(33, 9, 11, 33, 1, 1, 0); /* pointwise, odd channels and pixels */
    cases[n++] = plain(16, 9, 9, 24, 1, 2, 0);  /* ResNet downsample, odd input */
    cases[n++] = plain(64, 10, 9, 20, 3, 1, 1); /* K = 576: several K blocks */
    cases[n++] = plain(300, 6, 7, 9, 1, 1, 0);  /* pointwise K = 300 > KC */
    cases[n++] = plain(7, 17, 13, 5, 5, 2, 4);  /* kernel 5, padding kernel-1 */
    cases[n++] = plain(3, 12, 12, 4, 7, 1, 6);  /* kernel 7, padding kernel-1 */
    cases[n++] = plain(8, 40, 37, 8, 3, 1, 2);  /* wide rows: many column runs per panel */
    /* asymmetric padding */
    cases[n++] = (conv_case){4, 11, 10, 6, 3, 3, 1, 1, 0, 2, 2, 0, 1, 1, 1, 1, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){3, 9, 14, 5, 3, 5, 2, 1, 2, 0, 0, 4, 1, 1, 1, 0, 1, WW_ACT_RELU6};
    /* dilation 2 */
    cases[n++] = (conv_case){5, 13, 15, 7, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){6, 12, 9, 4, 3, 3, 2, 2, 1, 0, 2, 1, 2, 2, 2, 1, 0, WW_ACT_NONE};
    /* grouped */
    cases[n++] = (conv_case){6, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){12, 7, 7, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 4, 0, 1, WW_ACT_NONE};
    /* depthwise, multiplier 1 and 2, strides 1 and 2, widths that use the vector path */
    cases[n++] = (conv_case){7, 9, 45, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){5, 11, 41, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){4, 8, 70, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, 1, 0, WW_ACT_NONE};
    cases[n++] = (conv_case){3, 10, 66, 6, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 3, 0, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){3, 10, 66, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3, 1, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){2, 9, 67, 2, 3, 3, 3, 3, 0, 1, 2, 0, 1, 1, 2, 1, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){3, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){33, 5, 5, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 33, 1, 0, WW_ACT_RELU};
    /* depthwise stride 1 on small maps (the flat kernel): 7x7 with 3x3 and
     * 5x5, tiny and odd maps, asymmetric padding, dilation, multiplier 2,
     * residual, ReLU6 and SiLU */
    cases[n++] = (conv_case){33, 7, 7, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 33, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){17, 7, 7, 17, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 17, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){5, 3, 3, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 0, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){4, 2, 2, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 0, WW_ACT_NONE};
    cases[n++] = (conv_case){6, 5, 6, 6, 3, 5, 1, 1, 0, 2, 1, 1, 1, 1, 6, 1, 1, WW_ACT_HARDSWISH};
    cases[n++] = (conv_case){3, 9, 7, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3, 1, 1, WW_ACT_SIGMOID};
    cases[n++] = (conv_case){8, 14, 14, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 8, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){20, 7, 7, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 20, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){9, 7, 7, 9, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 9, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){3, 4, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0, 0, WW_ACT_HARDSWISH};
    /* depthwise 3x3/5x5, stride 1/2 (the AVX-512 direct kernel, which masks
     * padding instead of copying): 1x1 and 2x2 maps, padding larger than
     * the map, asymmetric and one-sided padding, widths at and around 16
     * and 32 columns, heights that are and are not multiples of its 7- and
     * 8-row passes, multiplier 2 */
    cases[n++] = (conv_case){3, 1, 1, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 3, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){3, 1, 1, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){5, 2, 2, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5, 1, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){5, 2, 2, 5, 5, 5, 1, 1, 4, 4, 4, 4, 1, 1, 5, 0, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){2, 3, 35, 2, 5, 5, 1, 1, 4, 0, 1, 3, 1, 1, 2, 1, 1, WW_ACT_SIGMOID};
    cases[n++] = (conv_case){3, 20, 33, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 3, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){3, 17, 50, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){2, 9, 100, 4, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 2, 1, 1, WW_ACT_HARDSWISH};
    cases[n++] = (conv_case){3, 16, 16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){3, 11, 32, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){4, 12, 33, 4, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 4, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){3, 15, 17, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 3, 1, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){17, 14, 14, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 17, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){5, 56, 56, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){3, 27, 20, 3, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){3, 28, 28, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 3, 1, 0, WW_ACT_SILU};
    /* the same kernel in row bands, one per thread (maps of 56 rows and
     * more at 2 threads, 84 at 3): band edges between passes, a last band
     * with rows left over from the passes, multiplier 2, residual, an
     * activation pass over the band */
    cases[n++] = (conv_case){5, 57, 33, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 0, 1, WW_ACT_HARDSWISH};
    cases[n++] = (conv_case){3, 90, 20, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){4, 170, 19, 4, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 4, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){3, 113, 40, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 1, 0, WW_ACT_SILU};
    /* the same kernel on wide maps, input planes larger than L1 (32-43
     * KB): 4 to 9 column blocks of 16, the last one partial or a single
     * column, rows left over from the passes, multiplier 2, 5x5 stride 2,
     * residual */
    cases[n++] = (conv_case){3, 90, 121, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){2, 75, 113, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){2, 80, 112, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 0, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){2, 70, 140, 2, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 2, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){2, 70, 129, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, WW_ACT_RELU};
    /* single input channel, many outputs (GEMM, not depthwise) */
    cases[n++] = (conv_case){1, 9, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, WW_ACT_RELU};
    /* EfficientNet: depthwise 5x5 strides 1 and 2 and 3x3 with SiLU, the
     * SE block's 1x1 convs on a 1x1 map with SiLU and sigmoid, hard-swish */
    cases[n++] = (conv_case){5, 14, 37, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 5, 1, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){6, 15, 35, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 6, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){4, 9, 23, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, 1, 0, WW_ACT_SIGMOID};
    cases[n++] = (conv_case){40, 1, 1, 10, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){10, 1, 1, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, WW_ACT_SIGMOID};
    cases[n++] = (conv_case){24, 7, 7, 35, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, WW_ACT_SILU};
    /* 1x1 maps run as a matrix-vector product: odd K and M, groups, residual */
    cases[n++] = (conv_case){37, 1, 1, 70, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, WW_ACT_HARDSWISH};
    cases[n++] = (conv_case){12, 1, 1, 20, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 4, 0, 1, WW_ACT_RELU6};
    cases[n++] =
        (conv_case){3, 17, 15, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, WW_ACT_HARDSWISH};
    /* im2col through the phase-split input: stride 3 with dilation 2,
     * padding wider than the kernel reaches, rows wider than a panel, a
     * tap row past the input, a stem-like 3-channel 3x3 stride 2 */
    cases[n++] = (conv_case){4, 13, 20, 9, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, WW_ACT_RELU};
    cases[n++] = (conv_case){2, 5, 6, 3, 3, 3, 2, 2, 4, 5, 4, 5, 1, 1, 1, 1, 0, WW_ACT_NONE};
    cases[n++] = (conv_case){3, 9, 75, 10, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1, 0, 1, WW_ACT_SILU};
    cases[n++] = (conv_case){3, 8, 9, 5, 4, 2, 2, 3, 0, 0, 1, 2, 1, 1, 1, 1, 0, WW_ACT_RELU6};
    cases[n++] = (conv_case){3, 31, 33, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU6};
    for (int i = 0; i < n; i++)
        check_case(&cases[i], 1000 + (uint64_t)i);
}

/* Strided kernels over every column count 1..70 (output widths 1..70 on
 * one row, then on several): panels cut anywhere in a row. From 32 columns
 * on, AVX-512 takes 3 channels to the stem kernel: 8 keep im2col there. */
static void test_im2col_columns(void **state)
{
    (void)state;
    for (int out_w = 1; out_w <= 70; out_w++) {
        conv_case wide = plain(3, 3, 2 * out_w - 1, 9, 3, 2, 1);
        wide.act = (ww_activation)(out_w % (WW_ACT_HARDSWISH + 1));
        wide.has_residual = out_w % 2;
        check_case(&wide, 6000 + (uint64_t)out_w);
        if (out_w >=
            32) { /* the stem kernel takes 3 channels on AVX-512; 8 (72 taps) it does not */
            wide.in_c = 8;
            check_case(&wide, 6200 + (uint64_t)out_w);
        }
        conv_case tall = plain(5, 2 * ((out_w + 6) / 7), 13, 8, 5, 2, 2);
        tall.in_w = 2 * (out_w % 9 + 1);
        check_case(&tall, 6100 + (uint64_t)out_w);
    }
}

/* Draws a random shape; returns 0 if the window does not fit (caller retries). */
static int random_case(ww_rng *rng, conv_case *c)
{
    static const int channel_choices[] = {1, 2, 3, 5, 7, 8, 16, 33};
    static const int kernel_choices[] = {1, 3, 3, 5, 7};
    memset(c, 0, sizeof *c);
    c->in_c = channel_choices[ww_rng_int(rng, 0, 7)];
    c->kh = kernel_choices[ww_rng_int(rng, 0, 4)];
    c->kw = ww_rng_int(rng, 0, 3) == 0 ? kernel_choices[ww_rng_int(rng, 0, 4)] : c->kh;
    c->sh = ww_rng_int(rng, 1, 3);
    c->sw = ww_rng_int(rng, 0, 2) == 0 ? ww_rng_int(rng, 1, 3) : c->sh;
    c->dh = ww_rng_int(rng, 0, 4) == 0 ? 2 : 1;
    c->dw = ww_rng_int(rng, 0, 4) == 0 ? 2 : 1;
    c->pt = ww_rng_int(rng, 0, c->kh - 1);
    c->pb = ww_rng_int(rng, 0, 2) == 0 ? ww_rng_int(rng, 0, c->kh - 1) : c->pt;
    c->pl = ww_rng_int(rng, 0, c->kw - 1);
    c->pr = ww_rng_int(rng, 0, 2) == 0 ? ww_rng_int(rng, 0, c->kw - 1) : c->pl;
    int mode = ww_rng_int(rng, 0, 3);
    if (mode == 0 && c->in_c > 1) {
        c->groups = c->in_c; /* depthwise, multiplier 1 or 2 */
        c->out_c = c->in_c * ww_rng_int(rng, 1, 2);
        c->in_h = ww_rng_int(rng, 1, 20);
        c->in_w = ww_rng_int(rng, 1, 60);
    } else {
        c->groups = 1;
        if (mode == 1 && c->in_c % 2 == 0) c->groups = c->in_c % 4 == 0 ? 4 : 2;
        c->out_c = c->groups * ww_rng_int(rng, 1, 12);
        c->in_h = ww_rng_int(rng, 1, 16);
        c->in_w = ww_rng_int(rng, 1, 16);
    }
    c->has_bias = ww_rng_int(rng, 0, 1);
    c->has_residual = ww_rng_int(rng, 0, 1);
    c->act = (ww_activation)ww_rng_int(rng, 0, WW_ACT_HARDSWISH);
    return ww_window_out_dim(c->in_h, c->kh, c->sh, c->pt, c->pb, c->dh) > 0 &&
           ww_window_out_dim(c->in_w, c->kw, c->sw, c->pl, c->pr, c->dw) > 0;
}

static void test_random_shapes(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 20240601);
    int checked = 0;
    while (checked < 300) {
        conv_case c;
        if (!random_case(&rng, &c)) continue;
        check_case(&c, 5000 + (uint64_t)checked);
        checked++;
    }
}

/* A ResNet-sized layer with 3 threads: many panels, K blocks and jobs. */
static void test_resnet_layer(void **state)
{
    (void)state;
    conv_case c = plain(64, 28, 28, 64, 3, 1, 1);
    c.has_residual = 1;
    check_case(&c, 77);
    conv_case down = plain(64, 28, 28, 128, 3, 2, 1);
    check_case(&down, 78);
    conv_case point = plain(96, 14, 14, 24, 1, 1, 0);
    point.act = WW_ACT_NONE;
    check_case(&point, 79);
}

/* Weight-streaming layers (more than 256 KiB of weights, every column in
 * one job): deep K blocks, row blocks, prefetching tiles. Map sizes give
 * 2..70 columns (1 is the matrix-vector path) and up to 8 panels; output
 * channels not a multiple of any tile height; 1x1 and strided 3x3 (K =
 * 2304, split into K blocks when more than one panel). */
static void test_weight_streaming(void **state)
{
    (void)state;
    static const int maps[][2] = {{1, 2}, {2, 3}, {3, 5},  {4, 4},  {1, 17},  {5, 5},   {4, 8},
                                  {7, 7}, {8, 8}, {6, 11}, {7, 10}, {14, 14}, {16, 16}, {15, 18}};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        conv_case point = plain(480, maps[i][0], maps[i][1], 163, 1, 1, 0);
        point.has_residual = (int)(i % 2);
        point.act = (ww_activation)(i % (WW_ACT_HARDSWISH + 1));
        check_case(&point, 4000 + (uint64_t)i);
        if (maps[i][0] * maps[i][1] > 70) continue;
        /* stride 2, padding 1: output h, w = ceil(input / 2) */
        conv_case strided = plain(256, 2 * maps[i][0], 2 * maps[i][1], 37, 3, 2, 1);
        strided.has_bias = (int)(i % 3 != 0);
        check_case(&strided, 4100 + (uint64_t)i);
    }
}

/* The direct kernel (strided, K >= 256, AVX-512): output channels that
 * fill 1..4 blocks of 16 or leave lanes over, output widths 1..15 (every
 * tile tail and border case), kernels 1/3/5/7, strides 2 and 3, padding
 * asymmetric, wider than the kernel reaches or none, row bands (wide
 * maps; at 2-3 threads also rows split between threads), residual and
 * every activation. Each case must also have picked
 * the direct kernel where the CPU has AVX-512. */
/* Where the CPU has AVX-512, `c` must take kernel `algo` there. */
static void expect_avx512_algorithm(const conv_case *c, const char *algo)
{
    if (!ww_isa_supported(WW_ISA_AVX512)) return;
    ww_conv2d_shape s = shape_of(c);
    float *w = calloc((size_t)s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w, sizeof *w);
    ww_conv2d *conv = NULL;
    wanwu_error err = {0};
    assert_non_null(w);
    assert_int_equal(ww_conv2d_create_isa(&s, w, NULL, c->act, WW_ISA_AVX512, &conv, &err),
                     WANWU_OK);
    char what[256];
    describe(c, what, sizeof what);
    if (strcmp(ww_conv2d_algorithm(conv), algo) != 0)
        fail_msg("%s: took %s, not the %s kernel", what, ww_conv2d_algorithm(conv), algo);
    ww_conv2d_free(conv);
    free(w);
}

/* Checks cases[0..n) against the reference (seeds from seed0); each must
 * take kernel `algo` where the CPU has AVX-512. */
static void check_kernel_cases(const conv_case *cases, int n, uint64_t seed0, const char *algo)
{
    for (int i = 0; i < n; i++) {
        check_case(&cases[i], seed0 + (uint64_t)i);
        expect_avx512_algorithm(&cases[i], algo);
    }
    if (!ww_isa_supported(WW_ISA_AVX512))
        print_message(
            "[  NOTE    ] no AVX-512 here: the %s kernel's cases ran the other paths only\n", algo);
}

static void test_direct_shapes(void **state)
{
    (void)state;
    conv_case cases[64];
    int n = 0;
    for (int out_w = 1; out_w <= 15; out_w++) {
        conv_case c = plain(29, 2 * out_w + (out_w % 3 == 0), 2 * out_w - 1 + (out_w % 2),
                            17 + 9 * (out_w % 6), 3, 2, 1);
        c.act = (ww_activation)(out_w % (WW_ACT_HARDSWISH + 1));
        c.has_residual = out_w % 2;
        c.has_bias = out_w % 4 != 0;
        cases[n++] = c;
    }
    cases[n++] = plain(256, 14, 14, 512, 3, 2, 1); /* ResNet layer4.0.conv1 */
    cases[n++] = plain(64, 56, 56, 128, 3, 2, 1);  /* layer2.0.conv1: several row bands */
    cases[n++] = plain(80, 19, 19, 144, 3, 2, 1);  /* 3 groups, 10 rows split 4/4/2 at 3 threads */
    cases[n++] = plain(300, 9, 9, 16, 1, 2, 0);    /* 1x1 stride 2, one full block */
    cases[n++] = plain(300, 9, 9, 1, 1, 3, 0);     /* one output channel */
    cases[n++] = plain(11, 23, 19, 70, 5, 2, 2);   /* 5x5 */
    cases[n++] = plain(6, 31, 29, 33, 7, 2, 3);    /* 7x7, stem-like */
    cases[n++] = plain(27, 41, 7, 40, 5, 2, 2);    /* tall: border columns of 4 tiles, both sides */
    cases[n++] = plain(40, 8, 8, 20, 3, 3, 0);     /* stride 3, no padding */
    cases[n++] = plain(40, 2, 3, 20, 3, 2, 1);     /* maps smaller than the kernel */
    cases[n++] = plain(30, 1, 1, 65, 3, 2, 1);     /* 1x1 map: all padding but the centre */
    /* asymmetric padding, more than the kernel reaches (rows and columns
     * all in padding: the bias alone), stride 2 by 1 and 1 by 2 */
    cases[n++] = (conv_case){32, 9, 10, 48, 3, 3, 2, 2, 4, 0, 1, 5, 1, 1, 1, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){32, 9, 10, 20, 3, 3, 2, 1, 1, 1, 0, 2, 1, 1, 1, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){32, 9, 10, 20, 3, 3, 1, 2, 2, 1, 2, 0, 1, 1, 1, 0, 1, WW_ACT_NONE};
    check_kernel_cases(cases, n, 8000, "direct");
}

/* The stem kernel (AVX-512, output pixels in the lanes): every tail width
 * from 32 to 50 columns, rows of 4 (2 + 2 tiles), 5, 7 and 8 vectors,
 * output channels not a multiple of its 8, stride 1, stride 3 by 2,
 * padding past the kernel's reach (output rows of bias alone), taps at its
 * limit (7 channels 3x3, 1 channel 8x8), kernels 1x5 and 2x2, input
 * columns no output reads, one output row, tall maps in many bands, every
 * activation, residual, no bias; MobileNetV2's stem at full size. */
static void test_stem_shapes(void **state)
{
    (void)state;
    conv_case cases[64];
    int n = 0;
    for (int out_w = 32; out_w <= 50; out_w++) {
        conv_case c = plain(3, 5 + out_w % 4, 2 * out_w - out_w % 2, 5 + out_w * 3 % 29, 3, 2, 1);
        c.act = (ww_activation)(out_w % (WW_ACT_HARDSWISH + 1));
        c.has_residual = out_w % 2;
        c.has_bias = out_w % 3 != 0;
        cases[n++] = c;
    }
    cases[n++] = plain(3, 6, 128, 9, 3, 2, 1);    /* 4 vectors: 2 + 2 */
    cases[n++] = plain(3, 5, 160, 16, 3, 2, 1);   /* 5 vectors: 3 + 2 */
    cases[n++] = plain(3, 4, 224, 24, 3, 2, 1);   /* 7 vectors: 3 + 2 + 2 */
    cases[n++] = plain(2, 4, 256, 8, 3, 2, 1);    /* 8 vectors: 3 + 3 + 2 */
    cases[n++] = plain(7, 9, 40, 13, 3, 1, 1);    /* stride 1, 63 taps */
    cases[n++] = plain(5, 7, 40, 1, 3, 1, 1);     /* one output channel */
    cases[n++] = plain(3, 3, 100, 8, 3, 1, 0);    /* one output row */
    cases[n++] = plain(3, 150, 64, 16, 3, 2, 1);  /* 75 rows: many bands */
    cases[n++] = plain(3, 224, 224, 32, 3, 2, 1); /* MobileNetV2, EfficientNet-B0 */
    cases[n++] = (conv_case){1, 12, 45, 6, 8, 8, 1, 1, 3, 4, 4, 3, 1, 1, 1, 1, 1, WW_ACT_RELU6};
    cases[n++] = (conv_case){4, 6, 80, 10, 1, 5, 1, 2, 0, 2, 0, 2, 1, 1, 1, 1, 0, WW_ACT_SILU};
    cases[n++] = (conv_case){2, 20, 70, 17, 3, 3, 3, 2, 2, 0, 1, 3, 1, 1, 1, 1, 1, WW_ACT_SIGMOID};
    cases[n++] = (conv_case){3, 5, 64, 8, 3, 3, 1, 2, 3, 4, 3, 5, 1, 1, 1, 1, 1, WW_ACT_NONE};
    cases[n++] = (conv_case){3, 9, 71, 5, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0, 1, WW_ACT_RELU};
    check_kernel_cases(cases, n, 8500, "stem");
}

/* 1x1 stride-1 convolutions read full column panels of their input in
 * place (no packed copy): maps of 1..n full panels with or without a
 * narrow last one, K over one K block, output channels not a multiple of
 * any tile height, groups (each group's rows of the input), residual. */
static void test_pointwise_in_place(void **state)
{
    (void)state;
    conv_case cases[12];
    int n = 0;
    cases[n++] = plain(8, 4, 8, 16, 1, 1, 0);    /* 32 pixels: one full panel on AVX-512 */
    cases[n++] = plain(24, 12, 12, 13, 1, 1, 0); /* 144 = 4 x 32 + 16, 13 rows */
    cases[n++] = plain(300, 8, 9, 40, 1, 1, 0);  /* K = 300: two K blocks */
    cases[n++] = plain(16, 32, 32, 24, 1, 1, 0); /* 1024 pixels, many jobs per thread */
    cases[n++] = plain(5, 3, 3, 7, 1, 1, 0);     /* narrower than any panel */
    cases[n++] = (conv_case){32, 10, 10, 48, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 1, 1, WW_ACT_RELU6};
    /* pixels a few past a multiple of 32, spilled onto the last full panel */
    cases[n++] = plain(96, 14, 14, 64, 1, 1, 0); /* 196 = 6 x 32 + 4 */
    cases[n++] = plain(16, 3, 13, 8, 1, 1, 0);   /* 39 = 32 + 7 */
    cases[n++] = plain(480, 6, 6, 160, 1, 1, 0); /* 36 = 32 + 4, weight streaming */
    cases[n++] = plain(40, 5, 13, 20, 1, 1, 0);  /* 65 = 2 x 32 + 1, rows not a multiple of 8 */
    cases[7].has_residual = 1;
    cases[8].act = WW_ACT_SILU;
    cases[1].has_residual = 1;
    cases[1].act = WW_ACT_NONE;
    cases[2].act = WW_ACT_SILU;
    for (int i = 0; i < n; i++) {
        check_case(&cases[i], 8500 + (uint64_t)i);
        ww_conv2d_shape s = shape_of(&cases[i]);
        float *w = calloc((size_t)s.out_c * (s.in_c / s.groups), sizeof *w);
        ww_conv2d *conv = NULL;
        wanwu_error err = {0};
        assert_non_null(w);
        assert_int_equal(ww_conv2d_create(&s, w, NULL, cases[i].act, &conv, &err), WANWU_OK);
        assert_string_equal(ww_conv2d_algorithm(conv), "gemm_1x1");
        ww_conv2d_free(conv);
        free(w);
    }
}

/* 1x1 convolutions whose pixels are the AVX-512 wide tile's 48 plus 0..2
 * (7x7 maps: 49) run in one pass of it over the input in place; 3 past 48,
 * or rows not a multiple of 8, take the other tiles. Every ISA, 1-3
 * threads (rows split), weight streaming, K blocks, residual, epilogues,
 * an input scale folded into the weights. */
static void test_pointwise_wide(void **state)
{
    (void)state;
    conv_case cases[8];
    int n = 0;
    cases[n++] = plain(960, 7, 7, 160, 1, 1, 0); /* 49: streaming weights, 4 K blocks */
    cases[n++] = plain(24, 6, 8, 16, 1, 1, 0);   /* 48: no spill column */
    cases[n++] = plain(40, 5, 10, 24, 1, 1, 0);  /* 50: two spill columns */
    cases[n++] = plain(160, 7, 7, 960, 1, 1, 0); /* expand, many row tiles */
    cases[n++] = plain(16, 7, 7, 20, 1, 1, 0);   /* 20 rows: not wide */
    cases[n++] = plain(33, 3, 17, 8, 1, 1, 0);   /* 51: not wide */
    cases[0].has_residual = 1;
    cases[0].act = WW_ACT_RELU6;
    cases[1].act = WW_ACT_NONE;
    cases[1].has_bias = 0;
    cases[2].act = WW_ACT_SILU;
    cases[2].has_residual = 1;
    for (int i = 0; i < n; i++)
        assert_true(check_case(&cases[i], 8600 + (uint64_t)i) > 0);
    /* cached weights scaled per input channel, then read in place */
    conv_case scaled = plain(96, 7, 7, 64, 1, 1, 0);
    scaled.has_residual = 1;
    assert_true(check_case_scaled(&scaled, 1, 8610) > 0);
}

/* 1x1 convs fetching a side stream (the classifier's weights after a
 * network's last conv, ww_conv2d_set_side_fetch) compute what they did
 * without: the wide tile's fetching copy (7x7 maps, 0-2 spill columns,
 * streaming weights in row blocks), the packed tile's (input scaled per
 * channel), the in-place tiles that fetch their share at once, K blocks,
 * 1-3 threads; streams shorter than the tiles' k steps, and longer than
 * two lines per step (the rest fetched at the end of each panel). A conv
 * that is not 1x1, or on a 1x1 map, takes no side stream. */
static void test_pointwise_side_fetch(void **state)
{
    (void)state;
    conv_case cases[8];
    int n = 0;
    cases[n++] = plain(320, 7, 7, 128, 1, 1, 0); /* 49 = 48 + 1: wide */
    cases[n++] = plain(960, 7, 7, 160, 1, 1, 0); /* wide, streaming weights, K blocks */
    cases[n++] = plain(24, 6, 8, 16, 1, 1, 0);   /* 48: wide, no spill column */
    cases[n++] = plain(40, 5, 10, 24, 1, 1, 0);  /* 50: two spill columns */
    cases[n++] = plain(96, 14, 14, 64, 1, 1, 0); /* 196 = 6 x 32 + 4: in place, spilled */
    cases[n++] = plain(16, 3, 13, 20, 1, 1, 0);  /* rows not a multiple of 8 */
    cases[n++] = plain(3, 9, 9, 8, 3, 1, 1);     /* 3x3: not taken */
    cases[n++] = plain(64, 1, 1, 16, 1, 1, 0);   /* 1x1 map (a GEMV): not taken */
    cases[0].act = WW_ACT_SILU;
    cases[1].has_residual = 1;
    cases[3].act = WW_ACT_RELU6;
    size_t sizes[] = {100, 64 * 1024 + 36, 5u << 20};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        side_bytes = sizes[z];
        for (int i = 0; i < n; i++)
            assert_true(check_case_after(&cases[i], 0, 0, SIDE_FETCH, NULL, 8700 + (uint64_t)i) >
                        0);
        conv_case scaled = plain(96, 7, 7, 64, 1, 1, 0);
        assert_true(check_case_after(&scaled, 1, 0, SIDE_FETCH, NULL, 8710) > 0);
    }
}

/* ww_conv2d_run_scaled (squeeze-and-excitation's multiply folded into the
 * projection after it): layers whose weights stay in cache scale a copy of
 * the packed weights and read the input in place; weight-streaming ones
 * (more than 256 KiB of weights, all columns in one job) scale the
 * columns as they pack them. Every ISA, 1-3 threads, residual, K blocks,
 * panels narrower than a tile, rows not a multiple of MR. */
/* 1x1 convs after a depthwise conv that splits its channels between
 * threads: K split the same way, partial sums added after (conv2d.c,
 * ksplit_run). Odd channel counts (pairs of channels on maps of at most 8
 * columns leave a lone one), rows that are not a multiple of the tile,
 * K past a K block, the wide and spilled panels, bias, residual and every
 * activation. */
static void test_pointwise_after_depthwise(void **state)
{
    (void)state;
    conv_case cases[10];
    int n = 0;
    cases[n++] = plain(96, 7, 7, 24, 1, 1, 0);    /* wide tile, pairs */
    cases[n++] = plain(37, 5, 5, 9, 1, 1, 0);     /* odd channels: a lone last one */
    cases[n++] = plain(384, 14, 14, 64, 1, 1, 0); /* 196 = 6 x 32 + 4 spilled */
    cases[n++] = plain(144, 12, 12, 32, 1, 1, 0); /* 144 = 4 x 32 + 16: a part panel */
    cases[n++] = plain(600, 9, 11, 17, 1, 1, 0);  /* K past KC in each share */
    cases[n++] = plain(960, 7, 7, 160, 1, 1, 0);  /* weight streaming */
    cases[n++] = plain(160, 13, 15, 30, 1, 1, 0); /* odd map, part panel */
    cases[n++] = plain(12, 3, 3, 3, 1, 1, 0);     /* few channels */
    /* no split: a map past KSPLIT_MAX_PIXELS, K < 4 M */
    cases[n++] = plain(144, 28, 28, 32, 1, 1, 0);
    cases[n++] = plain(116, 14, 14, 116, 1, 1, 0);
    cases[0].has_residual = 1;
    cases[2].has_residual = 1;
    cases[5].has_residual = 1;
    cases[0].act = WW_ACT_NONE;
    cases[1].act = WW_ACT_SILU;
    cases[2].act = WW_ACT_RELU6;
    cases[4].has_bias = 0;
    cases[6].act = WW_ACT_HARDSWISH;
    int k_splits = 0;
    for (int i = 0; i < n; i++) {
        int before = k_splits;
        assert_true(check_case_after(&cases[i], 0, 0, DW_BEFORE, &k_splits, 9900 + (uint64_t)i) >
                    0);
        if (i >= n - 2) assert_int_equal(k_splits, before);
    }
    /* EfficientNet-B0's projections: the squeeze-and-excitation scale in
     * the weights (cached weights), then K split */
    conv_case scaled = plain(240, 7, 7, 40, 1, 1, 0);
    scaled.has_residual = 1;
    assert_true(check_case_after(&scaled, 1, 0, DW_BEFORE, &k_splits, 9950) > 0);
    if (ww_isa_supported(WW_ISA_AVX512))
        assert_true(k_splits >= 2 * (n - 2)); /* both thread counts of the others */
    else
        print_message("no AVX-512: the K split is not taken (direct depthwise kernel only)\n");
}

/* 1x1 convs whose output a channel-split depthwise conv reads: output
 * channels split where that conv splits its channels (conv2d.c,
 * msplit_bounds), rounded to row tiles. */
static void test_pointwise_before_depthwise(void **state)
{
    (void)state;
    conv_case cases[7];
    int n = 0;
    cases[n++] = plain(160, 7, 7, 960, 1, 1, 0);  /* wide tile, pairs, weight streaming */
    cases[n++] = plain(64, 14, 14, 384, 1, 1, 0); /* spilled columns */
    cases[n++] = plain(9, 5, 5, 37, 1, 1, 0);     /* odd channels, rows past the tiles */
    cases[n++] = plain(24, 12, 12, 144, 1, 1, 0); /* a part panel */
    cases[n++] = plain(300, 6, 7, 1200, 1, 1, 0); /* K past KC */
    /* no split: a map past KSPLIT_MAX_PIXELS; M < 4 K */
    cases[n++] = plain(32, 28, 28, 192, 1, 1, 0);
    cases[n++] = plain(116, 14, 14, 116, 1, 1, 0);
    cases[0].act = WW_ACT_RELU6;
    cases[1].act = WW_ACT_SILU;
    cases[2].has_residual = 1;
    cases[3].has_bias = 0;
    int m_splits = 0;
    for (int i = 0; i < n; i++) {
        int before = m_splits;
        assert_true(check_case_after(&cases[i], 0, 0, DW_AFTER, &m_splits, 9970 + (uint64_t)i) > 0);
        if (i >= n - 2) assert_int_equal(m_splits, before);
    }
    if (ww_isa_supported(WW_ISA_AVX512))
        assert_true(m_splits >= 2 * (n - 2));
    else
        print_message("no AVX-512: the M split is not taken (direct depthwise kernel only)\n");
}

static void test_pointwise_in_scale(void **state)
{
    (void)state;
    conv_case cases[11];
    int n = 0;
    cases[n++] = plain(8, 4, 8, 16, 1, 1, 0);      /* one full panel */
    cases[n++] = plain(24, 12, 12, 13, 1, 1, 0);   /* 4 full panels + a half one, 13 rows */
    cases[n++] = plain(300, 8, 9, 40, 1, 1, 0);    /* K = 300: two K blocks */
    cases[n++] = plain(5, 1, 2, 7, 1, 1, 0);       /* two pixels */
    cases[n++] = plain(672, 7, 7, 112, 1, 1, 0);   /* streaming, K split in blocks */
    cases[n++] = plain(1152, 3, 5, 99, 1, 1, 0);   /* streaming, one narrow panel */
    cases[n++] = plain(144, 28, 28, 24, 1, 1, 0);  /* many panels per thread */
    cases[n++] = plain(1152, 16, 15, 64, 1, 1, 0); /* streaming in 3 K blocks, a narrow panel */
    /* pixels spilled onto the last full panel: scaled as packed, and in place */
    cases[n++] = plain(672, 14, 14, 112, 1, 1, 0); /* streaming, 196 = 6 x 32 + 4 */
    cases[n++] = plain(96, 6, 6, 64, 1, 1, 0);     /* cached weights, 36 = 32 + 4 */
    cases[8].has_residual = 1;
    cases[1].has_residual = 1;
    cases[4].has_residual = 1;
    cases[2].act = WW_ACT_SILU;
    cases[5].act = WW_ACT_RELU6;
    for (int i = 0; i < n; i++) {
        ww_conv2d_shape s = shape_of(&cases[i]);
        assert_true(ww_conv2d_shape_takes_in_scale(&s));
        assert_true(check_case_scaled(&cases[i], 1, 8700 + (uint64_t)i) > 0);
    }
    /* shapes that do not take a scale: 3x3, stride 2, groups, one pixel */
    conv_case no[] = {plain(8, 6, 6, 8, 3, 1, 1), plain(8, 6, 6, 8, 1, 2, 0),
                      plain(8, 1, 1, 8, 1, 1, 0)};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        ww_conv2d_shape s = shape_of(&no[i]);
        assert_false(ww_conv2d_shape_takes_in_scale(&s));
    }
    conv_case grouped = plain(8, 6, 6, 8, 1, 1, 0);
    grouped.groups = 2;
    ww_conv2d_shape gs = shape_of(&grouped);
    assert_false(ww_conv2d_shape_takes_in_scale(&gs));
}

/* ww_conv2d_run_means (the conv and the global average pool of its
 * output) against the reference conv and pool, every ISA, 1-3 threads.
 * Depthwise 3x3 and 5x5, strides 1 and 2: 7x7 maps (two channels per
 * vector, an odd channel count leaves one alone), 14x14, maps of 56 and
 * 112 rows (split in row bands at 2 and 3 threads), the exp-based
 * activations (summed after the deferred activation pass) and the others
 * (summed per channel), residual, channel multiplier 2; and a plain conv
 * (the pool after it). */
static void test_run_means(void **state)
{
    (void)state;
    conv_case cases[] = {
        {7, 7, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7, 1, 0, WW_ACT_SILU},
        {9, 14, 14, 9, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 9, 1, 0, WW_ACT_SILU},
        {12, 14, 14, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 12, 1, 1, WW_ACT_RELU6},
        {6, 56, 56, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 1, 0, WW_ACT_SILU},
        {5, 112, 112, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5, 1, 0, WW_ACT_RELU6},
        {3, 112, 112, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 3, 1, 1, WW_ACT_SIGMOID},
        {8, 28, 28, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 8, 1, 0, WW_ACT_NONE},
        {4, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 0, WW_ACT_SILU},
        {11, 7, 7, 11, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 11, 1, 1, WW_ACT_RELU6},
        {6, 14, 14, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 6, 1, 0, WW_ACT_NONE},
        {6, 10, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case_with(&cases[i], 0, 1, 9100 + (uint64_t)i);
}

/* The AVX-512 depthwise instances with the map geometry compiled in
 * (DWD_DEFINE_KNOWN in depthwise_direct.inc: square maps, padding k / 2,
 * input edge out * stride, for out 112, 56, 28, 14 and 7) against the
 * reference, every ISA, 1-3 threads: each such geometry (and two that
 * run the general instance: 5x5 on 28x28 stride 1, on 14x14 stride 2)
 * with an activation applied in the blocks or after them, residual, channel
 * multiplier 2, an odd channel count on 7x7 (a pair with one channel
 * alone), the means; row bands at 2 and 3 threads on 56 and 112 rows (the
 * general instance). Then shapes one step from such a geometry, which
 * must take the general instance: an input a column narrower or a row
 * shorter (same output size at stride 2), padding other than k / 2 on
 * one side, a rectangular map. */
static void test_depthwise_known_geometry(void **state)
{
    (void)state;
    static const struct {
        int k, stride, out;
    } known[] = {{3, 1, 112}, {3, 1, 56}, {3, 1, 28}, {3, 1, 14}, {3, 1, 7},
                 {3, 2, 56},  {3, 2, 28}, {3, 2, 14}, {3, 2, 7},  {5, 1, 14},
                 {5, 1, 7},   {5, 2, 28}, {5, 2, 7},  {5, 1, 28}, {5, 2, 14}};
    static const ww_activation acts[] = {WW_ACT_RELU6, WW_ACT_SILU, WW_ACT_NONE, WW_ACT_RELU};
    int n = (int)(sizeof known / sizeof known[0]);
    for (int i = 0; i < n; i++) {
        int k = known[i].k, st = known[i].stride, edge = known[i].out * st, p = k / 2;
        int channels = known[i].out >= 56 ? 3 : known[i].out == 7 ? 5 : 6;
        conv_case c = plain(channels, edge, edge, channels, k, st, p);
        c.groups = channels; /* depthwise */
        c.has_residual = i % 2;
        c.act = acts[i % 4];
        check_case_with(&c, 0, 1, 9300 + (uint64_t)i);
        c.out_c = 2 * channels; /* multiplier 2 */
        c.act = acts[(i + 1) % 4];
        check_case_with(&c, 0, i % 2, 9400 + (uint64_t)i);
    }
    conv_case near[] = {
        {4, 111, 111, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, 1, 1, WW_ACT_RELU6},
        {4, 55, 56, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, 1, 0, WW_ACT_SILU},
        {6, 13, 13, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6, 1, 1, WW_ACT_RELU6},
        {6, 14, 14, 6, 3, 3, 1, 1, 0, 0, 2, 2, 1, 1, 6, 1, 0, WW_ACT_NONE},
        {6, 14, 14, 6, 5, 5, 1, 1, 2, 1, 2, 3, 1, 1, 6, 1, 1, WW_ACT_SILU},
        {5, 7, 8, 5, 3, 3, 1, 1, 1, 1, 1, 0, 1, 1, 5, 1, 0, WW_ACT_RELU},
        {6, 28, 14, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 1, 1, WW_ACT_RELU6},
    };
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++)
        check_case_with(&near[i], 0, 0, 9500 + (uint64_t)i);
}

/* ww_conv2d_create_pooled against the reference conv followed by the
 * reference max pool, every ISA and 1-3 threads: the direct kernel's
 * pooled path (AVX-512; activation none/ReLU/ReLU6, K <= 256) and the
 * conv-then-pool path (other ISAs, SiLU, larger K). `direct`: the case
 * must have taken the pooled direct kernel where the CPU has AVX-512. */
static void check_pooled(conv_case cc, int pk, int ps, int pt, int pl, int pb, int pr, int direct,
                         uint64_t seed)
{
    const conv_case *c = &cc;
    ww_conv2d_shape s = shape_of(c);
    ww_pool2d_shape p = {s.out_c, s.out_h, s.out_w, 0, 0, pk, pk, ps, ps, pt, pl, pb, pr};
    p.out_h = ww_window_out_dim(s.out_h, pk, ps, pt, pb, 1);
    p.out_w = ww_window_out_dim(s.out_w, pk, ps, pl, pr, 1);
    char what[300];
    describe(c, what, sizeof what);
    size_t len = strlen(what);
    snprintf(what + len, sizeof what - len, " + maxpool k%d s%d pad %d %d %d %d", pk, ps, pt, pl,
             pb, pr);
    assert_true(p.out_h >= 1 && p.out_w >= 1);
    size_t in_n = (size_t)s.in_c * s.in_h * s.in_w, conv_n = (size_t)s.out_c * s.out_h * s.out_w;
    size_t out_n = (size_t)p.channels * p.out_h * p.out_w;
    size_t w_n = (size_t)s.out_c * s.in_c * s.kernel_h * s.kernel_w;
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    float *in = malloc(in_n * sizeof *in), *weight = malloc(w_n * sizeof *weight);
    float *bias = malloc((size_t)s.out_c * sizeof *bias),
          *conv_out = malloc(conv_n * sizeof(float));
    float *expect = malloc(out_n * sizeof *expect), *got = malloc(out_n * sizeof *got);
    assert_true(in && weight && bias && conv_out && expect && got);
    ww_rng_fill(&rng, in, in_n, -1.0f, 1.0f);
    ww_rng_fill(&rng, weight, w_n, -1.0f, 1.0f);
    ww_rng_fill(&rng, bias, (size_t)s.out_c, -1.0f, 1.0f);
    ww_conv2d_ref(&s, in, weight, c->has_bias ? bias : NULL, NULL, c->act, conv_out);
    ww_maxpool2d_ref(&p, conv_out, expect);
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        ww_conv2d *conv = NULL;
        wanwu_error err = {0};
        if (ww_conv2d_create_pooled(&s, weight, c->has_bias ? bias : NULL, c->act, isa, NULL, &p,
                                    &conv, &err) != WANWU_OK)
            fail_msg("%s [%s]: %s", what, ww_isa_name(isa), err.message);
        if (direct && isa == WW_ISA_AVX512 && strcmp(ww_conv2d_algorithm(conv), "direct") != 0)
            fail_msg("%s: took %s, not the pooled direct kernel", what, ww_conv2d_algorithm(conv));
        check_runs(conv, in, NULL, expect, got, out_n, what, isa);
        ww_conv2d_free(conv);
    }
    free(in);
    free(weight);
    free(bias);
    free(conv_out);
    free(expect);
    free(got);
}

static void test_pooled(void **state)
{
    (void)state;
    /* ResNet's stem at full size and on odd small inputs */
    check_pooled((conv_case){3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 0, WW_ACT_RELU},
                 3, 2, 1, 1, 1, 1, 1, 1);
    for (int i = 0; i < 12; i++) {
        int h = 1 + 3 * i, w = 2 + 5 * i;
        conv_case c = plain(3, h, w, 5 + 13 * i, 7, 2, 3);
        c.act = (ww_activation)(i % 3); /* none, ReLU, ReLU6 */
        c.has_bias = i % 4 != 1;
        check_pooled(c, 3, 2, 1, 1, 1, 1, 1, 10 + (uint64_t)i);
    }
    /* other pools: 2x2/2, 3x3/1, asymmetric padding, a window wider than the map */
    check_pooled(plain(8, 17, 19, 20, 3, 1, 1), 2, 2, 0, 0, 0, 0, 1, 30);
    check_pooled(plain(8, 17, 19, 20, 3, 2, 1), 3, 1, 1, 1, 1, 1, 1, 31);
    check_pooled(plain(4, 21, 18, 33, 5, 2, 2), 3, 2, 1, 0, 0, 1, 1, 32);
    check_pooled(plain(4, 6, 6, 17, 3, 2, 1), 5, 2, 2, 2, 2, 2, 1, 33);
    check_pooled(plain(2, 1, 1, 3, 3, 1, 1), 3, 2, 1, 1, 1, 1, 1, 34);
    /* not the pooled direct kernel: SiLU, K > 256, groups */
    conv_case silu = plain(3, 20, 22, 16, 7, 2, 3);
    silu.act = WW_ACT_SILU;
    check_pooled(silu, 3, 2, 1, 1, 1, 1, 0, 40);
    check_pooled(plain(40, 15, 15, 24, 3, 2, 1), 3, 2, 1, 1, 1, 1, 0, 41);
    conv_case dw = plain(8, 16, 16, 8, 3, 1, 1);
    dw.groups = 8;
    check_pooled(dw, 2, 2, 0, 0, 0, 0, 0, 42);
}

/* Bit pattern the thread-area checks fill scratch with (a NaN no kernel
 * computes). */
#define AREA_SENTINEL 0x7fa5a5a5u

/* Whether slot `k`'s area (`own` floats at k * area) holds any write. */
static int area_written(const uint32_t *scratch, size_t area, size_t own, int k)
{
    for (size_t i = (size_t)k * area; i < (size_t)k * area + own; i++)
        if (scratch[i] != AREA_SENTINEL) return 1;
    return 0;
}

/* `conv` at 2 and 3 threads with the pool spacing the per-thread work
 * areas (ww_threadpool_set_area_floats) 1007 floats further apart than
 * the conv needs: the output is bit-identical to a run with the conv's
 * own spacing; the scratch, sized exactly by
 * ww_conv2d_scratch_floats_areas, holds every write (the sanitizer build
 * catches an overrun); every write lands inside an area at the set
 * spacing (none in the gaps); and slot 1 writes in its area at least once
 * in up to 50 runs (a worker that wakes late can have its units taken
 * over: on a loaded machine it missed all 20 runs of a 7-unit stem, so
 * the shapes give the caller's share enough work for the worker to wake).
 * `has_areas`: the conv's kernel gives threads their own areas (else
 * ww_conv2d_area_floats must be 0 and the spacing change nothing); out_n:
 * the floats of its output (pooled, for a pooled conv). */
static void check_thread_areas(const ww_conv2d *conv, const float *in, size_t out_n, int has_areas,
                               const char *what)
{
    float *expect = malloc(out_n * sizeof *expect), *got = malloc(out_n * sizeof *got);
    assert_true(expect && got);
    for (int threads = 2; threads <= 3; threads++) {
        ww_threadpool *pool = ww_test_pools[threads];
        size_t own = ww_conv2d_area_floats(conv, threads);
        if (has_areas && own == 0)
            fail_msg("%s: no per-thread work areas at %d threads", what, threads);
        if (!has_areas && own != 0)
            fail_msg("%s: %zu floats of per-thread area, expected none", what, own);
        size_t area = own + 1007, plain_n = ww_conv2d_scratch_floats(conv, threads);
        size_t need = ww_conv2d_scratch_floats_areas(conv, threads, area);
        if (has_areas ? need < 2 * area : need != plain_n)
            fail_msg("%s: %zu floats of scratch for areas %zu apart (own spacing: %zu)", what, need,
                     area, plain_n);
        float *plain_scratch = malloc((plain_n ? plain_n : 1) * sizeof(float));
        uint32_t *scratch = malloc((need ? need : 1) * sizeof *scratch);
        assert_true(plain_scratch && scratch);
        ww_conv2d_run(conv, in, NULL, expect, plain_scratch, pool);
        int slot1 = 0;
        for (int attempt = 0; attempt < 50 && !(slot1 && attempt >= 2); attempt++) {
            for (size_t i = 0; i < need; i++)
                scratch[i] = AREA_SENTINEL;
            ww_threadpool_set_area_floats(pool, area);
            ww_conv2d_run(conv, in, NULL, got, (float *)scratch, pool);
            ww_threadpool_set_area_floats(pool, 0);
            if (memcmp(expect, got, out_n * sizeof *got) != 0)
                fail_msg("%s, %d threads: output differs with areas %zu apart", what, threads,
                         area);
            if (!has_areas) break;
            for (size_t i = 0; i < need; i++)
                if (scratch[i] != AREA_SENTINEL && i % area >= own)
                    fail_msg("%s, %d threads: scratch float %zu written, in the gap after area "
                             "%zu",
                             what, threads, i, i / area);
            slot1 |= area_written(scratch, area, own, 1);
        }
        if (has_areas && !slot1)
            fail_msg("%s, %d threads: slot 1 never wrote at %zu", what, threads, area);
        free(plain_scratch);
        free(scratch);
    }
    free(expect);
    free(got);
}

/* The per-thread work areas a session lines up across layers
 * (ww_threadpool_set_area_floats): Winograd's fused (F(4x4) and F(2x2))
 * and per-run-weights plans on every instruction set, the direct
 * convolution (rows split, and output-channel groups split above 2 MB of
 * weights) and its pooled stem on AVX-512; a 1x1 GEMM conv has none. */
static void test_thread_areas(void **state)
{
    (void)state;
    static const struct {
        conv_case c;
        int pool_k; /* a fused max pool (k, stride 2, pad 1), or 0 */
        int avx512_only, has_areas;
    } cases[] = {
        {{64, 20, 20, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 0, 1},
        {{16, 10, 12, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 0, 1},
        {{130, 7, 7, 130, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 0, 1},
        {{64, 28, 28, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 1, 1},
        {{256, 14, 14, 512, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 1, 1},
        {{3, 112, 114, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 0, WW_ACT_RELU}, 3, 1, 1},
        {{24, 14, 14, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, WW_ACT_RELU}, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *c = &cases[i].c;
        ww_conv2d_shape s = shape_of(c);
        ww_pool2d_shape p = {s.out_c, s.out_h, s.out_w, 0, 0, cases[i].pool_k, cases[i].pool_k, 2,
                             2,       1,       1,       1, 1};
        p.out_h = ww_window_out_dim(s.out_h, p.kernel_h, 2, 1, 1, 1);
        p.out_w = ww_window_out_dim(s.out_w, p.kernel_w, 2, 1, 1, 1);
        size_t in_n = (size_t)s.in_c * s.in_h * s.in_w;
        size_t w_n = (size_t)s.out_c * s.in_c * s.kernel_h * s.kernel_w;
        float *in = malloc(in_n * sizeof *in), *weight = malloc(w_n * sizeof *weight);
        float *bias = malloc((size_t)s.out_c * sizeof *bias);
        assert_true(in && weight && bias);
        ww_rng rng;
        ww_rng_seed(&rng, 7700 + i);
        ww_rng_fill(&rng, in, in_n, -1.0f, 1.0f);
        ww_rng_fill(&rng, weight, w_n, -1.0f, 1.0f);
        ww_rng_fill(&rng, bias, (size_t)s.out_c, -1.0f, 1.0f);
        char what[300];
        describe(c, what, sizeof what);
        for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
            if (!ww_isa_supported(isa) || (cases[i].avx512_only && isa != WW_ISA_AVX512)) continue;
            ww_conv2d *conv = NULL;
            wanwu_error err = {0};
            wanwu_status st =
                cases[i].pool_k
                    ? ww_conv2d_create_pooled(&s, weight, bias, c->act, isa, NULL, &p, &conv, &err)
                    : ww_conv2d_create_isa(&s, weight, bias, c->act, isa, &conv, &err);
            if (st != WANWU_OK) fail_msg("%s [%s]: %s", what, ww_isa_name(isa), err.message);
            char full[340];
            snprintf(full, sizeof full, "%s [%s, %s]", what, ww_isa_name(isa),
                     ww_conv2d_algorithm(conv));
            size_t out_n = cases[i].pool_k ? (size_t)p.channels * p.out_h * p.out_w
                                           : (size_t)s.out_c * s.out_h * s.out_w;
            check_thread_areas(conv, in, out_n, cases[i].has_areas, full);
            ww_conv2d_free(conv);
        }
        free(in);
        free(weight);
        free(bias);
    }
}

static void test_create_copies_weights(void **state)
{
    (void)state;
    conv_case c = plain(4, 6, 6, 5, 3, 1, 1);
    ww_conv2d_shape s = shape_of(&c);
    float weight[5 * 4 * 9], bias[5], in[4 * 36], expect[5 * 36], got[5 * 36];
    ww_rng rng;
    ww_rng_seed(&rng, 3);
    ww_rng_fill(&rng, weight, 5 * 4 * 9, -1, 1);
    ww_rng_fill(&rng, bias, 5, -1, 1);
    ww_rng_fill(&rng, in, 4 * 36, -1, 1);
    ww_conv2d_ref(&s, in, weight, bias, NULL, WW_ACT_RELU, expect);
    ww_conv2d *conv = NULL;
    assert_int_equal(ww_conv2d_create(&s, weight, bias, WW_ACT_RELU, &conv, NULL), WANWU_OK);
    memset(weight, 0, sizeof weight); /* the conv must not look at these again */
    memset(bias, 0, sizeof bias);
    float *scratch = malloc(ww_conv2d_scratch_floats(conv, 1) * sizeof(float) + 1);
    ww_conv2d_run(conv, in, NULL, got, scratch, NULL);
    assert_true(ww_max_rel_diff(got, expect, 5 * 36) <= TOLERANCE);
    assert_int_equal(ww_conv2d_get_shape(conv)->out_c, 5);
    free(scratch);
    ww_conv2d_free(conv);
}

static void test_create_rejects_bad_shape(void **state)
{
    (void)state;
    conv_case c = plain(4, 6, 6, 6, 3, 1, 1);
    ww_conv2d_shape s = shape_of(&c);
    s.groups = 4; /* does not divide out_c = 6 */
    float weight[6 * 9] = {0};
    ww_conv2d *conv = (ww_conv2d *)&c; /* must be reset to NULL */
    wanwu_error err = {0};
    assert_int_equal(ww_conv2d_create(&s, weight, NULL, WW_ACT_NONE, &conv, &err),
                     WANWU_ERR_INVALID_ARGUMENT);
    assert_null(conv);
    assert_non_null(strstr(err.message, "groups"));
    s.groups = 1;
    assert_int_equal(ww_conv2d_create(&s, NULL, NULL, WW_ACT_NONE, &conv, &err),
                     WANWU_ERR_INVALID_ARGUMENT);
    assert_null(conv);
}

/* Scratch is one slot per thread, so a buffer sized for more threads
 * also serves fewer; fewer channels than threads still works. */
static void test_scratch_sizes(void **state)
{
    (void)state;
    conv_case dw = (conv_case){2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 0, WW_ACT_RELU6};
    conv_case gemm = plain(3, 30, 30, 4, 3, 1, 1);
    conv_case cases[2] = {dw, gemm};
    for (int i = 0; i < 2; i++) {
        ww_conv2d_shape s = shape_of(&cases[i]);
        float weight[4 * 3 * 9] = {0};
        ww_conv2d *conv = NULL;
        assert_int_equal(ww_conv2d_create(&s, weight, NULL, WW_ACT_NONE, &conv, NULL), WANWU_OK);
        size_t one = ww_conv2d_scratch_floats(conv, 1);
        size_t three = ww_conv2d_scratch_floats(conv, 3);
        if (i == 1) assert_true(one > 0); /* AVX-512 depthwise reads the input in place: 0 */
        assert_int_equal(ww_conv2d_scratch_floats(conv, 0), one);
        /* per-thread slots (plus, for im2col, one shared copy of the input) */
        if (one > 0)
            assert_true(three > one && ww_conv2d_scratch_floats(conv, 2) < three);
        else
            assert_int_equal(three, 0);
        size_t in_n = (size_t)s.in_c * s.in_h * s.in_w, out_n = (size_t)s.out_c * s.out_h * s.out_w;
        float *scratch = malloc((three ? three : 1) * sizeof *scratch);
        float *in = calloc(in_n, sizeof *in), *out = malloc(out_n * sizeof *out);
        for (int threads = 1; threads <= 3; threads++) {
            for (size_t j = 0; j < out_n; j++)
                out[j] = NAN;
            ww_conv2d_run(conv, in, NULL, out, scratch, ww_test_pools[threads]);
            for (size_t j = 0; j < out_n; j++)
                assert_true(out[j] == 0.0f);
        }
        free(scratch);
        free(in);
        free(out);
        ww_conv2d_free(conv);
    }
}

static void test_create_rejects_unknown_isa(void **state)
{
    (void)state;
    conv_case c = plain(2, 4, 4, 2, 1, 1, 0);
    ww_conv2d_shape s = shape_of(&c);
    float weight[4] = {0};
    ww_conv2d *conv = NULL;
    wanwu_error err = {0};
    assert_false(ww_isa_supported((ww_isa)42));
    assert_int_equal(ww_conv2d_create_isa(&s, weight, NULL, WW_ACT_NONE, (ww_isa)42, &conv, &err),
                     WANWU_ERR_UNSUPPORTED);
    assert_null(conv);
    assert_true(err.message[0] != '\0');
}

static void test_isa_names(void **state)
{
    (void)state;
    assert_true(ww_isa_supported(WW_ISA_AUTO));
    assert_true(ww_isa_supported(WW_ISA_PORTABLE));
    assert_true(ww_isa_supported(ww_isa_best()));
    assert_string_equal(ww_isa_name(WW_ISA_AVX512), "avx512");
    printf("best instruction set: %s\n", ww_isa_name(ww_isa_best()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_names),
        cmocka_unit_test(test_edge_shapes),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_resnet_layer),
        cmocka_unit_test(test_weight_streaming),
        cmocka_unit_test(test_pointwise_in_place),
        cmocka_unit_test(test_pointwise_wide),
        cmocka_unit_test(test_pointwise_side_fetch),
        cmocka_unit_test(test_pointwise_in_scale),
        cmocka_unit_test(test_pointwise_after_depthwise),
        cmocka_unit_test(test_pointwise_before_depthwise),
        cmocka_unit_test(test_direct_shapes),
        cmocka_unit_test(test_stem_shapes),
        cmocka_unit_test(test_pooled),
        cmocka_unit_test(test_thread_areas),
        cmocka_unit_test(test_run_means),
        cmocka_unit_test(test_depthwise_known_geometry),
        cmocka_unit_test(test_im2col_columns),
        cmocka_unit_test(test_create_copies_weights),
        cmocka_unit_test(test_create_rejects_bad_shape),
        cmocka_unit_test(test_scratch_sizes),
        cmocka_unit_test(test_create_rejects_unknown_isa),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
