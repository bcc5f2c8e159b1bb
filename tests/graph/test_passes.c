/* Graph passes and the memory plan preserve what a graph computes: a small
 * network with every fusable pattern is evaluated with reference ops, each
 * value in its own buffer, before optimization, and again after
 * optimization inside one arena laid out by the memory plan. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "graph/graph.h"
#include "graph/passes.h"
#include "test_support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Evaluates node n with reference ops; in(v) returns the buffer of value v. */
typedef float *(*buffer_fn)(void *ctx, int value);

static void eval_node(const ww_graph *g, const ww_node *n, buffer_fn buf, void *ctx)
{
    if (n->op == WW_OP_CONSTANT) {
        memcpy(buf(ctx, n->output), n->weight,
               ww_value_size(&g->values[n->output]) * sizeof(float));
        return;
    }
    const ww_value *in = &g->values[n->inputs[0]];
    const float *x = buf(ctx, n->inputs[0]);
    float *y = buf(ctx, n->output);
    size_t count = ww_value_size(in);
    switch (n->op) {
    case WW_OP_CONV2D:
        if (n->pooled) { /* conv, then the max pool fused into it */
            float *full =
                malloc((size_t)n->conv.out_c * n->conv.out_h * n->conv.out_w * sizeof *full);
            assert_non_null(full);
            ww_conv2d_ref(&n->conv, x, n->weight, n->bias, NULL, n->act, full);
            ww_maxpool2d_ref(&n->pool, full, y);
            free(full);
            break;
        }
        if (n->in_scale) { /* the per-channel multiply fused into it first */
            float *scaled = malloc(count * sizeof *scaled);
            assert_non_null(scaled);
            ww_mul_channel_ref(in->c, in->h * in->w, x, buf(ctx, ww_conv_in_scale(n)), scaled);
            ww_conv2d_ref(&n->conv, scaled, n->weight, n->bias,
                          ww_conv_residual(n) >= 0 ? buf(ctx, ww_conv_residual(n)) : NULL, n->act,
                          y);
            free(scaled);
            break;
        }
        ww_conv2d_ref(&n->conv, x, n->weight, n->bias,
                      ww_conv_residual(n) >= 0 ? buf(ctx, ww_conv_residual(n)) : NULL, n->act, y);
        if (n->means_value) /* the global average pool fused into it */
            ww_global_avgpool_ref(n->conv.out_c, n->conv.out_h * n->conv.out_w, y,
                                  buf(ctx, n->means_value - 1));
        break;
    case WW_OP_BATCHNORM:
        ww_batchnorm_ref(in->c, in->h * in->w, x, n->bn_gamma, n->bn_beta, n->bn_mean, n->bn_var,
                         n->bn_eps, y);
        break;
    case WW_OP_ACTIVATION: ww_activation_ref(count, x, n->act, y); break;
    case WW_OP_ADD: ww_add_ref(count, x, buf(ctx, n->inputs[1]), n->act, y); break;
    case WW_OP_MAXPOOL2D: ww_maxpool2d_ref(&n->pool, x, y); break;
    case WW_OP_GLOBAL_AVGPOOL:
        if (!n->means_fused) ww_global_avgpool_ref(in->c, in->h * in->w, x, y);
        break;
    case WW_OP_FLATTEN:
    case WW_OP_DROPOUT: memcpy(y, x, count * sizeof *y); break;
    case WW_OP_LINEAR:
        ww_linear_ref(n->in_features, n->out_features, x, n->weight, n->bias, n->act, y);
        break;
    case WW_OP_MUL_CHANNEL:
        ww_mul_channel_ref(in->c, in->h * in->w, x, buf(ctx, n->inputs[1]), y);
        break;
    case WW_OP_CONCAT:
        ww_concat_channels_ref(in->c, g->values[n->inputs[1]].c, in->h * in->w, x,
                               buf(ctx, n->inputs[1]), y);
        break;
    case WW_OP_SLICE_CHANNELS:
        ww_slice_channels_ref(n->channel_begin, n->channel_end, in->h * in->w, x, y);
        break;
    case WW_OP_CHANNEL_SHUFFLE:
        ww_channel_shuffle_range_ref(in->c, n->num_inputs > 1 ? g->values[n->inputs[1]].c : 0,
                                     n->groups, n->channel_begin, n->channel_end, in->h * in->w, x,
                                     n->num_inputs > 1 ? buf(ctx, n->inputs[1]) : NULL, y);
        break;
    case WW_OP_AVGPOOL2D: ww_avgpool2d_ref(&n->pool, n->count_include_pad, x, y); break;
    case WW_OP_RESHAPE: memcpy(y, x, count * sizeof *y); break;
    case WW_OP_SOFTMAX: ww_softmax_ref((int)count, x, y); break;
    case WW_OP_AFFINE_CLAMP:
        ww_affine_clamp_ref(count, x, n->clamp_scale, n->clamp_shift, n->clamp_lo, n->clamp_hi, y);
        break;
    case WW_OP_GATHER:
        ww_gather_ref(ww_value_size(&g->values[n->output]), n->gather_index, x, count,
                      n->num_inputs > 1 ? buf(ctx, n->inputs[1]) : n->weight, y);
        break;
    case WW_OP_ELTWISE:
        ww_eltwise_ref(count, in->h * in->w, x,
                       n->num_inputs > 1 ? buf(ctx, n->inputs[1]) : n->weight, n->const_count,
                       n->eltwise_op, n->eltwise_swap, y);
        break;
    case WW_OP_INPUT:
    case WW_OP_CONSTANT: break;
    }
}

typedef struct separate_buffers {
    float **values;
} separate_buffers;

static float *separate_buffer(void *ctx, int value)
{
    return ((separate_buffers *)ctx)->values[value];
}

typedef struct arena_buffers {
    float *arena;
    const ww_memory_plan *plan;
} arena_buffers;

static float *arena_buffer(void *ctx, int value)
{
    arena_buffers *a = ctx;
    assert_true(a->plan->offsets[value] != SIZE_MAX);
    return a->arena + a->plan->offsets[value];
}

