/* Shadow-stack CPU test vectors (docs/acceptance.md, CPU vectors 1-33). Each vector runs in its
 * own process:
 *   vectors NAME
 * Vectors marked "on" in the table run with shadow stacks enabled by main() through an inline
 * syscall (so no function returns across the enable point); "wrss" also enables WRSS.
 * Faults are reported by on_fault() in cet.h, which prints the signal, si_code, whether si_addr
 * and the faulting RIP are the expected ones, trapno and err, then exits 0. */
#include "cet.h"

/* Assembly helpers with exported labels for expected fault addresses. */
asm(".text\n"
    ".globl v05_fn\nv05_fn: ret\n"
    ".globl v07_fn\nv07_fn: addq $1, (%rsp)\n.globl v07_ret\nv07_ret: ret\n"
    /* v12_fn: pops its own return entry from the shadow stack with INCSSPQ(0x101), returns
     * the SSP delta in RAX, and returns with POP+JMP so both stacks stay in step. */
    ".globl v12_fn\nv12_fn: xor %edx, %edx\n rdsspq %rdx\n mov $0x101, %eax\n incsspq %rax\n"
    " xor %esi, %esi\n rdsspq %rsi\n sub %rdx, %rsi\n mov %rsi, %rax\n pop %rcx\n jmp *%rcx\n"
    ".globl v17_fn\nv17_fn: ret $16\n"
    ".globl v20_fn\nv20_fn: mov $20, %eax\n ret\n"
    ".globl v26_b\nv26_b: mov %ss, %eax\n push %rax\n lea 8(%rsp), %rax\n push %rax\n pushfq\n"
    " mov %cs, %eax\n push %rax\n lea v26_after(%rip), %rax\n push %rax\n"
    ".globl v26_iret\nv26_iret: iretq\nv26_after: ret\n");
extern char v05_fn[], v07_fn[], v07_ret[], v12_fn[], v17_fn[], v20_fn[], v26_b[], v26_iret[];

#define LABEL(name) extern char name[]; asm volatile(".globl " #name "\n" #name ":")

