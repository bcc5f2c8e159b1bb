/* Reference channel concatenation: a's channels, then b's. */
#include "ops/ops.h"

#include <string.h>

void ww_concat_channels_ref(int channels_a, int channels_b, int hw, const float *a, const float *b,
                            float *out)
{
    memcpy(out, a, (size_t)channels_a * hw * sizeof *out);
    memcpy(out + (size_t)channels_a * hw, b, (size_t)channels_b * hw * sizeof *out);
}
