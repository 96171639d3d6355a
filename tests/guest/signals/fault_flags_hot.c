/* A fault in hot (translated) code reports the arithmetic flags as they were after the
 * previous instruction, even when an earlier access of the same block was checked, the flags
 * are dead at the fault (the next instruction overwrites them all) and no instruction in
 * between touches them: each loop iteration sets a known flag pattern with CMP, loads through
 * one pointer, then through a second pointer that is valid for 999 iterations and NULL in the
 * last (SIGSEGV), and then ADD overwrites the flags. The handler prints the flags of the
 * signal frame (Intel SDM Vol. 1, 3.4.3: CF PF AF ZF SF OF) and the faulting instruction's
 * offset, for several flag patterns. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

static volatile uint64_t fault_flags, fault_rip;
static volatile int faulted;
extern char second_load[], after_second_load[];

static void on_segv(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    fault_flags = uc->uc_mcontext.gregs[REG_EFL] & 0x8d5;
    fault_rip = uc->uc_mcontext.gregs[REG_RIP];
    faulted = 1;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)after_second_load;
}

static uint64_t cell = 5, other = 7;

/* One pass: CMP a, b; load [p1]; load [p2]; ADD. */
static uint64_t pass(uint64_t a, uint64_t b, uint64_t *p1, uint64_t *p2) {
    uint64_t x, y;
    asm volatile("cmp %[b], %[a]\n"
                 " mov (%[p1]), %[x]\n"
                 ".globl second_load\n"
                 "second_load: mov (%[p2]), %[y]\n"
                 ".globl after_second_load\n"
                 "after_second_load:\n"
                 " add %[x], %[y]\n"
                 : [x] "=&r"(x), [y] "=&r"(y)
                 : [a] "r"(a), [b] "r"(b), [p1] "r"(p1), [p2] "r"(p2)
                 : "cc", "memory");
    return y;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    /* CMP operand pairs giving different flag patterns (b - a: equal, borrow, sign,
     * overflow). */
    static const uint64_t pairs[][2] = {
        {5, 5}, {1, 2}, {0, 1}, {0x8000000000000000ULL, 1}, {3, 0x7fffffffffffffffULL}, {0x10, 0x1},
    };
    for (unsigned k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        uint64_t sum = 0;
        int at = -1;
        faulted = 0;
        for (int i = 0; i < 1000 && !faulted; i++) {
            sum += pass(pairs[k][0], pairs[k][1], &cell, i == 999 ? (uint64_t *)0 : &other);
            if (faulted) at = i;
        }
        if (!faulted)
            printf("pattern %u: no fault\n", k);
        else
            printf("pattern %u: fault at iteration %d, flags %#lx, at second load %d\n", k, at,
                   (unsigned long)fault_flags, fault_rip == (uint64_t)second_load);
        (void)sum;
    }
    return 0;
}
