/* Reference channel shuffle: view(groups, C/groups), transpose, flatten. */
#include "ops/ops.h"

#include <string.h>

void ww_channel_shuffle_ref(int channels, int groups, int hw, const float *in, float *out)
{
    int per_group = channels / groups;
    for (int g = 0; g < groups; g++)
        for (int j = 0; j < per_group; j++)
            memcpy(out + ((size_t)j * groups + g) * hw, in + ((size_t)g * per_group + j) * hw,
                   (size_t)hw * sizeof *out);
}

void ww_channel_shuffle_range_ref(int channels_a, int channels_b, int groups, int begin, int end,
                                  int hw, const float *a, const float *b, float *out)
{
    int per_group = (channels_a + channels_b) / groups;
    for (int j = begin; j < end; j++) {
        /* output channel j = (index within group) * groups + group */
        int src = (j % groups) * per_group + j / groups;
        const float *from =
            src < channels_a ? a + (size_t)src * hw : b + (size_t)(src - channels_a) * hw;
        memcpy(out + (size_t)(j - begin) * hw, from, (size_t)hw * sizeof *out);
    }
}
