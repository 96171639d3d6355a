/* A 4 TiB PROT_NONE MAP_NORESERVE reservation (as sanitizers, JITs, wasm runtimes and Go
 * make), used piecewise: faults inside it are SEGV_ACCERR, after munmap SEGV_MAPERR; pieces
 * made accessible work; forced reads through /proc/self/mem see PROT_NONE memory (Linux's
 * FOLL_FORCE may read a mapping the process could make readable). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    printf("SIGSEGV %s\n", si->si_code == SEGV_ACCERR ? "SEGV_ACCERR" : si->si_code == SEGV_MAPERR ? "SEGV_MAPERR" : "other");
    siglongjmp(env, 1);
}

static void touch(const char *label, volatile char *p) {
    printf("%-30s ", label);
    if (!sigsetjmp(env, 1)) {
        *p = 1;
        printf("ok\n");
    }
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    const unsigned long SZ = 4UL << 40;
    for (int round = 0; round < 3; round++) {
        char *r = mmap(0, SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        printf("round %d: reserve 4 TiB %s\n", round, r == MAP_FAILED ? "failed" : "ok");
        if (r == MAP_FAILED) return 1;
        touch("PROT_NONE byte", r + SZ / 2);
        char *piece = r + (1UL << 40);
        printf("mprotect 1 MiB RW: %d\n", mprotect(piece, 1 << 20, PROT_READ | PROT_WRITE));
        touch("accessible piece", piece + 4096);
        piece[8192] = 42;
        printf("mprotect back to NONE: %d\n", mprotect(piece, 1 << 20, PROT_NONE));
        touch("piece after PROT_NONE", piece + 8192);
        int mem = open("/proc/self/mem", O_RDONLY);
        char c = 0;
        long n = pread(mem, &c, 1, (long)(piece + 8192));
        printf("forced read of PROT_NONE: %ld value %d\n", n, c);
        close(mem);
        printf("munmap: %d\n", munmap(r, SZ));
        touch("after munmap", r + SZ / 2);
    }
    return 0;
}