static float *random_floats(ww_rng *rng, size_t n, float lo, float hi)
{
    float *x = malloc(n * sizeof *x);
    ww_rng_fill(rng, x, n, lo, hi);
    return x;
}

static int conv_bn(ww_graph *g, ww_rng *rng, int x, int out_c, int k, int stride, int groups,
                   ww_activation act)
{
    wanwu_error err;
    int in_c = g->values[x].c;
    size_t wn = (size_t)out_c * (size_t)(in_c / groups) * (size_t)(k * k);
    float *w = random_floats(rng, wn, -0.5f, 0.5f);
    float *gamma = random_floats(rng, (size_t)out_c, 0.5f, 1.5f);
    float *beta = random_floats(rng, (size_t)out_c, -0.3f, 0.3f);
    float *mean = random_floats(rng, (size_t)out_c, -0.3f, 0.3f);
    float *var = random_floats(rng, (size_t)out_c, 0.5f, 2.0f);
    int v = ww_graph_add_conv2d(g, "conv", x, out_c, k, stride, (k - 1) / 2, groups, w, NULL, &err);
    assert_true(v >= 0);
    v = ww_graph_add_batchnorm(g, "bn", v, gamma, beta, mean, var, 1e-5f, &err);
    assert_true(v >= 0);
    if (act != WW_ACT_NONE) v = ww_graph_add_activation(g, "act", v, act, &err);
    assert_true(v >= 0);
    free(w);
    free(gamma);
    free(beta);
    free(mean);
    free(var);
    return v;
}

/* A network with: conv-bn-relu, maxpool, a residual block with a
 * downsample branch emitted after the main branch (as torchvision does),
 * an inverted residual with depthwise conv and a plain add, global pool,
 * flatten, dropout and linear. */
static void build_network(ww_graph *g, ww_rng *rng)
{
    wanwu_error err;
    ww_graph_init(g);
    int x = ww_graph_add_input(g, 3, 17, 15, &err);
    x = conv_bn(g, rng, x, 8, 3, 2, 1, WW_ACT_RELU);
    x = ww_graph_add_maxpool2d(g, "pool", x, 3, 2, 1, &err);
    int main_branch = conv_bn(g, rng, x, 12, 3, 2, 1, WW_ACT_RELU);
    main_branch = conv_bn(g, rng, main_branch, 12, 3, 1, 1, WW_ACT_NONE);
    int shortcut = conv_bn(g, rng, x, 12, 1, 2, 1, WW_ACT_NONE);
    x = ww_graph_add_add(g, "block", main_branch, shortcut, &err);
    x = ww_graph_add_activation(g, "block.relu", x, WW_ACT_RELU, &err);
    int h = conv_bn(g, rng, x, 24, 1, 1, 1, WW_ACT_RELU6);
    h = conv_bn(g, rng, h, 24, 3, 1, 24, WW_ACT_RELU6);
    h = conv_bn(g, rng, h, 12, 1, 1, 1, WW_ACT_NONE);
    x = ww_graph_add_add(g, "inverted", x, h, &err);
    x = ww_graph_add_global_avgpool(g, "gap", x, &err);
    x = ww_graph_add_flatten(g, "flatten", x, &err);
    x = ww_graph_add_dropout(g, "dropout", x, &err);
    float *w = random_floats(rng, 12 * 10, -0.5f, 0.5f), *b = random_floats(rng, 10, -1, 1);
    x = ww_graph_add_linear(g, "fc", x, 10, w, b, &err);
    assert_true(x >= 0);
    free(w);
    free(b);
}

static void evaluate_separately(const ww_graph *g, const float *input, float *out)
{
    separate_buffers sb;
    sb.values = calloc((size_t)g->num_values, sizeof *sb.values);
    for (int v = 0; v < g->num_values; v++)
        sb.values[v] = calloc(ww_value_size(&g->values[v]), sizeof(float));
    memcpy(sb.values[g->input], input, ww_value_size(&g->values[g->input]) * sizeof(float));
    for (int i = 0; i < g->num_nodes; i++)
        if (!g->nodes[i].removed && g->nodes[i].op != WW_OP_INPUT)
            eval_node(g, &g->nodes[i], separate_buffer, &sb);
    memcpy(out, sb.values[g->output], ww_value_size(&g->values[g->output]) * sizeof(float));
    for (int v = 0; v < g->num_values; v++)
        free(sb.values[v]);
    free(sb.values);
}

static int count_live(const ww_graph *g, ww_op_type op)
{
    int n = 0;
    for (int i = 0; i < g->num_nodes; i++)
        n += !g->nodes[i].removed && g->nodes[i].op == op;
    return n;
}

static void test_optimize_and_plan_preserve_output(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        ww_rng rng;
        ww_rng_seed(&rng, seed);
        ww_graph g;
        build_network(&g, &rng);
        size_t in_n = ww_value_size(&g.values[g.input]);
        float *input = random_floats(&rng, in_n, -2, 2);
        float before[10], after[10];
        evaluate_separately(&g, input, before);

        ww_graph_optimize(&g);
        /* every BN folded, every activation and both adds fused */
        assert_int_equal(count_live(&g, WW_OP_BATCHNORM), 0);
        assert_int_equal(count_live(&g, WW_OP_ACTIVATION), 0);
        assert_int_equal(count_live(&g, WW_OP_ADD), 0);
        assert_int_equal(count_live(&g, WW_OP_FLATTEN), 0);
        assert_int_equal(count_live(&g, WW_OP_DROPOUT), 0);
        assert_int_equal(count_live(&g, WW_OP_CONV2D), 7);
        /* the stem's max pool became part of its conv */
        assert_int_equal(count_live(&g, WW_OP_MAXPOOL2D), 0);
        int pooled = 0;
        for (int i = 0; i < g.num_nodes; i++)
            pooled += !g.nodes[i].removed && g.nodes[i].op == WW_OP_CONV2D && g.nodes[i].pooled;
        assert_int_equal(pooled, 1);

        ww_memory_plan plan;
        wanwu_error err;
        assert_int_equal(ww_plan_memory(&g, &plan, &err), WANWU_OK);
        size_t total = 0;
        for (int v = 0; v < g.num_values; v++)
            if (plan.offsets[v] != SIZE_MAX) total += ww_value_size(&g.values[v]);
        assert_true(plan.arena_floats < total); /* buffers really are shared */
        arena_buffers ab = {malloc(plan.arena_floats * sizeof(float)), &plan};
        /* poison: stale data must never leak into a result */
        for (size_t i = 0; i < plan.arena_floats; i++)
            ab.arena[i] = 1e30f;
        memcpy(arena_buffer(&ab, g.input), input, in_n * sizeof(float));
        for (int i = 0; i < g.num_nodes; i++)
            if (!g.nodes[i].removed && g.nodes[i].op != WW_OP_INPUT)
                eval_node(&g, &g.nodes[i], arena_buffer, &ab);
        memcpy(after, arena_buffer(&ab, g.output), sizeof after);
        assert_true(ww_max_rel_diff(after, before, 10) < 1e-4);

        free(ab.arena);
        ww_memory_plan_free(&plan);
        free(input);
        ww_graph_free(&g);
    }
}

