/* ONNX import (see format/onnx.h). Every tensor name maps to an entry that
 * is either a constant (initializer, Constant node, or computed from
 * constants) or a feature map (a graph value, batch 1, with the ONNX shape
 * it has at that point). Float computations on constants become graph
 * nodes over CONSTANT values, left to the constant-folding pass; integer
 * shape arithmetic is evaluated here; the other nodes become graph nodes. */
#include "format/onnx.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "graph/passes.h"
#include "onnx.pb-c.h"

#define MAX_DIMS 8
#define MIN_OPSET 9
#define MAX_OPSET 18

typedef struct tensor {
    int ndim;
    int64_t dims[MAX_DIMS];
    int64_t count;
    int is_int; /* data in i (int64) instead of f */
    float *f;
    int64_t *i;
} tensor;

enum { K_CONST, K_MAP };

typedef struct entry {
    const char *name;
    int kind;
    tensor t;   /* K_CONST */
    int value;  /* K_MAP: graph value id */
    int ndim;   /* K_MAP: ONNX shape */
    int64_t dims[MAX_DIMS];
    int sigmoid_of; /* K_MAP produced by Sigmoid: the value id of its input, else -1 */
} entry;

typedef struct importer {
    ww_graph *g;
    entry *entries;
    int count, cap;
    int opset;
    const char *dir; /* model directory, for external data */
    wanwu_error *err;
    /* the node being imported, for messages */
    const char *node_name;
    const char *op_type;
} importer;

/* ---- small helpers -------------------------------------------------------- */

static wanwu_status node_error(importer *im, wanwu_status st, const char *fmt, ...)
    WW_PRINTF(3, 4);

static wanwu_status node_error(importer *im, wanwu_status st, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ww_error_set(im->err, st, "node '%s' (%s): %s", im->node_name, im->op_type, msg);
}

static int64_t product(const int64_t *dims, int ndim)
{
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] != 0 && p > WW_ONNX_MAX_TENSOR_ELEMENTS / dims[i]) return -1;
        p *= dims[i];
    }
    return p;
}

static void tensor_free(tensor *t)
{
    free(t->f);
    free(t->i);
    memset(t, 0, sizeof *t);
}

/* Allocates storage for dims (zeroed). */
static wanwu_status tensor_alloc(importer *im, tensor *t, int ndim, const int64_t *dims, int is_int)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > MAX_DIMS)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "tensors of rank %d are not supported", ndim);
    int64_t n = product(dims, ndim);
    if (n < 0)
        return node_error(im, WANWU_ERR_LIMIT,
                          "a tensor with %lld elements or more exceeds the limit of %lld",
                          (long long)WW_ONNX_MAX_TENSOR_ELEMENTS, (long long)WW_ONNX_MAX_TENSOR_ELEMENTS);
    t->ndim = ndim;
    if (ndim) memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->count = n;
    t->is_int = is_int;
    size_t alloc = (size_t)(n ? n : 1);
    if (is_int)
        t->i = calloc(alloc, sizeof *t->i);
    else
        t->f = calloc(alloc, sizeof *t->f);
    if (!t->i && !t->f) return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    return WANWU_OK;
}

static double tensor_get(const tensor *t, int64_t k)
{
    return t->is_int ? (double)t->i[k] : (double)t->f[k];
}

static entry *find(importer *im, const char *name)
{
    for (int k = im->count - 1; k >= 0; k--)
        if (strcmp(im->entries[k].name, name) == 0) return &im->entries[k];
    return NULL;
}

/* Makes room for `more` entries. Entry pointers a node holds (its inputs)
 * stay valid while it adds at most that many: import_node reserves before
 * it looks its inputs up. */
static int reserve_entries(importer *im, int more)
{
    if (im->count + more <= im->cap) return 1;
    int cap = im->cap ? im->cap : 256;
    while (cap < im->count + more) cap *= 2;
    entry *e = realloc(im->entries, (size_t)cap * sizeof *e);
    if (!e) {
        ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    im->entries = e;
    im->cap = cap;
    return 1;
}

static entry *add_entry(importer *im, const char *name)
{
    if (im->count == im->cap) {
        int cap = im->cap ? im->cap * 2 : 256;
        entry *e = realloc(im->entries, (size_t)cap * sizeof *e);
        if (!e) {
            ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
            return NULL;
        }
        im->entries = e;
        im->cap = cap;
    }
    entry *e = &im->entries[im->count++];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->sigmoid_of = -1;
    e->value = -1;
    return e;
}

static wanwu_status add_const(importer *im, const char *name, tensor *t)
{
    entry *e = add_entry(im, name);
    if (!e) {
        tensor_free(t);
        return WANWU_ERR_NO_MEMORY;
    }
    e->kind = K_CONST;
    e->t = *t;
    e->ndim = t->ndim; /* the shape is also visible as for maps */
    memcpy(e->dims, t->dims, sizeof e->dims);
    memset(t, 0, sizeof *t);
    return WANWU_OK;
}

/* Feature-map layout of an ONNX shape: leading dims fold into channels,
 * a leading batch of 1 is dropped. */
static void shape_chw(int ndim, const int64_t *d, int64_t *c, int64_t *h, int64_t *w)
{
    *c = *h = *w = 1;
    if (ndim == 0) return;
    int start = (ndim >= 2 && d[0] == 1) ? 1 : 0;
    int n = ndim - start;
    const int64_t *x = d + start;
    if (n == 1) {
        *c = x[0];
    } else if (n == 2) {
        *c = x[0];
        *h = x[1];
    } else if (n >= 3) {
        for (int k = 0; k < n - 2; k++) *c *= x[k];
        *h = x[n - 2];
        *w = x[n - 1];
    }
}

static wanwu_status add_map(importer *im, const char *name, int value, int ndim, const int64_t *dims)
{
    int64_t copy[MAX_DIMS]; /* dims may live in an entry that add_entry moves */
    memcpy(copy, dims, (size_t)ndim * sizeof *dims);
    dims = copy;
    entry *e = add_entry(im, name);
    if (!e) return WANWU_ERR_NO_MEMORY;
    e->kind = K_MAP;
    e->value = value;
    e->ndim = ndim;
    memcpy(e->dims, dims, (size_t)ndim * sizeof *dims);
    return WANWU_OK;
}

/* Gives map `in` a new ONNX shape: the same value when its C x H x W layout
 * is unchanged, else a Reshape node. */
static wanwu_status relabel(importer *im, const char *out_name, const entry *in, int ndim,
                            const int64_t *dims)
{
    if (product(dims, ndim) != (int64_t)ww_value_size(&im->g->values[in->value]))
        return node_error(im, WANWU_ERR_FORMAT, "new shape does not have the input's %zu values",
                          ww_value_size(&im->g->values[in->value]));
    int64_t c, h, w;
    shape_chw(ndim, dims, &c, &h, &w);
    const ww_value *v = &im->g->values[in->value];
    int value = in->value;
    if (c != v->c || h != v->h || w != v->w) {
        value = ww_graph_add_reshape(im->g, im->node_name, in->value, (int)c, (int)h, (int)w,
                                     im->err);
        if (value < 0) return im->err ? im->err->status : WANWU_ERR_INVALID_ARGUMENT;
    }
    return add_map(im, out_name, value, ndim, dims);
}

/* Names a value of any C x H x W split with an ONNX shape (a Reshape node
 * when its split differs from the one the shape implies). */
static wanwu_status add_map_any(importer *im, const char *out_name, int value, int ndim,
                                const int64_t *dims)
{
    entry tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = K_MAP;
    tmp.value = value;
    return relabel(im, out_name, &tmp, ndim, dims);
}

/* The value seen as `channels` x rest (per-channel ops only look at C):
 * itself when it already has that many channels, else a Reshape node.
 * -1 with err set on failure. */
static int value_with_channels(importer *im, int value, int64_t channels)
{
    const ww_value *v = &im->g->values[value];
    if (v->c == channels) return value;
    size_t size = ww_value_size(v);
    if (channels <= 0 || size % (size_t)channels) {
        node_error(im, WANWU_ERR_FORMAT, "%zu values do not split into %lld channels", size,
                   (long long)channels);
        return -1;
    }
    return ww_graph_add_reshape(im->g, im->node_name, value, (int)channels,
                                (int)(size / (size_t)channels), 1, im->err);
}

/* ---- attributes ----------------------------------------------------------- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && strcmp(n->attribute[k]->name, name) == 0)
            return n->attribute[k];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

static float attr_float(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

/* Copies up to max ints; returns the count, or -1 when absent. */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) return -1;
    int k = (int)(a->n_ints < (size_t)max ? a->n_ints : (size_t)max);
    for (int i = 0; i < k; i++) out[i] = a->ints[i];
    return k;
}

static const char *attr_string(const Onnx__NodeProto *n, const char *name, char *buf, size_t size)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s) return NULL;
    size_t len = a->s.len < size - 1 ? a->s.len : size - 1;
    memcpy(buf, a->s.data, len);
    buf[len] = '\0';
    return buf;
}

/* ---- TensorProto -> tensor ---------------------------------------------- */

static int path_is_confined(const char *location)
{
    if (!location || !*location || location[0] == '/') return 0;
    const char *p = location;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return strchr(location, '\\') == NULL;
}

/* Reads `length` bytes at `offset` of the external file `location`. */
static wanwu_status read_external(importer *im, const char *tname, const char *location,
                                  int64_t offset, int64_t length, uint8_t **out, wanwu_error *err)
{
    *out = NULL;
    if (!path_is_confined(location))
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "initializer '%s': external data location '%s' is not a relative path "
                            "inside the model's directory",
                            tname, location ? location : "");
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", im->dir, location);
    if (n < 0 || (size_t)n >= sizeof path)
        return ww_error_set(err, WANWU_ERR_FORMAT, "initializer '%s': path too long", tname);
    char real_dir[PATH_MAX], real_file[PATH_MAX];
    if (!realpath(im->dir, real_dir) || !realpath(path, real_file))
        return ww_error_set(err, WANWU_ERR_IO, "initializer '%s': external data file '%s': %s",
                            tname, path, strerror(errno));
    size_t dl = strlen(real_dir);
    if (strncmp(real_file, real_dir, dl) != 0 || real_file[dl] != '/')
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "initializer '%s': external data '%s' resolves outside the model's "
                            "directory",
                            tname, location);
    FILE *f = fopen(real_file, "rb");
    if (!f)
        return ww_error_set(err, WANWU_ERR_IO, "initializer '%s': cannot open '%s': %s", tname,
                            path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || offset < 0 || length < 0 || offset > st.st_size ||
        length > st.st_size - offset) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "initializer '%s': external data [%lld, +%lld) is outside '%s'", tname,
                            (long long)offset, (long long)length, path);
    }
    uint8_t *buf = malloc((size_t)(length ? length : 1));
    if (!buf) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory");
    }
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0 ||
        fread(buf, 1, (size_t)length, f) != (size_t)length) {
        free(buf);
        fclose(f);
        return ww_error_set(err, WANWU_ERR_IO, "initializer '%s': cannot read '%s'", tname, path);
    }
    fclose(f);
    *out = buf;
    return WANWU_OK;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static wanwu_status tensor_from_proto(importer *im, const Onnx__TensorProto *p, tensor *t,
                                      wanwu_error *err)
{
    memset(t, 0, sizeof *t);
    const char *name = p->name ? p->name : "";
    if (p->n_dims > MAX_DIMS)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "tensor '%s': rank %zu", name, p->n_dims);
    for (size_t k = 0; k < p->n_dims; k++)
        if (p->dims[k] < 0)
            return ww_error_set(err, WANWU_ERR_FORMAT, "tensor '%s': negative dimension", name);
    int64_t n = product(p->dims, (int)p->n_dims);
    if (n < 0)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "tensor '%s': more than %lld elements (a huge declared dimension?)",
                            name, (long long)WW_ONNX_MAX_TENSOR_ELEMENTS);
    int type = p->has_data_type ? p->data_type : 0;
    size_t elem;
    int is_int;
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: elem = 4, is_int = 0; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: elem = 8, is_int = 0; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: elem = 2, is_int = 0; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: elem = 8, is_int = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: elem = 4, is_int = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: elem = 2, is_int = 1; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: elem = 1, is_int = 1; break;
    default:
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "tensor '%s': data type %d is not supported",
                            name, type);
    }
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    uint8_t *external = NULL;
    if (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        const char *location = NULL;
        int64_t offset = 0, length = -1;
        for (size_t k = 0; k < p->n_external_data; k++) {
            const Onnx__StringStringEntryProto *kv = p->external_data[k];
            if (!kv->key || !kv->value) continue;
            if (strcmp(kv->key, "location") == 0) location = kv->value;
            if (strcmp(kv->key, "offset") == 0) offset = strtoll(kv->value, NULL, 10);
            if (strcmp(kv->key, "length") == 0) length = strtoll(kv->value, NULL, 10);
        }
        if (length < 0) length = n * (int64_t)elem;
        wanwu_status st = read_external(im, name, location, offset, length, &external, err);
        if (st != WANWU_OK) return st;
        raw = external;
        raw_len = (size_t)length;
    } else if (p->has_raw_data) {
        raw = p->raw_data.data;
        raw_len = p->raw_data.len;
    }
    size_t have;
    if (raw)
        have = raw_len / elem;
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        have = p->n_float_data;
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        have = p->n_double_data;
    else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        have = p->n_int64_data;
    else
        have = p->n_int32_data;
    if ((raw && raw_len != (size_t)n * elem) || have != (size_t)n) {
        free(external);
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "tensor '%s': holds %zu values, its dimensions need %lld", name, have,
                            (long long)n);
    }
    t->ndim = (int)p->n_dims;
    if (p->n_dims) memcpy(t->dims, p->dims, p->n_dims * sizeof *p->dims);
    t->count = n;
    t->is_int = is_int;
    size_t alloc = (size_t)(n ? n : 1);
    if (is_int)
        t->i = malloc(alloc * sizeof *t->i);
    else
        t->f = malloc(alloc * sizeof *t->f);
    if (!t->i && !t->f) {
        free(external);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for tensor '%s'", name);
    }
    for (int64_t k = 0; k < n; k++) {
        if (raw) {
            const uint8_t *b = raw + (size_t)k * elem;
            switch (type) {
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
                uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24;
                memcpy(&t->f[k], &u, 4);
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
                uint64_t u = 0;
                for (int q = 7; q >= 0; q--) u = u << 8 | b[q];
                double d;
                memcpy(&d, &u, 8);
                t->f[k] = (float)d;
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
                t->f[k] = half_to_float((uint16_t)(b[0] | b[1] << 8));
                break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: {
                uint64_t u = 0;
                for (int q = 7; q >= 0; q--) u = u << 8 | b[q];
                t->i[k] = (int64_t)u;
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
                uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24;
                t->i[k] = (int32_t)u;
                break;
            }
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: t->i[k] = (int16_t)(b[0] | b[1] << 8); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: t->i[k] = (uint16_t)(b[0] | b[1] << 8); break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: t->i[k] = (int8_t)b[0]; break;
            default: t->i[k] = b[0]; break;
            }
        } else {
            switch (type) {
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: t->f[k] = p->float_data[k]; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: t->f[k] = (float)p->double_data[k]; break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
                t->f[k] = half_to_float((uint16_t)p->int32_data[k]);
                break;
            case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: t->i[k] = p->int64_data[k]; break;
            default: t->i[k] = p->int32_data[k]; break;
            }
        }
    }
    free(external);
    return WANWU_OK;
}

