/* fork while other threads change mappings without pause: every child must be able to map
 * and unmap memory itself and exit. A child is a copy of the forking thread only; under
 * cetbox a lock another thread held at the moment of the fork (the mapping lock above all)
 * must not be inherited held, or the child hangs at its first mapping call (glibc's
 * stdlib/tst-arc4random-thread forks like this while its other threads run). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int done;

static void *mapper(void *arg) {
    long k = (long)arg;
    unsigned long rounds = 0;
    while (!atomic_load(&done)) {
        size_t len = 4096 * (1 + (rounds + k) % 8);
        unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return (void *)1;
        memset(p, (int)k, len);
        mprotect(p, 4096, PROT_READ);
        munmap(p, len);
        rounds++;
    }
    return 0;
}

int main(void) {
    enum { MAPPERS = 3, CHILDREN = 150 };
    pthread_t t[MAPPERS];
    for (long k = 0; k < MAPPERS; k++)
        if (pthread_create(&t[k], 0, mapper, (void *)k) != 0)
            return 1;
    int good = 0;
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            unsigned char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                _exit(3);
            p[0] = 1;
            p[4096] = 2;
            if (munmap(p, 8192) != 0)
                _exit(4);
            _exit(7);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid)
            return 5;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 7)
            good++;
    }
    atomic_store(&done, 1);
    long bad = 0;
    for (int k = 0; k < MAPPERS; k++) {
        void *r;
        pthread_join(t[k], &r);
        bad += (long)r;
    }
    printf("%d of %d children mapped, unmapped and exited; mapper failures %ld\n", good,
           CHILDREN, bad);
    return 0;
}
