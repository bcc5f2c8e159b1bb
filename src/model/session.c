/* A session owns everything one inference writes: the activation arena
 * (sized by the model's memory plan), conv scratch, logits and the worker
 * threads. All of it is allocated once in wanwu_session_create. */
#include "core/error.h"
#include "core/prefault.h"
#include "core/threadpool.h"
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wanwu_session {
    const wanwu_model *model;
    ww_threadpool *pool;
    int threads;
    float *arena;
    float *scratch;
    float *logits;
    float *probs;
    /* the model's graph over this session's arena; exec.node_ms (owned):
     * per node, summed over profiled runs, NULL when not profiling */
    ww_graph_exec exec;
    int profiled_runs;
};

static float *alloc_floats(size_t n)
{
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    /* Large buffers on 2 MiB boundaries so that they get huge pages: a
     * first touch of a 4 KiB page costs ~10 us on VMs (core/prefault.h). */
    float *p = ww_alloc_prefaulted(bytes);
    if (p) memset(p, 0, bytes); /* touch every page now, not during the first image */
    return p;
}

void wanwu_session_free(wanwu_session *s)
{
    if (!s) return;
    ww_threadpool_free(s->pool);
    free(s->arena);
    free(s->scratch);
    free(s->logits);
    free(s->probs);
    free(s->exec.node_ms);
    free(s);
}

wanwu_status wanwu_session_create(const wanwu_model *model, const wanwu_session_options *options,
                                  wanwu_session **out, wanwu_error *err)
{
    if (!out) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!model) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "model is NULL");
    int threads = options && options->threads > 1 ? options->threads : 1;
    wanwu_session *s = calloc(1, sizeof *s);
    if (!s) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for the session");
    s->model = model;
    wanwu_status st = ww_threadpool_create(threads, &s->pool, err);
    if (st != WANWU_OK) {
        free(s);
        return st;
    }
    s->threads = ww_threadpool_size(s->pool);
    /* Every conv that gives each thread a work area puts thread t's at the
     * same place, t times the largest area apart: a thread's area was last
     * written by that thread, in any layer. With each conv's own spacing
     * the second thread's area moved from layer to layer, over lines the
     * first had just written (ResNet-18 at 2 threads 0.96-0.99x the time,
     * 0.98x over 80 rounds). */
    size_t area = 0, scratch = 0;
    for (int i = 0; i < model->graph.num_nodes; i++)
        if (model->convs[i]) {
            size_t need = ww_conv2d_area_floats(model->convs[i], s->threads);
            if (need > area) area = need;
        }
    if (s->threads > 1) ww_threadpool_set_area_floats(s->pool, area);
    for (int i = 0; i < model->graph.num_nodes; i++)
        if (model->convs[i]) {
            size_t need = ww_conv2d_scratch_floats_areas(model->convs[i], s->threads,
                                                         ww_threadpool_area_floats(s->pool));
            if (need > scratch) scratch = need;
        }
    s->arena = alloc_floats(model->plan.arena_floats);
    s->scratch = alloc_floats(scratch);
    s->logits = alloc_floats((size_t)model->num_classes);
    s->probs = alloc_floats((size_t)model->num_classes);
    if (!s->arena || !s->scratch || !s->logits || !s->probs) {
        wanwu_session_free(s);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for activations (%zu MB)",
                            model->plan.arena_floats * sizeof(float) >> 20);
    }
    s->exec.graph = &model->graph;
    s->exec.convs = model->convs;
    s->exec.offsets = model->plan.offsets;
    s->exec.arena = s->arena;
    s->exec.scratch = s->scratch;
    s->exec.pool = s->pool;
    *out = s;
    return WANWU_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static float *value_ptr(const ww_graph_exec *s, int value)
{
    if (s->input && value == s->graph->input) return (float *)s->input; /* read only */
    return s->arena + s->offsets[value];
}