/* ---- shape arithmetic on constants ---------------------------------------- */

static int norm_axis(int64_t axis, int ndim)
{
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= (ndim ? ndim : 1)) ? -1 : (int)axis;
}

/* Numpy broadcasting of a and b into out dims. */
static int broadcast_dims(const tensor *a, const tensor *b, int *ndim, int64_t *dims)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < n; k++) {
        int ia = k - (n - a->ndim), ib = k - (n - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) return 0;
        dims[k] = da == 1 ? db : da;
    }
    *ndim = n;
    return 1;
}

static int64_t broadcast_index(const tensor *t, int ndim, const int64_t *dims, int64_t flat)
{
    int64_t idx = 0, stride = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        int64_t coord = flat % dims[k];
        flat /= dims[k];
        int it = k - (ndim - t->ndim);
        if (it >= 0) {
            if (t->dims[it] != 1) idx += coord * stride;
            stride *= t->dims[it];
        }
    }
    return idx;
}

static wanwu_status fold_binary(importer *im, const char *op, const tensor *a, const tensor *b,
                                tensor *out)
{
    int ndim;
    int64_t dims[MAX_DIMS];
    if (!broadcast_dims(a, b, &ndim, dims))
        return node_error(im, WANWU_ERR_FORMAT, "shapes cannot be broadcast together");
    int is_int = a->is_int && b->is_int;
    wanwu_status st = tensor_alloc(im, out, ndim, dims, is_int);
    if (st != WANWU_OK) return st;
    for (int64_t k = 0; k < out->count; k++) {
        int64_t ia = broadcast_index(a, ndim, dims, k), ib = broadcast_index(b, ndim, dims, k);
        if (is_int) {
            int64_t x = a->i[ia], y = b->i[ib], r = 0;
            if (op[0] == 'A') r = x + y;
            else if (op[0] == 'S') r = x - y;
            else if (op[0] == 'M') r = x * y;
            else {
                if (y == 0) {
                    tensor_free(out);
                    return node_error(im, WANWU_ERR_FORMAT, "integer division by zero");
                }
                r = x / y; /* C truncation, like ONNX's reference for integers */
            }
            out->i[k] = r;
        } else {
            double x = tensor_get(a, ia), y = tensor_get(b, ib), r;
            if (op[0] == 'A') r = x + y;
            else if (op[0] == 'S') r = x - y;
            else if (op[0] == 'M') r = x * y;
            else r = (float)x / (float)y;
            out->f[k] = (float)r;
        }
    }
    return WANWU_OK;
}

/* Generic gather along an axis (Gather, Slice and Split use it). */
static wanwu_status take_along(importer *im, const tensor *in, int axis, const int64_t *index,
                               int64_t n_index, int out_ndim, const int64_t *out_dims, tensor *out)
{
    wanwu_status st = tensor_alloc(im, out, out_ndim, out_dims, in->is_int);
    if (st != WANWU_OK) return st;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++) outer *= in->dims[k];
    for (int k = axis + 1; k < in->ndim; k++) inner *= in->dims[k];
    int64_t o = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < n_index; j++)
            for (int64_t b = 0; b < inner; b++, o++) {
                int64_t src = (a * in->dims[axis] + index[j]) * inner + b;
                if (in->is_int)
                    out->i[o] = in->i[src];
                else
                    out->f[o] = in->f[src];
            }
    return WANWU_OK;
}

static wanwu_status copy_tensor(importer *im, const tensor *in, tensor *out)
{
    wanwu_status st = tensor_alloc(im, out, in->ndim, in->dims, in->is_int);
    if (st != WANWU_OK) return st;
    if (in->is_int)
        memcpy(out->i, in->i, (size_t)in->count * sizeof *in->i);
    else
        memcpy(out->f, in->f, (size_t)in->count * sizeof *in->f);
    return WANWU_OK;
}

/* The int64 values of a small 1-D (or scalar) constant. */
static int const_ints(const entry *e, int64_t *out, int max)
{
    if (!e || e->kind != K_CONST || e->t.count > max) return -1;
    for (int64_t k = 0; k < e->t.count; k++) out[k] = (int64_t)tensor_get(&e->t, k);
    return (int)e->t.count;
}

/* Resolves a Reshape target (0 = copy, -1 = infer) for an input shape. */
static wanwu_status reshape_target(importer *im, const int64_t *in_dims, int in_ndim,
                                   const int64_t *shape, int n, int allowzero, int64_t *out)
{
    if (n > MAX_DIMS) return node_error(im, WANWU_ERR_UNSUPPORTED, "rank %d", n);
    int64_t total = product(in_dims, in_ndim), known = 1;
    int infer = -1;
    for (int k = 0; k < n; k++) {
        int64_t d = shape[k];
        if (d == 0 && !allowzero) {
            if (k >= in_ndim) return node_error(im, WANWU_ERR_FORMAT, "shape copies a missing dim");
            d = in_dims[k];
        }
        if (d == -1) {
            if (infer >= 0) return node_error(im, WANWU_ERR_FORMAT, "two -1 in the target shape");
            infer = k;
            out[k] = 1;
            continue;
        }
        if (d < 0) return node_error(im, WANWU_ERR_FORMAT, "negative target dimension");
        out[k] = d;
        if (d && known > WW_ONNX_MAX_TENSOR_ELEMENTS / d)
            return node_error(im, WANWU_ERR_LIMIT, "target shape too large");
        known *= d;
    }
    if (infer >= 0) {
        if (known == 0 || total % known)
            return node_error(im, WANWU_ERR_FORMAT, "cannot infer the -1 dimension");
        out[infer] = total / known;
    } else if (known != total) {
        return node_error(im, WANWU_ERR_FORMAT, "target shape has %lld values, the input %lld",
                          (long long)known, (long long)total);
    }
    return WANWU_OK;
}

/* Axes of Squeeze/Unsqueeze/ReduceMean: attribute before opset 13 (18 for
 * ReduceMean), input 1 after. */
static int get_axes(importer *im, const Onnx__NodeProto *n, entry **in, int n_in, int from_opset,
                    int64_t *axes)
{
    if (im->opset >= from_opset) return n_in > 1 && in[1] ? const_ints(in[1], axes, MAX_DIMS) : -1;
    return attr_ints(n, "axes", axes, MAX_DIMS);
}

