//! cflags: -pthread
// setuid in a multi-threaded process: glibc makes every thread change its credentials too
// (nptl/nptl_setxid.c sends each thread SIGSETXID, signal 33, and waits until each ran its
// handler), as glibc's nptl tests tst-setuid3 and tst-pthread-setuid-loop do. Under cetbox the
// host C library's own handler for signal 33 once ran instead of the guest's (SIGSEGV), and a
// thread whose signal arrived just before it began a futex wait slept through it (the setuid
// caller then waited forever). Here threads call setuid while the others wait for the lock
// glibc's setuid holds, and the main thread calls setgid while threads wait on a condition.
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static uid_t uid;
static gid_t gid;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go;
static int failures;

static void *setuid_thread(void *arg) {
    if (setuid(uid) != 0)
        __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    return arg;
}

static void *waiter(void *arg) {
    pthread_mutex_lock(&lock);
    while (!go)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return arg;
}

int main(void) {
    uid = getuid();
    gid = getgid();
    for (int i = 0; i < 200; i++) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++)
            pthread_create(&t[j], NULL, setuid_thread, NULL);
        for (int j = 0; j < 4; j++)
            pthread_join(t[j], NULL);
    }
    printf("setuid from 4 threads at once, 200 rounds: %d failures\n", failures);
    for (int i = 0; i < 50; i++) {
        pthread_t t[3];
        go = 0;
        for (int j = 0; j < 3; j++)
            pthread_create(&t[j], NULL, waiter, NULL);
        if (setgid(gid) != 0)
            failures++;
        pthread_mutex_lock(&lock);
        go = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        for (int j = 0; j < 3; j++)
            pthread_join(t[j], NULL);
    }
    printf("setgid while 3 threads wait, 50 rounds: %d failures\n", failures);
    return 0;
}
