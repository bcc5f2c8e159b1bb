/* Loading: weight file -> state dict -> architecture graph -> passes ->
 * prepared kernels and a memory plan. */
#include "model/model.h"

#include "core/arena.h"
#include "core/error.h"
#include "format/onnx.h"
#include "model/model_dir.h"
#include "model/weight_cache.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Byte ranges of the tensors the graph borrowed from the weight file's
 * buffer, sorted by address. */
typedef struct borrowed_tensor {
    const char *begin, *end;
} borrowed_tensor;

typedef struct borrowed_tensors {
    borrowed_tensor *items;
    size_t count;
} borrowed_tensors;

static int64_t count_params(const ww_state_dict *sd)
{
    /* learned parameters only, as torch's sum(p.numel() for p in parameters()):
     * BatchNorm running statistics are buffers, not parameters */
    int64_t total = 0;
    for (size_t i = 0; i < sd->count; i++) {
        const char *name = sd->tensors[i].name;
        size_t len = strlen(name);
        static const char *const buffers[] = {".running_mean", ".running_var",
                                              ".num_batches_tracked"};
        int is_buffer = 0;
        for (int b = 0; b < 3; b++) {
            size_t bl = strlen(buffers[b]);
            if (len >= bl && strcmp(name + len - bl, buffers[b]) == 0) is_buffer = 1;
        }
        if (!is_buffer) total += (int64_t)sd->tensors[i].numel;
    }
    return total;
}

void wanwu_model_free(wanwu_model *model)
{
    if (!model) return;
    if (model->convs)
        for (int i = 0; i < model->graph.num_nodes; i++)
            ww_conv2d_free(model->convs[i]);
    free(model->convs);
    ww_arena_free(model->weight_arena); /* after the convs that point into it */
    ww_memory_plan_free(&model->plan);
    ww_graph_free(&model->graph);
    /* after the graph, which borrows from it */
    ww_file_buffer_release(model->weights_buffer, model->weights_buffer_map_len,
                           model->weights_buffer_map_len != 0);
    free(model);
}

static int compare_tensor_begin(const void *a, const void *b)
{
    const char *x = ((const borrowed_tensor *)a)->begin, *y = ((const borrowed_tensor *)b)->begin;
    return x < y ? -1 : x > y;
}

/* The float32 tensors of `sd` that live in its file buffer, sorted. */
static wanwu_status collect_borrowed(const ww_state_dict *sd, borrowed_tensors *out,
                                     wanwu_error *err)
{
    out->items = NULL;
    out->count = 0;
    out->items = malloc((sd->count ? sd->count : 1) * sizeof *out->items);
    if (!out->items) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for the model");
    for (size_t i = 0; i < sd->count; i++) {
        const ww_named_tensor *t = &sd->tensors[i];
        if (!t->borrowed || !t->data || t->numel == 0) continue;
        const char *begin = (const char *)t->data;
        out->items[out->count++] = (borrowed_tensor){begin, begin + t->numel * sizeof(float)};
    }
    qsort(out->items, out->count, sizeof *out->items, compare_tensor_begin);
    return WANWU_OK;
}

/* Whether a live node still points into [begin, end). */
static int graph_references(const ww_graph *g, const char *begin, const char *end)
{
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        const float *arrays[] = {n->weight,  n->bias,    n->bn_gamma,
                                 n->bn_beta, n->bn_mean, n->bn_var};
        for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
            const char *p = (const char *)arrays[a];
            if (p && p >= begin && p < end) return 1;
        }
    }
    return 0;
}

/* The borrowed tensor of bt holding p, or NULL. */
static const borrowed_tensor *tensor_at(const borrowed_tensors *bt, const char *p)
{
    size_t lo = 0, hi = bt->count; /* last tensor beginning at or before p */
    if (hi == 0) return NULL;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (bt->items[mid].begin <= p)
            lo = mid;
        else
            hi = mid;
    }
    const borrowed_tensor *t = &bt->items[lo];
    return p >= t->begin && p < t->end ? t : NULL;
}

/* Huge pages of the weight buffer: it is 2 MiB aligned (core/prefault.c)
 * and backed by them, so it is released in whole huge pages; a partial
 * release would split one into 4 KiB pages, each costing a fault when a
 * neighbour is read (~10 us on VMs), and the whole ones freed are the
 * warm memory the next packed weights are allocated from. */
