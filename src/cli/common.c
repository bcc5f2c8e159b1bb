#include "cli/cli.h"
#include "model/model_dir.h"
#include "model/weight_cache.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double ww_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int ww_cli_parse_int(const char *option, const char *value, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "wanwu: %s needs a whole number from %d to %d, not '%s'\n", option, min,
                max, value);
        return -1;
    }
    return (int)v;
}

wanwu_model *ww_cli_load_model(const char *spec, const char *arch, double *load_ms)
{
    wanwu_model_options opts = {0};
    opts.arch = arch;
    return ww_cli_load_model_opts(spec, &opts, load_ms);
}

wanwu_model *ww_cli_load_model_opts(const char *spec, const wanwu_model_options *options,
                                    double *load_ms)
{
    wanwu_error err;
    char path[4096];
    if (ww_model_resolve(spec, NULL, path, sizeof path, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu: %s\n", err.message);
        return NULL;
    }
    wanwu_model_options opts = {0};
    if (options) opts = *options;
    char cache_dir[4096];
    if (!opts.cache_dir) opts.cache_dir = ww_weight_cache_default_dir(cache_dir, sizeof cache_dir);
    wanwu_model *model = NULL;
    double t0 = ww_cli_now_ms();
    if (wanwu_model_load(path, &opts, &model, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu: cannot load model: %s\n", err.message);
        return NULL;
    }
    if (load_ms) *load_ms = ww_cli_now_ms() - t0;
    return model;
}
