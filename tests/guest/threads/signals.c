// Signals and threads: pthread_kill reaches exactly the named thread; a process-directed
// kill() goes to the one thread that does not block the signal; masks are per thread and
// inherited by new threads; a thread-directed blocked signal is pending only in its thread;
// sigwait in a dedicated thread collects process-directed signals; a handler interrupts a
// futex wait (pthread_cond_wait resumes transparently, sem_wait returns EINTR without
// SA_RESTART).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

#define N 4
static __thread int my_index = -1;
static volatile sig_atomic_t hits[N + 1][3];
static pthread_barrier_t bar;

static void handler(int sig) {
    int idx = my_index < 0 ? N : my_index;
    hits[idx][sig == SIGUSR1 ? 0 : sig == SIGUSR2 ? 1 : 2]++;
}

static volatile int stop;
static void *worker(void *arg) {
    my_index = (int)(long)arg;
    sigset_t s;
    /* Everyone but thread 2 blocks SIGUSR2 (inherited from main). */
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    if (my_index == 2) pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    pthread_barrier_wait(&bar);
    while (!stop) usleep(1000);
    return NULL;
}

/* Waits (without a deadline: the test runner's timeout catches a signal that never comes)
 * until a handler has counted v hits. */
static void wait_for(volatile sig_atomic_t *p, int v) {
    while (*p < v) usleep(1000);
}

static void *inherits(void *arg) {
    (void)arg;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return (void *)(long)(sigismember(&cur, SIGTERM) * 10 + sigismember(&cur, SIGUSR1));
}

static void *pending_probe(void *arg) {
    (void)arg;
    sigset_t s, p;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_kill(pthread_self(), SIGUSR1);
    sigpending(&p);
    long mine = sigismember(&p, SIGUSR1);
    int sig;
    sigwait(&s, &sig);
    return (void *)(mine * 100 + sig);
}

static sigset_t waitset;
static void *sigwaiter(void *arg) {
    (void)arg;
    int got = 0, sig;
    for (int i = 0; i < 3; i++) {
        sigwait(&waitset, &sig);
        got += sig;
    }
    return (void *)(long)got;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int flag;
static volatile pid_t in_wait;
static void *cond_sleeper(void *arg) {
    (void)arg;
    my_index = 0;
    pthread_mutex_lock(&mu);
    in_wait = (pid_t)syscall(SYS_gettid);
    while (!flag) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}
static sem_t sem;
static void *sem_sleeper(void *arg) {
    (void)arg;
    my_index = 1;
    in_wait = (pid_t)syscall(SYS_gettid);
    int r = sem_wait(&sem);
    return (void *)(long)(r == -1 ? errno : 0);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* The main thread blocks SIGUSR2 too. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    pthread_barrier_init(&bar, NULL, N + 1);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    pthread_barrier_wait(&bar);

    for (int i = 0; i < N; i++) {
        pthread_kill(t[i], SIGUSR1);
        wait_for(&hits[i][0], 1);
    }
    pthread_kill(t[3], SIGHUP);
    wait_for(&hits[3][2], 1);
    for (int k = 0; k < 5; k++) {
        kill(getpid(), SIGUSR2);
        wait_for(&hits[2][1], k + 1);
    }
    stop = 1;
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i <= N; i++)
        printf("%s: SIGUSR1 %d SIGUSR2 %d SIGHUP %d\n", i == N ? "main" : "thread", hits[i][0],
               hits[i][1], hits[i][2]);

    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t x;
    void *r;
    pthread_create(&x, NULL, inherits, NULL);
    pthread_join(x, &r);
    printf("inherited mask: SIGTERM %ld SIGUSR1 %ld\n", (long)r / 10, (long)r % 10);
    pthread_create(&x, NULL, pending_probe, NULL);
    pthread_join(x, &r);
    sigset_t p;
    sigpending(&p);
    printf("thread saw own pending %ld, sigwait got %ld; main sees it pending %d\n", (long)r / 100,
           (long)r % 100, sigismember(&p, SIGUSR1));

    sigemptyset(&waitset);
    sigaddset(&waitset, SIGINT);
    sigaddset(&waitset, SIGQUIT);
    sigaddset(&waitset, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &waitset, NULL);
    pthread_create(&x, NULL, sigwaiter, NULL);
    kill(getpid(), SIGINT);
    kill(getpid(), SIGQUIT);
    kill(getpid(), SIGWINCH);
    pthread_join(x, &r);
    printf("sigwait thread collected %ld\n", (long)r);

    /* SA_RESTART: a condition wait is transparently resumed after the handler. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    memset((void *)hits, 0, sizeof hits);
    in_wait = 0;
    pthread_create(&x, NULL, cond_sleeper, NULL);
    while (!in_wait) usleep(1000);
    /* Interrupt it while it sleeps in the condition variable's futex. */
    wait_blocked(in_wait, SYS_futex, NULL);
    pthread_kill(x, SIGUSR1);
    wait_for(&hits[0][0], 1);
    pthread_mutex_lock(&mu);
    flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(x, NULL);
    printf("cond wait survived handler: hits %d\n", hits[0][0]);
    /* Without SA_RESTART sem_wait fails with EINTR. */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    sem_init(&sem, 0, 0);
    in_wait = 0;
    pthread_create(&x, NULL, sem_sleeper, NULL);
    while (!in_wait) usleep(1000);
    /* sem_wait's futex word is the semaphore's value, at its start (glibc
     * nptl/sem_waitcommon.c, little-endian 64-bit layout). */
    wait_blocked(in_wait, SYS_futex, &sem);
    pthread_kill(x, SIGUSR1);
    pthread_join(x, &r);
    printf("sem_wait interrupted: %s, hits %d\n", strerror((int)(long)r), hits[1][0]);
    return 0;
}
