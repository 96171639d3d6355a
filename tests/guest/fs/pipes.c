/* Pipes, dup/dup2/dup3, fcntl flags and locks, poll, eventfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
    int p[2];
    printf("pipe: %d\n", pipe(p));
    printf("write: %zd\n", write(p[1], "ping", 4));
    int n = -1;
    int r = ioctl(p[0], FIONREAD, &n);
    printf("FIONREAD: %d %d\n", r, n);
    struct pollfd pf = {p[0], POLLIN, 0};
    r = poll(&pf, 1, 0);
    printf("poll: %d revents=%#x\n", r, pf.revents);
    char buf[16] = {0};
    printf("read: %zd '%s'\n", read(p[0], buf, sizeof buf), buf);
    pf.revents = 0;
    printf("poll empty: %d\n", poll(&pf, 1, 0));

    int d = dup(p[1]);
    printf("dup > 2: %d\n", d > 2);
    printf("write via dup: %zd\n", write(d, "pong", 4));
    int d2 = dup2(p[1], 50);
    printf("dup2: %d\n", d2);
    int d3 = dup3(p[1], 51, O_CLOEXEC);
    printf("dup3: %d cloexec=%d\n", d3, fcntl(d3, F_GETFD) & FD_CLOEXEC);
    r = dup3(51, 51, 0);
    printf("dup3 same: %d %s\n", r, strerror(errno));
    close(d); close(d2); close(d3);
    memset(buf, 0, sizeof buf);
    printf("read: %zd '%s'\n", read(p[0], buf, sizeof buf), buf);

    int fl = fcntl(p[0], F_GETFL);
    printf("nonblock before: %d\n", !!(fl & O_NONBLOCK));
    printf("setfl: %d\n", fcntl(p[0], F_SETFL, fl | O_NONBLOCK));
    ssize_t rr = read(p[0], buf, 1);
    printf("read empty: %zd %s\n", rr, strerror(errno));
    int dfd = fcntl(p[0], F_DUPFD, 100);
    printf("F_DUPFD >= 100: %d\n", dfd >= 100);
    printf("pipe size >= 4096: %d\n", fcntl(p[0], F_GETPIPE_SZ) >= 4096);
    close(dfd);
    close(p[1]);
    printf("read eof: %zd\n", read(p[0], buf, 1));
    close(p[0]);

    int p2[2];
    printf("pipe2: %d\n", pipe2(p2, O_CLOEXEC | O_NONBLOCK));
    printf("flags: cloexec=%d nonblock=%d\n", fcntl(p2[0], F_GETFD) & FD_CLOEXEC,
           !!(fcntl(p2[1], F_GETFL) & O_NONBLOCK));
    close(p2[0]); close(p2[1]);

    char path[] = "/tmp/cetbox-lock-XXXXXX";
    int fd = mkstemp(path);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    printf("setlk: %d\n", fcntl(fd, F_SETLK, &lk));
    lk.l_type = F_RDLCK;
    r = fcntl(fd, F_GETLK, &lk);
    printf("getlk: %d type_unlck=%d\n", r, lk.l_type == F_UNLCK);
    unlink(path);
    close(fd);

    int efd = eventfd(3, 0);
    uint64_t v = 0;
    printf("eventfd write: %zd\n", write(efd, &(uint64_t){4}, 8));
    rr = read(efd, &v, 8);
    printf("eventfd read: %zd %llu\n", rr, (unsigned long long)v);
    close(efd);
    r = fcntl(9999, F_GETFD);
    printf("fcntl bad: %d %s\n", r, strerror(errno));
    return 0;
}
