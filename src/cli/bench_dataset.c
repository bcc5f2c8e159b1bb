#include "cli/bench_dataset.h"

#include "core/error.h"
#include "data/imagenet_synsets.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ww_is_image_file_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
           strcasecmp(dot, ".png") == 0;
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, (*dir && dir[strlen(dir) - 1] != '/') ? "/" : "", name);
    return p;
}

static wanwu_status push_image(ww_dataset *d, int *cap, char *path, int class_index,
                               wanwu_error *err)
{
    if (d->count == *cap) {
        int ncap = *cap ? *cap * 2 : 256;
        ww_labelled_image *n = realloc(d->images, (size_t)ncap * sizeof *n);
        if (!n) {
            free(path);
            return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory listing images");
        }
        d->images = n;
        *cap = ncap;
    }
    d->images[d->count].path = path;
    d->images[d->count].class_index = class_index;
    d->count++;
    return WANWU_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ww_dataset_free(ww_dataset *d)
{
    for (int i = 0; i < d->count; i++)
        free(d->images[i].path);
    free(d->images);
    d->images = NULL;
    d->count = 0;
}

wanwu_status ww_dataset_from_dir(const char *dir, int limit, ww_dataset *out, wanwu_error *err)
{
    out->images = NULL;
    out->count = 0;
    DIR *dh = opendir(dir);
    if (!dh)
        return ww_error_set(err, WANWU_ERR_IO, "cannot open image folder %s: %s", dir,
                            strerror(errno));
    char **names = NULL;
    size_t count = 0, cap = 0;
    wanwu_status st = WANWU_OK;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.' || !ww_is_image_file_name(e->d_name)) continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            char **n = realloc(names, ncap * sizeof *n);
            if (!n) {
                st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory listing %s", dir);
                break;
            }
            names = n;
            cap = ncap;
        }
        if (!(names[count] = strdup(e->d_name))) {
            st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory listing %s", dir);
            break;
        }
        count++;
    }
    closedir(dh);
    if (st == WANWU_OK && count == 0)
        st = ww_error_set(err, WANWU_ERR_NOT_FOUND, "no JPEG or PNG files in %s", dir);
    if (st == WANWU_OK) qsort(names, count, sizeof *names, compare_names);
    int image_cap = 0;
    for (size_t i = 0; st == WANWU_OK && i < count; i++) {
        if (limit > 0 && out->count >= limit) break;
        int class_index = ww_imagenet_synset_index(names[i]);
        if (class_index < 0) {
            st = ww_error_set(err, WANWU_ERR_FORMAT,
                              "%s/%s: the file name does not start with an ImageNet synset "
                              "(nXXXXXXXX_...); give the labels with --labels FILE.tsv",
                              dir, names[i]);
            break;
        }
        char *path = join_path(dir, names[i]);
        if (!path)
            st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory listing %s", dir);
        else
            st = push_image(out, &image_cap, path, class_index, err);
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (st != WANWU_OK) ww_dataset_free(out);
    return st;
}

/* Splits a line at tabs in place; returns the number of fields (at most max). */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static int parse_class_index(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1000000) return 0;
    *out = (int)v;
    return 1;
}

wanwu_status ww_dataset_from_tsv(const char *tsv, int limit, ww_dataset *out, wanwu_error *err)
{
    out->images = NULL;
    out->count = 0;
    FILE *f = fopen(tsv, "r");
    if (!f)
        return ww_error_set(err, WANWU_ERR_IO, "cannot open label file %s: %s", tsv,
                            strerror(errno));
    char *base = strdup(tsv);
    if (!base) {
        fclose(f);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory");
    }
    char *slash = strrchr(base, '/');
    if (slash)
        slash[1] = '\0';
    else
        base[0] = '\0';

    enum { MAX_FIELDS = 64 };
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    int line_no = 0, file_col = 0, class_col = 1, image_cap = 0, data_lines = 0;
    wanwu_status st = WANWU_OK;
    while (st == WANWU_OK && (len = getline(&line, &line_cap, f)) >= 0) {
        line_no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        char *fields[MAX_FIELDS];
        int n = split_tabs(line, fields, MAX_FIELDS);
        int class_index;
        int have_class = class_col < n && parse_class_index(fields[class_col], &class_index);
        if (data_lines == 0 && !have_class) { /* header */
            int fc = -1, cc = -1;
            for (int i = 0; i < n; i++) {
                if (strcmp(fields[i], "file") == 0) fc = i;
                if (strcmp(fields[i], "class_index") == 0) cc = i;
            }
            if (fc >= 0 && cc >= 0) file_col = fc, class_col = cc;
            data_lines = -1; /* only one header line */
            continue;
        }
        data_lines = data_lines < 0 ? 1 : data_lines + 1;
        if (!have_class || file_col >= n || !*fields[file_col]) {
            st =
                ww_error_set(err, WANWU_ERR_FORMAT,
                             "%s:%d: expected file<TAB>class_index (a whole number)", tsv, line_no);
            break;
        }
        if (limit > 0 && out->count >= limit) break;
        const char *file = fields[file_col];
        char *path = file[0] == '/' ? strdup(file) : join_path(base, file);
        if (!path)
            st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory reading %s", tsv);
        else
            st = push_image(out, &image_cap, path, class_index, err);
    }
    if (st == WANWU_OK && ferror(f)) st = ww_error_set(err, WANWU_ERR_IO, "error reading %s", tsv);
    if (st == WANWU_OK && out->count == 0)
        st = ww_error_set(err, WANWU_ERR_NOT_FOUND, "%s lists no images", tsv);
    free(line);
    free(base);
    fclose(f);
    if (st != WANWU_OK) ww_dataset_free(out);
    return st;
}
