/* A thread blocks in a read-like call (read, readv, preadv2 at the current position, recv,
 * recvfrom, recvmsg, recv with MSG_WAITALL) on a pipe or a stream socket, into a page P.
 * Another thread then unmaps P, makes it read-only, or replaces it with a fresh writable
 * mapping, and only then writes 16 bytes. Linux copies before it consumes (fs/pipe.c
 * pipe_read, net/unix/af_unix.c unix_stream_read_generic): the blocked call fails with EFAULT
 * and the 16 bytes stay for the next read; into the fresh mapping it succeeds. The reader is
 * waited for in its system call (common/wait_blocked.h), so the race is what is tested. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

enum call { READ, READV, PREADV2, RECV, RECVFROM, RECVMSG, RECV_WAITALL, NCALLS };
static const char *call_name[] = {"read", "readv", "preadv2", "recv", "recvfrom", "recvmsg",
                                  "recv MSG_WAITALL"};
static const long call_nr[] = {SYS_read, SYS_readv, SYS_preadv2, SYS_recvfrom, SYS_recvfrom,
                               SYS_recvmsg, SYS_recvfrom};

enum change { UNMAP, READ_ONLY, REPLACED, NCHANGES };
static const char *change_name[] = {"unmapped", "made read-only", "replaced by a new mapping"};

static int rfd;
static enum call which;
static char *P;
static long result;
static volatile pid_t reader_tid;

static void *reader(void *arg) {
    (void)arg;
    reader_tid = (pid_t)syscall(SYS_gettid);
    struct iovec v[2] = {{P, 8}, {P + 8, 4088}};
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = v;
    m.msg_iovlen = 2;
    switch (which) {
    case READ: result = read(rfd, P, 4096); break;
    case READV: result = readv(rfd, v, 2); break;
    case PREADV2: result = preadv2(rfd, v, 2, -1, 0); break;
    case RECV: result = recv(rfd, P, 4096, 0); break;
    case RECVFROM: result = recvfrom(rfd, P, 4096, 0, (struct sockaddr *)&ss, &sl); break;
    case RECVMSG: result = recvmsg(rfd, &m, 0); break;
    case RECV_WAITALL: result = recv(rfd, P, 16, MSG_WAITALL); break;
    default: result = -2;
    }
    if (result < 0) result = -errno;
    return NULL;
}

static void one(int sock, enum call c, enum change ch) {
    int fds[2];
    if (sock ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds)) {
        perror("pipe");
        return;
    }
    rfd = fds[0];
    which = c;
    P = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(P, 0x11, 4096);
    pthread_t th = start_blocked(reader, &reader_tid, call_nr[c], (void *)(long)rfd);
    if (ch == UNMAP) munmap(P, 4096);
    else if (ch == READ_ONLY) mprotect(P, 4096, PROT_READ);
    else mmap(P, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    /* For MSG_WAITALL, the data comes in two writes; the second one after the first was
     * seen by the reader can not be ordered without timing, so both go at once. */
    write(fds[1], "0123456789abcdef", 16);
    pthread_join(th, NULL);
    char left[64];
    fcntl(rfd, F_SETFL, O_NONBLOCK);
    long n = read(rfd, left, sizeof left);
    printf("%-6s %-16s %-26s -> %s; ", sock ? "socket" : "pipe", call_name[c], change_name[ch],
           result == -EFAULT ? "EFAULT" : result == 16 ? "16 bytes" : "other");
    if (ch == REPLACED) printf("page %s; ", result == 16 && !memcmp(P, "0123456789abcdef", 16) ? "has the data" : "WRONG");
    if (ch == READ_ONLY) printf("page %s; ", P[0] == 0x11 && P[15] == 0x11 ? "unchanged" : "CHANGED");
    if (n == 16 && !memcmp(left, "0123456789abcdef", 16)) printf("data still there\n");
    else if (n < 0 && errno == EAGAIN) printf("nothing left\n");
    else printf("left: %ld\n", n);
    munmap(P, 4096);
    close(fds[0]);
    close(fds[1]);
}

/* A read asking for 1 GiB (more than any wait buffer) gets what is there. */
static void *big_reader(void *arg) {
    result = read(rfd, arg, 1L << 30);
    if (result < 0) result = -errno;
    return NULL;
}

static void big(void) {
    int fds[2];
    pipe(fds);
    rfd = fds[0];
    char *big = mmap(NULL, 1L << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    pthread_t th;
    pthread_create(&th, NULL, big_reader, big);
    write(fds[1], "0123456789abcdef", 16);
    pthread_join(th, NULL);
    printf("pipe   read 1 GiB -> %ld bytes, %s\n", result, memcmp(big, "0123456789abcdef", 16) ? "WRONG" : "right");
    munmap(big, 1L << 30);
    close(fds[0]);
    close(fds[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    big();
    for (int sock = 0; sock < 2; sock++)
        for (int c = 0; c < NCALLS; c++) {
            if (!sock && c >= RECV) continue;
            for (int ch = 0; ch < NCHANGES; ch++) one(sock, c, ch);
        }
    return 0;
}
