// Blocked signals are never ignored (kernel/signal.c sig_ignored): a blocked signal whose
// disposition is SIG_IGN, or SIG_DFL with a default of ignoring it (SIGCHLD, SIGWINCH), is
// queued, and stays pending across execve, which keeps SIG_IGN and the mask. cetbox once lost
// them when the new image set up its host dispositions (setting SIG_IGN or an ignoring SIG_DFL
// discards pending instances); found by a test run under nohup, whose SIGHUP is SIG_IGN.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int sigs[] = {SIGHUP, SIGWINCH, SIGCHLD, SIGURG, SIGUSR1};
static const char *const names[] = {"HUP (ignored)", "WINCH (ignored)", "CHLD (default)",
                                    "URG (default)", "USR1 (handled, reset by exec)"};
#define N (int)(sizeof sigs / sizeof sigs[0])

static void h(int sig) { (void)sig; }

static void report(const char *who) {
    sigset_t m, p;
    sigprocmask(SIG_BLOCK, NULL, &m);
    sigpending(&p);
    for (int i = 0; i < N; i++) {
        struct sigaction sa;
        sigaction(sigs[i], NULL, &sa);
        printf("%s: %-30s blocked %d pending %d %s\n", who, names[i], sigismember(&m, sigs[i]),
               sigismember(&p, sigs[i]),
               sa.sa_handler == SIG_IGN   ? "SIG_IGN"
               : sa.sa_handler == SIG_DFL ? "SIG_DFL"
                                          : "handler");
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "after") == 0) {
        report("after exec");
        return 0;
    }
    signal(SIGHUP, SIG_IGN);
    signal(SIGWINCH, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGURG, SIG_DFL);
    signal(SIGUSR1, h);
    sigset_t s;
    sigemptyset(&s);
    for (int i = 0; i < N; i++) sigaddset(&s, sigs[i]);
    sigprocmask(SIG_BLOCK, &s, NULL);
    for (int i = 0; i < N; i++) kill(getpid(), sigs[i]);
    report("before exec");
    execl("/proc/self/exe", argv[0], "after", (char *)NULL);
    perror("execl");
    return 1;
}
