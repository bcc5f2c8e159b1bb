/* The .pth reader loads torch.save files of both formats with exact
 * values, and fails cleanly (error value, message, nothing leaked) on
 * truncated, corrupted or foreign files. Fixtures come from
 * make_pth_fixtures.py run with Debian's python3-torch. */
/* cmocka.h needs these headers first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "format/pth.h"
#include "test_support.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fixture_dir[4096];

static const char *fixture(const char *name)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    return path;
}

static int make_fixtures(void **state)
{
    (void)state;
    const char *source = getenv("WANWU_SOURCE_DIR");
    if (!source || !*source) {
        fprintf(stderr, "WANWU_SOURCE_DIR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s/pth_fixtures", ww_test_tmp_dir());
    char command[12288];
    snprintf(command, sizeof command,
             "/usr/bin/python3 '%s/tests/format/make_pth_fixtures.py' '%s'", source, fixture_dir);
    int rc = system(command);
    if (rc != 0) {
        fprintf(stderr, "fixture generation failed (%d): %s\n", rc, command);
        return -1;
    }
    return 0;
}

static void load_ok(const char *name, ww_state_dict *sd)
{
    wanwu_error err;
    wanwu_status st = ww_pth_load_file(fixture(name), sd, &err);
    if (st != WANWU_OK) fail_msg("loading %s: %s", name, err.message);
}

static float pattern(size_t i)
{
    return (float)(i % 97) * 0.25f - 3.0f;
}

static const ww_named_tensor *expect_tensor(const ww_state_dict *sd, const char *name,
                                            ww_dtype dtype, int ndim, const int64_t *shape)
{
    const ww_named_tensor *t = ww_state_dict_find(sd, name);
    if (!t) fail_msg("tensor %s missing", name);
    assert_int_equal(t->stored_dtype, dtype);
    assert_int_equal(t->ndim, ndim);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        assert_int_equal(t->shape[d], shape[d]);
        numel *= (size_t)shape[d];
    }
    assert_int_equal(t->numel, numel);
    if (dtype == WW_DTYPE_I64) {
        assert_non_null(t->i64);
        assert_null(t->data);
    } else {
        assert_non_null(t->data);
        assert_null(t->i64);
    }
    return t;
}

/* Checks every tensor of the small fixture state dict. */
static void check_small(const ww_state_dict *sd)
{
    static const char *const order[] = {"f32",      "f16",      "bf16",       "f64",
                                        "i64",      "scalar",   "i64_scalar", "transposed",
                                        "shared_a", "shared_b", "strided",    "empty",
                                        "expanded", "param",    "f16_special"};
    size_t expected_count = sizeof order / sizeof order[0];
    assert_int_equal(sd->count, expected_count); /* "count" (an int) is skipped */
    for (size_t i = 0; i < expected_count; i++)
        assert_string_equal(sd->tensors[i].name, order[i]);

    const ww_named_tensor *t;
    t = expect_tensor(sd, "f32", WW_DTYPE_F32, 3, (const int64_t[]){3, 4, 5});
    for (size_t i = 0; i < 60; i++)
        assert_true(t->data[i] == pattern(i));
    t = expect_tensor(sd, "f16", WW_DTYPE_F16, 3, (const int64_t[]){2, 3, 7});
    for (size_t i = 0; i < 42; i++)
        assert_true(t->data[i] == pattern(i));
    t = expect_tensor(sd, "bf16", WW_DTYPE_BF16, 1, (const int64_t[]){9});
    for (size_t i = 0; i < 9; i++)
        assert_true(t->data[i] == pattern(i));
    t = expect_tensor(sd, "f64", WW_DTYPE_F64, 1, (const int64_t[]){11});
    for (size_t i = 0; i < 11; i++)
        assert_true(t->data[i] == (float)((double)i / 3.0));
    t = expect_tensor(sd, "i64", WW_DTYPE_I64, 2, (const int64_t[]){4, 6});
    for (int64_t i = 0; i < 24; i++)
        assert_true(t->i64[i] == i * 1000000000007LL - 5000000000000LL);
    t = expect_tensor(sd, "scalar", WW_DTYPE_F32, 0, NULL);
    assert_true(t->data[0] == 2.5f);
    t = expect_tensor(sd, "i64_scalar", WW_DTYPE_I64, 0, NULL);
    assert_true(t->i64[0] == 12345678901LL);
    t = expect_tensor(sd, "transposed", WW_DTYPE_F32, 2, (const int64_t[]){6, 4});
    for (size_t r = 0; r < 6; r++)
        for (size_t c = 0; c < 4; c++)
            assert_true(t->data[r * 4 + c] == pattern(c * 6 + r));
    t = expect_tensor(sd, "shared_a", WW_DTYPE_F32, 2, (const int64_t[]){2, 5});
    for (size_t i = 0; i < 10; i++)
        assert_true(t->data[i] == pattern(2 + i));
    t = expect_tensor(sd, "shared_b", WW_DTYPE_F32, 2, (const int64_t[]){3, 4});
    for (size_t i = 0; i < 12; i++)
        assert_true(t->data[i] == pattern(20 + i));
    t = expect_tensor(sd, "strided", WW_DTYPE_F32, 1, (const int64_t[]){13});
    for (size_t i = 0; i < 13; i++)
        assert_true(t->data[i] == pattern(1 + 3 * i));
    expect_tensor(sd, "empty", WW_DTYPE_F32, 2, (const int64_t[]){0, 3});
    t = expect_tensor(sd, "expanded", WW_DTYPE_F32, 2, (const int64_t[]){3, 2});
    for (size_t i = 0; i < 6; i++)
        assert_true(t->data[i] == pattern(i % 2));
    t = expect_tensor(sd, "param", WW_DTYPE_F32, 1, (const int64_t[]){5});
    for (size_t i = 0; i < 5; i++)
        assert_true(t->data[i] == pattern(i));

    t = expect_tensor(sd, "f16_special", WW_DTYPE_F16, 1, (const int64_t[]){11});
    const float *v = t->data;
    assert_true(v[0] == 0.0f && !signbit(v[0]));
    assert_true(v[1] == 0.0f && signbit(v[1]));
    assert_true(v[2] == ldexpf(1.0f, -24));
    assert_true(v[3] == ldexpf(3.0f, -24));
    assert_true(v[4] == ldexpf(1023.0f, -24));
    assert_true(v[5] == ldexpf(1.0f, -14));
    assert_true(v[6] == 65504.0f);
    assert_true(isinf(v[7]) && v[7] > 0);
    assert_true(isinf(v[8]) && v[8] < 0);
    assert_true(isnan(v[9]));
    assert_true(v[10] == 0.333251953125f); /* 1/3 rounded to half */

    assert_null(ww_state_dict_find(sd, "count"));
    assert_null(ww_state_dict_find(sd, "no.such.tensor"));
}

