/* EFLAGS.AC with CR0.AM set (Linux runs user mode with CR0.AM on): after POPF sets AC, a
 * misaligned data access raises #AC, which Linux turns into SIGBUS, si_code BUS_ADRALN,
 * si_addr 0, trapno 17, err 0, RIP at the faulting instruction and AC still set in the
 * interrupted context (arch/x86/kernel/traps.c, exc_alignment_check). Which accesses are
 * checked (Intel SDM Vol. 3A §6.15, Table 6-7): words, doublewords, quadwords and m80 (8),
 * stack pushes and pops, string elements, x87/MMX/scalar SSE operands; not bytes, not 16- and
 * 32-byte SSE/AVX operands (MOVUPS, MOVDQU, VEX arithmetic), not gather elements; aligned
 * forms raise #GP (SIGSEGV SI_KERNEL) instead. #AC comes before a page fault of the same
 * access. AC set in a signal frame takes effect at rt_sigreturn; clearing it ends the checks.
 * Signal handlers run with AC still set (Linux clears only DF, RF and TF on delivery), so the
 * handler clears it before calling printf. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "../common/handle_signals.h"

static sigjmp_buf env;
static volatile uint64_t expect_rip;
static char buf[256] __attribute__((aligned(64)));
static volatile unsigned sink;

static void handler(int sig, siginfo_t *si, void *ucv) {
    asm volatile("pushfq; andq $~0x40000, (%%rsp); popfq" ::: "memory", "cc");
    ucontext_t *uc = ucv;
    printf("%s code=%d addr=%p trapno=%lld err=%lld rip=%s AC=%d\n",
           sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : "other", si->si_code, si->si_addr,
           (long long)uc->uc_mcontext.gregs[REG_TRAPNO], (long long)uc->uc_mcontext.gregs[REG_ERR],
           (uint64_t)uc->uc_mcontext.gregs[REG_RIP] == expect_rip ? "at insn" : "other",
           (int)((uc->uc_mcontext.gregs[REG_EFL] >> 18) & 1));
    siglongjmp(env, 1);
}

#define AC_ON "pushfq; orq $0x40000, (%%rsp); popfq\n"
#define AC_OFF "pushfq; andq $~0x40000, (%%rsp); popfq\n"

/* Runs `pre`, then the instruction `insn` (labelled, so RIP in the frame can be compared),
 * then `post`, with AC set around all three. */
