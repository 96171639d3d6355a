/* Creating threads while earlier ones compute in tight loops: pthread_create maps a stack
 * PROT_NONE and then makes it accessible, which takes nothing away from other threads, so
 * it must not wait for them. Then a change that does take memory away (mprotect to
 * PROT_READ) must be seen by every thread once it returns: a computing thread that then
 * writes the page faults. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N 24
static atomic_int stop, started, phase;
static char *page;
static atomic_int faults;
static __thread sigjmp_buf env;

static void on_segv(int sig) {
    (void)sig;
    atomic_fetch_add(&faults, 1);
    siglongjmp(env, 1);
}

static void *spin(void *arg) {
    long id = (long)arg;
    atomic_fetch_add(&started, 1);
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) x = x * 3 + 1;
    /* Phase 2: every thread writes the page after it became read-only. */
    while (atomic_load(&phase) != 2) x++;
    if (!sigsetjmp(env, 1)) page[id] = 1;
    return 0;
}

int main(void) {
    signal(SIGSEGV, on_segv);
    page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t th[N];
    for (long i = 0; i < N; i++) pthread_create(&th[i], 0, spin, (void *)i);
    while (atomic_load(&started) != N) sched_yield();
    printf("%d threads created while the others computed\n", N);
    atomic_store(&stop, 1);
    mprotect(page, 4096, PROT_READ);
    atomic_store(&phase, 2);
    for (int i = 0; i < N; i++) pthread_join(th[i], 0);
    int zero = 1;
    for (int i = 0; i < N; i++) zero &= page[i] == 0;
    printf("writes after mprotect(PROT_READ): %d faulted, page %s\n", atomic_load(&faults),
           zero ? "unchanged" : "CHANGED");
    return 0;
}