/* Slice parameters, normalized to per-axis start/end/step over `dims`. */
static wanwu_status slice_params(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                                 int ndim, const int64_t *dims, int64_t *start, int64_t *end,
                                 int64_t *step)
{
    int64_t starts[MAX_DIMS], ends[MAX_DIMS], axes[MAX_DIMS], steps[MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    if (im->opset < 10) {
        ns = attr_ints(n, "starts", starts, MAX_DIMS);
        ne = attr_ints(n, "ends", ends, MAX_DIMS);
        na = attr_ints(n, "axes", axes, MAX_DIMS);
    } else {
        ns = n_in > 1 ? const_ints(in[1], starts, MAX_DIMS) : -1;
        ne = n_in > 2 ? const_ints(in[2], ends, MAX_DIMS) : -1;
        if (n_in > 3 && in[3]) na = const_ints(in[3], axes, MAX_DIMS);
        if (n_in > 4 && in[4]) nst = const_ints(in[4], steps, MAX_DIMS);
    }
    if (ns < 0 || ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "starts/ends/axes/steps must be constants");
    for (int k = 0; k < ndim; k++) {
        start[k] = 0;
        end[k] = dims[k];
        step[k] = 1;
    }
    for (int k = 0; k < ns; k++) {
        int axis = norm_axis(na >= 0 ? axes[k] : k, ndim);
        int64_t st = nst >= 0 ? steps[k] : 1, d = dims[axis];
        if (axis < 0 || st == 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis or step");
        int64_t s = starts[k], e = ends[k];
        if (s < 0) s += d;
        if (e < 0) e += d;
        if (st > 0) {
            s = s < 0 ? 0 : (s > d ? d : s);
            e = e < 0 ? 0 : (e > d ? d : e);
        } else {
            s = s < 0 ? -1 : (s > d - 1 ? d - 1 : s);
            e = e < -1 ? -1 : (e > d - 1 ? d - 1 : e);
        }
        start[axis] = s;
        end[axis] = e;
        step[axis] = st;
    }
    return WANWU_OK;
}

static int64_t slice_len(int64_t s, int64_t e, int64_t st)
{
    if (st > 0) return e > s ? (e - s + st - 1) / st : 0;
    return s > e ? (s - e - st - 1) / (-st) : 0;
}

/* Evaluates a node whose inputs are all constants and that the graph cannot
 * hold: integer shape arithmetic (Shape -> Gather -> Concat -> Reshape
 * chains), casts, and the float corner cases of those ops (an empty tensor,
 * int and float mixed). Float data computations are graph nodes instead
 * (import_node). Returns WANWU_ERR_UNSUPPORTED without a message (err
 * untouched) when the op cannot be folded here. */
static wanwu_status fold_node(importer *im, const Onnx__NodeProto *n, entry **in, int n_in)
{
    const char *op = n->op_type;
    tensor out = {0};
    wanwu_status st = WANWU_OK;
    const tensor *x = n_in > 0 && in[0] ? &in[0]->t : NULL;
    if (strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0 ||
        (strcmp(op, "Cast") == 0 && x)) {
        if (!x) return node_error(im, WANWU_ERR_FORMAT, "missing input");
        st = copy_tensor(im, x, &out);
        if (st == WANWU_OK && strcmp(op, "Cast") == 0) {
            int64_t to = attr_int(n, "to", 1);
            int want_int = to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
                           to != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE &&
                           to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
            if (want_int != out.is_int) {
                tensor conv;
                st = tensor_alloc(im, &conv, out.ndim, out.dims, want_int);
                for (int64_t k = 0; st == WANWU_OK && k < out.count; k++) {
                    if (want_int)
                        conv.i[k] = (int64_t)out.f[k];
                    else
                        conv.f[k] = (float)out.i[k];
                }
                tensor_free(&out);
                out = conv;
            }
        }
    } else if (strcmp(op, "Add") == 0 || strcmp(op, "Sub") == 0 || strcmp(op, "Mul") == 0 ||
               strcmp(op, "Div") == 0) {
        if (n_in < 2 || !in[0] || !in[1]) return node_error(im, WANWU_ERR_FORMAT, "needs 2 inputs");
        st = fold_binary(im, op, &in[0]->t, &in[1]->t, &out);
    } else if (strcmp(op, "Gather") == 0) {
        if (n_in < 2 || !in[1]) return node_error(im, WANWU_ERR_FORMAT, "needs 2 inputs");
        const tensor *idx = &in[1]->t;
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (axis < 0 || x->ndim + idx->ndim - 1 > MAX_DIMS || idx->count > 4096)
            return node_error(im, WANWU_ERR_UNSUPPORTED, "unsupported axis or index shape");
        int64_t index[4096];
        for (int64_t k = 0; k < idx->count; k++) {
            int64_t v = (int64_t)tensor_get(idx, k);
            if (v < 0) v += x->dims[axis];
            if (v < 0 || v >= x->dims[axis])
                return node_error(im, WANWU_ERR_FORMAT, "index %lld out of range",
                                  (long long)tensor_get(idx, k));
            index[k] = v;
        }
        int64_t dims[MAX_DIMS];
        int nd = 0;
        for (int k = 0; k < axis; k++) dims[nd++] = x->dims[k];
        for (int k = 0; k < idx->ndim; k++) dims[nd++] = idx->dims[k];
        for (int k = axis + 1; k < x->ndim; k++) dims[nd++] = x->dims[k];
        st = take_along(im, x, axis, index, idx->count, nd, dims, &out);
    } else if (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0 ||
               strcmp(op, "Flatten") == 0 || strcmp(op, "Reshape") == 0) {
        int64_t dims[MAX_DIMS];
        int nd = 0;
        if (strcmp(op, "Reshape") == 0) {
            int64_t shape[MAX_DIMS];
            int ns = n_in > 1 ? const_ints(in[1], shape, MAX_DIMS) : -1;
            if (ns < 0) return node_error(im, WANWU_ERR_FORMAT, "shape input missing");
            st = reshape_target(im, x->dims, x->ndim, shape, ns, (int)attr_int(n, "allowzero", 0),
                                dims);
            nd = ns;
        } else if (strcmp(op, "Flatten") == 0) {
            int axis = (int)attr_int(n, "axis", 1);
            if (axis < 0) axis += x->ndim;
            if (axis < 0 || axis > x->ndim) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
            dims[0] = product(x->dims, axis);
            dims[1] = product(x->dims + axis, x->ndim - axis);
            nd = 2;
        } else {
            int64_t axes[MAX_DIMS];
            int na = get_axes(im, n, in, n_in, 13, axes);
            int unsq = op[0] == 'U';
            int out_nd = unsq ? x->ndim + (na > 0 ? na : 0) : x->ndim;
            if (unsq && (na <= 0 || out_nd > MAX_DIMS))
                return node_error(im, WANWU_ERR_FORMAT, "bad axes");
            int mark[MAX_DIMS] = {0};
            for (int k = 0; k < na; k++) {
                int a = norm_axis(axes[k], out_nd);
                if (a < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
                mark[a] = 1;
            }
            if (unsq) {
                for (int k = 0, src = 0; k < out_nd; k++) dims[nd++] = mark[k] ? 1 : x->dims[src++];
            } else {
                for (int k = 0; k < x->ndim; k++)
                    if (!(na < 0 ? x->dims[k] == 1 : mark[k])) dims[nd++] = x->dims[k];
            }
        }
        if (st == WANWU_OK) st = copy_tensor(im, x, &out);
        if (st == WANWU_OK) {
            out.ndim = nd;
            memcpy(out.dims, dims, (size_t)nd * sizeof *dims);
        }
    } else if (strcmp(op, "Concat") == 0) {
        int axis = norm_axis(attr_int(n, "axis", 0), x ? x->ndim : 0);
        if (axis < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
        int64_t dims[MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = 0;
        int is_int = 1;
        for (int k = 0; k < n_in; k++) {
            if (!in[k] || in[k]->t.ndim != x->ndim)
                return node_error(im, WANWU_ERR_FORMAT, "inputs differ in rank");
            dims[axis] += in[k]->t.dims[axis];
            is_int &= in[k]->t.is_int;
        }
        st = tensor_alloc(im, &out, x->ndim, dims, is_int);
        int64_t outer = product(x->dims, axis), o = 0;
        for (int64_t a = 0; st == WANWU_OK && a < outer; a++)
            for (int k = 0; k < n_in; k++) {
                int64_t chunk = product(in[k]->t.dims + axis, x->ndim - axis);
                for (int64_t b = 0; b < chunk; b++, o++) {
                    double v = tensor_get(&in[k]->t, a * chunk + b);
                    if (is_int)
                        out.i[o] = (int64_t)v;
                    else
                        out.f[o] = (float)v;
                }
            }
    } else if (strcmp(op, "Slice") == 0) {
        int64_t s[MAX_DIMS], e[MAX_DIMS], stp[MAX_DIMS];
        st = slice_params(im, n, in, n_in, x->ndim, x->dims, s, e, stp);
        if (st != WANWU_OK) return st;
        tensor cur;
        st = copy_tensor(im, x, &cur);
        for (int a = 0; st == WANWU_OK && a < x->ndim; a++) {
            int64_t len = slice_len(s[a], e[a], stp[a]);
            if (len > 4096) {
                if (s[a] == 0 && stp[a] == 1 && len == cur.dims[a]) continue;
                st = node_error(im, WANWU_ERR_UNSUPPORTED, "constant slice too long");
                break;
            }
            int64_t index[4096];
            for (int64_t k = 0; k < len; k++) index[k] = s[a] + k * stp[a];
            int64_t dims[MAX_DIMS];
            memcpy(dims, cur.dims, sizeof dims);
            dims[a] = len;
            tensor next;
            st = take_along(im, &cur, a, index, len, cur.ndim, dims, &next);
            tensor_free(&cur);
            cur = next;
        }
        if (st == WANWU_OK) out = cur;
        else tensor_free(&cur);
    } else if (strcmp(op, "Transpose") == 0) {
        int64_t perm[MAX_DIMS];
        int np = attr_ints(n, "perm", perm, MAX_DIMS);
        if (np < 0) {
            np = x->ndim;
            for (int k = 0; k < np; k++) perm[k] = np - 1 - k;
        }
        if (np != x->ndim) return node_error(im, WANWU_ERR_FORMAT, "perm has the wrong length");
        int64_t dims[MAX_DIMS], in_stride[MAX_DIMS];
        for (int k = 0; k < np; k++) {
            if (perm[k] < 0 || perm[k] >= np) return node_error(im, WANWU_ERR_FORMAT, "bad perm");
            dims[k] = x->dims[perm[k]];
        }
        int64_t stride = 1;
        for (int k = np - 1; k >= 0; k--) {
            in_stride[k] = stride;
            stride *= x->dims[k];
        }
        st = tensor_alloc(im, &out, np, dims, x->is_int);
        for (int64_t o = 0; st == WANWU_OK && o < out.count; o++) {
            int64_t rem = o, src = 0;
            for (int k = np - 1; k >= 0; k--) {
                src += (rem % dims[k]) * in_stride[perm[k]];
                rem /= dims[k];
            }
            if (x->is_int)
                out.i[o] = x->i[src];
            else
                out.f[o] = x->f[src];
        }
    } else {
        return WANWU_ERR_UNSUPPORTED;
    }
    if (st != WANWU_OK) {
        tensor_free(&out);
        return st;
    }
    return add_const(im, n->output[0], &out);
}

/* ---- feature-map ops ------------------------------------------------------ */

static wanwu_status graph_status(importer *im)
{
    return im->err ? im->err->status : WANWU_ERR_INVALID_ARGUMENT;
}

static int is_nchw(const entry *e)
{
    return e->kind == K_MAP && e->ndim == 4 && e->dims[0] == 1;
}

/* pads [begin..., end...] with auto_pad handling for windows over the last
 * nsp (1 to 3) axes of x */
static wanwu_status window_pads(importer *im, const Onnx__NodeProto *n, const entry *x, int nsp,
                                const int64_t *kernel, const int64_t *stride,
                                const int64_t *dilation, int64_t *pads)
{
    char buf[32];
    const char *auto_pad = attr_string(n, "auto_pad", buf, sizeof buf);
    for (int k = 0; k < 2 * nsp; k++)
        pads[k] = 0;
    if (!auto_pad || strcmp(auto_pad, "NOTSET") == 0) {
        int np = attr_ints(n, "pads", pads, 2 * nsp);
        if (np >= 0 && np != 2 * nsp)
            return node_error(im, WANWU_ERR_FORMAT, "pads needs %d values", 2 * nsp);
        return WANWU_OK;
    }
    if (strcmp(auto_pad, "VALID") == 0) return WANWU_OK;
    int upper = strcmp(auto_pad, "SAME_UPPER") == 0;
    if (!upper && strcmp(auto_pad, "SAME_LOWER") != 0)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "auto_pad '%s'", auto_pad);
    for (int a = 0; a < nsp; a++) {
        int64_t in = x->dims[x->ndim - nsp + a], out = (in + stride[a] - 1) / stride[a];
        int64_t total = (out - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1 - in;
        if (total < 0) total = 0;
        pads[a] = upper ? total / 2 : total - total / 2;
        pads[a + nsp] = total - pads[a];
    }
    return WANWU_OK;
}

/* ---- constants as graph values ------------------------------------------ */

/* Float arithmetic and data movement on constants become graph nodes over
 * CONSTANT values, which the graph's constant-folding pass evaluates at
 * load time with the executor's own code. What a node needs while it is
 * built (integer shape arithmetic, Reshape targets, Slice bounds, Conv and
 * Gemm weights, Clip bounds) is resolved here. */

static int liftable(const entry *e)
{
    return e && e->kind == K_CONST && !e->t.is_int && e->t.count > 0;
}

/* Float constant `e` seen as a map over a CONSTANT node (created once per
 * constant, at its first use as a graph value). */
static wanwu_status lift_const(importer *im, entry *e, entry *out)
{
    if (e->value < 0) {
        int64_t c, h, w;
        shape_chw(e->t.ndim, e->t.dims, &c, &h, &w);
        int v = ww_graph_add_constant(im->g, e->name, (int)c, (int)h, (int)w, e->t.f, im->err);
        if (v < 0) return graph_status(im);
        e->value = v;
    }
    *out = *e;
    out->kind = K_MAP;
    memset(&out->t, 0, sizeof out->t);
    return WANWU_OK;
}

/* A map computed from constants only (a weight the source network scales
 * or transposes) becomes a constant in place: evaluated now by the folding
 * pass's code. Other entries are left as they are. */
static wanwu_status resolve_const(importer *im, entry *e)
{
    if (!e || e->kind != K_MAP || !ww_graph_value_is_constant(im->g, e->value)) return WANWU_OK;
    if (!ww_graph_fold_value(im->g, e->value))
        return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory evaluating constants");
    const ww_node *p = &im->g->nodes[im->g->values[e->value].producer];
    tensor t;
    wanwu_status st = tensor_alloc(im, &t, e->ndim, e->dims, 0);
    if (st != WANWU_OK) return st;
    if ((size_t)t.count != ww_value_size(&im->g->values[e->value])) {
        tensor_free(&t);
        return node_error(im, WANWU_ERR_FORMAT, "a constant's shape does not match its values");
    }
    memcpy(t.f, p->weight, (size_t)t.count * sizeof *t.f);
    e->kind = K_CONST;
    e->t = t;
    return WANWU_OK;
}

/* Map `e` (computed from constants) broadcast to ndim/dims by numpy's
 * rules: a gather node, evaluated by the folding pass. */
static wanwu_status broadcast_map(importer *im, const entry *e, int ndim, const int64_t *dims,
                                  entry *out)
{
    int64_t count = product(dims, ndim), c, h, w;
    if (count <= 0 || e->ndim > ndim)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "empty or oversized result");
    int32_t *index = malloc((size_t)count * sizeof *index);
    if (!index) return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    /* source stride per output axis (0 where e has extent 1 or no axis) */
    int64_t stride[MAX_DIMS], coord[MAX_DIMS] = {0}, st = 1, src = 0;
    for (int k = ndim - 1; k >= 0; k--) {
        int ie = k - (ndim - e->ndim);
        stride[k] = ie >= 0 && e->dims[ie] != 1 ? st : 0;
        if (ie >= 0) st *= e->dims[ie];
    }
    for (int64_t k = 0; k < count; k++) {
        index[k] = (int32_t)src;
        for (int d = ndim - 1; d >= 0; d--) { /* next output coordinate */
            src += stride[d];
            if (++coord[d] < dims[d]) break;
            src -= stride[d] * dims[d];
            coord[d] = 0;
        }
    }
    shape_chw(ndim, dims, &c, &h, &w);
    int v = ww_graph_add_gather(im->g, im->node_name, e->value, -1, (int)c, (int)h, (int)w, index,
                                im->err);
    free(index);
    if (v < 0) return graph_status(im);
    *out = *e;
    out->value = v;
    out->ndim = ndim;
    memcpy(out->dims, dims, (size_t)ndim * sizeof *dims);
    out->sigmoid_of = -1;
    return WANWU_OK;
}

/* `t` as a float constant of ndim/dims (its values converted), lifted to a
 * map over a CONSTANT node. */
static wanwu_status float_const_map(importer *im, const char *name, const tensor *t, int ndim,
                                    const int64_t *dims, entry *out)
{
    entry e;
    memset(&e, 0, sizeof e);
    e.name = name;
    e.kind = K_CONST;
    e.value = -1;
    e.sigmoid_of = -1;
    wanwu_status st = tensor_alloc(im, &e.t, ndim, dims, 0);
    if (st != WANWU_OK) return st;
    for (int64_t k = 0; k < t->count; k++)
        e.t.f[k] = (float)tensor_get(t, k);
    e.ndim = ndim;
    memcpy(e.dims, dims, (size_t)ndim * sizeof *dims);
    st = lift_const(im, &e, out);
    tensor_free(&e.t);
    return st;
}

/* DequantizeLinear of constants, (x - zero point) * scale per `axis`:
 * element-wise graph nodes over CONSTANT values (float x and zero point
 * are exact below 2^24), evaluated by the folding pass like any other. */
static wanwu_status dequantize_const(importer *im, const Onnx__NodeProto *n, entry **in, int n_in)
{
    if (n_in < 2 || !in[1]) return node_error(im, WANWU_ERR_FORMAT, "needs a scale");
    const tensor *x = &in[0]->t, *scale = &in[1]->t, *zero = n_in > 2 && in[2] ? &in[2]->t : NULL;
    int axis = norm_axis(attr_int(n, "axis", 1), x->ndim);
    if (scale->count > 1 && (axis < 0 || scale->count != x->dims[axis]))
        return node_error(im, WANWU_ERR_FORMAT, "scale does not match the axis");
    if (zero && zero->count != scale->count)
        return node_error(im, WANWU_ERR_FORMAT, "zero point does not match the scale");
    if (x->count == 0 || scale->count == 0)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "empty tensors");
    /* scale and zero point: one value, or one per index of `axis` */
    int64_t dims[MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        dims[k] = k == axis && scale->count > 1 ? scale->count : 1;
    entry xm;
    wanwu_status st = float_const_map(im, in[0]->name, x, x->ndim, x->dims, &xm);
    if (st != WANWU_OK) return st;
    const tensor *operands[2] = {zero, scale};
    const ww_eltwise_op ops[2] = {WW_ELT_SUB, WW_ELT_MUL};
    int v = xm.value;
    for (int k = 0; k < 2; k++) {
        if (!operands[k]) continue;
        int b = -1;
        float single = (float)tensor_get(operands[k], 0); /* a scalar: the eltwise's constant */
        if (operands[k]->count > 1) {
            entry per_axis, expanded;
            st = float_const_map(im, in[2 - k]->name, operands[k], x->ndim, dims, &per_axis);
            if (st == WANWU_OK) st = broadcast_map(im, &per_axis, x->ndim, x->dims, &expanded);
            if (st != WANWU_OK) return st;
            b = expanded.value;
        }
        v = ww_graph_add_eltwise(im->g, im->node_name, v, b, b < 0 ? &single : NULL, 1, ops[k], 0,
                                 im->err);
        if (v < 0) return graph_status(im);
    }
    return add_map(im, n->output[0], v, x->ndim, x->dims);
}

static wanwu_status import_conv(importer *im, const Onnx__NodeProto *n, entry **in, int n_in)
{
    if (in[0]->ndim != 4)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "input must be N x C x H x W (rank %d)",
                          in[0]->ndim);
    if (n_in < 2 || !in[1] || in[1]->kind != K_CONST || in[1]->t.ndim != 4 || in[1]->t.is_int)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "weight must be a 4-D float constant");
    const tensor *w = &in[1]->t;
    const tensor *b = n_in > 2 && in[2] ? &in[2]->t : NULL;
    if (n_in > 2 && in[2] && (in[2]->kind != K_CONST || b->count != w->dims[0] || b->is_int))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "bias must be a float constant of %lld",
                          (long long)w->dims[0]);
    int64_t kernel[2] = {w->dims[2], w->dims[3]}, stride[2] = {1, 1}, dil[2] = {1, 1}, pads[4];
    int64_t ks[2];
    if (attr_ints(n, "kernel_shape", ks, 2) == 2 && (ks[0] != kernel[0] || ks[1] != kernel[1]))
        return node_error(im, WANWU_ERR_FORMAT, "kernel_shape does not match the weight");
    attr_ints(n, "strides", stride, 2);
    attr_ints(n, "dilations", dil, 2);
    wanwu_status st = window_pads(im, n, in[0], 2, kernel, stride, dil, pads);
    if (st != WANWU_OK) return st;
    int64_t groups = attr_int(n, "group", 1);
    if (groups <= 0 || w->dims[1] * groups != in[0]->dims[1] || w->dims[0] % groups)
        return node_error(im, WANWU_ERR_FORMAT,
                          "weight [%lld, %lld, ...] and group %lld do not fit %lld input channels",
                          (long long)w->dims[0], (long long)w->dims[1], (long long)groups,
                          (long long)in[0]->dims[1]);
    for (int k = 0; k < 4; k++)
        if (pads[k] < 0 || pads[k] > 1 << 16)
            return node_error(im, WANWU_ERR_FORMAT, "bad padding");
    ww_conv2d_shape s = {0};
    s.out_c = (int)w->dims[0];
    s.kernel_h = (int)kernel[0];
    s.kernel_w = (int)kernel[1];
    s.stride_h = (int)stride[0];
    s.stride_w = (int)stride[1];
    s.dilation_h = (int)dil[0];
    s.dilation_w = (int)dil[1];
    s.pad_top = (int)pads[0];
    s.pad_left = (int)pads[1];
    s.pad_bottom = (int)pads[2];
    s.pad_right = (int)pads[3];
    s.groups = (int)groups;
    /* a batch of N: the value holds N x C channels, so one convolution with
     * N times the groups and the weights repeated for every sample */
    int64_t batch = in[0]->dims[0];
    const float *weight = w->f, *bias = b ? b->f : NULL;
    float *tiled = NULL;
    if (batch > 1) {
        if (s.out_c <= 0 || batch > INT_MAX / (s.out_c * groups) ||
            w->count > WW_ONNX_MAX_TENSOR_ELEMENTS / batch)
            return node_error(im, WANWU_ERR_LIMIT, "batch %lld is too large", (long long)batch);
        tiled = malloc((size_t)(batch * (w->count + w->dims[0])) * sizeof *tiled);
        if (!tiled) return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
        for (int64_t k = 0; k < batch; k++) {
            memcpy(tiled + k * w->count, w->f, (size_t)w->count * sizeof *tiled);
            float *bk = tiled + batch * w->count + k * w->dims[0];
            for (int64_t o = 0; o < w->dims[0]; o++)
                bk[o] = b ? b->f[o] : 0.0f;
        }
        weight = tiled;
        bias = b ? tiled + batch * w->count : NULL;
        s.out_c *= (int)batch;
        s.groups *= (int)batch;
    }
    int v =
        ww_graph_add_conv2d_shape(im->g, im->node_name, in[0]->value, &s, weight, bias, im->err);
    free(tiled);
    if (v < 0) return graph_status(im);
    const ww_value *out = &im->g->values[v];
    int64_t dims[4] = {batch, w->dims[0], out->h, out->w};
    return add_map_any(im, n->output[0], v, 4, dims);
}

static wanwu_status pool_by_gather(importer *im, const char *out_name, const entry *x, int nsp,
                                   const int64_t *kernel, const int64_t *stride, const int64_t *dil,
                                   const int64_t *pads, const int64_t *out, int is_max,
                                   int count_include_pad);

/* MaxPool / AveragePool over the last 1 to 3 axes of N x C x ...; batch and
 * channels fold into the value's channels (pools work per channel). 1-D and
 * 2-D windows run on the pooling kernels (ceil_mode as extra end padding);
 * dilated and 3-D windows gather every window's taps at load time. */
static wanwu_status import_pool(importer *im, const Onnx__NodeProto *n, entry **in, int is_max)
{
    entry *x = in[0];
    if (x->ndim < 3 || x->ndim > 5)
        return node_error(im, WANWU_ERR_UNSUPPORTED,
                          "input must be N x C x 1 to 3 spatial dims (rank %d)", x->ndim);
    int nsp = x->ndim - 2;
    int64_t kernel[3], stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pads[6], out[3], extra[3];
    if (attr_ints(n, "kernel_shape", kernel, 3) != nsp)
        return node_error(im, WANWU_ERR_FORMAT, "kernel_shape needs %d values", nsp);
    int ns = attr_ints(n, "strides", stride, 3), nd = attr_ints(n, "dilations", dil, 3);
    if ((ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp))
        return node_error(im, WANWU_ERR_FORMAT, "strides and dilations need %d values", nsp);
    if (n->n_output > 1 && n->output[1][0])
        return node_error(im, WANWU_ERR_UNSUPPORTED, "the Indices output (int64)");
    int ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
    int include_pad = (int)attr_int(n, "count_include_pad", 0);
    wanwu_status st = window_pads(im, n, x, nsp, kernel, stride, dil, pads);
    if (st != WANWU_OK) return st;
    int kernel_path = nsp <= 2, any_extra = 0;
    for (int a = 0; a < nsp; a++) {
        int64_t in_a = x->dims[2 + a], pb = pads[a], pe = pads[nsp + a];
        if (kernel[a] <= 0 || kernel[a] > 1 << 16 || stride[a] <= 0 || stride[a] > 1 << 16 ||
            dil[a] <= 0 || dil[a] > 1 << 16 || pb < 0 || pe < 0 || pb > 1 << 16 || pe > 1 << 16)
            return node_error(im, WANWU_ERR_FORMAT, "bad kernel, stride, dilation or padding");
        int64_t span = in_a + pb + pe - (kernel[a] - 1) * dil[a] - 1;
        if (span < 0)
            return node_error(im, WANWU_ERR_FORMAT, "the window does not fit the padded input");
        out[a] = span / stride[a] + 1;
        if (ceil_mode) {
            out[a] = (span + stride[a] - 1) / stride[a] + 1;
            /* the last window must start inside the input or the begin padding */
            if ((out[a] - 1) * stride[a] >= in_a + pb) out[a]--;
        }
        extra[a] = (out[a] - 1) * stride[a] + (kernel[a] - 1) * dil[a] + 1 - (in_a + pb + pe);
        if (extra[a] < 0) extra[a] = 0;
        any_extra |= extra[a] > 0;
        if (dil[a] != 1 || pb >= kernel[a] || pe + extra[a] >= kernel[a]) kernel_path = 0;
    }
    /* the kernels would count ceil_mode's extra cells as padding */
    if (any_extra && !is_max && include_pad) kernel_path = 0;
    if (!kernel_path)
        return pool_by_gather(im, n->output[0], x, nsp, kernel, stride, dil, pads, out, is_max,
                              include_pad);
    int v = value_with_channels(im, x->value, x->dims[0] * x->dims[1]);
    if (v < 0) return graph_status(im);
    ww_pool2d_shape p = {0};
    p.kernel_h = (int)kernel[0];
    p.kernel_w = nsp == 2 ? (int)kernel[1] : 1;
    p.stride_h = (int)stride[0];
    p.stride_w = nsp == 2 ? (int)stride[1] : 1;
    p.pad_top = (int)pads[0];
    p.pad_bottom = (int)(pads[nsp] + extra[0]);
    p.pad_left = nsp == 2 ? (int)pads[1] : 0;
    p.pad_right = nsp == 2 ? (int)(pads[3] + extra[1]) : 0;
    if (nsp == 1 && im->g->values[v].w != 1) {
        v = ww_graph_add_reshape(im->g, im->node_name, v, im->g->values[v].c, (int)x->dims[2], 1,
                                 im->err);
        if (v < 0) return graph_status(im);
    }
    v = ww_graph_add_pool2d_shape(im->g, is_max ? WW_OP_MAXPOOL2D : WW_OP_AVGPOOL2D, im->node_name,
                                  v, &p, include_pad, im->err);
    if (v < 0) return graph_status(im);
    int64_t dims[5] = {x->dims[0], x->dims[1], out[0], nsp > 1 ? out[1] : 1, 1};
    return add_map_any(im, n->output[0], v, x->ndim, dims);
}

/* Fetches a Clip bound (attribute before opset 11, optional input after). */
static wanwu_status clip_bound(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                               int k, const char *name, float dflt, float *out)
{
    *out = dflt;
    if (im->opset < 11) {
        *out = attr_float(n, name, dflt);
        return WANWU_OK;
    }
    if (n_in <= k || !in[k]) return WANWU_OK;
    if (in[k]->kind != K_CONST || in[k]->t.count != 1)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "%s must be a constant scalar", name);
    *out = (float)tensor_get(&in[k]->t, 0);
    return WANWU_OK;
}