#define TRY(label, lbl, pre, insn, post, ...)                                  \
    do {                                                                       \
        extern char lbl[];                                                     \
        expect_rip = (uint64_t)lbl;                                            \
        printf("%-24s ", label);                                               \
        if (!sigsetjmp(env, 1)) {                                              \
            asm volatile(AC_ON pre "\n" #lbl ": " insn "\n" post "\n" AC_OFF __VA_ARGS__); \
            printf("no fault\n");                                              \
        }                                                                      \
    } while (0)

#define GPR "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "memory", "cc"
#define XMM "xmm0", "xmm1", "xmm2", "memory", "cc"

/* Run often enough with AC clear to be translated, then once with AC set. */
__attribute__((noinline, noclone)) static unsigned hot_load(const char *q) {
    unsigned v;
    asm volatile("hot: movl 2(%1), %0" : "=r"(v) : "r"(q) : "memory");
    return v;
}

static void set_ac(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_EFL] |= 0x40000;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    handle_signals(handler, SA_NODEFER, SIGBUS, SIGSEGV);
    char *p = buf;

    /* Loads, stores and read-modify-writes of each size. */
    TRY("byte load odd", a1, "", "movb 1(%0), %%al", "", :: "r"(p) : GPR);
    TRY("word load odd", a2, "", "movw 1(%0), %%ax", "", :: "r"(p) : GPR);
    TRY("word store odd", a3, "", "movw %%ax, 3(%0)", "", :: "r"(p) : GPR);
    TRY("word load even", a4, "", "movw 2(%0), %%ax", "", :: "r"(p) : GPR);
    TRY("dword load 2", a5, "", "movl 2(%0), %%eax", "", :: "r"(p) : GPR);
    TRY("dword store 6", a6, "", "movl %%eax, 6(%0)", "", :: "r"(p) : GPR);
    TRY("dword store 4", a7, "", "movl %%eax, 4(%0)", "", :: "r"(p) : GPR);
    TRY("qword load 4", a8, "", "movq 4(%0), %%rax", "", :: "r"(p) : GPR);
    TRY("qword store 12", a9, "", "movq %%rax, 12(%0)", "", :: "r"(p) : GPR);
    TRY("qword store 8", a10, "", "movq %%rax, 8(%0)", "", :: "r"(p) : GPR);
    TRY("qword add 1", a11, "", "addq $1, 1(%0)", "", :: "r"(p) : GPR);
    TRY("lock xadd dword 2", a12, "", "lock xaddl %%eax, 2(%0)", "", :: "r"(p) : GPR);
    TRY("xchg qword 4", a13, "", "xchgq %%rax, 4(%0)", "", :: "r"(p) : GPR);
    TRY("cmpxchg8b 4", a14, "", "cmpxchg8b 4(%0)", "", :: "r"(p) : GPR);
    TRY("movzwl odd", a15, "", "movzwl 1(%0), %%eax", "", :: "r"(p) : GPR);
    TRY("movbe dword 2", a16, "", "movbe 2(%0), %%eax", "", :: "r"(p) : GPR);
    TRY("bt word odd", a17, "", "btw $1, 1(%0)", "", :: "r"(p) : GPR);
    TRY("cmov qword 4", a18, "xor %%eax, %%eax", "cmovnzq 4(%0), %%rax", "", :: "r"(p) : GPR);
    TRY("movnti 4", a19, "", "movnti %%rax, 4(%0)", "", :: "r"(p) : GPR);
    /* #AC before the page fault of the same access. */
    TRY("word odd, unmapped", a20, "", "movw 1(%0), %%ax", "", :: "r"((char *)16) : GPR);
    TRY("word even, unmapped", a21, "", "movw 2(%0), %%ax", "", :: "r"((char *)16) : GPR);
    /* Stack accesses with a misaligned RSP. */
    TRY("push, rsp%8=4", b1, "mov %%rsp, %%rbx; sub $4, %%rsp", "push %%rax", "mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("pop, rsp%8=4", b2, "mov %%rsp, %%rbx; sub $4, %%rsp", "pop %%rax", "mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("call, rsp%8=4", b3, "mov %%rsp, %%rbx; sub $4, %%rsp", "call 1f", "1: mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("ret, rsp%8=4", b4, "mov %%rsp, %%rbx; lea 1f(%%rip), %%rax; sub $12, %%rsp; mov %%eax, (%%rsp); shr $32, %%rax; mov %%eax, 4(%%rsp)", "ret", "1: mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("pushfq, rsp%8=4", b5, "mov %%rsp, %%rbx; sub $4, %%rsp", "pushfq", "mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("pushw, rsp%8=2", b6, "mov %%rsp, %%rbx; sub $2, %%rsp", "pushw $1", "mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("push, rsp aligned", b7, "mov %%rsp, %%rbx", "push %%rax", "mov %%rbx, %%rsp", :: "r"(p) : GPR);
    TRY("leave, rbp%8=4", b8, "mov %%rsp, %%rbx; mov %%rbp, %%rdx; mov %%rsp, %%rbp; sub $12, %%rbp", "leave", "mov %%rdx, %%rbp; mov %%rbx, %%rsp", :: "r"(p) : GPR);
    /* String instructions: each element is checked; a zero count accesses nothing. */
    TRY("lodsw odd", c1, "lea 1(%0), %%rsi", "lodsw", "", :: "r"(p) : GPR);
    TRY("stosl 2", c2, "lea 2(%0), %%rdi", "stosl", "", :: "r"(p) : GPR);
    TRY("movsw src odd", c3, "lea 1(%0), %%rsi; lea 64(%0), %%rdi", "movsw", "", :: "r"(p) : GPR);
    TRY("cmpsw dst odd", c4, "lea 2(%0), %%rsi; lea 65(%0), %%rdi", "cmpsw", "", :: "r"(p) : GPR);
    TRY("rep stosw odd", c5, "lea 1(%0), %%rdi; mov $2, %%ecx", "rep stosw", "", :: "r"(p) : GPR);
    TRY("rep movsb odd", c6, "lea 1(%0), %%rsi; lea 65(%0), %%rdi; mov $3, %%ecx", "rep movsb", "", :: "r"(p) : GPR);
    TRY("rep movsq, rcx 0", c7, "lea 1(%0), %%rsi; lea 65(%0), %%rdi; xor %%ecx, %%ecx", "rep movsq", "", :: "r"(p) : GPR);
    /* x87 and MMX. */
    TRY("fldl 4", d1, "", "fldl 4(%0)", "fstp %%st(0)", :: "r"(p) : GPR);
    TRY("fldt 2", d2, "", "fldt 2(%0)", "fstp %%st(0)", :: "r"(p) : GPR);
    TRY("fldt 8", d3, "", "fldt 8(%0)", "fstp %%st(0)", :: "r"(p) : GPR);
    TRY("flds 2", d4, "", "flds 2(%0)", "fstp %%st(0)", :: "r"(p) : GPR);
    TRY("filds odd", d5, "", "filds 1(%0)", "fstp %%st(0)", :: "r"(p) : GPR);
    TRY("fnstsw odd", d6, "", "fnstsw 1(%0)", "", :: "r"(p) : GPR);
    TRY("fnstenv 2", d7, "", "fnstenv 2(%0)", "fldenv 2(%0)", :: "r"(p) : GPR);
    TRY("fnstenv 4", d8, "", "fnstenv 4(%0)", "fldenv 4(%0)", :: "r"(p) : GPR);
    TRY("fnsave 4", d9, "", "fnsave 4(%0)", "frstor 4(%0)", :: "r"(p) : GPR);
    TRY("mmx paddd 4", d10, "", "paddd 4(%0), %%mm0", "emms", :: "r"(p) : "mm0", "memory", "cc");
    TRY("mmx movd 2", d11, "", "movd 2(%0), %%mm0", "emms", :: "r"(p) : "mm0", "memory", "cc");
    /* SSE and AVX: scalar operands are checked, 16- and 32-byte ones are not. */
    TRY("movups odd", e1, "", "movups 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movups store 8", e2, "", "movups %%xmm0, 8(%0)", "", :: "r"(p) : XMM);
    TRY("movdqu 8", e3, "", "movdqu 8(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("lddqu odd", e4, "", "lddqu 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movaps odd", e5, "", "movaps 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movsd 4", e6, "", "movsd 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movss store 2", e7, "", "movss %%xmm0, 2(%0)", "", :: "r"(p) : XMM);
    TRY("movq xmm 4", e8, "", "movq 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movd xmm 2", e9, "", "movd 2(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("movhps 4", e10, "", "movhps 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("addss 2", e11, "", "addss 2(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("cvtsi2sdq 4", e12, "", "cvtsi2sdq 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("pmovzxbw 4", e13, "", "pmovzxbw 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("pinsrw odd", e14, "", "pinsrw $0, 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("pinsrb odd", e15, "", "pinsrb $0, 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("pextrd store 2", e16, "", "pextrd $0, %%xmm0, 2(%0)", "", :: "r"(p) : XMM);
    TRY("ldmxcsr 2", e17, "stmxcsr 8(%0); mov 8(%0), %%eax; movw %%ax, 2(%0); shr $16, %%eax; movw %%ax, 4(%0)", "ldmxcsr 2(%0)", "", :: "r"(p) : GPR);
    TRY("paddd m128 aligned", e18, "", "paddd 16(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vmovups odd", f1, "", "vmovups 1(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vmovups ymm 16", f2, "", "vmovups 16(%0), %%ymm0", "vzeroupper", :: "r"(p) : XMM);
    TRY("vpaddd m128 odd", f3, "", "vpaddd 1(%0), %%xmm1, %%xmm0", "", :: "r"(p) : XMM);
    TRY("vpaddd m256 8", f4, "", "vpaddd 8(%0), %%ymm1, %%ymm0", "vzeroupper", :: "r"(p) : XMM);
    TRY("vbroadcastss 2", f5, "", "vbroadcastss 2(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vmovq 4", f6, "", "vmovq 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vmovsd store 4", f7, "", "vmovsd %%xmm0, 4(%0)", "", :: "r"(p) : XMM);
    TRY("vpmovzxbw xmm, m64 4", f8, "", "vpmovzxbw 4(%0), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vpmovzxbw ymm, m128 8", f9, "", "vpmovzxbw 8(%0), %%ymm0", "vzeroupper", :: "r"(p) : XMM);
    TRY("vpgatherdd dword 2", f10, "vpxor %%xmm1, %%xmm1, %%xmm1; vpcmpeqd %%xmm2, %%xmm2, %%xmm2", "vpgatherdd %%xmm2, 2(%0,%%xmm1,1), %%xmm0", "", :: "r"(p) : XMM);
    TRY("vmaskmovps 4", f11, "vpcmpeqd %%xmm2, %%xmm2, %%xmm2", "vmaskmovps 4(%0), %%xmm2, %%xmm0", "", :: "r"(p) : XMM);
    /* Accesses that are no accesses. */
    TRY("lea odd", g1, "", "lea 1(%0), %%rax", "", :: "r"(p) : GPR);
    TRY("nopw odd", g2, "", "nopw 1(%0)", "", :: "r"(p) : GPR);
    TRY("prefetcht0 odd", g3, "", "prefetcht0 1(%0)", "", :: "r"(p) : GPR);
    /* A privileged instruction raises #GP before its access is checked. */
    TRY("lgdt odd", g4, "", "lgdt 1(%0)", "", :: "r"(p) : GPR);
    TRY("invlpg odd", g5, "", "invlpg 1(%0)", "", :: "r"(p) : GPR);

    /* AC clear again: the same misaligned load does not fault. */
    uint64_t fl;
    asm volatile("pushfq; popq %0" : "=r"(fl));
    printf("AC now: %d\n", (int)((fl >> 18) & 1));
    uint16_t w;
    asm volatile("movw 1(%1), %0" : "=r"(w) : "r"(p) : "memory");
    printf("misaligned load with AC clear: no fault\n");

    unsigned sum = 0;
    for (int i = 0; i < 10000; i++)
        sum += hot_load(p);
    extern char hot[];
    expect_rip = (uint64_t)hot;
    printf("%-24s ", "hot code, AC set");
    if (!sigsetjmp(env, 1)) {
        asm volatile(AC_ON ::: "memory", "cc");
        sum += hot_load(p);
        asm volatile(AC_OFF ::: "memory", "cc");
        printf("no fault\n");
    }
    sink = sum;

    /* AC set through a signal frame: takes effect at rt_sigreturn. A loop keeps the load in
     * the same block as a backward branch, so the translator would have run it. */
    for (int i = 0; i < 1000; i++)
        asm volatile("movl 2(%0), %%eax" ::"r"(p) : "rax", "memory");
    handle_signals(set_ac, 0, SIGUSR1);
    extern char h1[];
    expect_rip = (uint64_t)h1;
    printf("%-24s ", "AC from sigreturn frame");
    if (!sigsetjmp(env, 1)) {
        asm volatile("mov $%c1, %%eax; syscall\n"
                     "h1: movl 2(%0), %%eax\n" AC_OFF
                     :: "r"(p), "i"(SYS_kill), "D"(getpid()), "S"(SIGUSR1)
                     : "rax", "rcx", "r11", "memory", "cc");
        printf("no fault\n");
    }
    asm volatile("pushfq; popq %0" : "=r"(fl));
    printf("AC now: %d\n", (int)((fl >> 18) & 1));
    return 0;
}
