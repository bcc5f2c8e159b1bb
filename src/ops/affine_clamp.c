/* Reference clamp of an affine function (Clip, HardSigmoid). */
#include "ops/ops.h"

void ww_affine_clamp_ref(size_t n, const float *in, float scale, float shift, float lo, float hi,
                         float *out)
{
    for (size_t i = 0; i < n; i++) {
        float v = scale * in[i] + shift;
        out[i] = v < lo ? lo : (v > hi ? hi : v);
    }
}
