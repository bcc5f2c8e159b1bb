/* Whole transfers (core/fileio.h): every byte moves even when the kernel
 * moves a few at a time (a pipe fed in small pieces), a read past the end
 * of a file stops short with errno 0, and an error stops short with errno
 * telling which. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "core/fileio.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PIECES 300
#define PIECE 7

static void *feed_in_pieces(void *arg)
{
    int fd = *(int *)arg;
    unsigned char piece[PIECE];
    for (int i = 0; i < PIECES; i++) {
        for (int j = 0; j < PIECE; j++)
            piece[j] = (unsigned char)(i * PIECE + j);
        if (write(fd, piece, PIECE) != PIECE) break;
        if (i % 16 == 0) usleep(200); /* let the reader see a short read */
    }
    close(fd);
    return NULL;
}

/* A pipe written 7 bytes at a time: one ww_read_full gets all 2100, in
 * order; the next read finds the end (0 bytes, errno 0). */
static void test_read_full_joins_short_reads(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, feed_in_pieces, &fds[1]), 0);
    unsigned char got[PIECES * PIECE + 1];
    assert_int_equal(ww_read_full(fds[0], got, PIECES * PIECE), PIECES * PIECE);
    for (int i = 0; i < PIECES * PIECE; i++)
        assert_int_equal(got[i], (unsigned char)i);
    errno = EIO;
    assert_int_equal(ww_read_full(fds[0], got, 1), 0);
    assert_int_equal(errno, 0);
    pthread_join(writer, NULL);
    close(fds[0]);
}

/* Positioned writes and reads of a file, a hole left between them; a read
 * running past the end returns what there is, with errno 0. */
static void test_positioned_and_end_of_file(void **state)
{
    (void)state;
    char path[] = "/tmp/wanwu-test-fileio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char data[5000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    assert_int_equal(ww_pwrite_full(fd, data, 100, 0), 100);
    assert_int_equal(ww_pwrite_full(fd, data + 100, sizeof data - 100, 8192), sizeof data - 100);
    unsigned char back[16384];
    memset(back, 0xee, sizeof back);
    errno = EIO;
    size_t total = 8192 + sizeof data - 100;
    assert_int_equal(ww_pread_full(fd, back, sizeof back, 0), total); /* short: the end */
    assert_int_equal(errno, 0);
    assert_memory_equal(back, data, 100);
    for (size_t i = 100; i < 8192; i++) /* the hole reads as zeros */
        assert_int_equal(back[i], 0);
    assert_memory_equal(back + 8192, data + 100, sizeof data - 100);
    assert_int_equal(ww_pread_full(fd, back, 10, (off_t)total + 10), 0);
    assert_int_equal(ww_pread_full(fd, back, 10, -1), 0); /* no negative offsets */
    assert_int_equal(errno, EINVAL);
    /* the plain forms move the file offset */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(ww_read_full(fd, back, 50), 50);
    assert_memory_equal(back, data, 50);
    assert_int_equal(ww_write_full(fd, data, 10), 10);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 60);
    close(fd);
}

/* An error stops the transfer short with errno set: a pipe with no
 * reader (EPIPE) and a closed descriptor (EBADF). */
static void test_errors_stop_short(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    unsigned char data[64] = {0};
    assert_int_equal(ww_write_full(fds[1], data, sizeof data), 0);
    assert_int_equal(errno, EPIPE);
    close(fds[1]);
    assert_int_equal(ww_read_full(fds[1], data, sizeof data), 0);
    assert_int_equal(errno, EBADF);
    assert_int_equal(ww_pwrite_full(fds[1], data, sizeof data, 0), 0);
    assert_int_equal(errno, EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_full_joins_short_reads),
        cmocka_unit_test(test_positioned_and_end_of_file),
        cmocka_unit_test(test_errors_stop_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