#define BORROWED_RELEASE_UNIT ((uintptr_t)2 << 20)

/* Whether any live node points into a tensor overlapping [begin, end). */
static int range_in_use(const wanwu_model *m, const borrowed_tensors *bt, const char *begin,
                        const char *end)
{
    for (size_t j = 0; j < bt->count; j++) {
        const borrowed_tensor *t = &bt->items[j];
        if (t->end <= begin) continue;
        if (t->begin >= end) break; /* sorted by begin */
        if (graph_references(&m->graph, t->begin, t->end)) return 1;
    }
    return 0;
}

/* After a kernel packed its own copy of the weight at `p`: gives the huge
 * pages of the file's buffer around that tensor back to the system when
 * no node uses any tensor in them any more (bytes outside tensors, such
 * as the zip and pickle framing, are not read after the build). This
 * keeps the file's copy and the packed copies from being resident
 * together. */
static void release_borrowed(const wanwu_model *m, borrowed_tensors *bt, const float *p)
{
    const char *c = (const char *)p;
    if (!bt || !c || bt->count == 0) return;
    const char *buf_begin = m->graph.borrow_begin, *buf_end = m->graph.borrow_end;
    if (!buf_begin || c < buf_begin || c >= buf_end) return;
    const borrowed_tensor *t = tensor_at(bt, c);
    if (!t) return;
    uintptr_t unit = BORROWED_RELEASE_UNIT;
    uintptr_t base = (uintptr_t)buf_begin;
    uintptr_t first = base + (((uintptr_t)t->begin - base) & ~(unit - 1));
    for (uintptr_t h = first; h < (uintptr_t)t->end; h += unit) {
        const char *hb = (const char *)h,
                   *he = buf_end - hb > (ptrdiff_t)unit ? hb + unit : buf_end;
        if (range_in_use(m, bt, hb, he)) continue;
        long page_size = sysconf(_SC_PAGESIZE);
        uintptr_t page = page_size > 0 ? (uintptr_t)page_size : 4096;
        uintptr_t rb = ((uintptr_t)hb + page - 1) & ~(page - 1), re = (uintptr_t)he & ~(page - 1);
        /* The buffer is ours (malloc'd) and these bytes are never read
         * again; a failure just leaves them resident. Releasing twice is
         * harmless. */
        if (re > rb) (void)madvise((void *)rb, re - rb, MADV_DONTNEED);
    }
}

/* The arrays of live nodes that still point into the weight file's
 * buffer (the classifier's weights, a BatchNorm kept as such, ...) each
 * get a copy in the weight arena, and the buffer is released: the model
 * then never reads the file after loading. From the weight cache the
 * copies come prefilled, so a file replaced or truncated under a running
 * model can neither change its answers nor fault it (the buffer is then a
 * mapping of the file). Arrays the graph cannot size (not inside one
 * tensor), or copies that would not all land in the arena's current
 * block (the graph knows one arena range), keep the buffer. */
static wanwu_status own_borrowed_arrays(wanwu_model *m, const borrowed_tensors *bt,
                                        wanwu_error *err)
{
    ww_graph *g = &m->graph;
    const char *buf_begin = g->borrow_begin, *buf_end = g->borrow_end;
    if (!bt || !m->weights_buffer) return WANWU_OK;
    size_t need = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < g->num_nodes; i++) {
            ww_node *n = &g->nodes[i];
            if (n->removed) continue;
            float **arrays[] = {&n->weight,  &n->bias,    &n->bn_gamma,
                                &n->bn_beta, &n->bn_mean, &n->bn_var};
            for (size_t a = 0; a < sizeof arrays / sizeof arrays[0]; a++) {
                const char *p = (const char *)*arrays[a];
                if (!p || p < buf_begin || p >= buf_end) continue;
                const borrowed_tensor *t = tensor_at(bt, p);
                if (!t) return WANWU_OK; /* cannot size it: the buffer stays */
                size_t bytes = (size_t)(t->end - p);
                if (pass == 0) {
                    need += (bytes + 63) / 64 * 64;
                    continue;
                }
                float *copy = ww_arena_alloc(m->weight_arena, bytes);
                if (!copy)
                    return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for weights");
                if (!ww_arena_prefilled(m->weight_arena)) memcpy(copy, p, bytes);
                *arrays[a] = copy;
            }
        }
        if (pass == 0) {
            size_t span_bytes, room;
            const char *span = ww_arena_span(m->weight_arena, &span_bytes, &room);
            if (!span || room < need) return WANWU_OK;
            g->arena_begin = span;
            g->arena_end = span + span_bytes;
        }
    }
    ww_file_buffer_release(m->weights_buffer, m->weights_buffer_map_len,
                           m->weights_buffer_map_len != 0);
    m->weights_buffer = NULL;
    m->weights_buffer_map_len = 0;
    return WANWU_OK;
}

