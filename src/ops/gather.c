/* Reference index gather (data movement planned at load time). */
#include "ops/ops.h"

void ww_gather_ref(size_t n, const int32_t *index, const float *a, size_t size_a, const float *b,
                   float *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)index[i];
        out[i] = k < size_a ? a[k] : b[k - size_a];
    }
}
