/* Helpers shared by the torchvision architecture builders. */
#ifndef WW_MODEL_BUILDER_H
#define WW_MODEL_BUILDER_H

#include "model/model.h"

/* torchvision's BatchNorm2d default, which every supported architecture
 * uses; it is not stored in a .pth. */
#define WW_TORCHVISION_BN_EPS 1e-5f

/* conv `<conv_key>.weight` (no bias) then BatchNorm `<bn_key>.*`, then an
 * optional activation. Channels and kernel size come from the weight's
 * shape; `groups` must divide them. Returns the value id or -1. */
int ww_build_conv_bn(const ww_state_dict *sd, ww_graph *g, int input, const char *conv_key,
                     const char *bn_key, int stride, int groups, ww_activation act,
                     wanwu_error *err);

/* conv `<key>.weight` with `<key>.bias` (no BatchNorm), padding (k-1)/2. */
int ww_build_conv_bias(const ww_state_dict *sd, ww_graph *g, int input, const char *key, int stride,
                       int groups, wanwu_error *err);

/* Squeeze-and-excitation as torchvision's SqueezeExcitation with
 * `<key>.fc1` and `<key>.fc2`: global average pool, 1x1 conv, `act`,
 * 1x1 conv, sigmoid, channel scale of the input. */
int ww_build_squeeze_excitation(const ww_state_dict *sd, ww_graph *g, int input, const char *key,
                                ww_activation act, wanwu_error *err);

/* Linear from `<key>.weight` [out, in] and `<key>.bias`. */
int ww_build_linear(const ww_state_dict *sd, ww_graph *g, int input, const char *key,
                    wanwu_error *err);

/* True when the state dict has a tensor with this name. */
int ww_sd_has(const ww_state_dict *sd, const char *name);

#endif
