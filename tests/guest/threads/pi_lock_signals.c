// Signals reach a thread blocked in FUTEX_LOCK_PI (a process-shared priority-inheritance mutex
// held by another process): a handler runs while it waits and the lock call then goes on
// waiting (Linux restarts it: -ERESTARTNOINTR, kernel/futex/pi.c), and a signal whose default
// action is to terminate kills it (glibc's tst-mutexpi9 pattern: alarm, then lock).
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

static int report_fd;

static void on_usr1(int sig) {
    (void)sig;
    write(report_fd, "h", 1);
}

static pthread_mutex_t *shared_pi_mutex(void) {
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    int e = pthread_mutex_init(m, &a);
    printf("pthread_mutex_init PI: %s\n", e ? strerrorname_np(e) : "0");
    return m;
}

static void status(pid_t c) {
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        printf("child killed by %s\n", sigabbrev_np(WTERMSIG(st)));
    else
        printf("child exit %d\n", WEXITSTATUS(st));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_mutex_t *m = shared_pi_mutex();
    printf("parent lock: %d\n", pthread_mutex_lock(m));

    /* A handler while blocked: the child says it is about to lock, the parent signals it and
     * waits for the handler's byte, then unlocks; the child gets the lock after that. */
    int ready[2], rep[2];
    pipe(ready);
    pipe(rep);
    pid_t c = fork();
    if (c == 0) {
        report_fd = rep[1];
        struct sigaction sa = {.sa_handler = on_usr1};
        sigaction(SIGUSR1, &sa, NULL);
        write(ready[1], "r", 1);
        int e = pthread_mutex_lock(m);
        write(rep[1], e == 0 ? "L" : "E", 1);
        pthread_mutex_unlock(m);
        _exit(0);
    }
    char b;
    read(ready[0], &b, 1);
    kill(c, SIGUSR1);
    read(rep[0], &b, 1);
    printf("child's handler ran: %c\n", b);
    printf("parent unlock: %d\n", pthread_mutex_unlock(m));
    read(rep[0], &b, 1);
    printf("child then locked: %c\n", b);
    status(c);

    /* A fatal signal while blocked: the default action of SIGALRM kills the child. */
    printf("parent lock: %d\n", pthread_mutex_lock(m));
    c = fork();
    if (c == 0) {
        alarm(1);
        pthread_mutex_lock(m);
        puts("child: lock returned");
        _exit(0);
    }
    status(c);
    printf("parent unlock: %d\n", pthread_mutex_unlock(m));
    return 0;
}