static wanwu_status import_activation(importer *im, const Onnx__NodeProto *n, entry *x,
                                      ww_activation act)
{
    int input = x->value;
    int v = ww_graph_add_activation(im->g, im->node_name, input, act, im->err);
    if (v < 0) return graph_status(im);
    wanwu_status st = add_map(im, n->output[0], v, x->ndim, x->dims);
    if (st == WANWU_OK && act == WW_ACT_SIGMOID) im->entries[im->count - 1].sigmoid_of = input;
    return st;
}

static int same_shape(const entry *a, const entry *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int k = 0; k < a->ndim; k++)
        if (a->dims[k] != b->dims[k]) return 0;
    return 1;
}

/* How a constant broadcasts over map x: 1 (scalar), C (per channel of a
 * 1xCxHxW map) or all values; 0 when it does not in a way wanwu runs. */
static size_t const_broadcast(importer *im, const entry *x, const tensor *b)
{
    const ww_value *v = &im->g->values[x->value];
    if (b->count == 1) return 1;
    if (b->ndim > x->ndim) return 0;
    int full = 1, per_channel = is_nchw(x);
    for (int k = 0; k < b->ndim; k++) {
        int64_t bd = b->dims[b->ndim - 1 - k], xd = x->dims[x->ndim - 1 - k];
        int axis = x->ndim - 1 - k;
        full &= bd == xd;
        per_channel &= axis == 1 ? bd == xd : bd == 1;
    }
    for (int k = b->ndim; k < x->ndim && full; k++) full = x->dims[x->ndim - 1 - k] == 1;
    if (full && (size_t)b->count == ww_value_size(v)) return (size_t)b->count;
    if (per_channel && b->count == v->c) return (size_t)b->count;
    return 0;
}

static wanwu_status import_binary(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                                  ww_eltwise_op op)
{
    if (n_in < 2 || !in[0] || !in[1]) return node_error(im, WANWU_ERR_FORMAT, "needs 2 inputs");
    entry *a = in[0], *b = in[1], lifted, expanded[2];
    if ((a->kind == K_CONST) != (b->kind == K_CONST)) {
        /* a constant with a map computed from constants: both graph values */
        entry **cst = a->kind == K_CONST ? &a : &b, *map = a->kind == K_CONST ? b : a;
        if (liftable(*cst) && ww_graph_value_is_constant(im->g, map->value)) {
            wanwu_status st = lift_const(im, *cst, &lifted);
            if (st != WANWU_OK) return st;
            *cst = &lifted;
        }
    }
    int swap = 0;
    if (a->kind == K_CONST) {
        entry *t = a;
        a = b;
        b = t;
        swap = 1;
    }
    if (b->kind == K_CONST) {
        if (b->t.is_int) return node_error(im, WANWU_ERR_UNSUPPORTED, "an integer constant");
        size_t count = const_broadcast(im, a, &b->t);
        int expanded_b = -1;
        if (!count) {
            /* any other numpy broadcast onto the map's shape: the constant
             * expanded by a gather node (evaluated by the folding pass) */
            tensor shape = {0};
            shape.ndim = a->ndim;
            memcpy(shape.dims, a->dims, sizeof shape.dims);
            int nd;
            int64_t dims[MAX_DIMS];
            if (!liftable(b) || !broadcast_dims(&shape, &b->t, &nd, dims) || nd != a->ndim ||
                memcmp(dims, a->dims, (size_t)nd * sizeof *dims) != 0)
                return node_error(im, WANWU_ERR_UNSUPPORTED,
                                  "the constant does not broadcast onto the feature map's shape");
            wanwu_status st = lift_const(im, b, &lifted);
            if (st == WANWU_OK) st = broadcast_map(im, &lifted, nd, dims, &expanded[1]);
            if (st != WANWU_OK) return st;
            expanded_b = expanded[1].value;
        }
        int v = ww_graph_add_eltwise(im->g, im->node_name, a->value, expanded_b,
                                     expanded_b < 0 ? b->t.f : NULL, count, op, swap, im->err);
        if (v < 0) return graph_status(im);
        return add_map(im, n->output[0], v, a->ndim, a->dims);
    }
    tensor sa = {0}, sb = {0};
    sa.ndim = a->ndim;
    sb.ndim = b->ndim;
    memcpy(sa.dims, a->dims, sizeof sa.dims);
    memcpy(sb.dims, b->dims, sizeof sb.dims);
    int nd;
    int64_t dims[MAX_DIMS];
    if (!same_shape(a, b) && broadcast_dims(&sa, &sb, &nd, dims)) {
        /* maps computed from constants broadcast like constants: expanded */
        entry *ops[2] = {a, b};
        int expandable = 1;
        for (int k = 0; k < 2; k++)
            if (ops[k]->ndim != nd || memcmp(ops[k]->dims, dims, (size_t)nd * sizeof *dims) != 0)
                expandable &= ww_graph_value_is_constant(im->g, ops[k]->value);
        for (int k = 0; k < 2 && expandable; k++) {
            if (ops[k]->ndim == nd && memcmp(ops[k]->dims, dims, (size_t)nd * sizeof *dims) == 0)
                continue;
            wanwu_status st = broadcast_map(im, ops[k], nd, dims, &expanded[k]);
            if (st != WANWU_OK) return st;
            ops[k] = &expanded[k];
        }
        a = ops[0];
        b = ops[1];
    }
    if (op == WW_ELT_ADD && same_shape(a, b)) {
        int v = ww_graph_add_add(im->g, im->node_name, a->value, b->value, im->err);
        if (v < 0) return graph_status(im);
        return add_map(im, n->output[0], v, a->ndim, a->dims);
    }
    if (op == WW_ELT_MUL) {
        /* x * sigmoid(x) is SiLU */
        if (a->sigmoid_of == b->value || b->sigmoid_of == a->value) {
            entry *x = a->sigmoid_of == b->value ? b : a;
            int v = ww_graph_add_activation(im->g, im->node_name, x->value, WW_ACT_SILU, im->err);
            if (v < 0) return graph_status(im);
            return add_map(im, n->output[0], v, x->ndim, x->dims);
        }
        /* squeeze-and-excitation: 1xCxHxW * 1xCx1x1 */
        if (is_nchw(a) && is_nchw(b) && !same_shape(a, b)) {
            entry *x = a, *sc = b;
            if (sc->dims[2] != 1 || sc->dims[3] != 1) {
                x = b;
                sc = a;
            }
            if (sc->dims[1] == x->dims[1] && sc->dims[2] == 1 && sc->dims[3] == 1) {
                int v = ww_graph_add_mul_channel(im->g, im->node_name, x->value, sc->value, im->err);
                if (v < 0) return graph_status(im);
                return add_map(im, n->output[0], v, 4, x->dims);
            }
        }
    }
    if (same_shape(a, b)) {
        int v = ww_graph_add_eltwise(im->g, im->node_name, a->value, b->value, NULL, 0, op, 0,
                                     im->err);
        if (v < 0) return graph_status(im);
        return add_map(im, n->output[0], v, a->ndim, a->dims);
    }
    return node_error(im, WANWU_ERR_UNSUPPORTED,
                      "two feature maps of different shapes (only x * Sigmoid(x) and a per-channel "
                      "scale broadcast)");
}

/* Gemm / MatMul of a 1xN feature vector: a linear layer. */
static wanwu_status import_linear_row(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                                      int is_matmul)
{
    entry *a = in[0];
    if (n_in < 2 || !in[1] || in[1]->kind != K_CONST || in[1]->t.ndim != 2 || in[1]->t.is_int)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "B must be a 2-D float constant");
    if (a->kind != K_MAP || a->ndim != 2 || a->dims[0] != 1)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "A must be a 1xN feature vector");
    const tensor *bt = &in[1]->t;
    int trans_b = is_matmul ? 0 : (int)attr_int(n, "transB", 0);
    if (!is_matmul && attr_int(n, "transA", 0))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "transA=1");
    float alpha = is_matmul ? 1.0f : attr_float(n, "alpha", 1.0f);
    float beta = is_matmul ? 1.0f : attr_float(n, "beta", 1.0f);
    int64_t in_f = trans_b ? bt->dims[1] : bt->dims[0], out_f = trans_b ? bt->dims[0] : bt->dims[1];
    if (in_f != a->dims[1])
        return node_error(im, WANWU_ERR_FORMAT, "B is %lldx%lld, A has %lld features",
                          (long long)bt->dims[0], (long long)bt->dims[1], (long long)a->dims[1]);
    const tensor *c = !is_matmul && n_in > 2 && in[2] ? &in[2]->t : NULL;
    if (c && (in[2]->kind != K_CONST || c->is_int || (c->count != out_f && c->count != 1)))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "C must be a float constant of %lld or 1",
                          (long long)out_f);
    float *w = malloc((size_t)(in_f * out_f) * sizeof *w);
    float *bias = c ? malloc((size_t)out_f * sizeof *bias) : NULL;
    if (!w || (c && !bias)) {
        free(w);
        free(bias);
        return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    }
    for (int64_t o = 0; o < out_f; o++)
        for (int64_t i = 0; i < in_f; i++)
            w[o * in_f + i] = alpha * (trans_b ? bt->f[o * in_f + i] : bt->f[i * out_f + o]);
    for (int64_t o = 0; c && o < out_f; o++) bias[o] = beta * c->f[c->count == 1 ? 0 : o];
    int v = ww_graph_add_linear(im->g, im->node_name, a->value, (int)out_f, w, bias, im->err);
    free(w);
    free(bias);
    if (v < 0) return graph_status(im);
    int64_t dims[2] = {1, out_f};
    return add_map(im, n->output[0], v, 2, dims);
}

