/* The blocked GEMM (every instruction set) matches a naive triple loop,
 * including edge tiles, several K blocks, row strides wider than N and the
 * fused epilogue. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "kernels/gemm.h"
#include "test_support.h"

#include <math.h>
#include <stdlib.h>

static void naive_gemm(int m, int n, int k, const float *a, const float *b, size_t ldb,
                       const float *bias, const float *residual, ww_activation act, float *c,
                       size_t ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = bias ? bias[i] : 0.0;
            for (int p = 0; p < k; p++)
                sum += (double)a[(size_t)i * k + p] * b[p * ldb + j];
            if (residual) sum += residual[i * ldc + j];
            c[i * ldc + j] = ww_activate((float)sum, act);
        }
}

static void check_gemm(ww_isa isa, int m, int n, int k, int ld_extra, int use_bias,
                       int use_residual, ww_activation act, uint64_t seed)
{
    const ww_gemm_kernel *kern = ww_gemm_kernel_for(isa);
    assert_non_null(kern);
    size_t ldb = (size_t)n + ld_extra, ldc = (size_t)n + ld_extra;
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    float *a = malloc((size_t)m * k * sizeof *a);
    float *b = malloc((size_t)k * ldb * sizeof *b);
    float *bias = malloc((size_t)m * sizeof *bias);
    float *residual = malloc((size_t)m * ldc * sizeof *residual);
    float *want = malloc((size_t)m * ldc * sizeof *want);
    float *got = malloc((size_t)m * ldc * sizeof *got);
    float *packed = malloc(ww_gemm_packed_a_floats(kern, m, k) * sizeof *packed);
    float *scratch = malloc(ww_sgemm_scratch_floats(kern) * sizeof *scratch);
    ww_rng_fill(&rng, a, (size_t)m * k, -1, 1);
    ww_rng_fill(&rng, b, (size_t)k * ldb, -1, 1);
    ww_rng_fill(&rng, bias, (size_t)m, -1, 1);
    ww_rng_fill(&rng, residual, (size_t)m * ldc, -1, 1);
    /* Columns past n (the stride padding) must be left alone: same sentinel in both. */
    for (size_t i = 0; i < (size_t)m * ldc; i++)
        want[i] = got[i] = 12345.0f;
    naive_gemm(m, n, k, a, b, ldb, use_bias ? bias : NULL, use_residual ? residual : NULL, act,
               want, ldc);
    ww_gemm_pack_a(kern, m, k, a, (size_t)k, packed);
    ww_sgemm(kern, m, n, k, packed, b, ldb, use_bias ? bias : NULL, use_residual ? residual : NULL,
             act, got, ldc, scratch);
    double diff = ww_max_rel_diff(got, want, (size_t)m * ldc);
    if (!(diff <= 1e-4))
        fail_msg("%s m %d n %d k %d ld+%d bias %d res %d act %d: diff %g", ww_isa_name(isa), m, n,
                 k, ld_extra, use_bias, use_residual, (int)act, diff);
    free(a);
    free(b);
    free(bias);
    free(residual);
    free(want);
    free(got);
    free(packed);
    free(scratch);
}

static void test_gemm_edges(void **state)
{
    (void)state;
    static const int sizes[][3] = {{1, 1, 1},     {8, 32, 1},  {8, 32, 256}, {8, 32, 257},
                                   {6, 16, 16},   {7, 33, 5},  {9, 31, 300}, {64, 64, 64},
                                   {3, 100, 520}, {17, 5, 27}, {1, 97, 13},  {40, 1, 600}};
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (int variant = 0; variant < 4; variant++)
                check_gemm(isa, sizes[i][0], sizes[i][1], sizes[i][2], variant == 3 ? 3 : 0,
                           variant & 1, variant >= 2, (ww_activation)(variant % 3),
                           10 * i + variant);
    }
}

/* Panels narrower than a tile: every column remainder 1..NR-1 of the
 * widest kernel (half-width tile, column kernel, stack copy), full and
 * partial row panels, two K blocks (accumulation), and every activation
 * (the column kernel's epilogue is scalar code). */
static void test_gemm_narrow_panels(void **state)
{
    (void)state;
    static const int rows[] = {8, 16, 13};
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (int n = 1; n <= 2 * WW_GEMM_MAX_NR; n++)
            for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                int variant = n + (int)i;
                check_gemm(isa, rows[i], n, n % 2 ? 40 : 300, variant % 4 == 3 ? 2 : 0, variant & 1,
                           variant % 3 == 0, (ww_activation)(variant % (WW_ACT_HARDSWISH + 1)),
                           1000 + 10 * (uint64_t)n + i);
            }
        /* The 7x7 and 14x14 maps of the networks. */
        check_gemm(isa, 64, 49, 520, 0, 1, 1, WW_ACT_SILU, 7);
        check_gemm(isa, 24, 196, 72, 1, 1, 0, WW_ACT_RELU6, 8);
    }
}

