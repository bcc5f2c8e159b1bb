/* Micro-benchmark of the blocked GEMM (not a test): GFLOP/s of ww_sgemm on
 * the shapes of 1x1 and im2col convolutions (rows = output channels,
 * columns = pixels), and of the bare micro-kernel on one L1-resident tile.
 * Reports the best of several repetitions, since the machine is shared.
 * Usage: tool_gemm_bench [avx512|avx2|portable] [seconds per shape] */
#define _POSIX_C_SOURCE 200809L
#include "kernels/gemm.h"
#include "tool_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Best GFLOP/s of `reps`-call batches over `budget` seconds. */
static double bench_sgemm(const ww_gemm_kernel *kern, int m, int n, int k, double budget)
{
    float *a = malloc((size_t)m * k * sizeof *a);
    float *b = malloc((size_t)k * n * sizeof *b);
    float *c = malloc((size_t)m * n * sizeof *c);
    float *bias = malloc((size_t)m * sizeof *bias);
    float *packed = malloc(ww_gemm_packed_a_floats(kern, m, k) * sizeof *packed);
    float *scratch = malloc(ww_sgemm_scratch_floats(kern) * sizeof *scratch);
    if (!a || !b || !c || !bias || !packed || !scratch) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    ww_tool_fill(a, (size_t)m * k, 1);
    ww_tool_fill(b, (size_t)k * n, 2);
    ww_tool_fill(bias, (size_t)m, 3);
    ww_gemm_pack_a(kern, m, k, a, (size_t)k, packed);
    double flops = 2.0 * m * n * k;
    int reps = (int)(2e7 / flops) + 1;
    double best = 1e30, start = ww_tool_now_seconds();
    while (ww_tool_now_seconds() - start < budget) {
        double t0 = ww_tool_now_seconds();
        for (int r = 0; r < reps; r++)
            ww_sgemm(kern, m, n, k, packed, b, (size_t)n, bias, NULL, WW_ACT_RELU, c, (size_t)n,
                     scratch);
        double t = (ww_tool_now_seconds() - t0) / reps;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    free(bias);
    free(packed);
    free(scratch);
    return flops / best * 1e-9;
}

/* The micro-kernel alone: one packed A panel and one B panel, both in L1. */
static double bench_tile(const ww_gemm_kernel *kern, int kc, double budget)
{
    float *a = malloc((size_t)kern->mr * kc * sizeof *a + 64);
    float *b = malloc((size_t)kern->nr * kc * sizeof *b + 64);
    float *c = malloc((size_t)kern->mr * kern->nr * sizeof *c + 64);
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    float *a64 = ww_align64(a), *b64 = ww_align64(b), *c64 = ww_align64(c);
    ww_tool_fill(a64, (size_t)kern->mr * kc, 4);
    ww_tool_fill(b64, (size_t)kern->nr * kc, 5);
    ww_gemm_epilogue ep = {.final = 1, .act = WW_ACT_NONE};
    double flops = 2.0 * kern->mr * kern->nr * kc;
    int reps = 2000;
    double best = 1e30, start = ww_tool_now_seconds();
    while (ww_tool_now_seconds() - start < budget) {
        double t0 = ww_tool_now_seconds();
        for (int r = 0; r < reps; r++)
            kern->tile(kc, a64, b64, c64, (size_t)kern->nr, &ep);
        double t = (ww_tool_now_seconds() - t0) / reps;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return flops / best * 1e-9;
}

int main(int argc, char **argv)
{
    ww_isa isa = ww_tool_parse_isa(argc > 1 ? argv[1] : NULL);
    double budget = argc > 2 ? atof(argv[2]) : 0.3;
    const ww_gemm_kernel *kern = ww_gemm_kernel_for(isa);
    if (!kern) {
        fprintf(stderr, "instruction set not supported by this CPU\n");
        return 1;
    }
    printf("kernel %s %dx%d\n", ww_isa_name(kern->isa), kern->mr, kern->nr);
    static const int kcs[] = {64, 256};
    for (size_t i = 0; i < sizeof kcs / sizeof kcs[0]; i++)
        printf("tile kc %4d: %7.1f GFLOP/s\n", kcs[i], bench_tile(kern, kcs[i], budget));
    /* rows (output channels) x columns (pixels) x depth (input channels). */
    static const int shapes[][3] = {
        {64, 3136, 64},  {128, 784, 128}, {256, 196, 256}, {512, 49, 512},
        {512, 49, 256},  {96, 784, 16},   {144, 196, 24},  {480, 196, 80},
        {1152, 49, 192}, {192, 49, 1152}, {64, 16, 64},    {320, 49, 1152},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
        printf("sgemm m %4d n %4d k %4d: %7.1f GFLOP/s\n", m, n, k,
               bench_sgemm(kern, m, n, k, budget));
    }
    return 0;
}
