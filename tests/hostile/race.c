/* Hostile guests whose expected behaviour comes from the spec rather than a native run (no
 * CET hardware here). Case "shstk": a thread blocks in read(pipe, P, 4096); another thread
 * unmaps P, maps a shadow stack with a restore token at P (map_shadow_stack uses the address
 * as MAP_FIXED_NOREPLACE) and writes a forged token and return address into the pipe. On
 * Linux the read's copy_to_user respects the page type at the moment of the write: a
 * shadow-stack page is not writable by ordinary writes, so the read fails with EFAULT and the
 * shadow stack keeps the kernel's token (Intel SDM Vol. 3A §4.6: shadow-stack memory is written only
 * by shadow-stack accesses; arch/x86/mm/fault.c rejects ordinary writes to it). Whether the
 * reader was already blocked or not, the answer is the same, so the test cannot pass by luck
 * of timing; the reader is waited for in its blocked state so the race is what is tested.
 * The data the read could not take stays in the pipe (fs/pipe.c pipe_read). */
#include "../shstk/cet.h"
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
    read_ret = sys3(SYS_read, pfd[0], (long)P, 4096);
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

static int race(int use_shstk) {
    if (pipe(pfd)) return 1;
    P = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (P == MAP_FAILED) return 1;
    memset(P, 0x11, 4096);
    pthread_t th;
    pthread_create(&th, 0, reader, 0);
    while (!atomic_load(&about_to_read)) sched_yield();
    wait_blocked(atomic_load(&reader_tid));
    static char before[4096];
    if (use_shstk) {
        munmap(P, 4096);
        long q = map_shstk((unsigned long)P, 4096, SHADOW_STACK_SET_TOKEN);
        printf("map_shadow_stack at P: %s\n", q == (long)P ? "yes" : "no");
        uint64_t token = *(uint64_t *)(P + 4096 - 8);
        printf("token is the restore token for the top: %s\n",
               token == ((uint64_t)P + 4096) + 1 ? "yes" : "no");
    } else {
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
    /* fs/pipe.c pipe_read consumes a buffer only after copying it: the data is still there. */
    static uint64_t left[512];
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    long n = read(pfd[0], left, sizeof left);
    printf("pipe still holds the data: %s\n",
           n == sizeof left && memcmp(left, forged, sizeof left) == 0 ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc > 1 && !strcmp(argv[1], "shstk")) return race(1);
    if (argc > 1 && !strcmp(argv[1], "mprotect")) return race(0);
    return 2;
}
