/* The vectorized fully connected kernels (four rows per step, masked or
 * scalar tails, parallel over 4-row jobs plus a leftover) match the
 * reference on every instruction set and thread count, for input lengths
 * around the vector widths and output counts around the 4-row step. */
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

#include <stdlib.h>

#define TOLERANCE 1e-5

static void test_linear_every_isa(void **state)
{
    (void)state;
    static const int nins[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 1280};
    static const int nouts[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 1000};
    ww_rng rng;
    ww_rng_seed(&rng, 1129);
    int checked = 0;
    for (size_t a = 0; a < sizeof nins / sizeof nins[0]; a++) {
        for (size_t b = 0; b < sizeof nouts / sizeof nouts[0]; b++) {
            int nin = nins[a], nout = nouts[b];
            float *in = malloc((size_t)nin * sizeof *in);
            float *w = malloc((size_t)nin * nout * sizeof *w);
            float *bias = malloc((size_t)nout * sizeof *bias);
            float *want = malloc((size_t)nout * sizeof *want);
            float *got = malloc((size_t)nout * sizeof *got);
            assert_true(in && w && bias && want && got);
            ww_rng_fill(&rng, in, (size_t)nin, -1, 1);
            ww_rng_fill(&rng, w, (size_t)nin * nout, -1, 1);
            ww_rng_fill(&rng, bias, (size_t)nout, -1, 1);
            for (int variant = 0; variant < 4; variant++) {
                ww_activation act = variant & 1 ? WW_ACT_RELU : WW_ACT_NONE;
                const float *bp = variant & 2 ? bias : NULL;
                ww_linear_ref(nin, nout, in, w, bp, act, want);
                for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
                    if (!ww_isa_supported(isa)) continue;
                    for (int threads = 1; threads <= 3; threads++) {
                        for (int o = 0; o < nout; o++)
                            got[o] = -12345.0f; /* every output must be written */
                        ww_linear_isa(isa, nin, nout, in, w, bp, act, got, ww_test_pools[threads]);
                        double diff = ww_max_rel_diff(got, want, (size_t)nout);
                        if (!(diff <= TOLERANCE))
                            fail_msg("linear %d -> %d act %d bias %d [%s, %d threads]: %g", nin,
                                     nout, act, bp != NULL, ww_isa_name(isa), threads, diff);
                        checked++;
                    }
                }
            }
            free(in);
            free(w);
            free(bias);
            free(want);
            free(got);
        }
    }
    assert_true(checked >= 130 * 4 * 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_every_isa),
    };
    return cmocka_run_group_tests(tests, ww_test_setup_pools, ww_test_teardown_pools);
}