/* The model-zoo ops: squeeze-and-excitation with SiLU/sigmoid (fused into
 * the conv epilogues), hard-swish, channel split, concat, shuffle and
 * average pool. */
static void test_zoo_ops_preserve_output(void **state)
{
    (void)state;
    for (uint64_t seed = 11; seed <= 14; seed++) {
        ww_rng rng;
        ww_rng_seed(&rng, seed);
        ww_graph g;
        wanwu_error err;
        ww_graph_init(&g);
        int x = ww_graph_add_input(&g, 3, 13, 12, &err);
        x = conv_bn(&g, &rng, x, 8, 3, 1, 1, WW_ACT_RELU);
        int h = conv_bn(&g, &rng, x, 8, 3, 1, 8, WW_ACT_NONE);
        h = ww_graph_add_activation(&g, "silu", h, WW_ACT_SILU, &err);
        /* SE: pool, 1x1 conv with bias, SiLU, 1x1 conv, sigmoid, scale */
        int s = ww_graph_add_global_avgpool(&g, "se.pool", h, &err);
        float w1[2 * 8], b1[2], w2[8 * 2], b2[8];
        ww_rng_fill(&rng, w1, 16, -1, 1);
        ww_rng_fill(&rng, b1, 2, -1, 1);
        ww_rng_fill(&rng, w2, 16, -1, 1);
        ww_rng_fill(&rng, b2, 8, -1, 1);
        s = ww_graph_add_conv2d(&g, "se.fc1", s, 2, 1, 1, 0, 1, w1, b1, &err);
        s = ww_graph_add_activation(&g, "se.silu", s, WW_ACT_SILU, &err);
        s = ww_graph_add_conv2d(&g, "se.fc2", s, 8, 1, 1, 0, 1, w2, b2, &err);
        s = ww_graph_add_activation(&g, "se.sigmoid", s, WW_ACT_SIGMOID, &err);
        h = ww_graph_add_mul_channel(&g, "se", h, s, &err);
        /* ShuffleNet unit: split, branch on one half, concat, shuffle */
        int left = ww_graph_add_slice_channels(&g, "chunk0", h, 0, 4, &err);
        int right = ww_graph_add_slice_channels(&g, "chunk1", h, 4, 8, &err);
        right = conv_bn(&g, &rng, right, 4, 1, 1, 1, WW_ACT_HARDSWISH);
        h = ww_graph_add_concat(&g, "cat", left, right, &err);
        h = ww_graph_add_channel_shuffle(&g, "shuffle", h, 2, &err);
        ww_pool2d_shape ps = {0};
        ps.kernel_h = ps.kernel_w = 3;
        ps.stride_h = ps.stride_w = 2;
        ps.pad_top = ps.pad_left = ps.pad_bottom = ps.pad_right = 1;
        h = ww_graph_add_pool2d_shape(&g, WW_OP_AVGPOOL2D, "avg", h, &ps, (int)(seed & 1), &err);
        h = ww_graph_add_global_avgpool(&g, "gap", h, &err);
        float wl[8 * 10], bl[10];
        ww_rng_fill(&rng, wl, 80, -1, 1);
        ww_rng_fill(&rng, bl, 10, -1, 1);
        h = ww_graph_add_linear(&g, "fc", h, 10, wl, bl, &err);
        assert_true(h >= 0);

        size_t in_n = ww_value_size(&g.values[g.input]);
        float *input = random_floats(&rng, in_n, -2, 2);
        float before[10], after[10];
        evaluate_separately(&g, input, before);
        ww_graph_optimize(&g);
        assert_int_equal(count_live(&g, WW_OP_BATCHNORM), 0);
        /* every activation lands in a conv epilogue */
        assert_int_equal(count_live(&g, WW_OP_ACTIVATION), 0);
        int fused[WW_ACT_HARDSWISH + 1] = {0};
        for (int i = 0; i < g.num_nodes; i++)
            if (!g.nodes[i].removed && g.nodes[i].op == WW_OP_CONV2D) {
                assert_true(ww_kernel_epilogue_supports(g.nodes[i].act));
                fused[g.nodes[i].act]++;
            }
        assert_int_equal(fused[WW_ACT_SILU], 2);
        assert_int_equal(fused[WW_ACT_SIGMOID], 1);
        assert_int_equal(fused[WW_ACT_HARDSWISH], 1);

        ww_memory_plan plan;
        assert_int_equal(ww_plan_memory(&g, &plan, &err), WANWU_OK);
        arena_buffers ab = {malloc(plan.arena_floats * sizeof(float)), &plan};
        for (size_t i = 0; i < plan.arena_floats; i++)
            ab.arena[i] = 1e30f;
        memcpy(arena_buffer(&ab, g.input), input, in_n * sizeof(float));
        for (int i = 0; i < g.num_nodes; i++)
            if (!g.nodes[i].removed && g.nodes[i].op != WW_OP_INPUT)
                eval_node(&g, &g.nodes[i], arena_buffer, &ab);
        memcpy(after, arena_buffer(&ab, g.output), sizeof after);
        assert_true(ww_max_rel_diff(after, before, 10) < 1e-4);
        free(ab.arena);
        ww_memory_plan_free(&plan);
        free(input);
        ww_graph_free(&g);
    }
}

