/* Reference channel slice (torch.chunk / ONNX Split and Slice on axis 1). */
#include "ops/ops.h"

#include <string.h>

void ww_slice_channels_ref(int begin, int end, int hw, const float *in, float *out)
{
    memcpy(out, in + (size_t)begin * hw, (size_t)(end - begin) * hw * sizeof *out);
}
