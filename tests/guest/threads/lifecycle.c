// Thread lifecycle: join values, pthread_exit from a thread and its cleanup handlers, detached
// threads, pthread_cancel at cancellation points blocked in the kernel (condition wait,
// nanosleep, read from a pipe, join), pthread_tryjoin_np, and finally pthread_exit from main
// while another thread carries on and prints last (the process exits 0 with the last thread).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cleanups;
static volatile int ready;

static void cleanup(void *arg) {
    __atomic_add_fetch(&cleanups, (int)(long)arg, __ATOMIC_SEQ_CST);
}

static void *exits_early(void *arg) {
    pthread_cleanup_push(cleanup, (void *)1);
    pthread_cleanup_push(cleanup, (void *)10);
    if (arg) pthread_exit((void *)77);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return (void *)1;
}

static void *waits_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    pthread_cleanup_push((void (*)(void *))pthread_mutex_unlock, &mu);
    __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
    for (;;) pthread_cond_wait(&cv, &mu);
    pthread_cleanup_pop(1);
    return NULL;
}

static void *sleeps(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup, (void *)100);
    __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {1000, 0};
    nanosleep(&ts, NULL);
    pthread_cleanup_pop(0);
    return NULL;
}

static int pfd[2];
static void *reads(void *arg) {
    (void)arg;
    char c;
    pthread_cleanup_push(cleanup, (void *)1000);
    __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
    read(pfd[0], &c, 1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *cancel_disabled(void *arg) {
    (void)arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    __atomic_store_n(&ready, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) != 2) usleep(1000);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_testcancel();
    return (void *)5;
}

static int detached_done;
static void *detached(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    detached_done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *outlives_main(void *arg) {
    pthread_t main_thread = *(pthread_t *)arg;
    /* Joining a thread that called pthread_exit works even for the main thread. */
    void *r;
    int e = pthread_join(main_thread, &r);
    printf("joined main: %d value %ld\n", e, (long)r);
    printf("last thread done\n");
    fflush(stdout);
    return NULL;
}

static void cancel_and_join(const char *what, void *(*f)(void *)) {
    pthread_t t;
    void *r;
    __atomic_store_n(&ready, 0, __ATOMIC_SEQ_CST);
    pthread_create(&t, NULL, f, NULL);
    while (!__atomic_load_n(&ready, __ATOMIC_SEQ_CST)) usleep(1000);
    usleep(20000); /* let it block in the kernel */
    pthread_cancel(t);
    if (f == cancel_disabled) {
        usleep(20000);
        __atomic_store_n(&ready, 2, __ATOMIC_SEQ_CST);
    }
    pthread_join(t, &r);
    printf("cancel %s: %s, cleanups %d\n", what, r == PTHREAD_CANCELED ? "canceled" : "returned",
           cleanups);
}

int main(void) {
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, exits_early, (void *)1);
    pthread_join(t, &r);
    printf("pthread_exit value %ld, cleanups %d\n", (long)r, cleanups);
    pthread_create(&t, NULL, exits_early, NULL);
    pthread_join(t, &r);
    printf("return value %ld, cleanups %d\n", (long)r, cleanups);

    cancel_and_join("cond_wait", waits_forever);
    printf("mutex free after cancel: %d\n", pthread_mutex_trylock(&mu));
    pthread_mutex_unlock(&mu);
    cancel_and_join("nanosleep", sleeps);
    pipe(pfd);
    cancel_and_join("read", reads);
    cancel_and_join("disabled then testcancel", cancel_disabled);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&mu);
        detached_done = 0;
        pthread_create(&t, &attr, detached, NULL);
        while (!detached_done) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    printf("detached threads ran\n");

    pthread_create(&t, NULL, exits_early, NULL);
    int e;
    while ((e = pthread_tryjoin_np(t, &r)) == EBUSY) usleep(1000);
    printf("tryjoin: %d value %ld\n", e, (long)r);

    static pthread_t self;
    self = pthread_self();
    printf("main exits with pthread_exit\n");
    fflush(stdout);
    pthread_create(&t, NULL, outlives_main, &self);
    pthread_exit((void *)3);
}
