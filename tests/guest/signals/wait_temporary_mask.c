// The temporary signal mask of ppoll, pselect6, epoll_pwait and epoll_pwait2 is in force from
// before the call looks for signals until the signal that ended it is delivered (Linux:
// set_user_sigmask before the wait; restore_saved_sigmask_unless after it, fs/select.c,
// fs/eventpoll.c, kernel/signal.c):
//  1. A signal pending while the thread blocks it, and unblocked by the call's mask, ends the
//     call with EINTR at once and its handler runs before the call returns to the program,
//     with the thread's own mask in its frame (restored by sigreturn).
//  2. A signal the call's mask blocks never ends the call, wherever it arrives: a timer fires at
//     a random moment around each call (before it, while the thread enters it, while it sleeps)
//     and every call still times out, with the handler run once, after it.
// cetbox gives the host the mask for the wait, but records signals itself: case 1 used to run
// no handler (the thread's mask was back before delivery), and case 2 used to end with EINTR
// when the signal was recorded just before the host call began.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static volatile int got;
static volatile int blocked_in_handler;

static void handler(int sig) {
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    blocked_in_handler = sigismember(&now, SIGUSR2);
    (void)sig;
    got++;
}

static int pipefd[2], ep;

/* One call with the temporary mask `m` and a timeout of `ms` milliseconds. */
static int wait_with(int which, const sigset_t *m, int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    struct pollfd pf = {pipefd[0], POLLIN, 0};
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(pipefd[0], &rs);
    struct epoll_event out;
    switch (which) {
    case 0: return ppoll(&pf, 1, &ts, m);
    case 1: return pselect(pipefd[0] + 1, &rs, NULL, NULL, &ts, m);
    case 2: return epoll_pwait(ep, &out, 1, ms, m);
    default: return (int)syscall(SYS_epoll_pwait2, ep, &out, 1, &ts, m, 8);
    }
}

static const char *names[] = {"ppoll", "pselect6", "epoll_pwait", "epoll_pwait2"};

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    if (pipe(pipefd) != 0) return 1;
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);

    sigset_t usr1, alrm, own;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    /* The thread's own mask blocks SIGUSR2 (a marker) and, in case 1, SIGUSR1. */
    sigemptyset(&own);
    sigaddset(&own, SIGUSR2);
    sigset_t only_usr2;
    sigemptyset(&only_usr2);
    sigaddset(&only_usr2, SIGUSR2);

    for (int k = 0; k < 4; k++) {
        sigprocmask(SIG_SETMASK, &own, NULL);
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        raise(SIGUSR1);
        got = 0;
        blocked_in_handler = -1;
        /* The call's mask lets SIGUSR1 through and blocks nothing else. */
        sigset_t m;
        sigemptyset(&m);
        int r = wait_with(k, &m, 2000);
        int e = errno;
        int ran = got;
        sigset_t after;
        sigprocmask(SIG_SETMASK, NULL, &after);
        printf("%s pending: r=%d %s, handler ran %d (SIGUSR2 blocked in it: %d), mask after: "
               "SIGUSR1 %d SIGUSR2 %d\n",
               names[k], r, r < 0 ? strerrordesc_np(e) : "-", ran, blocked_in_handler,
               sigismember(&after, SIGUSR1), sigismember(&after, SIGUSR2));
        sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    }

    sigprocmask(SIG_SETMASK, &only_usr2, NULL);
    srand(12345);
    for (int k = 0; k < 4; k++) {
        int timeouts = 0, eintr = 0, other = 0, handled_after = 0;
        for (int round = 0; round < 150; round++) {
            got = 0;
            /* The timer fires 0-400 us from now: before the call, on the way in, or during it. */
            struct itimerval it = {{0, 0}, {0, 1 + rand() % 400}};
            setitimer(ITIMER_REAL, &it, NULL);
            int r = wait_with(k, &alrm, 2);
            if (r == 0)
                timeouts++;
            else if (r < 0 && errno == EINTR)
                eintr++;
            else
                other++;
            /* Wait until the timer has fired (its handler runs at once if it fired before the
             * call, else as soon as the call's mask is gone). */
            while (!got) {
                sigset_t none;
                sigemptyset(&none);
                sigaddset(&none, SIGUSR2);
                sigsuspend(&none);
            }
            handled_after += got == 1;
        }
        printf("%s blocked by its mask: %d timeouts, %d EINTR, %d other, handler once %d\n",
               names[k], timeouts, eintr, other, handled_after);
    }
    return 0;
}
