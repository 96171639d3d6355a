// Lists /proc/self/fd (and the calling thread's /proc/self/task/TID/fd) and fstats every
// descriptor it names, as glibc's support_descriptors does in its tests (tst-cancel31): each
// listed descriptor must be usable. cetbox's own descriptors (its private ones, such as the
// cross-process page-table lock) used to be listed and then answer EBADF. Read with
// getdents64 and the old getdents, from one thread and again with a second thread running
// (the output then goes through a bounce buffer), with a small buffer so a batch can consist
// of cetbox's descriptors only.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void list(const char *what, const char *dir, long nr, size_t bufsize) {
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) {
        perror("open");
        exit(1);
    }
    char *buf = malloc(bufsize);
    int entries = 0, bad = 0;
    printf("%s:", what);
    for (;;) {
        long n = syscall(nr, d, buf, bufsize);
        if (n < 0) {
            perror("getdents");
            exit(1);
        }
        if (n == 0)
            break;
        for (long at = 0; at < n;) {
            unsigned short reclen = *(unsigned short *)(buf + at + 16);
            const char *name = buf + at + (nr == SYS_getdents64 ? 19 : 18);
            if (reclen == 0) {
                printf(" zero-length record\n");
                exit(1);
            }
            if (strcmp(name, ".") && strcmp(name, "..")) {
                int fd = atoi(name);
                struct stat st;
                entries++;
                if (fd != d) {
                    if (fstat(fd, &st) != 0)
                        bad++;
                    printf(" %d", fd);
                }
            }
            at += reclen;
        }
    }
    printf(" (%d listed, %d not usable)\n", entries, bad);
    free(buf);
    close(d);
}

static void all(const char *when) {
    char task[64];
    snprintf(task, sizeof task, "/proc/self/task/%ld/fd", (long)syscall(SYS_gettid));
    char what[96];
    for (int i = 0; i < 2; i++) {
        long nr = i ? SYS_getdents : SYS_getdents64;
        const char *name = i ? "getdents" : "getdents64";
        snprintf(what, sizeof what, "%s, %s, /proc/self/fd", when, name);
        list(what, "/proc/self/fd", nr, 4096);
        snprintf(what, sizeof what, "%s, %s, small buffer", when, name);
        list(what, "/proc/self/fd", nr, 32);
        snprintf(what, sizeof what, "%s, %s, task fd", when, name);
        list(what, task, nr, 4096);
    }
}

static int pipefd[2];

static void *waiter(void *arg) {
    char c;
    (void)arg;
    if (read(pipefd[0], &c, 1) != 1)
        return NULL;
    return NULL;
}

int main(void) {
    all("one thread");
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    all("two threads");
    if (write(pipefd[1], "x", 1) != 1)
        return 1;
    pthread_join(t, NULL);
    return 0;
}
