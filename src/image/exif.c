/* Minimal EXIF reader: only IFD0's Orientation tag, which is all that
 * PIL's ImageOps.exif_transpose looks at. Every read is bounds-checked. */
#include "image/image_internal.h"

#define TIFF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_BYTE 1
#define TIFF_TYPE_SHORT 3
#define TIFF_TYPE_LONG 4
#define TIFF_TYPE_SSHORT 8
#define TIFF_TYPE_SLONG 9

static uint32_t read_u16(const uint8_t *p, int big_endian)
{
    return big_endian ? ((uint32_t)p[0] << 8 | p[1]) : ((uint32_t)p[1] << 8 | p[0]);
}

static uint32_t read_u32(const uint8_t *p, int big_endian)
{
    return big_endian ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
                      : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

int ww_exif_orientation_from_tiff(const uint8_t *tiff, size_t size)
{
    if (!tiff || size < 8) return 0;
    int big_endian;
    if (tiff[0] == 'I' && tiff[1] == 'I' && tiff[2] == 42 && tiff[3] == 0)
        big_endian = 0;
    else if (tiff[0] == 'M' && tiff[1] == 'M' && tiff[2] == 0 && tiff[3] == 42)
        big_endian = 1;
    else
        return 0;

    uint32_t ifd = read_u32(tiff + 4, big_endian);
    if (ifd > size || size - ifd < 2) return 0;
    uint32_t count = read_u16(tiff + ifd, big_endian);
    int orientation = 0;
    /* Like PIL, use the entries that are complete even if the directory is
     * cut short, and let a later duplicate tag override an earlier one. */
    for (uint32_t i = 0; i < count; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        if (entry + 12 > size) break;
        const uint8_t *e = tiff + entry;
        if (read_u16(e, big_endian) != TIFF_TAG_ORIENTATION) continue;
        uint32_t type = read_u16(e + 2, big_endian);
        uint32_t n = read_u32(e + 4, big_endian);
        /* PIL turns a single value into an int; multi-value tags become
         * tuples that exif_transpose does not recognise. */
        if (n != 1) {
            orientation = 0;
            continue;
        }
        uint32_t value;
        if (type == TIFF_TYPE_SHORT || type == TIFF_TYPE_SSHORT)
            value = read_u16(e + 8, big_endian);
        else if (type == TIFF_TYPE_LONG || type == TIFF_TYPE_SLONG)
            value = read_u32(e + 8, big_endian);
        else if (type == TIFF_TYPE_BYTE)
            value = e[8];
        else
            continue; /* other types never compare equal to 1-8 in PIL */
        orientation = (value >= 1 && value <= 8) ? (int)value : 0;
    }
    return orientation;
}
