/* Reference stand-alone activation. */
#include "ops/ops.h"

void ww_activation_ref(size_t n, const float *in, ww_activation act, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = ww_activate(in[i], act);
}
