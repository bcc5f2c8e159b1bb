/* The vectorized max pooling kernel (kernels/pool.c) against the reference
 * on the shapes its paths split on: 3x3 stride 2 (shuffle path) with
 * every padding, stride 1, other strides and kernels (scalar window
 * loop), rows longer than one column chunk, windows too wide for the
 * chunk buffer, 1x1 inputs and odd sizes; 1-3 threads, every instruction
 * set the CPU has (4-lane loops, and on AVX-512 16-lane ones). Results
 * must be bit-identical (max is exact). Buffers are exact-size so the
 * sanitizer build catches overruns. */
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

static void check(int channels, int in_h, int in_w, int kh, int kw, int sh, int sw, int pt, int pl,
                  int pb, int pr, uint64_t seed)
{
    ww_pool2d_shape s = {channels, in_h, in_w, 0, 0, kh, kw, sh, sw, pt, pl, pb, pr};
    s.out_h = ww_window_out_dim(in_h, kh, sh, pt, pb, 1);
    s.out_w = ww_window_out_dim(in_w, kw, sw, pl, pr, 1);
    if (s.out_h < 1 || s.out_w < 1) return;
    size_t in_n = (size_t)channels * in_h * in_w, out_n = (size_t)channels * s.out_h * s.out_w;
    float *in = malloc(in_n * sizeof *in), *want = malloc(out_n * sizeof *want);
    float *got = malloc(out_n * sizeof *got);
    assert_true(in && want && got);
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    ww_rng_fill(&rng, in, in_n, -3.0f, -1.0f); /* all negative: padding must not win */
    ww_maxpool2d_ref(&s, in, want);
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (int threads = 1; threads <= 3; threads++) {
            for (size_t i = 0; i < out_n; i++)
                got[i] = NAN; /* every output must be written */
            ww_maxpool2d_isa(isa, &s, in, got, ww_test_pools[threads]);
            for (size_t i = 0; i < out_n; i++)
                if (!(got[i] == want[i]))
                    fail_msg("maxpool c %d in %dx%d k %dx%d s %dx%d pad %d %d %d %d [%s], %d "
                             "threads: [%zu] %g vs %g",
                             channels, in_h, in_w, kh, kw, sh, sw, pt, pl, pb, pr, ww_isa_name(isa),
                             threads, i, (double)got[i], (double)want[i]);
        }
    }
    free(in);
    free(want);
    free(got);
}

static void test_3x3_stride2(void **state)
{
    (void)state;
    check(64, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1); /* ResNet's pool */
    for (int w = 1; w <= 24; w++)
        for (int pad = 0; pad <= 1; pad++)
            check(2, 5, w, 3, 3, 2, 2, pad, pad, pad, pad, 10 + (uint64_t)w);
    check(3, 7, 9, 3, 3, 2, 2, 1, 0, 0, 1, 40); /* asymmetric padding */
    check(3, 7, 9, 3, 3, 2, 2, 0, 1, 1, 0, 41);
    check(1, 3, 2100, 3, 3, 2, 2, 1, 1, 1, 1, 42); /* several column chunks per row */
    for (int w = 25; w <= 80; w += 5)              /* 16-lane loops and their tails */
        check(3, 6, w, 3, 3, 2, 2, w % 2, w % 2, 1 - w % 2, w % 2, 60 + (uint64_t)w);
    check(5, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 43);
}

static void test_other_windows(void **state)
{
    (void)state;
    check(3, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 50); /* stride 1 */
    check(2, 6, 37, 2, 2, 2, 2, 0, 0, 0, 0, 51);
    check(2, 6, 37, 5, 5, 3, 3, 2, 2, 1, 2, 52);
    check(2, 4, 1300, 1, 4, 1, 1, 0, 2, 0, 1, 53); /* stride 1, several chunks */
    check(1, 3, 1500, 3, 5, 2, 4, 1, 2, 1, 2, 54);
    check(1, 2, 1400, 1, 1200, 1, 600, 0, 600, 0, 0, 55); /* wider than the chunk buffer */
    ww_rng rng;
    ww_rng_seed(&rng, 777);
    for (int iter = 0; iter < 150; iter++) {
        int kh = ww_rng_int(&rng, 1, 5), kw = ww_rng_int(&rng, 1, 5);
        check(ww_rng_int(&rng, 1, 4), ww_rng_int(&rng, 1, 16), ww_rng_int(&rng, 1, 40), kh, kw,
              ww_rng_int(&rng, 1, 3), ww_rng_int(&rng, 1, 3), ww_rng_int(&rng, 0, kh / 2),
              ww_rng_int(&rng, 0, kw / 2), ww_rng_int(&rng, 0, kh / 2), ww_rng_int(&rng, 0, kw / 2),
              1000 + (uint64_t)iter);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_3x3_stride2),
        cmocka_unit_test(test_other_windows),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
