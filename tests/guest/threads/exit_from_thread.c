// exit() from a non-main thread while the main thread waits in pthread_join and others wait
// on a condition variable, a semaphore and in a raw FUTEX_WAIT: the whole process must end
// promptly with that status (atexit handlers run once, in the exiting thread).
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static int word;
static int waiting;

static void *cond_waiter(void *a) {
    (void)a;
    pthread_mutex_lock(&mu);
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    for (;;) pthread_cond_wait(&cv, &mu);
}
static void *sem_waiter(void *a) {
    (void)a;
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    for (;;) sem_wait(&sem);
}
static void *futex_waiter(void *a) {
    (void)a;
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    for (;;) syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}
static void *spinner(void *a) {
    (void)a;
    __atomic_add_fetch(&waiting, 1, __ATOMIC_SEQ_CST);
    for (volatile unsigned long i = 0;; i++) {
    }
}
static void at_exit(void) { printf("atexit handler ran\n"); }
static void *exiter(void *a) {
    (void)a;
    while (__atomic_load_n(&waiting, __ATOMIC_SEQ_CST) < 4) usleep(1000);
    usleep(50000);
    printf("exiting from a thread\n");
    exit(42);
}

int main(void) {
    sem_init(&sem, 0, 0);
    atexit(at_exit);
    pthread_t t[5];
    pthread_create(&t[0], NULL, cond_waiter, NULL);
    pthread_create(&t[1], NULL, sem_waiter, NULL);
    pthread_create(&t[2], NULL, futex_waiter, NULL);
    pthread_create(&t[3], NULL, spinner, NULL);
    pthread_create(&t[4], NULL, exiter, NULL);
    pthread_join(t[0], NULL);
    printf("not reached\n");
    return 0;
}
