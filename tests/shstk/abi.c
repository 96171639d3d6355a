/* Linux shadow-stack ABI behaviours (docs/acceptance.md, Linux behaviours 13.x and 14.x and the
 * further Linux checks; "Behaviour N" below refers to that list). One behaviour per
 * process: `abi NAME`. Return values of raw syscalls are printed as the kernel returns them
 * (-errno on failure). */
#include "cet.h"
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <errno.h>
#include <setjmp.h>

#define MB (1UL << 20)

static long status(void) {
    uint64_t f = 0xdead;
    long r = arch_prctl_(ARCH_SHSTK_STATUS, (unsigned long)&f);
    return r ? r : (long)f;
}

/* The last two lines of /proc/self/status, escaped so tabs and trailing spaces show. */
static void print_status_lines(void) {
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    long n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (n < 0) { puts("status unreadable"); return; }
    buf[n] = 0;
    char *p = strstr(buf, "x86_Thread_features:");
    if (!p) { puts("no x86_Thread_features line"); return; }
    for (; *p; p++) {
        if (*p == '\t') fputs("\\t", stdout);
        else if (*p == ' ') fputs("_", stdout);
        else putchar(*p);
    }
}

/* The size describe_mapping() prints as 0 when the mapping has it. */
static uint64_t expect_size;

/* Size of the mapping holding addr, from /proc/self/maps; also whether smaps flags it `ss`. */
static void describe_mapping(uint64_t addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    if (!f) { puts("smaps unreadable"); return; }
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = addr >= s && addr < e;
            if (in) printf("mapping size=%#lx perms=%.4s\n", e - s == expect_size ? 0 : e - s, strchr(line, ' ') + 1);
        } else if (in && !strncmp(line, "VmFlags:", 8)) {
            printf("ss_flag=%d\n", strstr(line, " ss ") != 0);
        }
    }
    fclose(f);
}

/* Behaviour 13.1 */
static void s01(void) {
    long a = shstk_enable();
    long b = shstk_disable();
    long c = shstk_enable();
    long d = arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS);
    printf("enable=%ld disable=%ld reenable=%ld wrss=%ld ssp_nonzero=%d\n", a, b, c, d, rdssp() != 0);
    shstk_disable();
}
/* Behaviour 13.2 */
static void s02(void) {
    uint64_t base = map_shstk(0, 2 * MB, SHADOW_STACK_SET_TOKEN);
    printf("token_ok=%d\n", *(uint64_t *)(base + 2 * MB - 8) == ((base + 2 * MB) | 1));
}
/* Behaviour 13.3: pivot to a new shadow stack, call printf there, pivot back, return normally. */
__attribute__((noinline)) static void s03_work(void) { printf("on the new stack: %d\n", 42); }
static void s03(void) {
    uint64_t base = map_shstk(0, 2 * MB, SHADOW_STACK_SET_TOKEN), top = base + 2 * MB;
    uint64_t old = rdssp();
    rstorssp((void *)(top - 8));
    saveprevssp();
    int moved = rdssp() == top;
    s03_work();
    rstorssp((void *)(old - 8));
    saveprevssp();
    printf("moved=%d back=%d\n", moved, rdssp() == old);
}
/* Behaviour 13.4 (needs WRSS) */
static void s04(void) {
    uint64_t *p = (uint64_t *)map_shstk(0, 2 * MB, 0);
    uint64_t first = *p;
    wrss(p, 1);
    uint64_t after = *p;
    int m = madvise(p, 2 * MB, MADV_DONTNEED);
    uint64_t zeroed = *p;
    wrss(p, 1);
    printf("first=%lu after_wrss=%lu madvise=%d zeroed=%lu again=%lu\n", first, after, m, zeroed, *p);
}
/* Behaviour 13.5 (needs WRSS): #CP is a fault the handler can repair. */
static volatile uint64_t *s05_slot, s05_saved;
static void s05_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("%s %s\n", signame(sig), codename(sig, si->si_code));
    wrss((uint64_t *)s05_slot, s05_saved);
}
__attribute__((noinline)) static void s05_victim(void) {
    s05_slot = (uint64_t *)rdssp();
    s05_saved = *s05_slot;
    wrss((uint64_t *)s05_slot, 0);
}
static void s05(void) {
    struct sigaction sa = {.sa_sigaction = s05_handler, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, 0);
    s05_victim();
    puts("returned after repair");
}
/* Behaviour 13.6 (needs WRSS): forced access through /proc/self/mem. */
static void s06(void) {
    extern char s06_insn[];
    uint64_t *p = (uint64_t *)map_shstk(0, 4096, 0), v = 0x77;
    int fd = open("/proc/self/mem", O_RDWR);
    long r = pread(fd, &v, 8, (long)p);
    wrss(p, 2);
    v = 0x77;
    long w = pwrite(fd, &v, 8, (long)p);
    wrss(p + 1, 3);
    printf("pread=%ld pwrite=%ld value=%lu next=%lu\n", r, w, p[0], p[1]);
    expect_addr = (uint64_t)p;
    expect_rip = (uint64_t)s06_insn;
    asm volatile("mov $5, %%eax\n .globl s06_insn\ns06_insn: mov %%rax, (%0)" : : "r"(p) : "rax", "memory");
    puts("no fault");
}
static uint64_t default_shstk_size(void);

