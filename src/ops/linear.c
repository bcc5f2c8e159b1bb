/* Reference fully connected layer. */
#include "ops/ops.h"

void ww_linear_ref(int in_features, int out_features, const float *in, const float *weight,
                   const float *bias, ww_activation act, float *out)
{
    for (int o = 0; o < out_features; o++) {
        double sum = bias ? bias[o] : 0.0;
        for (int i = 0; i < in_features; i++)
            sum += (double)weight[(size_t)o * in_features + i] * in[i];
        out[o] = ww_activate((float)sum, act);
    }
}