/* Floats of a conv node's weight tensor. */
static size_t conv_weight_count(const ww_node *n)
{
    const ww_conv2d_shape *s = &n->conv;
    return (size_t)s->out_c * (s->in_c / (s->groups ? s->groups : 1)) * s->kernel_h * s->kernel_w;
}

/* The classifier's weights are read once per run, after the other layers
 * evicted them since the last, from memory at its bandwidth (1280 -> 1000:
 * 5 MB, ~0.18 ms at 1 thread). The last 1x1 conv before it fetches them
 * into cache while it computes (ww_conv2d_set_side_fetch): ~0.08 ms, from
 * L3; EfficientNet-B0 and MobileNetV2 0.985-0.997x the time. Not below
 * this size. (The squeeze-and-excitation fc convs' weights, 2 x 221 KB in
 * EfficientNet-B0's late blocks, fetched the same way by the expansion
 * conv before them: fc convs 0.117 -> ~0.07 ms in all, the network 0.999x
 * at 1 thread and 1.005x at 2, not kept.) */
#define SIDE_FETCH_MIN_BYTES (1024 * 1024)

/* Most nodes walked back from the classifier to that conv (pooling,
 * flatten, dropout between them). */
#define SIDE_FETCH_MAX_HOPS 4

/* Gives `bytes` at `at`, read by node `reader`, to the conv before it as
 * its side fetch (a 1x1 conv takes it), walking back through single-input
 * nodes. */
static void side_fetch_before(wanwu_model *m, int reader, const void *at, size_t bytes)
{
    const ww_graph *g = &m->graph;
    int p = reader;
    for (int hop = 0; hop < SIDE_FETCH_MAX_HOPS; hop++) {
        if (g->nodes[p].num_inputs < 1) return;
        p = g->values[g->nodes[p].inputs[0]].producer;
        if (p < 0 || p >= g->num_nodes || g->nodes[p].removed) return;
        if (g->nodes[p].op == WW_OP_CONV2D) {
            if (m->convs[p]) ww_conv2d_set_side_fetch(m->convs[p], at, bytes);
            return;
        }
        if (g->nodes[p].num_inputs != 1) return;
    }
}

/* Side fetches for the linear layers' weights. */
static void set_side_fetches(wanwu_model *m)
{
    const ww_graph *g = &m->graph;
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        size_t bytes = (size_t)n->in_features * (size_t)n->out_features * sizeof(float);
        if (!n->removed && n->op == WW_OP_LINEAR && n->weight && bytes >= SIDE_FETCH_MIN_BYTES)
            side_fetch_before(m, i, n->weight, bytes);
    }
}