/* Behaviour 13.7: fork gives the child a copy-on-write copy of the shadow stack; the child's forced
 * write through /proc/self/mem succeeds and the parent does not see it. */
static void s07(void) {
    uint64_t *p = (uint64_t *)map_shstk(0, 4096, 0);
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t v = 0x12345678;
        int fd = open("/proc/self/mem", O_RDWR);
        _exit(pwrite(fd, &v, 8, (long)p) == 8 && *p == 0x12345678 ? 0 : 1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    printf("child_exit=%d parent_sees_child_value=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, *p == 0x12345678);
}

/* Behaviour 14.10: a vfork child that calls _exit does not unmap the parent's shadow stack. The
 * raw vfork's child exits without any CALL: this glibc's (non-CET) vfork wrapper would let the
 * child RET and then CALL _exit, overwriting the parent's shadow-stack entry (the child shares the
 * parent's shadow stack: Linux shstk_alloc_thread_stack()), and the parent's RET from vfork would
 * then raise #CP, as it would on CET hardware. */
static void x10(void) {
    long pid;
    asm volatile("mov $58, %%eax\n syscall\n test %%rax, %%rax\n jnz 1f\n"
                 " mov $60, %%eax\n mov $7, %%edi\n syscall\n1:"
                 : "=a"(pid) : : "rcx", "r11", "rdi", "memory");
    int st = -1;
    waitpid(pid, &st, 0);
    printf("child_exit=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    expect_size = default_shstk_size();
    describe_mapping(rdssp() - 8);
}

/* Behaviour 13.8 (needs WRSS) */
static void s08a(void) {
    extern char s08_insn[];
    uint64_t *p = (uint64_t *)map_shstk(0, 2 * MB, 0);
    *(volatile uint64_t *)p; /* populate the page: the fault's error code then has P = 1 */
    printf("mprotect=%d\n", mprotect(p, 2 * MB, PROT_READ));
    expect_addr = (uint64_t)p;
    expect_rip = (uint64_t)s08_insn;
    asm volatile("mov $1, %%eax\n .globl s08_insn\ns08_insn: wrssq %%rax, (%0)" : : "r"(p) : "rax", "memory");
    puts("no fault");
}
static void s08b(void) {
    uint64_t *p = (uint64_t *)map_shstk(0, 2 * MB, 0);
    int a = mprotect(p, 2 * MB, PROT_READ), b = mprotect(p, 2 * MB, PROT_READ | PROT_WRITE);
    wrss(p, 9);
    printf("mprotect=%d,%d value=%lu\n", a, b, *p);
}
/* Behaviour 13.9 (userfaultfd) is tests/shstk/uffd.c's "selftest" mode. */
/* Behaviour 13.10: a mapping placed below an existing shadow stack keeps one free page between. */
static void s10(void) {
    void *f = mmap(0, 6 * MB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(f, 6 * MB);
    uint64_t shstk = map_shstk((uint64_t)f + 2 * MB, 2 * MB, SHADOW_STACK_SET_TOKEN);
    uint64_t m;
    int i = 0;
    do {
        m = (uint64_t)mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    } while (m > shstk && ++i < 10000);
    printf("gap=%ld\n", (long)(shstk - m - 4096));
}
/* Behaviour 13.11: a new shadow stack is never placed directly above an ordinary mapping. */
static void s11(void) {
    void *f = mmap(0, 4 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(f, 4 * 4096);
    mmap(f, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    int bad = 0, i = 0;
    uint64_t s;
    do {
        s = map_shstk(0, 4096, 0);
        if (s == (uint64_t)f + 4096) bad = 1;
    } while (s > (uint64_t)f && ++i < 10000);
    printf("adjacent=%d\n", bad);
}
/* Behaviour 13.14: no uprobes under cetbox. */
static void s14(void) {
    int fd = open("/sys/bus/event_source/devices/uprobe/type", O_RDONLY);
    printf("uprobe_type_absent=%d\n", fd < 0);
}
/* Behaviour 14.1 */
static void x01(void) {
    long a = arch_prctl_(ARCH_SHSTK_ENABLE, 3);
    long b = arch_prctl_(ARCH_SHSTK_LOCK, ARCH_SHSTK_SHSTK);
    long c = arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK);
    long d = arch_prctl_(ARCH_SHSTK_LOCK, ARCH_SHSTK_WRSS);
    long e = arch_prctl_(ARCH_SHSTK_ENABLE, 3);
    printf("enable3=%ld lock=%ld enable_locked=%ld lockwrss=%ld enable3_locked=%ld\n", a, b, c, d, e);
}
/* Behaviour 14.3 (runs with SHSTK + WRSS on) */
static void x03(void) {
    long a = arch_prctl_(ARCH_SHSTK_LOCK, ARCH_SHSTK_WRSS);
    long b = shstk_disable();
    printf("lock=%ld disable=%ld status=%ld\n", a, b, status());
}
/* Behaviour 14.4 */
static void x04(void) {
    printf("enable_wrss=%ld disable_wrss=%ld\n", arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS),
           arch_prctl_(ARCH_SHSTK_DISABLE, ARCH_SHSTK_WRSS));
}
/* Behaviour 14.5 (without int 0x80) */
static void x05(void) {
    for (long c = 0x3001; c <= 0x3005; c++) printf("%#lx=%ld ", c, arch_prctl_(c, 0));
    uint64_t f = 0xdead;
    long r = arch_prctl_(0x100005005L, (unsigned long)&f);
    printf("truncated_status=%ld value=%lu\n", r, f);
}
/* Behaviour 14.6 */
static void x06(void) { printf("status_bad_pointer=%ld\n", arch_prctl_(ARCH_SHSTK_STATUS, 8)); }
/* Behaviour 14.7 */
static void x07(void) {
    printf("flags2=%ld ", map_shstk(0, 4096, 2));
    printf("size4=%ld ", map_shstk(0, 4, SHADOW_STACK_SET_TOKEN));
    printf("low=%ld ", map_shstk(0x1000, 4096, 0));
    printf("overflow=%ld ", map_shstk(0, 0xfffffffffffff001UL, 0));
    printf("unaligned_top=%ld ", map_shstk(0, 0x1004, SHADOW_STACK_SET_TOKEN));
    uint64_t b = map_shstk(0, 0x1008, SHADOW_STACK_SET_TOKEN);
    printf("unaligned_addr=%ld ", map_shstk(b + 0x10000 + 1, 4096, 0));
    printf("overlap=%ld\n", map_shstk(b, 4096, 0));
    printf("token_in_second_page=%d zero_after=%d\n", *(uint64_t *)(b + 0x1000) == ((b + 0x1008) | 1),
           *(uint64_t *)(b + 0x1008) == 0);
}
/* Behaviour 14.8: status lines in three states, VmStk, smaps `ss`. */
static long vmstk(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmStk:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}
static uint64_t default_shstk_size(void) {
    struct rlimit r;
    getrlimit(RLIMIT_STACK, &r);
    uint64_t s = r.rlim_cur < (1UL << 32) ? r.rlim_cur : (1UL << 32);
    return (s + 4095) & ~4095UL;
}
static void x08(void) {
    print_status_lines();
    long k0 = vmstk();
    long e = shstk_enable();
    long k1 = vmstk();
    printf("enable=%ld vmstk_grew_by_shstk_size=%d\n", e, (uint64_t)(k1 - k0) * 1024 == default_shstk_size());
    arch_prctl_(ARCH_SHSTK_LOCK, -1UL);
    print_status_lines();
    expect_size = default_shstk_size();
    describe_mapping(rdssp() - 8);
    /* Locked: shadow stacks cannot be disabled any more, and this function was entered before
     * they were enabled, so it must not return. */
    _exit(0);
}
/* Behaviour 14.12: SA_RESTORER with a null restorer in a shadow-stack thread. */
static void x12_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("%s %s\n", signame(sig), codename(sig, si->si_code));
    _exit(0);
}
static void x12(void) {
    struct sigaction sa = {.sa_sigaction = x12_segv, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, 0);
    struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k = {(void *)x12_segv, 0x04000000 /* SA_RESTORER */, 0, 0};
    long r = syscall(13, SIGUSR1, &k, 0, 8); /* raw rt_sigaction: glibc would add a restorer */
    printf("rt_sigaction=%ld\n", r);
    sys3(62, getpid(), SIGUSR1, 0);
    puts("handler ran or nothing happened");
}
/* Behaviour 14.13 (needs WRSS): a forged bit-63 token moves SSP at rt_sigreturn. */
static volatile uint64_t x13_target;
static void x13_handler(int sig) {
    (void)sig;
    uint64_t hs = rdssp();
    /* Forge a token for a lower SSP inside the same stack (Linux shstk_pop_sigframe() has no
     * P + 8 check). */
    x13_target = (*(uint64_t *)(hs + 8) & ~(1ULL << 63)) - 64;
    wrss((uint64_t *)(hs + 8), x13_target | (1ULL << 63));
}
/* Further check badsigret: a handler that replaces its signal token with a value lacking bit 63
 * makes rt_sigreturn fail; the kernel forces SIGSEGV (SI_KERNEL, si_addr 0). */
static void badsig_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("%s %s addr=%s\n", signame(sig), codename(sig, si->si_code), si->si_addr ? "other" : "0");
    _exit(0);
}
static void badsig_handler(int sig) {
    (void)sig;
    uint64_t hs = rdssp();
    wrss((uint64_t *)(hs + 8), *(uint64_t *)(hs + 8) & ~(1ULL << 63));
}

/* Behaviour 13.13: a 32-bit signal handler (installed through int 0x80's old sigaction) in a
 * shadow-stack process: the return to 32-bit code with SSP above 4 GiB raises #GP, so SIGSEGV
 * arrives with RIP at the 32-bit handler; the 64-bit handler disables shadow stacks and
 * siglongjmps out, as the selftest does. */
static sigjmp_buf s13_env;
static volatile uint64_t s13_stub;
static void s13_segv(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    printf("%s %s rip_is_32bit_handler=%d\n", signame(sig), codename(sig, si->si_code),
           (uint64_t)uc->uc_mcontext.gregs[REG_RIP] == s13_stub);
    shstk_disable();
    siglongjmp(s13_env, 1);
}

/* Behaviour 13.12's child: exits with the si_code of the SIGSEGV it gets (10 = SEGV_CPERR). */
static void s12_child_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    _exit(si->si_code);
}

/* Further check misc: the generic prctl shadow-stack options answer EINVAL on x86; mremap moves a
 * shadow stack with its type (needs WRSS). */
static void misc(void) {
    uint64_t st;
    printf("prctl74=%ld prctl75=%ld prctl76=%ld\n", sys3(157, 74, (long)&st, 0), sys3(157, 75, 1, 0), sys3(157, 76, 1, 0));
    uint64_t *p = (uint64_t *)map_shstk(0, 8192, 0);
    wrss(p, 4);
    void *dst = mmap(0, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *q = mremap(p, 8192, 8192, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    wrss(q + 1, 5);
    printf("moved=%d kept=%lu wrss_after=%lu\n", q == dst, q[0], q[1]);
    expect_size = 8192;
    describe_mapping((uint64_t)q);
}

/* Behaviour 14.15 */
static void x15(void) {
    struct rlimit z = {0, RLIM_INFINITY}, inf = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_STACK, &z);
    printf("rlimit0=%ld ", shstk_enable());
    setrlimit(RLIMIT_STACK, &inf);
}

/* A hot CALL site (translated) pushes onto a shadow-stack page a thousand times; then, in the
 * same loop, a raw mprotect makes that page read-only. The next push is a shadow-stack write
 * to a page that is not writable shadow stack: #PF (Intel SDM Vol. 3A, 4.6), and the SIGSEGV
 * cannot be delivered because its shadow-stack frame would go on that same page (Linux
 * arch/x86/kernel/shstk.c, setup_signal_shadow_stack fails; signal.c, force_sigsegv): the
 * process dies of SIGSEGV. The translator's memory of the page its last full check allowed
 * (crates/jit, memop::check_shadow) must not outlive the syscall; a push through a stale
 * page would print "no fault". */
asm(".text\n.globl w01_leaf\nw01_leaf:\n ret\n");
static void w01(void) {
    uint64_t slot = rdssp() - 8;
    uint64_t page = slot & ~4095UL;
    printf("armed\n");
    fflush(stdout);
    for (int i = 0; i < 1000; i++) {
        /* The JMP ends the block before the CALL, so the CALL starts a (hot) block of its own.
         * (mprotect taking a permission away also changes the code epoch, so cetbox starts
         * over with this block in the interpreter: either engine must fault here.) */
        asm volatile("cmp $999, %k0\n"
                     " jne 2f\n"
                     " mov $10, %%eax\n"
                     " syscall\n"
                     "2: jmp 3f\n"
                     "3: call w01_leaf\n"
                     :
                     : "r"(i), "D"(page), "S"(4096UL), "d"((long)PROT_READ)
                     : "rax", "rcx", "r11", "memory", "cc");
    }
    printf("no fault\n");
}

/* SSP across translated CALLs and RETs: a recursion to depth 40, run 2000 times (hot, so its
 * CALLs and RETs run translated and chain into each other). At depth k, RDSSP (which the
 * translator leaves to the interpreter: translated code stops before it and hands SSP back)
 * must read s0 - 8k, where s0 is SSP before the outermost call, and s0 again after the last
 * return: every near CALL pushes 8 bytes on the shadow stack and every near RET pops 8 (Intel
 * SDM Vol. 2A, CALL; Vol. 2B, RET). rec(1, 40) returns 39. */
static uint64_t w02_s0;
static int w02_bad;
__attribute__((noinline)) static int w02_rec(int k, int d) {
    if (rdssp() != w02_s0 - 8 * (uint64_t)k) w02_bad++;
    int r = k < d ? w02_rec(k + 1, d) + 1 : 0;
    asm volatile("" : : : "memory");
    return r;
}
static void w02(void) {
    long sum = 0;
    for (int i = 0; i < 2000; i++) {
        w02_s0 = rdssp();
        sum += w02_rec(1, 40);
        if (rdssp() != w02_s0) w02_bad++;
    }
    printf("sum=%ld bad=%d\n", sum, w02_bad);
}

/* A RET that ran translated 999 times finds, on the 1000th, its return address modified: #CP
 * with error code 1, near-ret (Intel SDM Vol. 1, 18.2.3; Vol. 2B, RET), delivered as SIGSEGV
 * SEGV_CPERR with RIP at the RET, RSP and SSP as before it (Linux arch/x86/kernel/cet.c,
 * do_user_cp_fault()). The SSP the signal frame's token records must be the one translated
 * code reached, not a stale one. */
asm(".text\n.globl w03_fn\nw03_fn: cmp $999, %edi\n jne w03_ret\n addq $1, (%rsp)\n"
    ".globl w03_ret\nw03_ret: ret\n");
extern char w03_fn[], w03_ret[];
static void w03(void) {
    expect_rip = (uint64_t)w03_ret;
    expect_ssp = rdssp() - 8;
    for (int i = 0; i < 1000; i++)
        asm volatile("lea -8(%%rsp), %%rax\n mov %%rax, expect_rsp(%%rip)\n call w03_fn"
                     :
                     : "D"(i)
                     : "rax", "memory", "cc");
    puts("no fault");
}

struct test {
    const char *name;
    int mode; /* 0 off, 1 on, 2 on + WRSS */
    void (*fn)(void);
};
static const struct test tests[] = {
    {"s01", 0, s01}, {"s02", 0, s02}, {"s03", 1, s03}, {"s04", 2, s04}, {"s05", 2, s05},
    {"s06", 2, s06}, {"misc", 2, misc}, {"s07", 1, s07}, {"x10", 1, x10}, {"s08a", 2, s08a}, {"s08b", 2, s08b}, {"s10", 0, s10},
    {"s11", 0, s11}, {"s14", 0, s14}, {"x01", 0, x01}, {"x03", 2, x03}, {"x04", 0, x04},
    {"x05", 0, x05}, {"x06", 0, x06}, {"x07", 0, x07}, {"x08", 0, x08}, {"x12", 1, x12},
    {"w01", 1, w01}, {"w02", 1, w02}, {"w03", 1, w03},
};

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    catch_faults();
    if (!strcmp(argv[1], "x02")) {
        /* Behaviour 14.2: a self-UNLOCK of an unlocked bit acts as ENABLE. */
        long u = arch_prctl_(ARCH_SHSTK_UNLOCK, ARCH_SHSTK_SHSTK);
        long st = status();
        long z = arch_prctl_(ARCH_SHSTK_UNLOCK, 0);
        printf("unlock=%ld status=%ld unlock0=%ld\n", u, st, z);
        _exit(0);
    }
    if (!strcmp(argv[1], "x13")) {
        struct sigaction sa = {.sa_handler = x13_handler};
        sigaction(SIGUSR1, &sa, 0);
        long pid = getpid();
        if (shstk_enable() || arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS)) { puts("enable failed"); _exit(1); }
        sys3(62, pid, SIGUSR1, 0);
        printf("ssp_is_forged=%d\n", rdssp() == x13_target);
        _exit(0);
    }
    if (!strcmp(argv[1], "badsigret")) {
        struct sigaction sa = {.sa_handler = badsig_handler}, segv = {.sa_sigaction = badsig_segv, .sa_flags = SA_SIGINFO};
        sigaction(SIGUSR1, &sa, 0);
        sigaction(SIGSEGV, &segv, 0);
        long pid = getpid();
        if (shstk_enable() || arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS)) { puts("enable failed"); _exit(1); }
        sys3(62, pid, SIGUSR1, 0);
        puts("sigreturn succeeded");
        _exit(0);
    }
    if (!strcmp(argv[1], "x11")) {
        /* Behaviour 14.11: execve starts the new program with shadow stacks disabled and
         * unlocked. */
        if (shstk_enable()) { puts("enable failed"); _exit(1); }
        arch_prctl_(ARCH_SHSTK_LOCK, -1UL);
        char *args[] = {argv[0], "x11child", 0};
        execv("/proc/self/exe", args);
        puts("exec failed");
        _exit(1);
    }
    if (!strcmp(argv[1], "x11child")) {
        uint64_t r;
        asm volatile("mov $1, %%rax\n rdsspq %%rax\n mov %%rax, %0" : "=r"(r) : : "rax");
        printf("status=%ld rdssp_nop=%d\n", status(), r == 1);
        print_status_lines();
        _exit(0);
    }
    if (!strcmp(argv[1], "s13")) {
        struct sigaction sa = {.sa_sigaction = s13_segv, .sa_flags = SA_SIGINFO};
        sigaction(SIGSEGV, &sa, 0);
        unsigned char *page = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        page[0x100] = 0xc3;
        s13_stub = (uint64_t)(page + 0x100);
        uint32_t *old = (uint32_t *)page;
        old[0] = (uint32_t)s13_stub;
        old[1] = old[2] = old[3] = 0;
        if (shstk_enable()) { puts("enable failed"); _exit(1); }
        long r;
        asm volatile("int $0x80" : "=a"(r) : "a"(67), "b"(SIGUSR1), "c"(page), "d"(0) : "memory");
        printf("below_4g=%d sigaction32=%ld\n", s13_stub < (1UL << 32), r);
        if (sigsetjmp(s13_env, 1) == 0) {
            raise(SIGUSR1);
            puts("no fault");
        } else {
            puts("recovered");
        }
        _exit(0);
    }
    if (!strcmp(argv[1], "s12")) {
        /* Behaviour 13.12: the NT_X86_SHSTK regset through ptrace, as the selftest drives it. */
        pid_t pid = fork();
        if (pid == 0) {
            struct sigaction sa = {.sa_sigaction = s12_child_segv, .sa_flags = SA_SIGINFO};
            sigaction(SIGSEGV, &sa, 0);
            if (shstk_enable()) _exit(99);
            if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(8);
            raise(SIGTRAP);
            _exit(7); /* not reached: returning from raise with SSP moved by 8 raises #CP */
        }
        int st = -1;
        waitpid(pid, &st, 0);
        uint64_t ssp = 0;
        struct iovec iov = {&ssp, 8};
        long get = ptrace(PTRACE_GETREGSET, pid, 0x204, &iov);
        long set0, set9, unaligned, kernel, set;
        uint64_t v = 0;
        struct iovec w = {&v, 0};
        set0 = ptrace(PTRACE_SETREGSET, pid, 0x204, &w);
        w.iov_len = 9;
        set9 = ptrace(PTRACE_SETREGSET, pid, 0x204, &w);
        w.iov_len = 8;
        v = ssp + 1;
        unaligned = ptrace(PTRACE_SETREGSET, pid, 0x204, &w);
        v = 0xffffffffffff0000UL;
        kernel = ptrace(PTRACE_SETREGSET, pid, 0x204, &w);
        v = ssp + 8;
        set = ptrace(PTRACE_SETREGSET, pid, 0x204, &w);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        int st2 = -1;
        waitpid(pid, &st2, 0);
        printf("stopped=%d sig=%d get=%ld len=%zu nonzero=%d set0=%ld set9=%ld unaligned=%ld kernel=%ld set=%ld\n",
               WIFSTOPPED(st), WIFSTOPPED(st) ? WSTOPSIG(st) : -1, get, iov.iov_len, ssp != 0, set0, set9,
               unaligned, kernel, set);
        printf("child: exited=%d status=%d\n", WIFEXITED(st2), WIFEXITED(st2) ? WEXITSTATUS(st2) : -1);
        _exit(0);
    }
    if (!strcmp(argv[1], "x06p")) {
        /* Behaviour 14.6: PTRACE_ARCH_PRCTL runs the "not self" path: STATUS writes into the
         * tracer, LOCK and UNLOCK change the tracee, ENABLE is refused. */
        pid_t pid = fork();
        if (pid == 0) {
            if (shstk_enable()) _exit(99);
            if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(98);
            raise(SIGTRAP);
            print_status_lines();
            fflush(stdout);
            _exit(0);
        }
        int st = -1;
        waitpid(pid, &st, 0);
        uint64_t f = 0xdead;
        long status = ptrace(30, pid, &f, (void *)0x5005);
        long lock = ptrace(30, pid, (void *)3, (void *)0x5003);
        long unlock = ptrace(30, pid, (void *)1, (void *)0x5004);
        long enable = ptrace(30, pid, (void *)1, (void *)0x5001);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        waitpid(pid, &st, 0);
        printf("status=%ld features=%lu lock=%ld unlock=%ld enable=%ld errno_einval=%d child_exit=%d\n", status, f,
               lock, unlock, enable, enable == -1 && errno == EINVAL, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        _exit(0);
    }
    if (!strcmp(argv[1], "int80")) {
        /* Behaviours 14.5 and 14.7: the ia32 entry never reaches the shadow-stack code. */
        long a, m;
        asm volatile("int $0x80" : "=a"(a) : "a"(384), "b"(0x5005), "c"(0) : "memory");
        asm volatile("int $0x80" : "=a"(m) : "a"(453), "b"(0), "c"(4096), "d"(0) : "memory");
        printf("arch_prctl32=%ld map_shadow_stack32=%ld\n", a, m);
        _exit(0);
    }
    if (!strcmp(argv[1], "x15")) {
        x15();
        long e = shstk_enable();
        uint64_t s = rdssp();
        printf("infinity=%ld\n", e);
        expect_size = 1UL << 32;
        describe_mapping(s - 8);
        _exit(0);
    }
    if (!strcmp(argv[1], "s15")) {
        /* Behaviour 13.15: disable, then return from main normally. */
        if (shstk_enable()) { puts("enable failed"); _exit(1); }
        shstk_disable();
        puts("clean");
        return 0;
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