/* Hand-checked values of the new reference ops. */
static void test_zoo_reference_ops(void **state)
{
    (void)state;
    const float in[6] = {1, 2, 3, 4, 5, 6}; /* 3 channels x 2 */
    float out[6];
    ww_channel_shuffle_ref(6, 2, 1, in, out); /* [0 1 2][3 4 5] -> 0 3 1 4 2 5 */
    const float shuffled[6] = {1, 4, 2, 5, 3, 6};
    assert_memory_equal(out, shuffled, sizeof out);
    ww_slice_channels_ref(1, 3, 2, in, out);
    assert_true(out[0] == 3 && out[3] == 6);
    /* concat([1 2], [3 4 5 6]) shuffled in 2 groups is 1 4 2 5 3 6; channels [1, 5) */
    ww_channel_shuffle_range_ref(2, 4, 2, 1, 5, 1, in, in + 2, out);
    const float shuffled_range[4] = {4, 2, 5, 3};
    assert_memory_equal(out, shuffled_range, sizeof shuffled_range);
    ww_channel_shuffle_range_ref(6, 0, 3, 0, 6, 1, in, NULL, out); /* [0 1][2 3][4 5] */
    const float shuffled3[6] = {1, 3, 5, 2, 4, 6};
    assert_memory_equal(out, shuffled3, sizeof shuffled3);
    const float scale[3] = {2, 0, -1};
    ww_mul_channel_ref(3, 2, in, scale, out);
    assert_true(out[0] == 2 && out[1] == 4 && out[2] == 0 && out[5] == -6);
    ww_concat_channels_ref(1, 2, 2, in, in + 2, out);
    assert_memory_equal(out, in, sizeof out);
    assert_true(fabsf(ww_activate(0.0f, WW_ACT_SIGMOID) - 0.5f) < 1e-7f);
    assert_true(fabsf(ww_activate(2.0f, WW_ACT_SILU) - 2.0f / (1.0f + expf(-2.0f))) < 1e-7f);
    assert_true(ww_activate(-100.0f, WW_ACT_SILU) <= 0.0f &&
                ww_activate(-100.0f, WW_ACT_SILU) > -1e-6f);
    ww_affine_clamp_ref(6, in, 0.5f, -1.0f, 0.0f, 1.0f, out); /* hard sigmoid-like */
    assert_true(out[0] == 0.0f && out[2] == 0.5f && out[5] == 1.0f);
    const float per_channel[3] = {10, 20, 30};
    ww_eltwise_ref(6, 2, in, per_channel, 3, WW_ELT_SUB, 1, out); /* b - a, per channel */
    assert_true(out[0] == 9 && out[1] == 8 && out[2] == 17 && out[5] == 24);
    ww_eltwise_ref(6, 2, in, in, 6, WW_ELT_MUL, 0, out);
    assert_true(out[5] == 36);
    ww_eltwise_ref(6, 2, in, per_channel, 1, WW_ELT_DIV, 0, out); /* scalar */
    assert_true(out[5] == 0.6f);
    assert_true(fabsf(ww_activate(1.0f, WW_ACT_HARDSWISH) - 4.0f / 6.0f) < 1e-7f);
    /* 3x3 average pool with padding 1 on a 2x2 map of ones */
    const float ones[4] = {1, 1, 1, 1};
    ww_pool2d_shape p = {1, 2, 2, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1};
    ww_avgpool2d_ref(&p, 0, ones, out);
    assert_true(out[0] == 1.0f);
    ww_avgpool2d_ref(&p, 1, ones, out);
    assert_true(fabsf(out[0] - 4.0f / 9.0f) < 1e-7f);
}

/* Evaluates g (with input) before optimization, value by value, and after
 * it inside the planned, poisoned arena; returns the max difference. */
static double optimized_difference(ww_graph *g, const float *input)
{
    size_t out_n = ww_value_size(&g->values[g->output]);
    float *before = malloc(out_n * sizeof *before), *after = malloc(out_n * sizeof *after);
    evaluate_separately(g, input, before);
    ww_graph_optimize(g);
    assert_int_equal(ww_value_size(&g->values[g->output]), out_n);
    ww_memory_plan plan;
    wanwu_error err;
    assert_int_equal(ww_plan_memory(g, &plan, &err), WANWU_OK);
    arena_buffers ab = {malloc(plan.arena_floats * sizeof(float)), &plan};
    for (size_t i = 0; i < plan.arena_floats; i++)
        ab.arena[i] = 1e30f;
    memcpy(arena_buffer(&ab, g->input), input, ww_value_size(&g->values[g->input]) * sizeof(float));
    for (int i = 0; i < g->num_nodes; i++)
        if (!g->nodes[i].removed && g->nodes[i].op != WW_OP_INPUT)
            eval_node(g, &g->nodes[i], arena_buffer, &ab);
    memcpy(after, arena_buffer(&ab, g->output), out_n * sizeof *after);
    double diff = ww_max_rel_diff(after, before, out_n);
    free(ab.arena);
    ww_memory_plan_free(&plan);
    free(before);
    free(after);
    return diff;
}

/* Concat, channel shuffle and the next unit's split fuse into shuffles that
 * read the concat's inputs; the result is unchanged. A concat read twice, a
 * shuffle read whole and a shuffle that is the graph output stay. */
