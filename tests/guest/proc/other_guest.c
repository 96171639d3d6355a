//! args: first second
//! env: OTHER_GUEST=1
// Another process's /proc/PID files show that process as it sees itself through /proc/self
// (Linux fs/proc/base.c, fs/proc/task_mmu.c: the same generators serve both): a parent reading
// its child's maps, exe link, cmdline, environ and auxv (also through /proc/PID/task/TID/)
// gets byte for byte what the child read of itself, and the child reading its parent's gets
// what the parent read of itself. Under cetbox each is another cetbox process, whose host
// /proc/PID files describe the emulator.
//
// Neither process changes its mappings between its own read and the other's: buffers are
// static, output goes through write(2), and the reader of the other's files waits on a pipe.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX (1 << 20)
enum { MAPS, CMDLINE, ENVIRON, AUXV, EXE, NFILES };
static const char *const names[NFILES] = {"maps", "cmdline", "environ", "auxv", "exe"};

static char own[NFILES][MAX], other[NFILES][MAX];
static long own_len[NFILES], other_len[NFILES];

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0)
        _exit(3);
}

static long read_file(const char *path, char *buf) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = 0, r;
    while (n < MAX && (r = read(fd, buf + n, MAX - n)) > 0)
        n += r;
    close(fd);
    return n;
}

// The files of /proc/<who>/ (or /proc/<who>/task/<who>/ when `task`).
static void read_all(const char *who, int task, char bufs[][MAX], long *lens) {
    char path[96];
    for (int i = 0; i < NFILES; i++) {
        if (task)
            snprintf(path, sizeof path, "/proc/%s/task/%s/%s", who, who, names[i]);
        else
            snprintf(path, sizeof path, "/proc/%s/%s", who, names[i]);
        if (i == EXE)
            lens[i] = readlink(path, bufs[i], MAX);
        else
            lens[i] = read_file(path, bufs[i]);
    }
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
    }
    return 0;
}

static void compare(const char *who) {
    char line[128];
    for (int i = 0; i < NFILES; i++) {
        int same = own_len[i] >= 0 && own_len[i] == other_len[i] &&
                   memcmp(own[i], other[i], own_len[i]) == 0;
        snprintf(line, sizeof line, "%s %s: %s\n", who, names[i],
                 same ? "as it sees itself" : "DIFFERS");
        say(line);
    }
}

int main(void) {
    int down[2], up[2];
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
    char me[16], pp[16];
    if (child == 0) {
        // The child's own view, sent up; then it waits while the parent reads its files.
        read_all("self", 0, own, own_len);
        send_own(up[1]);
        char c;
        if (read(down[0], &c, 1) != 1)
            _exit(5);
        // Now the parent's view of itself comes down, and the child reads the parent's files.
        if (receive_own(down[0]))
            _exit(6);
        snprintf(pp, sizeof pp, "%d", (int)getppid());
        read_all(pp, 0, other, other_len);
        compare("parent's");
        if (write(up[1], "", 1) != 1)
            _exit(7);
        _exit(0);
    }
    if (receive_own(up[0])) {
        say("no view from the child\n");
        return 1;
    }
    snprintf(me, sizeof me, "%d", (int)child);
    read_all(me, 0, other, other_len);
    compare("child's");
    read_all(me, 1, other, other_len);
    compare("child's task");
    // The parent's own view, for the child to compare.
    read_all("self", 0, own, own_len);
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
