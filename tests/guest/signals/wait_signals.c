// Waiting for signals: sigsuspend (mask swapped atomically and restored), pause, alarm,
// setitimer, sigtimedwait (timeout, queued value), sigwaitinfo, POSIX timers with SIGEV_SIGNAL.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../common/handle_signals.h"

static volatile sig_atomic_t got;
static volatile int val, code;
static void h(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    got = sig;
    code = si->si_code;
    val = si->si_value.sival_int;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    handle_signals(h, 0, SIGALRM, SIGUSR1, SIGRTMIN);

    sigset_t block, old, wait, cur;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    alarm(1);
    sigemptyset(&wait);
    int r = sigsuspend(&wait);
    printf("sigsuspend: ret=%d errno=%s got=%d code=%d\n", r, strerrorname_np(errno), got, code);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("mask restored: ALRM blocked=%d\n", sigismember(&cur, SIGALRM));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* pause() cannot unblock atomically, so a one-shot timer could fire before it and leave
     * it waiting forever: a periodic timer ends pause() whenever it starts. */
    got = 0;
    struct itimerval it = {{0, 50000}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    r = pause();
    int e = errno;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    printf("pause: ret=%d errno=%s got=%d\n", r, strerrorname_np(e), got);
    /* A one-shot timer is disarmed once it has fired (waited for with SIGALRM blocked). */
    sigprocmask(SIG_BLOCK, &block, NULL);
    got = 0;
    struct itimerval once = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &once, NULL);
    sigemptyset(&wait);
    while (!got) sigsuspend(&wait);
    sigprocmask(SIG_SETMASK, &old, NULL);
    getitimer(ITIMER_REAL, &it);
    printf("itimer disarmed: %d\n", it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0);

    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGUSR1);
    sigprocmask(SIG_BLOCK, &w, NULL);
    struct timespec ts = {0, 20000000};
    siginfo_t si;
    r = sigtimedwait(&w, &si, &ts);
    printf("sigtimedwait timeout: ret=%d errno=%s\n", r, strerrorname_np(errno));
    union sigval v = {.sival_int = 77};
    sigqueue(getpid(), SIGUSR1, v);
    r = sigtimedwait(&w, &si, &ts);
    printf("sigtimedwait: ret=%d code=%d value=%d pid_ok=%d\n", r, si.si_code,
           si.si_value.sival_int, si.si_pid == getpid());
    raise(SIGUSR1);
    r = sigwaitinfo(&w, &si);
    printf("sigwaitinfo: ret=%d code=%d handler_ran=%d\n", r, si.si_code, got == SIGUSR1);

    timer_t tid;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN;
    sev.sigev_value.sival_int = 1234;
    printf("timer_create: %d\n", timer_create(CLOCK_MONOTONIC, &sev, &tid));
    struct itimerspec its = {{0, 0}, {0, 30000000}};
    got = 0;
    timer_settime(tid, 0, &its, NULL);
    while (!got)
        pause();
    printf("timer: sig_is_rtmin=%d code=%d value=%d overrun=%d\n", got == SIGRTMIN,
           code, val, timer_getoverrun(tid));
    timer_gettime(tid, &its);
    printf("timer disarmed: %d\n", its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0);
    printf("timer_delete: %d\n", timer_delete(tid));
    return 0;
}