static void test_fuse_channel_shuffle(void **state)
{
    (void)state;
    for (int groups = 2; groups <= 3; groups++) {
        for (int variant = 0; variant < 3; variant++) {
            ww_rng rng;
            ww_rng_seed(&rng, 31 + (uint64_t)(groups * 3 + variant));
            ww_graph g;
            wanwu_error err;
            ww_graph_init(&g);
            int c = 6 * groups;
            int x = ww_graph_add_input(&g, c, 5, 7, &err);
            int h = x;
            for (int unit = 0; unit < 2; unit++) {
                int left = ww_graph_add_slice_channels(&g, "split0", h, 0, c / 2, &err);
                int right = ww_graph_add_slice_channels(&g, "split1", h, c / 2, c, &err);
                right = conv_bn(&g, &rng, right, c / 2, 3, 1, c / 2, WW_ACT_RELU);
                int cat = ww_graph_add_concat(&g, "cat", left, right, &err);
                h = ww_graph_add_channel_shuffle(&g, "shuffle", cat, groups, &err);
                /* variant 1: the concat is read again, so it must stay */
                if (variant == 1 && unit == 0) h = ww_graph_add_add(&g, "add", h, cat, &err);
            }
            /* variant 2: the last shuffle is read whole by a conv */
            if (variant == 2) h = conv_bn(&g, &rng, h, c, 1, 1, 1, WW_ACT_NONE);
            assert_true(h >= 0);
            float *input = random_floats(&rng, ww_value_size(&g.values[x]), -2, 2);
            assert_true(optimized_difference(&g, input) < 1e-5);
            /* unit 0's split reads the input and stays; unit 1's split becomes
             * two shuffles of unit 0's concat inputs unless it reads the add */
            assert_int_equal(count_live(&g, WW_OP_SLICE_CHANNELS), variant == 1 ? 4 : 2);
            assert_int_equal(count_live(&g, WW_OP_CONCAT), variant == 1 ? 1 : 0);
            assert_int_equal(count_live(&g, WW_OP_CHANNEL_SHUFFLE), variant == 1 ? 2 : 3);
            free(input);
            ww_graph_free(&g);
        }
    }
}

/* A max pool becomes part of the conv before it only when it is the conv
 * output's one reader and the conv has no residual. */
static void test_fuse_maxpool(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        ww_rng rng;
        ww_rng_seed(&rng, 70 + (uint64_t)variant);
        ww_graph g;
        wanwu_error err;
        ww_graph_init(&g);
        int x = ww_graph_add_input(&g, 3, 19, 16, &err);
        int c = conv_bn(&g, &rng, x, 8, 3, 2, 1, variant == 2 ? WW_ACT_NONE : WW_ACT_RELU6);
        if (variant == 2)
            c = ww_graph_add_add(&g, "residual", c, conv_bn(&g, &rng, x, 8, 1, 2, 1, WW_ACT_NONE),
                                 &err);
        int h = ww_graph_add_maxpool2d(&g, "pool", c, 3, 2, 1, &err);
        /* variant 1: the conv output is read again */
        if (variant == 1)
            h = ww_graph_add_add(&g, "again", h,
                                 ww_graph_add_maxpool2d(&g, "pool2", c, 3, 2, 1, &err), &err);
        assert_true(h >= 0);
        float *input = random_floats(&rng, ww_value_size(&g.values[x]), -2, 2);
        assert_true(optimized_difference(&g, input) < 1e-5);
        assert_int_equal(count_live(&g, WW_OP_MAXPOOL2D), variant == 0 ? 0 : variant == 1 ? 2 : 1);
        free(input);
        ww_graph_free(&g);
    }
}

/* Squeeze-and-excitation's per-channel multiply becomes part of the 1x1
 * conv reading it (with or without a residual), only when that conv is
 * its one reader and takes a scale (1x1, stride 1, 2+ pixels). */
static void test_fuse_channel_scale(void **state)
{
    (void)state;
    for (int variant = 0; variant < 5; variant++) {
        ww_rng rng;
        ww_rng_seed(&rng, 90 + (uint64_t)variant);
        ww_graph g;
        wanwu_error err;
        ww_graph_init(&g);
        int x = ww_graph_add_input(&g, 6, 9, 7, &err);
        int h = conv_bn(&g, &rng, x, 12, 3, 1, 6, WW_ACT_SILU); /* depthwise x2 */
        int s = ww_graph_add_global_avgpool(&g, "se.pool", h, &err);
        s = conv_bn(&g, &rng, s, 12, 1, 1, 1, WW_ACT_SIGMOID);
        int scaled = ww_graph_add_mul_channel(&g, "se", h, s, &err);
        int k = variant == 2 ? 3 : 1, stride = variant == 3 ? 2 : 1;
        int y = conv_bn(&g, &rng, scaled, 6, k, stride, 1, WW_ACT_NONE);
        /* variants 0 and 4: a residual block (the projection plus x) */
        if (variant == 0 || variant == 4) y = ww_graph_add_add(&g, "residual", y, x, &err);
        /* variant 1: the scaled map is read again */
        if (variant == 1)
            y = ww_graph_add_add(&g, "again", y, conv_bn(&g, &rng, scaled, 6, 1, 1, 1, WW_ACT_NONE),
                                 &err);
        /* variant 4: the SE output scales a second map too */
        if (variant == 4)
            y = ww_graph_add_add(&g, "other", y,
                                 conv_bn(&g, &rng, ww_graph_add_mul_channel(&g, "se2", h, s, &err),
                                         6, 1, 1, 1, WW_ACT_NONE),
                                 &err);
        assert_true(y >= 0);
        float *input = random_floats(&rng, ww_value_size(&g.values[x]), -2, 2);
        assert_true(optimized_difference(&g, input) < 1e-5);
        int fused = variant == 0 ? 1 : variant == 4 ? 2 : 0;
        int scaled_convs = 0, with_residual = 0;
        for (int i = 0; i < g.num_nodes; i++) {
            const ww_node *n = &g.nodes[i];
            if (n->removed || n->op != WW_OP_CONV2D || !n->in_scale) continue;
            scaled_convs++;
            assert_int_equal(g.values[ww_conv_in_scale(n)].c, 12);
            if (ww_conv_residual(n) >= 0) with_residual++;
        }
        assert_int_equal(scaled_convs, fused);
        /* variant 4: the second projection takes the first one's sum as its residual */
        assert_int_equal(with_residual, variant == 0 ? 1 : variant == 4 ? 2 : 0);
        assert_int_equal(count_live(&g, WW_OP_MUL_CHANNEL), fused ? 0 : 1);
        free(input);
        ww_graph_free(&g);
    }
}

