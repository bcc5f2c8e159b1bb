/* Reference global average pooling. */
#include "ops/ops.h"

void ww_global_avgpool_ref(int channels, int hw, const float *in, float *out)
{
    for (int c = 0; c < channels; c++) {
        double sum = 0.0;
        for (int i = 0; i < hw; i++)
            sum += in[(size_t)c * hw + i];
        out[c] = (float)(sum / hw);
    }
}
