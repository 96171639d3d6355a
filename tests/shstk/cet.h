/* Helpers for cetbox's shadow-stack tests: raw syscalls and the CET instructions, all
 * always_inline so that enabling shadow stacks never returns across the enable point. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SHSTK_ENABLE 0x5001
#define ARCH_SHSTK_DISABLE 0x5002
#define ARCH_SHSTK_LOCK 0x5003
#define ARCH_SHSTK_UNLOCK 0x5004
#define ARCH_SHSTK_STATUS 0x5005
#define ARCH_SHSTK_SHSTK 1UL
#define ARCH_SHSTK_WRSS 2UL
#define NR_map_shadow_stack 453
#define SHADOW_STACK_SET_TOKEN 1UL
#define SEGV_CPERR_ 10
#define AI static inline __attribute__((always_inline))

AI long sys3(long n, long a, long b, long c) {
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
AI long arch_prctl_(long code, unsigned long arg) { return sys3(158, code, (long)arg, 0); }
AI long shstk_enable(void) { return arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK); }
AI long shstk_disable(void) { return arch_prctl_(ARCH_SHSTK_DISABLE, ARCH_SHSTK_SHSTK); }
AI long map_shstk(unsigned long addr, unsigned long size, unsigned long flags) {
    return sys3(NR_map_shadow_stack, (long)addr, (long)size, (long)flags);
}
AI uint64_t rdssp(void) {
    uint64_t r = 0;
    asm volatile("rdsspq %0" : "+r"(r));
    return r;
}
AI void wrss(uint64_t *p, uint64_t v) { asm volatile("wrssq %1, (%0)" : : "r"(p), "r"(v) : "memory"); }
AI void incssp(uint64_t n) { asm volatile("incsspq %0" : : "r"(n)); }
AI void rstorssp(void *p) { asm volatile("rstorssp (%0)" : : "r"(p) : "memory", "cc"); }
AI void saveprevssp(void) { asm volatile("saveprevssp" : : : "memory"); }

/* What a test expects at its fault, set before it faults: the fault address, the faulting
 * instruction, RSP and SSP at the fault (0 = not checked), and a memory word that must be
 * unchanged. */
static volatile uint64_t expect_addr, expect_rip, expect_rsp, expect_ssp;
static volatile uint64_t *expect_mem;
static volatile uint64_t expect_mem_value;

static const char *signame(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGILL: return "SIGILL";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGTRAP: return "SIGTRAP";
    default: return "other";
    }
}

static const char *codename(int sig, int code) {
    if (code == 0x80) return "SI_KERNEL";
    if (sig == SIGSEGV && code == 1) return "SEGV_MAPERR";
    if (sig == SIGSEGV && code == 2) return "SEGV_ACCERR";
    if (sig == SIGSEGV && code == 10) return "SEGV_CPERR";
    if (sig == SIGILL && code == 2) return "ILL_ILLOPN";
    return "other";
}

/* Prints what a fault delivered, in terms of the expectations, then ends the test. */
static void on_fault(int sig, siginfo_t *si, void *ucv) {
    /* First thing: the handler's SSP is the pre-signal SSP - 16; the token above it holds the
     * pre-signal SSP with bit 63 set (Linux arch/x86/kernel/shstk.c,
     * setup_signal_shadow_stack()). */
    uint64_t hs = rdssp();
    uint64_t pre_ssp = hs ? (*(uint64_t *)(hs + 8) & ~(1ULL << 63)) : 0;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    uint64_t a = (uint64_t)si->si_addr;
    printf("%s %s addr=%s trapno=%lld err=%#llx rip=%s\n", signame(sig), codename(sig, si->si_code),
           a == 0 ? "0" : a == expect_addr ? "expected" : "other", (long long)g[REG_TRAPNO],
           (unsigned long long)g[REG_ERR], (uint64_t)g[REG_RIP] == expect_rip ? "insn" : "other");
    if (expect_rsp) printf("rsp=%s\n", (uint64_t)g[REG_RSP] == expect_rsp ? "same" : "changed");
    if (expect_ssp) printf("ssp=%s\n", pre_ssp == expect_ssp ? "same" : "changed");
    if (expect_mem) printf("mem=%s\n", *expect_mem == expect_mem_value ? "same" : "changed");
    fflush(stdout);
    _exit(0);
}

static void catch_faults(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGILL, &sa, 0);
    sigaction(SIGBUS, &sa, 0);
}
