/* torchvision ShuffleNetV2 x1.0 from its state-dict key names.
 *
 * conv1 (3x3 stride 2 + BN + ReLU), maxpool 3/2, stages 2-4 of
 * InvertedResidual blocks, conv5 (1x1 + BN + ReLU), global average pool,
 * fc. A block's first unit has stride 2 and two branches (branch1:
 * depthwise + BN, 1x1 + BN + ReLU; branch2: 1x1 + BN + ReLU, depthwise +
 * BN, 1x1 + BN + ReLU) concatenated; the other units split the channels in
 * half, pass the first half through and run branch2 on the second. Every
 * unit ends with a channel shuffle of 2 groups. */
#include <stdio.h>

#include "core/error.h"
#include "model/builder.h"

static const int x1_0_repeats[3] = {4, 8, 4};
static const int x1_0_channels[3] = {116, 232, 464};

static int count_units(const ww_state_dict *sd, int stage)
{
    char key[96];
    int n = 0;
    for (;;) {
        snprintf(key, sizeof key, "stage%d.%d.branch2.0.weight", stage, n);
        if (!ww_sd_has(sd, key)) return n;
        n++;
    }
}

static int shufflenet_v2_x1_0_matches(const ww_state_dict *sd)
{
    if (!ww_sd_has(sd, "conv1.0.weight") || !ww_sd_has(sd, "conv5.0.weight") ||
        !ww_sd_has(sd, "fc.weight") || !ww_sd_has(sd, "stage2.0.branch1.0.weight"))
        return 0;
    for (int s = 0; s < 3; s++) {
        if (count_units(sd, s + 2) != x1_0_repeats[s]) return 0;
        char key[64];
        snprintf(key, sizeof key, "stage%d.0.branch2.5.weight", s + 2);
        const ww_named_tensor *t = ww_state_dict_find(sd, key);
        if (!t || t->ndim != 4 || t->shape[0] * 2 != x1_0_channels[s]) return 0;
    }
    return 1;
}

static int branch2(const ww_state_dict *sd, ww_graph *g, int x, const char *unit, int stride,
                   wanwu_error *err)
{
    char conv[96], bn[96];
    snprintf(conv, sizeof conv, "%s.branch2.0", unit);
    snprintf(bn, sizeof bn, "%s.branch2.1", unit);
    int h = ww_build_conv_bn(sd, g, x, conv, bn, 1, 1, WW_ACT_RELU, err);
    if (h < 0) return -1;
    snprintf(conv, sizeof conv, "%s.branch2.3", unit);
    snprintf(bn, sizeof bn, "%s.branch2.4", unit);
    h = ww_build_conv_bn(sd, g, h, conv, bn, stride, g->values[h].c, WW_ACT_NONE, err);
    if (h < 0) return -1;
    snprintf(conv, sizeof conv, "%s.branch2.5", unit);
    snprintf(bn, sizeof bn, "%s.branch2.6", unit);
    return ww_build_conv_bn(sd, g, h, conv, bn, 1, 1, WW_ACT_RELU, err);
}

static int inverted_residual(const ww_state_dict *sd, ww_graph *g, int x, int stage, int index,
                             wanwu_error *err)
{
    char unit[64], conv[96], bn[96], name[96];
    snprintf(unit, sizeof unit, "stage%d.%d", stage, index);
    int in_c = g->values[x].c;
    int left, right;
    if (index == 0) {
        snprintf(conv, sizeof conv, "%s.branch1.0", unit);
        snprintf(bn, sizeof bn, "%s.branch1.1", unit);
        left = ww_build_conv_bn(sd, g, x, conv, bn, 2, in_c, WW_ACT_NONE, err);
        if (left < 0) return -1;
        snprintf(conv, sizeof conv, "%s.branch1.2", unit);
        snprintf(bn, sizeof bn, "%s.branch1.3", unit);
        left = ww_build_conv_bn(sd, g, left, conv, bn, 1, 1, WW_ACT_RELU, err);
        if (left < 0) return -1;
        right = branch2(sd, g, x, unit, 2, err);
    } else {
        if (in_c % 2 != 0) {
            ww_error_set(err, WANWU_ERR_FORMAT, "%s: cannot split %d channels in half", unit, in_c);
            return -1;
        }
        snprintf(name, sizeof name, "%s.chunk0", unit);
        left = ww_graph_add_slice_channels(g, name, x, 0, in_c / 2, err);
        if (left < 0) return -1;
        snprintf(name, sizeof name, "%s.chunk1", unit);
        right = ww_graph_add_slice_channels(g, name, x, in_c / 2, in_c, err);
        if (right >= 0) right = branch2(sd, g, right, unit, 1, err);
    }
    if (right < 0) return -1;
    snprintf(name, sizeof name, "%s.cat", unit);
    int out = ww_graph_add_concat(g, name, left, right, err);
    snprintf(name, sizeof name, "%s.shuffle", unit);
    if (out >= 0) out = ww_graph_add_channel_shuffle(g, name, out, 2, err);
    return out;
}

static wanwu_status shufflenet_v2_x1_0_build(const ww_state_dict *sd, ww_graph *g, int input_size,
                                             wanwu_error *err)
{
    int x = ww_graph_add_input(g, 3, input_size, input_size, err);
    if (x >= 0) x = ww_build_conv_bn(sd, g, x, "conv1.0", "conv1.1", 2, 1, WW_ACT_RELU, err);
    if (x >= 0) x = ww_graph_add_maxpool2d(g, "maxpool", x, 3, 2, 1, err);
    for (int s = 0; s < 3 && x >= 0; s++) {
        int n = count_units(sd, s + 2);
        if (n != x1_0_repeats[s]) {
            ww_error_set(err, WANWU_ERR_FORMAT, "stage%d has %d units, expected %d", s + 2, n,
                         x1_0_repeats[s]);
            return WANWU_ERR_FORMAT;
        }
        for (int u = 0; u < n && x >= 0; u++) x = inverted_residual(sd, g, x, s + 2, u, err);
    }
    if (x >= 0) x = ww_build_conv_bn(sd, g, x, "conv5.0", "conv5.1", 1, 1, WW_ACT_RELU, err);
    if (x >= 0) x = ww_graph_add_global_avgpool(g, "globalpool", x, err);
    if (x >= 0) x = ww_graph_add_flatten(g, "flatten", x, err);
    if (x >= 0) x = ww_build_linear(sd, g, x, "fc", err);
    return x < 0 ? (err ? err->status : WANWU_ERR_FORMAT) : WANWU_OK;
}

const ww_arch ww_arch_shufflenet_v2_x1_0 = {"shufflenet_v2_x1_0", shufflenet_v2_x1_0_matches,
                                            shufflenet_v2_x1_0_build, 256, WW_INTERP_BILINEAR};
