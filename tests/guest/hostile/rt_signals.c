/* Realtime signals queue up to RLIMIT_SIGPENDING: 500 sigqueues of a blocked realtime signal
 * (and 300 of another) are all delivered when it is unblocked, in order (lower signal
 * numbers first, each in the order sent), none silently dropped. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int seen[2], in_order = 1, last[2] = {-1, -1};

static void h(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    int k = sig == SIGRTMIN ? 0 : 1;
    if (si->si_value.sival_int != last[k] + 1) in_order = 0;
    if (k == 1 && seen[0] != 500) in_order = 0;
    last[k] = si->si_value.sival_int;
    seen[k]++;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    /* One handler at a time, so the delivery order is observable. */
    sigaddset(&sa.sa_mask, SIGRTMIN);
    sigaddset(&sa.sa_mask, SIGRTMIN + 1);
    sigaction(SIGRTMIN, &sa, 0);
    sigaction(SIGRTMIN + 1, &sa, 0);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGRTMIN);
    sigaddset(&m, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &m, 0);
    int ok = 0;
    for (int i = 0; i < 300; i++) ok += sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = i}) == 0;
    for (int i = 0; i < 500; i++) ok += sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i}) == 0;
    sigset_t pend;
    sigpending(&pend);
    printf("queued %d, pending: %d %d\n", ok, sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGRTMIN + 1));
    sigprocmask(SIG_UNBLOCK, &m, 0);
    printf("delivered %d + %d, in order: %s\n", seen[0], seen[1], in_order ? "yes" : "no");
    return 0;
}