void ww_graph_exec_nodes(const ww_graph_exec *s, int first, int end)
{
    const ww_graph *g = s->graph;
    for (int i = first; i < end; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed || n->op == WW_OP_INPUT) continue;
        double t0 = s->node_ms ? now_ms() : 0;
        if (n->op == WW_OP_CONSTANT) {
            /* only left when folding could not absorb it (a constant graph
             * output): a copy per run keeps every input read a plain arena read */
            memcpy(value_ptr(s, n->output), n->weight,
                   ww_value_size(&g->values[n->output]) * sizeof(float));
            continue;
        }
        const ww_value *in = &g->values[n->inputs[0]];
        const float *x = value_ptr(s, n->inputs[0]);
        float *y = value_ptr(s, n->output);
        switch (n->op) {
        case WW_OP_CONV2D: {
            int residual = ww_conv_residual(n), in_scale = ww_conv_in_scale(n);
            if (n->means_value) /* and the global average pool after it */
                ww_conv2d_run_means(s->convs[i], x, residual >= 0 ? value_ptr(s, residual) : NULL,
                                    y, value_ptr(s, n->means_value - 1), s->scratch, s->pool);
            else
                ww_conv2d_run_scaled(s->convs[i], x, in_scale >= 0 ? value_ptr(s, in_scale) : NULL,
                                     residual >= 0 ? value_ptr(s, residual) : NULL, y, s->scratch,
                                     s->pool);
            break;
        }
        case WW_OP_BATCHNORM:
            ww_batchnorm_ref(in->c, in->h * in->w, x, n->bn_gamma, n->bn_beta, n->bn_mean,
                             n->bn_var, n->bn_eps, y);
            break;
        case WW_OP_ACTIVATION: ww_activate_array(ww_value_size(in), x, n->act, y, s->pool); break;
        case WW_OP_ADD:
            ww_add(ww_value_size(in), x, value_ptr(s, n->inputs[1]), n->act, y, s->pool);
            break;
        case WW_OP_MAXPOOL2D: ww_maxpool2d(&n->pool, x, y, s->pool); break;
        case WW_OP_GLOBAL_AVGPOOL:
            if (!n->means_fused) ww_global_avgpool(in->c, in->h * in->w, x, y, s->pool);
            break;
        case WW_OP_FLATTEN:
        case WW_OP_DROPOUT: memcpy(y, x, ww_value_size(in) * sizeof *y); break;
        case WW_OP_LINEAR:
            ww_linear(n->in_features, n->out_features, x, n->weight, n->bias, n->act, y, s->pool);
            break;
        case WW_OP_MUL_CHANNEL:
            ww_mul_channel(in->c, in->h * in->w, x, value_ptr(s, n->inputs[1]), y, s->pool);
            break;
        case WW_OP_CONCAT:
            ww_concat_channels_ref(in->c, g->values[n->inputs[1]].c, in->h * in->w, x,
                                   value_ptr(s, n->inputs[1]), y);
            break;
        case WW_OP_SLICE_CHANNELS:
            ww_slice_channels_ref(n->channel_begin, n->channel_end, in->h * in->w, x, y);
            break;
        case WW_OP_CHANNEL_SHUFFLE:
            ww_channel_shuffle_range_ref(in->c, n->num_inputs > 1 ? g->values[n->inputs[1]].c : 0,
                                         n->groups, n->channel_begin, n->channel_end, in->h * in->w,
                                         x, n->num_inputs > 1 ? value_ptr(s, n->inputs[1]) : NULL,
                                         y);
            break;
        case WW_OP_AVGPOOL2D: ww_avgpool2d_ref(&n->pool, n->count_include_pad, x, y); break;
        case WW_OP_RESHAPE: memcpy(y, x, ww_value_size(in) * sizeof *y); break;
        case WW_OP_SOFTMAX: {
            size_t total = ww_value_size(in);
            size_t len = n->softmax_len > 0 ? (size_t)n->softmax_len : total;
            for (size_t r = 0; r + len <= total; r += len)
                ww_softmax_ref((int)len, x + r, y + r);
            break;
        }
        case WW_OP_AFFINE_CLAMP:
            ww_affine_clamp_ref(ww_value_size(in), x, n->clamp_scale, n->clamp_shift, n->clamp_lo,
                                n->clamp_hi, y);
            break;
        case WW_OP_GATHER:
            ww_gather_ref(ww_value_size(&g->values[n->output]), n->gather_index, x,
                          ww_value_size(in),
                          n->num_inputs > 1 ? value_ptr(s, n->inputs[1]) : n->weight, y);
            break;
        case WW_OP_ELTWISE:
            ww_eltwise(ww_value_size(in), in->h * in->w, x,
                       n->num_inputs > 1 ? value_ptr(s, n->inputs[1]) : n->weight, n->const_count,
                       n->eltwise_op, n->eltwise_swap, y, s->pool);
            break;
        case WW_OP_INPUT:
        case WW_OP_CONSTANT: break;
        }
        if (s->node_ms) s->node_ms[i] += now_ms() - t0;
    }
}

static void run_graph(wanwu_session *s)
{
    ww_graph_exec_nodes(&s->exec, 0, s->model->graph.num_nodes);
    if (s->exec.node_ms) s->profiled_runs++;
}

wanwu_status wanwu_session_profile_enable(wanwu_session *s, int enabled, wanwu_error *err)
{
    if (!s) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "session is NULL");
    free(s->exec.node_ms);
    s->exec.node_ms = NULL;
    s->profiled_runs = 0;
    if (!enabled) return WANWU_OK;
    int nodes = s->model->graph.num_nodes;
    s->exec.node_ms = calloc((size_t)(nodes > 0 ? nodes : 1), sizeof *s->exec.node_ms);
    if (!s->exec.node_ms)
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for profiling");
    return WANWU_OK;
}

/* Nodes a run executes: the ones the executor does not skip. */
static int profiled_node(const ww_node *n)
{
    return !n->removed && n->op != WW_OP_INPUT && n->op != WW_OP_CONSTANT;
}

