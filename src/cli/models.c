/* wanwu models: every model in the models directory (and any paths given)
 * with its architecture, format, parameters, file size, input and GMACs. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/json.h"
#include "model/model.h"
#include "model/model_dir.h"

static void print_help(FILE *out)
{
    fprintf(out, "usage: wanwu models [--json] [PATH...]\n"
                 "\n"
                 "Lists every model (.pth, .onnx) in the models directory ($WANWU_MODELS, default\n"
                 "./models) and the files given: name, architecture, format, parameters, file\n"
                 "size, input shape, GMACs (multiply-accumulates of one inference) and the\n"
                 "preprocessing used. A file that does not load is listed with its error.\n");
}

static int has_model_suffix(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcmp(name + n - 4, ".pth") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".onnx") == 0);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_one(const char *path, int json)
{
    struct stat st;
    double mb = stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    wanwu_error err;
    wanwu_model *m = NULL;
    if (wanwu_model_load(path, NULL, &m, &err) != WANWU_OK) {
        if (json) {
            fputs("{\"name\":", stdout);
            ww_json_write_string(stdout, base);
            fputs(",\"path\":", stdout);
            ww_json_write_string(stdout, path);
            fputs(",\"error\":", stdout);
            ww_json_write_string(stdout, err.message);
            puts("}");
        } else {
            printf("%-40s error: %s\n", base, err.message);
        }
        return;
    }
    const ww_value *in = &m->graph.values[m->graph.input];
    double gmacs = (double)ww_graph_macs(&m->graph) / 1e9;
    const char *interp = m->preprocess.interp == WW_INTERP_BICUBIC ? "bicubic" : "bilinear";
    if (json) {
        fputs("{\"name\":", stdout);
        ww_json_write_string(stdout, base);
        fputs(",\"path\":", stdout);
        ww_json_write_string(stdout, path);
        fputs(",\"architecture\":", stdout);
        ww_json_write_string(stdout, m->arch);
        printf(",\"format\":\"%s\",\"parameters\":%lld,\"file_mb\":%.2f,\"input\":[1,%d,%d,%d],"
               "\"gmacs\":%.4f,\"classes\":%d,\"preprocess\":{\"resize\":%d,\"crop\":%d,"
               "\"interpolation\":\"%s\"}}\n",
               m->format, (long long)m->num_params, mb, in->c, in->h, in->w, gmacs,
               m->num_classes, m->preprocess.resize, m->preprocess.crop, interp);
    } else {
        char shape[48];
        snprintf(shape, sizeof shape, "1x%dx%dx%d", in->c, in->h, in->w);
        printf("%-40s %-20s %-5s %10lld %8.1f MB  %-14s %6.3f  %d %s / %d\n", base, m->arch,
               m->format, (long long)m->num_params, mb, shape, gmacs, m->preprocess.resize, interp,
               m->preprocess.crop);
    }
    wanwu_model_free(m);
}

int ww_cmd_models(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'h': print_help(stdout); return 0;
        default: fprintf(stderr, "see 'wanwu models --help'\n"); return 2;
        }
    }
    const char *dir = ww_models_dir();
    char **names = NULL;
    size_t count = 0, cap = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !has_model_suffix(e->d_name)) continue;
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                char **grown = realloc(names, cap * sizeof *grown);
                if (!grown) break;
                names = grown;
            }
            if (!(names[count] = strdup(e->d_name))) break;
            count++;
        }
        closedir(d);
        qsort(names, count, sizeof *names, compare_names);
    }
    if (!json)
        printf("%-40s %-20s %-5s %10s %11s  %-14s %6s  %s\n", "name", "architecture", "format",
               "parameters", "file size", "input", "GMACs", "preprocess (resize / crop)");
    int shown = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path) {
            list_one(path, json);
            shown++;
        }
        free(names[i]);
    }
    free(names);
    for (int i = optind; i < argc; i++, shown++) list_one(argv[i], json);
    if (!shown && !json)
        printf("(no models in '%s'; set WANWU_MODELS or pass paths)\n", dir);
    return 0;
}
