/* Reference max pooling; padded cells are skipped (they act as -inf). */
#include "ops/ops.h"

#include <math.h>

void ww_maxpool2d_ref(const ww_pool2d_shape *s, const float *in, float *out)
{
    for (int c = 0; c < s->channels; c++) {
        const float *plane = in + (size_t)c * s->in_h * s->in_w;
        for (int oy = 0; oy < s->out_h; oy++) {
            for (int ox = 0; ox < s->out_w; ox++) {
                float best = -INFINITY;
                for (int ky = 0; ky < s->kernel_h; ky++) {
                    int iy = oy * s->stride_h - s->pad_top + ky;
                    if (iy < 0 || iy >= s->in_h) continue;
                    for (int kx = 0; kx < s->kernel_w; kx++) {
                        int ix = ox * s->stride_w - s->pad_left + kx;
                        if (ix < 0 || ix >= s->in_w) continue;
                        float v = plane[(size_t)iy * s->in_w + ix];
                        if (v > best) best = v;
                    }
                }
                out[((size_t)c * s->out_h + oy) * s->out_w + ox] = best;
            }
        }
    }
}
