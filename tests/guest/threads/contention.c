// 64 threads hammer one mutex and a set of shared words with every LOCK-prefixed form
// compilers emit (add, xadd, inc, dec, or/and/xor, cmpxchg loops, xchg, 8/16/32/64-bit and a
// cmpxchg8b-free 64-bit CAS); the totals must be exact.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define THREADS 64
#define ITERS 3000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long plain_total;
static long add64, xadd64, inc64, cas64, xchg_sum;
static int32_t add32, dec32;
static int16_t add16;
static uint8_t add8;
static uint64_t bits_or, bits_and = ~0ull, bits_xor;
static volatile long spin_word;
static long spin_total;
static pthread_barrier_t start;

static void *worker(void *arg) {
    long id = (long)arg;
    pthread_barrier_wait(&start);
    for (long i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&mu);
        plain_total += id;
        pthread_mutex_unlock(&mu);
        __atomic_add_fetch(&add64, 3, __ATOMIC_SEQ_CST);          /* lock add */
        (void)__atomic_fetch_add(&xadd64, i, __ATOMIC_SEQ_CST);    /* lock xadd (result used below) */
        long before = __atomic_fetch_add(&xadd64, 0, __ATOMIC_SEQ_CST);
        (void)before;
        __atomic_fetch_add(&inc64, 1, __ATOMIC_RELAXED);            /* lock inc/add */
        long old = __atomic_load_n(&cas64, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(&cas64, &old, old + 2, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        }
        __atomic_add_fetch(&add32, 1, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&dec32, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&add16, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&add8, 1, __ATOMIC_SEQ_CST);
        __atomic_or_fetch(&bits_or, 1ull << (id % 64), __ATOMIC_SEQ_CST);
        __atomic_and_fetch(&bits_and, ~(1ull << ((id + i) % 64)), __ATOMIC_SEQ_CST);
        __atomic_xor_fetch(&bits_xor, 1ull << (i % 64), __ATOMIC_SEQ_CST);
        /* A test-and-set spin lock built on xchg. */
        while (__atomic_exchange_n(&spin_word, 1, __ATOMIC_ACQUIRE)) {
            while (spin_word) __builtin_ia32_pause();
        }
        spin_total++;
        __atomic_store_n(&spin_word, 0, __ATOMIC_RELEASE);
    }
    return (void *)id;
}

int main(void) {
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) return 1;
    long ids = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        ids += (long)r;
    }
    printf("joined ids %ld\n", ids);
    printf("mutex total %ld\n", plain_total);
    printf("lock add %ld xadd %ld inc %ld cas %ld\n", add64, xadd64, inc64, cas64);
    printf("32-bit %d %d 16-bit %d 8-bit %u\n", add32, dec32, add16, add8);
    printf("or %#llx and %#llx xor %#llx\n", (unsigned long long)bits_or,
           (unsigned long long)bits_and, (unsigned long long)bits_xor);
    printf("xchg spin lock total %ld\n", spin_total);
    return 0;
}