static wanwu_status gather_concat(importer *im, const char *out_name, const entry *a,
                                  const entry *b, int axis);

static wanwu_status import_channel_concat(importer *im, const Onnx__NodeProto *n, entry **in,
                                          int n_in)
{
    int axis = norm_axis(attr_int(n, "axis", 1), in[0]->ndim);
    int64_t dims[MAX_DIMS];
    int ndim = in[0]->ndim;
    memcpy(dims, in[0]->dims, sizeof dims);
    if (axis < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
    int all_maps = 1;
    for (int k = 0; k < n_in; k++) all_maps &= in[k] && in[k]->kind == K_MAP;
    if (axis != 1 || in[0]->dims[0] != 1 || !all_maps) {
        /* any other axis, or constants among the inputs: pairwise index gathers */
        const entry *acc = in[0];
        for (int k = 1; k < n_in; k++) {
            if (!in[k] || in[k]->ndim != ndim || (acc->kind == K_CONST && in[k]->kind == K_CONST))
                return node_error(im, WANWU_ERR_UNSUPPORTED,
                                  "inputs must be of one rank, not two constants in a row");
            for (int d = 0; d < ndim; d++)
                if (d != axis && in[k]->dims[d] != acc->dims[d])
                    return node_error(im, WANWU_ERR_FORMAT, "inputs differ outside the axis");
            const char *name = k == n_in - 1 ? n->output[0] : "";
            wanwu_status st = gather_concat(im, name, acc, in[k], axis);
            if (st != WANWU_OK) return st;
            acc = &im->entries[im->count - 1];
        }
        if (n_in == 1) return relabel(im, n->output[0], in[0], ndim, dims);
        return WANWU_OK;
    }
    int v = in[0]->value;
    for (int k = 1; k < n_in; k++) {
        if (!in[k] || in[k]->kind != K_MAP || in[k]->ndim != ndim)
            return node_error(im, WANWU_ERR_UNSUPPORTED, "inputs must be feature maps of one rank");
        for (int d = 0; d < ndim; d++)
            if (d != 1 && in[k]->dims[d] != dims[d])
                return node_error(im, WANWU_ERR_FORMAT, "inputs differ outside the channel axis");
        dims[1] += in[k]->dims[1];
        v = ww_graph_add_concat(im->g, im->node_name, v, in[k]->value, im->err);
        if (v < 0) return graph_status(im);
    }
    return add_map(im, n->output[0], v, ndim, dims);
}

static wanwu_status import_channel_slices(importer *im, const Onnx__NodeProto *n, entry *x,
                                          int noutputs, const int64_t *begin, const int64_t *end)
{
    for (int k = 0; k < noutputs; k++) {
        if (!n->output[k][0]) continue;
        int v = ww_graph_add_slice_channels(im->g, im->node_name, x->value, (int)begin[k],
                                            (int)end[k], im->err);
        if (v < 0) return graph_status(im);
        int64_t dims[MAX_DIMS];
        memcpy(dims, x->dims, sizeof dims);
        dims[1] = end[k] - begin[k];
        wanwu_status st = add_map(im, n->output[k], v, x->ndim, dims);
        if (st != WANWU_OK) return st;
    }
    return WANWU_OK;
}

/* ---- data movement on feature maps (index gathers planned here) --------- */

static void strides_of(int ndim, const int64_t *dims, int64_t *strides)
{
    int64_t st = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        strides[k] = st;
        st *= dims[k];
    }
}

static wanwu_status alloc_index(importer *im, int ndim, const int64_t *dims, int32_t **index,
                                int64_t *count)
{
    *count = product(dims, ndim);
    if (*count <= 0)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "empty or oversized result");
    *index = malloc((size_t)*count * sizeof **index);
    if (!*index) return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    return WANWU_OK;
}

static wanwu_status emit_gather(importer *im, const char *out_name, const entry *a, const entry *b,
                                int ndim, const int64_t *dims, int32_t *index)
{
    int64_t c, h, w;
    shape_chw(ndim, dims, &c, &h, &w);
    int v = ww_graph_add_gather(im->g, im->node_name, a->value, b ? b->value : -1, (int)c, (int)h,
                                (int)w, index, im->err);
    free(index);
    if (v < 0) return graph_status(im);
    return add_map(im, out_name, v, ndim, dims);
}

/* Output element o of a strided window: start/step per axis over x. */
static wanwu_status gather_window(importer *im, const char *out_name, const entry *x,
                                  const int64_t *start, const int64_t *step, const int64_t *dims)
{
    int32_t *index;
    int64_t count, in_stride[MAX_DIMS];
    wanwu_status st = alloc_index(im, x->ndim, dims, &index, &count);
    if (st != WANWU_OK) return st;
    strides_of(x->ndim, x->dims, in_stride);
    for (int64_t o = 0; o < count; o++) {
        int64_t rem = o, src = 0;
        for (int k = x->ndim - 1; k >= 0; k--) {
            src += (start[k] + (rem % dims[k]) * step[k]) * in_stride[k];
            rem /= dims[k];
        }
        index[o] = (int32_t)src;
    }
    return emit_gather(im, out_name, x, NULL, x->ndim, dims, index);
}

static wanwu_status gather_transpose(importer *im, const char *out_name, const entry *x,
                                     const int64_t *perm)
{
    int64_t dims[MAX_DIMS], in_stride[MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) dims[k] = x->dims[perm[k]];
    strides_of(x->ndim, x->dims, in_stride);
    int32_t *index;
    int64_t count;
    wanwu_status st = alloc_index(im, x->ndim, dims, &index, &count);
    if (st != WANWU_OK) return st;
    for (int64_t o = 0; o < count; o++) {
        int64_t rem = o, src = 0;
        for (int k = x->ndim - 1; k >= 0; k--) {
            src += (rem % dims[k]) * in_stride[perm[k]];
            rem /= dims[k];
        }
        index[o] = (int32_t)src;
    }
    return emit_gather(im, out_name, x, NULL, x->ndim, dims, index);
}

static wanwu_status gather_concat(importer *im, const char *out_name, const entry *a,
                                  const entry *b, int axis)
{
    /* float constants arrive as graph values (import_node makes them CONSTANT nodes) */
    if (a->kind == K_CONST || b->kind == K_CONST)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "concatenating an integer constant");
    int64_t dims[MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    dims[axis] += b->dims[axis];
    int64_t outer = product(a->dims, axis);
    int64_t inner = product(a->dims + axis + 1, a->ndim - axis - 1);
    int64_t size_a = product(a->dims, a->ndim);
    int32_t *index;
    int64_t count;
    wanwu_status st = alloc_index(im, a->ndim, dims, &index, &count);
    if (st != WANWU_OK) return st;
    int64_t o = 0;
    for (int64_t p = 0; p < outer; p++) {
        for (int64_t j = 0; j < a->dims[axis] * inner; j++)
            index[o++] = (int32_t)(p * a->dims[axis] * inner + j);
        for (int64_t j = 0; j < b->dims[axis] * inner; j++)
            index[o++] = (int32_t)(size_a + p * b->dims[axis] * inner + j);
    }
    return emit_gather(im, out_name, a, b, a->ndim, dims, index);
}

static wanwu_status gather_take(importer *im, const char *out_name, const entry *x, int axis,
                                const tensor *idx)
{
    if (x->ndim + idx->ndim - 1 > MAX_DIMS)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "result rank too large");
    int64_t dims[MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < axis; k++) dims[nd++] = x->dims[k];
    for (int k = 0; k < idx->ndim; k++) dims[nd++] = idx->dims[k];
    for (int k = axis + 1; k < x->ndim; k++) dims[nd++] = x->dims[k];
    int64_t outer = product(x->dims, axis), inner = product(x->dims + axis + 1, x->ndim - axis - 1);
    int32_t *index;
    int64_t count;
    wanwu_status st = alloc_index(im, nd, dims, &index, &count);
    if (st != WANWU_OK) return st;
    int64_t o = 0;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t j = 0; j < idx->count; j++) {
            int64_t v = (int64_t)tensor_get(idx, j);
            if (v < 0) v += x->dims[axis];
            if (v < 0 || v >= x->dims[axis]) {
                free(index);
                return node_error(im, WANWU_ERR_FORMAT, "index %lld out of range",
                                  (long long)tensor_get(idx, j));
            }
            for (int64_t q = 0; q < inner; q++)
                index[o++] = (int32_t)((p * x->dims[axis] + v) * inner + q);
        }
    return emit_gather(im, out_name, x, NULL, nd, dims, index);
}

/* A window op the pooling kernels cannot run (dilated or 3-D windows,
 * ceil_mode windows averaged with count_include_pad): every window's taps
 * are gathered into a row at load time (padding reads -inf for max, 0 for
 * average), then each row is reduced; averages over fewer real taps than
 * the kernel are rescaled per output position. */
static wanwu_status pool_by_gather(importer *im, const char *out_name, const entry *x, int nsp,
                                   const int64_t *kernel, const int64_t *stride, const int64_t *dil,
                                   const int64_t *pads, const int64_t *out, int is_max,
                                   int count_include_pad)
{
    const int64_t *in_sp = x->dims + 2;
    int64_t nc = x->dims[0] * x->dims[1], in_size = product(in_sp, nsp);
    int64_t out_size = product(out, nsp), taps = product(kernel, nsp);
    if (out_size <= 0 || taps <= 0 || nc <= 0 || out_size > WW_ONNX_MAX_TENSOR_ELEMENTS / taps ||
        nc > WW_ONNX_MAX_TENSOR_ELEMENTS / (out_size * taps))
        return node_error(im, WANWU_ERR_LIMIT, "the gathered windows exceed %lld values",
                          (long long)WW_ONNX_MAX_TENSOR_ELEMENTS);
    int64_t rows = nc * out_size, count = rows * taps, pad_index = nc * in_size;
    int32_t *index = malloc((size_t)count * sizeof *index);
    float *scale = is_max ? NULL : malloc((size_t)rows * sizeof *scale);
    if (!index || (!is_max && !scale)) {
        free(index);
        free(scale);
        return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    }
    int rescale = 0;
    for (int64_t o = 0; o < out_size; o++) {
        int64_t oc[3] = {0}, rem = o;
        for (int a = nsp - 1; a >= 0; a--) {
            oc[a] = rem % out[a];
            rem /= out[a];
        }
        int64_t counted = 0;
        for (int64_t t = 0; t < taps; t++) {
            int64_t tc = t, lin = 0, in_stride = 1;
            int inside = 1, in_padded = 1;
            for (int a = nsp - 1; a >= 0; a--) {
                int64_t pos = oc[a] * stride[a] - pads[a] + (tc % kernel[a]) * dil[a];
                tc /= kernel[a];
                inside &= pos >= 0 && pos < in_sp[a];
                in_padded &= pos < in_sp[a] + pads[nsp + a];
                lin += pos * in_stride; /* row-major tap position in one channel */
                in_stride *= in_sp[a];
            }
            counted += count_include_pad ? in_padded : inside;
            for (int64_t c = 0; c < nc; c++)
                index[(c * out_size + o) * taps + t] =
                    (int32_t)(inside ? c * in_size + lin : pad_index);
        }
        if (!is_max) {
            float f = counted ? (float)taps / (float)counted : 0.0f;
            rescale |= counted != taps;
            for (int64_t c = 0; c < nc; c++)
                scale[c * out_size + o] = f;
        }
    }
    const float pad_value = is_max ? -INFINITY : 0.0f;
    int v = ww_graph_add_gather_const(im->g, im->node_name, x->value, &pad_value, 1, (int)rows, 1,
                                      (int)taps, index, im->err);
    free(index);
    if (v >= 0 && is_max) {
        ww_pool2d_shape p = {0};
        p.kernel_h = p.stride_h = p.stride_w = 1;
        p.kernel_w = (int)taps;
        v = ww_graph_add_pool2d_shape(im->g, WW_OP_MAXPOOL2D, im->node_name, v, &p, 0, im->err);
    } else if (v >= 0) {
        v = ww_graph_add_global_avgpool(im->g, im->node_name, v, im->err);
        if (v >= 0 && rescale)
            v = ww_graph_add_eltwise(im->g, im->node_name, v, -1, scale, (size_t)rows, WW_ELT_MUL,
                                     0, im->err);
    }
    free(scale);
    if (v < 0) return graph_status(im);
    int64_t dims[MAX_DIMS] = {x->dims[0], x->dims[1]};
    for (int a = 0; a < nsp; a++)
        dims[2 + a] = out[a];
    return add_map_any(im, out_name, v, x->ndim, dims);
}

/* Inference BatchNormalization of N x C x ...: batch and channels fold into
 * the value's channels, the parameters are repeated for every sample. */
static wanwu_status import_batchnorm(importer *im, const Onnx__NodeProto *n, entry **in, int n_in)
{
    entry *x = in[0];
    if (n_in < 5) return node_error(im, WANWU_ERR_FORMAT, "needs 5 inputs");
    if (attr_int(n, "training_mode", 0) != 0 || (n->n_output > 1 && n->output[1][0]))
        return node_error(im, WANWU_ERR_UNSUPPORTED,
                          "training mode (statistics of the batch): wanwu runs inference");
    if (x->ndim < 2) return node_error(im, WANWU_ERR_FORMAT, "input must be N x C x ...");
    int64_t batch = x->dims[0], channels = x->dims[1];
    const float *p[4];
    for (int k = 0; k < 4; k++) {
        entry *e = in[k + 1];
        if (!e || e->kind != K_CONST || e->t.is_int || e->t.count != channels)
            return node_error(im, WANWU_ERR_UNSUPPORTED,
                              "scale, B, mean and var must be float constants of %lld",
                              (long long)channels);
        p[k] = e->t.f;
    }
    int v = value_with_channels(im, x->value, batch * channels);
    if (v < 0) return graph_status(im);
    float *tiled = malloc((size_t)(4 * batch * channels) * sizeof *tiled);
    if (!tiled) return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    for (int k = 0; k < 4; k++)
        for (int64_t b = 0; b < batch; b++)
            memcpy(tiled + (k * batch + b) * channels, p[k], (size_t)channels * sizeof *tiled);
    size_t nc = (size_t)(batch * channels);
    v = ww_graph_add_batchnorm(im->g, im->node_name, v, tiled, tiled + nc, tiled + 2 * nc,
                               tiled + 3 * nc, attr_float(n, "epsilon", 1e-5f), im->err);
    free(tiled);
    if (v < 0) return graph_status(im);
    return add_map_any(im, n->output[0], v, x->ndim, x->dims);
}

/* GlobalAveragePool, and ReduceMean over any axes: the reduced axes are
 * gathered innermost (when they are not already), then each row of kept
 * position is averaged by the global pooling kernel. */
