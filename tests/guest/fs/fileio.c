/* File I/O: create, write, read back, positioned and vectored I/O, lseek, truncate, stat,
 * rename, unlink. Prints only values that are the same on every run. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static char dir[] = "/tmp/cetbox-fileio-XXXXXX";

int main(void) {
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    if (chdir(dir) != 0) { perror("chdir"); return 1; }

    int fd = open("data.txt", O_CREAT | O_EXCL | O_RDWR, 0640);
    printf("open: %s\n", fd >= 0 ? "ok" : strerror(errno));
    const char *msg = "The quick brown fox jumps over the lazy dog\n";
    printf("write: %zd\n", write(fd, msg, strlen(msg)));
    printf("lseek end: %lld\n", (long long)lseek(fd, 0, SEEK_END));
    printf("lseek set: %lld\n", (long long)lseek(fd, 4, SEEK_SET));
    char buf[64] = {0};
    printf("read: %zd '%.5s'\n", read(fd, buf, 5), buf);
    memset(buf, 0, sizeof buf);
    printf("pread: %zd '%.3s'\n", pread(fd, buf, 3, 16), buf);
    printf("pwrite: %zd\n", pwrite(fd, "FOX", 3, 16));
    struct iovec iov[3] = {{"one ", 4}, {"two ", 4}, {"three\n", 6}};
    lseek(fd, 0, SEEK_END);
    printf("writev: %zd\n", writev(fd, iov, 3));
    char a[10] = {0}, b[10] = {0};
    struct iovec riov[2] = {{a, 9}, {b, 9}};
    printf("preadv: %zd '%s' '%s'\n", preadv(fd, riov, 2, 10), a, b);

    struct stat st;
    int r = fstat(fd, &st);
    printf("fstat: %d size=%lld reg=%d mode=%o\n", r, (long long)st.st_size,
           S_ISREG(st.st_mode), st.st_mode & 0777);
    printf("ftruncate: %d\n", ftruncate(fd, 10));
    fstat(fd, &st);
    printf("size after truncate: %lld\n", (long long)st.st_size);
    printf("fsync: %d\n", fsync(fd));
    printf("close: %d\n", close(fd));
    r = close(fd);
    printf("close again: %d %s\n", r, strerror(errno));

    printf("rename: %d\n", rename("data.txt", "moved.txt"));
    r = stat("data.txt", &st);
    printf("stat old: %d %s\n", r, strerror(errno));
    r = stat("moved.txt", &st);
    printf("stat new: %d size=%lld\n", r, (long long)st.st_size);
    printf("access R_OK: %d\n", access("moved.txt", R_OK));
    printf("chmod: %d\n", chmod("moved.txt", 0600));
    stat("moved.txt", &st);
    printf("mode now: %o\n", st.st_mode & 0777);
    printf("symlink: %d\n", symlink("moved.txt", "link"));
    char target[64] = {0};
    printf("readlink: %zd '%s'\n", readlink("link", target, sizeof target - 1), target);
    r = lstat("link", &st);
    printf("lstat link: %d islnk=%d\n", r, S_ISLNK(st.st_mode));
    printf("link: %d\n", link("moved.txt", "hard"));
    stat("moved.txt", &st);
    printf("nlink: %ld\n", (long)st.st_nlink);

    FILE *f = fopen("moved.txt", "r");
    char line[64] = {0};
    printf("fgets: '%s'\n", fgets(line, sizeof line, f) ? line : "(null)");
    fclose(f);

    r = open("nope/x", O_RDONLY);
    printf("open missing: %d %s\n", r, strerror(errno));
    ssize_t rr = read(12345, buf, 1);
    printf("read bad fd: %zd %s\n", rr, strerror(errno));
    r = unlink("link");
    printf("unlink: %d", r);
    r = unlink("hard");
    printf(" %d", r);
    r = unlink("moved.txt");
    printf(" %d\n", r);
    if (chdir("/") != 0) return 1;
    printf("rmdir: %d\n", rmdir(dir));
    return 0;
}
