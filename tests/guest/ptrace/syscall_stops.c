/* PTRACE_SYSCALL stops of a PTRACE_TRACEME tracee: the SIGSTOP it sends itself is a
 * signal-delivery-stop (GETSIGINFO: SI_USER from itself); with PTRACE_O_TRACESYSGOOD the
 * syscall stops report SIGTRAP|0x80. At syscall-enter-stop rax is -ENOSYS and orig_rax the
 * number, the arguments in their registers; the tracer shortens a write's count, redirects a
 * getppid to getpid and skips an exit_group (orig_rax -1, rax set by the tracer); the
 * syscall-exit-stop shows the result. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static long raw3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static void child(void) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
    kill(getpid(), SIGSTOP);
    long w = raw3(SYS_write, 1, (long)"hello, world\n", 13);
    long p = raw3(SYS_getppid, 0, 0, 0);
    long e = raw3(SYS_exit_group, 7, 0, 0);
    printf("\nchild: write=%ld getppid_is_self=%d exit_group=%ld\n", w, p == getpid(), e);
    _exit(0);
}

static int step(pid_t pid, struct user_regs_struct *r) {
    int st;
    ptrace(PTRACE_SYSCALL, pid, 0, 0);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_GETREGS, pid, 0, r);
    return st;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) child();
    int st;
    waitpid(pid, &st, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("stop: status=%#x signo=%d code=%d from_self=%d\n", st, si.si_signo, si.si_code, si.si_pid == pid);
    errno = 0;
    long rc = ptrace(PTRACE_SETOPTIONS, pid, 0, 0x80000000L);
    printf("setoptions bad=%ld errno=%d\n", rc, errno);
    rc = ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD);
    printf("setoptions=%ld\n", rc);

    struct user_regs_struct r;
    /* write: shorten the count to 6. */
    st = step(pid, &r);
    printf("enter: status=%#x orig_rax=%lld rax=%lld rdi=%lld rdx=%lld\n", st, r.orig_rax, r.rax, r.rdi, r.rdx);
    ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("enter siginfo: signo=%d code=%#x\n", si.si_signo, si.si_code);
    r.rdx = 6;
    ptrace(PTRACE_SETREGS, pid, 0, &r);
    st = step(pid, &r);
    printf("\nexit: status=%#x orig_rax=%lld rax=%lld\n", st, r.orig_rax, r.rax);

    /* getppid becomes getpid. */
    st = step(pid, &r);
    printf("enter: orig_rax=%lld rax=%lld\n", r.orig_rax, r.rax);
    r.orig_rax = SYS_getpid;
    ptrace(PTRACE_SETREGS, pid, 0, &r);
    st = step(pid, &r);
    printf("exit: orig_rax=%lld result_is_child=%d\n", r.orig_rax, r.rax == pid);

    /* exit_group skipped: orig_rax -1, rax 42. */
    st = step(pid, &r);
    printf("enter: orig_rax=%lld rdi=%lld\n", r.orig_rax, r.rdi);
    r.orig_rax = -1;
    r.rax = 42;
    ptrace(PTRACE_SETREGS, pid, 0, &r);
    st = step(pid, &r);
    printf("exit: status=%#x orig_rax=%lld rax=%lld\n", st, r.orig_rax, r.rax);

    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
