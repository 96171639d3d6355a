// SA_RESTART: a read on an empty pipe interrupted by a signal returns EINTR without it and is
// restarted with it; nanosleep is never restarted. A helper thread sends the signal only once
// the main thread sleeps in the system call, and writes to the pipe only after the handler
// ran, so no step depends on timing.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

static volatile int hits;
static int handled[2];
static void h(int sig) {
    (void)sig;
    hits++;
    char c = 'h';
    write(handled[1], &c, 1); /* async-signal-safe */
}

static pid_t main_tid;
static int data[2];

/* Interrupts the main thread in system call nr, waits for its handler, then (if asked)
 * writes the byte its read is waiting for. */
static void *interrupter(void *arg) {
    long nr = (long)arg;
    wait_blocked(main_tid, nr < 0 ? -nr : nr, NULL);
    syscall(SYS_tgkill, getpid(), main_tid, SIGALRM);
    char c;
    read(handled[0], &c, 1);
    if (nr >= 0) write(data[1], "x", 1);
    return NULL;
}

static void one(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
    pipe(data);
    hits = 0;
    pthread_t t;
    pthread_create(&t, NULL, interrupter, (void *)(long)SYS_read);
    char b;
    ssize_t r = read(data[0], &b, 1);
    int e = errno;
    printf("%s: read=%zd errno=%s hits=%d\n", flags ? "SA_RESTART" : "no SA_RESTART", r,
           r < 0 ? strerrorname_np(e) : "-", hits);
    pthread_join(t, NULL);
    close(data[0]);
    close(data[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    main_tid = (pid_t)syscall(SYS_gettid);
    pipe(handled);
    one(0);
    one(SA_RESTART);
    /* glibc's nanosleep is clock_nanosleep(CLOCK_REALTIME, 0, ...). */
    pthread_t t;
    pthread_create(&t, NULL, interrupter, (void *)(long)-SYS_clock_nanosleep);
    struct timespec ts = {3600, 0}, rem;
    int r = nanosleep(&ts, &rem);
    int e = errno;
    /* The remaining time may exceed the request by the timer slack when the signal comes
     * within microseconds (hrtimer_expires_remaining counts to the hard expiry), so only
     * "woken well before the end, with time left" is checked. */
    printf("nanosleep: ret=%d errno=%s time left=%d\n", r, strerrorname_np(e),
           rem.tv_sec > 0 && rem.tv_sec <= 3600);
    pthread_join(t, NULL);
    return 0;
}
