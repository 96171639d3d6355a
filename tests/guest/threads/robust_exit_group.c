// Robust mutexes held by a process that ends all at once: Linux walks the robust list of
// every thread of the process (do_exit, exit_robust_list), so another process locking them
// gets EOWNERDEAD, whether the holder called _exit (exit_group), died of a signal's default
// action or of SIGKILL, or held the mutex in a thread other than the one that ended the
// process.
//! cflags: -pthread
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t *m;
static int go[2];

static void init(pthread_mutex_t *x, int pi) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pi)
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(x, &a);
}

static const char *name(int e) {
    return e ? strerrorname_np(e) : "0";
}

static void *hold_second(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m[1]);
    write(go[1], "t", 1);
    for (;;)
        pause();
}

static void holder(int how) {
    pthread_mutex_lock(&m[0]);
    if (how == 2) {
        pthread_t th;
        pthread_create(&th, NULL, hold_second, NULL);
        char b;
        read(go[0], &b, 1);
    }
    if (how == 1)
        raise(SIGTERM);
    if (how == 3)
        raise(SIGKILL);
    _exit(0);
}

static void round_(const char *what, int how, int pi) {
    init(&m[0], pi);
    init(&m[1], pi);
    pid_t c = fork();
    if (c == 0)
        holder(how);
    int st;
    waitpid(c, &st, 0);
    int e0 = pthread_mutex_lock(&m[0]);
    printf("%s%s: lock after the holder ended: %s", what, pi ? " (PI)" : "", name(e0));
    if (e0 == EOWNERDEAD)
        pthread_mutex_consistent(&m[0]);
    pthread_mutex_unlock(&m[0]);
    if (how == 2) {
        int e1 = pthread_mutex_trylock(&m[1]);
        printf(", second thread's mutex: %s", name(e1));
        if (e1 == EOWNERDEAD)
            pthread_mutex_consistent(&m[1]);
        pthread_mutex_unlock(&m[1]);
    }
    printf("\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pipe(go);
    for (int pi = 0; pi < 2; pi++) {
        round_("_exit", 0, pi);
        round_("SIGTERM", 1, pi);
        round_("_exit with a second thread", 2, pi);
        round_("SIGKILL", 3, pi);
    }
    return 0;
}
