/* Reference element-wise addition with activation. */
#include "ops/ops.h"

void ww_add_ref(size_t n, const float *a, const float *b, ww_activation act, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ww_activate(a[i] + b[i], act);
}
