/* Reference average pooling. The divisor is the number of window cells
 * inside the input, or, with count_include_pad, inside the padded input. */
#include "ops/ops.h"

void ww_avgpool2d_ref(const ww_pool2d_shape *s, int count_include_pad, const float *in, float *out)
{
    for (int c = 0; c < s->channels; c++) {
        const float *plane = in + (size_t)c * s->in_h * s->in_w;
        for (int oy = 0; oy < s->out_h; oy++) {
            for (int ox = 0; ox < s->out_w; ox++) {
                float sum = 0.0f;
                int inside = 0, padded = 0;
                for (int ky = 0; ky < s->kernel_h; ky++) {
                    int iy = oy * s->stride_h - s->pad_top + ky;
                    if (iy >= s->in_h + s->pad_bottom) continue;
                    for (int kx = 0; kx < s->kernel_w; kx++) {
                        int ix = ox * s->stride_w - s->pad_left + kx;
                        if (ix >= s->in_w + s->pad_right) continue;
                        padded++;
                        if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) continue;
                        sum += plane[(size_t)iy * s->in_w + ix];
                        inside++;
                    }
                }
                int count = count_include_pad ? padded : inside;
                out[((size_t)c * s->out_h + oy) * s->out_w + ox] = count ? sum / (float)count : 0.0f;
            }
        }
    }
}