static wanwu_status import_mean(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                                int is_reduce)
{
    entry *x = in[0];
    int reduced[MAX_DIMS] = {0}, keep = 1;
    if (is_reduce) {
        int64_t axes[MAX_DIMS];
        int na = get_axes(im, n, in, n_in, 18, axes);
        keep = (int)attr_int(n, "keepdims", 1);
        if (na <= 0 && im->opset >= 18 && attr_int(n, "noop_with_empty_axes", 0))
            return relabel(im, n->output[0], x, x->ndim, x->dims);
        for (int k = 0; k < na; k++) {
            int a = norm_axis(axes[k], x->ndim);
            if (a < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
            reduced[a] = 1;
        }
        for (int k = 0; na <= 0 && k < x->ndim; k++)
            reduced[k] = 1; /* no axes: all */
    } else {
        if (x->ndim < 3) return node_error(im, WANWU_ERR_FORMAT, "input must be N x C x ...");
        for (int k = 2; k < x->ndim; k++)
            reduced[k] = 1;
    }
    int64_t perm[MAX_DIMS], kept = 1, out_dims[MAX_DIMS];
    int np = 0, identity = 1, out_ndim = 0;
    for (int k = 0; k < x->ndim; k++)
        if (!reduced[k]) {
            kept *= x->dims[k];
            perm[np++] = k;
        }
    for (int k = 0; k < x->ndim; k++)
        if (reduced[k]) perm[np++] = k;
    for (int k = 0; k < x->ndim; k++) {
        identity &= perm[k] == k;
        if (!reduced[k] || keep) out_dims[out_ndim++] = reduced[k] ? 1 : x->dims[k];
    }
    const entry *src = x;
    if (!identity) {
        wanwu_status st = gather_transpose(im, "", x, perm);
        if (st != WANWU_OK) return st;
        src = &im->entries[im->count - 1];
    }
    int v = value_with_channels(im, src->value, kept);
    if (v >= 0) v = ww_graph_add_global_avgpool(im->g, im->node_name, v, im->err);
    if (v < 0) return graph_status(im);
    return add_map_any(im, n->output[0], v, out_ndim, out_dims);
}

/* Softmax along one axis (opset 13), or over the trailing axes from `axis`
 * on (earlier opsets coerce to 2-D): rows of that length, the axis moved
 * innermost by a gather when it is not. */
static wanwu_status import_softmax(importer *im, const Onnx__NodeProto *n, entry *x)
{
    int axis = norm_axis(attr_int(n, "axis", im->opset >= 13 ? -1 : 1), x->ndim);
    if (axis < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
    int64_t len = im->opset >= 13 ? x->dims[axis] : product(x->dims + axis, x->ndim - axis);
    int64_t inner = im->opset >= 13 ? product(x->dims + axis + 1, x->ndim - axis - 1) : 1;
    int64_t perm[MAX_DIMS];
    for (int k = 0, j = 0; k < x->ndim; k++)
        if (k != axis) perm[j++] = k;
    perm[x->ndim - 1] = axis;
    const entry *src = x;
    if (inner != 1) {
        wanwu_status st = gather_transpose(im, "", x, perm);
        if (st != WANWU_OK) return st;
        src = &im->entries[im->count - 1];
    }
    int v = ww_graph_add_softmax(im->g, im->node_name, src->value, im->err);
    if (v < 0) return graph_status(im);
    if ((size_t)len != ww_value_size(&im->g->values[v]))
        im->g->nodes[im->g->values[v].producer].softmax_len = (int)len;
    if (inner == 1) return add_map(im, n->output[0], v, x->ndim, x->dims);
    int64_t back[MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        back[perm[k]] = k;
    entry moved = *src;
    moved.value = v;
    return gather_transpose(im, n->output[0], &moved, back);
}

/* Gemm / MatMul with a constant B and any number of rows (and, for
 * MatMul, batch dims): A is gathered to [group][K][rows], multiplied by a
 * 1x1 convolution with one group per distinct B matrix (one group when B
 * has no batch dims: batches become rows), and gathered back to
 * [batch..., M, N]. A Gemm bias along N is the convolution's bias, any
 * other C shape is added after. A plain 1xK vector times a 2-D B stays a
 * linear layer. */
static wanwu_status import_gemm(importer *im, const Onnx__NodeProto *n, entry **in, int n_in,
                                int is_matmul)
{
    entry *a = in[0];
    if (n_in < 2 || !in[1] || in[1]->kind != K_CONST || in[1]->t.is_int || in[1]->t.ndim < 2)
        return node_error(im, WANWU_ERR_UNSUPPORTED,
                          "B must be a float constant of rank 2 or more");
    const tensor *bt = &in[1]->t;
    int trans_a = is_matmul ? 0 : (int)attr_int(n, "transA", 0);
    int trans_b = is_matmul ? 0 : (int)attr_int(n, "transB", 0);
    if (a->ndim < 2 || (!is_matmul && (a->ndim != 2 || bt->ndim != 2)))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "A must have rank %s",
                          is_matmul ? "2 or more" : "2");
    if (a->ndim == 2 && a->dims[0] == 1 && !trans_a && bt->ndim == 2)
        return import_linear_row(im, n, in, n_in, is_matmul);
    float alpha = is_matmul ? 1.0f : attr_float(n, "alpha", 1.0f);
    float beta = is_matmul ? 1.0f : attr_float(n, "beta", 1.0f);
    int an = a->ndim - 2, bn = bt->ndim - 2, on = an > bn ? an : bn;
    int64_t m = a->dims[an + trans_a], k = a->dims[an + 1 - trans_a];
    int64_t bk = bt->dims[bn + trans_b], nn = bt->dims[bn + 1 - trans_b];
    if (bk != k)
        return node_error(im, WANWU_ERR_FORMAT, "A has %lld columns, B %lld rows", (long long)k,
                          (long long)bk);
    /* batch dims broadcast numpy-style */
    int64_t ob[MAX_DIMS], a_st[MAX_DIMS], b_st[MAX_DIMS];
    int64_t a_stride = m * k, b_stride = k * nn, b_batches = product(bt->dims, bn);
    for (int d = on - 1; d >= 0; d--) {
        int ia = d - (on - an), ib = d - (on - bn);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? bt->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return node_error(im, WANWU_ERR_FORMAT, "batch dims do not broadcast");
        ob[d] = da == 1 ? db : da;
        a_st[d] = da == 1 ? 0 : a_stride;
        b_st[d] = db == 1 ? 0 : b_stride;
        a_stride *= da;
        b_stride *= db;
    }
    int64_t batches = product(ob, on);
    int64_t groups = b_batches == 1 ? 1 : batches, cols = b_batches == 1 ? batches * m : m;
    const int64_t limit = WW_ONNX_MAX_TENSOR_ELEMENTS;
    if (m <= 0 || k <= 0 || nn <= 0) return node_error(im, WANWU_ERR_UNSUPPORTED, "empty matrices");
    /* batches is -1 past the limit; each other factor is at most the limit */
    if (batches <= 0 || batches * m > limit / k || batches * m > limit / nn ||
        groups * nn > limit / k)
        return node_error(im, WANWU_ERR_LIMIT, "the product exceeds %lld values", (long long)limit);
    const tensor *c = !is_matmul && n_in > 2 && in[2] ? &in[2]->t : NULL;
    if (c && (in[2]->kind != K_CONST || c->is_int))
        return node_error(im, WANWU_ERR_UNSUPPORTED, "C must be a float constant");
    int bias_along_n = c && (c->count == 1 || (c->count == nn && c->dims[c->ndim - 1] == nn));
    size_t n_in_idx = (size_t)(groups * k * cols), n_w = (size_t)(groups * nn * k);
    size_t n_out = (size_t)(batches * m * nn);
    int32_t *index = malloc((n_in_idx > n_out ? n_in_idx : n_out) * sizeof *index);
    float *w = malloc(n_w * sizeof *w);
    float *bias = bias_along_n ? malloc((size_t)(groups * nn) * sizeof *bias) : NULL;
    if (!index || !w || (bias_along_n && !bias)) {
        free(index);
        free(w);
        free(bias);
        return ww_error_set(im->err, WANWU_ERR_NO_MEMORY, "out of memory");
    }
    /* A element (batch b, row r, column j) and B element (batch b, row j, column o) */
    for (int64_t b = 0; b < batches; b++) {
        int64_t a_off = 0, b_off = 0, rem = b;
        for (int d = on - 1; d >= 0; d--) {
            a_off += (rem % ob[d]) * a_st[d];
            b_off += (rem % ob[d]) * b_st[d];
            rem /= ob[d];
        }
        int64_t g = groups == 1 ? 0 : b, col0 = groups == 1 ? b * m : 0;
        for (int64_t j = 0; j < k; j++)
            for (int64_t r = 0; r < m; r++)
                index[(g * k + j) * cols + col0 + r] =
                    (int32_t)(a_off + (trans_a ? j * m + r : r * k + j));
        if (groups == 1 && b > 0) continue; /* one group: B has no batch dims */
        for (int64_t o = 0; o < nn; o++)
            for (int64_t j = 0; j < k; j++)
                w[(g * nn + o) * k + j] = alpha * bt->f[b_off + (trans_b ? o * k + j : j * nn + o)];
    }
    for (int64_t o = 0; bias_along_n && o < groups * nn; o++)
        bias[o] = beta * c->f[c->count == 1 ? 0 : o % nn];
    int v = ww_graph_add_gather(im->g, im->node_name, a->value, -1, (int)(groups * k), 1, (int)cols,
                                index, im->err);
    if (v >= 0) {
        ww_conv2d_shape s = {0};
        s.out_c = (int)(groups * nn);
        s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = s.dilation_h = s.dilation_w = 1;
        s.groups = (int)groups;
        v = ww_graph_add_conv2d_shape(im->g, im->node_name, v, &s, w, bias, im->err);
    }
    free(w);
    free(bias);
    int64_t dims[MAX_DIMS];
    memcpy(dims, ob, (size_t)on * sizeof *dims);
    dims[on] = m;
    dims[on + 1] = nn;
    if (v >= 0) {
        /* back from [group][N][cols] to [batch..., M, N] */
        for (int64_t b = 0; b < batches; b++)
            for (int64_t r = 0; r < m; r++)
                for (int64_t o = 0; o < nn; o++) {
                    int64_t g = groups == 1 ? 0 : b, col = groups == 1 ? b * m + r : r;
                    index[(b * m + r) * nn + o] = (int32_t)((g * nn + o) * cols + col);
                }
        int64_t oc, oh, ow;
        shape_chw(on + 2, dims, &oc, &oh, &ow);
        v = ww_graph_add_gather(im->g, im->node_name, v, -1, (int)oc, (int)oh, (int)ow, index,
                                im->err);
    }
    free(index);
    if (v < 0) return graph_status(im);
    if (c && !bias_along_n) {
        /* a bias over rows too: C broadcast onto [M, N], times beta */
        tensor shape = {0}, full;
        shape.ndim = 2;
        shape.dims[0] = m;
        shape.dims[1] = nn;
        int nd;
        int64_t bd[MAX_DIMS];
        if (!broadcast_dims(&shape, c, &nd, bd) || nd != 2 || bd[0] != m || bd[1] != nn)
            return node_error(im, WANWU_ERR_FORMAT, "C does not broadcast onto %lldx%lld",
                              (long long)m, (long long)nn);
        wanwu_status st = tensor_alloc(im, &full, 2, bd, 0);
        if (st != WANWU_OK) return st;
        for (int64_t q = 0; q < full.count; q++)
            full.f[q] = beta * c->f[broadcast_index(c, 2, bd, q)];
        v = ww_graph_add_eltwise(im->g, im->node_name, v, -1, full.f, (size_t)full.count,
                                 WW_ELT_ADD, 0, im->err);
        tensor_free(&full);
        if (v < 0) return graph_status(im);
    }
    return add_map(im, n->output[0], v, on + 2, dims);
}

static int binary_op(const char *op, ww_eltwise_op *out)
{
    if (strcmp(op, "Add") == 0) *out = WW_ELT_ADD;
    else if (strcmp(op, "Sub") == 0) *out = WW_ELT_SUB;
    else if (strcmp(op, "Mul") == 0) *out = WW_ELT_MUL;
    else if (strcmp(op, "Div") == 0) *out = WW_ELT_DIV;
    else return 0;
    return 1;
}

static wanwu_status import_map_node(importer *im, const Onnx__NodeProto *n, entry **in, int n_in)
{
    const char *op = n->op_type;
    entry *x = in[0];
    if (!x || x->kind != K_MAP) {
        /* the first input constant, another one not: only commutative binary ops */
        ww_eltwise_op eop;
        if (n_in == 2 && binary_op(op, &eop)) return import_binary(im, n, in, n_in, eop);
        if (strcmp(op, "Concat") == 0 && x) return import_channel_concat(im, n, in, n_in);
        return node_error(im, WANWU_ERR_UNSUPPORTED, "the first input must be the feature map");
    }
    if (strcmp(op, "Conv") == 0) return import_conv(im, n, in, n_in);
    if (strcmp(op, "BatchNormalization") == 0) return import_batchnorm(im, n, in, n_in);
    if (strcmp(op, "Relu") == 0) return import_activation(im, n, x, WW_ACT_RELU);
    if (strcmp(op, "Sigmoid") == 0) return import_activation(im, n, x, WW_ACT_SIGMOID);
    if (strcmp(op, "Clip") == 0) {
        float lo, hi;
        wanwu_status st = clip_bound(im, n, in, n_in, 1, "min", -INFINITY, &lo);
        if (st == WANWU_OK) st = clip_bound(im, n, in, n_in, 2, "max", INFINITY, &hi);
        if (st != WANWU_OK) return st;
        if (lo == 0.0f && hi == 6.0f) return import_activation(im, n, x, WW_ACT_RELU6);
        if (lo == 0.0f && isinf(hi) && hi > 0) return import_activation(im, n, x, WW_ACT_RELU);
        int v = ww_graph_add_affine_clamp(im->g, im->node_name, x->value, 1.0f, 0.0f, lo, hi,
                                          im->err);
        if (v < 0) return graph_status(im);
        return add_map(im, n->output[0], v, x->ndim, x->dims);
    }
    ww_eltwise_op eop;
    if (binary_op(op, &eop)) return import_binary(im, n, in, n_in, eop);
    if (strcmp(op, "HardSwish") == 0) return import_activation(im, n, x, WW_ACT_HARDSWISH);
    if (strcmp(op, "HardSigmoid") == 0) {
        int v = ww_graph_add_affine_clamp(im->g, im->node_name, x->value,
                                          attr_float(n, "alpha", 0.2f), attr_float(n, "beta", 0.5f),
                                          0.0f, 1.0f, im->err);
        if (v < 0) return graph_status(im);
        return add_map(im, n->output[0], v, x->ndim, x->dims);
    }
    if (strcmp(op, "MaxPool") == 0 || strcmp(op, "AveragePool") == 0)
        return import_pool(im, n, in, op[0] == 'M');
    if (strcmp(op, "GlobalAveragePool") == 0 || strcmp(op, "ReduceMean") == 0)
        return import_mean(im, n, in, n_in, op[0] == 'R');
    if (strcmp(op, "Flatten") == 0) {
        int axis = (int)attr_int(n, "axis", 1);
        if (axis < 0) axis += x->ndim;
        if (axis < 0 || axis > x->ndim) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
        int64_t dims[2] = {product(x->dims, axis), product(x->dims + axis, x->ndim - axis)};
        return relabel(im, n->output[0], x, 2, dims);
    }
    if (strcmp(op, "Gather") == 0) {
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (axis < 0 || n_in < 2 || !in[1] || in[1]->kind != K_CONST)
            return node_error(im, WANWU_ERR_UNSUPPORTED, "indices must be a constant");
        return gather_take(im, n->output[0], x, axis, &in[1]->t);
    }
    if (strcmp(op, "Reshape") == 0 || strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) {
        int64_t dims[MAX_DIMS];
        int nd = 0;
        if (op[0] == 'R') {
            int64_t shape[MAX_DIMS];
            int ns = n_in > 1 ? const_ints(in[1], shape, MAX_DIMS) : -1;
            if (ns < 0)
                return node_error(im, WANWU_ERR_UNSUPPORTED, "the shape must be a constant");
            wanwu_status st = reshape_target(im, x->dims, x->ndim, shape, ns,
                                              (int)attr_int(n, "allowzero", 0), dims);
            if (st != WANWU_OK) return st;
            nd = ns;
        } else {
            int64_t axes[MAX_DIMS];
            int na = get_axes(im, n, in, n_in, 13, axes);
            int unsq = op[0] == 'U';
            int out_nd = unsq ? x->ndim + (na > 0 ? na : 0) : x->ndim;
            if ((unsq && na <= 0) || out_nd > MAX_DIMS)
                return node_error(im, WANWU_ERR_FORMAT, "bad axes");
            int mark[MAX_DIMS] = {0};
            for (int k = 0; k < na; k++) {
                int a = norm_axis(axes[k], out_nd);
                if (a < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
                mark[a] = 1;
            }
            if (unsq) {
                for (int k = 0, src = 0; k < out_nd; k++) dims[nd++] = mark[k] ? 1 : x->dims[src++];
            } else {
                for (int k = 0; k < x->ndim; k++)
                    if (!(na < 0 ? x->dims[k] == 1 : mark[k])) dims[nd++] = x->dims[k];
            }
        }
        return relabel(im, n->output[0], x, nd, dims);
    }
    if (strcmp(op, "Transpose") == 0) {
        int64_t perm[MAX_DIMS];
        int np = attr_ints(n, "perm", perm, MAX_DIMS);
        /* ShuffleNet's channel shuffle: 1 x g x C/g x H x W, swap axes 1 and 2 */
        if (np == 5 && x->ndim == 5 && x->dims[0] == 1 && perm[0] == 0 && perm[1] == 2 &&
            perm[2] == 1 && perm[3] == 3 && perm[4] == 4) {
            int v = ww_graph_add_channel_shuffle(im->g, im->node_name, x->value, (int)x->dims[1],
                                                 im->err);
            if (v < 0) return graph_status(im);
            int64_t dims[5] = {1, x->dims[2], x->dims[1], x->dims[3], x->dims[4]};
            return add_map(im, n->output[0], v, 5, dims);
        }
        if (np < 0) {
            np = x->ndim;
            for (int k = 0; k < np; k++) perm[k] = np - 1 - k;
        }
        if (np != x->ndim) return node_error(im, WANWU_ERR_FORMAT, "perm has the wrong length");
        int seen[MAX_DIMS] = {0}, identity = 1;
        for (int k = 0; k < np; k++) {
            if (perm[k] < 0 || perm[k] >= np || seen[perm[k]]++)
                return node_error(im, WANWU_ERR_FORMAT, "perm is not a permutation");
            identity &= perm[k] == k;
        }
        if (identity) return relabel(im, n->output[0], x, x->ndim, x->dims);
        return gather_transpose(im, n->output[0], x, perm);
    }
    if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0)
        return import_gemm(im, n, in, n_in, op[0] == 'M');
    if (strcmp(op, "Concat") == 0) return import_channel_concat(im, n, in, n_in);
    if (strcmp(op, "Split") == 0) {
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (axis < 0) return node_error(im, WANWU_ERR_FORMAT, "bad axis");
        int channel_axis = axis == 1 && x->dims[0] == 1;
        int outs = (int)n->n_output;
        int64_t sizes[64], begin[64], end[64];
        int ns = im->opset >= 13 ? (n_in > 1 && in[1] ? const_ints(in[1], sizes, 64) : -1)
                                 : attr_ints(n, "split", sizes, 64);
        if (outs > 64) return node_error(im, WANWU_ERR_UNSUPPORTED, "too many outputs");
        if (ns < 0) {
            int64_t per = (x->dims[axis] + outs - 1) / outs;
            for (int k = 0; k < outs; k++) {
                int64_t left = x->dims[axis] - per * k;
                sizes[k] = left < per ? left : per;
            }
            ns = outs;
        }
        if (ns != outs) return node_error(im, WANWU_ERR_FORMAT, "split sizes do not match outputs");
        int64_t at = 0;
        for (int k = 0; k < outs; k++) {
            if (sizes[k] <= 0) return node_error(im, WANWU_ERR_UNSUPPORTED, "empty split");
            begin[k] = at;
            end[k] = at += sizes[k];
        }
        if (at != x->dims[axis])
            return node_error(im, WANWU_ERR_FORMAT, "split sizes do not add up");
        if (channel_axis) return import_channel_slices(im, n, x, outs, begin, end);
        for (int k = 0; k < outs; k++) {
            if (!n->output[k][0]) continue;
            int64_t start[MAX_DIMS] = {0}, step[MAX_DIMS], dims[MAX_DIMS];
            for (int d = 0; d < x->ndim; d++) {
                step[d] = 1;
                dims[d] = x->dims[d];
            }
            start[axis] = begin[k];
            dims[axis] = end[k] - begin[k];
            wanwu_status st = gather_window(im, n->output[k], x, start, step, dims);
            if (st != WANWU_OK) return st;
        }
        return WANWU_OK;
    }
    if (strcmp(op, "Slice") == 0) {
        int64_t s[MAX_DIMS], e[MAX_DIMS], stp[MAX_DIMS];
        wanwu_status st = slice_params(im, n, in, n_in, x->ndim, x->dims, s, e, stp);
        if (st != WANWU_OK) return st;
        int channel_only = x->ndim >= 2 && x->dims[0] == 1 && stp[1] == 1 && e[1] > s[1];
        for (int a = 0; a < x->ndim; a++)
            if (a != 1 && (s[a] != 0 || e[a] != x->dims[a] || stp[a] != 1)) channel_only = 0;
        if (channel_only) return import_channel_slices(im, n, x, 1, &s[1], &e[1]);
        int64_t dims[MAX_DIMS];
        for (int a = 0; a < x->ndim; a++) dims[a] = slice_len(s[a], e[a], stp[a]);
        return gather_window(im, n->output[0], x, s, stp, dims);
    }
    if (strcmp(op, "Softmax") == 0) return import_softmax(im, n, x);
    if (strcmp(op, "Dropout") == 0) {
        int training = 0;
        if (n_in > 2 && in[2])
            training = in[2]->kind != K_CONST || in[2]->t.count != 1 || tensor_get(&in[2]->t, 0);
        if (training || (im->opset < 7 && attr_int(n, "is_test", 0) == 0))
            return node_error(im, WANWU_ERR_UNSUPPORTED, "training-mode dropout");
        if (n->n_output > 1 && n->output[1][0]) {
            /* at inference every value is kept: the mask is all true */
            tensor mask;
            wanwu_status st = tensor_alloc(im, &mask, x->ndim, x->dims, 1);
            for (int64_t k = 0; st == WANWU_OK && k < mask.count; k++)
                mask.i[k] = 1;
            if (st == WANWU_OK) st = add_const(im, n->output[1], &mask);
            if (st != WANWU_OK) return st;
        }
        return relabel(im, n->output[0], x, x->ndim, x->dims);
    }
    if (strcmp(op, "Identity") == 0) return relabel(im, n->output[0], x, x->ndim, x->dims);
    if (strcmp(op, "Cast") == 0) {
        int64_t to = attr_int(n, "to", 1);
        if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
            return node_error(im, WANWU_ERR_UNSUPPORTED, "casting a feature map to type %lld",
                              (long long)to);
        return relabel(im, n->output[0], x, x->ndim, x->dims);
    }
    if (strcmp(op, "Shape") == 0) {
        int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", x->ndim);
        if (start < 0) start += x->ndim;
        if (end < 0) end += x->ndim;
        start = start < 0 ? 0 : (start > x->ndim ? x->ndim : start);
        end = end < start ? start : (end > x->ndim ? x->ndim : end);
        tensor t;
        int64_t dims[1] = {end - start};
        wanwu_status st = tensor_alloc(im, &t, 1, dims, 1);
        if (st != WANWU_OK) return st;
        for (int64_t k = start; k < end; k++) t.i[k - start] = x->dims[k];
        return add_const(im, n->output[0], &t);
    }
    return node_error(im, WANWU_ERR_UNSUPPORTED, "'%s' on a feature map is not supported", op);
}

/* ---- the model ------------------------------------------------------------ */

static const char *const supported_ops[] = {
    "Conv",      "BatchNormalization", "Relu",      "Clip",    "Sigmoid",   "Mul",
    "Add",       "Sub",                "Div",       "MaxPool", "AveragePool",
    "GlobalAveragePool", "Gemm",       "MatMul",    "Flatten", "Reshape",   "Transpose",
    "Concat",    "Split",              "Slice",     "Squeeze", "Unsqueeze", "Constant",
    "Identity",  "Softmax",            "Shape",     "Gather",  "Cast",      "DequantizeLinear",
    "Dropout",   "ReduceMean",         "HardSigmoid", "HardSwish", NULL,
};

static int op_supported(const char *op)
{
    for (int k = 0; supported_ops[k]; k++)
        if (strcmp(supported_ops[k], op) == 0) return 1;
    return 0;
}

static wanwu_status constant_node(importer *im, const Onnx__NodeProto *n)
{
    tensor t = {0};
    const Onnx__AttributeProto *a;
    wanwu_status st;
    if ((a = attr(n, "value")) && a->t) {
        st = tensor_from_proto(im, a->t, &t, im->err);
        if (st != WANWU_OK) return ww_error_prefix(im->err, "node '%s' (Constant): ", im->node_name);
    } else if ((a = attr(n, "value_float")) && a->has_f) {
        st = tensor_alloc(im, &t, 0, NULL, 0);
        if (st == WANWU_OK) t.f[0] = a->f;
    } else if ((a = attr(n, "value_int")) && a->has_i) {
        st = tensor_alloc(im, &t, 0, NULL, 1);
        if (st == WANWU_OK) t.i[0] = a->i;
    } else if ((a = attr(n, "value_floats"))) {
        int64_t d[1] = {(int64_t)a->n_floats};
        st = tensor_alloc(im, &t, 1, d, 0);
        if (st == WANWU_OK && a->n_floats) memcpy(t.f, a->floats, a->n_floats * sizeof *t.f);
    } else if ((a = attr(n, "value_ints"))) {
        int64_t d[1] = {(int64_t)a->n_ints};
        st = tensor_alloc(im, &t, 1, d, 1);
        if (st == WANWU_OK && a->n_ints) memcpy(t.i, a->ints, a->n_ints * sizeof *t.i);
    } else {
        return node_error(im, WANWU_ERR_UNSUPPORTED, "only tensor, float(s) and int(s) values");
    }
    if (st != WANWU_OK) return st;
    return add_const(im, n->output[0], &t);
}

/* Data movement whose output is a float run-time operand when its data
 * input is a float constant. */
static int lifts_data(const char *op)
{
    static const char *const ops[] = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten",
                                      "Slice",     "Gather",  "Split",   "Identity",  "Dropout"};
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
        if (strcmp(op, ops[k]) == 0) return 1;
    return 0;
}

static wanwu_status import_node(importer *im, const Onnx__NodeProto *n)
{
    im->op_type = n->op_type ? n->op_type : "";
    im->node_name = n->name && *n->name ? n->name : (n->n_output ? n->output[0] : "");
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0)
        return node_error(im, WANWU_ERR_UNSUPPORTED, "operator domain '%s' is not supported",
                          n->domain);
    if (!op_supported(im->op_type))
        return node_error(im, WANWU_ERR_UNSUPPORTED,
                          "op type '%s' is not supported by wanwu (see README: ONNX ops)",
                          im->op_type);
    if (n->n_output < 1 || !n->output[0][0])
        return node_error(im, WANWU_ERR_FORMAT, "has no output");
    for (size_t k = 0; k < n->n_output; k++)
        if (n->output[k][0] && find(im, n->output[k]))
            return node_error(im, WANWU_ERR_FORMAT,
                              "output '%s' is already defined (the graph is not in SSA form)",
                              n->output[k]);
    if (strcmp(im->op_type, "Constant") == 0) return constant_node(im, n);
    entry *in[16] = {0};
    if (n->n_input > 16) return node_error(im, WANWU_ERR_UNSUPPORTED, "more than 16 inputs");
    if (n->n_output > 64) return node_error(im, WANWU_ERR_UNSUPPORTED, "more than 64 outputs");
    /* outputs plus the intermediates of a chained Concat: in[] stays valid */
    if (!reserve_entries(im, (int)(n->n_output + n->n_input) + 4)) return WANWU_ERR_NO_MEMORY;
    int n_in = (int)n->n_input;
    for (int k = 0; k < n_in; k++) {
        if (!n->input[k][0]) continue; /* optional input left out */
        in[k] = find(im, n->input[k]);
        if (!in[k])
            return node_error(im, WANWU_ERR_FORMAT,
                              "input '%s' is neither an initializer nor the output of an earlier "
                              "node (missing initializer, or the graph has a cycle)",
                              n->input[k]);
    }
    ww_eltwise_op eop;
    const char *op = im->op_type;
    int all_data = binary_op(op, &eop) || strcmp(op, "Concat") == 0;
    int to_int =
        strcmp(op, "Cast") == 0 && attr_int(n, "to", 1) != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    for (int k = 0; k < n_in; k++) {
        /* parameters (and data only read here) computed from constants */
        if (k == 0 ? !(to_int || strcmp(op, "DequantizeLinear") == 0) : all_data) continue;
        wanwu_status st = resolve_const(im, in[k]);
        if (st != WANWU_OK) return st;
    }
    int all_const = n_in > 0;
    for (int k = 0; k < n_in; k++)
        all_const &= !in[k] || in[k]->kind == K_CONST;
    /* float data on constants: graph nodes over CONSTANT values (the whole
     * input list for element-wise ops and Concat, else the data input) */
    int lift = all_data ? n_in : 0;
    if (!all_data && all_const && lifts_data(op)) lift = 1;
    int lift_all = lift > 0;
    for (int k = 0; k < lift; k++)
        lift_all &= !in[k] || liftable(in[k]) || in[k]->kind == K_MAP;
    if (lift_all && (all_const || strcmp(op, "Concat") == 0)) {
        entry lifted[16];
        for (int k = 0; k < lift; k++) {
            if (!liftable(in[k])) continue;
            wanwu_status st = lift_const(im, in[k], &lifted[k]);
            if (st != WANWU_OK) return st;
            in[k] = &lifted[k];
        }
        if (in[0]) return import_map_node(im, n, in, n_in);
    }
    if (all_const && in[0] && strcmp(op, "DequantizeLinear") == 0)
        return dequantize_const(im, n, in, n_in);
    if (all_const && in[0]) {
        wanwu_status st = fold_node(im, n, in, n_in);
        if (st != WANWU_ERR_UNSUPPORTED || (im->err && im->err->message[0])) return st;
        return node_error(im, WANWU_ERR_UNSUPPORTED, "cannot be evaluated on constants");
    }
    return import_map_node(im, n, in, n_in);
}