static wanwu_status prepare_kernels(wanwu_model *m, borrowed_tensors *bt, wanwu_error *err)
{
    ww_graph *g = &m->graph;
    m->convs = calloc((size_t)(g->num_nodes ? g->num_nodes : 1), sizeof *m->convs);
    if (!m->weight_arena) m->weight_arena = ww_arena_create(); /* else a weight cache replay */
    if (!m->convs || !m->weight_arena)
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for kernels");
    /* Largest weights first: the arena's first allocations are fresh
     * memory (~2 ms/MB to fault on VMs, core/prefault.h) until the file's
     * pages start being released, and in graph order the early convs
     * (small weights, F(4x4) Winograd growing them 4x) took ~20 MB of it
     * before the first release. The biggest conv first needs only its own
     * size fresh; every later one reuses the pages freed before it. */
    int *order = malloc((size_t)(g->num_nodes ? g->num_nodes : 1) * sizeof *order);
    if (!order) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for kernels");
    int convs = 0;
    for (int i = 0; i < g->num_nodes; i++)
        if (!g->nodes[i].removed && g->nodes[i].op == WW_OP_CONV2D) order[convs++] = i;
    for (int a = 1; a < convs; a++) { /* insertion sort by weight count, descending, stable */
        int v = order[a], b = a;
        size_t wv = conv_weight_count(&g->nodes[v]);
        for (; b > 0 && conv_weight_count(&g->nodes[order[b - 1]]) < wv; b--)
            order[b] = order[b - 1];
        order[b] = v;
    }
    for (int o = 0; o < convs; o++) {
        int i = order[o];
        ww_node *n = &g->nodes[i];
        wanwu_status st = ww_conv2d_create_pooled(&n->conv, n->weight, n->bias, n->act, WW_ISA_AUTO,
                                                  m->weight_arena, n->pooled ? &n->pool : NULL,
                                                  &m->convs[i], err);
        if (st != WANWU_OK) {
            free(order);
            return ww_error_prefix(err, "preparing conv '%s': ", n->name);
        }
        /* the kernel keeps its own packed copy */
        float *weight = n->weight;
        ww_graph_free_floats(g, n->weight);
        ww_graph_free_floats(g, n->bias);
        n->weight = n->bias = NULL;
        release_borrowed(m, bt, weight);
    }
    free(order);
    /* A 1x1 conv next to a depthwise conv may split its input channels
     * (after it) or output channels (before it) between threads as that
     * one splits its channels (ww_conv2d_set_input_producer,
     * ww_conv2d_set_output_consumer). */
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed || n->op != WW_OP_CONV2D || !m->convs[i] || n->num_inputs < 1) continue;
        int p = g->values[n->inputs[0]].producer;
        if (p < 0 || p >= g->num_nodes || p == i || g->nodes[p].removed ||
            g->nodes[p].op != WW_OP_CONV2D || !m->convs[p])
            continue;
        const ww_conv2d_shape *ps = ww_conv2d_get_shape(m->convs[p]);
        const ww_conv2d_shape *cs = ww_conv2d_get_shape(m->convs[i]);
        if (ps->groups == ps->in_c && ps->groups == ps->out_c)
            ww_conv2d_set_input_producer(m->convs[i], m->convs[p]);
        if (cs->groups == cs->in_c && cs->groups == cs->out_c)
            ww_conv2d_set_output_consumer(m->convs[p], m->convs[i]);
    }
    wanwu_status st = own_borrowed_arrays(m, bt, err);
    if (st != WANWU_OK) return st;
    set_side_fetches(m);
    if (ww_arena_prefilled(m->weight_arena) && !ww_arena_replay_complete(m->weight_arena))
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "the weight cache entry does not match this model's kernels");
    return WANWU_OK;
}

static wanwu_status model_finish(wanwu_model *m, borrowed_tensors *bt, wanwu_error *err)
{
    ww_graph_optimize(&m->graph);
    wanwu_status st = prepare_kernels(m, bt, err);
    if (st == WANWU_OK) st = ww_plan_memory(&m->graph, &m->plan, err);
    if (st != WANWU_OK) return st;
    const ww_value *logits = &m->graph.values[m->graph.output];
    m->num_classes = (int)ww_value_size(logits);
    m->input_size = m->graph.values[m->graph.input].h;
    return WANWU_OK;
}

wanwu_status ww_model_finish(wanwu_model *m, wanwu_error *err)
{
    return model_finish(m, NULL, err);
}

wanwu_status ww_preprocess_apply_options(ww_preprocess *p, const wanwu_model_options *options,
                                         wanwu_error *err)
{
    if (!options) return WANWU_OK;
    if (options->resize < 0 || options->resize > 8192 || options->crop < 0 || options->crop > 8192)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "resize %d / crop %d: sizes must be from 1 to 8192", options->resize,
                            options->crop);
    if (options->resize) p->resize = options->resize;
    if (options->crop) p->crop = options->crop;
    if (options->interpolation && *options->interpolation) {
        if (strcmp(options->interpolation, "bilinear") == 0)
            p->interp = WW_INTERP_BILINEAR;
        else if (strcmp(options->interpolation, "bicubic") == 0)
            p->interp = WW_INTERP_BICUBIC;
        else
            return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                                "interpolation '%s': use bilinear or bicubic",
                                options->interpolation);
    }
    if (p->crop > p->resize)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "crop %d is larger than the resize %d (torchvision would pad)", p->crop,
                            p->resize);
    return WANWU_OK;
}

