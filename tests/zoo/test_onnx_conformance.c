/* ONNX conformance: runs the node tests shipped by Debian's libonnx-testdata
 * (data/node/test_*: model.onnx, test_data_set_N/input_K.pb, output_K.pb)
 * through wanwu's importer, the graph passes and the kernels.
 *
 * input_0 is the runtime input; further inputs are bound as constants by
 * name (wanwu's graphs have one runtime input). The first output is
 * compared with ONNX's tolerance: |got - want| <= 1e-7 + 1e-3 * |want|.
 *
 * Every test ends in one of:
 *   PASSED;
 *   FAILED: a wrong value, a wrong output size, or a load error other than
 *     WANWU_ERR_UNSUPPORTED;
 *   out of scope: the model uses an op wanwu does not claim, or the test's
 *     own data puts it outside what wanwu runs (an image classifier's float
 *     tensors, inference): see scope_of();
 *   skipped, supported: the importer refused (WANWU_ERR_UNSUPPORTED) a test
 *     of supported ops that is not out of scope.
 * Prints a table per op type and the out-of-scope tests per reason, and
 * fails if any test FAILED or a supported one was skipped (unless it is in
 * known_gaps[], which says why). $WANWU_ONNX_TESTDATA overrides the data
 * dir. */
/* messages and paths here are diagnostics; truncating them is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "format/onnx.h"
#include "model/model.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_OPS 64
#define MAX_IO 16
#define ONNX_FLOAT 1 /* TensorProto.DataType FLOAT */

static const double kAtol = 1e-7, kRtol = 1e-3;

/* Why a test is out of scope. The test's data decides, not the importer's
 * verdict, so an importer regression cannot hide here; only training mode
 * (an attribute or a bound flag input) is taken from the importer's
 * refusal. */
enum scope {
    IN_SCOPE,
    OUT_UNSUPPORTED_OP, /* an op wanwu does not claim (ww_onnx_op_supported) */
    OUT_NON_TENSOR,     /* a sequence, optional or map input/output */
    OUT_NON_FLOAT,      /* runtime input or an output not float32: wanwu runs float
                           images; Cast/DequantizeLinear only fold at load */
    OUT_EMPTY,          /* a tensor with a 0 dimension: nothing to classify */
    OUT_NO_INPUT,       /* no runtime input: the output is a constant */
    OUT_TRAINING,       /* training-mode BatchNorm/Dropout: wanwu runs inference */
    NUM_SCOPES
};

static const char *const scope_tags[NUM_SCOPES] = {
    "", "op", "non-tensor", "non-float", "empty", "no-input", "training",
};

static const char *const scope_names[NUM_SCOPES] = {
    "in scope",
    "op not supported by wanwu",
    "non-tensor input/output (sequence, optional)",
    "non-float runtime input or output (wanwu runs float32; Cast/DequantizeLinear fold at load)",
    "empty tensor (a 0 dimension)",
    "no runtime input (constant output)",
    "training mode (wanwu runs inference)",
};

/* Tests of supported ops in a supported configuration that may be skipped
 * because they cannot run here. Each needs a reason; keep it short. */
static const struct {
    const char *test, *why;
} known_gaps[] = {
    {NULL, NULL},
};

static const char *known_gap(const char *test)
{
    for (int k = 0; known_gaps[k].test; k++)
        if (strcmp(known_gaps[k].test, test) == 0) return known_gaps[k].why;
    return NULL;
}

typedef struct op_stats {
    char op[32];
    int passed, failed, skipped, out_of_scope;
    int by_scope[NUM_SCOPES];
    char example_skip[200];
} op_stats;

static op_stats stats[256];
static int num_stats;
static int scope_count[NUM_SCOPES];
static char scope_example[NUM_SCOPES][96];

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

static int has_zero_dim(int ndim, const int64_t *dims)
{
    for (int k = 0; k < ndim; k++)
        if (dims[k] == 0) return 1;
    return 0;
}

