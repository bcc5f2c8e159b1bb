/* ONNX conformance: runs the node tests shipped by Debian's libonnx-testdata
 * (data/node/test_*: model.onnx, test_data_set_N/input_K.pb, output_K.pb)
 * through wanwu's importer, the graph passes and the kernels.
 *
 * input_0 is the runtime input; further inputs are bound as constants by
 * name (wanwu's graphs have one runtime input). The first output is
 * compared with ONNX's tolerance: |got - want| <= 1e-7 + 1e-3 * |want|.
 *
 * Per test: SKIPPED when the model uses an op wanwu does not support, or
 * when the importer reports WANWU_ERR_UNSUPPORTED for the configuration
 * (e.g. batch > 1, a Clip range other than ReLU/ReLU6, an elementwise
 * product of two feature maps); PASSED; FAILED on a wrong value, a wrong
 * output size, or any other load error. Prints a table per op type and
 * fails if any test FAILED. $WANWU_ONNX_TESTDATA overrides the data dir. */
/* messages and paths here are diagnostics; truncating them is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/onnx.h"
#include "model/model.h"

#define MAX_OPS 64

typedef struct op_stats {
    char op[32];
    int passed, failed, skipped;
    char example_skip[160];
} op_stats;

static op_stats stats[256];
static int num_stats;

static op_stats *stats_for(const char *op)
{
    for (int k = 0; k < num_stats; k++)
        if (strcmp(stats[k].op, op) == 0) return &stats[k];
    if (num_stats == 256) return &stats[255];
    snprintf(stats[num_stats].op, sizeof stats[num_stats].op, "%s", op);
    return &stats[num_stats++];
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum { PASS, FAIL, SKIP };

/* Runs one test directory; fills why on FAIL or SKIP. */
static int run_test(const char *dir, const char *main_op, char *why, size_t why_size)
{
    char path[4096], model_path[4096];
    snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
    char ops[MAX_OPS][32], inputs[8][64];
    int num_inputs = 0;
    wanwu_error err;
    int n = ww_onnx_list_ops(model_path, ops, MAX_OPS, inputs, 8, &num_inputs, &err);
    if (n < 0) {
        snprintf(why, why_size, "%s", err.message);
        return FAIL;
    }
    for (int k = 0; k < n && k < MAX_OPS; k++)
        if (!ww_onnx_op_supported(ops[k])) {
            snprintf(why, why_size, "uses unsupported op %s", ops[k]);
            return SKIP;
        }
    (void)main_op;
    /* inputs of the first data set */
    ww_onnx_binding bindings[8];
    float *bound[8] = {0};
    float *input = NULL, *want = NULL;
    int num_bindings = 0, result = FAIL;
    int in_ndim = 0;
    int64_t in_dims[8];
    for (int k = 0; k < num_inputs; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k);
        char name[64];
        float *data = NULL;
        int ndim;
        int64_t dims[8];
        if (ww_onnx_read_tensor_file(path, &data, &ndim, dims, name, sizeof name, &err) != WANWU_OK) {
            /* sequences, optionals, strings: not plain numeric tensors */
            snprintf(why, why_size, "input %d is not a numeric tensor: %s", k, err.message);
            result = SKIP;
            goto done;
        }
        if (k == 0) {
            input = data;
            in_ndim = ndim;
            memcpy(in_dims, dims, sizeof dims);
            continue;
        }
        bound[num_bindings] = data;
        ww_onnx_binding *b = &bindings[num_bindings++];
        b->name = inputs[k];
        b->ndim = ndim;
        memcpy(b->dims, dims, sizeof dims);
        b->data = data;
    }
    (void)in_ndim;
    (void)in_dims;
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    int out_ndim;
    int64_t out_dims[8];
    if (ww_onnx_read_tensor_file(path, &want, &out_ndim, out_dims, NULL, 0, &err) != WANWU_OK) {
        snprintf(why, why_size, "output is not a numeric tensor: %s", err.message);
        result = SKIP;
        goto done;
    }
    wanwu_model *m = calloc(1, sizeof *m);
    ww_graph_init(&m->graph);
    ww_onnx_import_options io = {0};
    io.bindings = bindings;
    io.num_bindings = num_bindings;
    ww_onnx_info info;
    wanwu_status st = ww_onnx_import_file(model_path, &io, &m->graph, &info, &err);
    if (st == WANWU_OK) st = ww_model_finish(m, &err);
    if (st != WANWU_OK) {
        snprintf(why, why_size, "%s", err.message);
        result = st == WANWU_ERR_UNSUPPORTED ? SKIP : FAIL;
        wanwu_model_free(m);
        goto done;
    }
    size_t want_count = 1;
    for (int k = 0; k < out_ndim; k++) want_count *= (size_t)out_dims[k];
    size_t got_count = ww_value_size(&m->graph.values[m->graph.output]);
    if (got_count != want_count) {
        snprintf(why, why_size, "output has %zu values, expected %zu", got_count, want_count);
        wanwu_model_free(m);
        goto done;
    }
    wanwu_session *s = NULL;
    float *got = malloc(got_count * sizeof *got);
    if (wanwu_session_create(m, NULL, &s, &err) != WANWU_OK || !got) {
        snprintf(why, why_size, "session: %s", err.message);
    } else if (wanwu_run(s, input, got, &err) != WANWU_OK) {
        snprintf(why, why_size, "run: %s", err.message);
    } else {
        result = PASS;
        for (size_t k = 0; k < got_count; k++) {
            double tol = 1e-7 + 1e-3 * fabs((double)want[k]);
            if (!(fabs((double)got[k] - (double)want[k]) <= tol)) {
                snprintf(why, why_size, "value %zu: got %.9g, expected %.9g", k, (double)got[k],
                         (double)want[k]);
                result = FAIL;
                break;
            }
        }
    }
    free(got);
    wanwu_session_free(s);
    wanwu_model_free(m);