/* No live node reads a CONSTANT node, or reads only constants. */
static void assert_constants_absorbed(const ww_graph *g)
{
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->num_inputs; k++) {
            const ww_node *p = &g->nodes[g->values[n->inputs[k]].producer];
            assert_false(p->removed);
            assert_int_not_equal(p->op, WW_OP_CONSTANT);
        }
    }
}

static int constant(ww_graph *g, ww_rng *rng, int c, int h, int w)
{
    wanwu_error err;
    size_t n = (size_t)c * (size_t)h * (size_t)w;
    float *data = random_floats(rng, n, -1, 1);
    int v = ww_graph_add_constant(g, "k", c, h, w, data, &err);
    assert_true(v >= 0);
    free(data);
    return v;
}

/* Constant subgraphs (element-wise ops, an activation, a conv, a per-channel
 * scale) combined with the input: every node reading only constants is
 * evaluated at load time and every constant ends up inside the node that
 * combines it with the input. */
static void test_fold_constant_operands(void **state)
{
    (void)state;
    for (uint64_t seed = 21; seed <= 24; seed++) {
        ww_rng rng;
        ww_rng_seed(&rng, seed);
        ww_graph g;
        wanwu_error err;
        ww_graph_init(&g);
        int x = ww_graph_add_input(&g, 4, 3, 5, &err);
        int k1 = constant(&g, &rng, 4, 3, 5), k2 = constant(&g, &rng, 4, 3, 5);
        int s = ww_graph_add_eltwise(&g, "k1+k2", k1, k2, NULL, 0, WW_ELT_ADD, 0, &err);
        const float per_channel[4] = {0.5f, -2, 3, 0.25f};
        s = ww_graph_add_eltwise(&g, "s*c", s, -1, per_channel, 4, WW_ELT_MUL, 0, &err);
        int y = ww_graph_add_eltwise(&g, "s-x", s, x, NULL, 0, WW_ELT_SUB, 0, &err);
        /* a conv over a constant (a weight computed by the source network) */
        float w[4 * 4 * 9];
        ww_rng_fill(&rng, w, sizeof w / sizeof *w, -0.5f, 0.5f);
        int kc = ww_graph_add_conv2d(&g, "conv(k1)", k1, 4, 3, 1, 1, 1, w, per_channel, &err);
        y = ww_graph_add_add(&g, "y+conv", kc, y, &err);
        /* a per-channel-uniform constant: stored as one value per channel */
        float uniform[4 * 15];
        for (int i = 0; i < 60; i++)
            uniform[i] = per_channel[i / 15];
        int ku = ww_graph_add_constant(&g, "uniform", 4, 3, 5, uniform, &err);
        y = ww_graph_add_eltwise(&g, "y/u", y, ku, NULL, 0, WW_ELT_DIV, 0, &err);
        /* a scale computed from constants: pool, sigmoid */
        int sc = ww_graph_add_global_avgpool(&g, "pool(k2)", k2, &err);
        sc = ww_graph_add_activation(&g, "sigmoid", sc, WW_ACT_SIGMOID, &err);
        y = ww_graph_add_mul_channel(&g, "y*sc", y, sc, &err);
        y = ww_graph_add_activation(&g, "relu", y, WW_ACT_RELU, &err);
        assert_true(y >= 0);

        float *input = random_floats(&rng, 60, -2, 2);
        assert_true(optimized_difference(&g, input) < 1e-5);
        assert_constants_absorbed(&g);
        assert_int_equal(count_live(&g, WW_OP_CONSTANT), 0);
        assert_int_equal(count_live(&g, WW_OP_CONV2D), 0);
        assert_int_equal(count_live(&g, WW_OP_ADD), 0);
        assert_int_equal(count_live(&g, WW_OP_MUL_CHANNEL), 0);
        assert_int_equal(count_live(&g, WW_OP_ELTWISE), 4); /* s-x, y+conv, y/u, y*sc */
        for (int i = 0; i < g.num_nodes; i++) {
            const ww_node *n = &g.nodes[i];
            if (n->removed || n->op != WW_OP_ELTWISE) continue;
            assert_int_equal(n->num_inputs, 1);
            if (n->eltwise_op == WW_ELT_DIV) assert_int_equal(n->const_count, 4);
        }
        free(input);
        ww_graph_free(&g);
    }
}

/* A chain of data movement over constants (transpose-like gather, reshape)
 * feeding concatenations and gathers with the input, the constant on either
 * side. */
static void test_fold_constant_concat_gather(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 31);
    ww_graph g;
    wanwu_error err;
    ww_graph_init(&g);
    int x = ww_graph_add_input(&g, 3, 2, 5, &err);
    int k = constant(&g, &rng, 2, 5, 2);
    int32_t transpose[20];
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 5; j++)
                transpose[c * 10 + i * 5 + j] = c * 10 + j * 2 + i;
    int t = ww_graph_add_gather(&g, "transpose", k, -1, 2, 2, 5, transpose, &err);
    t = ww_graph_add_reshape(&g, "reshape", t, 2, 2, 5, &err);
    int cat = ww_graph_add_concat(&g, "cat(x,k)", x, t, &err);      /* 5 x 2 x 5 */
    int cat2 = ww_graph_add_concat(&g, "cat(k,cat)", t, cat, &err); /* 7 x 2 x 5 */
    int32_t pick[14];
    for (int i = 0; i < 14; i++)
        pick[i] = (i * 37) % 80; /* from k2 (10) then cat2 (70) */
    int k2 = constant(&g, &rng, 1, 2, 5);
    int y = ww_graph_add_gather(&g, "gather(k2,cat2)", k2, cat2, 2, 7, 1, pick, &err);
    for (int i = 0; i < 14; i++)
        pick[i] = (i * 7 + 3) % 34; /* from y (14) then t (20) */
    y = ww_graph_add_gather(&g, "gather(y,t)", y, t, 2, 7, 1, pick, &err);
    assert_true(y >= 0);

    float *input = random_floats(&rng, 30, -2, 2);
    assert_true(optimized_difference(&g, input) == 0.0);
    assert_constants_absorbed(&g);
    assert_int_equal(count_live(&g, WW_OP_CONSTANT), 0);
    assert_int_equal(count_live(&g, WW_OP_CONCAT), 0);
    assert_int_equal(count_live(&g, WW_OP_RESHAPE), 0);
    assert_int_equal(count_live(&g, WW_OP_GATHER), 4);
    for (int i = 0; i < g.num_nodes; i++)
        if (!g.nodes[i].removed && g.nodes[i].op == WW_OP_GATHER) {
            assert_int_equal(g.nodes[i].num_inputs, 1);
            assert_non_null(g.nodes[i].weight);
        }
    free(input);
    ww_graph_free(&g);
}

