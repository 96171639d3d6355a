//! cflags: -pthread
// The per-thread and per-process /proc files besides status and stat describe the guest as
// Linux shows it (fs/proc/base.c): syscall (the call a sleeping thread is in, the reading
// thread's own read, "running" for a thread that runs), wchan (0 for the reader itself and
// for a running thread), limits (the guest's own limits, after setrlimit) and personality,
// for this process, for another thread, and for a child process (another cetbox under
// cetbox). cetbox showed its own host thread's files: its own syscalls, stack and code, its
// own resource limits (it lifts its soft limits) and personality.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/read_file.h"

#define MAX 8192
static int pipefd[2];
static atomic_int spinning, stop;
static pid_t sleeper_tid, spinner_tid;
static char sleeper_buf[7];

static long read_file(const char *path, char *buf) { return read_whole(path, buf, MAX); }

// The syscall line of a thread sleeping in read(fd, buf, count): its number, descriptor,
// buffer and count against what is expected (the stack and code addresses vary).
static void show_read_call(const char *who, const char *text, int fd, void *buf, long count) {
    unsigned long v[9] = {0};
    int n = sscanf(text, "%lu %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8]);
    printf("%s: %d fields, nr %lu, fd %s, buf %s, count %lu\n", who, n, v[0],
           v[1] == (unsigned long)fd ? "right" : "WRONG",
           v[2] == (unsigned long)buf ? "right" : "WRONG", v[3]);
}

static void *sleeper(void *arg) {
    (void)arg;
    sleeper_tid = syscall(SYS_gettid);
    if (read(pipefd[0], sleeper_buf, sizeof sleeper_buf) < 0)
        return NULL;
    return NULL;
}

static void *spinner(void *arg) {
    (void)arg;
    spinner_tid = syscall(SYS_gettid);
    atomic_store(&spinning, 1);
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x++;
    return NULL;
}

static void wait_asleep(const char *path, char *buf) {
    for (long tries = 0; tries < 10000000; tries++) {
        if (read_file(path, buf) > 0 && strncmp(buf, "running", 7))
            return;
        sched_yield();
    }
}

// Prints the rows of a limits text for the limits cetbox keeps itself, and whether the
// whole text is `other`.
static void show_limits(const char *who, const char *text) {
    printf("%s limits:\n", who);
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        int len = e ? (int)(e - l) : (int)strlen(l);
        if (!strncmp(l, "Max data size", 13) || !strncmp(l, "Max stack size", 14) ||
            !strncmp(l, "Max address space", 17) || !strncmp(l, "Limit ", 6))
            printf("  %.*s|\n", len, l);
        l += len + (e != NULL);
    }
}

