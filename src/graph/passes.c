#include "graph/passes.h"

#include "core/error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ww_node *producer_of(ww_graph *g, int value)
{
    ww_node *p = &g->nodes[g->values[value].producer];
    return p->removed ? NULL : p;
}

/* Moves producer `p` into the slot of its only consumer `c`: the merged
 * node runs where `c` ran (so every input of both is ready) and writes
 * c's output. The consumer's own weights are freed; p's slot is removed. */
static void merge_into_consumer(ww_graph *g, ww_node *p, ww_node *c)
{
    int out = c->output;
    ww_node_free_arrays(g, c);
    *c = *p;
    c->output = out;
    g->values[out].producer = (int)(c - g->nodes);
    memset(p, 0, sizeof *p);
    p->removed = 1;
    p->output = -1;
}

/* The conv producing `value` when a fusion into it is possible: no
 * residual yet (one input) and `value` its only use. NULL otherwise. */
static ww_node *sole_use_conv(ww_graph *g, int value)
{
    ww_node *conv = producer_of(g, value);
    if (!conv || conv->op != WW_OP_CONV2D || conv->num_inputs != 1 ||
        ww_graph_use_count(g, conv->output) != 1)
        return NULL;
    return conv;
}

/* ---- constant folding ---------------------------------------------------- */

static int is_constant(ww_graph *g, int value)
{
    const ww_node *p = producer_of(g, value);
    return p && p->op == WW_OP_CONSTANT;
}

/* Turns node n into a CONSTANT node holding `data` (owned), same output. */
static void become_constant(const ww_graph *g, ww_node *n, float *data)
{
    ww_node keep = *n;
    ww_node_free_arrays(g, n);
    memset(n, 0, sizeof *n);
    memcpy(n->name, keep.name, sizeof n->name);
    n->op = WW_OP_CONSTANT;
    n->output = keep.output;
    n->weight = data;
}

/* Evaluates node i, all of whose inputs are constants, with the executor's
 * own code, and makes it a constant. Returns 0 (node untouched) when out of
 * memory: the node then simply runs per image. */
static int fold_node(ww_graph *g, int i)
{
    ww_node *n = &g->nodes[i];
    size_t *offsets = malloc((size_t)g->num_values * sizeof *offsets);
    ww_conv2d **convs = calloc((size_t)g->num_nodes, sizeof *convs);
    size_t out_n = ww_value_size(&g->values[n->output]), total = out_n, scratch_n = 0;
    float *arena = NULL, *scratch = NULL, *data = malloc(out_n * sizeof *data);
    int ok = offsets && convs && data;
    if (ok && n->op == WW_OP_CONV2D) {
        wanwu_error err;
        ok = ww_conv2d_create(&n->conv, n->weight, n->bias, n->act, &convs[i], &err) == WANWU_OK;
        if (ok) scratch_n = ww_conv2d_scratch_floats(convs[i], 1);
    }
    if (ok) {
        for (int v = 0; v < g->num_values; v++)
            offsets[v] = SIZE_MAX;
        for (int k = 0; k < n->num_inputs; k++) {
            offsets[n->inputs[k]] = total; /* x + x reads one copy twice: harmless */
            total += ww_value_size(&g->values[n->inputs[k]]);
        }
        offsets[n->output] = 0;
        arena = malloc(total * sizeof *arena);
        scratch = malloc((scratch_n ? scratch_n : 1) * sizeof *scratch);
        ok = arena && scratch;
    }
    if (ok) {
        for (int k = 0; k < n->num_inputs; k++) {
            const ww_node *c = producer_of(g, n->inputs[k]);
            memcpy(arena + offsets[n->inputs[k]], c->weight,
                   ww_value_size(&g->values[n->inputs[k]]) * sizeof *arena);
        }
        ww_graph_exec e = {
            .graph = g, .convs = convs, .offsets = offsets, .arena = arena, .scratch = scratch};
        ww_graph_exec_nodes(&e, i, i + 1);
        memcpy(data, arena, out_n * sizeof *data);
        become_constant(g, n, data);
        data = NULL;
    }
    if (convs) ww_conv2d_free(convs[i]);
    free(convs);
    free(offsets);
    free(arena);
    free(scratch);
    free(data);
    return ok;
}

