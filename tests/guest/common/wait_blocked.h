/* Shared by guest programs (include as "../common/wait_blocked.h"); crates/cli/tests/guest.rs
 * hashes the headers a program includes into its build cache key. */
#ifndef CETBOX_GUEST_WAIT_BLOCKED_H
#define CETBOX_GUEST_WAIT_BLOCKED_H

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Waits until thread `tid` of this process sleeps inside system call `nr` (whose first
 * argument is `arg0`, unless that is NULL). /proc/<pid>/task/<tid>/syscall shows the number
 * and arguments only while the thread is blocked and "running" otherwise (Linux
 * fs/proc/base.c, proc_pid_syscall, via task_current_syscall), so this is real
 * synchronization; the loop only retries until it is true. Returns early once `done` (when not
 * NULL) is set: the thread finished its call without blocking. */
static void wait_blocked_unless(pid_t tid, long nr, const void *arg0, const volatile int *done) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    for (;;) {
        if (done && *done) return;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = 0;
                char *end;
                long got = strtol(buf, &end, 10);
                if (end != buf && got == nr &&
                    (arg0 == NULL || strtoul(end, NULL, 16) == (unsigned long)arg0))
                    return;
            }
        }
        usleep(1000);
    }
}

/* wait_blocked_unless with no way out: the thread must block. */
static void wait_blocked(pid_t tid, long nr, const void *arg0) {
    wait_blocked_unless(tid, nr, arg0, NULL);
}

/* Starts `fn` (with a NULL argument) in a new thread, which must first store its thread id
 * (gettid) in *tid, and returns the thread once it sleeps in system call `nr` with first
 * argument `arg0` (wait_blocked). */
static pthread_t start_blocked(void *(*fn)(void *), volatile pid_t *tid, long nr, const void *arg0) {
    *tid = 0;
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    while (!*tid) sched_yield();
    wait_blocked(*tid, nr, arg0);
    return t;
}

#endif
