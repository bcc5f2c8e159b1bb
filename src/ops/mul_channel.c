/* Reference per-channel scale (squeeze-and-excitation's last step). */
#include "ops/ops.h"

void ww_mul_channel_ref(int channels, int hw, const float *in, const float *scale, float *out)
{
    for (int c = 0; c < channels; c++)
        for (int i = 0; i < hw; i++)
            out[(size_t)c * hw + i] = in[(size_t)c * hw + i] * scale[c];
}