static void test_gemm_random(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 99);
    for (int iter = 0; iter < 60; iter++) {
        int m = ww_rng_int(&rng, 1, 40), n = ww_rng_int(&rng, 1, 80), k = ww_rng_int(&rng, 1, 600);
        int ld_extra = ww_rng_int(&rng, 0, 5);
        int use_bias = ww_rng_int(&rng, 0, 1), use_res = ww_rng_int(&rng, 0, 1);
        ww_activation act = (ww_activation)ww_rng_int(&rng, 0, 2);
        for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++)
            if (ww_isa_supported(isa))
                check_gemm(isa, m, n, k, ld_extra, use_bias, use_res, act, 500 + (uint64_t)iter);
    }
}

/* How check_panel hands B to ww_gemm_panel. */
typedef enum panel_mode {
    PANEL_PREFETCH, /* packed panels, prefetch_a (the weight-streaming tiles) */
    PANEL_IN_PLACE, /* full-width panels as B's own rows (ldb), the last narrow one packed */
    /* The columns past the last multiple of NR spilled onto the panel
     * before them (kern->tile_spill), read in place with it, or packed
     * (ww_gemm_pack_spill) with the panel packed too. */
    PANEL_SPILL_IN_PLACE,
    PANEL_SPILL_PACKED
} panel_mode;

/* ww_gemm_panel against the naive product: M x N in panels of NR columns,
 * K in blocks (accumulation), edge rows and columns, every activation;
 * in place also with a residual. B is allocated to its exact size, so the
 * sanitizer build catches a read past its last row. */
static void check_panel(ww_isa isa, int m, int n, int k, int kc_block, ww_activation act,
                        panel_mode mode, uint64_t seed)
{
    const ww_gemm_kernel *kern = ww_gemm_kernel_for(isa);
    assert_non_null(kern);
    ww_rng rng;
    ww_rng_seed(&rng, seed);
    float *a = malloc((size_t)m * k * sizeof *a);
    float *b = malloc((size_t)k * n * sizeof *b);
    float *bias = malloc((size_t)m * sizeof *bias);
    float *residual = mode != PANEL_PREFETCH ? malloc((size_t)m * n * sizeof *residual) : NULL;
    float *want = malloc((size_t)m * n * sizeof *want);
    float *got = malloc((size_t)m * n * sizeof *got);
    float *packed = malloc(ww_gemm_packed_a_floats(kern, m, k) * sizeof *packed);
    float *panel = malloc((size_t)kc_block * kern->nr * sizeof *panel);
    float *spill_panel = malloc((size_t)kc_block * WW_GEMM_SPILL_STRIDE * sizeof *spill_panel);
    /* columns spilled onto the last full panel (only with full row panels) */
    int spill = 0;
    if ((mode == PANEL_SPILL_IN_PLACE || mode == PANEL_SPILL_PACKED) && m % kern->mr == 0 &&
        n > kern->nr && n % kern->nr <= kern->spill_max)
        spill = n % kern->nr;
    ww_rng_fill(&rng, a, (size_t)m * k, -1, 1);
    ww_rng_fill(&rng, b, (size_t)k * n, -1, 1);
    ww_rng_fill(&rng, bias, (size_t)m, -1, 1);
    if (residual) ww_rng_fill(&rng, residual, (size_t)m * n, -1, 1);
    naive_gemm(m, n, k, a, b, (size_t)n, bias, residual, act, want, (size_t)n);
    ww_gemm_pack_a(kern, m, k, a, (size_t)k, packed);
    for (int n0 = 0; n0 < n - spill; n0 += kern->nr) {
        int nr = n - n0 < kern->nr ? n - n0 : kern->nr;
        int last = n0 + kern->nr == n - spill;
        for (int k0 = 0; k0 < k; k0 += kc_block) {
            int kc = k - k0 < kc_block ? k - k0 : kc_block;
            const float *rows = b + (size_t)k0 * n + n0;
            int in_place =
                (mode == PANEL_IN_PLACE || mode == PANEL_SPILL_IN_PLACE) && nr == kern->nr;
            if (!in_place) ww_gemm_pack_b_panel(kern, kc, nr, rows, (size_t)n, panel);
            ww_gemm_panel_args args = {.kern = kern,
                                       .a_packed = packed,
                                       .k = k,
                                       .k0 = k0,
                                       .kc = kc,
                                       .m_begin = 0,
                                       .m_end = m,
                                       .nr = nr,
                                       .b_panel = in_place ? rows : panel,
                                       .ldb = in_place ? (size_t)n : 0,
                                       .c = got + n0,
                                       .ldc = (size_t)n,
                                       .bias = bias,
                                       .residual = residual ? residual + n0 : NULL,
                                       .act = act,
                                       .prefetch_a =
                                           mode == PANEL_PREFETCH || mode == PANEL_SPILL_IN_PLACE,
                                       /* the next panel is read in place too */
                                       .fetch_next = in_place && n0 + 2 * kern->nr <= n};
            if (spill && last) {
                args.spill = spill;
                if (in_place) {
                    args.b_spill = rows + kern->nr;
                    args.ld_spill = (size_t)n;
                } else {
                    ww_gemm_pack_spill(kc, spill, rows + kern->nr, (size_t)n, NULL, spill_panel);
                    args.b_spill = spill_panel;
                    args.ld_spill = WW_GEMM_SPILL_STRIDE;
                }
            }
            ww_gemm_panel(&args);
        }
    }
    double diff = ww_max_rel_diff(got, want, (size_t)m * n);
    if (!(diff <= 1e-4))
        fail_msg("mode %d %s m %d n %d k %d kc %d act %d spill %d: diff %g", (int)mode,
                 ww_isa_name(isa), m, n, k, kc_block, (int)act, spill, diff);
    free(a);
    free(b);
    free(bias);
    free(residual);
    free(want);
    free(got);
    free(packed);
    free(panel);
    free(spill_panel);
}