/* With `consume`, the graph borrows the float32 tensors in place from the
 * file buffer of *sd instead of copying them; the model takes the buffer
 * over, *sd is freed after the build, and each weight's pages are released
 * once its kernel has packed it: the file's copy and the packed one are
 * then never both resident in full. */
static wanwu_status model_from_state_dict(const ww_state_dict *sd, ww_state_dict *consume,
                                          const wanwu_model_options *options,
                                          const ww_preprocess *preprocess, ww_arena **replay,
                                          wanwu_model **out, wanwu_error *err)
{
    *out = NULL;
    const char *forced_arch = options ? options->arch : NULL;
    const ww_arch *arch = NULL;
    if (forced_arch && *forced_arch) {
        arch = ww_arch_find(forced_arch);
        if (!arch) {
            const char *const *names = wanwu_supported_archs();
            char list[256] = "";
            for (int i = 0; names[i]; i++) {
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, names[i], sizeof list - strlen(list) - 1);
            }
            return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                                "unknown architecture '%s' (supported: %s)", forced_arch, list);
        }
    } else {
        arch = ww_arch_detect(sd);
        if (!arch)
            return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                                "the tensor names (%zu tensors, first '%s') match no supported "
                                "architecture; pass --arch to force one",
                                sd->count, sd->count ? sd->tensors[0].name : "");
    }
    ww_preprocess pre = ww_preprocess_imagenet_default();
    if (preprocess) {
        pre = *preprocess;
    } else {
        pre.resize = arch->resize;
        pre.interp = arch->interp;
    }
    wanwu_status st = ww_preprocess_apply_options(&pre, options, err);
    if (st != WANWU_OK) return st;

    wanwu_model *m = calloc(1, sizeof *m);
    if (!m) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for the model");
    snprintf(m->arch, sizeof m->arch, "%s", arch->name);
    snprintf(m->format, sizeof m->format, "pth");
    ww_graph_init(&m->graph);
    m->weight_cache = "off";
    if (replay && *replay) { /* the model owns it from here */
        m->weight_arena = *replay;
        *replay = NULL;
        m->graph.conv_weights_prepacked = 1;
    }
    borrowed_tensors bt = {NULL, 0};
    int borrow = consume && consume == sd && consume->file_buffer;
    if (borrow) {
        st = collect_borrowed(sd, &bt, err);
        if (st != WANWU_OK) {
            wanwu_model_free(m);
            return st;
        }
        m->graph.borrow_begin = consume->file_buffer;
        m->graph.borrow_end = (const char *)consume->file_buffer + consume->file_buffer_size;
    }
    wanwu_error local;
    ww_error_clear(&local);
    st = arch->build(sd, &m->graph, pre.crop, &local);
    if (st != WANWU_OK) {
        ww_error_set(err, st, "not a valid %s state dict: %s", arch->name, local.message);
        free(bt.items);
        wanwu_model_free(m); /* the buffer still belongs to *sd */
        return st;
    }
    m->num_params = count_params(sd);
    if (borrow) {
        m->weights_buffer = consume->file_buffer;
        m->weights_buffer_map_len = consume->file_buffer_mapped ? consume->file_buffer_size : 0;
        consume->file_buffer = NULL;
        consume->file_buffer_size = 0;
        consume->file_buffer_mapped = 0;
    }
    if (consume) ww_state_dict_free(consume);
    st = model_finish(m, borrow ? &bt : NULL, err);
    free(bt.items);
    if (st != WANWU_OK) {
        wanwu_model_free(m);
        return st;
    }
    m->preprocess = pre;
    *out = m;
    return WANWU_OK;
}

