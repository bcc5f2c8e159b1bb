/* Reference softmax, shifted by the maximum so exp never overflows. */
#include "ops/ops.h"

#include <math.h>

void ww_softmax_ref(int n, const float *in, float *out)
{
    if (n <= 0) return;
    float max = in[0];
    for (int i = 1; i < n; i++)
        if (in[i] > max) max = in[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double e = exp((double)in[i] - max);
        out[i] = (float)e;
        sum += e;
    }
    for (int i = 0; i < n; i++)
        out[i] = (float)(out[i] / sum);
}