/* The scope of a test from its model and data set 0 (before running it). */
static enum scope scope_of(const char *dir, char (*ops)[32], int n_ops)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    for (int k = 0; k < n_ops && k < MAX_OPS; k++)
        if (!ww_onnx_op_supported(ops[k])) return OUT_UNSUPPORTED_OP;
    int in_types[MAX_IO], out_types[MAX_IO], n_in = 0, n_out = 0;
    wanwu_error err;
    if (ww_onnx_io_types(path, in_types, MAX_IO, &n_in, out_types, MAX_IO, &n_out, &err) != 0)
        return IN_SCOPE; /* unreadable: the run reports it */
    for (int k = 0; k < n_in; k++)
        if (in_types[k] < 0) return OUT_NON_TENSOR;
    for (int k = 0; k < n_out; k++)
        if (out_types[k] < 0) return OUT_NON_TENSOR;
    if (n_in == 0) return OUT_NO_INPUT;
    if (in_types[0] != ONNX_FLOAT) return OUT_NON_FLOAT;
    for (int k = 0; k < n_out; k++)
        if (out_types[k] != ONNX_FLOAT) return OUT_NON_FLOAT;
    for (int io = 0; io < 2; io++)
        for (int k = 0; k < (io ? n_out : n_in); k++) {
            snprintf(path, sizeof path, "%s/test_data_set_0/%s_%d.pb", dir, io ? "output" : "input",
                     k);
            float *data = NULL;
            int ndim = 0;
            int64_t dims[8];
            if (ww_onnx_read_tensor_file(path, &data, &ndim, dims, NULL, 0, &err) == WANWU_OK &&
                has_zero_dim(ndim, dims)) {
                free(data);
                return OUT_EMPTY;
            }
            free(data);
        }
    return IN_SCOPE;
}

