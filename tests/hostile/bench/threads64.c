/* Benchmark (not a test): time to create 64 threads while the earlier ones spin in a tight
 * loop. gcc -O2 -static -pthread -o threads64 threads64.c; cetbox run -- ./threads64 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
static atomic_int stop;
static void *spin(void *a) {
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) x = x * 3 + 1;
    return a;
}
int main(void) {
    pthread_t th[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 64; i++) pthread_create(&th[i], 0, spin, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    atomic_store(&stop, 1);
    for (int i = 0; i < 64; i++) pthread_join(th[i], 0);
    printf("create 64: %.3f s\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
