/* A labelled image set for `wanwu bench`: from ImageNet-style file names
 * (nXXXXXXXX_*.JPEG, the synset gives the class) or from a TSV file. */
#ifndef WW_CLI_BENCH_DATASET_H
#define WW_CLI_BENCH_DATASET_H

#include "wanwu.h"

typedef struct ww_labelled_image {
    char *path;
    int class_index;
} ww_labelled_image;

typedef struct ww_dataset {
    ww_labelled_image *images;
    int count;
} ww_dataset;

/* Every JPEG/PNG file directly in `dir`, sorted by name, labelled by the
 * ImageNet synset its name starts with; the first `limit` of them when
 * limit > 0. An image file whose name carries no known synset is an error
 * (use a TSV then). */
wanwu_status ww_dataset_from_dir(const char *dir, int limit, ww_dataset *out, wanwu_error *err);

/* Lines `file<TAB>class_index` (paths relative to the TSV's folder). A
 * first line whose second field is not a number is a header; a header with
 * "file" and "class_index" columns (like imagenet-sample/labels.tsv)
 * selects those columns. Blank lines and lines starting with '#' are
 * skipped. The first `limit` images when limit > 0. */
wanwu_status ww_dataset_from_tsv(const char *tsv, int limit, ww_dataset *out, wanwu_error *err);

void ww_dataset_free(ww_dataset *d);

/* 1 when the name ends in .jpg, .jpeg or .png (any case). */
int ww_is_image_file_name(const char *name);

#endif
