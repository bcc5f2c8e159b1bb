/* Micro-benchmark of the depthwise convolutions of MobileNetV2 and
 * EfficientNet-B0 (not a test): best time per layer over several
 * repetitions, since the machine is shared. Usage:
 *   tool_depthwise_bench [avx512|avx2|portable] [threads] [seconds per layer] [layer]
 * Output: one line per layer, shape and best ms / GFLOP/s. */
#define _POSIX_C_SOURCE 200809L
#include "core/threadpool.h"
#include "ops/ops.h"
#include "tool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct layer {
    int c, h, k, stride, residual;
    ww_activation act;
} layer;

/* The distinct depthwise layers of the two models (input channels, input
 * map, kernel, stride). */
static const layer layers[] = {
    {32, 112, 3, 1, 0, WW_ACT_RELU6}, {96, 112, 3, 2, 0, WW_ACT_RELU6},
    {144, 56, 3, 1, 0, WW_ACT_RELU6}, {144, 56, 3, 2, 0, WW_ACT_RELU6},
    {192, 28, 3, 1, 0, WW_ACT_RELU6}, {192, 28, 3, 2, 0, WW_ACT_RELU6},
    {384, 14, 3, 1, 0, WW_ACT_RELU6}, {576, 14, 3, 1, 0, WW_ACT_RELU6},
    {576, 14, 3, 2, 0, WW_ACT_RELU6}, {960, 7, 3, 1, 0, WW_ACT_RELU6},
    {144, 56, 5, 2, 0, WW_ACT_SILU},  {240, 28, 5, 1, 0, WW_ACT_SILU},
    {240, 28, 3, 2, 0, WW_ACT_SILU},  {480, 14, 3, 1, 0, WW_ACT_SILU},
    {672, 14, 5, 1, 0, WW_ACT_SILU},  {672, 14, 5, 2, 0, WW_ACT_SILU},
    {1152, 7, 5, 1, 0, WW_ACT_SILU},  {1152, 7, 3, 1, 0, WW_ACT_SILU},
};

int main(int argc, char **argv)
{
    ww_isa isa = ww_tool_parse_isa(argc > 1 ? argv[1] : NULL);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    double budget = argc > 3 ? atof(argv[3]) : 0.3;
    int only = argc > 4 ? atoi(argv[4]) : -1; /* one layer by index, or all */
    wanwu_error err = {0};
    ww_threadpool *pool = NULL;
    if (threads > 1 && ww_threadpool_create(threads, &pool, &err) != WANWU_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double total = 0;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        if (only >= 0 && (size_t)only != i) continue;
        int pad = l->k / 2;
        ww_conv2d_shape s = {.in_c = l->c,
                             .in_h = l->h,
                             .in_w = l->h,
                             .out_c = l->c,
                             .kernel_h = l->k,
                             .kernel_w = l->k,
                             .stride_h = l->stride,
                             .stride_w = l->stride,
                             .pad_top = pad,
                             .pad_left = pad,
                             .pad_bottom = pad,
                             .pad_right = pad,
                             .dilation_h = 1,
                             .dilation_w = 1,
                             .groups = l->c};
        s.out_h = ww_window_out_dim(l->h, l->k, l->stride, pad, pad, 1);
        s.out_w = s.out_h;
        size_t in_n = (size_t)l->c * l->h * l->h, out_n = (size_t)l->c * s.out_h * s.out_w;
        float *in = malloc(in_n * sizeof *in), *out = malloc(out_n * sizeof *out);
        float *w = malloc((size_t)l->c * l->k * l->k * sizeof *w);
        float *bias = malloc((size_t)l->c * sizeof *bias);
        ww_tool_fill(in, in_n, 1);
        ww_tool_fill(w, (size_t)l->c * l->k * l->k, 2);
        ww_tool_fill(bias, (size_t)l->c, 3);
        ww_conv2d *conv = NULL;
        if (ww_conv2d_create_isa(&s, w, bias, l->act, isa, &conv, &err) != WANWU_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        size_t scratch_n = ww_conv2d_scratch_floats(conv, threads);
        float *scratch = malloc((scratch_n + 1) * sizeof *scratch);
        double flops = 2.0 * out_n * l->k * l->k;
        double best = 1e30, start = ww_tool_now_seconds();
        while (ww_tool_now_seconds() - start < budget) {
            double t0 = ww_tool_now_seconds();
            for (int r = 0; r < 10; r++)
                ww_conv2d_run(conv, in, NULL, out, scratch, pool);
            double t = (ww_tool_now_seconds() - t0) / 10;
            if (t < best) best = t;
        }
        total += best;
        printf("%4dx%3dx%3d k%d s%d  %7.4f ms  %6.1f GF/s\n", l->c, l->h, l->h, l->k, l->stride,
               best * 1e3, flops / best * 1e-9);
        ww_conv2d_free(conv);
        free(in);
        free(out);
        free(w);
        free(bias);
        free(scratch);
    }
    printf("sum %.4f ms\n", total * 1e3);
    ww_threadpool_free(pool);
    return 0;
}
