/* A futex word's page is unmapped while a thread waits on it (kernel/futex: a private futex
 * is keyed by mm and address alone, a shared one by its page):
 * - FUTEX_WAIT_PRIVATE: a private wake at the address still wakes the waiter;
 * - FUTEX_WAIT (shared): the wake fails with EFAULT (no page to key); after a new mapping at
 *   the same address a wake reaches the waiter;
 * - FUTEX_LOCK_PI with a deadline, the lock held by this thread: UNLOCK_PI on the gone word
 *   fails with EFAULT, so nobody can hand the lock over and the waiter times out (ETIMEDOUT);
 * - FUTEX_CMP_REQUEUE of a waiter to a second word whose page is then unmapped: a private
 *   wake there reaches it; CMP_REQUEUE from an unmapped word fails with EFAULT.
 * Waiters are waited for in their system call (common/wait_blocked.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

static long fx(void *u, int op, long val, void *ts, void *u2, long val3) {
    long r = syscall(SYS_futex, u, op, val, ts, u2, val3);
    return r < 0 ? -errno : r;
}

static const char *res(long r) {
    static char b[4][32];
    static int i;
    char *s = b[i++ % 4];
    if (r >= 0) snprintf(s, 32, "%ld", r);
    else snprintf(s, 32, "%s", strerrorname_np((int)-r));
    return s;
}

static uint32_t *W, *W2;
static volatile pid_t waiter_tid;
static long waiter_ret;
static int mode;

static void *waiter(void *a) {
    (void)a;
    waiter_tid = (pid_t)syscall(SYS_gettid);
    struct timespec ts;
    switch (mode) {
    case 0: waiter_ret = fx(W, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0); break;
    case 1: waiter_ret = fx(W, FUTEX_WAIT, 0, NULL, NULL, 0); break;
    case 2:
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        waiter_ret = fx(W, FUTEX_LOCK_PI_PRIVATE, 0, &ts, NULL, 0);
        break;
    }
    return NULL;
}

static pthread_t start(int m) {
    mode = m;
    return start_blocked(waiter, &waiter_tid, SYS_futex, W);
}

static char *fresh(void) {
    char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    W = (uint32_t *)pg;
    W2 = (uint32_t *)(pg + 4096);
    *W = 0;
    *W2 = 0;
    return pg;
}

/* A waiter started in mode `m` on W (which holds `w0`), W's page then unmapped, and this
 * thread's `op` with `val` on W: the op's result, once the waiter has returned (its result is
 * in waiter_ret). W2's page is unmapped too at the end. */
static long op_after_unmap(int m, uint32_t w0, int op, long val) {
    char *pg = fresh();
    *W = w0;
    pthread_t t = start(m);
    munmap(pg, 4096);
    long r = fx(W, op, val, NULL, NULL, 0);
    pthread_join(t, NULL);
    munmap(pg + 4096, 4096);
    return r;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);

    long w = op_after_unmap(0, 0, FUTEX_WAKE_PRIVATE, 1);
    printf("WAIT_PRIVATE, page unmapped: WAKE_PRIVATE -> %s, waiter -> %s\n", res(w), res(waiter_ret));

    char *pg = fresh();
    pthread_t t = start(1);
    munmap(pg, 4096);
    w = fx(W, FUTEX_WAKE, 1, NULL, NULL, 0);
    mmap(pg, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    long w2 = fx(W, FUTEX_WAKE, 1, NULL, NULL, 0);
    pthread_join(t, NULL);
    printf("WAIT (shared), page unmapped: WAKE -> %s, after a new mapping WAKE -> %s, waiter -> %s\n",
           res(w), res(w2), res(waiter_ret));
    munmap(pg, 8192);

    /* This thread owns the PI lock. */
    long u = op_after_unmap(2, (uint32_t)syscall(SYS_gettid), FUTEX_UNLOCK_PI_PRIVATE, 0);
    printf("LOCK_PI, page unmapped: UNLOCK_PI -> %s, waiter -> %s\n", res(u), res(waiter_ret));

    pg = fresh();
    t = start(0);
    long q = fx(W, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1L, W2, 0);
    munmap(pg + 4096, 4096);
    w = fx(W2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(t, NULL);
    printf("CMP_REQUEUE to a word then unmapped: requeue -> %s, WAKE_PRIVATE there -> %s, waiter -> %s\n",
           res(q), res(w), res(waiter_ret));
    munmap(pg, 4096);
    printf("CMP_REQUEUE from an unmapped word -> %s\n",
           res(fx(W, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1L, W2, 0)));
    return 0;
}
