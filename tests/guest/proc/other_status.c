// Another process's /proc/PID status, stat, statm, smaps, smaps_rollup and fd/ show that
// process as it sees itself through /proc/self (Linux fs/proc/array.c proc_pid_status and
// do_task_stat, fs/proc/task_mmu.c for the memory files, fs/proc/fd.c: the same generators
// serve both): the parent compares the child's files (also through /proc/PID/task/TID/) with
// what the child read of itself, and the child the parent's with what the parent read of
// itself, each while the other is blocked in a pipe read. Under cetbox each is another cetbox
// process, whose host files describe the emulator (its sizes, threads, signal masks and its
// own descriptors).
//
// Only what Linux keeps still while a process is blocked is compared: sizes and resident
// pages (every buffer is touched before fork, and nothing new is touched afterwards), ids,
// umask, thread count, signal masks and dispositions, pending signals, descriptors; not the
// proportional counts (a copy-on-write break in the other process changes them), times, or
// SigQ (the signals queued for the whole user, kernel/signal.c __sigqueue_alloc).
// The State and signal sets of the blocked process are printed, the other values only
// compared.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/read_file.h"

#define MAX (256 << 10)
enum { STATUS, STAT, STATM, SMAPS, ROLLUP, FDS, NFILES };
static const char *const names[NFILES] = {"status", "stat",         "statm",
                                          "smaps",  "smaps_rollup", "fd"};

static char own[NFILES][MAX], other[NFILES][MAX], a[MAX], b[MAX];
static long own_len[NFILES], other_len[NFILES];

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0)
        _exit(3);
}

static long read_file(const char *path, char *buf) { return read_whole(path, buf, MAX); }

// "N -> target" for each descriptor in dir (but the listing's own descriptor).
static long list_fds(const char *dir, char *buf) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int self_fd = dirfd(d);
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX - 600) {
        if (e->d_name[0] == '.' || (atoi(e->d_name) == self_fd && strstr(dir, "self")))
            continue;
        char path[400], target[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        long t = readlink(path, target, sizeof target - 1);
        target[t < 0 ? 0 : t] = 0;
        n += snprintf(buf + n, MAX - n, "%s -> %s\n", e->d_name, t < 0 ? "?" : target);
    }
    closedir(d);
    buf[n] = 0;
    return n;
}

static void read_all(const char *dir, char bufs[][MAX], long *lens) {
    char path[96];
    for (int i = 0; i < NFILES; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        lens[i] = i == FDS ? list_fds(path, bufs[i]) : read_file(path, bufs[i]);
    }
}

static int keep_status(const char *line) {
    static const char *const keep[] = {
        "Name:",   "Umask:",   "Tgid:",    "Ngid:",      "Pid:",        "PPid:",   "TracerPid:",
        "Uid:",    "Gid:",     "FDSize:",  "Groups:",    "NStgid:",     "NSpid:",  "VmPeak:",
        "VmSize:", "VmLck:",   "VmPin:",   "VmRSS:",     "RssAnon:",    "RssFile:", "RssShmem:",
        "VmData:", "VmStk:",   "VmExe:",   "VmLib:",     "VmSwap:",     "Threads:",
        "SigPnd:", "ShdPnd:",  "SigBlk:",  "SigIgn:",    "SigCgt:",     "CapInh:", "CapPrm:",
        "CapEff:", "CapBnd:",  "CapAmb:",  "NoNewPrivs:", "Seccomp:",   "x86_Thread_features:",
        "x86_Thread_features_locked:"};
    for (unsigned i = 0; i < sizeof keep / sizeof *keep; i++)
        if (!strncmp(line, keep[i], strlen(keep[i])))
            return 1;
    return 0;
}

static int keep_smaps(const char *line, int rollup) {
    if (line[0] && strchr("0123456789abcdef", line[0]) && strchr(line, '-'))
        return 1; // the header line of a mapping
    if (!strncmp(line, "Rss:", 4) || !strncmp(line, "Anonymous:", 10))
        return 1;
    return !rollup && (!strncmp(line, "Size:", 5) || !strncmp(line, "VmFlags:", 8));
}

// The stat fields that stay still (1-based): pid, comm, ppid, pgrp, session, tty, tpgid,
// num_threads, vsize, rss, start/end_code, start_stack, the signal words, the data, brk,
// argument and environment addresses.
static int keep_stat(int i) {
    return i == 1 || i == 2 || (i >= 4 && i <= 8) || i == 20 || i == 23 || i == 24 ||
           (i >= 26 && i <= 28) || (i >= 31 && i <= 34) || (i >= 45 && i <= 51);
}

