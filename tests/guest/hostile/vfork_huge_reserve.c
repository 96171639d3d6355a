/* A vfork child of a process with huge MAP_NORESERVE reservations (as sanitizers, Go, JITs and
 * wasm runtimes make: 16 TiB PROT_NONE, and 1 TiB readable and writable of which a few pages
 * are used) shares the parent's memory: what it writes, in the data segment and inside the
 * writable reservation, is the parent's when vfork returns (clone(2), CLONE_VM).
 *
 * cetbox's vfork child sends its writes back to the parent when it exits; to find them it read
 * 8 bytes of /proc/self/pagemap per page of every mapping at once, 32 GiB for the 16 TiB
 * reservation: the allocation failed and the child aborted on its way out (its parent saw it
 * die of SIGABRT instead of exiting); at 8 TiB, where the allocation succeeds, the child's
 * exit took almost a minute. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int written;

int main(void) {
    char *none = mmap(NULL, 16ULL << 40, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                      0);
    char *rw = mmap(NULL, 1ULL << 40, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (none == MAP_FAILED || rw == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    rw[0] = 1;
    rw[(1ULL << 39) + 4096] = 2;
    pid_t pid = vfork();
    if (pid == 0) {
        written = 42;
        rw[0] = 10;
        rw[(1ULL << 39) + 4096] = 20;
        rw[(1ULL << 40) - 1] = 30;
        _exit(7);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    printf("child exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("written %d, reservation %d %d %d\n", written, rw[0], rw[(1ULL << 39) + 4096],
           rw[(1ULL << 40) - 1]);
    return 0;
}
