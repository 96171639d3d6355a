/* The signal a tracer resumes a signal-delivery-stop with: the same signal keeps its siginfo
 * (kill: SI_USER from the tracee itself), another one gets SI_USER from the tracer
 * (kernel/signal.c ptrace_signal), 0 discards it, and one the tracee blocks is queued again
 * (pending until unblocked). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int got_sig, got_code, got_from_self, got_from_parent;

static void handler(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    got_sig = sig;
    got_code = si->si_code;
    got_from_self = si->si_pid == getpid();
    got_from_parent = si->si_pid == getppid();
}

static void report(const char *what) {
    printf("child %s: sig=%d code=%d from_self=%d from_parent=%d\n", what, got_sig, got_code, got_from_self,
           got_from_parent);
    got_sig = got_code = got_from_self = got_from_parent = 0;
}

static void child(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    sigaction(SIGUSR2, &sa, 0);
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
    kill(getpid(), SIGUSR1); /* resumed with SIGUSR1 */
    report("same");
    kill(getpid(), SIGUSR1); /* resumed with SIGUSR2 */
    report("other");
    kill(getpid(), SIGUSR1); /* resumed with 0 */
    report("none");
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, 0);
    kill(getpid(), SIGUSR1); /* resumed with SIGUSR2, blocked */
    sigpending(&pend);
    printf("child blocked: handled=%d pending=%d\n", got_sig, sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_UNBLOCK, &set, 0); /* its stop comes now; resumed with it */
    report("unblocked");
    _exit(0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) child();
    const int resume[] = {SIGUSR1, SIGUSR2, 0, SIGUSR2, -1};
    int st;
    for (int i = 0;; i++) {
        waitpid(pid, &st, 0);
        if (!WIFSTOPPED(st)) break;
        int sig = resume[i] < 0 ? WSTOPSIG(st) : resume[i];
        printf("parent: stop %d sig=%d, resuming with %d\n", i, WSTOPSIG(st), sig);
        ptrace(PTRACE_CONT, pid, 0, sig);
    }
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
