#include "model/builder.h"

#include "core/error.h"

#include <stdio.h>

int ww_sd_has(const ww_state_dict *sd, const char *name)
{
    return ww_state_dict_find(sd, name) != NULL;
}

int ww_build_conv_bn(const ww_state_dict *sd, ww_graph *g, int input, const char *conv_key,
                     const char *bn_key, int stride, int groups, ww_activation act,
                     wanwu_error *err)
{
    char name[WW_NODE_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s.weight", conv_key);
    const ww_named_tensor *wt = ww_state_dict_find(sd, name);
    if (!wt) {
        ww_error_set(err, WANWU_ERR_FORMAT, "weight file has no tensor '%s'", name);
        return -1;
    }
    int in_c = g->values[input].c;
    int64_t wshape[4] = {-1, in_c / groups, -1, -1};
    const float *w = ww_sd_tensor(sd, name, 4, wshape, err);
    if (!w) return -1;
    int out_c = (int)wt->shape[0], kernel = (int)wt->shape[2];
    if (wt->shape[3] != kernel || kernel % 2 == 0 || out_c % groups != 0) {
        ww_error_set(err, WANWU_ERR_FORMAT, "tensor '%s': unexpected kernel %lldx%lld", name,
                     (long long)wt->shape[2], (long long)wt->shape[3]);
        return -1;
    }
    int v = ww_graph_add_conv2d(g, conv_key, input, out_c, kernel, stride, (kernel - 1) / 2, groups,
                                w, NULL, err);
    if (v < 0) return -1;

    const float *bn[4];
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t cshape[1] = {out_c};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bn_key, parts[i]);
        bn[i] = ww_sd_tensor(sd, name, 1, cshape, err);
        if (!bn[i]) return -1;
    }
    v = ww_graph_add_batchnorm(g, bn_key, v, bn[0], bn[1], bn[2], bn[3], WW_TORCHVISION_BN_EPS,
                               err);
    if (v < 0 || act == WW_ACT_NONE) return v;
    return ww_graph_add_activation(g, bn_key, v, act, err);
}

int ww_build_linear(const ww_state_dict *sd, ww_graph *g, int input, const char *key,
                    wanwu_error *err)
{
    char name[WW_NODE_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s.weight", key);
    int in_features = g->values[input].c;
    int64_t wshape[2] = {-1, in_features};
    const float *w = ww_sd_tensor(sd, name, 2, wshape, err);
    if (!w) return -1;
    int out_features = (int)ww_state_dict_find(sd, name)->shape[0];
    snprintf(name, sizeof name, "%s.bias", key);
    int64_t bshape[1] = {out_features};
    const float *b = ww_sd_tensor(sd, name, 1, bshape, err);
    if (!b) return -1;
    return ww_graph_add_linear(g, key, input, out_features, w, b, err);
}

int ww_build_conv_bias(const ww_state_dict *sd, ww_graph *g, int input, const char *key, int stride,
                       int groups, wanwu_error *err)
{
    char name[WW_NODE_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s.weight", key);
    int64_t wshape[4] = {-1, g->values[input].c / groups, -1, -1};
    const float *w = ww_sd_tensor(sd, name, 4, wshape, err);
    if (!w) return -1;
    const ww_named_tensor *wt = ww_state_dict_find(sd, name);
    int out_c = (int)wt->shape[0], kernel = (int)wt->shape[2];
    if (wt->shape[3] != kernel || kernel % 2 == 0 || out_c % groups != 0) {
        ww_error_set(err, WANWU_ERR_FORMAT, "tensor '%s': unexpected kernel %lldx%lld", name,
                     (long long)wt->shape[2], (long long)wt->shape[3]);
        return -1;
    }
    snprintf(name, sizeof name, "%s.bias", key);
    int64_t bshape[1] = {out_c};
    const float *b = ww_sd_tensor(sd, name, 1, bshape, err);
    if (!b) return -1;
    return ww_graph_add_conv2d(g, key, input, out_c, kernel, stride, (kernel - 1) / 2, groups, w, b,
                               err);
}

int ww_build_squeeze_excitation(const ww_state_dict *sd, ww_graph *g, int input, const char *key,
                                ww_activation act, wanwu_error *err)
{
    char name[WW_NODE_NAME_MAX];
    snprintf(name, sizeof name, "%s.avgpool", key);
    int s = ww_graph_add_global_avgpool(g, name, input, err);
    snprintf(name, sizeof name, "%s.fc1", key);
    if (s >= 0) s = ww_build_conv_bias(sd, g, s, name, 1, 1, err);
    if (s >= 0) s = ww_graph_add_activation(g, name, s, act, err);
    snprintf(name, sizeof name, "%s.fc2", key);
    if (s >= 0) s = ww_build_conv_bias(sd, g, s, name, 1, 1, err);
    if (s >= 0 && g->values[s].c != g->values[input].c) {
        ww_error_set(err, WANWU_ERR_FORMAT,
                     "tensor '%s.weight' has %d output channels, expected %d", name, g->values[s].c,
                     g->values[input].c);
        return -1;
    }
    if (s >= 0) s = ww_graph_add_activation(g, name, s, WW_ACT_SIGMOID, err);
    if (s >= 0) s = ww_graph_add_mul_channel(g, key, input, s, err);
    return s;
}
