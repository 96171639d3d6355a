// pidfd_open, pidfd_getfd, process_mrelease; unshare and setns; the sched_setattr/getattr and
// sched_param argument checks, in Linux's order (kernel/pid.c, mm/oom_kill.c, kernel/fork.c,
// kernel/nsproxy.c, kernel/sched/syscalls.c).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)16)

static void show(const char *what, long r) {
    printf("%-44s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

static int same_file(int a, int b) {
    struct stat x, y;
    return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static void pidfds(void) {
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    show("pidfd_open self >= 0", self >= 0);
    show("pidfd_open bad flags", syscall(SYS_pidfd_open, getpid(), 1));
    show("pidfd_open pid -1", syscall(SYS_pidfd_open, -1, 0));
    show("pidfd_open pid 0", syscall(SYS_pidfd_open, 0, 0));

    int p[2];
    pipe(p);
    int dup = syscall(SYS_pidfd_getfd, self, p[1], 0);
    show("pidfd_getfd own pipe >= 0", dup >= 0);
    show("  same file", same_file(dup, p[1]));
    show("  close-on-exec", (fcntl(dup, F_GETFD) & FD_CLOEXEC) != 0);
    show("pidfd_getfd bad flags", syscall(SYS_pidfd_getfd, self, p[1], 1));
    show("pidfd_getfd bad target fd", syscall(SYS_pidfd_getfd, self, 999, 0));
    show("pidfd_getfd not a pidfd", syscall(SYS_pidfd_getfd, p[0], p[1], 0));

    /* A child that waits on the pipe: its descriptors are reachable through its pidfd. */
    int q[2];
    pipe(q);
    pid_t c = fork();
    if (c == 0) {
        char k;
        close(q[1]);
        read(q[0], &k, 1);
        _exit(3);
    }
    close(q[0]);
    int cfd = syscall(SYS_pidfd_open, c, 0);
    show("pidfd_open child >= 0", cfd >= 0);
    int theirs = syscall(SYS_pidfd_getfd, cfd, q[0], 0);
    show("pidfd_getfd child's read end >= 0", theirs >= 0);
    show("process_mrelease live child", syscall(SYS_process_mrelease, cfd, 0));
    show("process_mrelease bad flags", syscall(SYS_process_mrelease, cfd, 1));
    show("process_mrelease not a pidfd", syscall(SYS_process_mrelease, p[0], 0));
    show("pidfd_send_signal 0", syscall(SYS_pidfd_send_signal, cfd, 0, NULL, 0));
    write(q[1], "x", 1);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    show("waitid P_PIDFD", waitid(P_PIDFD, cfd, &si, WEXITED));
    printf("child exit %d\n", si.si_status);
}

static void namespaces(void) {
    show("unshare 0", unshare(0));
    show("unshare CLONE_FILES", unshare(CLONE_FILES));
    show("unshare CLONE_FS", unshare(CLONE_FS));
    show("unshare bad flag", unshare(0x1));
    long r = unshare(CLONE_NEWUTS);
    show("unshare CLONE_NEWUTS", r);
    if (r == 0) {
        show("sethostname", sethostname("cetbox-ns-test", 14));
        struct utsname u;
        uname(&u);
        printf("nodename %s\n", u.nodename);
    }
    int ns = open("/proc/self/ns/uts", O_RDONLY);
    show("setns own uts", setns(ns, CLONE_NEWUTS));
    show("setns wrong type", setns(ns, CLONE_NEWNET));
    show("setns bad fd", setns(-1, 0));
}

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
    char extra[64];
};

static void sched(void) {
    struct attr a;
    memset(&a, 0, sizeof a);
    show("sched_getattr 56", syscall(SYS_sched_getattr, 0, &a, 56, 0));
    printf("size %u policy %u\n", a.size, a.policy);
    show("sched_getattr NULL", syscall(SYS_sched_getattr, 0, NULL, 56, 0));
    show("sched_getattr size 47", syscall(SYS_sched_getattr, 0, &a, 47, 0));
    show("sched_getattr size 8192", syscall(SYS_sched_getattr, 0, &a, 8192, 0));
    show("sched_getattr flags 1", syscall(SYS_sched_getattr, 0, &a, 56, 1));
    show("sched_getattr pid -1", syscall(SYS_sched_getattr, -1, &a, 56, 0));
    show("sched_getattr bad pointer", syscall(SYS_sched_getattr, 0, BAD, 56, 0));

    memset(&a, 0, sizeof a);
    a.size = 48;
    show("sched_setattr SCHED_OTHER", syscall(SYS_sched_setattr, 0, &a, 0));
    a.size = 0;
    show("sched_setattr size 0", syscall(SYS_sched_setattr, 0, &a, 0));
    show("sched_setattr NULL", syscall(SYS_sched_setattr, 0, NULL, 0));
    show("sched_setattr pid -1", syscall(SYS_sched_setattr, -1, &a, 0));
    show("sched_setattr flags 1", syscall(SYS_sched_setattr, 0, &a, 1));
    show("sched_setattr bad pointer", syscall(SYS_sched_setattr, 0, BAD, 0));
    a.size = 8;
    show("sched_setattr size 8", syscall(SYS_sched_setattr, 0, &a, 0));
    printf("size written back %u\n", a.size);
    a.size = 8192;
    show("sched_setattr size 8192", syscall(SYS_sched_setattr, 0, &a, 0));
    printf("size written back %u\n", a.size);
    a.size = sizeof a;
    a.extra[10] = 1;
    show("sched_setattr non-zero tail", syscall(SYS_sched_setattr, 0, &a, 0));
    printf("size written back %u\n", a.size);

    struct sched_param sp = {0};
    show("sched_getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
    show("sched_getparam pid -1", syscall(SYS_sched_getparam, -1, &sp));
    show("sched_getparam bad pointer", syscall(SYS_sched_getparam, 0, BAD));
    show("sched_setparam NULL", syscall(SYS_sched_setparam, 0, NULL));
    show("sched_setparam pid -1, bad pointer", syscall(SYS_sched_setparam, -1, BAD));
    show("sched_setscheduler policy -1, NULL", syscall(SYS_sched_setscheduler, 0, -1, NULL));
    show("sched_setscheduler NULL", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    show("sched_setscheduler bad pointer", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, BAD));
    show("sched_setscheduler SCHED_OTHER", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pidfds();
    namespaces();
    sched();
    return 0;
}