static void test_gemm_panel_prefetch(void **state)
{
    (void)state;
    static const int sizes[][4] = {{8, 32, 1, 1},     {16, 49, 600, 600},  {13, 64, 1100, 400},
                                   {40, 70, 300, 97}, {9, 33, 2000, 2000}, {64, 17, 5, 5}};
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            check_panel(isa, sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3],
                        (ww_activation)(i % (WW_ACT_HARDSWISH + 1)), PANEL_PREFETCH, 3000 + i);
    }
}

/* B read in place (1x1 convolutions): several full panels and a narrow
 * last one, K blocks, rows not a multiple of MR (the edge tile on a stack
 * copy), one full panel only, N a multiple of every NR. */
static void test_gemm_panel_in_place(void **state)
{
    (void)state;
    static const int sizes[][4] = {{8, 32, 1, 1},    {16, 100, 24, 24}, {13, 70, 300, 256},
                                   {40, 96, 64, 17}, {3, 33, 5, 5},     {24, 64, 600, 256},
                                   {30, 200, 7, 7}};
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            check_panel(isa, sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3],
                        (ww_activation)(i % (WW_ACT_HARDSWISH + 1)), PANEL_IN_PLACE, 3100 + i);
    }
}

/* Spilled columns (kern->tile_spill): 1..7 past one or more full panels,
 * read in place or packed, K blocks (the spill accumulates across them),
 * every activation, residual. On AVX-512 the spill tile must be there. */
static void test_gemm_panel_spill(void **state)
{
    (void)state;
    static const int sizes[][4] = {{8, 33, 5, 5},     {16, 36, 300, 256}, {24, 71, 40, 40},
                                   {8, 196, 96, 96},  {32, 39, 600, 256}, {8, 98, 1, 1},
                                   {64, 37, 520, 520}};
    if (ww_isa_supported(WW_ISA_AVX512))
        assert_true(ww_gemm_kernel_for(WW_ISA_AVX512)->tile_spill &&
                    ww_gemm_kernel_for(WW_ISA_AVX512)->spill_max == WW_GEMM_MAX_SPILL);
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
        if (!ww_isa_supported(isa)) continue;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (panel_mode mode = PANEL_SPILL_IN_PLACE; mode <= PANEL_SPILL_PACKED; mode++)
                check_panel(isa, sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3],
                            (ww_activation)((i + mode) % (WW_ACT_HARDSWISH + 1)), mode,
                            3200 + 2 * i + mode);
    }
}

static void test_kernel_lookup(void **state)
{
    (void)state;
    const ww_gemm_kernel *best = ww_gemm_kernel_for(WW_ISA_AUTO);
    assert_non_null(best);
    assert_int_equal(best->isa, ww_isa_best());
    assert_true(best->mr <= WW_GEMM_MAX_MR && best->nr <= WW_GEMM_MAX_NR);
    const ww_gemm_kernel *portable = ww_gemm_kernel_for(WW_ISA_PORTABLE);
    assert_non_null(portable);
    for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++)
        assert_int_equal(ww_gemm_kernel_for(isa) != NULL, ww_isa_supported(isa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_lookup),       cmocka_unit_test(test_gemm_edges),
        cmocka_unit_test(test_gemm_narrow_panels),  cmocka_unit_test(test_gemm_random),
        cmocka_unit_test(test_gemm_panel_prefetch), cmocka_unit_test(test_gemm_panel_in_place),
        cmocka_unit_test(test_gemm_panel_spill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
