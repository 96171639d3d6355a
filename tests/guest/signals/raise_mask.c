//! link: static-pie
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile char log_buf[1024];
static volatile int log_len;
static void note(const char *s) { while (*s) log_buf[log_len++] = *s++; }
static volatile int nested_depth, max_depth, value, usr1_budget;
static void h(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char b[64];
    snprintf(b, sizeof b, "[%d:%d:%d]", sig, si->si_code == SI_USER ? 0 : si->si_code == SI_TKILL ? 1 : si->si_code == SI_QUEUE ? 2 : 9,
             si->si_code == SI_QUEUE ? si->si_value.sival_int : 0);
    note(b);
    nested_depth++;
    if (nested_depth > max_depth) max_depth = nested_depth;
    if (sig == SIGUSR1 && usr1_budget > 0) { usr1_budget--; raise(SIGUSR1); }
    nested_depth--;
}
static void install(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}
int main(void) {
    install(SIGUSR1, 0);
    install(SIGUSR2, 0);
    install(SIGHUP, 0);
    install(SIGRTMIN, 0);
    install(SIGRTMIN + 1, 0);
    usr1_budget = 2;
    raise(SIGUSR1);
    printf("plain raise: %s max_depth %d\n", (log_buf[log_len] = 0, (const char *)log_buf), max_depth);
    log_len = 0; max_depth = 0;
    install(SIGUSR1, SA_NODEFER);
    usr1_budget = 2;
    raise(SIGUSR1);
    printf("SA_NODEFER: %s max_depth %d\n", (log_buf[log_len] = 0, (const char *)log_buf), max_depth);
    log_len = 0;
    sigset_t s, old, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1); sigaddset(&s, SIGUSR2); sigaddset(&s, SIGHUP); sigaddset(&s, SIGRTMIN); sigaddset(&s, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &s, &old);
    install(SIGUSR1, 0);
    raise(SIGUSR2); raise(SIGHUP); raise(SIGUSR1); raise(SIGUSR2);
    union sigval v;
    v.sival_int = 7; sigqueue(getpid(), SIGRTMIN + 1, v);
    v.sival_int = 8; sigqueue(getpid(), SIGRTMIN, v);
    v.sival_int = 9; sigqueue(getpid(), SIGRTMIN, v);
    sigpending(&pend);
    printf("pending: USR1 %d USR2 %d HUP %d RTMIN %d TERM %d\n", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2),
           sigismember(&pend, SIGHUP), sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGTERM));
    printf("nothing delivered while blocked: %d\n", log_len);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked order: %s\n", (log_buf[log_len] = 0, (const char *)log_buf));
    log_len = 0;
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored: [%s]\n", (log_buf[log_len] = 0, (const char *)log_buf));
    install(SIGUSR2, SA_RESETHAND);
    raise(SIGUSR2);
    struct sigaction cur;
    sigaction(SIGUSR2, NULL, &cur);
    printf("SA_RESETHAND: %s now default %d\n", (log_buf[log_len] = 0, (const char *)log_buf), cur.sa_handler == SIG_DFL);
    log_len = 0;
    kill(getpid(), SIGHUP);
    printf("kill self: %s\n", (log_buf[log_len] = 0, (const char *)log_buf));
    log_len = 0;
    /* sigwaitinfo takes a blocked signal synchronously */
    sigemptyset(&s); sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    v.sival_int = 42;
    sigqueue(getpid(), SIGUSR1, v);
    siginfo_t si;
    int got = sigwaitinfo(&s, &si);
    printf("sigwaitinfo got %d value %d code SI_QUEUE %d, handler not run %d\n", got, si.si_value.sival_int, si.si_code == SI_QUEUE, log_len == 0);
    struct timespec ts = {0, 1000000};
    printf("sigtimedwait with nothing pending: %d\n", sigtimedwait(&s, &si, &ts));
    /* invalid requests */
    printf("sigaction(SIGKILL) fails %d, sigaction(0) fails %d, kill sig 0 ok %d\n", sigaction(SIGKILL, &cur, NULL) == -1,
           sigaction(0, &cur, NULL) == -1, kill(getpid(), 0) == 0);
    return 0;
}
