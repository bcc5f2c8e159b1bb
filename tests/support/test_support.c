#include "test_support.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *ww_test_shared_dir(void)
{
    static char buf[4096];
    const char *env = getenv("WANWU_SHARED");
    if (env && *env) return is_dir(env) ? env : NULL;
    const char *src = getenv("WANWU_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/../shared", src ? src : ".");
    return is_dir(buf) ? buf : NULL;
}

int ww_test_missing_shared(const char *what)
{
    const char *ci = getenv("CI");
    if (ci && *ci && strcmp(ci, "false") != 0) {
        fprintf(stderr,
                "FAIL: shared data needed for %s is missing (set WANWU_SHARED); "
                "under CI this is an error\n",
                what);
        exit(1);
    }
    fprintf(stderr,
            "\n*** SKIP: %s needs the shared data folder (WANWU_SHARED, default "
            "../shared), which is absent ***\n\n",
            what);
    return 1;
}

const char *ww_test_tmp_dir(void)
{
    const char *env = getenv("WANWU_TEST_TMP");
    const char *dir = (env && *env) ? env : "/tmp";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return "/tmp";
    return dir;
}

void ww_rng_seed(ww_rng *r, uint64_t seed)
{
    r->state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->state == 0) r->state = 1;
}

uint32_t ww_rng_u32(ww_rng *r)
{
    uint64_t x = r->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->state = x;
    return (uint32_t)(x >> 32);
}

int ww_rng_int(ww_rng *r, int lo, int hi_inclusive)
{
    return lo + (int)(ww_rng_u32(r) % (uint32_t)(hi_inclusive - lo + 1));
}

float ww_rng_uniform(ww_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(ww_rng_u32(r) >> 8) / (float)(1u << 24);
}

void ww_rng_fill(ww_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ww_rng_uniform(r, lo, hi);
}

double ww_max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= worst)) worst = d; /* NaN propagates as worst */
        if (isnan(d)) return INFINITY;
    }
    return worst;
}

uint8_t *ww_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *size = (size_t)len;
    return buf;
}

ww_threadpool *ww_test_pools[4];

int ww_test_setup_pools(void **state)
{
    (void)state;
    for (int t = 2; t <= 3; t++)
        if (ww_threadpool_create(t, &ww_test_pools[t], NULL) != WANWU_OK) return -1;
    return 0;
}

int ww_test_teardown_pools(void **state)
{
    (void)state;
    for (int t = 2; t <= 3; t++) {
        ww_threadpool_free(ww_test_pools[t]);
        ww_test_pools[t] = NULL;
    }
    return 0;
}

ww_conv2d_shape ww_test_conv3x3_same(int c, int h, int w, int out_c, int groups)
{
    ww_conv2d_shape s = {.in_c = c,
                         .in_h = h,
                         .in_w = w,
                         .out_c = out_c,
                         .out_h = h,
                         .out_w = w,
                         .kernel_h = 3,
                         .kernel_w = 3,
                         .stride_h = 1,
                         .stride_w = 1,
                         .pad_top = 1,
                         .pad_left = 1,
                         .pad_bottom = 1,
                         .pad_right = 1,
                         .dilation_h = 1,
                         .dilation_w = 1,
                         .groups = groups};
    return s;
}