int main(void) {
    static char buf[MAX], own[MAX];
    if (pipe(pipefd))
        return 1;
    alarm(60);
    // The reader's own call: the read of the file itself.
    int fd = open("/proc/thread-self/syscall", O_RDONLY | O_CLOEXEC);
    long n = read(fd, buf, 4000);
    buf[n > 0 ? n : 0] = 0;
    show_read_call("own syscall", buf, fd, buf, 4000);
    n = pread(fd, buf, 3000, 0);
    buf[n > 0 ? n : 0] = 0;
    printf("own syscall again (pread64): nr %d\n", atoi(buf));
    close(fd);
    read_file("/proc/self/syscall", buf);
    printf("process syscall (the main thread's own): nr %d\n", atoi(buf));
    read_file("/proc/thread-self/wchan", buf);
    printf("own wchan: %s\n", buf);

    pthread_t a, b;
    if (pthread_create(&a, NULL, sleeper, NULL) || pthread_create(&b, NULL, spinner, NULL))
        return 1;
    while (!atomic_load(&spinning) || !sleeper_tid)
        sched_yield();
    char path[96];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)sleeper_tid);
    wait_asleep(path, buf);
    show_read_call("sleeping thread's syscall", buf, pipefd[0], sleeper_buf, 7);
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)sleeper_tid);
    read_file(path, buf);
    printf("sleeping thread's wchan: %s\n", strcmp(buf, "0") ? "a kernel function" : "0");
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)spinner_tid);
    read_file(path, buf);
    printf("running thread's syscall: %s", buf);
    snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)spinner_tid);
    read_file(path, buf);
    printf("running thread's wchan: %s\n", buf);
    atomic_store(&stop, 1);
    if (write(pipefd[1], "x", 1) != 1)
        return 1;
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    // Limits and personality: this process's own, then a child's as it and the parent see it.
    struct rlimit r;
    getrlimit(RLIMIT_DATA, &r);
    r.rlim_cur = 64 << 20;
    setrlimit(RLIMIT_DATA, &r);
    getrlimit(RLIMIT_AS, &r);
    r.rlim_cur = 8ULL << 30;
    setrlimit(RLIMIT_AS, &r);
    getrlimit(RLIMIT_STACK, &r);
    r.rlim_cur = 4 << 20;
    setrlimit(RLIMIT_STACK, &r);
    read_file("/proc/self/limits", own);
    show_limits("own", own);
    read_file("/proc/self/personality", buf);
    printf("own personality: %s", buf);
    personality(ADDR_NO_RANDOMIZE);
    read_file("/proc/self/personality", buf);
    printf("own personality after personality(ADDR_NO_RANDOMIZE): %s", buf);

    int up[2], down[2];
    if (pipe(up) || pipe(down))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        getrlimit(RLIMIT_DATA, &r);
        r.rlim_cur = 32 << 20;
        setrlimit(RLIMIT_DATA, &r);
        personality(ADDR_NO_RANDOMIZE | UNAME26);
        read_file("/proc/self/limits", own);
        read_file("/proc/self/personality", buf);
        if (write(up[1], own, strlen(own)) < 0 || write(up[1], buf, strlen(buf) + 1) < 0)
            _exit(1);
        static char child_buf[5];
        if (read(down[0], child_buf, sizeof child_buf) < 0)
            _exit(1);
        _exit(0);
    }
    static char told[2 * MAX];
    long got = 0;
    while (got == 0 || told[got - 1] != 0) {
        long k = read(up[0], told + got, sizeof told - got);
        if (k <= 0)
            return 1;
        got += k;
    }
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)child);
    wait_asleep(path, buf);
    unsigned long nr = 0, cfd = 0, cbuf = 0, count = 0;
    sscanf(buf, "%lu %lx %lx %lx", &nr, &cfd, &cbuf, &count);
    printf("child's syscall: nr %lu, fd %s, count %lu\n", nr,
           cfd == (unsigned long)down[0] ? "right" : "WRONG", count);
    snprintf(path, sizeof path, "/proc/%d/wchan", (int)child);
    read_file(path, buf);
    printf("child's wchan: %s\n", strcmp(buf, "0") ? "a kernel function" : "0");
    snprintf(path, sizeof path, "/proc/%d/limits", (int)child);
    read_file(path, buf);
    show_limits("child's", buf);
    // What the child told: its limits text, then its personality line (9 bytes), then NUL.
    size_t told_len = strlen(told);
    printf("child's limits as it sees them: %s\n",
           told_len == strlen(buf) + 9 && !strncmp(told, buf, strlen(buf)) ? "the same"
                                                                           : "DIFFERENT");
    snprintf(path, sizeof path, "/proc/%d/personality", (int)child);
    read_file(path, buf);
    printf("child's personality: %s", buf);
    printf("child's personality as it sees it: %s\n",
           told_len >= 9 && !strcmp(told + told_len - 9, buf) ? "the same" : "DIFFERENT");
    if (write(down[1], "x", 1) != 1)
        return 1;
    int status;
    waitpid(child, &status, 0);
    printf("child exit %d\n", WEXITSTATUS(status));
    return 0;
}
