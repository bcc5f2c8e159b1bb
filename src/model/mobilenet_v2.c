/* torchvision MobileNetV2 from its state-dict key names. Channel counts
 * come from the weights (so width multipliers work); strides, which a
 * state dict does not store, come from the architecture's block table. */
#include "core/error.h"
#include "model/builder.h"

#include <stdio.h>

/* Strides of features.1 .. features.17 (torchvision's inverted residual
 * setting t,c,n,s expanded per block). */
static const int block_strides[17] = {1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1};

static int mobilenet_v2_matches(const ww_state_dict *sd)
{
    return ww_sd_has(sd, "features.0.0.weight") && ww_sd_has(sd, "features.1.conv.0.0.weight") &&
           ww_sd_has(sd, "features.17.conv.0.0.weight") && ww_sd_has(sd, "features.18.0.weight") &&
           !ww_sd_has(sd, "features.19.0.weight") && ww_sd_has(sd, "classifier.1.weight");
}

static int inverted_residual(const ww_state_dict *sd, ww_graph *g, int x, int index, int stride,
                             wanwu_error *err)
{
    char conv[64], bn[64], key[80];
    int in_c = g->values[x].c;
    /* expand_ratio 1 blocks have [dw, pw-linear, bn]; others [pw, dw, pw-linear, bn] */
    snprintf(key, sizeof key, "features.%d.conv.3.weight", index);
    int expanded = ww_sd_has(sd, key);
    int h = x, part = 0;
    if (expanded) {
        snprintf(conv, sizeof conv, "features.%d.conv.0.0", index);
        snprintf(bn, sizeof bn, "features.%d.conv.0.1", index);
        h = ww_build_conv_bn(sd, g, h, conv, bn, 1, 1, WW_ACT_RELU6, err);
        if (h < 0) return -1;
        part = 1;
    }
    snprintf(conv, sizeof conv, "features.%d.conv.%d.0", index, part);
    snprintf(bn, sizeof bn, "features.%d.conv.%d.1", index, part);
    h = ww_build_conv_bn(sd, g, h, conv, bn, stride, g->values[h].c, WW_ACT_RELU6, err);
    if (h < 0) return -1;
    snprintf(conv, sizeof conv, "features.%d.conv.%d", index, part + 1);
    snprintf(bn, sizeof bn, "features.%d.conv.%d", index, part + 2);
    h = ww_build_conv_bn(sd, g, h, conv, bn, 1, 1, WW_ACT_NONE, err);
    if (h < 0) return -1;
    if (stride == 1 && in_c == g->values[h].c) {
        snprintf(key, sizeof key, "features.%d", index);
        h = ww_graph_add_add(g, key, x, h, err);
    }
    return h;
}

static wanwu_status mobilenet_v2_build(const ww_state_dict *sd, ww_graph *g, int input_size,
                                       wanwu_error *err)
{
    int x = ww_graph_add_input(g, 3, input_size, input_size, err);
    if (x >= 0)
        x = ww_build_conv_bn(sd, g, x, "features.0.0", "features.0.1", 2, 1, WW_ACT_RELU6, err);
    for (int i = 1; i <= 17 && x >= 0; i++)
        x = inverted_residual(sd, g, x, i, block_strides[i - 1], err);
    if (x >= 0)
        x = ww_build_conv_bn(sd, g, x, "features.18.0", "features.18.1", 1, 1, WW_ACT_RELU6, err);
    if (x >= 0) x = ww_graph_add_global_avgpool(g, "avgpool", x, err);
    if (x >= 0) x = ww_graph_add_flatten(g, "flatten", x, err);
    if (x >= 0) x = ww_graph_add_dropout(g, "classifier.0", x, err);
    if (x >= 0) x = ww_build_linear(sd, g, x, "classifier.1", err);
    return x < 0 ? (err ? err->status : WANWU_ERR_FORMAT) : WANWU_OK;
}

const ww_arch ww_arch_mobilenet_v2 = {"mobilenet_v2", mobilenet_v2_matches, mobilenet_v2_build, 256,
                                      WW_INTERP_BILINEAR};
