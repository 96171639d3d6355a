#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static sigjmp_buf env;
static volatile int got_sig, got_code;
static volatile unsigned long got_addr;
static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = (unsigned long)si->si_addr;
    siglongjmp(env, 1);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    long pg = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(ro, pg, PROT_READ);
    munmap(ro + pg, pg);
    int recovered = 0;
    for (int i = 0; i < 100; i++) {
        got_sig = 0;
        if (sigsetjmp(env, 1) == 0) {
            *(volatile int *)0 = i;
            printf("no fault?\n");
        } else {
            if (got_sig == SIGSEGV && got_code == SEGV_MAPERR && got_addr == 0) recovered++;
        }
    }
    printf("null writes recovered: %d\n", recovered);
    const struct { const char *what; char *addr; int write; } cases[] = {
        {"read of address 16", (char *)16, 0},
        {"write to read-only page", ro + 123, 1},
        {"read of unmapped page", ro + pg + 8, 0},
        {"read of kernel address", (char *)0xffffffffff600000UL - 4096 * 16, 0},
        {"read of non-canonical address", (char *)0x0000800000000000UL, 0},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        got_sig = 0; got_code = 0; got_addr = 1;
        if (sigsetjmp(env, 1) == 0) {
            if (cases[c].write) *(volatile char *)cases[c].addr = 1;
            else (void)*(volatile char *)cases[c].addr;
            printf("%s: no fault\n", cases[c].what);
        } else {
            long off = (long)(got_addr - (unsigned long)cases[c].addr);
            printf("%s: sig %d code %d addr offset %ld\n", cases[c].what, got_sig, got_code, got_addr ? off : -1L);
        }
    }
    /* mask must be restored by siglongjmp(…, savemask=1): SIGSEGV usable again after the loop */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGSEGV blocked after recovery: %d\n", sigismember(&cur, SIGSEGV));
    /* fault without handler recovery: an uncaught SIGSEGV ends the process */
    signal(SIGSEGV, SIG_DFL);
    printf("final fault\n");
    fflush(stdout);
    *(volatile int *)8 = 1;
    return 0;
}
