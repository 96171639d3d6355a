//! cflags: -pthread
// A process with 300 threads (1000 were checked by hand; the reads of stat and status, which
// walk the process's pages, cost cetbox 25 ms each there): each thread's /proc/self/task/TID/status and stat describe
// that thread (fs/proc/array.c proc_pid_status, do_task_stat) and its syscall file the call
// it sleeps in (fs/proc/base.c proc_pid_syscall). Thread i blocks a set of signals of its
// own, then sleeps in a one-byte read of a pipe; once each shows State S the main thread
// compares each one's SigBlk with the set it blocked, its stat state and its syscall line.
// cetbox published a thread's facts in one of 248 slots: the threads beyond them showed the
// host's files (the emulator's own host thread: its signal mask).
//
// Then threads are created and each one's status read as soon as pthread_create returns:
// SigCgt, the process's caught signals, must be the process's whatever the new thread has
// done so far. cetbox showed the host's file (cetbox's own handlers) for a thread that had
// not published yet.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../common/read_file.h"

#define N 300
#define NEW 200

static int pipefd[2];
static pid_t tids[N];
static unsigned long stack_lo[N], stack_hi[N];
extern char __executable_start[], etext[];
static int ready[2];

static unsigned long long mask_of(int i) {
    unsigned long long m = 0;
    int sigs[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD, SIGWINCH, SIGRTMIN + 2,
                  SIGRTMIN + 5, SIGRTMAX, SIGPROF};
    for (int b = 0; b < 10; b++)
        if (i & (1 << b))
            m |= 1ULL << (sigs[b] - 1);
    return m;
}

static void *thread(void *arg) {
    int i = (int)(long)arg;
    sigset_t set;
    sigemptyset(&set);
    unsigned long long m = mask_of(i);
    for (int s = 1; s <= 64; s++)
        if (m & (1ULL << (s - 1)))
            sigaddset(&set, s);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
    tids[i] = syscall(SYS_gettid);
    pthread_attr_t a;
    void *lo;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &a) || pthread_attr_getstack(&a, &lo, &size))
        abort();
    stack_lo[i] = (unsigned long)lo;
    stack_hi[i] = (unsigned long)lo + size;
    char c = 0;
    if (write(ready[1], &c, 1) != 1)
        abort();
    if (read(pipefd[0], &c, 1) != 1)
        abort();
    return NULL;
}


static const char *field(const char *text, const char *name) {
    const char *l = strstr(text, name);
    return l ? l + strlen(name) : "";
}

static int newborn_pipe[2];

// A thread made with clone itself (its tid is known when clone returns): sleeps in a read
// until the process exits.
static int newborn(void *arg) {
    (void)arg;
    char c;
    for (;;)
        syscall(SYS_read, newborn_pipe[0], &c, 1);
    return 0;
}

int main(void) {
    if (pipe(pipefd) || pipe(ready) || pipe(newborn_pipe))
        return 1;
    alarm(120);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 << 10);
    static pthread_t th[N];
    for (int i = 0; i < N; i++) {
        if (pthread_create(&th[i], &attr, thread, (void *)(long)i)) {
            printf("pthread_create %d failed\n", i);
            return 1;
        }
    }
    for (int i = 0; i < N; i++) {
        char c;
        if (read(ready[0], &c, 1) != 1)
            return 1;
    }
    static char buf[8192];
    char path[96];
    char own[8192];
    read_whole("/proc/self/status", own, sizeof own);
    char cgt[64];
    snprintf(cgt, sizeof cgt, "%.*s", (int)strcspn(field(own, "SigCgt:\t"), "\n"),
             field(own, "SigCgt:\t"));
    int blk_ok = 0, state_ok = 0, sys_ok = 0;
    for (int i = 0; i < N; i++) {
        // Until the thread sleeps in its read: Linux shows its call only then ("running"
        // while it runs: kernel/lib/syscall.c task_current_syscall).
        char want[64];
        snprintf(want, sizeof want, "0 0x%x ", pipefd[0]);
        snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tids[i]);
        for (long tries = 0; tries < 10000000; tries++) {
            if (read_whole(path, buf, sizeof buf) > 0 && strncmp(buf, "running", 7))
                break;
            sched_yield();
        }
        // nr fd buf count r10 r8 r9 sp ip: the stack pointer in the thread's stack, the
        // instruction pointer in the program's code (static), where the SYSCALL is.
        unsigned long v[9] = {0};
        sscanf(buf, "%lu %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7], &v[8]);
        if (!strncmp(buf, want, strlen(want)) && v[3] == 1 && v[7] >= stack_lo[i] &&
            v[7] < stack_hi[i] && v[8] > (unsigned long)__executable_start &&
            v[8] <= (unsigned long)etext)
            sys_ok++;
        else if (sys_ok == i)
            printf("thread %d syscall: %s", i, buf);
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tids[i]);
        const char *close_paren = read_whole(path, buf, sizeof buf) > 0 ? strrchr(buf, ')') : NULL;
        if (close_paren && close_paren[2] == 'S')
            state_ok++;
        snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tids[i]);
        read_whole(path, buf, sizeof buf);
        if (strtoull(field(buf, "SigBlk:\t"), NULL, 16) == mask_of(i) &&
            field(buf, "State:\t")[0] == 'S' && !strncmp(field(buf, "SigCgt:\t"), cgt, strlen(cgt)))
            blk_ok++;
    }
    printf("%d threads: stat S %d, status S, SigBlk as blocked and SigCgt %d, syscall read(pipe, buf, 1) %d\n", N,
           state_ok, blk_ok, sys_ok);

    int cgt_ok = 0;
    for (int i = N; i < N + NEW; i++) {
        static char stacks[NEW][16384] __attribute__((aligned(16)));
        int tid = clone(newborn, stacks[i - N] + sizeof stacks[i - N],
                        CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                            CLONE_SYSVSEM,
                        NULL);
        if (tid < 0)
            return 1;
        snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
        read_whole(path, buf, sizeof buf);
        if (!strncmp(field(buf, "SigCgt:\t"), cgt, strlen(cgt)))
            cgt_ok++;
    }
    printf("%d new threads read at once: SigCgt the process's %d\n", NEW, cgt_ok);
    fflush(stdout);
    static char release[N];
    if (write(pipefd[1], release, sizeof release) != sizeof release)
        return 1;
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    // The cloned threads end with the process.
    return 0;
}
