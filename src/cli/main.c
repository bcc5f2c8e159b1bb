/* wanwu: command-line front end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "model/model_dir.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "wanwu %s - offline image classification with torchvision models\n"
            "\n"
            "usage: wanwu <command> [options]\n"
            "\n"
            "commands:\n"
            "  classify   classify image files (JPEG, PNG); see 'wanwu classify --help'\n"
            "  bench      time inference on a fixed input; see 'wanwu bench --help'\n"
            "  serve      HTTP service and web page; see 'wanwu serve --help'\n"
            "  models     list the models found, with size, input and GMACs\n"
            "\n"
            "options:\n"
            "  -h, --help     this text\n"
            "  --version      print the version\n"
            "\n"
            "Models are torchvision weight files (.pth) found in the models directory\n"
            "($WANWU_MODELS, default ./models) or given by path. Official files:\n",
            WANWU_VERSION);
    for (const ww_official_weights *o = ww_official_weights_table(); o->file; o++)
        fprintf(out, "  %-14s %s\n", o->arch, o->url);
    fprintf(out, "wanwu itself never uses the network.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("wanwu %s\n", WANWU_VERSION);
        return 0;
    }
    if (strcmp(cmd, "classify") == 0) return ww_cmd_classify(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return ww_cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return ww_cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0) return ww_cmd_models(argc - 1, argv + 1);
    fprintf(stderr, "wanwu: unknown command '%s'\n\n", cmd);
    print_usage(stderr);
    return 2;
}