static void test_small_both_formats(void **state)
{
    (void)state;
    static const char *const files[] = {"small_zip.pth",       "small_legacy.pth",
                                        "small_zip_p4.pth",    "small_legacy_p5.pth",
                                        "ckpt_state_dict.pth", "ckpt_model.pth"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        ww_state_dict sd;
        load_ok(files[f], &sd);
        check_small(&sd);
        ww_state_dict_free(&sd);
        assert_null(sd.tensors);
        assert_int_equal(sd.count, 0);
        ww_state_dict_free(&sd); /* freeing an empty dict is fine */
    }
}

static void test_load_memory_matches_file(void **state)
{
    (void)state;
    size_t size;
    uint8_t *bytes = ww_test_read_file(fixture("small_legacy.pth"), &size);
    assert_non_null(bytes);
    ww_state_dict sd;
    wanwu_error err;
    assert_int_equal(ww_pth_load_memory(bytes, size, "in-memory", &sd, &err), WANWU_OK);
    check_small(&sd);
    ww_state_dict_free(&sd);
    free(bytes);
}

static void test_rebuild_from_type(void **state)
{
    (void)state;
    ww_state_dict sd;
    load_ok("from_type.pth", &sd);
    assert_int_equal(sd.count, 1);
    const ww_named_tensor *t = expect_tensor(&sd, "x", WW_DTYPE_F32, 2, (const int64_t[]){2, 3});
    for (size_t i = 0; i < 6; i++)
        assert_true(t->data[i] == pattern(i));
    ww_state_dict_free(&sd);
}

static void test_legacy_storage_view(void **state)
{
    (void)state;
    ww_state_dict sd;
    load_ok("legacy_view.pth", &sd);
    assert_int_equal(sd.count, 1);
    const ww_named_tensor *t = expect_tensor(&sd, "v", WW_DTYPE_F32, 2, (const int64_t[]){2, 2});
    for (size_t i = 0; i < 4; i++)
        assert_true(t->data[i] == pattern(5 + i));
    ww_state_dict_free(&sd);
}

