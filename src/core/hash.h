/* FNV-1a, 64 bits: a fast, non-cryptographic hash of bytes, for hash
 * tables and for telling a damaged header from a whole one (not for
 * anything an adversary chooses). Calls chain: pass the last result as
 * h, starting from WW_FNV1A64_INIT. */
#ifndef WW_CORE_HASH_H
#define WW_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define WW_FNV1A64_INIT 0xcbf29ce484222325ull

static inline uint64_t ww_fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#endif
