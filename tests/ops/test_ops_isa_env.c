/* $WANWU_ISA caps the instruction set AUTO resolves to (read once, so each
 * case runs in a child process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops/ops.h"

/* The ISA AUTO picks with WANWU_ISA=value (NULL = unset), from a fresh process. */
static ww_isa best_with(const char *value)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (value)
            setenv("WANWU_ISA", value, 1);
        else
            unsetenv("WANWU_ISA");
        _exit((int)ww_isa_best());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return (ww_isa)WEXITSTATUS(status);
}

static ww_isa widest(void)
{
    if (ww_isa_supported(WW_ISA_AVX512)) return WW_ISA_AVX512;
    if (ww_isa_supported(WW_ISA_AVX2)) return WW_ISA_AVX2;
    return WW_ISA_PORTABLE;
}

static void test_env_caps_isa(void **state)
{
    (void)state;
    ww_isa top = widest();
    assert_int_equal(best_with(NULL), top);
    assert_int_equal(best_with("scalar"), WW_ISA_PORTABLE);
    assert_int_equal(best_with("portable"), WW_ISA_PORTABLE);
    assert_int_equal(best_with("avx2"), top >= WW_ISA_AVX2 ? WW_ISA_AVX2 : WW_ISA_PORTABLE);
    assert_int_equal(best_with("avx512"), top);
    assert_int_equal(best_with("bogus"), top);
    printf("widest: %s\n", ww_isa_name(top));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_caps_isa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
