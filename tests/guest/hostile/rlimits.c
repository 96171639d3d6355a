/* A guest lowering RLIMIT_AS or RLIMIT_DATA limits its own mappings, as on Linux, and keeps
 * running (threads, stdio, malloc within the limit): the limits must never apply to the
 * emulator's own memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void *worker(void *arg) {
    char *p = malloc(100000);
    memset(p, 1, 100000);
    free(p);
    return arg;
}

static void threads(const char *label) {
    pthread_t th[4];
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= pthread_create(&th[i], 0, worker, 0) == 0;
    for (int i = 0; i < 4 && ok; i++) pthread_join(th[i], 0);
    printf("%s: threads %s\n", label, ok ? "ran" : "failed");
}

static const char *map(unsigned long len, int prot, int flags) {
    void *p = mmap(0, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) return errno == ENOMEM ? "ENOMEM" : "other error";
    munmap(p, len);
    return "ok";
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    struct rlimit r = {1UL << 30, RLIM_INFINITY};
    printf("setrlimit AS 1 GiB: %d\n", setrlimit(RLIMIT_AS, &r));
    getrlimit(RLIMIT_AS, &r);
    printf("getrlimit AS: %lu MiB\n", (unsigned long)r.rlim_cur >> 20);
    printf("mmap 512 MiB: %s\n", map(512UL << 20, PROT_READ | PROT_WRITE, 0));
    printf("mmap 2 GiB: %s\n", map(2UL << 30, PROT_READ | PROT_WRITE, 0));
    printf("mmap 2 GiB PROT_NONE NORESERVE: %s\n", map(2UL << 30, PROT_NONE, MAP_NORESERVE));
    char *m = malloc(17424);
    printf("malloc 17424: %s\n", m ? "ok" : "failed");
    threads("AS 1 GiB");
    r.rlim_cur = RLIM_INFINITY;
    printf("setrlimit AS back: %d\n", setrlimit(RLIMIT_AS, &r));
    struct rlimit d = {64UL << 20, RLIM_INFINITY};
    printf("setrlimit DATA 64 MiB: %d\n", setrlimit(RLIMIT_DATA, &d));
    printf("mmap 128 MiB RW private: %s\n", map(128UL << 20, PROT_READ | PROT_WRITE, 0));
    printf("mmap 128 MiB read-only: %s\n", map(128UL << 20, PROT_READ, 0));
    void *big = malloc(128UL << 20);
    printf("malloc 128 MiB: %s\n", big ? "ok" : "failed");
    void *cur = sbrk(0);
    printf("sbrk 100 MiB: %s\n", sbrk(100UL << 20) == (void *)-1 ? "failed" : "ok");
    printf("sbrk 1 MiB: %s\n", sbrk(1UL << 20) == (void *)-1 ? "failed" : "ok");
    (void)cur;
    threads("DATA 64 MiB");
    struct rlimit h = {64UL << 20, 64UL << 20};
    printf("lower hard DATA: %d\n", setrlimit(RLIMIT_DATA, &h));
    h.rlim_max = RLIM_INFINITY;
    errno = 0;
    int rr = setrlimit(RLIMIT_DATA, &h);
    printf("raise hard DATA: %d %s\n", rr, rr ? strerror(errno) : "");
    h.rlim_cur = 65UL << 20;
    h.rlim_max = 64UL << 20;
    rr = setrlimit(RLIMIT_DATA, &h);
    printf("soft above hard: %d %s\n", rr, rr ? strerror(errno) : "");
    return 0;
}