/* The fewest values an element-wise operand needs: 1 when all are equal,
 * one per channel when each channel is uniform, else all (compared bit for
 * bit: -0 and 0 differ as divisors). */
static size_t compact_operand(const float *v, int c, size_t hw)
{
    size_t n = (size_t)c * hw, per_channel = 1, all = 1;
    for (size_t k = 1; k < n && (all || per_channel); k++) {
        if (memcmp(&v[k], &v[0], sizeof *v) != 0) all = 0;
        if (k % hw && memcmp(&v[k], &v[k - k % hw], sizeof *v) != 0) per_channel = 0;
    }
    return all ? 1 : per_channel ? (size_t)c : n;
}

/* Rewrites node n, which reads constant value `cv` and a computed one, so
 * that the constant is part of the node (ELTWISE's and GATHER's constant
 * operand) and nothing reads the CONSTANT node at run time. Returns 0 when
 * n has no such form or memory runs out (n is then left as it was). */
static int absorb_constant(ww_graph *g, ww_node *n, int cv)
{
    const ww_value *vc = &g->values[cv];
    const float *cdata = producer_of(g, cv)->weight;
    size_t cn = ww_value_size(vc), hw = (size_t)vc->h * (size_t)vc->w;
    int k = n->inputs[0] == cv ? 0 : 1, other = n->inputs[1 - k];
    if (n->num_inputs != 2 || other == cv) return 0;
    switch (n->op) {
    case WW_OP_ADD:
    case WW_OP_ELTWISE: {
        if (n->op == WW_OP_ADD && n->act != WW_ACT_NONE) return 0;
        size_t count = compact_operand(cdata, vc->c, hw);
        float *b = malloc(count * sizeof *b);
        if (!b) return 0;
        for (size_t j = 0; j < count; j++)
            b[j] = cdata[count == (size_t)vc->c ? j * hw : j];
        if (n->op == WW_OP_ADD) n->eltwise_op = WW_ELT_ADD;
        n->op = WW_OP_ELTWISE;
        n->eltwise_swap ^= k == 0; /* the constant was a, now it is b */
        n->inputs[0] = other;
        n->num_inputs = 1;
        n->const_count = count;
        ww_graph_free_floats(g, n->weight);
        n->weight = b;
        return 1;
    }
    case WW_OP_MUL_CHANNEL: {
        if (k != 1) return 0; /* a per-channel scale of a constant map: no constant form */
        float *b = malloc(cn * sizeof *b);
        if (!b) return 0;
        memcpy(b, cdata, cn * sizeof *b);
        n->op = WW_OP_ELTWISE;
        n->eltwise_op = WW_ELT_MUL;
        n->eltwise_swap = 0;
        n->num_inputs = 1;
        n->const_count = cn;
        n->weight = b;
        return 1;
    }
    case WW_OP_CONCAT:
    case WW_OP_GATHER: {
        /* the computed source goes first in the index space, the constant after it */
        const ww_value *out = &g->values[n->output];
        size_t count = ww_value_size(out), size_a = ww_value_size(&g->values[n->inputs[0]]);
        size_t size_other = ww_value_size(&g->values[other]);
        int32_t *index = malloc(count * sizeof *index);
        float *b = malloc(cn * sizeof *b);
        if (!index || !b) {
            free(index);
            free(b);
            return 0;
        }
        for (size_t j = 0; j < count; j++) {
            size_t src = n->op == WW_OP_GATHER ? (size_t)n->gather_index[j] : j;
            /* source position in (inputs[0] then inputs[1]) order */
            int from_a = src < size_a;
            size_t local = from_a ? src : src - size_a;
            int from_const = from_a == (k == 0);
            index[j] = (int32_t)(from_const ? size_other + local : local);
        }
        memcpy(b, cdata, cn * sizeof *b);
        free(n->gather_index);
        ww_graph_free_floats(g, n->weight);
        n->op = WW_OP_GATHER;
        n->gather_index = index;
        n->weight = b;
        n->inputs[0] = other;
        n->num_inputs = 1;
        return 1;
    }
    default: return 0;
    }
}

