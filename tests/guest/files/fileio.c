#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define CHECK(x) do { errno = 0; long r_ = (long)(x); int e_ = errno; printf("%-48s -> %ld%s%s\n", #x, r_, e_ ? " errno=" : "", e_ ? strerrorname_np(e_) : ""); } while (0)
int main(void) {
    char dir[] = "/tmp/cetbox-fileio-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    if (chdir(dir)) return 1;
    umask(022);
    errno = 0;
    int fd = open("a.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    printf("open fd>=3: %d\n", fd >= 3);
    CHECK(write(fd, "hello, file\n", 12));
    CHECK(lseek(fd, 0, SEEK_CUR));
    CHECK(lseek(fd, 100, SEEK_SET));
    CHECK(write(fd, "X", 1));
    struct stat st;
    CHECK(fstat(fd, &st));
    printf("size %ld mode %o nlink %ld regular %d blocks>0 %d\n", (long)st.st_size, st.st_mode & 07777, (long)st.st_nlink, S_ISREG(st.st_mode), st.st_blocks > 0);
    char buf[200];
    memset(buf, '.', sizeof buf);
    CHECK(pread(fd, buf, 200, 0));
    int zeros = 0;
    for (int i = 12; i < 100; i++) zeros += buf[i] == 0;
    printf("hole zeros %d, first [%.11s] last %c\n", zeros, buf, buf[100]);
    CHECK(pwrite(fd, "HELLO", 5, 0));
    CHECK(lseek(fd, 0, SEEK_SET));
    CHECK(read(fd, buf, 5));
    printf("after pwrite: %.5s\n", buf);
    struct iovec iov[3] = {{"one ", 4}, {"two ", 4}, {"three\n", 6}};
    CHECK(lseek(fd, 0, SEEK_END));
    CHECK(writev(fd, iov, 3));
    char r1[4], r2[10];
    struct iovec riov[2] = {{r1, 4}, {r2, 10}};
    CHECK(preadv(fd, riov, 2, 101));
    printf("readv: [%.4s][%.10s]\n", r1, r2);
    CHECK(ftruncate(fd, 5));
    CHECK(fstat(fd, &st));
    printf("size after truncate %ld\n", (long)st.st_size);
    CHECK(lseek(fd, 0, SEEK_END));
    CHECK(read(fd, buf, 10));
    CHECK(close(fd));
    CHECK(close(fd));
    CHECK(open("missing", O_RDONLY));
    CHECK(open("a.txt", O_CREAT | O_EXCL | O_WRONLY, 0600));
    fd = open("b.txt", O_CREAT | O_WRONLY | O_APPEND, 0600);
    CHECK(write(fd, "1", 1));
    CHECK(lseek(fd, 0, SEEK_SET));
    CHECK(write(fd, "2", 1));
    CHECK(fcntl(fd, F_GETFL) & (O_APPEND | O_ACCMODE));
    CHECK(fcntl(fd, F_GETFD));
    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC));
    CHECK(fcntl(fd, F_GETFD));
    int d2 = dup(fd);
    printf("dup shares offset: %ld\n", (long)lseek(d2, 0, SEEK_CUR));
    CHECK(dup2(fd, 50));
    CHECK(fcntl(50, F_GETFD));
    CHECK(dup3(fd, 51, O_CLOEXEC));
    CHECK(fcntl(51, F_GETFD));
    CHECK(fcntl(fd, F_DUPFD, 60));
    close(d2); close(50); close(51); close(60); close(fd);
    CHECK(stat("b.txt", &st));
    printf("b.txt size %ld mode %o\n", (long)st.st_size, st.st_mode & 0777);
    CHECK(chmod("b.txt", 0751));
    CHECK(stat("b.txt", &st));
    printf("chmod mode %o\n", st.st_mode & 0777);
    CHECK(access("b.txt", R_OK));
    CHECK(access("nope", F_OK));
    CHECK(rename("b.txt", "c.txt"));
    CHECK(link("c.txt", "d.txt"));
    CHECK(stat("c.txt", &st));
    printf("nlink %ld\n", (long)st.st_nlink);
    CHECK(symlink("c.txt", "e.lnk"));
    memset(buf, 0, sizeof buf);
    CHECK(readlink("e.lnk", buf, sizeof buf));
    printf("readlink [%s]\n", buf);
    CHECK(lstat("e.lnk", &st));
    printf("lstat is link %d\n", S_ISLNK(st.st_mode));
    CHECK(stat("e.lnk", &st));
    printf("stat follows %d size %ld\n", S_ISREG(st.st_mode), (long)st.st_size);
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(faccessat(dfd, "c.txt", W_OK, 0));
    CHECK(fstatat(dfd, "e.lnk", &st, AT_SYMLINK_NOFOLLOW));
    CHECK(unlinkat(dfd, "d.txt", 0));
    CHECK(renameat(dfd, "c.txt", dfd, "f.txt"));
    CHECK(openat(dfd, "g.txt", O_CREAT | O_WRONLY, 0666) >= 0);
    CHECK(fstatat(dfd, "g.txt", &st, 0));
    printf("umask applied mode %o\n", st.st_mode & 0777);
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    CHECK(utimensat(dfd, "g.txt", times, 0));
    CHECK(stat("g.txt", &st));
    printf("mtime %ld.%09ld atime %ld\n", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long)st.st_atim.tv_sec);
    close(dfd);
    /* a big file, read back in odd-sized chunks */
    fd = open("big.bin", O_CREAT | O_RDWR, 0600);
    unsigned char *blk = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++) blk[i] = (unsigned char)(i * 13 + (i >> 10));
    for (int k = 0; k < 4; k++) if (write(fd, blk, 1 << 20) != (1 << 20)) printf("short write\n");
    lseek(fd, 0, SEEK_SET);
    unsigned long h = 0; ssize_t n; long total = 0;
    while ((n = read(fd, blk, 77777)) > 0) { for (ssize_t i = 0; i < n; i++) h = h * 31 + blk[i]; total += n; }
    printf("big file read %ld bytes hash %lu\n", total, h);
    close(fd);
    free(blk);
    const char *names[] = {"a.txt", "e.lnk", "f.txt", "g.txt", "big.bin"};
    for (unsigned i = 0; i < 5; i++) CHECK(unlink(names[i]));
    CHECK(chdir("/"));
    CHECK(rmdir(dir));
    return 0;
}
