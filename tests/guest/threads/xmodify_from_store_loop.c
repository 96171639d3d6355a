// Cross-modifying code through a store instruction that has been running hot in another
// thread: a writer thread stores one byte per iteration into a page with a single store
// instruction, at an offset and value the main thread chooses, while the main thread makes the
// page executable (mprotect RW -> RWX), writes a function into it (mov eax, imm32; ret),
// calls it, then points the writer's store at the function's immediate. After the writer has
// done that store, the main thread serializes (CPUID, as Intel SDM Vol. 3A §9.1.3 asks of
// cross-modifying code) and calls the function again: it must return the new immediate.
// Round two starts with the page already RWX. Under cetbox the store's translated check may
// remember its page as writable: that must never let the store skip the check that makes
// decoded copies of the function stale (a page-table CODE mark).
#define _GNU_SOURCE
#include <cpuid.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static unsigned char *volatile page;
static volatile long offset, value;
static volatile long stores, stop_at;
static volatile int quit;

static void *writer(void *arg) {
    (void)arg;
    for (;;) {
        long round = stop_at;
        if (quit) return NULL;
        if (round == 0) {
            sched_yield();
            continue;
        }
        for (;;) {
            long off = __atomic_load_n(&offset, __ATOMIC_ACQUIRE);
            long v = __atomic_load_n(&value, __ATOMIC_ACQUIRE);
            page[off] = (unsigned char)v;
            __atomic_store_n(&stores, stores + 1, __ATOMIC_RELEASE);
            if (off == 1) break;
        }
        __atomic_store_n(&stop_at, 0, __ATOMIC_RELEASE);
    }
}

static void wait_stores(long n) {
    long start = __atomic_load_n(&stores, __ATOMIC_ACQUIRE);
    while (__atomic_load_n(&stores, __ATOMIC_ACQUIRE) - start < n) sched_yield();
}

static int call_fn(void) {
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    return ((int (*)(void))page)();
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    for (int round = 0; round < 2; round++) {
        int prot = round == 0 ? PROT_READ | PROT_WRITE : PROT_READ | PROT_WRITE | PROT_EXEC;
        unsigned char *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        page = p;
        offset = 2048;
        value = 0x11;
        __atomic_store_n(&stop_at, 1, __ATOMIC_RELEASE);
        // The writer's store runs hot (translated, its page checked) before anything changes.
        wait_stores(200000);
        if (round == 0) mprotect(p, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
        static const unsigned char fn[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
        memcpy(p, fn, sizeof fn);
        int first = call_fn();
        // Decoded now; keep the writer storing into the page a while longer.
        wait_stores(1000);
        __atomic_store_n(&value, 0x2a, __ATOMIC_RELEASE);
        wait_stores(10);
        __atomic_store_n(&offset, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&stop_at, __ATOMIC_ACQUIRE) != 0) sched_yield();
        int second = call_fn();
        printf("round %d: %d then %d, data byte %#x\n", round, first, second, p[2048]);
        munmap(p, 4096);
    }
    quit = 1;
    pthread_join(t, NULL);
    return 0;
}