/* Expected failures: the status, a message naming the file and the cause. */
static void expect_failure(const char *path, wanwu_status status, const char *substring)
{
    static ww_named_tensor garbage;
    ww_state_dict sd = {.tensors = &garbage, .count = 99}; /* must be reset */
    wanwu_error err;
    wanwu_status st = ww_pth_load_file(path, &sd, &err);
    if (st != status || !strstr(err.message, substring) || strncmp(err.message, path, strlen(path)))
        fail_msg("%s: got status %d '%s', expected %d with '%s'", path, st, err.message, status,
                 substring);
    assert_int_equal(err.status, status);
    assert_null(sd.tensors);
    assert_int_equal(sd.count, 0);
    ww_state_dict_free(&sd);
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static void test_foreign_files(void **state)
{
    (void)state;
    char path[8192];
    snprintf(path, sizeof path, "%s/empty.pth", fixture_dir);
    write_file(path, "", 0);
    expect_failure(path, WANWU_ERR_FORMAT, "not a PyTorch file (the file is empty)");

    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                  'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};
    snprintf(path, sizeof path, "%s/image.png", fixture_dir);
    write_file(path, png, sizeof png);
    expect_failure(path, WANWU_ERR_FORMAT,
                   "not a PyTorch file (no zip signature or pickle "
                   "magic number)");
    snprintf(path, sizeof path, "%s/notes.txt", fixture_dir);
    write_file(path, "hello, weights\n", 15);
    expect_failure(path, WANWU_ERR_FORMAT, "not a PyTorch file");
    /* A pickle that is not torch's legacy header. */
    static const uint8_t plain_pickle[] = {0x80, 0x02, 0x8a, 0x01, 0x05, '.'};
    snprintf(path, sizeof path, "%s/plain.pkl", fixture_dir);
    write_file(path, plain_pickle, sizeof plain_pickle);
    expect_failure(path, WANWU_ERR_FORMAT, "not a PyTorch file");
    /* A zip without data.pkl. */
    static const uint8_t empty_zip[22] = {'P', 'K', 5, 6};
    snprintf(path, sizeof path, "%s/empty.zip", fixture_dir);
    write_file(path, empty_zip, sizeof empty_zip);
    expect_failure(path, WANWU_ERR_FORMAT, "data.pkl");

    snprintf(path, sizeof path, "%s/does-not-exist.pth", fixture_dir);
    expect_failure(path, WANWU_ERR_NOT_FOUND, "No such file");
    expect_failure(fixture_dir, WANWU_ERR_IO, "not a regular file");

    expect_failure(fixture("whole_module.pth"), WANWU_ERR_UNSUPPORTED,
                   "pickle references unsupported global 'torch.nn.modules.linear.Linear'");
    expect_failure(fixture("single_tensor.pth"), WANWU_ERR_FORMAT,
                   "holds a single tensor, not a state dict");
    expect_failure(fixture("no_tensors.pth"), WANWU_ERR_FORMAT,
                   "no tensors found in the state dict (keys: 'epoch', 'net')");
    expect_failure(fixture("int32.pth"), WANWU_ERR_UNSUPPORTED,
                   "tensor w: unsupported dtype int32");
}

/* Loads `size` bytes from an exact-size copy, so ASan sees any overread. */
static wanwu_status load_copy(const uint8_t *bytes, size_t size, ww_state_dict *sd,
                              wanwu_error *err)
{
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    memcpy(copy, bytes, size);
    wanwu_status st = ww_pth_load_memory(copy, size, "fuzzed", sd, err);
    free(copy);
    return st;
}

static void expect_truncation_fails(const uint8_t *bytes, size_t len, int copy)
{
    ww_state_dict sd;
    wanwu_error err;
    wanwu_status st = copy ? load_copy(bytes, len, &sd, &err)
                           : ww_pth_load_memory(bytes, len, "truncated", &sd, &err);
    if (st == WANWU_OK) fail_msg("truncation to %zu bytes loaded successfully", len);
    assert_true(strlen(err.message) > strlen("fuzzed: "));
    assert_null(sd.tensors);
    assert_int_equal(sd.count, 0);
}

static void test_truncated_small(void **state)
{
    (void)state;
    static const char *const files[] = {"small_zip.pth", "small_legacy.pth"};
    for (size_t f = 0; f < 2; f++) {
        size_t size;
        uint8_t *bytes = ww_test_read_file(fixture(files[f]), &size);
        assert_non_null(bytes);
        for (size_t len = 0; len < size; len++)
            expect_truncation_fails(bytes, len, 1);
        free(bytes);
    }
}

static void test_truncated_resnet(void **state)
{
    (void)state;
    static const char *const files[] = {"resnet18_zip.pth", "resnet18_legacy.pth"};
    for (size_t f = 0; f < 2; f++) {
        size_t size;
        uint8_t *bytes = ww_test_read_file(fixture(files[f]), &size);
        assert_non_null(bytes);
        /* Dense near the start (headers, pickle), spread over the data, dense at the end. */
        for (size_t len = 0; len < 20000; len += 97)
            expect_truncation_fails(bytes, len, 0);
        for (size_t k = 0; k < 200; k++)
            expect_truncation_fails(bytes, size / 200 * k + 13, 0);
        for (size_t back = 1; back < 2000; back += 37)
            expect_truncation_fails(bytes, size - back, 0);
        free(bytes);
    }
}

/* Flips 1-3 random bytes at positions chosen by `pick`; loading may succeed
 * or fail, but must never crash, leak or leave a half-filled result. */
/* Flips 1-3 random bytes in [lo, hi); loading may succeed or fail, but must
 * never crash, leak or leave a half-filled result. With `copy`, loads an
 * exact-size copy; otherwise flips in place and restores the bytes after. */
static void flip_and_load(uint8_t *bytes, size_t size, ww_rng *rng, size_t lo, size_t hi, int copy)
{
    size_t at[3];
    uint8_t saved[3];
    int flips = ww_rng_int(rng, 1, 3);
    for (int i = 0; i < flips; i++) {
        at[i] = lo + (size_t)ww_rng_u32(rng) % (hi - lo);
        saved[i] = bytes[at[i]];
        bytes[at[i]] ^= (uint8_t)ww_rng_int(rng, 1, 255);
    }
    ww_state_dict sd;
    wanwu_error err;
    wanwu_status st = copy ? load_copy(bytes, size, &sd, &err)
                           : ww_pth_load_memory(bytes, size, "fuzzed", &sd, &err);
    for (int i = flips - 1; i >= 0; i--)
        bytes[at[i]] = saved[i];
    if (st == WANWU_OK) {
        for (size_t i = 0; i < sd.count; i++) {
            const ww_named_tensor *t = &sd.tensors[i];
            assert_non_null(t->name);
            assert_true(t->data != NULL || t->i64 != NULL);
        }
        ww_state_dict_free(&sd);
    } else {
        assert_true(err.message[0] != '\0');
        assert_null(sd.tensors);
    }
}

static void test_flipped_small(void **state)
{
    (void)state;
    static const char *const files[] = {"small_zip.pth", "small_legacy.pth"};
    ww_rng rng;
    ww_rng_seed(&rng, 20240601);
    for (size_t f = 0; f < 2; f++) {
        size_t size;
        uint8_t *bytes = ww_test_read_file(fixture(files[f]), &size);
        assert_non_null(bytes);
        for (int trial = 0; trial < 400; trial++)
            flip_and_load(bytes, size, &rng, 0, size, 1);
        free(bytes);
    }
}

static void test_flipped_resnet(void **state)
{
    (void)state;
    static const char *const files[] = {"resnet18_zip.pth", "resnet18_legacy.pth"};
    ww_rng rng;
    ww_rng_seed(&rng, 7);
    for (size_t f = 0; f < 2; f++) {
        size_t size;
        uint8_t *bytes = ww_test_read_file(fixture(files[f]), &size);
        assert_non_null(bytes);
        /* Mostly the pickle and the zip directory, where parsing happens. */
        for (int trial = 0; trial < 40; trial++)
            flip_and_load(bytes, size, &rng, 0, 20000, 0);
        for (int trial = 0; trial < 20; trial++)
            flip_and_load(bytes, size, &rng, size - 20000, size, 0);
        for (int trial = 0; trial < 10; trial++)
            flip_and_load(bytes, size, &rng, 0, size, 0);
        free(bytes);
    }
}

/* One line of a manifest: name dtype ndim dims... sum */
typedef struct manifest_entry {
    char name[128];
    char dtype[16];
    int ndim;
    int64_t shape[WW_MAX_DIMS];
    double sum;
} manifest_entry;

static size_t read_manifest(const char *name, manifest_entry *entries, size_t cap)
{
    FILE *f = fopen(fixture(name), "r");
    assert_non_null(f);
    size_t n = 0;
    while (n < cap &&
           fscanf(f, "%127s %15s %d", entries[n].name, entries[n].dtype, &entries[n].ndim) == 3) {
        assert_true(entries[n].ndim >= 0 && entries[n].ndim <= WW_MAX_DIMS);
        for (int d = 0; d < entries[n].ndim; d++)
            assert_int_equal(fscanf(f, "%" SCNd64, &entries[n].shape[d]), 1);
        assert_int_equal(fscanf(f, "%lf", &entries[n].sum), 1);
        n++;
    }
    fclose(f);
    return n;
}

static void check_against_manifest(const ww_state_dict *sd, const manifest_entry *m, size_t n,
                                   int check_values)
{
    assert_int_equal(sd->count, n);
    for (size_t i = 0; i < n; i++) {
        const ww_named_tensor *t = &sd->tensors[i];
        assert_string_equal(t->name, m[i].name);
        assert_int_equal(t->ndim, m[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], m[i].shape[d]);
        if (strcmp(m[i].dtype, "int64") == 0) {
            assert_int_equal(t->stored_dtype, WW_DTYPE_I64);
        } else {
            assert_string_equal(m[i].dtype, "float32");
            assert_int_equal(t->stored_dtype, WW_DTYPE_F32);
        }
        double sum = 0.0, magnitude = 0.0;
        for (size_t k = 0; k < t->numel; k++) {
            double x = t->i64 ? (double)t->i64[k] : (double)t->data[k];
            if (!t->i64) assert_true(isfinite(x));
            sum += x;
            magnitude += fabs(x);
        }
        if (check_values && fabs(sum - m[i].sum) > 1e-9 * (1.0 + magnitude))
            fail_msg("%s: sum %.17g, expected %.17g", t->name, sum, m[i].sum);
    }
}

static void test_resnet18(void **state)
{
    (void)state;
    static manifest_entry manifest[256];
    size_t n = read_manifest("resnet18.txt", manifest, 256);
    assert_int_equal(n, 122);
    ww_state_dict zip_sd, legacy_sd;
    load_ok("resnet18_zip.pth", &zip_sd);
    load_ok("resnet18_legacy.pth", &legacy_sd);
    check_against_manifest(&zip_sd, manifest, n, 1);
    check_against_manifest(&legacy_sd, manifest, n, 1);

    const ww_named_tensor *fc =
        expect_tensor(&zip_sd, "fc.weight", WW_DTYPE_F32, 2, (const int64_t[]){1000, 512});
    const ww_named_tensor *tracked =
        expect_tensor(&zip_sd, "layer1.0.bn1.num_batches_tracked", WW_DTYPE_I64, 0, NULL);
    assert_true(tracked->i64[0] == 0);
    /* Both formats give bit-identical tensors. */
    for (size_t i = 0; i < n; i++) {
        const ww_named_tensor *a = &zip_sd.tensors[i], *b = &legacy_sd.tensors[i];
        if (a->i64)
            assert_memory_equal(a->i64, b->i64, a->numel * sizeof *a->i64);
        else
            assert_memory_equal(a->data, b->data, a->numel * sizeof *a->data);
    }
    (void)fc;
    ww_state_dict_free(&zip_sd);
    ww_state_dict_free(&legacy_sd);
}

static void test_shared_mobilenet_v2(void **state)
{
    (void)state;
    const char *shared = ww_test_shared_dir();
    if (!shared) {
        ww_test_missing_shared("test_pth mobilenet_v2 weights");
        skip();
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/models/mobilenet_v2-q8dq.pth", shared);
    ww_state_dict sd;
    wanwu_error err;
    if (ww_pth_load_file(path, &sd, &err) != WANWU_OK) fail_msg("%s", err.message);
    static manifest_entry manifest[512];
    size_t n = read_manifest("mobilenet_v2.txt", manifest, 512);
    assert_int_equal(n, 314);
    check_against_manifest(&sd, manifest, n, 0); /* names and shapes; values are real weights */
    expect_tensor(&sd, "features.0.0.weight", WW_DTYPE_F32, 4, (const int64_t[]){32, 3, 3, 3});
    expect_tensor(&sd, "classifier.1.weight", WW_DTYPE_F32, 2, (const int64_t[]){1000, 1280});
    const ww_named_tensor *w = ww_state_dict_find(&sd, "classifier.1.weight");
    double magnitude = 0.0;
    for (size_t i = 0; i < w->numel; i++)
        magnitude += fabs(w->data[i]);
    assert_true(magnitude > 0.0); /* real, non-zero weights */
    ww_state_dict_free(&sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_both_formats),  cmocka_unit_test(test_load_memory_matches_file),
        cmocka_unit_test(test_rebuild_from_type),   cmocka_unit_test(test_legacy_storage_view),
        cmocka_unit_test(test_foreign_files),       cmocka_unit_test(test_resnet18),
        cmocka_unit_test(test_shared_mobilenet_v2), cmocka_unit_test(test_truncated_small),
        cmocka_unit_test(test_truncated_resnet),    cmocka_unit_test(test_flipped_small),
        cmocka_unit_test(test_flipped_resnet),
    };
    return cmocka_run_group_tests(tests, make_fixtures, NULL);
}
