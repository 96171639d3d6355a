/* A PTRACE_TRACEME tracee that execs stops with SIGTRAP (SI_USER from itself) at the new
 * program's entry point, rax 0 and orig_rax execve; CONT runs the new program. With
 * PTRACE_O_TRACEEXEC the exec is a PTRACE_EVENT_EXEC stop instead (rax still -ENOSYS, the
 * event message the tracee's pid). */
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
    for (int traceexec = 0; traceexec < 2; traceexec++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
            if (traceexec) raise(SIGSTOP);
            execl(argv[0], argv[0], traceexec ? "exec'd with TRACEEXEC" : "exec'd", (char *)0);
            _exit(91);
        }
        int st;
        waitpid(pid, &st, 0);
        if (traceexec) {
            printf("sigstop: sig=%d setoptions=%ld\n", WSTOPSIG(st),
                   ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC));
            ptrace(PTRACE_CONT, pid, 0, 0);
            waitpid(pid, &st, 0);
        }
        struct user_regs_struct r;
        siginfo_t si;
        memset(&si, 0, sizeof si);
        long g = ptrace(PTRACE_GETREGS, pid, 0, &r);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        unsigned long msg = 0;
        ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
        printf("stop: status=%#x getregs=%ld at_entry=%d rax=%lld orig_rax=%lld signo=%d code=%#x from_self=%d",
               st, g, r.rip == (unsigned long)_start, r.rax, r.orig_rax, si.si_signo, si.si_code, si.si_pid == pid);
        printf(traceexec ? " msg_is_pid=%d\n" : "\n", msg == (unsigned long)pid);
        ptrace(PTRACE_CONT, pid, 0, 0);
        waitpid(pid, &st, 0);
        printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    }
    return 0;
}