/* A graph whose output does not depend on the input: one CONSTANT node
 * remains, and the executor copies it into the arena every run. */
static void test_fold_constant_output(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 41);
    ww_graph g;
    wanwu_error err;
    ww_graph_init(&g);
    int x = ww_graph_add_input(&g, 2, 3, 3, &err);
    ww_graph_add_activation(&g, "unused", x, WW_ACT_RELU, &err);
    int k = constant(&g, &rng, 2, 3, 3);
    int y = ww_graph_add_eltwise(&g, "k*k", k, k, NULL, 0, WW_ELT_MUL, 0, &err);
    y = ww_graph_add_global_avgpool(&g, "pool", y, &err);
    y = ww_graph_add_softmax(&g, "softmax", y, &err);
    assert_true(y >= 0);
    float *input = random_floats(&rng, 18, -2, 2);
    assert_true(optimized_difference(&g, input) < 1e-6);
    assert_int_equal(count_live(&g, WW_OP_CONSTANT), 1);
    assert_int_equal(count_live(&g, WW_OP_ACTIVATION), 0);
    assert_int_equal(g.nodes[g.values[g.output].producer].op, WW_OP_CONSTANT);

    /* the executor (ww_graph_exec_nodes) produces the same values */
    ww_memory_plan plan;
    assert_int_equal(ww_plan_memory(&g, &plan, &err), WANWU_OK);
    float *arena = malloc(plan.arena_floats * sizeof *arena);
    for (size_t i = 0; i < plan.arena_floats; i++)
        arena[i] = 1e30f;
    ww_conv2d **convs = calloc((size_t)g.num_nodes, sizeof *convs);
    ww_graph_exec e = {.graph = &g, .convs = convs, .offsets = plan.offsets, .arena = arena};
    ww_graph_exec_nodes(&e, 0, g.num_nodes);
    const float *out = arena + plan.offsets[g.output];
    assert_memory_equal(out, g.nodes[g.values[g.output].producer].weight, 2 * sizeof(float));
    assert_true(fabsf(out[0] + out[1] - 1.0f) < 1e-6f);
    free(convs);
    free(arena);
    ww_memory_plan_free(&plan);
    free(input);
    ww_graph_free(&g);
}

/* A constant added to (or subtracted from) a conv or linear output whose
 * only reader it is becomes that layer's bias; a shared output keeps its
 * add. */
static void test_fold_constant_bias(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 51);
    ww_graph g;
    wanwu_error err;
    ww_graph_init(&g);
    int x = ww_graph_add_input(&g, 3, 6, 5, &err);
    float w[4 * 3 * 9 + 4 * 4 * 9], b[4], wl[6 * 4]; /* conv, then conv2 at w + 36 */
    ww_rng_fill(&rng, w, sizeof w / sizeof *w, -1, 1);
    ww_rng_fill(&rng, b, 4, -1, 1);
    ww_rng_fill(&rng, wl, 24, -1, 1);
    int c = ww_graph_add_conv2d(&g, "conv", x, 4, 3, 1, 1, 1, w, NULL, &err);
    int k = constant(&g, &rng, 4, 1, 1);
    int scale = ww_graph_add_eltwise(&g, "k*b0", k, -1, b, 1, WW_ELT_MUL, 0, &err);
    /* a per-channel constant of the conv's shape, computed: stored compactly */
    int32_t spread[4 * 6 * 5];
    for (int i = 0; i < 120; i++)
        spread[i] = i / 30;
    int bias = ww_graph_add_gather(&g, "spread", scale, -1, 4, 6, 5, spread, &err);
    int y = ww_graph_add_add(&g, "conv+bias", bias, c, &err);
    y = ww_graph_add_activation(&g, "relu", y, WW_ACT_RELU, &err);
    int shared = ww_graph_add_conv2d(&g, "conv2", y, 4, 3, 1, 1, 1, w + 36, b, &err);
    int z = ww_graph_add_eltwise(&g, "conv2-b", shared, -1, b, 4, WW_ELT_SUB, 0, &err);
    z = ww_graph_add_eltwise(&g, "z*conv2", z, shared, NULL, 0, WW_ELT_MUL, 0, &err);
    z = ww_graph_add_global_avgpool(&g, "pool", z, &err);
    z = ww_graph_add_linear(&g, "fc", z, 6, wl, NULL, &err);
    z = ww_graph_add_eltwise(&g, "fc-0.5", z, -1, b, 1, WW_ELT_SUB, 0, &err);
    assert_true(z >= 0);

    float *input = random_floats(&rng, 90, -2, 2);
    assert_true(optimized_difference(&g, input) < 1e-5);
    assert_constants_absorbed(&g);
    assert_int_equal(count_live(&g, WW_OP_CONSTANT), 0);
    assert_int_equal(count_live(&g, WW_OP_ACTIVATION), 0); /* relu fused once the add is a bias */
    assert_int_equal(count_live(&g, WW_OP_ELTWISE), 2);    /* conv2's output is read twice */
    const ww_node *conv = &g.nodes[g.values[g.nodes[g.values[shared].producer].inputs[0]].producer];
    assert_int_equal(conv->op, WW_OP_CONV2D);
    assert_int_equal(conv->act, WW_ACT_RELU);
    assert_non_null(conv->bias);
    const ww_node *fc = &g.nodes[g.values[g.output].producer];
    assert_int_equal(fc->op, WW_OP_LINEAR);
    assert_non_null(fc->bias);
    free(input);
    ww_graph_free(&g);
}

