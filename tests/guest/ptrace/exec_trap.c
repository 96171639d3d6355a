/* A PTRACE_TRACEME tracee that execs stops with SIGTRAP (SI_USER from itself) at the new
 * program's entry point, rax 0 and orig_rax execve; CONT runs the new program. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

extern char _start[];

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1) {
        printf("new image: %s\n", argv[1]);
        return 3;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
        execl(argv[0], argv[0], "exec'd", (char *)0);
        _exit(91);
    }
    int st;
    waitpid(pid, &st, 0);
    struct user_regs_struct r;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long g = ptrace(PTRACE_GETREGS, pid, 0, &r);
    ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("stop: stopped=%d sig=%d getregs=%ld at_entry=%d rax=%lld orig_rax=%lld signo=%d code=%d from_self=%d\n",
           WIFSTOPPED(st), WSTOPSIG(st), g, r.rip == (unsigned long)_start, r.rax, r.orig_rax, si.si_signo,
           si.si_code, si.si_pid == pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
