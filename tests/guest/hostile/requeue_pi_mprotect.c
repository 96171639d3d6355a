/* A FUTEX_WAIT_REQUEUE_PI waiter requeued to a PI lock whose page another thread then makes
 * read-only (tests/hostile/requeue_pi.c includes this file for the same with the page
 * replaced by a shadow stack, which needs CET hardware natively). Linux's own writes of the
 * lock word (the hand-over in UNLOCK_PI, kernel/futex/pi.c wake_futex_pi; the woken waiter's
 * owner fix-up, fixup_pi_owner) fault once the page is read-only, so after mprotect has
 * returned the word never changes again.
 * "held": the requeuer keeps the lock; the waiter times out (ETIMEDOUT,
 * futex_wait_requeue_pi after rt_mutex_wait_proxy_lock) without writing, and the requeuer's
 * UNLOCK_PI fails with EFAULT (the cmpxchg faults and fault_in_user_writeable fails).
 * "race": the requeuer unlocks (handing the lock over) and makes the page read-only after a
 * delay varying with the round; the page is compared just after mprotect and after the
 * waiter ended. What the waiter answers is left out of the output: on Linux it always got
 * the lock in the UNLOCK_PI, which cetbox only approximates (README, Known limits). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_RQ (FUTEX_WAIT_REQUEUE_PI | FUTEX_PRIVATE_FLAG)
#define CMP_RQ (FUTEX_CMP_REQUEUE_PI | FUTEX_PRIVATE_FLAG)

static long fx(void *u, int op, long val, long t, void *u2, long val3) {
    long r = syscall(SYS_futex, u, op, val, t, u2, val3);
    return r < 0 ? -errno : r;
}

static const char *name(long r) {
    switch (r) {
    case 0: return "0";
    case -EFAULT: return "EFAULT";
    case -EPERM: return "EPERM";
    case -ETIMEDOUT: return "ETIMEDOUT";
    case -EAGAIN: return "EAGAIN";
    }
    return "other";
}

static uint32_t cv;
static char *P;
static uint32_t *L;
static long wait_ms;
static long waiter_ret;
static atomic_int waiter_done;

static void *waiter(void *arg) {
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += wait_ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    waiter_ret = fx(&cv, WAIT_RQ, 0, (long)&ts, L, 0);
    atomic_store(&waiter_done, 1);
    return 0;
}

/* A fresh page P with the lock L in it, held by this thread, and a waiter requeued to L (or,
 * should its deadline pass before the requeue finds it, timed out: the same either way for
 * what is printed). */
static pthread_t requeued_waiter(long ms) {
    P = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (P == MAP_FAILED) exit(1);
    L = (uint32_t *)(P + 256);
    *L = (uint32_t)syscall(SYS_gettid);
    wait_ms = ms;
    atomic_store(&waiter_done, 0);
    pthread_t th;
    pthread_create(&th, 0, waiter, 0);
    while (!atomic_load(&waiter_done) && fx(&cv, CMP_RQ, 1, 0, L, 0) == 0) {
    }
    return th;
}

/* Takes write access from P: read-only, or (shstk) unmapped and replaced by a shadow stack
 * with a restore token (map_shadow_stack takes the address as MAP_FIXED_NOREPLACE). Returns
 * whether the new page is at P. */
static int take_away(int shstk) {
    if (!shstk) return mprotect(P, 4096, PROT_READ) == 0;
    munmap(P, 4096);
    return syscall(453, P, 4096, 1) == (long)P;
}

static void held(int shstk) {
    static char before[4096];
    pthread_t th = requeued_waiter(500);
    int at_p = take_away(shstk);
    if (shstk) printf("map_shadow_stack at P: %s\n", at_p ? "yes" : "no");
    memcpy(before, P, 4096);
    pthread_join(th, 0);
    printf("waiter: %s\n", name(waiter_ret));
    printf("requeuer's unlock: %s\n", name(fx(L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0)));
    printf("page: %s\n", memcmp(before, P, 4096) == 0 ? "unchanged" : "CHANGED");
    munmap(P, 4096);
}

static void race(int shstk) {
    static char before[4096];
    int changed = 0, elsewhere = 0, unlock_failed = 0;
    for (int round = 0; round < 100; round++) {
        pthread_t th = requeued_waiter(200);
        if (fx(L, FUTEX_UNLOCK_PI_PRIVATE, 0, 0, 0, 0) != 0) unlock_failed++;
        for (volatile int i = 0; i < (round % 20) * 100; i++) {
        }
        if (!take_away(shstk)) elsewhere++;
        memcpy(before, P, 4096);
        pthread_join(th, 0);
        if (memcmp(before, P, 4096) != 0) changed++;
        munmap(P, 4096);
    }
    printf("unlocks that failed: %d, pages not at P: %d\n", unlock_failed, elsewhere);
    printf("rounds where the page changed after %s returned: %d\n",
           shstk ? "map_shadow_stack" : "mprotect", changed);
}

#ifndef REQUEUE_PI_NO_MAIN
int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    printf("-- held\n");
    held(0);
    printf("-- race\n");
    race(0);
    return 0;
}
#endif