static void v01(void) {
    uint64_t r;
    asm volatile("xor %%eax, %%eax\n rdsspq %%rax\n mov %%rax, %0" : "=r"(r) : : "rax");
    printf("rax=%#lx\n", r);
}
static void v02(void) {
    uint64_t r;
    asm volatile("mov $1, %%rax\n rdsspq %%rax\n mov %%rax, %0" : "=r"(r) : : "rax");
    printf("rax=%#lx\n", r);
}
static void v03(void) {
    uint64_t r;
    asm volatile("movabs $0xffffffff12345678, %%rax\n rdsspd %%eax\n mov %%rax, %0" : "=r"(r) : : "rax");
    printf("rax=%#lx\n", r);
}
static void v04(void) {
    extern char v04_insn[];
    expect_rip = expect_addr = (uint64_t)v04_insn;
    asm volatile("xor %%eax, %%eax\n .globl v04_insn\nv04_insn: incsspq %%rax" : : : "rax");
    puts("no fault");
}
static void v05(void) {
    uint64_t s0 = rdssp(), ret;
    asm volatile("lea 1f(%%rip), %0\n call v05_fn\n1:" : "=r"(ret) : : "memory");
    uint64_t s1 = rdssp();
    printf("ssp_same=%d entry_is_return=%d\n", s0 == s1, *(uint64_t *)(s1 - 8) == ret);
}
static void v06(void) {
    uint64_t s0 = rdssp(), a, b;
    asm volatile("call 1f\n1: pop %0\n lea 1b(%%rip), %1" : "=r"(a), "=r"(b) : : "memory");
    uint64_t s1 = rdssp();
    printf("ssp_same=%d rax_is_label=%d\n", s0 == s1, a == b);
}
static void v07(void) {
    expect_rip = (uint64_t)v07_ret;
    expect_ssp = rdssp() - 8;
    asm volatile("lea -8(%%rsp), %%rax\n mov %%rax, expect_rsp(%%rip)\n call v07_fn" : : : "rax", "memory");
    puts("no fault");
}
static void v08(void) {
    extern char v08_insn[];
    uint64_t s = rdssp();
    expect_addr = s;
    expect_rip = (uint64_t)v08_insn;
    asm volatile("mov %0, %%rax\n .globl v08_insn\nv08_insn: mov %%rax, (%%rax)" : : "r"(s) : "rax", "memory");
    puts("no fault");
}
static void v09(void) {
    uint64_t s = rdssp(), v;
    asm volatile("mov (%1), %0" : "=r"(v) : "r"(s));
    printf("read_ok=1 top_is_return_to_main=%d\n", v == (uint64_t)__builtin_return_address(0));
}
static void v10(void) {
    extern char v10_insn[];
    static uint64_t slot;
    expect_rip = expect_addr = (uint64_t)v10_insn;
    asm volatile("lea %0, %%rsi\n xor %%edi, %%edi\n .globl v10_insn\nv10_insn: wrssq %%rdi, (%%rsi)" : "+m"(slot) : : "rsi", "rdi", "memory");
    puts("no fault");
}
static void v11a(void) {
    uint64_t *slot = (uint64_t *)(rdssp() - 64);
    wrss(slot, 0x1234);
    printf("value=%#lx\n", *slot);
}
static void v11b(void) {
    extern char v11b_insn[];
    uint64_t *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Touch the page so it has a present page-table entry: the error code then has P = 1. */
    *(volatile uint64_t *)p;
    expect_addr = (uint64_t)p;
    expect_rip = (uint64_t)v11b_insn;
    asm volatile("mov $1, %%edi\n .globl v11b_insn\nv11b_insn: wrssq %%rdi, (%0)" : : "r"(p) : "rdi", "memory");
    puts("no fault");
}
static void v11c(void) {
    extern char v11c_insn[];
    uint64_t p = rdssp() - 63;
    expect_rip = (uint64_t)v11c_insn;
    asm volatile("mov $1, %%edi\n .globl v11c_insn\nv11c_insn: wrssq %%rdi, (%0)" : : "r"(p) : "rdi", "memory");
    puts("no fault");
}
static void v12(void) {
    uint64_t d;
    asm volatile("call v12_fn\n mov %%rax, %0" : "=r"(d) : : "rax", "rcx", "rdx", "rsi", "memory");
    printf("delta=%lu\n", d);
}
/* Switch to a new shadow stack and back with RSTORSSP/SAVEPREVSSP (Intel SDM Vol. 2B). */
static void v13(void) {
    uint64_t base = map_shstk(0, 0x1000, SHADOW_STACK_SET_TOKEN);
    uint64_t top = base + 0x1000, old = rdssp();
    uint8_t cf;
    printf("token_ok=%d\n", *(uint64_t *)(top - 8) == (top | 1));
    asm volatile("rstorssp (%1)\n setc %0" : "=r"(cf) : "r"(top - 8) : "memory", "cc");
    uint64_t s1 = rdssp();
    printf("after_rstorssp ssp_is_token=%d slot_is_prev=%d cf=%d\n", s1 == top - 8, *(uint64_t *)(top - 8) == (old | 3), cf);
    saveprevssp();
    uint64_t s2 = rdssp();
    printf("after_saveprevssp ssp_is_top=%d old_has_restore_token=%d\n", s2 == top, *(uint64_t *)(old - 8) == (old | 1));
    rstorssp((void *)(old - 8));
    saveprevssp();
    printf("back ssp_is_old=%d new_has_restore_token=%d\n", rdssp() == old, *(uint64_t *)(top - 8) == (top | 1));
}
static void v14(void) {
    extern char v14_insn[];
    uint64_t base = map_shstk(0, 0x1000, 0);
    uint64_t slot = base + 0x1000 - 8;
    expect_rip = (uint64_t)v14_insn;
    expect_ssp = rdssp();
    expect_mem = (uint64_t *)slot;
    expect_mem_value = 0;
    asm volatile(".globl v14_insn\nv14_insn: rstorssp (%0)" : : "r"(slot) : "memory", "cc");
    puts("no fault");
}
static void v15(void) {
    extern char v15_insn[];
    expect_rip = expect_addr = (uint64_t)v15_insn;
    asm volatile(".globl v15_insn\nv15_insn: setssbsy");
    puts("no fault");
}
static void v16(void) {
    extern char v16_insn[];
    static uint64_t slot;
    expect_rip = (uint64_t)v16_insn;
    asm volatile("lea %0, %%rsi\n .globl v16_insn\nv16_insn: wrussq %%rdi, (%%rsi)" : "+m"(slot) : : "rsi", "memory");
    puts("no fault");
}
static void v17(void) {
    uint64_t sp0, sp1, s0 = rdssp(), s1;
    asm volatile("mov %%rsp, %0\n sub $16, %%rsp\n call v17_fn\n mov %%rsp, %1" : "=&r"(sp0), "=r"(sp1) : : "memory");
    s1 = rdssp();
    printf("rsp_restored=%d ssp_same=%d\n", sp0 == sp1, s0 == s1);
}
static int depth;
__attribute__((noinline)) static int recurse(int n) {
    depth++;
    return recurse(n + 1) + 1;
}
static void v18_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("%s %s\n", signame(sig), codename(sig, si->si_code));
    fflush(stdout);
    _exit(0);
}
static void v18(void) {
    static char alt[65536];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    sigaltstack(&ss, 0);
    struct sigaction sa = {.sa_sigaction = v18_handler, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigaction(SIGSEGV, &sa, 0);
    recurse(0);
}
static volatile uint64_t v19_hs, v19_tok, v19_restorer_entry;
static void v19_handler(int sig) {
    uint64_t hs = rdssp();
    (void)sig;
    v19_hs = hs;
    v19_tok = *(uint64_t *)(hs + 8);
    v19_restorer_entry = *(uint64_t *)hs;
}
static void v19(void) {
    struct sigaction sa = {.sa_handler = v19_handler}, cur;
    sigaction(SIGUSR1, &sa, 0);
    sigaction(SIGUSR1, 0, &cur);
    long pid = getpid();
    uint64_t s = rdssp();
    sys3(62, pid, SIGUSR1, 0); /* kill(getpid(), SIGUSR1): delivered on return from this syscall */
    uint64_t after = rdssp();
    printf("handler_ssp_is_s_minus_16=%d token=%d restorer=%d after_is_s=%d\n", v19_hs == s - 16,
           v19_tok == (s | (1ULL << 63)), v19_restorer_entry == (uint64_t)cur.sa_restorer, after == s);
}
static void v20(void) {
    long a, b;
    asm volatile("lea v20_fn(%%rip), %%rax\n notrack call *%%rax\n mov %%rax, %0\n"
                 "lea v20_fn(%%rip), %%rax\n call *%%rax\n mov %%rax, %1"
                 : "=r"(a), "=r"(b) : : "rax", "memory");
    printf("notrack=%ld plain=%ld\n", a, b);
}
static void v22(void) {
    extern char v22_insn[];
    uint64_t base = map_shstk(0, 0x1000, SHADOW_STACK_SET_TOKEN);
    expect_rip = (uint64_t)v22_insn;
    asm volatile(".globl v22_insn\nv22_insn: rstorssp (%0)" : : "r"(base + 0x1000 - 12) : "memory", "cc");
    puts("no fault");
}
static void v23(void) {
    extern char v23_insn[];
    uint64_t base = map_shstk(0, 0x1000, SHADOW_STACK_SET_TOKEN);
    expect_rip = (uint64_t)v23_insn;
    asm volatile("rstorssp (%0)\n stc\n .globl v23_insn\nv23_insn: saveprevssp" : : "r"(base + 0x1000 - 8) : "memory", "cc");
    puts("no fault");
}
static void v24(void) {
    uint64_t r, s = rdssp();
    asm volatile("mov $-1, %%rax\n rdsspd %%eax\n mov %%rax, %0" : "=r"(r) : : "rax");
    printf("ssp_above_4g=%d rax_is_low32=%d\n", s >> 32 != 0, r == (s & 0xffffffff));
}
static void v25(void) {
    extern char v25_insn[];
    expect_rip = expect_addr = (uint64_t)v25_insn;
    asm volatile(".globl v25_insn\nv25_insn: .byte 0xf0, 0xf3, 0x0f, 0x1e, 0xfa");
    puts("no fault");
}
__attribute__((noinline)) static void v26_a(void) {
    asm volatile("call v26_b" : : : "rax", "memory");
}
static void v26(void) {
    expect_rip = (uint64_t)v26_iret;
    v26_a();
    puts("no fault");
}
static void v28(void) {
    uint64_t a, d, s0 = rdssp();
    asm volatile("mov $0x1111, %%rax\n mov $0x2222, %%rdx\n .byte 0xf3, 0x0f, 0x1e, 0xd0\n mov %%rax, %0\n mov %%rdx, %1"
                 : "=r"(a), "=r"(d) : : "rax", "rdx");
    printf("rax=%#lx rdx=%#lx ssp_same=%d\n", a, d, rdssp() == s0);
}

/* docs/acceptance.md, CPU vectors 29-33: the remaining disabled-state behaviours. */
static void v29(void) {
    extern char v29_insn[];
    static uint64_t slot;
    expect_rip = expect_addr = (uint64_t)v29_insn;
    asm volatile("lea %0, %%rax\n .globl v29_insn\nv29_insn: rstorssp (%%rax)" : "+m"(slot) : : "rax", "memory", "cc");
    puts("no fault");
}
static void v30(void) {
    extern char v30_insn[];
    expect_rip = expect_addr = (uint64_t)v30_insn;
    asm volatile(".globl v30_insn\nv30_insn: saveprevssp" : : : "memory");
    puts("no fault");
}
static void v31(void) {
    extern char v31_insn[];
    static uint64_t slot;
    expect_rip = expect_addr = (uint64_t)v31_insn;
    asm volatile("lea %0, %%rax\n .globl v31_insn\nv31_insn: clrssbsy (%%rax)" : "+m"(slot) : : "rax", "memory");
    puts("no fault");
}
static void v32(void) {
    uint64_t a;
    asm volatile("mov $0x3232, %%eax\n endbr64\n endbr32\n mov %%rax, %0" : "=r"(a) : : "rax");
    printf("endbr_nop rax=%#lx\n", a);
}
static void v33(void) {
    extern char v33_insn[];
    static uint64_t slot;
    expect_rip = expect_addr = (uint64_t)v33_insn;
    asm volatile("lea %0, %%rsi\n xor %%edi, %%edi\n .globl v33_insn\nv33_insn: wrssq %%rdi, (%%rsi)" : "+m"(slot) : : "rsi", "rdi", "memory");
    puts("no fault");
}

struct test {
    const char *name;
    int mode; /* 0 off, 1 on, 2 on + WRSS */
    void (*fn)(void);
};
static const struct test tests[] = {
    {"v01", 0, v01}, {"v02", 0, v02}, {"v03", 0, v03}, {"v04", 0, v04}, {"v05", 1, v05},
    {"v06", 1, v06}, {"v07", 1, v07}, {"v08", 1, v08}, {"v09", 1, v09}, {"v10", 1, v10},
    {"v11a", 2, v11a}, {"v11b", 2, v11b}, {"v11c", 2, v11c}, {"v12", 1, v12}, {"v13", 1, v13},
    {"v14", 1, v14}, {"v15", 0, v15}, {"v16", 0, v16}, {"v17", 1, v17}, {"v18", 1, v18},
    {"v19", 1, v19}, {"v20", 1, v20}, {"v22", 1, v22}, {"v23", 1, v23}, {"v24", 1, v24},
    {"v25", 0, v25}, {"v26", 1, v26}, {"v28", 1, v28}, {"v29", 0, v29}, {"v30", 0, v30},
    {"v31", 1, v31}, {"v32", 1, v32}, {"v32off", 0, v32}, {"v33", 0, v33},
};

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    catch_faults();
    /* Vectors that need SSP at the top of the empty enable-time stack run right here. */
    if (!strcmp(argv[1], "v21")) {
        if (shstk_enable()) { puts("enable failed"); _exit(1); }
        expect_addr = rdssp();
        asm volatile("lea 1f(%%rip), %%rax\n mov %%rax, expect_rip(%%rip)\n xor %%eax, %%eax\n1: incsspq %%rax" : : : "rax", "memory");
        puts("no fault");
        _exit(0);
    }
    if (!strcmp(argv[1], "v27")) {
        /* SSP = 4 mod 8, then a signal with a handler: delivery fails, SIGSEGV is forced, and its
         * delivery fails too, so the process dies of SIGSEGV. */
        struct sigaction sa = {.sa_handler = (void (*)(int))on_fault};
        sigaction(SIGUSR1, &sa, 0);
        long pid = getpid();
        if (shstk_enable()) { puts("enable failed"); _exit(1); }
        /* CALL pushes one entry so INCSSPD has something to pop; it leaves SSP = 4 mod 8. */
        asm volatile("call 1f\n ud2\n1: mov $1, %%eax\n incsspd %%eax\n mov $62, %%eax\n mov %0, %%rdi\n"
                     " mov $10, %%esi\n syscall\n ud2" : : "r"(pid) : "rax", "rdi", "rsi", "rcx", "r11", "memory");
        puts("survived");
        _exit(0);
    }
    for (unsigned i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (strcmp(argv[1], tests[i].name)) continue;
        if (tests[i].mode >= 1 && shstk_enable()) { puts("enable failed"); _exit(1); }
        if (tests[i].mode == 2 && arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS)) { puts("wrss failed"); _exit(1); }
        tests[i].fn();
        fflush(stdout);
        _exit(0);
    }
    puts("unknown test");
    return 2;
}
