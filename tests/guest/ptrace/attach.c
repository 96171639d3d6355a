/* PTRACE_ATTACH to a running child: the attach's SIGSTOP stops it (GETSIGINFO: SI_KERNEL, as
 * the kernel sends it), its registers can be read, PEEKDATA/POKEDATA reach its memory and
 * PTRACE_DETACH lets it go on, seeing the poked value. A second attach while attached is EPERM;
 * register requests on a child that is not traced are ESRCH. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long go;

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    if (pipe(p)) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        write(p[1], "r", 1);
        while (!go) sched_yield();
        printf("child: go=%ld\n", go);
        _exit(5);
    }
    close(p[1]);
    char c;
    read(p[0], &c, 1);

    struct user_regs_struct r;
    errno = 0;
    long rc = ptrace(PTRACE_GETREGS, pid, 0, &r);
    printf("getregs before attach=%ld errno=%d\n", rc, errno);
    rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
    printf("attach=%ld\n", rc);
    int st;
    waitpid(pid, &st, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    rc = ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("stop: stopped=%d sig=%d getsiginfo=%ld signo=%d code=%#x\n", WIFSTOPPED(st), WSTOPSIG(st), rc,
           si.si_signo, si.si_code);
    errno = 0;
    rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
    printf("attach again=%ld errno=%d\n", rc, errno);
    rc = ptrace(PTRACE_GETREGS, pid, 0, &r);
    printf("getregs=%ld cs=%#llx ss=%#llx\n", rc, r.cs, r.ss);
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, pid, &go, 0);
    printf("peekdata=%ld errno=%d\n", v, errno);
    rc = ptrace(PTRACE_POKEDATA, pid, &go, 42);
    printf("pokedata=%ld\n", rc);
    /* The child prints once it runs again: the parent prints after it ended. */
    rc = ptrace(PTRACE_DETACH, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("detach=%ld\n", rc);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
