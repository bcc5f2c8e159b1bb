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
    ww_graph_free_floats(g, c->weight);
    ww_graph_free_floats(g, c->bias);
    ww_graph_free_floats(g, c->bn_gamma);
    ww_graph_free_floats(g, c->bn_beta);
    ww_graph_free_floats(g, c->bn_mean);
    ww_graph_free_floats(g, c->bn_var);
    free(c->gather_index);
    *c = *p;
    c->output = out;
    g->values[out].producer = (int)(c - g->nodes);
    memset(p, 0, sizeof *p);
    p->removed = 1;
    p->output = -1;
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
        ww_node *conv = producer_of(g, bn->inputs[0]);
        if (!conv || conv->op != WW_OP_CONV2D || conv->num_inputs != 1 ||
            conv->act != WW_ACT_NONE || ww_graph_use_count(g, conv->output) != 1)
            continue;
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
            float *w = conv->weight + (size_t)o * per_out;
            for (size_t k = 0; k < per_out; k++)
                w[k] = (float)((double)w[k] * scale);
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
            ww_node *conv = producer_of(g, add->inputs[k]);
            if (!conv || conv->op != WW_OP_CONV2D || conv->num_inputs != 1 ||
                conv->act != WW_ACT_NONE || ww_graph_use_count(g, conv->output) != 1)
                continue;
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
        /* the vectorized conv and add epilogues know only ReLU and ReLU6;
         * linear applies any activation with ww_activate */
        if (p->op != WW_OP_LINEAR && !ww_kernel_epilogue_supports(act->act)) continue;
        ww_activation a = act->act;
        merge_into_consumer(g, p, act);
        act->act = a;
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
    ww_pass_remove_identities(g);
    ww_pass_fold_batchnorm(g);
    ww_pass_fuse_residual_add(g);
    ww_pass_fuse_activation(g);
    ww_pass_remove_dead_nodes(g);
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