// The stable part of file `i`'s text, into out.
static void stable(int i, const char *in, char *out) {
    long n = 0;
    out[0] = 0;
    if (i == STAT) {
        const char *close = strrchr(in, ')');
        if (!close)
            return;
        const char *p = strchr(in, ' ');
        n += snprintf(out, MAX, "1=%.*s 2=%.*s", (int)(p - in), in, (int)(close - p), p + 1);
        int field = 3;
        for (p = close + 2; *p && *p != '\n'; field++) {
            const char *e = p + strcspn(p, " \n");
            if (keep_stat(field))
                n += snprintf(out + n, MAX - n, " %d=%.*s", field, (int)(e - p), p);
            p = *e == ' ' ? e + 1 : e;
        }
        return;
    }
    for (const char *p = in; *p;) {
        const char *e = strchr(p, '\n');
        long len = e ? e - p + 1 : (long)strlen(p);
        int keep = i == STATUS   ? keep_status(p)
                   : i == SMAPS  ? keep_smaps(p, 0)
                   : i == ROLLUP ? keep_smaps(p, 1)
                                 : 1;
        if (keep && n + len < MAX) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    out[n] = 0;
}

static int full_io(int fd, void *p, long n, int out) {
    char *c = p;
    while (n > 0) {
        long r = out ? write(fd, c, n) : read(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= r;
    }
    return 0;
}

static void send_own(int fd) {
    for (int i = 0; i < NFILES; i++)
        if (full_io(fd, &own_len[i], sizeof own_len[i], 1) ||
            (own_len[i] > 0 && full_io(fd, own[i], own_len[i], 1)))
            _exit(4);
}

static int receive_own(int fd) {
    for (int i = 0; i < NFILES; i++) {
        if (full_io(fd, &own_len[i], sizeof own_len[i], 0))
            return -1;
        if (own_len[i] > 0 && full_io(fd, own[i], own_len[i], 0))
            return -1;
        own[i][own_len[i] > 0 ? own_len[i] : 0] = 0;
    }
    return 0;
}

// Waits until process `who` sleeps (blocked in its pipe read): its stat state letter.
static char wait_sleeping(const char *who) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", who);
    for (long tries = 0; tries < 10000000; tries++) {
        if (read_file(path, buf) > 0) {
            const char *close = strrchr(buf, ')');
            if (close && close[2] == 'S')
                return 'S';
        }
        sched_yield();
    }
    return '?';
}

static void compare(const char *who, const char *dir) {
    char line[160];
    read_all(dir, other, other_len);
    for (int i = 0; i < NFILES; i++) {
        stable(i, own[i], a);
        stable(i, other[i], b);
        int same = own_len[i] > 0 && other_len[i] > 0 && strcmp(a, b) == 0;
        snprintf(line, sizeof line, "%s %s: %s\n", who, names[i],
                 same ? "as it sees itself" : "DIFFERS");
        say(line);
        if (!same && getenv("OTHER_STATUS_DEBUG") && *getenv("OTHER_STATUS_DEBUG")) {
            say("--- own\n"), say(a), say("--- other\n"), say(b);
        }
    }
    // The state of the blocked process, and its signal sets as values.
    static const char *const shown[] = {"State:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:",
                                        "SigCgt:"};
    for (unsigned i = 0; i < sizeof shown / sizeof *shown; i++) {
        const char *l = strstr(other[STATUS], shown[i]);
        const char *end = l ? strchr(l, '\n') : NULL;
        snprintf(line, sizeof line, "%s %.*s\n", who, l && end ? (int)(end - l) : 0,
                 l ? l : "");
        say(line);
    }
}

extern char __executable_start[], etext[];

// Every buffer, the stack below main, the program's code and what the file reads use are
// touched (a first call maps code pages by fault-around), so that the resident sizes stay
// still while a process is blocked. The child does it again: fork copies no page-table
// entries of file mappings (Linux mm/memory.c copy_page_range), which fault in anew.
static __attribute__((noinline)) void touch_everything(void) {
    volatile char stack[256 << 10];
    memset((char *)stack, 1, sizeof stack);
    memset(own, 1, sizeof own), memset(other, 1, sizeof other);
    memset(a, 1, sizeof a), memset(b, 1, sizeof b);
    for (volatile char *p = __executable_start; p < etext; p += 4096)
        (void)*p;
    read_all("/proc/self", other, other_len);
    for (int i = 0; i < NFILES; i++)
        stable(i, other[i], a);
}

int main(void) {
    int down[2], up[2];
    touch_everything();
    if (pipe(down) || pipe(up)) {
        perror("pipe");
        return 1;
    }
    alarm(60);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    char who[16], dir[64];
    sigset_t set;
    sigemptyset(&set);
    if (child == 0) {
        touch_everything();
        // Something of its own to show: a umask, blocked and pending signals (one for the
        // thread, one for the process), an ignored and a caught signal, descriptors.
        umask(027);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGUSR2);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, NULL);
        raise(SIGUSR1);
        kill(getpid(), SIGUSR2);
        signal(SIGHUP, SIG_IGN);
        signal(SIGTERM, (void (*)(int))say);
        dup2(up[1], 42);
        open("/dev/null", O_RDONLY);
        read_all("/proc/self", own, own_len);
        send_own(up[1]);
        char c;
        if (read(down[0], &c, 1) != 1)
            _exit(5);
        // The parent's view of itself comes down; the child reads the parent's files once
        // the parent is blocked in its read.
        if (receive_own(down[0]))
            _exit(6);
        snprintf(who, sizeof who, "%d", (int)getppid());
        wait_sleeping(who);
        snprintf(dir, sizeof dir, "/proc/%s", who);
        compare("parent's", dir);
        if (write(up[1], "", 1) != 1)
            _exit(7);
        _exit(0);
    }
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, (void (*)(int))say);
    if (receive_own(up[0])) {
        say("no view from the child\n");
        return 1;
    }
    snprintf(who, sizeof who, "%d", (int)child);
    wait_sleeping(who);
    snprintf(dir, sizeof dir, "/proc/%s", who);
    compare("child's", dir);
    snprintf(dir, sizeof dir, "/proc/%s/task/%s", who, who);
    compare("child's task", dir);
    // The parent's own view, for the child to compare.
    read_all("/proc/self", own, own_len);
    if (write(down[1], "", 1) != 1)
        return 1;
    send_own(down[1]);
    char c;
    if (read(up[0], &c, 1) != 1)
        return 1;
    int st;
    waitpid(child, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
