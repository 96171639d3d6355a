// CLONE_PIDFD for a new process, as kernel_clone (kernel/fork.c) defines it: legacy clone
// stores the pidfd where parent_tid points, so CLONE_PIDFD with CLONE_PARENT_SETTID is EINVAL;
// clone3 has a separate pidfd field, so both flags together work when the two locations
// differ (the pidfd lands in `pidfd`, the child's pid in `parent_tid`) and are EINVAL when
// they are the same.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

/* Waits through the pidfd: it becomes readable when the child exits; then its status. */
static void reap(const char *what, long pid, int pidfd) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int ready = poll(&p, 1, 10000);
    printf("%s: pidfd readable after exit: %s\n", what, ready == 1 ? "yes" : "no");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = waitid(P_PIDFD, pidfd, &si, WEXITED);
    printf("%s: waitid(P_PIDFD): %s, same pid: %s, status %d\n", what, e(r),
           si.si_pid == pid ? "yes" : "no", si.si_status);
    close(pidfd);
}

int main(void) {
    int pidfd = -1;
    pid_t ptid = -1;

    /* Legacy clone: pidfd and parent_tid are one argument. */
    long r = syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &pidfd, 0, 0);
    if (r == 0)
        _exit(9);
    printf("clone PIDFD|PARENT_SETTID: %s\n", e(r));

    /* Legacy clone with CLONE_PIDFD alone: the pidfd goes to parent_tid. */
    pidfd = -1;
    r = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
    if (r == 0)
        _exit(5);
    printf("clone PIDFD: %s, pidfd stored: %s\n", e(r), pidfd >= 0 ? "yes" : "no");
    if (r > 0 && pidfd >= 0)
        reap("clone", r, pidfd);

    /* clone3 with separate locations. */
    struct clone_args a;
    memset(&a, 0, sizeof a);
    pidfd = -1;
    a.flags = CLONE_PIDFD | CLONE_PARENT_SETTID;
    a.pidfd = (uint64_t)(uintptr_t)&pidfd;
    a.parent_tid = (uint64_t)(uintptr_t)&ptid;
    a.exit_signal = SIGCHLD;
    r = syscall(SYS_clone3, &a, sizeof a);
    if (r == 0)
        _exit(7);
    printf("clone3 PIDFD|PARENT_SETTID apart: %s, pidfd stored: %s, parent_tid is the pid: %s\n",
           e(r), pidfd >= 0 ? "yes" : "no", r > 0 && ptid == r ? "yes" : "no");
    if (r > 0 && pidfd >= 0)
        reap("clone3", r, pidfd);

    /* clone3 with both at one location. */
    a.pidfd = a.parent_tid;
    r = syscall(SYS_clone3, &a, sizeof a);
    if (r == 0)
        _exit(8);
    printf("clone3 PIDFD|PARENT_SETTID together: %s\n", e(r));
    if (r > 0)
        waitpid(r, NULL, 0);
    return 0;
}