static void test_shared_value_is_not_fused(void **state)
{
    (void)state;
    /* a conv whose output feeds two nodes must keep its BN and activation separate */
    ww_rng rng;
    ww_rng_seed(&rng, 9);
    ww_graph g;
    wanwu_error err;
    ww_graph_init(&g);
    int x = ww_graph_add_input(&g, 4, 5, 5, &err);
    float w[4 * 4 * 9];
    ww_rng_fill(&rng, w, sizeof w / sizeof *w, -1, 1);
    int c = ww_graph_add_conv2d(&g, "c", x, 4, 3, 1, 1, 1, w, NULL, &err);
    int r = ww_graph_add_activation(&g, "r", c, WW_ACT_RELU, &err);
    int s = ww_graph_add_activation(&g, "s", c, WW_ACT_SILU, &err);
    int a = ww_graph_add_add(&g, "a", c, r, &err);
    ww_graph_add_add(&g, "b", a, s, &err);
    ww_graph_optimize(&g);
    assert_int_equal(count_live(&g, WW_OP_ACTIVATION), 2);
    assert_int_equal(count_live(&g, WW_OP_CONV2D), 1);
    ww_graph_free(&g);
}

/* A global average pool right after the depthwise conv it reads becomes
 * part of that conv's run (the conv writes the pool's output, which stays
 * in the memory plan); not after a regular conv, nor with a node between
 * them, nor when the pool's input comes from no conv. The results, run
 * through the memory plan, are unchanged. */
static void test_fuse_channel_means(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        ww_rng rng;
        ww_rng_seed(&rng, 120 + (uint64_t)variant);
        ww_graph g;
        wanwu_error err;
        ww_graph_init(&g);
        int x = ww_graph_add_input(&g, 6, 9, 7, &err);
        /* variant 2: a regular conv; otherwise depthwise */
        int h = conv_bn(&g, &rng, x, 6, 3, 1, variant == 2 ? 1 : 6, WW_ACT_SILU);
        /* variant 1: another conv runs between the depthwise one and the pool */
        int other = variant == 1 ? conv_bn(&g, &rng, h, 6, 1, 1, 1, WW_ACT_NONE) : -1;
        int s = ww_graph_add_global_avgpool(&g, "se.pool", variant == 3 ? x : h, &err);
        s = conv_bn(&g, &rng, s, 6, 1, 1, 1, WW_ACT_SIGMOID);
        int y = ww_graph_add_mul_channel(&g, "se", h, s, &err);
        /* read twice, so that no fusion moves that conv past the pool */
        if (other >= 0)
            y = ww_graph_add_add(&g, "other2", ww_graph_add_add(&g, "other", y, other, &err), other,
                                 &err);
        assert_true(y >= 0);
        float *input = random_floats(&rng, ww_value_size(&g.values[x]), -2, 2);
        assert_true(optimized_difference(&g, input) < 1e-5);
        int convs = 0, pools = 0;
        for (int i = 0; i < g.num_nodes; i++) {
            const ww_node *n = &g.nodes[i];
            if (n->removed) continue;
            if (n->op == WW_OP_CONV2D && n->means_value) {
                convs++;
                assert_int_equal(g.values[n->means_value - 1].c, 6);
                assert_int_equal(g.values[n->means_value - 1].h, 1);
            }
            if (n->op == WW_OP_GLOBAL_AVGPOOL && n->means_fused) pools++;
        }
        if (convs != (variant == 0 ? 1 : 0)) fail_msg("variant %d: %d fused", variant, convs);
        assert_int_equal(pools, convs);
        free(input);
        ww_graph_free(&g);
    }
}

static void test_builder_rejects_bad_shapes(void **state)
{
    (void)state;
    ww_graph g;
    wanwu_error err;
    ww_graph_init(&g);
    int x = ww_graph_add_input(&g, 3, 4, 4, &err);
    float w[3 * 3 * 9] = {0};
    /* groups must divide channels */
    assert_int_equal(ww_graph_add_conv2d(&g, "c", x, 3, 3, 1, 1, 2, w, NULL, &err), -1);
    assert_true(strlen(err.message) > 0);
    /* kernel larger than the padded input */
    assert_int_equal(ww_graph_add_conv2d(&g, "c", x, 1, 9, 1, 0, 1, w, NULL, &err), -1);
    int y = ww_graph_add_conv2d(&g, "c", x, 1, 3, 1, 1, 1, w, NULL, &err);
    assert_true(y >= 0);
    assert_int_equal(ww_graph_add_add(&g, "a", x, y, &err), -1); /* 3 vs 1 channels */
    assert_non_null(strstr(err.message, "differ"));
    assert_int_equal(ww_graph_add_linear(&g, "fc", x, 2, w, NULL, &err), -1); /* not flat */
    assert_int_equal(ww_graph_add_maxpool2d(&g, "p", 99, 3, 2, 1, &err), -1);
    ww_graph_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optimize_and_plan_preserve_output),
        cmocka_unit_test(test_shared_value_is_not_fused),
        cmocka_unit_test(test_zoo_ops_preserve_output),
        cmocka_unit_test(test_zoo_reference_ops),
        cmocka_unit_test(test_fuse_channel_shuffle),
        cmocka_unit_test(test_fuse_maxpool),
        cmocka_unit_test(test_fuse_channel_scale),
        cmocka_unit_test(test_fuse_channel_means),
        cmocka_unit_test(test_builder_rejects_bad_shapes),
        cmocka_unit_test(test_fold_constant_operands),
        cmocka_unit_test(test_fold_constant_concat_gather),
        cmocka_unit_test(test_fold_constant_output),
        cmocka_unit_test(test_fold_constant_bias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