done:
    free(input);
    free(want);
    for (int k = 0; k < num_bindings; k++) free(bound[k]);
    return result;
}

int main(void)
{
    const char *root = getenv("WANWU_ONNX_TESTDATA");
    if (!root || !*root) root = "/usr/share/libonnx-testdata/data/node";
    DIR *d = opendir(root);
    if (!d) {
        const char *ci = getenv("CI");
        printf("*** SKIP: ONNX conformance data not found at %s (install libonnx-testdata) ***\n",
               root);
        return ci && *ci && strcmp(ci, "false") && strcmp(ci, "0") ? 1 : 0;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "test_", 5) != 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 512;
            names = realloc(names, cap * sizeof *names);
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, compare_names);
    int total_fail = 0, total_pass = 0, total_skip = 0;
    for (size_t i = 0; i < count; i++) {
        char dir[4096], model_path[4096], ops[MAX_OPS][32], inputs[8][64];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
        int num_inputs;
        wanwu_error err;
        int n = ww_onnx_list_ops(model_path, ops, MAX_OPS, inputs, 8, &num_inputs, &err);
        /* group by the op under test: a single-node model's op, else "(composite)" */
        const char *op = n == 1 ? ops[0] : "(composite)";
        op_stats *os = stats_for(op);
        char why[512] = "";
        int r = run_test(dir, op, why, sizeof why);
        if (r == PASS) {
            os->passed++;
            total_pass++;
        } else if (r == SKIP) {
            os->skipped++;
            total_skip++;
            if (!os->example_skip[0]) snprintf(os->example_skip, sizeof os->example_skip, "%s: %.120s", names[i], why);
        } else {
            os->failed++;
            total_fail++;
            printf("FAILED %s: %s\n", names[i], why);
        }
        free(names[i]);
    }
    free(names);
    printf("\nONNX node conformance (%s), tolerance |got-want| <= 1e-7 + 1e-3*|want|\n", root);
    printf("%-24s %6s %6s %7s  first skip reason\n", "op", "passed", "failed", "skipped");
    for (int k = 0; k < num_stats; k++) {
        const op_stats *s = &stats[k];
        if (!ww_onnx_op_supported(s->op) && strcmp(s->op, "(composite)") != 0 && !s->passed &&
            !s->failed)
            continue; /* ops wanwu does not claim to support: counted below */
        printf("%-24s %6d %6d %7d  %s\n", s->op, s->passed, s->failed, s->skipped, s->example_skip);
    }
    int unsupported_tests = 0, unsupported_ops = 0;
    for (int k = 0; k < num_stats; k++)
        if (!ww_onnx_op_supported(stats[k].op) && strcmp(stats[k].op, "(composite)") != 0) {
            unsupported_ops++;
            unsupported_tests += stats[k].skipped + stats[k].passed + stats[k].failed;
        }
    printf("(%d tests of %d op types wanwu does not support were skipped)\n", unsupported_tests,
           unsupported_ops);
    printf("total: %d passed, %d failed, %d skipped\n", total_pass, total_fail, total_skip);
    return total_fail ? 1 : 0;
}
