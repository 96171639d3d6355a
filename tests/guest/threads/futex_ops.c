// Raw futex operations between threads: WAIT/WAKE (value mismatch, timeouts, counts),
// REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET/WAKE_BITSET, the PI operations (LOCK_PI,
// TRYLOCK_PI, UNLOCK_PI with owner tids and the waiters bit), errors, and the signal rules:
// an untimed wait is restarted after an SA_RESTART handler, a timed one returns EINTR.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

static long futex(void *uaddr, int op, uint32_t val, const void *ts_or_val2, void *uaddr2, uint32_t val3) {
    return syscall(SYS_futex, uaddr, op, val, ts_or_val2, uaddr2, val3);
}
static const char *err(long r) { return r == -1 ? strerrorname_np(errno) : "ok"; }

static uint32_t A, B, C;
static volatile pid_t tids[8];
static long results[8];

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

/* Publishes the calling thread's tid in tids[i] and returns it. */
static void arrive(int i) { __atomic_store_n(&tids[i], gettid_(), __ATOMIC_SEQ_CST); }

/* The tid thread i published (waiting for it to start). */
static pid_t tid_of(int i) {
    pid_t t;
    while ((t = __atomic_load_n(&tids[i], __ATOMIC_SEQ_CST)) == 0) usleep(1000);
    return t;
}

/* Waits until the threads 0..n-1 are all asleep in a futex call on `word`. */
static void settle(int n, void *word) {
    for (int i = 0; i < n; i++) wait_blocked(tid_of(i), SYS_futex, word);
}

static void *wait_on_A(void *arg) {
    long i = (long)arg;
    arrive(i);
    results[i] = futex(&A, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}
static void *wait_bitset(void *arg) {
    (void)arg;
    arrive(0);
    return (void *)futex(&C, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0x1);
}

static uint32_t pi_word;
static void *pi_locker(void *arg) {
    (void)arg;
    arrive(0);
    long r = futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    uint32_t w = __atomic_load_n(&pi_word, __ATOMIC_SEQ_CST);
    int owner_is_me = (w & FUTEX_TID_MASK) == (uint32_t)gettid_();
    futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    return (void *)(r * 10 + owner_is_me);
}

static volatile int handled;
static void on_usr1(int s) { (void)s; handled++; }
static uint32_t D;
static void *sig_waiter(void *arg) {
    long timed = (long)arg;
    struct timespec ts = {3600, 0};
    arrive(0);
    long r = futex(&D, FUTEX_WAIT_PRIVATE, 0, timed ? &ts : NULL, NULL, 0);
    return (void *)(r == -1 ? (long)errno : 0L);
}

int main(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    A = 1;
    printf("wait mismatch: %s\n", err(futex(&A, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    printf("wait timeout: %s\n", err(futex(&A, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0)));
    printf("wake nobody: %ld\n", futex(&A, FUTEX_WAKE_PRIVATE, 5, NULL, NULL, 0));
    printf("unaligned: %s\n", err(futex((char *)&A + 1, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    printf("bad op: %s\n", err(futex(&A, 99, 0, NULL, NULL, 0)));
    printf("null address: %s\n", err(futex(NULL, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    struct timespec bad = {0, 2000000000L};
    printf("bad timeout: %s\n", err(futex(&A, FUTEX_WAIT_PRIVATE, 1, &bad, NULL, 0)));

    A = 0;
    memset((void *)tids, 0, sizeof tids);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, wait_on_A, (void *)i);
    settle(4, &A);
    printf("wake one: %ld\n", futex(&A, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    printf("cmp_requeue wrong value: %s\n",
           err(futex(&A, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1L, &B, 7)));
    printf("cmp_requeue: %ld\n", futex(&A, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1L, &B, 0));
    printf("requeue: %ld\n", futex(&A, FUTEX_REQUEUE_PRIVATE, 0, (void *)10L, &B, 0));
    printf("wake A after requeue: %ld\n", futex(&A, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0));
    /* wake_op: *(&B) += 1 (old value 0), wake 0 on A, and on B if old > -1 wake 10 */
    int op = FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_GT, 0);
    B = 1;
    long woke_op = futex(&A, FUTEX_WAKE_OP_PRIVATE, 0, (void *)10L, &B, op);
    printf("wake_op: %ld, B now %u\n", woke_op, B);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("waiters returned %ld %ld %ld %ld\n", results[0], results[1], results[2], results[3]);

    memset((void *)tids, 0, sizeof tids);
    pthread_t bt;
    pthread_create(&bt, NULL, wait_bitset, NULL);
    settle(1, &C);
    printf("wake_bitset other bits: %ld\n", futex(&C, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0x2));
    printf("wake_bitset matching: %ld\n", futex(&C, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0x3));
    void *r;
    pthread_join(bt, &r);
    printf("bitset waiter returned %ld\n", (long)r);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 5000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    printf("absolute bitset timeout: %s\n", err(futex(&C, FUTEX_WAIT_BITSET_PRIVATE, 0, &now, NULL, ~0u)));

    /* PI */
    long locked = futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0);
    printf("lock_pi free: %ld, owner is me %d\n", locked, (pi_word & FUTEX_TID_MASK) == (uint32_t)gettid_());
    printf("lock_pi again: %s\n", err(futex(&pi_word, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0)));
    memset((void *)tids, 0, sizeof tids);
    pthread_t pt;
    pthread_create(&pt, NULL, pi_locker, NULL);
    settle(1, &pi_word);
    printf("waiters bit set: %d\n", !!(pi_word & FUTEX_WAITERS));
    printf("unlock_pi: %ld\n", futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    pthread_join(pt, &r);
    printf("locker got it: result %ld owner %ld\n", (long)r / 10, (long)r % 10);
    printf("word after: %u\n", pi_word);
    printf("trylock_pi: %ld\n", futex(&pi_word, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    printf("unlock_pi: %ld\n", futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0));
    printf("unlock_pi not owner: %s\n", err(futex(&pi_word, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0)));

    /* Signals */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    for (long timed = 0; timed < 2; timed++) {
        memset((void *)tids, 0, sizeof tids);
        handled = 0;
        pthread_t st;
        pthread_create(&st, NULL, sig_waiter, (void *)timed);
        settle(1, &D);
        pthread_kill(st, SIGUSR1);
        while (!handled) usleep(1000);
        long woke;
        if (timed) {
            /* The timed wait ends with EINTR: nobody is left to wake. */
            pthread_join(st, &r);
            woke = futex(&D, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        } else {
            /* The untimed one went back to sleep on D after the handler. */
            settle(1, &D);
            woke = futex(&D, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            pthread_join(st, &r);
        }
        printf("%s wait, SA_RESTART handler: %s, later wake found %ld\n", timed ? "timed" : "untimed",
               r ? strerrorname_np((int)(long)r) : "woken", woke);
    }
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    memset((void *)tids, 0, sizeof tids);
    handled = 0;
    pthread_t st;
    pthread_create(&st, NULL, sig_waiter, (void *)0);
    settle(1, &D);
    pthread_kill(st, SIGUSR1);
    pthread_join(st, &r);
    printf("untimed wait, handler without SA_RESTART: %s\n", strerrorname_np((int)(long)r));
    return 0;
}
