//! cflags: -pthread
// A listing of /proc/self/fd or /proc/self/fdinfo names only the guest's descriptors, while
// other threads make cetbox open and close descriptors of its own: the O_PATH descriptor of
// each path it resolves, the host files it reads to make a /proc file, a pidfd. Here two
// threads do nothing but calls that leave the guest no new descriptor (readlink of
// /proc/self/exe and cwd, stat of paths, an open of a missing file; reads from offset 0 of a
// /proc/self/status descriptor opened before, whose text is made anew each time), while the
// main thread lists both directories again and again from descriptors it opened before:
// natively they always name 0, 1, 2 and those three. cetbox listed its own short-lived
// descriptors now and then.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 3000

static atomic_int stop;
static atomic_long churned;
static int status_fd;

static void *churn(void *arg) {
    int kind = (int)(long)arg;
    char buf[4096];
    struct stat st;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (kind == 0) {
            if (readlink("/proc/self/exe", buf, sizeof buf) < 0 ||
                readlink("/proc/self/cwd", buf, sizeof buf) < 0)
                abort();
            if (stat("/proc/self/exe", &st) || stat("/usr/bin", &st))
                abort();
            if (open("/nonexistent/file", O_RDONLY | O_CLOEXEC) >= 0 || errno != ENOENT)
                abort();
        } else {
            if (pread(status_fd, buf, sizeof buf, 0) <= 0)
                abort();
        }
        atomic_fetch_add(&churned, 1);
    }
    return NULL;
}

// Lists the directory open at `d` from its start; returns how many entries were not one of
// `allowed` (printing the first few).
static int unexpected(int d, const int *allowed, int n_allowed, int *shown) {
    char buf[1024];
    int bad = 0;
    if (lseek(d, 0, SEEK_SET) != 0) {
        perror("lseek");
        exit(1);
    }
    for (;;) {
        long n = syscall(SYS_getdents64, d, buf, sizeof buf);
        if (n < 0) {
            perror("getdents64");
            exit(1);
        }
        if (n == 0)
            break;
        for (long at = 0; at < n;) {
            unsigned short reclen = *(unsigned short *)(buf + at + 16);
            const char *name = buf + at + 19;
            if (strcmp(name, ".") && strcmp(name, "..")) {
                int fd = atoi(name), ok = 0;
                for (int i = 0; i < n_allowed; i++)
                    ok |= fd == allowed[i];
                if (!ok) {
                    bad++;
                    if ((*shown)++ < 5)
                        fprintf(stderr, "listed descriptor %s, not the guest's\n", name);
                }
            }
            at += reclen;
        }
    }
    return bad;
}

int main(void) {
    int fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int info_dir = open("/proc/self/fdinfo", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd_dir < 0 || info_dir < 0 || status_fd < 0)
        return 1;
    int allowed[] = {0, 1, 2, fd_dir, info_dir, status_fd};
    alarm(120);
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)i))
            return 1;
    // Until both threads churn.
    while (atomic_load(&churned) < 10)
        sched_yield();
    int bad_fd = 0, bad_info = 0, shown = 0;
    for (int r = 0; r < ROUNDS; r++) {
        bad_fd += unexpected(fd_dir, allowed, 6, &shown);
        bad_info += unexpected(info_dir, allowed, 6, &shown);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("%d listings of /proc/self/fd: %d entries not the guest's\n", ROUNDS, bad_fd);
    printf("%d listings of /proc/self/fdinfo: %d entries not the guest's\n", ROUNDS, bad_info);
    return 0;
}
