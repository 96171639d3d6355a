//! link: static-pie
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <math.h>
static volatile double sink;
static void h(int s) {
    /* clobber SSE and x87 state and the MXCSR rounding mode inside the handler */
    __asm__ volatile("pcmpeqd %%xmm15, %%xmm15\n\tpcmpeqd %%xmm0, %%xmm0\n\txorpd %%xmm8, %%xmm8" ::: "xmm0", "xmm8", "xmm15");
    unsigned m = 0x7f80 | (3 << 13);
    __asm__ volatile("ldmxcsr %0" ::"m"(m));
    volatile long double ld = 1.0L;
    for (int i = 0; i < 10; i++) ld = ld * 3.0L + (long double)s;
    sink = (double)ld + sqrt((double)s);
}
int main(void) {
    signal(SIGUSR1, h);
    unsigned long lo = 0, hi = 0, lo8 = 0;
    unsigned long pid = (unsigned long)getpid();
    unsigned long r12 = 0x1122334455667788UL, r12_after, rbx_after;
    __asm__ volatile(
        "movq $0x0123456789abcdef, %%rax\n\tmovq %%rax, %%xmm15\n\t"
        "movq $0x0fedcba987654321, %%rax\n\tpinsrw $7, %%eax, %%xmm15\n\t"
        "movq $0x5555aaaa5555aaaa, %%rax\n\tmovq %%rax, %%xmm8\n\t"
        "movq %[r12v], %%r12\n\tmovq $77, %%rbx\n\t"
        "movq $62, %%rax\n\tmovq %[pid], %%rdi\n\tmovq $10, %%rsi\n\tsyscall\n\t"
        "movq %%xmm15, %[lo]\n\tmovhlps %%xmm15, %%xmm15\n\tmovq %%xmm15, %[hi]\n\tmovq %%xmm8, %[lo8]\n\t"
        "movq %%r12, %[r12a]\n\tmovq %%rbx, %[rbxa]\n\t"
        : [lo] "=m"(lo), [hi] "=m"(hi), [lo8] "=m"(lo8), [r12a] "=m"(r12_after), [rbxa] "=m"(rbx_after)
        : [pid] "r"(pid), [r12v] "r"(r12)
        : "rax", "rdi", "rsi", "rcx", "r11", "rbx", "r12", "xmm8", "xmm15", "memory");
    printf("xmm15 after signal: %016lx %016lx\n", hi, lo);
    printf("xmm8 after signal: %016lx\n", lo8);
    printf("r12 %016lx rbx %lu\n", r12_after, rbx_after);
    unsigned mx;
    __asm__ volatile("stmxcsr %0" : "=m"(mx));
    printf("mxcsr restored: %#x\n", mx & 0xffc0);
    printf("handler result %.6g\n", sink);
    volatile double third = 1.0 / 3.0;
    printf("rounding still nearest: %a\n", third);
    return 0;
}
