// SA_SIGINFO fault handlers read si_signo/si_code/si_addr and the trap fields of the
// sigcontext, then move RIP past the faulting instruction.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "../common/handle_signals.h"

static volatile uintptr_t resume;
static volatile uintptr_t expect_addr;

static void h(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    int addr_ok = (uintptr_t)si->si_addr == expect_addr;
    printf("sig=%d code=%d addr_ok=%d trapno=%lld err=%lld", sig, si->si_code, addr_ok,
           (long long)g[REG_TRAPNO], (long long)g[REG_ERR]);
    if (sig == SIGSEGV && si->si_code > 0 && si->si_code < 3)
        printf(" cr2_ok=%d", (uintptr_t)g[REG_CR2] == expect_addr);
    if (sig == SIGTRAP)
        printf(" rip_after_int3=%d", (uintptr_t)g[REG_RIP] == expect_addr);
    printf("\n");
    g[REG_RIP] = resume;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    handle_signals(h, 0, SIGSEGV, SIGILL, SIGFPE, SIGTRAP, SIGBUS);

    // Read of an unmapped page: SEGV_MAPERR.
    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, 4096);
    expect_addr = (uintptr_t)p + 8;
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n mov (%1), %%rax\n1:\n"
                     : "=m"(resume) : "r"(p + 8) : "rax", "memory");
    // Write to a read-only page: SEGV_ACCERR, err has the write bit.
    p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect_addr = (uintptr_t)p + 16;
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n movq $1, (%1)\n1:\n"
                     : "=m"(resume) : "r"(p + 16) : "rax", "memory");
    // ud2: SIGILL ILL_ILLOPN at the instruction.
    __asm__ volatile("lea 2f(%%rip), %%rax\n mov %%rax, %0\n lea 1f(%%rip), %%rax\n"
                     " mov %%rax, %1\n1: ud2\n2:\n"
                     : "=m"(resume), "=m"(expect_addr) : : "rax", "memory");
    // Integer divide by zero: SIGFPE FPE_INTDIV.
    __asm__ volatile("lea 2f(%%rip), %%rax\n mov %%rax, %0\n lea 1f(%%rip), %%rax\n"
                     " mov %%rax, %1\n xor %%ecx, %%ecx\n xor %%edx, %%edx\n mov $7, %%eax\n"
                     "1: div %%ecx\n2:\n"
                     : "=m"(resume), "=m"(expect_addr) : : "rax", "rcx", "rdx", "memory");
    // int3: SIGTRAP SI_KERNEL, RIP already after the int3, si_addr 0.
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n int3\n1:\n"
                     : "=m"(resume) : : "rax", "memory");
    // Note: expect_addr still holds the div address, so addr_ok for int3 shows si_addr != it.
    expect_addr = 0;
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n mov %%rax, %1\n int3\n1:\n"
                     : "=m"(resume), "=m"(expect_addr) : : "rax", "memory");
    // Non-canonical address: #GP, SIGSEGV SI_KERNEL, si_addr 0.
    expect_addr = 0;
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n movabs $0x8000000000000000, %%rax\n"
                     " mov (%%rax), %%rax\n1:\n"
                     : "=m"(resume) : : "rax", "memory");
    // A file mapping past EOF: SIGBUS BUS_ADRERR.
    FILE *f = tmpfile();
    fputc('x', f);
    fflush(f);
    p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    expect_addr = (uintptr_t)p + 4096;
    __asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, %0\n mov (%1), %%al\n1:\n"
                     : "=m"(resume) : "r"(p + 4096) : "rax", "memory");
    printf("done\n");
    return 0;
}
