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
