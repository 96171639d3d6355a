/* Lengths are checked over the whole range before anything is clamped or transferred, as
 * Linux's access_ok in vfs_read/vfs_write and import_iovec: read(fd, buf, SIZE_MAX) is EFAULT
 * with nothing written (not a short read), likewise write, pread, readv, getdents64. recv and
 * getrandom clamp first (import_ubuf), so a huge count is a plain read there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static char guard1[64], buf[64], guard2[64];

static void show(const char *what, long r) {
    printf("%-28s %s\n", what, r >= 0 ? "ok" : strerror(errno));
}

static int intact(void) {
    for (int i = 0; i < 64; i++)
        if (guard1[i] != 'g' || guard2[i] != 'g' || buf[i] != 'b') return 0;
    return 1;
}

int main(void) {
    memset(guard1, 'g', 64);
    memset(guard2, 'g', 64);
    memset(buf, 'b', 64);
    int fd = open("/dev/zero", O_RDONLY);
    show("read SIZE_MAX", syscall(SYS_read, fd, buf, SIZE_MAX));
    show("read 1<<47", syscall(SYS_read, fd, buf, 1UL << 47));
    show("read -1 as ssize", syscall(SYS_read, fd, buf, (size_t)-1));
    show("pread SIZE_MAX", syscall(SYS_pread64, fd, buf, SIZE_MAX, 0));
    struct iovec iov[2] = {{buf, 8}, {buf + 8, SIZE_MAX / 2}};
    show("readv huge second segment", syscall(SYS_readv, fd, iov, 2));
    printf("buffer untouched: %s\n", intact() ? "yes" : "no");
    int nul = open("/dev/null", O_WRONLY);
    show("write SIZE_MAX", syscall(SYS_write, nul, buf, SIZE_MAX));
    int d = open("/", O_RDONLY | O_DIRECTORY);
    show("getdents64 huge", syscall(SYS_getdents64, d, buf, 0xffffffffUL));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    write(sv[0], "xy", 2);
    long r = syscall(SYS_recvfrom, sv[1], buf, SIZE_MAX, 0, 0, 0);
    printf("recv SIZE_MAX %ld\n", r);
    printf("buffer after recv: %.4s\n", buf);
    return 0;
}
