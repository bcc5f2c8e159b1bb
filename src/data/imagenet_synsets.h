/* ImageNet-1k WordNet ids ("n01440764") and torchvision class indices. */
#ifndef WW_DATA_IMAGENET_SYNSETS_H
#define WW_DATA_IMAGENET_SYNSETS_H

/* The wnid of class 0..999 (torchvision's order = sorted wnids), or NULL. */
const char *ww_imagenet_synset(int class_index);

/* The class index of a wnid (the first 9 characters of `wnid` are
 * compared, so "n01440764_tench.JPEG" works too), or -1 if it is not one
 * of the 1000 ImageNet-1k synsets. */
int ww_imagenet_synset_index(const char *wnid);

#endif
