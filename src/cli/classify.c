/* wanwu classify: one result line per image, plain or JSON. */
#include "cli/batch_classify.h"
#include "cli/cli.h"
#include "cli/result_json.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_help(FILE *out)
{
    fprintf(
        out,
        "usage: wanwu classify [options] IMAGE...\n"
        "\n"
        "Classifies each JPEG or PNG image with a torchvision model, preprocessed exactly as\n"
        "torchvision does (Resize 256, CenterCrop 224, Normalize).\n"
        "\n"
        "options:\n"
        "  --model PATH|NAME  weight file (.pth) by path, by file name in the models\n"
        "                     directory, or by architecture (resnet18, mobilenet_v2, ...).\n"
        "                     Default: resnet18 if present there, else the first model found.\n"
        "                     Models directory: $WANWU_MODELS, default ./models\n"
        "  --arch NAME        force the architecture instead of detecting it from the\n"
        "                     file's tensor names (resnet18, resnet34, mobilenet_v2)\n"
        "  --top K            show the K most probable classes (default 5)\n"
        "  --resize N         Resize: shorter side to N pixels (default: the transform\n"
        "                     torchvision pairs with the weights, e.g. 256; ONNX: 256)\n"
        "  --crop N           CenterCrop size, also the network input size (default 224)\n"
        "  --interpolation bilinear|bicubic   resize filter (default: the weights')\n"
        "  --json             one JSON object per image per line:\n"
        "                     {\"file\",\"model\",\"top\":[{\"class_index\",\"label\",\"prob\"}],\n"
        "                      \"ms\":{\"decode\",\"preprocess\",\"inference\"}}\n"
        "                     or {\"file\",\"error\"} for an image that failed\n"
        "  --threads N        worker threads for inference (default 1)\n"
        "  --exif             apply the EXIF orientation tag (torchvision does not)\n"
        "  --recursive DIR, --output FILE.jsonl, --resume, --jobs N\n"
        "                     batch mode: see 'wanwu classify --recursive DIR --help'\n"
        "  -h, --help         this text\n"
        "\n"
        "Plain output is one line per image: FILE: label (12.3%%), label (4.5%%), ...\n"
        "A bad image is reported (stderr, or an error object with --json) and the others\n"
        "are still classified; the exit status is 1 if any image failed, 2 on usage errors.\n");
}

int ww_cmd_classify(int argc, char **argv)
{
    /* --recursive, --output, --resume, --jobs: batch mode (batch_classify.c) */
    if (ww_classify_wants_batch(argc, argv)) return ww_cmd_classify_batch(argc, argv);
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"arch", required_argument, NULL, 'a'},
        {"top", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},
        {"exif", no_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {"resize", required_argument, NULL, 'R'},
        {"crop", required_argument, NULL, 'C'},
        {"interpolation", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    wanwu_model_options model_options = {0};
    const char *model_spec = NULL, *arch = NULL;
    int top = 5, json = 0, threads = 1;
    wanwu_image_options image_options = {0};
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'm': model_spec = optarg; break;
        case 'a': arch = optarg; break;
        case 'k':
            if ((top = ww_cli_parse_int("--top", optarg, 1, 1000)) < 0) return 2;
            break;
        case 'j': json = 1; break;
        case 't':
            if ((threads = ww_cli_parse_int("--threads", optarg, 1, 256)) < 0) return 2;
            break;
        case 'e': image_options.apply_exif_orientation = 1; break;
        case 'R':
            if ((model_options.resize = ww_cli_parse_int("--resize", optarg, 1, 8192)) < 0)
                return 2;
            break;
        case 'C':
            if ((model_options.crop = ww_cli_parse_int("--crop", optarg, 1, 8192)) < 0) return 2;
            break;
        case 'I':
            if (strcmp(optarg, "bilinear") != 0 && strcmp(optarg, "bicubic") != 0) {
                fprintf(stderr, "wanwu: --interpolation must be bilinear or bicubic, not '%s'\n",
                        optarg);
                return 2;
            }
            model_options.interpolation = optarg;
            break;
        case 'h': print_help(stdout); return 0;
        default: fprintf(stderr, "see 'wanwu classify --help'\n"); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "wanwu classify: no image given\n\n");
        print_help(stderr);
        return 2;
    }

    model_options.arch = arch;
    wanwu_model *model = ww_cli_load_model_opts(model_spec, &model_options, NULL);
    if (!model) return 1;
    wanwu_session *session = NULL;
    wanwu_error err;
    wanwu_session_options sopts = {threads};
    if (wanwu_session_create(model, &sopts, &session, &err) != WANWU_OK) {
        fprintf(stderr, "wanwu: %s\n", err.message);
        wanwu_model_free(model);
        return 1;
    }
    int classes = wanwu_model_num_classes(model);
    if (top > classes) top = classes;
    wanwu_prediction *preds = calloc((size_t)top, sizeof *preds);
    if (!preds) {
        fprintf(stderr, "wanwu: out of memory\n");
        wanwu_session_free(session);
        wanwu_model_free(model);
        return 1;
    }
    const char *arch_name = wanwu_model_arch(model);
    int failures = 0;
    for (int i = optind; i < argc; i++) {
        const char *file = argv[i];
        wanwu_timings t;
        wanwu_status st = wanwu_classify_file(session, file, &image_options, top, preds, &t, &err);
        if (st != WANWU_OK) {
            failures++;
            if (json) {
                ww_result_json_write_error(stdout, file, err.message);
                fputc('\n', stdout);
            } else {
                fprintf(stderr, "wanwu: %s\n", err.message);
            }
            fflush(stdout);
            continue;
        }
        if (json) {
            ww_result_json_write(stdout, file, arch_name, preds, top, &t);
            fputc('\n', stdout);
        } else {
            printf("%s:", file);
            for (int k = 0; k < top; k++) {
                if (preds[k].label)
                    printf("%s %s (%.1f%%)", k ? "," : "", preds[k].label, 100.0 * preds[k].prob);
                else
                    printf("%s class %d (%.1f%%)", k ? "," : "", preds[k].class_index,
                           100.0 * preds[k].prob);
            }
            printf("\n");
        }
        fflush(stdout);
    }
    free(preds);
    wanwu_session_free(session);
    wanwu_model_free(model);
    return failures ? 1 : 0;
}
