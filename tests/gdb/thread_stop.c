/* Two threads for gdb run as a guest (crates/cli/tests/guest_gdb.rs): the worker hits a
 * breakpoint in stop_here() only once main sleeps in pthread_join (its
 * /proc/self/task/TID/syscall shows futex), so both threads' frames are the same in every
 * run. It says nothing itself (its writes would race with gdb's reports) and exits with 0
 * if stop_here returned what gdb let it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pid_t main_tid;

__attribute__((noinline)) int stop_here(int n) {
    __asm__ volatile("" ::: "memory");
    return n + 1;
}

/* Waits until main sleeps in futex (202) inside pthread_join. */
static void main_joining(void) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)main_tid);
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f && fgets(buf, sizeof buf, f) && strncmp(buf, "202 ", 4) == 0) {
            fclose(f);
            return;
        }
        if (f)
            fclose(f);
        sched_yield();
    }
}

static void *worker(void *arg) {
    main_joining();
    return (void *)(long)stop_here((int)(long)arg);
}

int main(void) {
    pthread_t t;
    void *r;
    main_tid = gettid();
    pthread_create(&t, NULL, worker, (void *)41);
    pthread_join(t, &r);
    /* No output: the program's own writes would race with gdb's reports. */
    return r == (void *)42 ? 0 : 1;
}