/* Runs one test directory; fills why on FAIL or SKIP. */
static int run_test(const char *dir, char (*inputs)[64], int num_inputs, char *why, size_t why_size)
{
    char path[4096], model_path[4096];
    snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
    wanwu_error err;
    /* inputs of the first data set */
    ww_onnx_binding bindings[8];
    float *bound[8] = {0};
    float *input = NULL, *want = NULL;
    int num_bindings = 0, result = FAIL;
    for (int k = 0; k < num_inputs; k++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, k);
        char name[64];
        float *data = NULL;
        int ndim;
        int64_t dims[8];
        if (ww_onnx_read_tensor_file(path, &data, &ndim, dims, name, sizeof name, &err) !=
            WANWU_OK) {
            snprintf(why, why_size, "input %d is not a numeric tensor: %s", k, err.message);
            result = SKIP;
            goto done;
        }
        if (k == 0) {
            input = data;
            continue;
        }
        bound[num_bindings] = data;
        ww_onnx_binding *b = &bindings[num_bindings++];
        b->name = inputs[k];
        b->ndim = ndim;
        memcpy(b->dims, dims, sizeof dims);
        b->data = data;
    }
    snprintf(path, sizeof path, "%s/test_data_set_0/output_0.pb", dir);
    int out_ndim;
    int64_t out_dims[8];
    if (ww_onnx_read_tensor_file(path, &want, &out_ndim, out_dims, NULL, 0, &err) != WANWU_OK) {
        snprintf(why, why_size, "output is not a numeric tensor: %s", err.message);
        result = SKIP;
        goto done;
    }
    wanwu_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
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
    for (int k = 0; k < out_ndim; k++)
        want_count *= (size_t)out_dims[k];
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
            double tol = kAtol + kRtol * fabs((double)want[k]);
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
    for (int k = 0; k < num_bindings; k++)
        free(bound[k]);
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
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) return 1;
            names = grown;
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, compare_names);
    int total_fail = 0, total_pass = 0, total_skip = 0, total_out = 0, total_gap = 0;
    for (size_t i = 0; i < count; i++) {
        char dir[4096], model_path[4096], ops[MAX_OPS][32], inputs[8][64];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        snprintf(model_path, sizeof model_path, "%s/model.onnx", dir);
        int num_inputs = 0;
        wanwu_error err;
        int n = ww_onnx_list_ops(model_path, ops, MAX_OPS, inputs, 8, &num_inputs, &err);
        /* group by the op under test: a single-node model's op, else "(composite)" */
        op_stats *os = stats_for(n == 1 ? ops[0] : "(composite)");
        char why[512] = "";
        enum scope scope = IN_SCOPE;
        int r;
        if (n < 0) {
            snprintf(why, sizeof why, "%s", err.message);
            r = FAIL;
        } else {
            scope = scope_of(dir, ops, n);
            r = scope == OUT_UNSUPPORTED_OP ? SKIP
                                            : run_test(dir, inputs, num_inputs, why, sizeof why);
        }
        if (r == SKIP && scope == IN_SCOPE &&
            (strstr(why, "training mode") || strstr(why, "training-mode")))
            scope = OUT_TRAINING;
        if (r == PASS) {
            os->passed++;
            total_pass++;
        } else if (r == SKIP && scope != IN_SCOPE) {
            os->out_of_scope++;
            os->by_scope[scope]++;
            total_out++;
            scope_count[scope]++;
            if (!scope_example[scope][0])
                snprintf(scope_example[scope], sizeof scope_example[scope], "%s", names[i]);
        } else if (r == SKIP) {
            const char *gap = known_gap(names[i]);
            os->skipped++;
            total_skip++;
            if (gap) total_gap++;
            printf("SKIPPED (supported op%s) %s: %s%s%s\n", gap ? ", known gap" : "", names[i], why,
                   gap ? " -- " : "", gap ? gap : "");
            if (!os->example_skip[0])
                snprintf(os->example_skip, sizeof os->example_skip, "%s: %.140s", names[i], why);
        } else {
            os->failed++;
            total_fail++;
            printf("FAILED %s: %s\n", names[i], why);
        }
        free(names[i]);
    }
    free(names);
    printf(
        "\nONNX node conformance (%s)\ntolerance: |got - want| <= atol + rtol * |want|, atol %g, "
        "rtol %g\n",
        root, kAtol, kRtol);
    printf("%-24s %6s %6s %8s %12s  %-28s %s\n", "op", "passed", "failed", "skipped",
           "out-of-scope", "(reasons, see below)", "first skip of a supported test");
    int unsupported_ops = 0;
    for (int k = 0; k < num_stats; k++) {
        const op_stats *s = &stats[k];
        if (!ww_onnx_op_supported(s->op) && strcmp(s->op, "(composite)") != 0) {
            unsupported_ops++;
            if (!s->passed && !s->failed && !s->skipped) continue; /* counted below */
        }
        char reasons[160] = "";
        for (int c = 1; c < NUM_SCOPES; c++)
            if (s->by_scope[c]) {
                size_t len = strlen(reasons);
                snprintf(reasons + len, sizeof reasons - len, "%s%s %d", len ? ", " : "",
                         scope_tags[c], s->by_scope[c]);
            }
        printf("%-24s %6d %6d %8d %12d  %-28s %s\n", s->op, s->passed, s->failed, s->skipped,
               s->out_of_scope, reasons, s->example_skip);
    }
    printf("\nout of scope, by reason (first test):\n");
    for (int k = 1; k < NUM_SCOPES; k++)
        printf("  %4d  %-10s %s%s%s%s\n", scope_count[k], scope_tags[k], scope_names[k],
               scope_example[k][0] ? " (" : "", scope_example[k], scope_example[k][0] ? ")" : "");
    printf("  (op types not supported by wanwu: %d)\n", unsupported_ops);
    printf("total: %d passed, %d failed, %d skipped of supported ops (%d known gaps), %d out of "
           "scope\n",
           total_pass, total_fail, total_skip, total_gap, total_out);
    if (total_skip > total_gap)
        printf("FAIL: %d test(s) of supported ops in a supported configuration were skipped\n",
               total_skip - total_gap);
    return total_fail || total_skip > total_gap ? 1 : 0;
}
