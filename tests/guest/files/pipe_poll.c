#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <signal.h>
int main(void) {
    int p[2];
    printf("pipe: %d\n", pipe(p));
    struct pollfd pf[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    int r = poll(pf, 2, 0);
    printf("poll empty: %d rd %#x wr %#x\n", r, pf[0].revents, pf[1].revents);
    printf("write: %zd\n", write(p[1], "abcdef", 6));
    r = poll(pf, 2, 0);
    printf("poll data: %d rd %#x wr %#x\n", r, pf[0].revents, pf[1].revents);
    char b[16];
    ssize_t nr;
    nr = read(p[0], b, 3);
    printf("read: %zd [%.3s]\n", nr, b);
    fd_set rs; FD_ZERO(&rs); FD_SET(p[0], &rs);
    struct timeval tv = {0, 0};
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    printf("select: %d isset %d\n", r, FD_ISSET(p[0], &rs));
    printf("read rest: %zd\n", read(p[0], b, 16));
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    errno = 0;
    nr = read(p[0], b, 16);
    printf("nonblocking read: %zd EAGAIN %d\n", nr, errno == EAGAIN);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    long total = 0; ssize_t w;
    static char chunk[4096];
    while ((w = write(p[1], chunk, sizeof chunk)) > 0) total += w;
    printf("pipe capacity %ld EAGAIN %d\n", total, errno == EAGAIN);
    printf("F_GETPIPE_SZ %d\n", fcntl(p[1], F_GETPIPE_SZ));
    close(p[1]);
    long drained = 0; ssize_t rr;
    while ((rr = read(p[0], chunk, sizeof chunk)) > 0) drained += rr;
    printf("drained %ld then eof %zd\n", drained, rr);
    struct pollfd hup = {p[0], POLLIN, 0};
    r = poll(&hup, 1, 0);
    printf("poll after close: %d revents %#x\n", r, hup.revents);
    close(p[0]);
    int p2[2];
    pipe2(p2, O_CLOEXEC);
    close(p2[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    nr = write(p2[1], "x", 1);
    printf("write to closed pipe: %zd EPIPE %d\n", nr, errno == EPIPE);
    close(p2[1]);
    int efd = eventfd(5, 0);
    unsigned long long v = 0;
    nr = read(efd, &v, 8);
    printf("eventfd read: %zd value %llu\n", nr, v);
    v = 7; write(efd, &v, 8); v = 3; write(efd, &v, 8);
    read(efd, &v, 8);
    printf("eventfd sum %llu\n", v);
    close(efd);
    printf("poll timeout 20ms on nothing: %d\n", poll(NULL, 0, 20));
    r = close(999);
    printf("close bad fd: %d EBADF %d\n", r, errno == EBADF);
    return 0;
}
