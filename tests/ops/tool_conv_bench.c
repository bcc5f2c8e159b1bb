/* Micro-benchmark of whole GEMM-based convolutions (not a test): best time
 * of ww_conv2d_run on the 1x1 and im2col layers of the benchmark models,
 * so that packing, loop order and edge tiles count as in a real run.
 * Reports the best of several repetitions, since the machine is shared.
 * Between runs it can read through a buffer of `flush` MiB first (untimed),
 * evicting the weights from cache as the other layers of a model do.
 * Usage: tool_conv_bench [avx512|avx2|portable] [threads] [seconds per layer]
 *                        [flush MiB] [name filter] */
#define _POSIX_C_SOURCE 200809L
#include "core/threadpool.h"
#include "ops/ops.h"
#include "tool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct layer {
    const char *name;
    int in_c, in_hw, out_c, k, stride, pad;
} layer;

static const layer layers[] = {
    {"mbv2 features.0 stem", 3, 224, 32, 3, 2, 1},
    {"shufflenet conv1 stem", 3, 224, 24, 3, 2, 1},
    {"resnet conv1 stem", 3, 224, 64, 7, 2, 3},
    {"resnet layer2.0.conv1", 64, 56, 128, 3, 2, 1},
    {"resnet layer3.0.conv1", 128, 28, 256, 3, 2, 1},
    {"resnet layer4.0.conv1", 256, 14, 512, 3, 2, 1},
    {"resnet layer2 downsample", 64, 56, 128, 1, 2, 0},
    {"resnet layer4 downsample", 256, 14, 512, 1, 2, 0},
    {"mbv2 features.2.conv.0", 16, 112, 96, 1, 1, 0},
    {"mbv2 features.3.conv.2", 144, 56, 24, 1, 1, 0},
    {"mbv2 features.12.conv.0", 96, 14, 576, 1, 1, 0},
    {"mbv2 features.12.conv.2", 576, 14, 96, 1, 1, 0},
    {"mbv2 features.8.conv.2", 384, 14, 64, 1, 1, 0},
    {"mbv2 features.14.conv.2", 576, 7, 160, 1, 1, 0},
    {"mbv2 features.15.conv.0", 160, 7, 960, 1, 1, 0},
    {"mbv2 features.15.conv.2", 960, 7, 160, 1, 1, 0},
    {"mbv2 features.17.conv.2", 960, 7, 320, 1, 1, 0},
    {"mbv2 features.18.0", 320, 7, 1280, 1, 1, 0},
    {"effb0 7x7 expand", 192, 7, 1152, 1, 1, 0},
    {"effb0 7x7 project", 1152, 7, 192, 1, 1, 0},
    {"effb0 7x7 project 320", 1152, 7, 320, 1, 1, 0},
    {"effb0 14x14 expand", 112, 14, 672, 1, 1, 0},
    {"effb0 14x14 project", 672, 14, 112, 1, 1, 0},
};

int main(int argc, char **argv)
{
    ww_isa isa = ww_tool_parse_isa(argc > 1 ? argv[1] : NULL);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    double budget = argc > 3 ? atof(argv[3]) : 0.3;
    size_t flush_n = argc > 4 ? (size_t)(atof(argv[4]) * 262144.0) : 0;
    const char *filter = argc > 5 ? argv[5] : NULL;
    float *flush = flush_n ? calloc(flush_n, sizeof *flush) : NULL;
    volatile float sink = 0.0f;
    if (flush) memset(flush, 1, flush_n * sizeof *flush); /* fault the pages in up front */
    ww_threadpool *pool = NULL;
    wanwu_error err = {0};
    if (threads > 1 && ww_threadpool_create(threads, &pool, &err) != WANWU_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer *l = &layers[i];
        if (filter && !strstr(l->name, filter)) continue;
        ww_conv2d_shape s = {.in_c = l->in_c,
                             .in_h = l->in_hw,
                             .in_w = l->in_hw,
                             .out_c = l->out_c,
                             .kernel_h = l->k,
                             .kernel_w = l->k,
                             .stride_h = l->stride,
                             .stride_w = l->stride,
                             .pad_top = l->pad,
                             .pad_left = l->pad,
                             .pad_bottom = l->pad,
                             .pad_right = l->pad,
                             .dilation_h = 1,
                             .dilation_w = 1,
                             .groups = 1};
        s.out_h = ww_window_out_dim(s.in_h, s.kernel_h, s.stride_h, s.pad_top, s.pad_bottom, 1);
        s.out_w = ww_window_out_dim(s.in_w, s.kernel_w, s.stride_w, s.pad_left, s.pad_right, 1);
        size_t in_n = (size_t)s.in_c * s.in_h * s.in_w;
        size_t out_n = (size_t)s.out_c * s.out_h * s.out_w;
        size_t w_n = (size_t)s.out_c * s.in_c * s.kernel_h * s.kernel_w;
        float *in = malloc(in_n * sizeof *in), *out = malloc(out_n * sizeof *out);
        float *weight = malloc(w_n * sizeof *weight), *bias = malloc(s.out_c * sizeof *bias);
        ww_tool_fill(in, in_n, 1);
        ww_tool_fill(weight, w_n, 2);
        ww_tool_fill(bias, (size_t)s.out_c, 3);
        ww_conv2d *conv = NULL;
        if (ww_conv2d_create_isa(&s, weight, bias, WW_ACT_RELU, isa, &conv, &err) != WANWU_OK) {
            fprintf(stderr, "%s: %s\n", l->name, err.message);
            return 1;
        }
        float *scratch = malloc(ww_conv2d_scratch_floats(conv, threads) * sizeof *scratch + 64);
        double flops = 2.0 * w_n * s.out_h * s.out_w;
        double best = 1e30, start = ww_tool_now_seconds();
        while (ww_tool_now_seconds() - start < budget) {
            /* written, not just read: untouched pages all map one zero page */
            for (size_t j = 0; j < flush_n; j += 16)
                flush[j] += 1.0f;
            if (flush) sink += flush[0];
            double t0 = ww_tool_now_seconds();
            ww_conv2d_run(conv, in, NULL, out, scratch, pool);
            double t = ww_tool_now_seconds() - t0;
            if (t < best) best = t;
        }
        printf("%-26s %4dx%3dx%3d -> %4dx%3dx%3d k%d s%d  %7.3f ms %6.1f GFLOP/s\n", l->name,
               s.in_c, s.in_h, s.in_w, s.out_c, s.out_h, s.out_w, l->k, l->stride, best * 1e3,
               flops / best * 1e-9);
        free(scratch);
        ww_conv2d_free(conv);
        free(in);
        free(out);
        free(weight);
        free(bias);
    }
    ww_threadpool_free(pool);
    free(flush);
    return 0;
}
