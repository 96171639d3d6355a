/* Benchmark (not a test): 1 GiB through a pipe, a forked writer and a reader, CHUNK-byte
 * transfers (argv[1], default 65536); with a second argument the process first starts an
 * idle thread, so cetbox takes its multi-threaded path (bounce buffers for host writes).
 * gcc -O2 -static -pthread -o pipe1g pipe1g.c; cetbox run -- ./pipe1g 65536 [t] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
static void *idle(void *a) { pause(); return a; }
int main(int argc, char **argv) {
    size_t chunk = argc > 1 ? strtoul(argv[1], 0, 0) : 65536;
    const size_t total = 1UL << 30;
    if (argc > 2) { pthread_t t; pthread_create(&t, 0, idle, 0); }
    int p[2];
    pipe(p);
    char *buf = malloc(chunk);
    memset(buf, 'x', chunk);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        for (size_t done = 0; done < total;) {
            ssize_t n = write(p[1], buf, chunk);
            if (n <= 0) _exit(1);
            done += n;
        }
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], buf, chunk)) > 0) got += n;
    waitpid(c, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%zu bytes in %.3f s\n", got, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
