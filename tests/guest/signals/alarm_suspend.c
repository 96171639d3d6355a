#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>
static volatile sig_atomic_t fired;
static void h(int s) { (void)s; fired++; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(SIGALRM, &sa, NULL);
    sigset_t block, old, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    printf("alarm returns %u\n", alarm(1));
    int rc = sigsuspend(&old);
    printf("sigsuspend returned %d, fired %d\n", rc, (int)fired);
    sigprocmask(SIG_SETMASK, NULL, &waitmask);
    printf("mask restored, SIGALRM blocked %d\n", sigismember(&waitmask, SIGALRM));
    printf("alarm(5) then alarm(0) returns %u\n", (alarm(5), alarm(0)));
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* pause() woken by an interval-timer signal */
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 50000;
    fired = 0;
    printf("setitimer %d\n", setitimer(ITIMER_REAL, &it, NULL));
    int pr = pause();
    printf("pause returned %d fired %d\n", pr, (int)fired);
    return 0;
}
