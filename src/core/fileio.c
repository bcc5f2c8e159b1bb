#include "core/fileio.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

/* The one loop behind all four: positioned when offset >= 0. */
static size_t transfer(int fd, unsigned char *p, size_t n, off_t offset, int writing)
{
    size_t moved = 0;
    while (moved < n) {
        size_t left = n - moved;
        ssize_t got;
        if (offset >= 0)
            got = writing ? pwrite(fd, p + moved, left, offset + (off_t)moved)
                          : pread(fd, p + moved, left, offset + (off_t)moved);
        else
            got = writing ? write(fd, p + moved, left) : read(fd, p + moved, left);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break; /* errno tells why */
        if (got == 0) {     /* end of file (a write of 0 bytes: no progress either) */
            errno = 0;
            break;
        }
        moved += (size_t)got;
    }
    return moved;
}

size_t ww_read_full(int fd, void *buf, size_t n)
{
    return transfer(fd, buf, n, -1, 0);
}

size_t ww_write_full(int fd, const void *buf, size_t n)
{
    return transfer(fd, (unsigned char *)(uintptr_t)buf, n, -1, 1); /* only read */
}

size_t ww_pread_full(int fd, void *buf, size_t n, off_t offset)
{
    return offset < 0 ? (errno = EINVAL, 0) : transfer(fd, buf, n, offset, 0);
}

size_t ww_pwrite_full(int fd, const void *buf, size_t n, off_t offset)
{
    return offset < 0 ? (errno = EINVAL, 0)
                      : transfer(fd, (unsigned char *)(uintptr_t)buf, n, offset, 1);
}
