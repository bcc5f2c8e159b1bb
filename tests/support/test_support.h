/* Helpers shared by the C tests. */
#ifndef WW_TEST_SUPPORT_H
#define WW_TEST_SUPPORT_H

#include "core/threadpool.h"
#include "ops/ops.h"

#include <stddef.h>
#include <stdint.h>

/* Directory with the shared data (models/, imagenet-sample/): $WANWU_SHARED,
 * else ../shared next to the source tree. Returns NULL if it does not exist;
 * in that case, call ww_test_missing_shared() which fails under CI=true and
 * otherwise prints a loud SKIP message. */
const char *ww_test_shared_dir(void);
/* Returns 1 when the test should skip (message printed), fails the
 * process (exit 1) under CI. */
int ww_test_missing_shared(const char *what);

/* Scratch directory for test files ($WANWU_TEST_TMP or /tmp), created. */
const char *ww_test_tmp_dir(void);

/* Deterministic xorshift generator. */
typedef struct ww_rng {
    uint64_t state;
} ww_rng;
void ww_rng_seed(ww_rng *r, uint64_t seed);
uint32_t ww_rng_u32(ww_rng *r);
int ww_rng_int(ww_rng *r, int lo, int hi_inclusive);
float ww_rng_uniform(ww_rng *r, float lo, float hi);
void ww_rng_fill(ww_rng *r, float *x, size_t n, float lo, float hi);

/* Max |a-b| / (1 + |b|) over n values (mixed absolute/relative error). */
double ww_max_rel_diff(const float *a, const float *b, size_t n);

/* A 3x3, stride-1, padding-1 ("same") convolution of c x h x w into
 * out_c channels, the given groups, no dilation. */
ww_conv2d_shape ww_test_conv3x3_same(int c, int h, int w, int out_c, int groups);

/* Reads a whole file; returns NULL on failure. */
uint8_t *ww_test_read_file(const char *path, size_t *size);

/* Thread pools for kernel tests, indexed by thread count: [1] stays NULL
 * (serial), [2] and [3] are real pools. Use ww_test_setup_pools and
 * ww_test_teardown_pools as cmocka group setup/teardown. */
extern ww_threadpool *ww_test_pools[4];
int ww_test_setup_pools(void **state);
int ww_test_teardown_pools(void **state);

#endif
