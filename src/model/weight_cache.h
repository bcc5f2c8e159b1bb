/* Weight cache: the packed weights of a loaded model, kept in a file so
 * that the next load of the same weight file maps them instead of
 * packing them again.
 *
 * Why: packing writes ~50 MB (ResNet-18) of fresh memory, and on the VMs
 * wanwu targets memory the guest handed back to the host costs ~1.8 ms/MB
 * at its first touch (core/prefault.h): a load after a pause took ~100 ms,
 * most of it page faults. A cache file's pages stay in the page cache,
 * and mapping them costs ~1-5 ms for the whole model.
 *
 * An entry is one file per weight file, instruction set, input size and
 * forced architecture: a header naming what it was built from (the
 * program's build ID, the weight file's device, inode, size, mtime and
 * ctime, the instruction set, the input size, the forced architecture),
 * the weight arena's allocation log, and the arena's bytes. A load maps it
 * only when all of these match, and replays the build with it
 * (core/arena.h): every allocation must come in the order and size the log
 * has, or the entry is not used. Entries are written to a temporary file,
 * synced and renamed into place, so a reader never sees a partial one.
 * Any failure to read or write the cache just means packing as usual. */
#ifndef WW_MODEL_WEIGHT_CACHE_H
#define WW_MODEL_WEIGHT_CACHE_H

#include "core/arena.h"

#include <stddef.h>
#include <stdint.h>

#define WW_WEIGHT_CACHE_PATH_MAX 4096

/* What an entry must have been built from, plus where it lives. */
typedef struct ww_weight_cache_key {
    char file[WW_WEIGHT_CACHE_PATH_MAX]; /* the entry's path */
    char dir[WW_WEIGHT_CACHE_PATH_MAX];
    unsigned char identity[256]; /* compared byte for byte with the header's */
    /* The weight file changed less than WW_WEIGHT_CACHE_SETTLE_S ago: its
     * times may not yet tell this version from the next (file systems
     * keep them in steps of up to 2 s), so no entry is written for it. */
    int recent;
} ww_weight_cache_key;

#define WW_WEIGHT_CACHE_SETTLE_S 2

/* The cache directory for `option` (wanwu_model_options.cache_dir):
 * NULL takes $WANWU_CACHE_DIR, and no cache when that is unset; "" or
 * "off" (either way) means no cache. Returns NULL for no cache. */
const char *ww_weight_cache_dir(const char *option);

/* The default directory for the command-line tool: $WANWU_CACHE_DIR when
 * set (even to "off"), else $XDG_CACHE_HOME/wanwu, else $HOME/.cache/wanwu;
 * "" when none can be formed. Written to buf. */
const char *ww_weight_cache_default_dir(char *buf, size_t size);

/* Fills `key` for the weight file `model_path` built for instruction set
 * `isa`, input size `input_size` and forced architecture `arch` (NULL or
 * "" for detected). Returns 0 when no entry can be kept: the path cannot
 * be resolved or stat'ed, or the program has no build ID (then a rebuilt
 * program could not tell its own entries from an older build's). */
int ww_weight_cache_key_init(ww_weight_cache_key *key, const char *dir, const char *model_path,
                             int isa, int input_size, const char *arch);

/* The entry for `key`, mapped read-only, as a replay arena; NULL when
 * there is none or it does not match (a miss). */
ww_arena *ww_weight_cache_open(const ww_weight_cache_key *key);

/* Writes the packed weights of `arena` (an arena that packed a model,
 * not a replay) as the entry for `key`, replacing any older one. Returns
 * 1 when written; 0 otherwise (directory not writable, disk full, an
 * arena of several chunks), with nothing left behind. */
int ww_weight_cache_store(const ww_weight_cache_key *key, const ww_arena *arena);

#endif
