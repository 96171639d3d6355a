/* A small program that uses threads, fork and 256 MiB of heap: run under RLIMIT_AS of 8 GiB
 * (`ulimit -v`), natively and under cetbox, it must behave the same. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *work(void *arg) {
    char *p = malloc(1 << 20);
    memset(p, 7, 1 << 20);
    long s = 0;
    for (int i = 0; i < 1 << 20; i += 4096) s += p[i];
    free(p);
    return (void *)s;
}

int main(void) {
    pthread_t th[8];
    long sum = 0;
    for (int i = 0; i < 8; i++) pthread_create(&th[i], 0, work, 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        sum += (long)r;
    }
    char *big = malloc(256UL << 20);
    if (!big) return 1;
    memset(big, 1, 256UL << 20);
    pid_t pid = fork();
    if (pid == 0) _exit(big[12345] == 1 ? 3 : 4);
    int st;
    waitpid(pid, &st, 0);
    printf("threads %ld, heap ok, child %d\n", sum, WEXITSTATUS(st));
    return 0;
}
