/* Four threads: three workers wait in a condition variable while main stops in
 * all_started(), so a debugger sees every thread at once. */
#include <pthread.h>
#include <stdio.h>

static pthread_barrier_t started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int done;

__attribute__((noinline)) void worker_wait(void) {
    pthread_mutex_lock(&lock);
    while (!done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void *worker(void *arg) {
    pthread_barrier_wait(&started);
    worker_wait();
    return arg;
}

__attribute__((noinline)) void all_started(void) {
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    pthread_t t[3];
    pthread_barrier_init(&started, NULL, 4);
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    pthread_barrier_wait(&started);
    all_started();
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    puts("joined");
    return 0;
}
