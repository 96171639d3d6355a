// Blocked signals stay pending; sigpending; the mask is inherited by fork and execve, pending
// signals are not inherited by fork, ignored dispositions survive execve and handled ones are
// reset; standard signals coalesce, real-time signals queue in order with their values.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void h(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    printf("handler sig=%s code=%d value=%d\n", sig == SIGUSR1 ? "USR1" : sig == SIGRTMIN ? "RTMIN" : "RTMIN+1",
           si->si_code, si->si_code == SI_QUEUE ? si->si_value.sival_int : -1);
}

static void report(const char *who) {
    sigset_t m, p;
    struct sigaction sa;
    sigprocmask(SIG_BLOCK, NULL, &m);
    sigpending(&p);
    sigaction(SIGUSR2, NULL, &sa);
    printf("%s: blocked USR1=%d RTMIN=%d; pending USR1=%d; USR2 %s\n", who, sigismember(&m, SIGUSR1),
           sigismember(&m, SIGRTMIN), sigismember(&p, SIGUSR1),
           sa.sa_handler == SIG_IGN ? "ignored" : sa.sa_handler == SIG_DFL ? "default" : "handled");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1) {
        report("after exec");
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    for (int i = 1; i <= 3; i++) {
        union sigval v = {.sival_int = i * 10};
        sigqueue(getpid(), SIGRTMIN + 1, v);
        v.sival_int = i;
        sigqueue(getpid(), SIGRTMIN, v);
    }
    report("parent");
    pid_t c = fork();
    if (c == 0) {
        report("child");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("unblocking\n");
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    printf("unblocked\n");
    // execve keeps the mask and SIG_IGN, resets handlers.
    sigprocmask(SIG_BLOCK, &s, NULL);
    signal(SIGUSR2, SIG_IGN);
    c = fork();
    if (c == 0) {
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGUSR2, (void (*)(int))h);
    c = fork();
    if (c == 0) {
        execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
        _exit(127);
    }
    waitpid(c, &st, 0);
    return 0;
}
