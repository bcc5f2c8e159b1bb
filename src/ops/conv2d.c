/* Reference convolution: direct loops, double accumulation. */
#include "ops/ops.h"

void ww_conv2d_ref(const ww_conv2d_shape *s, const float *in, const float *weight,
                   const float *bias, const float *residual, ww_activation act, float *out)
{
    int in_per_group = s->in_c / s->groups;
    int out_per_group = s->out_c / s->groups;
    for (int oc = 0; oc < s->out_c; oc++) {
        int first_ic = (oc / out_per_group) * in_per_group;
        const float *w_oc = weight + (size_t)oc * in_per_group * s->kernel_h * s->kernel_w;
        for (int oy = 0; oy < s->out_h; oy++) {
            for (int ox = 0; ox < s->out_w; ox++) {
                double sum = bias ? bias[oc] : 0.0;
                for (int i = 0; i < in_per_group; i++) {
                    const float *plane = in + (size_t)(first_ic + i) * s->in_h * s->in_w;
                    for (int ky = 0; ky < s->kernel_h; ky++) {
                        int iy = oy * s->stride_h - s->pad_top + ky * s->dilation_h;
                        if (iy < 0 || iy >= s->in_h) continue; /* padding contributes 0 */
                        for (int kx = 0; kx < s->kernel_w; kx++) {
                            int ix = ox * s->stride_w - s->pad_left + kx * s->dilation_w;
                            if (ix < 0 || ix >= s->in_w) continue;
                            float w = w_oc[((size_t)i * s->kernel_h + ky) * s->kernel_w + kx];
                            sum += (double)w * plane[(size_t)iy * s->in_w + ix];
                        }
                    }
                }
                size_t o = ((size_t)oc * s->out_h + oy) * s->out_w + ox;
                if (residual) sum += residual[o];
                out[o] = ww_activate((float)sum, act);
            }
        }
    }
}
