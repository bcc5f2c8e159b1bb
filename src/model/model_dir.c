#include "model/model_dir.h"

#include "core/error.h"
#include "format/pth.h"
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const ww_official_weights official[] = {
    {"resnet18-f37072fd.pth", "resnet18",
     "https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd", 256, 0},
    {"resnet34-b627a593.pth", "resnet34",
     "https://download.pytorch.org/models/resnet34-b627a593.pth", "b627a593", 256, 0},
    {"mobilenet_v2-b0353104.pth", "mobilenet_v2",
     "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth", "b0353104", 256, 0},
    {"mobilenet_v2-7ebf99e0.pth", "mobilenet_v2",
     "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth", "7ebf99e0", 232, 0},
    {"efficientnet_b0_rwightman-3dd342df.pth", "efficientnet_b0",
     "https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth", "3dd342df", 256,
     1},
    {"shufflenetv2_x1-5666bf0f80.pth", "shufflenet_v2_x1_0",
     "https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth", "5666bf0f80", 256, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

const ww_official_weights *ww_official_weights_find(const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    if (!base) return NULL;
    for (const ww_official_weights *o = official; o->file; o++)
        if (strcmp(o->file, base) == 0) return o;
    return NULL;
}

const ww_official_weights *ww_official_weights_table(void)
{
    return official;
}

const char *ww_models_dir(void)
{
    const char *env = getenv("WANWU_MODELS");
    return env && *env ? env : "models";
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of *.pth and *.onnx file names in dir (caller frees each and the list). */
static wanwu_status list_weight_files(const char *dir, char ***names, size_t *count,
                                      wanwu_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return WANWU_OK; /* a missing directory simply has no models */
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' ||
            (!has_suffix(e->d_name, ".pth") && !has_suffix(e->d_name, ".onnx")))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (!grown) goto oom;
            *names = grown;
        }
        (*names)[*count] = strdup(e->d_name);
        if (!(*names)[*count]) goto oom;
        (*count)++;
    }
    closedir(d);
    if (*count > 1)
        qsort(*names, *count, sizeof **names, compare_names); /* names is NULL when empty */
    return WANWU_OK;
oom:
    closedir(d);
    for (size_t i = 0; i < *count; i++)
        free((*names)[i]);
    free(*names);
    *names = NULL;
    *count = 0;
    return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory listing %s", dir);
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

wanwu_status ww_model_detect_arch_file(const char *path, char *arch, size_t arch_size,
                                       wanwu_error *err)
{
    ww_state_dict sd;
    wanwu_status st = ww_pth_load_file(path, &sd, err);
    if (st != WANWU_OK) return st;
    const ww_arch *a = ww_arch_detect(&sd);
    ww_state_dict_free(&sd);
    if (!a)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "%s: matches no supported architecture",
                            path);
    snprintf(arch, arch_size, "%s", a->name);
    return WANWU_OK;
}

static const char *official_arch(const char *file)
{
    for (const ww_official_weights *o = official; o->file; o++)
        if (strcmp(o->file, file) == 0) return o->arch;
    return NULL;
}

static int join(char *out, size_t size, const char *dir, const char *file)
{
    int n = snprintf(out, size, "%s/%s", dir, file);
    return n > 0 && (size_t)n < size;
}

/* Finds a file in dir whose architecture is `arch`: official names first,
 * then any other .pth by its detected architecture. */
static int find_by_arch(const char *dir, char **names, size_t count, const char *arch, char *path,
                        size_t path_size)
{
    for (size_t i = 0; i < count; i++) {
        const char *a = official_arch(names[i]);
        if (a && strcmp(a, arch) == 0 && join(path, path_size, dir, names[i])) return 1;
    }
    for (size_t i = 0; i < count; i++) {
        if (official_arch(names[i])) continue;
        char candidate[4096], detected[WW_ARCH_NAME_MAX];
        if (!join(candidate, sizeof candidate, dir, names[i])) continue;
        if (ww_model_detect_arch_file(candidate, detected, sizeof detected, NULL) != WANWU_OK)
            continue;
        if (strcmp(detected, arch) == 0) {
            snprintf(path, path_size, "%s", candidate);
            return 1;
        }
    }
    return 0;
}

static wanwu_status no_model_error(const char *spec, const char *dir, char **names, size_t count,
                                   wanwu_error *err)
{
    if (spec) {
        char avail[256] = "";
        for (size_t i = 0; i < count; i++) {
            strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
            strncat(avail, names[i], sizeof avail - strlen(avail) - 1);
        }
        return ww_error_set(err, WANWU_ERR_NOT_FOUND,
                            "no model '%s': not a file, and no file or architecture of that name "
                            "in the models directory '%s' (it has: %s)",
                            spec, dir, count ? avail : "no .pth or .onnx files");
    }
    return ww_error_set(err, WANWU_ERR_NOT_FOUND,
                        "no model found in the models directory '%s' (set WANWU_MODELS or pass "
                        "--model PATH). Download one once, e.g.: mkdir -p models && curl -L -o "
                        "models/resnet18-f37072fd.pth "
                        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                        dir);
}

wanwu_status ww_model_resolve(const char *spec, const char *dir, char *path, size_t path_size,
                              wanwu_error *err)
{
    if (!dir) dir = ww_models_dir();
    if (spec && *spec == '\0')
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "empty model name");
    if (spec && (strchr(spec, '/') || is_file(spec))) {
        if (!is_file(spec))
            return ww_error_set(err, WANWU_ERR_NOT_FOUND, "model file '%s' does not exist", spec);
        snprintf(path, path_size, "%s", spec);
        return WANWU_OK;
    }
    if (spec && join(path, path_size, dir, spec) && is_file(path)) return WANWU_OK;

    char **names;
    size_t count;
    wanwu_status st = list_weight_files(dir, &names, &count, err);
    if (st != WANWU_OK) return st;
    int found = 0;
    if (spec) {
        char with_ext[512];
        snprintf(with_ext, sizeof with_ext, "%s.pth", spec);
        found = (join(path, path_size, dir, with_ext) && is_file(path));
        snprintf(with_ext, sizeof with_ext, "%s.onnx", spec);
        found = found || (join(path, path_size, dir, with_ext) && is_file(path)) ||
                find_by_arch(dir, names, count, spec, path, path_size);
    } else {
        found = find_by_arch(dir, names, count, "resnet18", path, path_size) ||
                (count > 0 && join(path, path_size, dir, names[0]));
    }
    if (!found) st = no_model_error(spec, dir, names, count, err);
    free_names(names, count);
    return st;
}