int wanwu_session_profile(const wanwu_session *s, wanwu_layer_time *out, int max, int *runs)
{
    if (runs) *runs = s ? s->profiled_runs : 0;
    if (!s || !s->exec.node_ms) return 0;
    const ww_graph *g = &s->model->graph;
    int count = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (!profiled_node(n)) continue;
        if (out && count < max) {
            const ww_value *v = &g->values[n->output];
            wanwu_layer_time *t = &out[count];
            t->name = n->name;
            t->op = n->op != WW_OP_CONV2D ? ww_op_name(n->op)
                    : n->pooled           ? "Conv2d+MaxPool2d"
                    : n->in_scale         ? "MulChannel+Conv2d"
                    : n->means_value      ? "Conv2d+Mean"
                                          : ww_op_name(n->op);
            t->out_channels = v->c;
            t->out_height = v->h;
            t->out_width = v->w;
            t->macs = ww_node_macs(n);
            t->ms = s->profiled_runs ? s->exec.node_ms[i] / s->profiled_runs : 0.0;
        }
        count++;
    }
    return count;
}

wanwu_status wanwu_run(wanwu_session *s, const float *input_chw, float *logits, wanwu_error *err)
{
    if (!s || !input_chw || !logits)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "session, input and logits are required");
    const ww_graph *g = &s->model->graph;
    /* The nodes read the caller's input where it is: copying it into the
     * arena cost ~0.02 ms per run (602 KB), 1 % of ShuffleNetV2's. */
    s->exec.input = input_chw;
    run_graph(s);
    memcpy(logits, value_ptr(&s->exec, g->output), (size_t)s->model->num_classes * sizeof(float));
    s->exec.input = NULL;
    return WANWU_OK;
}

/* Writes the k best classes (ties: lower index first) into out. */
static void top_k(const float *probs, int n, int k, wanwu_prediction *out)
{
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int c = 0; c < n; c++) {
            int taken = 0;
            for (int q = 0; q < r && !taken; q++)
                taken = out[q].class_index == c;
            if (!taken && (best < 0 || probs[c] > probs[best])) best = c;
        }
        out[r].class_index = best;
        out[r].prob = probs[best];
        out[r].label = n == 1000 ? wanwu_imagenet_label(best) : NULL;
    }
}

wanwu_status wanwu_classify_memory(wanwu_session *s, const void *data, size_t size,
                                   const wanwu_image_options *image_options, int k,
                                   wanwu_prediction *out, wanwu_timings *timings, wanwu_error *err)
{
    if (!s || !out)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "session and out are required");
    if (!data || size == 0) return ww_error_set(err, WANWU_ERR_FORMAT, "empty image data");
    const wanwu_model *m = s->model;
    if (k < 1) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "top-k must be at least 1");
    if (k > m->num_classes) k = m->num_classes;

    double t0 = now_ms();
    ww_decode_options dopts = {0};
    dopts.apply_exif_orientation = image_options ? image_options->apply_exif_orientation : 0;
    ww_image img = {0};
    wanwu_status st = ww_image_decode(data, size, &dopts, &img, err);
    if (st != WANWU_OK) return st;
    double t1 = now_ms();
    const ww_graph *g = &m->graph;
    const ww_value *input = &g->values[g->input];
    if (input->c != 3 || input->h != m->preprocess.crop || input->w != m->preprocess.crop) {
        ww_image_free(&img);
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                            "the model's input is %dx%dx%d, not an RGB image of %dx%d", input->c,
                            input->h, input->w, m->preprocess.crop, m->preprocess.crop);
    }
    st = ww_preprocess_run(&img, &m->preprocess, value_ptr(&s->exec, g->input), err);
    ww_image_free(&img);
    if (st != WANWU_OK) return st;
    double t2 = now_ms();
    run_graph(s);
    double t3 = now_ms();
    if (m->outputs_probabilities) /* an ONNX classifier that ends in Softmax */
        memcpy(s->probs, value_ptr(&s->exec, g->output), (size_t)m->num_classes * sizeof *s->probs);
    else
        ww_softmax_ref(m->num_classes, value_ptr(&s->exec, g->output), s->probs);
    top_k(s->probs, m->num_classes, k, out);
    if (timings) {
        timings->decode_ms = t1 - t0;
        timings->preprocess_ms = t2 - t1;
        timings->inference_ms = t3 - t2;
    }
    return WANWU_OK;
}

wanwu_status wanwu_classify_file(wanwu_session *s, const char *path,
                                 const wanwu_image_options *image_options, int k,
                                 wanwu_prediction *out, wanwu_timings *timings, wanwu_error *err)
{
    if (!path) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return ww_error_set(err, WANWU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return ww_error_set(err, WANWU_ERR_NO_MEMORY, "%s: out of memory reading", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return ww_error_set(err, WANWU_ERR_IO, "%s: read error", path);
    }
    wanwu_status st = wanwu_classify_memory(s, buf, len, image_options, k, out, timings, err);
    free(buf);
    if (st != WANWU_OK) ww_error_prefix(err, "%s: ", path);
    return st;
}
