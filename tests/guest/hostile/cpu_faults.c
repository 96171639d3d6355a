/* CPU faults of the right kind: privileged instructions and instructions longer than 15 bytes
 * raise #GP (SIGSEGV, SI_KERNEL, trapno 13), an invalid opcode #UD (SIGILL); EFLAGS.TF set by
 * POPF traps after the following instruction (SIGTRAP, TRAP_TRACE, si_addr after it); syscall
 * numbers use only the low 32 bits of RAX. */
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
static volatile uint64_t expect_addr;

static const char *name(int sig) {
    return sig == SIGSEGV ? "SIGSEGV" : sig == SIGILL ? "SIGILL" : sig == SIGTRAP ? "SIGTRAP" : sig == SIGBUS ? "SIGBUS" : "other";
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    uint64_t a = (uint64_t)si->si_addr;
    printf("%s code=%d trapno=%lld err=%lld addr=%s\n", name(sig), si->si_code,
           (long long)uc->uc_mcontext.gregs[REG_TRAPNO], (long long)uc->uc_mcontext.gregs[REG_ERR],
           a == 0 ? "0" : a == expect_addr ? "expected" : "other");
    /* The handler runs with TF clear; the interrupted context's TF is dropped by longjmp. */
    siglongjmp(env, 1);
}

#define TRY(label, ...)                                                        \
    do {                                                                       \
        printf("%-22s ", label);                                               \
        fflush(stdout);                                                        \
        if (!sigsetjmp(env, 1)) {                                              \
            __VA_ARGS__;                                                       \
            printf("no fault\n");                                              \
        }                                                                      \
    } while (0)

static char gdt[10];

/* Sets TF in the interrupted context: after rt_sigreturn the next instruction traps. */
static void set_tf(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ((ucontext_t *)ucv)->uc_mcontext.gregs[REG_EFL] |= 0x100;
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    handle_signals(handler, SA_NODEFER, SIGSEGV, SIGILL, SIGTRAP, SIGBUS);
    TRY("in al, dx", asm volatile("xor %%edx, %%edx; inb %%dx, %%al" ::: "rax", "rdx"));
    TRY("out 0x80, al", asm volatile("outb %%al, $0x80" ::: "memory"));
    TRY("insb", asm volatile("xor %%edx, %%edx; lea %0, %%rdi; insb" : "=m"(gdt) :: "rdx", "rdi"));
    TRY("rdmsr", asm volatile("xor %%ecx, %%ecx; rdmsr" ::: "rax", "rcx", "rdx"));
    TRY("wrmsr", asm volatile("xor %%ecx, %%ecx; xor %%eax, %%eax; xor %%edx, %%edx; wrmsr" ::: "rax", "rcx", "rdx"));
    TRY("mov cr0, rax", asm volatile("xor %%eax, %%eax; mov %%rax, %%cr0" ::: "rax"));
    TRY("mov rax, cr3", asm volatile("mov %%cr3, %%rax" ::: "rax"));
    TRY("mov dr7, rax", asm volatile("xor %%eax, %%eax; mov %%rax, %%dr7" ::: "rax"));
    TRY("lgdt", asm volatile("lgdt %0" :: "m"(gdt)));
    TRY("lidt", asm volatile("lidt %0" :: "m"(gdt)));
    TRY("rdpmc", asm volatile("xor %%ecx, %%ecx; rdpmc" ::: "rax", "rcx", "rdx"));
    TRY("wbinvd", asm volatile("wbinvd"));
    TRY("invd", asm volatile("invd"));
    TRY("invlpg", asm volatile("invlpg %0" :: "m"(gdt)));
    TRY("clts", asm volatile("clts"));
    TRY("swapgs", asm volatile("swapgs"));
    TRY("hlt", asm volatile("hlt"));
    TRY("cli", asm volatile("cli"));
    /* 14 CS-override prefixes + mov rax, rax (48 89 c0): 17 bytes. */
    TRY("17-byte instruction", asm volatile(".byte 0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x48,0x89,0xc0"));
    /* 12 prefixes + 3 bytes: 15 bytes, still valid. */
    TRY("15-byte instruction", asm volatile(".byte 0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x2e,0x48,0x89,0xc0"));
    TRY("ud2", asm volatile("ud2"));
    /* TF set by POPF: the trap follows the NOP after it, reported at the address after the
     * NOP. */
    extern char after_nop[];
    expect_addr = (uint64_t)after_nop;
    TRY("popf TF; nop", asm volatile("pushfq; orq $0x100, (%%rsp); popfq; nop; after_nop: nop; nop" ::: "memory", "cc"));
    handle_signals(set_tf, 0, SIGUSR1);
    expect_addr = 0;
    TRY("TF in sigreturn frame", syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1));
    /* TF cleared again by the handler's longjmp (the saved mask, not the flags): check. */
    uint64_t fl;
    asm volatile("pushfq; popq %0" : "=r"(fl));
    printf("TF after: %d\n", (int)((fl >> 8) & 1));
    long r;
    asm volatile("syscall" : "=a"(r) : "a"(0x100000000UL | SYS_getpid) : "rcx", "r11", "memory");
    printf("syscall 1<<32 | getpid: %s\n", r == getpid() ? "getpid" : "other");
    asm volatile("syscall" : "=a"(r) : "a"(0xffffffff00000000UL | SYS_getppid) : "rcx", "r11", "memory");
    printf("syscall ~0<<32 | getppid: %s\n", r == getppid() ? "getppid" : "other");
    asm volatile("syscall" : "=a"(r) : "a"(0x12345678UL) : "rcx", "r11", "memory");
    printf("syscall 0x12345678: %ld\n", r);
    return 0;
}
