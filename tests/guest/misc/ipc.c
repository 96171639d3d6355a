// Processes talking to each other: pipes with poll/select/epoll, eventfd shared across fork,
// timerfd, signalfd for SIGCHLD, unix socketpairs with descriptor passing, loopback TCP,
// process groups and sessions, kill to other processes and groups, waitid and wait4 with
// stop/continue/exit/kill statuses, posix_spawn, vfork.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void pipes_and_polling(void) {
    /* The child keeps its write end open until the parent has polled and read (ack), so
     * poll sees POLLIN alone, never POLLHUP, whoever runs first. */
    int p[2], ack[2];
    pipe(p);
    pipe(ack);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        close(ack[1]);
        write(p[1], "abc", 3);
        char k;
        read(ack[0], &k, 1);
        _exit(0);
    }
    close(p[1]);
    close(ack[0]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int r = poll(&pf, 1, -1);
    printf("poll: %d revents=%#x\n", r, pf.revents);
    char b[8];
    printf("read %zd\n", read(p[0], b, sizeof b));
    write(ack[1], "k", 1);
    close(ack[1]);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    r = select(p[0] + 1, &rs, NULL, NULL, NULL);
    printf("select after writer exit: %d isset=%d read=%zd\n", r, FD_ISSET(p[0], &rs), read(p[0], b, 8));
    waitpid(c, NULL, 0);
    close(p[0]);

    int q[2];
    pipe2(q, O_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77};
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    struct epoll_event out[4];
    printf("epoll empty: %d\n", epoll_wait(ep, out, 4, 0));
    c = fork();
    if (c == 0) {
        write(q[1], "z", 1);
        _exit(0);
    }
    r = epoll_wait(ep, out, 4, -1);
    printf("epoll: %d data=%lu events=%#x\n", r, (unsigned long)out[0].data.u64, out[0].events);
    waitpid(c, NULL, 0);
    close(ep);
    close(q[0]);
    close(q[1]);
}

