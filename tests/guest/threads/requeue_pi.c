// FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI on private futexes (Linux
// kernel/futex/requeue.c futex_wait_requeue_pi, futex_requeue with requeue_pi; pi.c
// futex_lock_pi_atomic; man 2 futex): argument errors, the requeuer taking a free lock for the
// top waiter, several waiters requeued to a lock the requeuer holds and taking it in turn after
// its UNLOCK_PI, timeouts before and after the requeue, a signal after the requeue (EAGAIN),
// a signal before the requeue (the call restarts), an owner TID no task has (ESRCH), a waiter
// that owns the lock (EDEADLK), and the plain operations meeting a requeue-PI waiter (EINVAL).
// Waiters are known to be queued only from what the futex calls themselves answer (a requeue
// or a wake that finds them), never from timing; the output holds only what Linux guarantees
// (no order among the waiters).
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_RQ (FUTEX_WAIT_REQUEUE_PI | FUTEX_PRIVATE_FLAG)
#define CMP_RQ (FUTEX_CMP_REQUEUE_PI | FUTEX_PRIVATE_FLAG)
#define TID_MASK 0x3fffffffu

static long fx(void *u, int op, long val, long t, void *u2, long val3) {
    long r = syscall(SYS_futex, u, op, val, t, u2, val3);
    return r < 0 ? -errno : r;
}

