/* A thread blocks in read(pipe, P, 4096); another makes P read-only and then writes into the
 * pipe. Linux's copy_to_user sees the page read-only at the moment of the write: the read
 * fails with EFAULT and the page is unchanged (a host write through a pointer checked only at
 * syscall entry would modify it). The answer does not depend on whether the reader was
 * already blocked; it is waited for in that state so the race is what is tested. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>

static int pfd[2];
static char *P;
static atomic_int reader_tid, about_to_read;
static long read_ret;

static void *reader(void *arg) {
    (void)arg;
    atomic_store(&reader_tid, (int)syscall(SYS_gettid));
    atomic_store(&about_to_read, 1);
    read_ret = read(pfd[0], P, 4096);
    if (read_ret < 0) read_ret = -errno;
    return 0;
}

/* Waits until thread `tid` sleeps in the kernel (state S in /proc/self/task/TID/stat). */
static void wait_blocked(int tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    for (;;) {
        int fd = open(path, O_RDONLY);
        long n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0) close(fd);
        if (n > 0) {
            buf[n] = 0;
            char *c = strrchr(buf, ')');
            if (c && c[1] == ' ' && c[2] == 'S') return;
        }
        sched_yield();
    }
}

static int race(void) {
    if (pipe(pfd)) return 1;
    P = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (P == MAP_FAILED) return 1;
    memset(P, 0x11, 4096);
    pthread_t th;
    pthread_create(&th, 0, reader, 0);
    while (!atomic_load(&about_to_read)) sched_yield();
    wait_blocked(atomic_load(&reader_tid));
    static char before[4096];
    {
        mprotect(P, 4096, PROT_READ);
    }
    memcpy(before, P, 4096);
    /* A forged restore token and a return address, filling the page. */
    static uint64_t forged[512];
    for (int i = 0; i < 512; i++) forged[i] = i % 2 ? (uint64_t)&race : ((uint64_t)P + 4096) | 1;
    if (write(pfd[1], forged, sizeof forged) != sizeof forged) return 1;
    pthread_join(th, 0);
    printf("read: %s\n", read_ret == -EFAULT ? "EFAULT" : read_ret >= 0 ? "transferred" : "other error");
    printf("page: %s\n", memcmp(before, P, 4096) == 0 ? "unchanged" : "CHANGED");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    (void)argc;
    (void)argv;
    return race();
}
