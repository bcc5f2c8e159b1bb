/* Whole transfers on file descriptors. read(2), write(2) and their
 * positioned forms may move fewer bytes than asked (a signal, the end of a
 * file, a pipe's data so far); these loop until every byte has moved, the
 * file ends, or a real error stops them. */
#ifndef WW_CORE_FILEIO_H
#define WW_CORE_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Each returns the bytes moved: n, or fewer when a read reached the end of
 * the file (errno is then 0) or an error stopped it (errno tells which). */
size_t ww_read_full(int fd, void *buf, size_t n);
size_t ww_write_full(int fd, const void *buf, size_t n);
size_t ww_pread_full(int fd, void *buf, size_t n, off_t offset);
size_t ww_pwrite_full(int fd, const void *buf, size_t n, off_t offset);

#endif
