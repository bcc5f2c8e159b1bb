/* Helper for test_weight_cache.py: loads a model through the public API
 * with a weight cache directory, runs it once on a fixed input and prints
 * what the test compares.
 *
 *   tool_weight_cache MODEL CACHE_DIR [CROP]
 *
 * CACHE_DIR "off" loads without a cache. With $TOOL_CLOBBER set, the
 * weight file is cut to nothing and refilled with other bytes between
 * the load and the run (a model must not read its file after loading).
 * Prints, one per line:
 *   "cache <wanwu_model_weight_cache>"
 *   "isa <wanwu_kernel_isa>"
 *   "logits <count> <FNV-1a 64 of their bytes> <first logit>"
 * or "ERR <message>" and exit status 1. */
#include "core/hash.h"
#include "wanwu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: tool_weight_cache MODEL CACHE_DIR [CROP]\n");
        return 2;
    }
    wanwu_model_options options = {0};
    options.cache_dir = argv[2];
    if (argc == 4) options.crop = atoi(argv[3]);
    wanwu_error err;
    wanwu_model *model = NULL;
    wanwu_session *session = NULL;
    float *input = NULL, *logits = NULL;
    int status = 1;
    if (wanwu_model_load(argv[1], &options, &model, &err) != WANWU_OK ||
        wanwu_session_create(model, NULL, &session, &err) != WANWU_OK) {
        printf("ERR %s\n", err.message);
        goto done;
    }
    if (getenv("TOOL_CLOBBER")) {
        FILE *f = fopen(argv[1], "wb"); /* truncates */
        if (!f) {
            printf("ERR cannot rewrite %s\n", argv[1]);
            goto done;
        }
        for (int i = 0; i < 1 << 16; i++)
            fputc(0x5a, f);
        fclose(f);
    }
    size_t size = (size_t)wanwu_model_input_size(model);
    size_t n = 3 * size * size;
    int classes = wanwu_model_num_classes(model);
    input = malloc(n * sizeof *input);
    logits = malloc((size_t)classes * sizeof *logits);
    if (!input || !logits) {
        printf("ERR out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) /* smooth, image-like, every channel different */
        input[i] = (float)(sin((double)i * 0.0137) + 0.5 * cos((double)(i % size) * 0.21));
    if (wanwu_run(session, input, logits, &err) != WANWU_OK) {
        printf("ERR %s\n", err.message);
        goto done;
    }
    uint64_t h = ww_fnv1a64(WW_FNV1A64_INIT, logits, (size_t)classes * sizeof *logits);
    printf("cache %s\nisa %s\nlogits %d %016llx %.9g\n", wanwu_model_weight_cache(model),
           wanwu_kernel_isa(), classes, (unsigned long long)h, (double)logits[0]);
    status = 0;
done:
    free(input);
    free(logits);
    wanwu_session_free(session);
    wanwu_model_free(model);
    return status;
}
