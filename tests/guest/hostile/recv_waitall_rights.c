/* recvmsg with MSG_WAITALL on a unix stream socket stops after a message that carries
 * descriptors (net/unix/af_unix.c unix_stream_read_generic: "if (scm.fp) break"), so the
 * SCM_RIGHTS of that message reach the caller with the data read so far; the rest stays
 * queued for the next call. A second thread exists so cetbox reads the stream in several takes
 * (crates/linux/src/syscalls/fs/unread.rs): the descriptors of an earlier take must not be
 * lost to a later one, nor a later take's descriptors to the control space an earlier one
 * used. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int gate[2];

static void *idle(void *arg) {
    (void)arg;
    char c;
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
    }
    return 0;
}

static void send_msg(int s, const char *data, int fd) {
    struct iovec v = {(void *)data, strlen(data)};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } c;
    struct msghdr m = {0};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&c, 0, sizeof c);
        m.msg_control = c.b;
        m.msg_controllen = sizeof c.b;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
    }
    if (sendmsg(s, &m, 0) < 0) perror("sendmsg");
}

static void recv_show(int s, size_t want, int flags) {
    char data[64] = {0};
    struct iovec v = {data, want};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(2 * sizeof(int))];
    } c;
    memset(&c, 0, sizeof c);
    struct msghdr m = {0};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = c.b;
    m.msg_controllen = sizeof c.b;
    long r = recvmsg(s, &m, flags);
    if (r < 0) {
        printf("recvmsg: %s\n", strerrorname_np(errno));
        return;
    }
    printf("recvmsg: %ld \"%.*s\" flags %s", r, (int)r, data, m.msg_flags & MSG_CTRUNC ? "CTRUNC" : "-");
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
            int n = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            printf(" rights %d:", n);
            for (int i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
                struct stat st;
                printf(" %s", fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) ? "chardev" : "bad");
                close(fd);
            }
        } else {
            printf(" cmsg %d/%d", h->cmsg_level, h->cmsg_type);
        }
    }
    printf("\n");
}

int main(void) {
    if (pipe(gate)) return 1;
    pthread_t th;
    pthread_create(&th, 0, idle, 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) return 1;
    int null = open("/dev/null", O_RDONLY);

    /* Plain, with a descriptor, plain: WAITALL for all 12 bytes stops after the second. */
    send_msg(sv[0], "AAAA", -1);
    send_msg(sv[0], "BBBB", null);
    send_msg(sv[0], "CCCC", -1);
    recv_show(sv[1], 12, MSG_WAITALL);
    recv_show(sv[1], 12, MSG_DONTWAIT);

    /* A descriptor first: the read stops after it. */
    send_msg(sv[0], "DDDD", null);
    send_msg(sv[0], "EEEE", -1);
    recv_show(sv[1], 8, MSG_WAITALL);
    recv_show(sv[1], 4, MSG_WAITALL);

    /* Two messages with descriptors: one at a time. */
    send_msg(sv[0], "FFFF", null);
    send_msg(sv[0], "GGGG", null);
    recv_show(sv[1], 8, MSG_WAITALL);
    recv_show(sv[1], 4, MSG_WAITALL);

    /* Without WAITALL the same stop. */
    send_msg(sv[0], "HHHH", -1);
    send_msg(sv[0], "IIII", null);
    send_msg(sv[0], "JJJJ", -1);
    recv_show(sv[1], 12, 0);
    recv_show(sv[1], 12, 0);

    if (write(gate[1], "x", 1) != 1) return 1;
    pthread_join(th, 0);
    return 0;
}
