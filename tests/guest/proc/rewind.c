// A /proc file's text is made anew at every read from offset 0 (fs/seq_file.c
// seq_read_iter), so a program may keep /proc/self/status open and rewind it to watch a value
// change, as glibc's support_process_state_wait does with another process's State (tst-pidfd).
// Here the blocked-signal mask changes between reads of one descriptor: with read after
// lseek(0), with pread at 0, with readv after lseek(0), and through a dup of the descriptor.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static void show(const char *how, const char *buf) {
    const char *l = strstr(buf, "SigBlk:");
    if (!l) {
        printf("%s: no SigBlk line\n", how);
        return;
    }
    const char *e = strchr(l, '\n');
    printf("%s: %.*s\n", how, e ? (int)(e - l) : (int)strlen(l), l);
}

static void block(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_BLOCK, &s, NULL);
}

int main(void) {
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    show("first read", buf);

    block(SIGUSR1);
    lseek(fd, 0, SEEK_SET);
    n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    show("read after lseek 0", buf);

    block(SIGUSR2);
    n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    show("pread at 0", buf);

    block(SIGTERM);
    lseek(fd, 0, SEEK_SET);
    struct iovec v = {buf, sizeof buf - 1};
    n = readv(fd, &v, 1);
    buf[n > 0 ? n : 0] = 0;
    show("readv after lseek 0", buf);

    int d = dup(fd);
    block(SIGHUP);
    lseek(d, 0, SEEK_SET);
    n = read(d, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    show("dup, read after lseek 0", buf);

    // A read that does not start at 0 continues the text it began with.
    block(SIGINT);
    n = pread(fd, buf, 16, 0);
    char head[17];
    memcpy(head, buf, 16);
    head[16] = 0;
    printf("first 16 bytes: %s\n", strncmp(head, "Name:", 5) == 0 ? "Name line" : "other");
    close(d);
    close(fd);
    return 0;
}