static int read_whole_file(const char *path, uint8_t **data, size_t *size, wanwu_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ww_error_set(err, WANWU_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_IO, "not a regular file");
    }
    if ((uint64_t)st.st_size > WW_ONNX_MAX_FILE_BYTES) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_LIMIT, "file is larger than %zu bytes",
                            WW_ONNX_MAX_FILE_BYTES);
    }
    *size = (size_t)st.st_size;
    *data = malloc(*size ? *size : 1);
    if (!*data) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory reading the file");
    }
    if (fread(*data, 1, *size, f) != *size) {
        free(*data);
        fclose(f);
        return ww_error_set(err, WANWU_ERR_IO, "read error");
    }
    fclose(f);
    return WANWU_OK;
}

int ww_onnx_sniff(const uint8_t *data, size_t size)
{
    /* a ModelProto starts with a field tag: ir_version (0x08), opset_import
     * (0x42), producer_name (0x12), graph (0x3a), ...; .pth files start
     * with "PK" (zip) or 0x80 (pickle) */
    if (size < 2) return 0;
    uint8_t tag = data[0];
    return tag == 0x08 || tag == 0x12 || tag == 0x1a || tag == 0x22 || tag == 0x2a ||
           tag == 0x32 || tag == 0x3a || tag == 0x42;
}

