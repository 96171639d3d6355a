#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
extern char ud2_here[], after_ud2[];
static volatile int count, last_code, addr_ok;
static void h(int s, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    count++;
    last_code = si->si_code;
    addr_ok = si->si_addr == (void *)ud2_here && uc->uc_mcontext.gregs[REG_RIP] == (greg_t)ud2_here;
    (void)s;
    uc->uc_mcontext.gregs[REG_RIP] += 2; /* skip the ud2 */
    uc->uc_mcontext.gregs[REG_RAX] = 1234;
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    long rax = 0;
    for (int i = 0; i < 10; i++) {
        __asm__ volatile("xor %%eax, %%eax\n\t"
                         ".globl ud2_here\nud2_here: ud2\n\t"
                         ".globl after_ud2\nafter_ud2:\n\t"
                         : "=a"(rax)
                         :
                         : "memory");
    }
    printf("SIGILL count %d si_code %d (ILL_ILLOPN=%d) addr ok %d rax after resume %ld\n", count, last_code, ILL_ILLOPN, addr_ok, rax);
    /* uncaught SIGILL terminates */
    signal(SIGILL, SIG_DFL);
    printf("now uncaught\n");
    fflush(stdout);
    __builtin_trap();
}
