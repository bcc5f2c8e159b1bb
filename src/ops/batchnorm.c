/* Reference inference-mode batch normalization. */
#include "ops/ops.h"

#include <math.h>

void ww_batchnorm_ref(int channels, int hw, const float *in, const float *gamma, const float *beta,
                      const float *mean, const float *var, float eps, float *out)
{
    for (int c = 0; c < channels; c++) {
        double scale = gamma[c] / sqrt((double)var[c] + eps);
        for (int i = 0; i < hw; i++) {
            size_t k = (size_t)c * hw + i;
            out[k] = (float)((in[k] - (double)mean[c]) * scale + beta[c]);
        }
    }
}