/* x + b or x - b with a constant b of 1 or C values, x the only use of a
 * conv or linear layer without epilogue: b becomes part of its bias. */
static int fold_constant_bias(ww_graph *g, ww_node *n)
{
    if (n->op != WW_OP_ELTWISE || n->num_inputs != 1 ||
        !(n->eltwise_op == WW_ELT_ADD || (n->eltwise_op == WW_ELT_SUB && !n->eltwise_swap)))
        return 0;
    ww_node *p = producer_of(g, n->inputs[0]);
    int channels = g->values[n->output].c;
    if (!p || (p->op != WW_OP_CONV2D && p->op != WW_OP_LINEAR) || p->num_inputs != 1 ||
        p->act != WW_ACT_NONE || ww_graph_use_count(g, p->output) != 1 ||
        (n->const_count != 1 && n->const_count != (size_t)channels))
        return 0;
    float *bias = p->bias;
    if (!bias) {
        bias = calloc((size_t)channels, sizeof *bias);
        if (!bias) return 0; /* left as an add: still correct */
        p->bias = bias;
    }
    float sign = n->eltwise_op == WW_ELT_SUB ? -1.0f : 1.0f;
    for (int c = 0; c < channels; c++)
        bias[c] += sign * n->weight[n->const_count == 1 ? 0 : c];
    merge_into_consumer(g, p, n);
    return 1;
}

/* Marks in `konst` (per value) the values computed from constants only,
 * among the live nodes before and at `last`. */
static void mark_constant_values(const ww_graph *g, int last, char *konst)
{
    for (int i = 0; i <= last; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed || n->op == WW_OP_INPUT) continue;
        int all = n->op == WW_OP_CONSTANT || n->num_inputs > 0;
        for (int k = 0; k < n->num_inputs; k++)
            all &= konst[n->inputs[k]];
        konst[n->output] = (char)all;
    }
}

int ww_graph_value_is_constant(const ww_graph *g, int value)
{
    if (value < 0 || value >= g->num_values) return 0;
    char *konst = calloc((size_t)g->num_values, 1);
    if (!konst) return 0;
    mark_constant_values(g, g->values[value].producer, konst);
    int result = konst[value];
    free(konst);
    return result;
}

int ww_graph_fold_value(ww_graph *g, int value)
{
    if (value < 0 || value >= g->num_values) return 0;
    int last = g->values[value].producer;
    char *konst = calloc((size_t)g->num_values, 1), *need = calloc((size_t)last + 1, 1);
    int ok = konst && need;
    if (ok) {
        mark_constant_values(g, last, konst);
        ok = konst[value];
    }
    if (ok) {
        need[last] = 1;
        for (int i = last; i >= 0; i--) {
            const ww_node *n = &g->nodes[i];
            if (!need[i]) continue;
            for (int k = 0; k < n->num_inputs; k++)
                need[g->values[n->inputs[k]].producer] = 1;
        }
        for (int i = 0; i <= last && ok; i++)
            if (need[i] && g->nodes[i].op != WW_OP_CONSTANT) ok = fold_node(g, i);
    }
    free(konst);
    free(need);
    return ok;
}

int ww_pass_fold_constants(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed || n->op == WW_OP_INPUT || n->op == WW_OP_CONSTANT) continue;
        int all = n->num_inputs > 0, any = 0;
        for (int k = 0; k < n->num_inputs; k++) {
            int c = is_constant(g, n->inputs[k]);
            all &= c;
            any |= c;
        }
        if (all)
            rewrites += fold_node(g, i);
        else if (any)
            rewrites +=
                absorb_constant(g, n, is_constant(g, n->inputs[0]) ? n->inputs[0] : n->inputs[1]);
        rewrites += fold_constant_bias(g, n);
    }
    rewrites += ww_pass_remove_dead_nodes(g);
    /* constants folded further or absorbed: their copies are not needed */
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed && n->op == WW_OP_CONSTANT) {
            ww_graph_free_floats(g, n->weight);
            n->weight = NULL;
        }
    }
    return rewrites;
}

