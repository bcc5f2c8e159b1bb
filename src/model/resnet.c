/* torchvision ResNet-18/34 (BasicBlock) from its state-dict key names. */
#include "core/error.h"
#include "model/builder.h"

#include <stdio.h>
#include <string.h>

static int count_blocks(const ww_state_dict *sd, int layer)
{
    char key[64];
    int n = 0;
    for (;;) {
        snprintf(key, sizeof key, "layer%d.%d.conv1.weight", layer, n);
        if (!ww_sd_has(sd, key)) return n;
        n++;
    }
}

static int matches_blocks(const ww_state_dict *sd, const int blocks[4])
{
    if (!ww_sd_has(sd, "conv1.weight") || !ww_sd_has(sd, "fc.weight") ||
        ww_sd_has(sd, "layer1.0.conv3.weight")) /* Bottleneck: resnet50+ */
        return 0;
    for (int l = 0; l < 4; l++)
        if (count_blocks(sd, l + 1) != blocks[l]) return 0;
    return 1;
}

static int basic_block(const ww_state_dict *sd, ww_graph *g, int x, int layer, int block,
                       int stride, wanwu_error *err)
{
    char conv[64], bn[64];
    snprintf(conv, sizeof conv, "layer%d.%d.conv1", layer, block);
    snprintf(bn, sizeof bn, "layer%d.%d.bn1", layer, block);
    int out = ww_build_conv_bn(sd, g, x, conv, bn, stride, 1, WW_ACT_RELU, err);
    if (out < 0) return -1;
    snprintf(conv, sizeof conv, "layer%d.%d.conv2", layer, block);
    snprintf(bn, sizeof bn, "layer%d.%d.bn2", layer, block);
    out = ww_build_conv_bn(sd, g, out, conv, bn, 1, 1, WW_ACT_NONE, err);
    if (out < 0) return -1;

    int identity = x;
    char key[64];
    snprintf(key, sizeof key, "layer%d.%d.downsample.0.weight", layer, block);
    if (ww_sd_has(sd, key)) {
        snprintf(conv, sizeof conv, "layer%d.%d.downsample.0", layer, block);
        snprintf(bn, sizeof bn, "layer%d.%d.downsample.1", layer, block);
        identity = ww_build_conv_bn(sd, g, x, conv, bn, stride, 1, WW_ACT_NONE, err);
        if (identity < 0) return -1;
    } else if (stride != 1 || g->values[x].c != g->values[out].c) {
        ww_error_set(err, WANWU_ERR_FORMAT, "weight file has no tensor '%s' (block changes shape)",
                     key);
        return -1;
    }
    snprintf(key, sizeof key, "layer%d.%d", layer, block);
    int sum = ww_graph_add_add(g, key, out, identity, err);
    if (sum < 0) return -1;
    return ww_graph_add_activation(g, key, sum, WW_ACT_RELU, err);
}

static wanwu_status build_resnet(const ww_state_dict *sd, ww_graph *g, int input_size,
                                 const int blocks[4], wanwu_error *err)
{
    int x = ww_graph_add_input(g, 3, input_size, input_size, err);
    if (x < 0) return err ? err->status : WANWU_ERR_INVALID_ARGUMENT;
    x = ww_build_conv_bn(sd, g, x, "conv1", "bn1", 2, 1, WW_ACT_RELU, err);
    if (x >= 0) x = ww_graph_add_maxpool2d(g, "maxpool", x, 3, 2, 1, err);
    for (int layer = 1; layer <= 4 && x >= 0; layer++) {
        int n = count_blocks(sd, layer);
        if (n != blocks[layer - 1]) {
            ww_error_set(err, WANWU_ERR_FORMAT, "layer%d has %d blocks, expected %d", layer, n,
                         blocks[layer - 1]);
            return WANWU_ERR_FORMAT;
        }
        for (int b = 0; b < n && x >= 0; b++)
            x = basic_block(sd, g, x, layer, b, (layer > 1 && b == 0) ? 2 : 1, err);
    }
    if (x >= 0) x = ww_graph_add_global_avgpool(g, "avgpool", x, err);
    if (x >= 0) x = ww_graph_add_flatten(g, "flatten", x, err);
    if (x >= 0) x = ww_build_linear(sd, g, x, "fc", err);
    return x < 0 ? (err ? err->status : WANWU_ERR_FORMAT) : WANWU_OK;
}

static const int resnet18_blocks[4] = {2, 2, 2, 2};
static const int resnet34_blocks[4] = {3, 4, 6, 3};

static int resnet18_matches(const ww_state_dict *sd)
{
    return matches_blocks(sd, resnet18_blocks);
}

static wanwu_status resnet18_build(const ww_state_dict *sd, ww_graph *g, int input_size,
                                   wanwu_error *err)
{
    return build_resnet(sd, g, input_size, resnet18_blocks, err);
}

static int resnet34_matches(const ww_state_dict *sd)
{
    return matches_blocks(sd, resnet34_blocks);
}

static wanwu_status resnet34_build(const ww_state_dict *sd, ww_graph *g, int input_size,
                                   wanwu_error *err)
{
    return build_resnet(sd, g, input_size, resnet34_blocks, err);
}

const ww_arch ww_arch_resnet18 = {"resnet18", resnet18_matches, resnet18_build, 256,
                                  WW_INTERP_BILINEAR};
const ww_arch ww_arch_resnet34 = {"resnet34", resnet34_matches, resnet34_build, 256,
                                  WW_INTERP_BILINEAR};