wanwu_status ww_model_from_state_dict_opts(const ww_state_dict *sd,
                                           const wanwu_model_options *options,
                                           const ww_preprocess *preprocess, wanwu_model **out,
                                           wanwu_error *err)
{
    return model_from_state_dict(sd, NULL, options, preprocess, NULL, out, err);
}

wanwu_status ww_model_from_state_dict(const ww_state_dict *sd, const char *forced_arch,
                                      wanwu_model **out, wanwu_error *err)
{
    wanwu_model_options options = {0};
    options.arch = forced_arch;
    return ww_model_from_state_dict_opts(sd, &options, NULL, out, err);
}

/* Reads `<model>.preprocess` next to an ONNX file when it exists: lines
 * "resize N", "crop N", "interpolation bilinear|bicubic", "mean R G B",
 * "std R G B"; '#' starts a comment. */
static wanwu_status read_preprocess_sidecar(const char *path, ww_preprocess *p, wanwu_error *err)
{
    char side[4096];
    int n = snprintf(side, sizeof side, "%s.preprocess", path);
    if (n < 0 || (size_t)n >= sizeof side) return WANWU_OK;
    FILE *f = fopen(side, "r");
    if (!f) return WANWU_OK;
    char line[256];
    int lineno = 0;
    wanwu_status st = WANWU_OK;
    while (st == WANWU_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char key[32], word[32];
        int value;
        float a, b, c;
        if (sscanf(line, " %31s", key) != 1) continue;
        if (strcmp(key, "resize") == 0 && sscanf(line, " %*s %d", &value) == 1 && value > 0 &&
            value <= 8192)
            p->resize = value;
        else if (strcmp(key, "crop") == 0 && sscanf(line, " %*s %d", &value) == 1 && value > 0 &&
                 value <= 8192)
            p->crop = value;
        else if (strcmp(key, "interpolation") == 0 && sscanf(line, " %*s %31s", word) == 1 &&
                 (strcmp(word, "bilinear") == 0 || strcmp(word, "bicubic") == 0))
            p->interp = word[3] == 'i' ? WW_INTERP_BILINEAR : WW_INTERP_BICUBIC;
        else if (strcmp(key, "mean") == 0 && sscanf(line, " %*s %f %f %f", &a, &b, &c) == 3) {
            p->mean[0] = a;
            p->mean[1] = b;
            p->mean[2] = c;
        } else if (strcmp(key, "std") == 0 && sscanf(line, " %*s %f %f %f", &a, &b, &c) == 3 &&
                   a > 0 && b > 0 && c > 0) {
            p->std[0] = a;
            p->std[1] = b;
            p->std[2] = c;
        } else
            st = ww_error_set(err, WANWU_ERR_FORMAT,
                              "%s line %d: expected 'resize N', 'crop N', 'interpolation "
                              "bilinear|bicubic', 'mean R G B' or 'std R G B'",
                              side, lineno);
    }
    fclose(f);
    return st;
}

static wanwu_status model_from_onnx(const char *path, const wanwu_model_options *options,
                                    wanwu_model **out, wanwu_error *err)
{
    ww_preprocess pre = ww_preprocess_imagenet_default();
    wanwu_status st = read_preprocess_sidecar(path, &pre, err);
    if (st == WANWU_OK) st = ww_preprocess_apply_options(&pre, options, err);
    if (st != WANWU_OK) return st;
    wanwu_model *m = calloc(1, sizeof *m);
    if (!m) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for the model");
    ww_graph_init(&m->graph);
    ww_onnx_import_options io = {0};
    io.input_size = pre.crop;
    ww_onnx_info info;
    st = ww_onnx_import_file(path, &io, &m->graph, &info, err);
    if (st == WANWU_OK) st = ww_model_finish(m, err);
    if (st != WANWU_OK) {
        wanwu_model_free(m);
        return st;
    }
    /* name: the file name without directory and extension */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len == 0) len = strlen(base);
    if (len >= sizeof m->arch) len = sizeof m->arch - 1;
    memcpy(m->arch, base, len);
    m->arch[len] = '\0';
    snprintf(m->format, sizeof m->format, "onnx");
    m->num_params = info.num_params;
    m->outputs_probabilities = info.ends_in_softmax;
    const ww_value *in = &m->graph.values[m->graph.input];
    if (in->c == 3 && in->h == in->w && in->h != pre.crop) {
        if (options && options->crop) {
            st = ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                              "--crop %d, but the model's input is fixed at %dx%d", pre.crop, in->h,
                              in->w);
            wanwu_model_free(m);
            return st;
        }
        pre.crop = in->h; /* the declared input size wins over the default crop */
        if (pre.resize < pre.crop) pre.resize = pre.crop;
    }
    m->preprocess = pre;
    *out = m;
    return WANWU_OK;
}