int ww_pass_remove_identities(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        const ww_value *in = n->num_inputs ? &g->values[n->inputs[0]] : NULL;
        int identity =
            n->op == WW_OP_DROPOUT || (n->op == WW_OP_FLATTEN && in && in->h == 1 && in->w == 1);
        if (!identity) continue;
        n->removed = 1;
        ww_graph_replace_uses(g, n->output, n->inputs[0]);
        rewrites++;
    }
    return rewrites;
}

int ww_pass_fold_batchnorm(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *bn = &g->nodes[i];
        if (bn->removed || bn->op != WW_OP_BATCHNORM) continue;
        ww_node *conv = sole_use_conv(g, bn->inputs[0]);
        if (!conv || conv->act != WW_ACT_NONE) continue;
        const ww_conv2d_shape *s = &conv->conv;
        float *bias = conv->bias;
        if (!bias) {
            bias = calloc((size_t)s->out_c, sizeof *bias);
            if (!bias) continue; /* leave unfused: still correct */
            conv->bias = bias;
        }
        size_t per_out = (size_t)(s->in_c / s->groups) * (size_t)s->kernel_h * (size_t)s->kernel_w;
        for (int o = 0; o < s->out_c; o++) {
            /* double precision so folding adds no error beyond the final rounding */
            double scale = (double)bn->bn_gamma[o] / sqrt((double)bn->bn_var[o] + bn->bn_eps);
            if (!g->conv_weights_prepacked)
                ww_scale_f64(per_out, conv->weight + (size_t)o * per_out, scale);
            bias[o] = (float)(((double)bias[o] - bn->bn_mean[o]) * scale + bn->bn_beta[o]);
        }
        merge_into_consumer(g, conv, bn);
        rewrites++;
    }
    return rewrites;
}

int ww_pass_fuse_residual_add(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *add = &g->nodes[i];
        if (add->removed || add->op != WW_OP_ADD || add->act != WW_ACT_NONE) continue;
        for (int k = 0; k < 2; k++) {
            ww_node *conv = sole_use_conv(g, add->inputs[k]);
            if (!conv || conv->act != WW_ACT_NONE) continue;
            int residual = add->inputs[1 - k];
            if (residual == conv->output) continue; /* x + x */
            conv->inputs[1] = residual;
            conv->num_inputs = 2;
            merge_into_consumer(g, conv, add);
            rewrites++;
            break;
        }
    }
    return rewrites;
}

int ww_pass_fuse_activation(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *act = &g->nodes[i];
        if (act->removed || act->op != WW_OP_ACTIVATION) continue;
        ww_node *p = producer_of(g, act->inputs[0]);
        if (!p || (p->op != WW_OP_CONV2D && p->op != WW_OP_ADD && p->op != WW_OP_LINEAR) ||
            p->act != WW_ACT_NONE || ww_graph_use_count(g, p->output) != 1)
            continue;
        /* linear applies any activation with ww_activate; the conv and add
         * kernels' epilogues have the ones ww_kernel_epilogue_supports lists */
        if (p->op != WW_OP_LINEAR && !ww_kernel_epilogue_supports(act->act)) continue;
        ww_activation a = act->act;
        merge_into_consumer(g, p, act);
        act->act = a;
        rewrites++;
    }
    return rewrites;
}

int ww_pass_fuse_channel_shuffle(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        if (n->op == WW_OP_CHANNEL_SHUFFLE && n->num_inputs == 1) {
            /* the shuffle runs after the concat, so the concat's inputs are ready */
            ww_node *cat = producer_of(g, n->inputs[0]);
            if (!cat || cat->op != WW_OP_CONCAT || ww_graph_use_count(g, cat->output) != 1)
                continue;
            n->inputs[0] = cat->inputs[0];
            n->inputs[1] = cat->inputs[1];
            n->num_inputs = 2;
            cat->removed = 1;
            rewrites++;
        } else if (n->op == WW_OP_SLICE_CHANNELS) {
            /* the slice reads the shuffle's sources directly; the shuffle dies
             * once no one else reads it */
            ww_node *shuffle = producer_of(g, n->inputs[0]);
            if (!shuffle || shuffle->op != WW_OP_CHANNEL_SHUFFLE) continue;
            int begin = shuffle->channel_begin + n->channel_begin;
            int end = shuffle->channel_begin + n->channel_end;
            n->op = WW_OP_CHANNEL_SHUFFLE;
            n->inputs[0] = shuffle->inputs[0];
            n->inputs[1] = shuffle->inputs[1];
            n->num_inputs = shuffle->num_inputs;
            n->groups = shuffle->groups;
            n->channel_begin = begin;
            n->channel_end = end;
            rewrites++;
        }
    }
    return rewrites;
}

