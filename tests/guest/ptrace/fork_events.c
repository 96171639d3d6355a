/* PTRACE_O_TRACEFORK, TRACEVFORK, TRACEVFORKDONE and TRACEEXIT: a traced process's fork and
 * vfork stop it with PTRACE_EVENT_FORK / PTRACE_EVENT_VFORK (GETEVENTMSG the child's pid);
 * the child is traced from its creation, stops first with its SIGSTOP (SI_USER, no sender)
 * with rax 0, and inherits the options, so its exit stops it with PTRACE_EVENT_EXIT (the
 * message its wait status) before it is reported exited; the vfork parent stops with
 * PTRACE_EVENT_VFORK_DONE once its child exited. Linux kernel/fork.c kernel_clone,
 * kernel/ptrace.c ptrace_init_task, kernel/exit.c do_exit. */
//! link: static
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, pid_t want, pid_t got, int st) {
    printf("%s: waited=%d ", what, got == want);
    if (WIFSTOPPED(st))
        printf("stopped sig=%d event=%d", WSTOPSIG(st), st >> 16);
    else if (WIFEXITED(st))
        printf("exited %d", WEXITSTATUS(st));
    else
        printf("status %#x", st);
    unsigned long msg = 0;
    if (WIFSTOPPED(st) && st >> 16) {
        ptrace(PTRACE_GETEVENTMSG, want, 0, &msg);
        printf(" msg=%lu", st >> 16 == PTRACE_EVENT_EXIT ? msg : 0);
    }
    printf("\n");
}

static pid_t event_msg(pid_t pid) {
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
    return (pid_t)msg;
}

/* The new child's first stop and registers, then its exit through PTRACE_EVENT_EXIT. */
static void first_stop(const char *name, pid_t child, pid_t parent) {
    int st;
    pid_t w = waitpid(child, &st, __WALL);
    show(name, child, w, st);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    long rc = ptrace(PTRACE_GETSIGINFO, child, 0, &si);
    struct user_regs_struct c, p;
    ptrace(PTRACE_GETREGS, child, 0, &c);
    ptrace(PTRACE_GETREGS, parent, 0, &p);
    printf("  getsiginfo=%ld signo=%d code=%d pid=%d rax=%lld same_rip=%d same_orig_rax=%d\n", rc,
           si.si_signo, si.si_code, si.si_pid, (long long)c.rax, c.rip == p.rip,
           c.orig_rax == p.orig_rax);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        /* No SIGCHLD stops in between (cetbox reports no stops for ignored signals). */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGCHLD);
        sigprocmask(SIG_BLOCK, &s, 0);
        pid_t a = fork();
        if (a == 0) _exit(4);
        pid_t b = vfork();
        if (b == 0) _exit(5);
        int s1, s2;
        waitpid(a, &s1, 0);
        waitpid(b, &s2, 0);
        _exit(WEXITSTATUS(s1) + WEXITSTATUS(s2) - 3);
    }
    int st;
    pid_t w = waitpid(pid, &st, 0);
    show("child", pid, w, st);
    long rc = ptrace(PTRACE_SETOPTIONS, pid, 0,
                     PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE |
                         PTRACE_O_TRACEEXIT);
    printf("setoptions=%ld\n", rc);
    ptrace(PTRACE_CONT, pid, 0, 0);

    w = waitpid(pid, &st, __WALL);
    show("fork", pid, w, st);
    pid_t a = event_msg(pid);
    first_stop("forked", a, pid);
    ptrace(PTRACE_CONT, a, 0, 0);
    w = waitpid(a, &st, __WALL);
    show("forked exit", a, w, st);
    ptrace(PTRACE_CONT, a, 0, 0);
    w = waitpid(a, &st, __WALL);
    show("forked end", a, w, st);

    ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, __WALL);
    show("vfork", pid, w, st);
    pid_t b = event_msg(pid);
    first_stop("vforked", b, pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    ptrace(PTRACE_CONT, b, 0, 0);
    w = waitpid(b, &st, __WALL);
    show("vforked exit", b, w, st);
    ptrace(PTRACE_CONT, b, 0, 0);
    w = waitpid(b, &st, __WALL);
    show("vforked end", b, w, st);
    w = waitpid(pid, &st, __WALL);
    show("vfork done", pid, w, st);
    printf("  msg is child: %d\n", event_msg(pid) == b);
    ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, __WALL);
    show("child exit", pid, w, st);
    ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, __WALL);
    show("child end", pid, w, st);
    errno = 0;
    w = waitpid(-1, &st, __WALL);
    printf("no more: %d errno=%d\n", w, errno);
    return 0;
}