static int file_is_onnx(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t head[4] = {0};
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return ww_onnx_sniff(head, got);
}

/* A .pth file: read and packed, or, with a replay arena from the weight
 * cache (taken over by the model), mapped and not packed. */
static wanwu_status load_pth(const char *path, const wanwu_model_options *options,
                             ww_arena **replay, wanwu_model **out, wanwu_error *err)
{
    ww_state_dict sd;
    wanwu_status st = replay ? ww_pth_map_file(path, &sd, err) : ww_pth_load_file(path, &sd, err);
    if (st != WANWU_OK) return st;
    /* an official file keeps the transform torchvision pairs with it, unless
     * the architecture is forced to something else */
    const ww_official_weights *official = ww_official_weights_find(path);
    ww_preprocess pre = ww_preprocess_imagenet_default();
    int use_official = official && (!options || !options->arch || !*options->arch ||
                                    strcmp(options->arch, official->arch) == 0);
    if (use_official) {
        pre.resize = official->resize;
        pre.interp = official->bicubic ? WW_INTERP_BICUBIC : WW_INTERP_BILINEAR;
    }
    st = model_from_state_dict(&sd, &sd, options, use_official ? &pre : NULL, replay, out, err);
    ww_state_dict_free(&sd); /* no-op when already consumed */
    if (st != WANWU_OK) ww_error_prefix(err, "%s: ", path);
    return st;
}

wanwu_status wanwu_model_load(const char *path, const wanwu_model_options *options,
                              wanwu_model **out, wanwu_error *err)
{
    if (!out) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!path) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "model path is NULL");
    if (file_is_onnx(path)) {
        wanwu_status st = model_from_onnx(path, options, out, err);
        if (st != WANWU_OK) ww_error_prefix(err, "%s: ", path);
        return st;
    }
    /* The weight cache: packed weights from an earlier load, when there
     * is a matching entry (model/weight_cache.h), and written after a load
     * that packed them. */
    const char *cache_dir = ww_weight_cache_dir(options ? options->cache_dir : NULL);
    ww_weight_cache_key *key = cache_dir ? malloc(sizeof *key) : NULL;
    int cached = key && ww_weight_cache_key_init(key, cache_dir, path, (int)ww_isa_best(),
                                                 options ? options->crop : 0,
                                                 options ? options->arch : NULL);
    if (cached) {
        ww_arena *replay = ww_weight_cache_open(key);
        if (replay) {
            /* any failure here (the entry not matching included) is
             * followed by a plain load, whose errors are the ones reported */
            wanwu_error ignored;
            ww_error_clear(&ignored);
            wanwu_status st = load_pth(path, options, &replay, out, &ignored);
            ww_arena_free(replay); /* NULL once the model took it */
            if (st == WANWU_OK) {
                (*out)->weight_cache = "hit";
                free(key);
                return WANWU_OK;
            }
        }
    }
    wanwu_status st = load_pth(path, options, NULL, out, err);
    if (st == WANWU_OK && cached)
        (*out)->weight_cache =
            ww_weight_cache_store(key, (*out)->weight_arena) ? "stored" : "not stored";
    free(key);
    return st;
}

const char *wanwu_model_weight_cache(const wanwu_model *model)
{
    if (!model) return NULL;
    return model->weight_cache ? model->weight_cache : "off";
}

const char *wanwu_model_arch(const wanwu_model *model)
{
    return model ? model->arch : NULL;
}

int wanwu_model_num_classes(const wanwu_model *model)
{
    return model ? model->num_classes : 0;
}

int64_t wanwu_model_num_params(const wanwu_model *model)
{
    return model ? model->num_params : 0;
}

int wanwu_model_input_size(const wanwu_model *model)
{
    return model ? model->input_size : 0;
}