static void eventfd_timerfd(void) {
    int e = eventfd(0, 0);
    pid_t c = fork();
    if (c == 0) {
        uint64_t v = 5;
        write(e, &v, 8);
        write(e, &v, 8);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    uint64_t v = 0;
    read(e, &v, 8);
    printf("eventfd from child: %lu\n", (unsigned long)v);
    close(e);
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timerfd_settime(t, 0, &its, NULL);
    uint64_t n = 0;
    read(t, &n, 8);
    printf("timerfd expired: %d\n", n >= 1);
    close(t);
}

static void signalfd_chld(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    sigprocmask(SIG_BLOCK, &s, NULL);
    int sfd = signalfd(-1, &s, SFD_CLOEXEC);
    pid_t c = fork();
    if (c == 0) _exit(33);
    struct signalfd_siginfo si;
    ssize_t r = read(sfd, &si, sizeof si);
    printf("signalfd: %zd signo=%u code=%d pid_ok=%d status=%d\n", r, si.ssi_signo, si.ssi_code,
           (pid_t)si.ssi_pid == c, si.ssi_status);
    waitpid(c, NULL, 0);
    close(sfd);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static void sockets(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        // Pass a pipe's read end to the parent.
        int p[2];
        pipe(p);
        write(p[1], "via passed fd", 13);
        close(p[1]);
        char cbuf[CMSG_SPACE(sizeof(int))];
        memset(cbuf, 0, sizeof cbuf);
        struct iovec iov = {.iov_base = "m", .iov_len = 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
        sendmsg(sv[1], &mh, 0);
        _exit(0);
    }
    close(sv[1]);
    char cbuf[CMSG_SPACE(sizeof(int))], m;
    struct iovec iov = {.iov_base = &m, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(sv[0], &mh, 0);
    int fd = -1;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    if (cm && cm->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    char b[32] = {0};
    read(fd, b, sizeof b - 1);
    printf("unix: %zd byte, passed fd says '%s'\n", r, b);
    waitpid(c, NULL, 0);
    close(fd);
    close(sv[0]);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(ls, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    listen(ls, 1);
    c = fork();
    if (c == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        connect(s, (struct sockaddr *)&a, sizeof a);
        write(s, "hello tcp", 9);
        char rb[16] = {0};
        read(s, rb, sizeof rb - 1);
        printf("tcp child got '%s'\n", rb);
        _exit(0);
    }
    int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    char rb[16] = {0};
    read(s, rb, 9);
    write(s, "reply", 5);
    waitpid(c, NULL, 0);
    printf("tcp parent got '%s'\n", rb);
    close(s);
    close(ls);
}

static void groups_and_kill(void) {
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        pause();
        _exit(0);
    }
    setpgid(c, c);
    printf("child pgid is its pid: %d, differs from ours: %d\n", getpgid(c) == c, getpgrp() != c);
    kill(-c, SIGUSR1);
    int st;
    waitpid(c, &st, 0);
    printf("group kill: signaled=%d sig=%s\n", WIFSIGNALED(st), sigabbrev_np(WTERMSIG(st)));
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        pid_t s = setsid();
        char r = (s == getpid() && getsid(0) == getpid() && getpgrp() == getpid()) ? 'y' : 'n';
        write(p[1], &r, 1);
        _exit(0);
    }
    char r;
    read(p[0], &r, 1);
    waitpid(c, NULL, 0);
    printf("setsid in child: %c\n", r);
    // The runner makes us a group leader (natively and under cetbox): EPERM.
    errno = 0;
    int ss = setsid();
    int e = errno;
    printf("setsid as group leader: %s\n", ss == -1 ? strerrorname_np(e) : "became leader");
    close(p[0]);
    close(p[1]);
    int k = kill(0x3ffffff0, 0);
    e = errno;
    printf("kill nonexistent: %d %s\n", k, strerrorname_np(e));
}

static void wait_statuses(void) {
    pid_t c = fork();
    if (c == 0) {
        for (;;) pause();
    }
    kill(c, SIGSTOP);
    int st;
    pid_t w = waitpid(c, &st, WUNTRACED);
    printf("stopped: %d sig=%s\n", w == c && WIFSTOPPED(st), sigabbrev_np(WSTOPSIG(st)));
    kill(c, SIGCONT);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PID, c, &si, WCONTINUED);
    printf("continued: code=%d status=%d pid_ok=%d\n", si.si_code, si.si_status, si.si_pid == c);
    memset(&si, 0, sizeof si);
    printf("WNOHANG: %d pid=%d\n", waitid(P_PID, c, &si, WEXITED | WNOHANG), si.si_pid);
    kill(c, SIGKILL);
    memset(&si, 0, sizeof si);
    waitid(P_ALL, 0, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: code=%d status=%d\n", si.si_code, si.si_status);
    struct rusage ru;
    w = wait4(c, &st, 0, &ru);
    printf("wait4: %d signaled=%d sig=%s\n", w == c, WIFSIGNALED(st), sigabbrev_np(WTERMSIG(st)));
    c = fork();
    if (c == 0) _exit(200);
    memset(&si, 0, sizeof si);
    waitid(P_PGID, 0, &si, WEXITED);
    printf("waitid exit: code=%d status=%d\n", si.si_code, si.si_status);
    pid_t none = waitpid(-1, NULL, WNOHANG);
    int e = errno;
    printf("ECHILD: %d %s\n", none, strerrorname_np(e));
}

static void spawning(void) {
    pid_t p;
    int st;
    char *a[] = {"sh", "-c", "exit 12", NULL};
    int r = posix_spawn(&p, "/bin/sh", NULL, NULL, a, environ);
    waitpid(p, &st, 0);
    printf("posix_spawn: %d exit %d\n", r, WEXITSTATUS(st));
    char *b[] = {"nope", NULL};
    r = posix_spawn(&p, "/nonexistent/prog", NULL, NULL, b, environ);
    printf("posix_spawn missing: %s\n", strerrorname_np(r));
    r = posix_spawnp(&p, "no-such-command-here", NULL, NULL, b, environ);
    printf("posix_spawnp missing: %s\n", strerrorname_np(r));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *c[] = {"echo", "hidden", NULL};
    r = posix_spawn(&p, "/bin/echo", &fa, NULL, c, environ);
    waitpid(p, &st, 0);
    printf("file actions: %d exit %d\n", r, WEXITSTATUS(st));
    volatile int shared = 1;
    pid_t v = vfork();
    if (v == 0) {
        shared = 42;
        _exit(3);
    }
    waitpid(v, &st, 0);
    printf("vfork: child wrote %d, exit %d\n", shared, WEXITSTATUS(st));
    FILE *f = popen("echo popen works; exit 4", "r");
    char line[64] = {0};
    fgets(line, sizeof line, f);
    printf("%s", line);
    printf("pclose: %d\n", WEXITSTATUS(pclose(f)));
    printf("system: %d\n", WEXITSTATUS(system("exit 6")));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pipes_and_polling();
    eventfd_timerfd();
    signalfd_chld();
    sockets();
    groups_and_kill();
    wait_statuses();
    spawning();
    return 0;
}
