/* Reads of pipes and stream sockets into destinations the guest can write only in part, while
 * a second thread exists. Linux copies chunk by chunk and consumes a chunk only once it is
 * copied (fs/pipe.c `pipe_read`: a pipe buffer whose copy comes up short ends the read, EFAULT
 * if nothing was read before it; net/unix/af_unix.c `unix_stream_read_generic`: the same per
 * skb run), so a chunk reaching the unwritable part fails whole and stays in the pipe or
 * socket, after the chunks before it were read. Also: a read into a wholly unwritable
 * destination waits for data before it fails (EFAULT, data kept), and recvmmsg on a stream
 * socket, blocked while its destination is made read-only, fails with EFAULT and leaves the
 * data (net/socket.c `do_recvmmsg` reads each message as recvmsg does). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

static int idle_pipe[2];
static void *idle(void *a) {
    char c;
    read(idle_pipe[0], &c, 1);
    return a;
}

static char *P; /* P: writable page; P + 4096: read-only page */
static char data[8192];

static void fill(void) {
    memset(P, 0x11, 4096);
}

static long pending(int fd) {
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

static void show(const char *what, long r, int fd, long at) {
    printf("%-46s -> ", what);
    if (r < 0) printf("%s", strerrorname_np(errno));
    else printf("%ld", r);
    printf("; first byte %s; left %ld\n", P[at] == 0x11 ? "untouched" : P[at] == data[0] ? "data" : "other",
           pending(fd));
}

static void drain(int fd) {
    char tmp[16384];
    while (pending(fd) > 0) read(fd, tmp, sizeof tmp);
}

static volatile int blocked_done;
static volatile long blocked_result;
static int blocked_fd, blocked_mmsg;
static volatile pid_t blocked_tid;

static void *blocked_reader(void *a) {
    blocked_tid = (pid_t)syscall(SYS_gettid);
    long r;
    if (blocked_mmsg) {
        struct iovec v = {P, 64};
        struct mmsghdr m;
        memset(&m, 0, sizeof m);
        m.msg_hdr.msg_iov = &v;
        m.msg_hdr.msg_iovlen = 1;
        r = recvmmsg(blocked_fd, &m, 1, 0, NULL);
    } else {
        r = read(blocked_fd, P + 4096, 64);
    }
    blocked_result = r < 0 ? -errno : r;
    blocked_done = 1;
    return a;
}

/* A reader blocked on an empty descriptor; `change` runs once it sleeps in its call. */
static void blocked(const char *what, int rfd, int wfd, int mmsg) {
    blocked_fd = rfd;
    blocked_mmsg = mmsg;
    blocked_done = 0;
    blocked_tid = 0;
    fill();
    pthread_t th;
    pthread_create(&th, 0, blocked_reader, 0);
    while (!blocked_tid) sched_yield();
    /* A reader that fails without waiting for data is wrong; it must not hang the test. */
    wait_blocked_unless(blocked_tid, mmsg ? SYS_recvmmsg : SYS_read, NULL, &blocked_done);
    int early = blocked_done;
    if (mmsg) mprotect(P, 4096, PROT_READ);
    write(wfd, data, 16);
    pthread_join(th, 0);
    if (mmsg) mprotect(P, 4096, PROT_READ | PROT_WRITE);
    printf("%-46s -> %s%s; returned %s; left %ld\n", what,
           blocked_result < 0 ? strerrorname_np((int)-blocked_result) : "",
           blocked_result >= 0 ? "data" : "", early ? "BEFORE the write" : "after the write",
           pending(rfd));
    drain(rfd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < (int)sizeof data; i++) data[i] = (char)('a' + i % 26);
    pipe(idle_pipe);
    pthread_t th;
    pthread_create(&th, 0, idle, 0);
    P = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(P + 4096, 4096, PROT_READ);

    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);

    fill();
    write(p[1], data, 6000);
    show("pipe 6000 in one write, read at P+100", read(p[0], P + 100, 8192), p[0], 100);
    drain(p[0]);
    fill();
    write(p[1], data, 4096);
    write(p[1], data, 16);
    show("pipe 4096 + 16, read at P", read(p[0], P, 8192), p[0], 0);
    drain(p[0]);
    fill();
    write(p[1], data, 16);
    show("pipe 16, read at P+4088", read(p[0], P + 4088, 64), p[0], 4088);
    drain(p[0]);
    fill();
    write(p[1], data, 16);
    show("pipe 16, read at P+4096 (read-only)", read(p[0], P + 4096, 64), p[0], 0);
    drain(p[0]);

    fill();
    send(s[1], data, 6000, 0);
    show("socket 6000 in one send, recv at P+100", recv(s[0], P + 100, 8192, 0), s[0], 100);
    drain(s[0]);
    fill();
    send(s[1], data, 16, 0);
    show("socket 16, recv at P+4088", recv(s[0], P + 4088, 64, 0), s[0], 4088);
    drain(s[0]);
    fill();
    send(s[1], data, 16, 0);
    show("socket 16, read at P+4088", read(s[0], P + 4088, 64), s[0], 4088);
    drain(s[0]);
    fill();
    send(s[1], data, 16, 0);
    {
        struct iovec v[2] = {{P + 4080, 8}, {P + 4096, 56}};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = v;
        m.msg_iovlen = 2;
        show("socket 16, recvmsg 8 writable + 56 read-only", recvmsg(s[0], &m, 0), s[0], 4080);
    }
    drain(s[0]);
    fill();
    send(s[1], data, 16, 0);
    {
        struct iovec v = {P + 4088, 64};
        struct mmsghdr m[2];
        memset(m, 0, sizeof m);
        m[0].msg_hdr.msg_iov = &v;
        m[0].msg_hdr.msg_iovlen = 1;
        show("socket 16, recvmmsg at P+4088", recvmmsg(s[0], m, 1, 0, NULL), s[0], 4088);
    }
    drain(s[0]);
    fill();
    send(s[1], data, 20, 0);
    {
        struct iovec v0 = {P, 8}, v1 = {P + 8, 8};
        struct mmsghdr m[2];
        memset(m, 0, sizeof m);
        m[0].msg_hdr.msg_iov = &v0;
        m[0].msg_hdr.msg_iovlen = 1;
        m[1].msg_hdr.msg_iov = &v1;
        m[1].msg_hdr.msg_iovlen = 1;
        long r = recvmmsg(s[0], m, 2, MSG_WAITFORONE, NULL);
        show("socket 20, recvmmsg 2 x 8 MSG_WAITFORONE", r, s[0], 0);
        printf("  lengths %u %u, bytes %s\n", m[0].msg_len, m[1].msg_len,
               !memcmp(P, data, 16) ? "right" : "WRONG");
    }
    drain(s[0]);

    blocked("pipe read into read-only, empty", p[0], p[1], 0);
    blocked("socket read into read-only, empty", s[0], s[1], 0);
    blocked("socket recvmmsg, page made read-only", s[0], s[1], 1);

    write(idle_pipe[1], "x", 1);
    pthread_join(th, 0);
    return 0;
}
