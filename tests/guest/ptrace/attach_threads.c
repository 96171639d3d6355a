/* PTRACE_ATTACH to every thread of a multi-threaded process, as gdb does for each entry of
 * /proc/PID/task: each thread stops for its attach's SIGSTOP (SI_KERNEL), waitpid(tid,
 * __WALL) reports it, and each has its own registers: the three threads are blocked in read()
 * (orig_rax 0, rax -ERESTARTSYS, rip just after a SYSCALL instruction) and have their own fs
 * base. Resumed, each thread is stopped again by tgkill(SIGSTOP) (SI_TKILL from the tracer),
 * then detached; the threads go on, and the process exits with its status. Linux
 * kernel/ptrace.c ptrace_attach, kernel/signal.c ptrace_signal. */
//! link: static
//! cflags: -pthread
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready[2], go[3][2];

static void *worker(void *a) {
    long i = (long)a;
    char c;
    write(ready[1], "r", 1);
    read(go[i][0], &c, 1);
    return (void *)i;
}

/* Waits until thread `tid` sleeps in read() (/proc/PID/task/TID/syscall starts with its
 * number): a stop elsewhere shows other registers. */
static void in_read(pid_t pid, pid_t tid) {
    for (;;) {
        char sp[96], buf[512];
        snprintf(sp, sizeof sp, "/proc/%d/task/%d/syscall", pid, tid);
        FILE *f = fopen(sp, "r");
        if (!f || !fgets(buf, sizeof buf, f)) exit(2);
        fclose(f);
        if (strncmp(buf, "0 ", 2) == 0) return;
        sched_yield();
    }
}

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void regs_of(pid_t pid, pid_t tid, const char *what, unsigned long long *fs) {
    struct user_regs_struct r;
    long rc = ptrace(PTRACE_GETREGS, tid, 0, &r);
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, tid, (void *)(r.rip - 2), 0);
    printf("  %s %s: getregs=%ld orig_rax=%lld rax=%lld after_syscall=%d\n",
           tid == pid ? "leader" : "thread", what, rc, (long long)r.orig_rax, (long long)r.rax,
           errno == 0 && (word & 0xffff) == 0x050f);
    *fs = r.fs_base;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(ready)) return 1;
    for (int i = 0; i < 3; i++)
        if (pipe(go[i])) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t[2];
        for (long i = 1; i <= 2; i++) pthread_create(&t[i - 1], 0, worker, (void *)i);
        long sum = (long)worker(0);
        for (int i = 0; i < 2; i++) {
            void *r;
            pthread_join(t[i], &r);
            sum += (long)r;
        }
        _exit((int)sum);
    }
    char c;
    for (int i = 0; i < 3; i++) read(ready[0], &c, 1);
    char path[64];
    int tids[8], n = 0;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while ((e = readdir(d)) && n < 8)
        if (e->d_name[0] != '.') tids[n++] = atoi(e->d_name);
    closedir(d);
    qsort(tids, n, sizeof *tids, cmp);
    printf("threads: %d\n", n);
    for (int i = 0; i < n; i++) in_read(pid, tids[i]);
    unsigned long long fs[8];
    for (int i = 0; i < n; i++) {
        long rc = ptrace(PTRACE_ATTACH, tids[i], 0, 0);
        int st;
        pid_t w = waitpid(tids[i], &st, __WALL);
        siginfo_t si;
        ptrace(PTRACE_GETSIGINFO, tids[i], 0, &si);
        printf("attach %s: rc=%ld waited=%d stopped=%d sig=%d signo=%d code=%d\n",
               tids[i] == pid ? "leader" : "thread", rc, w == tids[i], WIFSTOPPED(st),
               WSTOPSIG(st), si.si_signo, si.si_code);
        regs_of(pid, tids[i], "at attach", &fs[i]);
    }
    int distinct = 1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fs[i] == fs[j]) distinct = 0;
    printf("distinct fs bases: %d\n", distinct);
    for (int i = 0; i < n; i++) ptrace(PTRACE_CONT, tids[i], 0, 0);
    for (int i = 0; i < n; i++) {
        in_read(pid, tids[i]);
        long rc = syscall(SYS_tgkill, pid, tids[i], SIGSTOP);
        int st;
        pid_t w = waitpid(tids[i], &st, __WALL);
        siginfo_t si;
        ptrace(PTRACE_GETSIGINFO, tids[i], 0, &si);
        printf("tgkill %s: rc=%ld waited=%d sig=%d code=%d from_us=%d\n",
               tids[i] == pid ? "leader" : "thread", rc, w == tids[i], WSTOPSIG(st), si.si_code,
               si.si_pid == getpid());
        unsigned long long f;
        regs_of(pid, tids[i], "at tgkill", &f);
        printf("  same fs: %d\n", f == fs[i]);
    }
    for (int i = 0; i < n; i++) printf("detach: %ld\n", ptrace(PTRACE_DETACH, tids[i], 0, 0));
    for (int i = 0; i < 3; i++) write(go[i][1], "g", 1);
    int st;
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