int ww_pass_fuse_maxpool(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *mp = &g->nodes[i];
        if (mp->removed || mp->op != WW_OP_MAXPOOL2D) continue;
        ww_node *conv = sole_use_conv(g, mp->inputs[0]);
        if (!conv || conv->pooled) continue;
        ww_pool2d_shape pool = mp->pool;
        merge_into_consumer(g, conv, mp);
        mp->pool = pool;
        mp->pooled = 1;
        rewrites++;
    }
    return rewrites;
}

/* The live node reading `value` when it is its only use (not the graph
 * output); NULL otherwise. */
static ww_node *sole_consumer(ww_graph *g, int value)
{
    if (value == g->output || ww_graph_use_count(g, value) != 1) return NULL;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->num_inputs; k++)
            if (n->inputs[k] == value) return n;
    }
    return NULL;
}

int ww_pass_fuse_channel_scale(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *mul = &g->nodes[i];
        if (mul->removed || mul->op != WW_OP_MUL_CHANNEL || mul->num_inputs != 2) continue;
        ww_node *conv = sole_consumer(g, mul->output);
        if (!conv || conv->op != WW_OP_CONV2D || conv->inputs[0] != mul->output || conv->in_scale ||
            conv->pooled || conv->num_inputs > 2)
            continue;
        const ww_conv2d_shape *s = &conv->conv;
        /* the shapes ww_conv2d_run_scaled takes: 1x1 GEMMs on maps of 2+ pixels */
        if (!ww_conv2d_shape_takes_in_scale(s)) continue;
        if (conv->num_inputs == 2 && conv->inputs[1] == mul->output)
            continue; /* also its residual */
        conv->inputs[0] = mul->inputs[0];
        conv->inputs[conv->num_inputs++] = mul->inputs[1];
        conv->in_scale = 1;
        ww_node_free_arrays(g, mul);
        mul->removed = 1;
        rewrites++;
    }
    return rewrites;
}

/* A global average pool of a depthwise conv's output (squeeze-and-
 * excitation) computed by the conv (ww_conv2d_run_means: each channel
 * summed as it is finished, not in a pass over the whole map after). The
 * pool node stays, a no-op, so that the memory plan places its output;
 * the conv writes it when it is done reading its inputs. That is safe
 * only when the pool is the next node to run: its output may reuse the
 * memory of a value that dies at the conv, but no node between them may
 * write there. */
int ww_pass_fuse_channel_means(ww_graph *g)
{
    int rewrites = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *pool = &g->nodes[i];
        if (pool->removed || pool->op != WW_OP_GLOBAL_AVGPOOL || pool->means_fused) continue;
        int p = g->values[pool->inputs[0]].producer;
        if (p < 0 || p >= i) continue;
        ww_node *conv = &g->nodes[p];
        const ww_conv2d_shape *s = &conv->conv;
        if (conv->removed || conv->op != WW_OP_CONV2D || conv->pooled || conv->in_scale ||
            conv->means_value || s->groups < 2 || s->groups != s->in_c)
            continue;
        int next = p + 1;
        while (next < i && g->nodes[next].removed)
            next++;
        if (next != i) continue;
        conv->means_value = pool->output + 1;
        pool->means_fused = 1;
        rewrites++;
    }
    return rewrites;
}

int ww_pass_remove_dead_nodes(ww_graph *g)
{
    int rewrites = 0;
    for (int i = g->num_nodes - 1; i >= 0; i--) {
        ww_node *n = &g->nodes[i];
        if (n->removed || n->op == WW_OP_INPUT) continue;
        if (ww_graph_use_count(g, n->output) == 0) {
            n->removed = 1;
            rewrites++;
        }
    }
    return rewrites;
}

