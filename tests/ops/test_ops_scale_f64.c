/* ww_scale_f64 (BatchNorm folding's x * scale in double) gives the scalar
 * reference's bits on every instruction set, for any length and offset
 * (vector body plus scalar tail) and for values whose product overflows,
 * underflows to a subnormal or is an exact tie in float. */
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

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_scale_matches_reference_bits(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 20261129);
    enum { MAX_N = 80, PAD = 3 };
    float src[MAX_N + PAD], want[MAX_N + PAD], got[MAX_N + PAD];
    const double scales[] = {1.0, -0.75, 3.0000001, 1e-30, 1e30, 0.1, 1.0 / 3.0, -2.5e-3};
    int checked = 0;
    for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
        for (int n = 0; n <= MAX_N; n++) {
            for (int off = 0; off < PAD; off++) {
                for (int i = 0; i < MAX_N + PAD; i++) {
                    float v = ww_rng_uniform(&rng, -4.0f, 4.0f);
                    if (i % 11 == 3) v = FLT_MAX / 2;        /* overflows with large scales */
                    if (i % 13 == 5) v = FLT_MIN * 1.5f;     /* subnormal results */
                    if (i % 17 == 7) v = 1.0f + FLT_EPSILON; /* tie cases for 3.0000001 */
                    src[i] = v;
                }
                memcpy(want, src, sizeof src);
                ww_scale_f64_ref((size_t)n, want + off, scales[si]);
                for (ww_isa isa = WW_ISA_PORTABLE; isa <= WW_ISA_AVX512; isa++) {
                    if (!ww_isa_supported(isa)) continue;
                    memcpy(got, src, sizeof src);
                    ww_scale_f64_isa(isa, (size_t)n, got + off, scales[si]);
                    if (memcmp(got, want, sizeof got) != 0) {
                        int at = 0;
                        while (memcmp(&got[at], &want[at], sizeof(float)) == 0)
                            at++;
                        fail_msg("scale %g n %d offset %d [%s]: element %d is %a, reference %a",
                                 scales[si], n, off, ww_isa_name(isa), at, (double)got[at],
                                 (double)want[at]);
                    }
                    checked++;
                }
            }
        }
    }
    assert_true(checked > 0);
    /* the reference itself: one product in double, rounded once to float */
    float x[2] = {3.0f, -0.5f};
    ww_scale_f64_ref(2, x, 1.0 / 3.0);
    assert_true(x[0] == (float)(3.0 * (1.0 / 3.0)));
    assert_true(x[1] == (float)(-0.5 / 3.0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_matches_reference_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
