/* FUTEX_LOCK_PI racing with mprotect of the futex word's page to read-only. The kernel's own
 * update of the word (setting FUTEX_WAITERS on an owned lock: kernel/futex/pi.c
 * futex_lock_pi_atomic) faults once the page is read-only, so once mprotect has returned the
 * word never changes again: the locker either set the bit before, or fails (EFAULT) or waits
 * without touching the word until its timeout. Repeated, each round with a fresh locker thread
 * starting as mprotect is called; the word is compared just after mprotect and after the
 * locker ended. */
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

static uint32_t *word;
static atomic_int owner_tid, go, locking;
static long results[3];
static int gate[2];

static void *owner(void *arg) {
    (void)arg;
    atomic_store(&owner_tid, (int)syscall(SYS_gettid));
    char c;
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
    }
    return 0;
}

static void *locker(void *arg) {
    (void)arg;
    while (!atomic_load(&go)) {
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 5 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    atomic_store(&locking, 1);
    long r = syscall(SYS_futex, word, FUTEX_LOCK_PI, 0, &ts, 0, 0);
    results[r == 0 ? 0 : errno == ETIMEDOUT ? 1 : 2]++;
    return 0;
}

int main(void) {
    if (pipe(gate)) return 1;
    word = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t o;
    pthread_create(&o, 0, owner, 0);
    while (!atomic_load(&owner_tid)) {
    }
    int changed = 0;
    for (int round = 0; round < 200; round++) {
        mprotect(word, 4096, PROT_READ | PROT_WRITE);
        *word = (uint32_t)atomic_load(&owner_tid);
        atomic_store(&go, 0);
        atomic_store(&locking, 0);
        pthread_t l;
        pthread_create(&l, 0, locker, 0);
        atomic_store(&go, 1);
        /* From the moment the locker is about to call, a delay varying with the round, so
         * that mprotect falls before, in and after the call's entry. */
        while (!atomic_load(&locking)) {
        }
        for (volatile int i = 0; i < (round % 20) * 100; i++) {
        }
        mprotect(word, 4096, PROT_READ);
        uint32_t after = atomic_load((_Atomic uint32_t *)word);
        pthread_join(l, 0);
        if (atomic_load((_Atomic uint32_t *)word) != after) changed++;
    }
    printf("rounds where the word changed after mprotect returned: %d\n", changed);
    if (getenv("PI_RACE_VERBOSE"))
        fprintf(stderr, "locked %ld timed out %ld failed %ld\n", results[0], results[1], results[2]);
    if (write(gate[1], "x", 1) != 1) return 1;
    pthread_join(o, 0);
    return 0;
}