void ww_graph_optimize(ww_graph *g)
{
    ww_pass_fold_constants(g);
    ww_pass_remove_identities(g);
    ww_pass_fold_batchnorm(g);
    ww_pass_fuse_residual_add(g);
    ww_pass_fuse_activation(g);
    ww_pass_fuse_channel_shuffle(g);
    ww_pass_fuse_maxpool(g);
    ww_pass_fuse_channel_scale(g);
    ww_pass_remove_dead_nodes(g);
    ww_pass_fuse_channel_means(g); /* last: it needs the final node order */
}

/* ---- memory planning ---------------------------------------------------- */

typedef struct slot {
    size_t size; /* floats */
    int busy;
} slot;

static size_t round_up_16(size_t n)
{
    return (n + 15) & ~(size_t)15; /* 64-byte aligned offsets */
}

wanwu_status ww_plan_memory(const ww_graph *g, ww_memory_plan *plan, wanwu_error *err)
{
    memset(plan, 0, sizeof *plan);
    int nv = g->num_values;
    int *last_use = malloc((size_t)(nv ? nv : 1) * sizeof *last_use);
    int *slot_of = malloc((size_t)(nv ? nv : 1) * sizeof *slot_of);
    slot *slots = calloc((size_t)(nv ? nv : 1), sizeof *slots);
    plan->offsets = malloc((size_t)(nv ? nv : 1) * sizeof *plan->offsets);
    if (!last_use || !slot_of || !slots || !plan->offsets) {
        free(last_use);
        free(slot_of);
        free(slots);
        ww_memory_plan_free(plan);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory planning activations");
    }
    for (int v = 0; v < nv; v++) {
        last_use[v] = -1;
        slot_of[v] = -1;
        plan->offsets[v] = SIZE_MAX;
    }
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->num_inputs; k++)
            last_use[n->inputs[k]] = i;
    }
    if (g->output >= 0) last_use[g->output] = g->num_nodes; /* kept to the end */

    int num_slots = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        size_t need = round_up_16(ww_value_size(&g->values[n->output]));
        /* best fit among free slots; otherwise grow the largest free one */
        int best = -1, largest = -1;
        for (int s = 0; s < num_slots; s++) {
            if (slots[s].busy) continue;
            if (slots[s].size >= need && (best < 0 || slots[s].size < slots[best].size)) best = s;
            if (largest < 0 || slots[s].size > slots[largest].size) largest = s;
        }
        if (best < 0) best = largest;
        if (best < 0) best = num_slots++;
        if (slots[best].size < need) slots[best].size = need;
        slots[best].busy = 1;
        slot_of[n->output] = best;
        /* inputs are released only after the output is placed, so an
         * output never aliases an input of the same node */
        for (int k = 0; k < n->num_inputs; k++) {
            int v = n->inputs[k];
            if (last_use[v] == i && slot_of[v] >= 0) slots[slot_of[v]].busy = 0;
        }
        if (last_use[n->output] < 0) slots[best].busy = 0; /* nobody reads it */
    }
    size_t offset = 0;
    size_t *slot_offset = malloc((size_t)(num_slots ? num_slots : 1) * sizeof *slot_offset);
    if (!slot_offset) {
        free(last_use);
        free(slot_of);
        free(slots);
        ww_memory_plan_free(plan);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory planning activations");
    }
    for (int s = 0; s < num_slots; s++) {
        slot_offset[s] = offset;
        offset += slots[s].size;
    }
    for (int v = 0; v < nv; v++)
        if (slot_of[v] >= 0) plan->offsets[v] = slot_offset[slot_of[v]];
    plan->arena_floats = offset;
    free(slot_offset);
    free(last_use);
    free(slot_of);
    free(slots);
    return WANWU_OK;
}

void ww_memory_plan_free(ww_memory_plan *plan)
{
    free(plan->offsets);
    plan->offsets = NULL;
    plan->arena_floats = 0;
}