static int initializer_name(const Onnx__GraphProto *g, const char *name)
{
    for (size_t k = 0; k < g->n_initializer; k++)
        if (g->initializer[k]->name && strcmp(g->initializer[k]->name, name) == 0) return 1;
    return 0;
}

static wanwu_status declared_input(importer *im, const Onnx__ValueInfoProto *vi, int input_size,
                                   int *ndim, int64_t *dims)
{
    const char *name = vi->name ? vi->name : "";
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type || !vi->type->tensor_type->shape)
        return ww_error_set(im->err, WANWU_ERR_UNSUPPORTED, "input '%s' has no tensor shape", name);
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return ww_error_set(im->err, WANWU_ERR_UNSUPPORTED, "input '%s' is not float32", name);
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (sh->n_dim < 1 || sh->n_dim > MAX_DIMS)
        return ww_error_set(im->err, WANWU_ERR_UNSUPPORTED, "input '%s' has rank %zu", name,
                            sh->n_dim);
    *ndim = (int)sh->n_dim;
    for (size_t k = 0; k < sh->n_dim; k++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[k];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value == 0)
                return ww_error_set(im->err, WANWU_ERR_UNSUPPORTED,
                                    "input '%s': empty tensors (dimension %zu is 0)", name, k);
            if (d->dim_value < 0 || d->dim_value > (1 << 24))
                return ww_error_set(im->err, WANWU_ERR_LIMIT,
                                    "input '%s': declared dimension %zu is %lld (allowed: 1 to "
                                    "%d)",
                                    name, k, (long long)d->dim_value, 1 << 24);
            dims[k] = d->dim_value;
        } else {
            dims[k] = k == 0 ? 1 : (k >= 2 ? input_size : 3); /* dynamic: batch 1, N x 3 x S x S */
        }
    }
    /* a batch other than 1 is left to the ops: element-wise ones do not
     * care, windowed and linear ones require batch 1 and say so */
    if (product(dims, *ndim) < 0)
        return ww_error_set(im->err, WANWU_ERR_LIMIT,
                            "input '%s': declared shape has more than %lld elements", name,
                            (long long)WW_ONNX_MAX_TENSOR_ELEMENTS);
    return WANWU_OK;
}

/* Ops whose definition has not changed in what wanwu reads from this
 * version up to opset 18 (later versions only added types or attributes
 * with defaults that keep the old meaning), so a model of an older opset
 * is read as it means. An op missing here, or declared at an older
 * version, changed meaning (BatchNormalization's spatial, Add's implicit
 * broadcast before 7, ...) and is refused. */
static const struct {
    const char *op;
    int since;
} stable_since[] = {
    {"Relu", 6},      {"Sigmoid", 6},    {"HardSigmoid", 6}, {"GlobalAveragePool", 1},
    {"Add", 7},       {"Sub", 7},        {"Mul", 7},         {"Div", 7},
    {"Conv", 1},      {"MaxPool", 8},    {"AveragePool", 7}, {"Gemm", 7},
    {"MatMul", 1},    {"Flatten", 1},    {"Reshape", 5},     {"Transpose", 1},
    {"Concat", 4},    {"Split", 2},      {"Slice", 1},       {"Squeeze", 1},
    {"Unsqueeze", 1}, {"Constant", 1},   {"Identity", 1},    {"Softmax", 1},
    {"Shape", 1},     {"Gather", 1},     {"Cast", 6},        {"Clip", 6},
    {"Dropout", 7},   {"ReduceMean", 1},
};

static wanwu_status check_old_opset(importer *im, const Onnx__GraphProto *gp)
{
    if (im->opset >= MIN_OPSET) return WANWU_OK;
    for (size_t k = 0; k < gp->n_node; k++) {
        const char *op = gp->node[k]->op_type ? gp->node[k]->op_type : "";
        int since = -1;
        for (size_t j = 0; j < sizeof stable_since / sizeof *stable_since; j++)
            if (strcmp(stable_since[j].op, op) == 0) since = stable_since[j].since;
        if (since < 0 || since > im->opset)
            return ww_error_set(im->err, WANWU_ERR_UNSUPPORTED,
                                "ONNX opset %d is not supported for '%s': its definition at that "
                                "opset differs from the one wanwu reads (opsets %d to %d)",
                                im->opset, op, MIN_OPSET, MAX_OPSET);
    }
    return WANWU_OK;
}

wanwu_status ww_onnx_import_file(const char *path, const ww_onnx_import_options *options,
                                 ww_graph *g, ww_onnx_info *info, wanwu_error *err)
{
    memset(info, 0, sizeof *info);
    uint8_t *data = NULL;
    size_t size = 0;
    wanwu_status st = read_whole_file(path, &data, &size, err);
    if (st != WANWU_OK) return st;
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    if (!model)
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "not a valid ONNX file (the protobuf does not parse: truncated or "
                            "not ONNX)");
    importer im = {0};
    im.g = g;
    im.err = err;
    im.node_name = "";
    im.op_type = "";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    im.dir = dir;
    int input_size = options && options->input_size > 0 ? options->input_size : 224;

    const Onnx__GraphProto *gp = model->graph;
    for (size_t k = 0; k < model->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *o = model->opset_import[k];
        if ((!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0) && o->has_version)
            im.opset = (int)o->version;
    }
    if (!gp || gp->n_node == 0) {
        st = ww_error_set(err, WANWU_ERR_FORMAT, "ONNX model has no graph");
        goto done;
    }
    if (im.opset < 1 || im.opset > MAX_OPSET) {
        st = ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                          "ONNX opset %d is not supported (wanwu reads opsets %d to %d)", im.opset,
                          MIN_OPSET, MAX_OPSET);
        goto done;
    }
    st = check_old_opset(&im, gp);
    if (st != WANWU_OK) goto done;
    info->opset = im.opset;
    snprintf(info->graph_name, sizeof info->graph_name, "%s", gp->name ? gp->name : "");

    /* initializers and bound tensors */
    for (size_t k = 0; k < gp->n_initializer; k++) {
        tensor t;
        const Onnx__TensorProto *tp = gp->initializer[k];
        if (!tp->name || !*tp->name) {
            st = ww_error_set(err, WANWU_ERR_FORMAT, "initializer %zu has no name", k);
            goto done;
        }
        st = tensor_from_proto(&im, tp, &t, err);
        if (st != WANWU_OK) goto done;
        if (!t.is_int) info->num_params += t.count;
        st = add_const(&im, tp->name, &t);
        if (st != WANWU_OK) goto done;
    }
    for (int k = 0; options && k < options->num_bindings; k++) {
        const ww_onnx_binding *b = &options->bindings[k];
        tensor t;
        st = tensor_alloc(&im, &t, b->ndim, b->dims, 0);
        if (st != WANWU_OK) goto done;
        memcpy(t.f, b->data, (size_t)t.count * sizeof *t.f);
        st = add_const(&im, b->name, &t);
        if (st != WANWU_OK) goto done;
    }
    /* the one runtime input */
    const Onnx__ValueInfoProto *input = NULL;
    for (size_t k = 0; k < gp->n_input; k++) {
        const char *name = gp->input[k]->name ? gp->input[k]->name : "";
        if (initializer_name(gp, name) || find(&im, name)) continue;
        if (input) {
            st = ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                              "the model has more than one runtime input ('%s', '%s'); wanwu "
                              "feeds one image tensor",
                              input->name, name);
            goto done;
        }
        input = gp->input[k];
    }
    if (!input) {
        st = ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                          "the model has no runtime input (every input is a constant)");
        goto done;
    }
    st = declared_input(&im, input, input_size, &info->input_ndim, info->input_dims);
    if (st != WANWU_OK) goto done;
    int64_t c, h, w;
    shape_chw(info->input_ndim, info->input_dims, &c, &h, &w);
    int v = ww_graph_add_input(g, (int)c, (int)h, (int)w, err);
    if (v < 0) {
        st = err ? err->status : WANWU_ERR_FORMAT;
        goto done;
    }
    st = add_map(&im, input->name ? input->name : "", v, info->input_ndim, info->input_dims);
    if (st != WANWU_OK) goto done;

    for (size_t k = 0; k < gp->n_node; k++) {
        if (err) err->message[0] = '\0';
        st = import_node(&im, gp->node[k]);
        if (st != WANWU_OK) goto done;
    }
    if (gp->n_output < 1 || !gp->output[0]->name) {
        st = ww_error_set(err, WANWU_ERR_FORMAT, "the model has no output");
        goto done;
    }
    const entry *out = find(&im, gp->output[0]->name);
    if (!out || out->kind != K_MAP || ww_graph_value_is_constant(g, out->value)) {
        st = ww_error_set(err, out ? WANWU_ERR_UNSUPPORTED : WANWU_ERR_FORMAT,
                          "output '%s' is %s", gp->output[0]->name,
                          out ? "a constant (it does not depend on the input)"
                              : "not produced by any node");
        goto done;
    }
    g->output = out->value;
    info->output_ndim = out->ndim;
    memcpy(info->output_dims, out->dims, sizeof info->output_dims);
    const ww_node *last = &g->nodes[g->values[out->value].producer];
    info->ends_in_softmax = last->op == WW_OP_SOFTMAX && last->softmax_len == 0;
    st = WANWU_OK;
done:
    for (int k = 0; k < im.count; k++)
        if (im.entries[k].kind == K_CONST) tensor_free(&im.entries[k].t);
    free(im.entries);
    onnx__model_proto__free_unpacked(model, NULL);
    return st;
}

wanwu_status ww_onnx_read_tensor_file(const char *path, float **data, int *ndim, int64_t dims[8],
                                      char *name, size_t name_size, wanwu_error *err)
{
    *data = NULL;
    uint8_t *buf = NULL;
    size_t size = 0;
    wanwu_status st = read_whole_file(path, &buf, &size, err);
    if (st != WANWU_OK) return ww_error_prefix(err, "%s: ", path);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, buf);
    free(buf);
    if (!tp) return ww_error_set(err, WANWU_ERR_FORMAT, "%s: not a TensorProto", path);
    importer im = {0};
    im.err = err;
    im.dir = ".";
    im.node_name = im.op_type = "";
    tensor t;
    st = tensor_from_proto(&im, tp, &t, err);
    if (st == WANWU_OK) {
        *ndim = t.ndim;
        memcpy(dims, t.dims, sizeof t.dims);
        if (name) snprintf(name, name_size, "%s", tp->name ? tp->name : "");
        if (t.is_int) {
            *data = malloc((size_t)(t.count ? t.count : 1) * sizeof **data);
            if (*data)
                for (int64_t k = 0; k < t.count; k++) (*data)[k] = (float)t.i[k];
            else
                st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory");
            tensor_free(&t);
        } else {
            *data = t.f;
            t.f = NULL;
        }
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

int ww_onnx_op_supported(const char *op_type)
{
    return op_supported(op_type);
}

/* The parsed file (with a graph) for the listing functions below, or NULL
 * with err set. */
static Onnx__ModelProto *read_model_for_listing(const char *path, wanwu_error *err)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_whole_file(path, &data, &size, err) != WANWU_OK) return NULL;
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, size, data);
    free(data);
    if (!model || !model->graph) {
        if (model) onnx__model_proto__free_unpacked(model, NULL);
        ww_error_set(err, WANWU_ERR_FORMAT, "%s: not a valid ONNX file", path);
        return NULL;
    }
    return model;
}

int ww_onnx_list_ops(const char *path, char (*ops)[32], int max, char (*inputs)[64],
                     int max_inputs, int *num_inputs, wanwu_error *err)
{
    *num_inputs = 0;
    Onnx__ModelProto *model = read_model_for_listing(path, err);
    if (!model) return -1;
    const Onnx__GraphProto *g = model->graph;
    int n = (int)g->n_node;
    for (int k = 0; k < n && k < max; k++)
        snprintf(ops[k], 32, "%s", g->node[k]->op_type ? g->node[k]->op_type : "");
    for (size_t k = 0; k < g->n_input && *num_inputs < max_inputs; k++) {
        const char *name = g->input[k]->name ? g->input[k]->name : "";
        if (initializer_name(g, name)) continue;
        snprintf(inputs[(*num_inputs)++], 64, "%s", name);
    }
    onnx__model_proto__free_unpacked(model, NULL);
    return n;
}

static int declared_type(const Onnx__ValueInfoProto *vi)
{
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return -1;
    return vi->type->tensor_type->has_elem_type ? vi->type->tensor_type->elem_type : 0;
}

int ww_onnx_io_types(const char *path, int *input_types, int max_inputs, int *num_inputs,
                     int *output_types, int max_outputs, int *num_outputs, wanwu_error *err)
{
    *num_inputs = *num_outputs = 0;
    Onnx__ModelProto *model = read_model_for_listing(path, err);
    if (!model) return -1;
    const Onnx__GraphProto *g = model->graph;
    for (size_t k = 0; k < g->n_input && *num_inputs < max_inputs; k++)
        if (!initializer_name(g, g->input[k]->name ? g->input[k]->name : ""))
            input_types[(*num_inputs)++] = declared_type(g->input[k]);
    for (size_t k = 0; k < g->n_output && *num_outputs < max_outputs; k++)
        output_types[(*num_outputs)++] = declared_type(g->output[k]);
    onnx__model_proto__free_unpacked(model, NULL);
    return 0;
}
