// Another thread's /proc/self/task/TID/status and stat show that thread as it sees itself
// through /proc/thread-self (Linux fs/proc/array.c proc_pid_status, do_task_stat: the same
// generators serve both): its own blocked and pending signals, its tid, and the process's
// ids, dispositions and thread count. The second thread reads its own files, then blocks in a
// pipe read while the main thread reads them and compares; the State and signal sets of the
// blocked thread are printed. Under cetbox the host's files describe the emulator's thread
// (its own signal mask and handlers).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../common/read_file.h"

#define MAX 8192
static char own_status[MAX], own_stat[MAX], other_status[MAX], other_stat[MAX];
static char a[MAX], b[MAX];
static int ready[2], wake[2];
static pid_t thread_tid;

static long read_file(const char *path, char *buf) { return read_whole(path, buf, MAX); }

static void *thread(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    thread_tid = syscall(SYS_gettid);
    syscall(SYS_tgkill, getpid(), thread_tid, SIGUSR1);
    read_file("/proc/thread-self/status", own_status);
    read_file("/proc/thread-self/stat", own_stat);
    char c = 0;
    if (write(ready[1], &c, 1) != 1 || read(wake[0], &c, 1) != 1)
        return NULL;
    return NULL;
}

static int keep_status(const char *line) {
    static const char *const keep[] = {"Name:",   "Umask:",  "Tgid:",   "Pid:",
                                       "PPid:",   "Uid:",    "Gid:",    "NStgid:",
                                       "NSpid:",  "Threads:", "SigPnd:", "ShdPnd:",
                                       "SigBlk:", "SigIgn:", "SigCgt:", "CapEff:"};
    for (unsigned i = 0; i < sizeof keep / sizeof *keep; i++)
        if (!strncmp(line, keep[i], strlen(keep[i])))
            return 1;
    return 0;
}

static void stable_status(const char *in, char *out) {
    long n = 0;
    for (const char *p = in; *p;) {
        const char *e = strchr(p, '\n');
        long len = e ? e - p + 1 : (long)strlen(p);
        if (keep_status(p) && n + len < MAX) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = 0;
}

// pid, comm, ppid, pgrp, session, tty, tpgid, num_threads, the signal words.
static void stable_stat(const char *in, char *out) {
    const char *close = strrchr(in, ')');
    out[0] = 0;
    if (!close)
        return;
    long n = snprintf(out, MAX, "%.*s", (int)(close + 1 - in), in);
    int field = 3;
    for (const char *p = close + 2; *p && *p != '\n'; field++) {
        const char *e = p + strcspn(p, " \n");
        if ((field >= 4 && field <= 8) || field == 20 || (field >= 31 && field <= 34))
            n += snprintf(out + n, MAX - n, " %d=%.*s", field, (int)(e - p), p);
        p = *e == ' ' ? e + 1 : e;
    }
}

static void show(const char *name) {
    const char *l = strstr(other_status, name);
    const char *end = l ? strchr(l, '\n') : NULL;
    printf("thread's %.*s\n", l && end ? (int)(end - l) : 0, l ? l : "");
}

int main(void) {
    if (pipe(ready) || pipe(wake))
        return 1;
    alarm(60);
    signal(SIGHUP, SIG_IGN);
    pthread_t t;
    if (pthread_create(&t, NULL, thread, NULL))
        return 1;
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    // Until the thread sleeps in its read.
    char path[96], stat[MAX];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)thread_tid);
    for (long tries = 0; tries < 10000000; tries++) {
        const char *close = read_file(path, stat) > 0 ? strrchr(stat, ')') : NULL;
        if (close && close[2] == 'S')
            break;
        sched_yield();
    }
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)thread_tid);
    read_file(path, other_status);
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)thread_tid);
    read_file(path, other_stat);
    stable_status(own_status, a);
    stable_status(other_status, b);
    printf("thread's status: %s\n", strcmp(a, b) ? "DIFFERS" : "as it sees itself");
    stable_stat(own_stat, a);
    stable_stat(other_stat, b);
    printf("thread's stat: %s\n", strcmp(a, b) ? "DIFFERS" : "as it sees itself");
    show("State:");
    show("SigPnd:");
    show("SigBlk:");
    show("SigIgn:");
    show("Threads:");
    fflush(stdout);
    if (write(wake[1], &c, 1) != 1)
        return 1;
    pthread_join(t, NULL);
    return 0;
}
