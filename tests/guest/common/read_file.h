/* Shared by guest programs (include as "../common/read_file.h"); crates/cli/tests/guest.rs
 * hashes the headers a program includes into its build cache key. */
#ifndef CETBOX_GUEST_READ_FILE_H
#define CETBOX_GUEST_READ_FILE_H

#include <fcntl.h>
#include <unistd.h>

/* The whole of a (/proc) file, read by read(2) until its end, at most size - 1 bytes,
 * NUL-terminated; the length, or -1 if it cannot be opened. */
static long read_whole(const char *path, char *buf, long size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = 0, r;
    while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
        n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

#endif
