/* torchvision EfficientNet-B0 from its state-dict key names.
 *
 * features.0: conv 3x3 stride 2 + BN + SiLU; features.1..7: stages of
 * MBConv blocks (features.S.B.block.*: [expand 1x1 + BN + SiLU,] depthwise
 * + BN + SiLU, squeeze-and-excitation (SiLU inside), project 1x1 + BN),
 * with a residual add when the block keeps the shape (stochastic depth is
 * the identity at inference); features.8: conv 1x1 + BN + SiLU; then
 * global average pool, dropout (identity) and classifier.1. Channels and
 * kernel sizes come from the weights; strides from torchvision's table.
 * BatchNorm eps is torchvision's default 1e-5 for B0 (only B5-B7 and the
 * V2 family use 1e-3). */
#include <stdio.h>

#include "core/error.h"
#include "model/builder.h"

#define STAGES 7

/* EfficientNet-B0 (width 1.0, depth 1.0): blocks and first-block stride per stage */
static const int b0_blocks[STAGES] = {1, 2, 2, 3, 3, 4, 1};
static const int stage_strides[STAGES] = {1, 2, 2, 2, 1, 2, 1};

static int count_blocks(const ww_state_dict *sd, int stage)
{
    char key[96];
    int n = 0;
    for (;;) {
        /* the depthwise conv is block.0 (no expansion) or block.1 */
        snprintf(key, sizeof key, "features.%d.%d.block.0.0.weight", stage, n);
        if (!ww_sd_has(sd, key)) return n;
        n++;
    }
}

static int efficientnet_b0_matches(const ww_state_dict *sd)
{
    if (!ww_sd_has(sd, "features.0.0.weight") || !ww_sd_has(sd, "features.8.0.weight") ||
        ww_sd_has(sd, "features.9.0.weight") || !ww_sd_has(sd, "classifier.1.weight") ||
        !ww_sd_has(sd, "features.1.0.block.1.fc1.weight"))
        return 0;
    for (int s = 0; s < STAGES; s++)
        if (count_blocks(sd, s + 1) != b0_blocks[s]) return 0;
    return 1;
}

static int mbconv(const ww_state_dict *sd, ww_graph *g, int x, int stage, int block, int stride,
                  wanwu_error *err)
{
    char conv[96], bn[96], key[128];
    int in_c = g->values[x].c;
    /* with expansion the block is [expand, depthwise, se, project], else [depthwise, se, project] */
    snprintf(key, sizeof key, "features.%d.%d.block.3.0.weight", stage, block);
    int expanded = ww_sd_has(sd, key);
    int h = x, part = 0;
    if (expanded) {
        snprintf(conv, sizeof conv, "features.%d.%d.block.0.0", stage, block);
        snprintf(bn, sizeof bn, "features.%d.%d.block.0.1", stage, block);
        h = ww_build_conv_bn(sd, g, h, conv, bn, 1, 1, WW_ACT_SILU, err);
        if (h < 0) return -1;
        part = 1;
    }
    snprintf(conv, sizeof conv, "features.%d.%d.block.%d.0", stage, block, part);
    snprintf(bn, sizeof bn, "features.%d.%d.block.%d.1", stage, block, part);
    h = ww_build_conv_bn(sd, g, h, conv, bn, stride, g->values[h].c, WW_ACT_SILU, err);
    if (h < 0) return -1;
    snprintf(key, sizeof key, "features.%d.%d.block.%d", stage, block, part + 1);
    h = ww_build_squeeze_excitation(sd, g, h, key, WW_ACT_SILU, err);
    if (h < 0) return -1;
    snprintf(conv, sizeof conv, "features.%d.%d.block.%d.0", stage, block, part + 2);
    snprintf(bn, sizeof bn, "features.%d.%d.block.%d.1", stage, block, part + 2);
    h = ww_build_conv_bn(sd, g, h, conv, bn, 1, 1, WW_ACT_NONE, err);
    if (h < 0) return -1;
    if (stride == 1 && in_c == g->values[h].c) {
        snprintf(key, sizeof key, "features.%d.%d", stage, block);
        h = ww_graph_add_add(g, key, h, x, err);
    }
    return h;
}

static wanwu_status efficientnet_b0_build(const ww_state_dict *sd, ww_graph *g, int input_size,
                                          wanwu_error *err)
{
    int x = ww_graph_add_input(g, 3, input_size, input_size, err);
    if (x >= 0)
        x = ww_build_conv_bn(sd, g, x, "features.0.0", "features.0.1", 2, 1, WW_ACT_SILU, err);
    for (int s = 0; s < STAGES && x >= 0; s++) {
        int n = count_blocks(sd, s + 1);
        if (n != b0_blocks[s]) {
            ww_error_set(err, WANWU_ERR_FORMAT, "features.%d has %d blocks, expected %d", s + 1, n,
                         b0_blocks[s]);
            return WANWU_ERR_FORMAT;
        }
        for (int b = 0; b < n && x >= 0; b++)
            x = mbconv(sd, g, x, s + 1, b, b == 0 ? stage_strides[s] : 1, err);
    }
    if (x >= 0)
        x = ww_build_conv_bn(sd, g, x, "features.8.0", "features.8.1", 1, 1, WW_ACT_SILU, err);
    if (x >= 0) x = ww_graph_add_global_avgpool(g, "avgpool", x, err);
    if (x >= 0) x = ww_graph_add_flatten(g, "flatten", x, err);
    if (x >= 0) x = ww_graph_add_dropout(g, "classifier.0", x, err);
    if (x >= 0) x = ww_build_linear(sd, g, x, "classifier.1", err);
    return x < 0 ? (err ? err->status : WANWU_ERR_FORMAT) : WANWU_OK;
}

const ww_arch ww_arch_efficientnet_b0 = {"efficientnet_b0", efficientnet_b0_matches,
                                         efficientnet_b0_build, 256, WW_INTERP_BICUBIC};
