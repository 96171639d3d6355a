// A vfork child of a multithreaded process has no children of its own: waits for any child,
// clone children too (__WALL, __WCLONE), answer ECHILD, and its process group holds only its
// parent and itself (the parent made a group of its own first).
//
// cetbox's vfork child of a multithreaded parent makes a helper process at the fork that holds
// the memory as it was (src: crates/linux/src/fork.rs). It was the child's child, in the
// child's process group and listed in /proc: waitpid(-1, __WALL | WNOHANG) answered 0 (a child
// not ready) and a blocking one never returned, waitid(P_ALL) likewise, and the group had a
// third member that any kill(-pgrp) reached, and /proc/self/task/TID/children listed it.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/vfork_clone.h"

static int gate[2], started[2];
static char report[1024];
static char dents[1 << 16];

static void *blocked(void *arg) {
    (void)arg;
    char c;
    if (write(started[1], "s", 1) != 1)
        abort();
    if (read(gate[0], &c, 1) < 0)
        abort();
    return NULL;
}

static void add(const char *what, long r) {
    size_t n = strlen(report);
    snprintf(report + n, sizeof report - n, "%s: %ld%s%s\n", what, r, r < 0 ? " " : "",
             r < 0 ? (errno == ECHILD ? "ECHILD" : "other error") : "");
}

/* Processes listed in /proc whose group is `pgrp`, without malloc (this is a vfork child). */
static long group_members(pid_t pgrp) {
    int fd = open("/proc", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    long count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, dents, sizeof dents);
        if (n <= 0)
            break;
        for (long at = 0; at < n;) {
            struct dirent64 *d = (struct dirent64 *)(dents + at);
            at += d->d_reclen;
            char *end;
            long pid = strtol(d->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            if (getpgid(pid) == pgrp)
                count++;
        }
    }
    close(fd);
    return count;
}

/* Entries of this thread's /proc children list (proc(5)). */
static long children_listed(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)syscall(SYS_gettid));
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = read(fd, dents, sizeof dents - 1);
    close(fd);
    if (n < 0)
        return -1;
    long count = 0;
    for (long i = 0; i < n; i++)
        if (dents[i] != ' ' && dents[i] != '\n' && (i == 0 || dents[i - 1] == ' '))
            count++;
    return count;
}

static int child_fn(void *arg) {
    (void)arg;
    int st;
    siginfo_t si;
    add("waitpid(-1, __WALL | WNOHANG)", waitpid(-1, &st, __WALL | WNOHANG));
    add("waitpid(-1, __WCLONE | WNOHANG)", waitpid(-1, &st, __WCLONE | WNOHANG));
    add("waitid(P_ALL, WEXITED | __WALL | WNOHANG)",
        waitid(P_ALL, 0, &si, WEXITED | __WALL | WNOHANG));
    add("waitpid(-1, __WALL)", waitpid(-1, &st, __WALL));
    add("waitid(P_ALL, WEXITED | __WCLONE)", waitid(P_ALL, 0, &si, WEXITED | __WCLONE));
    add("process group members", group_members(getpgrp()));
    add("children listed", children_listed());
    _exit(0);
}

int main(void) {
    if (setpgid(0, 0) != 0) {
        perror("setpgid");
        return 1;
    }
    if (pipe(gate) != 0 || pipe(started) != 0) {
        perror("pipe");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, blocked, NULL) != 0) {
        puts("pthread_create failed");
        return 1;
    }
    char c;
    if (read(started[0], &c, 1) != 1) {
        puts("read failed");
        return 1;
    }
    if (vfork_clone_wait(child_fn) < 0)
        return 1;
    fputs(report, stdout);
    if (write(gate[1], "g", 1) != 1 || pthread_join(th, NULL) != 0)
        return 1;
    return 0;
}