static const char *name(long r) {
    static char buf[32];
    switch (r) {
    case -EINVAL: return "EINVAL";
    case -EAGAIN: return "EAGAIN";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EFAULT: return "EFAULT";
    case -ENOSYS: return "ENOSYS";
    case -ESRCH: return "ESRCH";
    case -EDEADLK: return "EDEADLK";
    case -EPERM: return "EPERM";
    case -EINTR: return "EINTR";
    }
    snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static _Alignas(64) uint32_t cv, cv2, L, L2, scratch;
static atomic_int inside, overlap, acquired;

static int tid(void) { return (int)syscall(SYS_gettid); }

static struct timespec in_ms(clockid_t c, long ms) {
    struct timespec ts;
    clock_gettime(c, &ts);
    ts.tv_nsec += ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

struct waiter {
    pthread_t th;
    int tid;
    long timeout_ms; /* 0: none */
    int own_first;   /* set L to this thread's TID before waiting */
    long r;
    int owned;       /* owned L when the call returned */
    uint32_t word;   /* L when the call returned */
    long unlock;
    atomic_int done;
};

static void *waiter_main(void *arg) {
    struct waiter *w = arg;
    w->tid = tid();
    if (w->own_first) atomic_store((_Atomic uint32_t *)&L, (uint32_t)w->tid);
    struct timespec ts;
    if (w->timeout_ms) ts = in_ms(CLOCK_MONOTONIC, w->timeout_ms);
    w->r = fx(&cv, WAIT_RQ, 0, w->timeout_ms ? (long)&ts : 0, &L, 0);
    w->word = atomic_load((_Atomic uint32_t *)&L);
    w->owned = (w->word & TID_MASK) == (uint32_t)w->tid;
    atomic_store(&w->done, 1);
    if (w->r == 0 && w->owned) {
        if (atomic_fetch_add(&inside, 1) != 0) atomic_fetch_add(&overlap, 1);
        atomic_fetch_add(&acquired, 1);
        atomic_fetch_sub(&inside, 1);
        w->unlock = fx(&L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0);
    }
    return 0;
}

static void start(struct waiter *w) { pthread_create(&w->th, 0, waiter_main, w); }

/* Requeues from cv to L until `n` waiters were woken or requeued in all. */
static long requeue_all(int n, int nr_requeue) {
    long total = 0;
    while (total < n) {
        long r = fx(&cv, CMP_RQ, 1, nr_requeue, &L, 0);
        if (r < 0) return r;
        total += r;
    }
    return total;
}

static volatile sig_atomic_t handled;
static void on_usr1(int s) {
    (void)s;
    handled++;
}

static void *plain_waiter(void *arg) {
    *(long *)arg = fx(&cv2, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    return 0;
}

int main(void) {
    struct timespec past = {0, 0}, bad = {0, 1000000000};

    printf("-- errors\n");
    printf("wait uaddr == uaddr2: %s\n", name(fx(&cv, WAIT_RQ, 0, 0, &cv, 0)));
    printf("wait value differs: %s\n", name(fx(&cv, WAIT_RQ, 1, 0, &L, 0)));
    printf("wait invalid timeout: %s\n", name(fx(&cv, WAIT_RQ, 0, (long)&bad, &L, 0)));
    printf("wait unaligned uaddr2: %s\n", name(fx(&cv, WAIT_RQ, 0, 0, (char *)&L + 1, 0)));
    printf("wait past deadline: %s\n", name(fx(&cv, WAIT_RQ, 0, (long)&past, &L, 0)));
    printf("wait past realtime deadline: %s\n",
           name(fx(&cv, WAIT_RQ | FUTEX_CLOCK_REALTIME, 0, (long)&past, &L, 0)));
    struct timespec soon = in_ms(CLOCK_REALTIME, 30);
    printf("wait 30 ms realtime, nobody requeues: %s\n",
           name(fx(&cv, WAIT_RQ | FUTEX_CLOCK_REALTIME, 0, (long)&soon, &L, 0)));
    printf("requeue nr_wake 2: %s\n", name(fx(&cv, CMP_RQ, 2, 1, &L, 0)));
    printf("requeue nr_wake 0: %s\n", name(fx(&cv, CMP_RQ, 0, 1, &L, 0)));
    printf("requeue uaddr == uaddr2: %s\n", name(fx(&cv, CMP_RQ, 1, 1, &cv, 0)));
    printf("requeue negative count: %s\n", name(fx(&cv, CMP_RQ, 1, -1, &L, 0)));
    printf("requeue value differs: %s\n", name(fx(&cv, CMP_RQ, 1, 1, &L, 5)));
    printf("requeue realtime flag: %s\n", name(fx(&cv, CMP_RQ | FUTEX_CLOCK_REALTIME, 1, 1, &L, 0)));
    printf("requeue no waiters: %s\n", name(fx(&cv, CMP_RQ, 1, 1, &L, 0)));
    printf("L still free: %s\n", L == 0 ? "yes" : "no");

    printf("-- a plain FUTEX_WAIT waiter\n");
    long plain_r = 1;
    pthread_t pw;
    pthread_create(&pw, 0, plain_waiter, &plain_r);
    /* Its tid is not known here: wait until the wake finds it instead (the FUTEX_WAIT is
     * queued once a wake returns 1), after checking the requeue refuses it. */
    long rq;
    for (;;) {
        rq = fx(&cv2, CMP_RQ, 1, 0, &L, 0);
        if (rq != 0) break;
        usleep(1000);
    }
    printf("requeue of a plain waiter: %s\n", name(rq));
    printf("L untouched: %s\n", L == 0 ? "yes" : "no");
    printf("wake it: %s\n", name(fx(&cv2, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)));
    pthread_join(pw, 0);
    printf("plain waiter: %s\n", name(plain_r));

    printf("-- one waiter, the requeuer takes the free lock for it\n");
    struct waiter a = {0};
    start(&a);
    long r;
    while ((r = fx(&cv, CMP_RQ, 1, 0, &L, 0)) == 0) {
    }
    printf("requeue: %s\n", name(r));
    pthread_join(a.th, 0);
    printf("waiter: %s, owned L: %s, L was its TID exactly: %s, unlock: %s\n", name(a.r),
           a.owned ? "yes" : "no", a.word == (uint32_t)a.tid ? "yes" : "no", name(a.unlock));
    printf("L free again: %s\n", L == 0 ? "yes" : "no");

    printf("-- plain operations meet a requeue-PI waiter\n");
    struct waiter b = {0};
    start(&b);
    while ((r = fx(&cv, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)) == 0) {
    }
    printf("wake: %s\n", name(r));
    printf("wake count 0: %s\n", name(fx(&cv, FUTEX_WAKE_PRIVATE, 0, 0, 0, 0)));
    printf("wake_bitset: %s\n", name(fx(&cv, FUTEX_WAKE_BITSET_PRIVATE, 1, 0, 0, -1)));
    printf("requeue: %s\n", name(fx(&cv, FUTEX_REQUEUE_PRIVATE, 0, 1, &cv2, 0)));
    printf("cmp_requeue: %s\n", name(fx(&cv, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &cv2, 0)));
    printf("cmp_requeue counts 0: %ld\n", fx(&cv, FUTEX_CMP_REQUEUE_PRIVATE, 0, 0, &cv2, 0));
    printf("wake_op: %s\n", name(fx(&cv, FUTEX_WAKE_OP_PRIVATE, 1, 1, &scratch,
                                    FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0))));
    printf("requeue_pi to another lock: %s\n", name(fx(&cv, CMP_RQ, 1, 0, &L2, 0)));
    atomic_store((_Atomic uint32_t *)&L, 0x3fffffff);
    printf("requeue_pi, owner TID no task has: %s\n", name(fx(&cv, CMP_RQ, 1, 0, &L, 0)));
    printf("L got FUTEX_WAITERS: %s\n", L == (0x3fffffffu | FUTEX_WAITERS) ? "yes" : "no");
    atomic_store((_Atomic uint32_t *)&L, 0);
    printf("requeue_pi: %s\n", name(fx(&cv, CMP_RQ, 1, 0, &L, 0)));
    pthread_join(b.th, 0);
    printf("waiter: %s, owned L: %s, unlock: %s\n", name(b.r), b.owned ? "yes" : "no",
           name(b.unlock));

    printf("-- a waiter that holds the lock itself\n");
    struct waiter c = {.own_first = 1};
    start(&c);
    while ((r = fx(&cv, CMP_RQ, 1, 0, &L, 0)) == 0) {
    }
    printf("requeue: %s\n", name(r));
    atomic_store((_Atomic uint32_t *)&L, 0);
    printf("requeue after it let go: %s\n", name(fx(&cv, CMP_RQ, 1, 0, &L, 0)));
    pthread_join(c.th, 0);
    printf("waiter: %s, owned L: %s, unlock: %s\n", name(c.r), c.owned ? "yes" : "no",
           name(c.unlock));

    printf("-- four waiters requeued to the lock the requeuer holds\n");
    int me = tid();
    atomic_store((_Atomic uint32_t *)&L, (uint32_t)me);
    struct waiter w[4] = {0};
    for (int i = 0; i < 4; i++) start(&w[i]);
    printf("woken + requeued: %ld\n", requeue_all(4, INT_MAX));
    printf("L is the requeuer's TID with FUTEX_WAITERS: %s\n",
           L == ((uint32_t)me | FUTEX_WAITERS) ? "yes" : "no");
    printf("unlock: %s\n", name(fx(&L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0)));
    int ok = 0, unlocked = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].th, 0);
        ok += w[i].r == 0 && w[i].owned;
        unlocked += w[i].unlock == 0;
    }
    printf("waiters that returned 0 owning L: %d, unlocked it: %d, overlaps: %d\n", ok, unlocked,
           atomic_load(&overlap));
    printf("L free again: %s\n", L == 0 ? "yes" : "no");

    printf("-- three waiters, the lock free: one takes it at once, the others in turn\n");
    acquired = 0;
    struct waiter x[3] = {0};
    for (int i = 0; i < 3; i++) start(&x[i]);
    printf("woken + requeued: %ld\n", requeue_all(3, INT_MAX));
    ok = unlocked = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(x[i].th, 0);
        ok += x[i].r == 0 && x[i].owned;
        unlocked += x[i].unlock == 0;
    }
    printf("waiters that returned 0 owning L: %d, unlocked it: %d, overlaps: %d\n", ok, unlocked,
           atomic_load(&overlap));
    printf("L free again: %s\n", L == 0 ? "yes" : "no");

    printf("-- requeued, then the deadline passes with the lock still held\n");
    atomic_store((_Atomic uint32_t *)&L, (uint32_t)me);
    /* (Should the waiter's deadline pass before the requeue finds it, it times out all the
     * same: the loop stops and only what holds either way is printed.) */
    struct waiter d = {.timeout_ms = 300};
    start(&d);
    while (!atomic_load(&d.done) && fx(&cv, CMP_RQ, 1, 0, &L, 0) == 0) {
    }
    pthread_join(d.th, 0);
    printf("waiter: %s, owned L: %s\n", name(d.r), d.owned ? "yes" : "no");
    printf("L still the requeuer's: %s\n", (L & TID_MASK) == (uint32_t)me ? "yes" : "no");
    r = fx(&L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0);
    printf("unlock: %s, L free: %s\n", name(r), L == 0 ? "yes" : "no");

    printf("-- requeued, then a signal\n");
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    atomic_store((_Atomic uint32_t *)&L, (uint32_t)me);
    struct waiter e = {0};
    start(&e);
    printf("requeued: %ld\n", requeue_all(1, 0));
    pthread_kill(e.th, SIGUSR1);
    pthread_join(e.th, 0);
    printf("waiter: %s, owned L: %s\n", name(e.r), e.owned ? "yes" : "no");
    r = fx(&L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0);
    printf("unlock: %s, L free: %s\n", name(r), L == 0 ? "yes" : "no");

    /* Before a requeue a signal restarts the call (-ERESTARTNOINTR from
     * handle_early_requeue_pi_wakeup), with or without SA_RESTART: the waiter is requeued
     * afterwards all the same (or had the lock taken for it before it saw the signal). */
    printf("-- a signal before the requeue\n");
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, 0);
    handled = 0;
    struct waiter f = {0};
    start(&f);
    while ((r = fx(&cv, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0)) == 0) {
    }
    printf("queued (wake: %s)\n", name(r));
    pthread_kill(f.th, SIGUSR1);
    while ((r = fx(&cv, CMP_RQ, 1, 0, &L, 0)) == 0) {
    }
    printf("requeue: %s\n", name(r));
    pthread_join(f.th, 0);
    printf("waiter: %s, owned L: %s, unlock: %s, handler ran: %d\n", name(f.r),
           f.owned ? "yes" : "no", name(f.unlock), (int)handled);
    return 0;
}
