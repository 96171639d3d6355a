/* Register requests on a PTRACE_TRACEME tracee at a signal-delivery-stop: GETREGS shows the
 * registers the tracee had at its tgkill (rax the result, orig_rax the syscall number, rip after
 * the SYSCALL instruction, the 64-bit selectors), SETREGS changes a register and rip, PEEKUSER
 * and POKEUSER reach the same words and the debug registers, GETREGSET/SETREGSET cut and check
 * the length as Linux does, GETFPREGS shows a known xmm0 and SETFPREGS sets xmm1 (a bad MXCSR is
 * EINVAL), and an int3 stops the tracee with SIGTRAP (SI_KERNEL) and rip after it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <elf.h>

extern char after_kill[], skip_to[], after_int3[];

static const uint8_t pattern0[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void child(void) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
    uint64_t r12_out, r13_out;
    uint8_t xmm1_out[16];
    long pid = getpid(), tid = gettid();
    /* r12 a known value, r13 = 1 before the stop and 2 after it unless rip moves past it;
     * xmm0 the pattern; flags from a known comparison. */
    __asm__ volatile(
        "movdqu (%[pat]), %%xmm0\n\t"
        "pxor %%xmm1, %%xmm1\n\t"
        "mov $0x1122334455667788, %%r12\n\t"
        "mov $1, %%r13\n\t"
        "mov %[nr], %%eax\n\t"
        "cmp $5, %%r13\n\t" /* 1 - 5: CF, SF, not ZF */
        "syscall\n\t"
        ".globl after_kill\n"
        "after_kill:\n\t"
        "mov $2, %%r13\n\t"
        ".globl skip_to\n"
        "skip_to:\n\t"
        "mov %%r12, %[r12]\n\t"
        "mov %%r13, %[r13]\n\t"
        "movdqu %%xmm1, (%[x1])\n\t"
        : [r12] "=m"(r12_out), [r13] "=m"(r13_out)
        : [pat] "r"(pattern0), [x1] "r"(xmm1_out), [nr] "i"(SYS_tgkill), "D"(pid), "S"(tid),
          "d"(SIGUSR1)
        : "rax", "rcx", "r11", "r12", "r13", "xmm0", "xmm1", "memory", "cc");
    printf("child: r12=%#llx r13=%llu xmm1[0]=%u xmm1[15]=%u\n", (unsigned long long)r12_out,
           (unsigned long long)r13_out, xmm1_out[0], xmm1_out[15]);
    __asm__ volatile("int3\n\t.globl after_int3\nafter_int3:" ::: "memory");
    printf("child: after int3\n");
    _exit(0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned long my_fs;
    syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &my_fs);
    pid_t pid = fork();
    if (pid == 0) child();
    int st;
    waitpid(pid, &st, 0);
    printf("stop: stopped=%d sig=%d\n", WIFSTOPPED(st), WSTOPSIG(st));

    struct user_regs_struct r;
    long rc = ptrace(PTRACE_GETREGS, pid, 0, &r);
    printf("getregs=%ld orig_rax=%lld rax=%lld r12=%#llx r13=%llu rip_ok=%d rcx_is_rip=%d\n", rc,
           r.orig_rax, r.rax, r.r12, r.r13, r.rip == (unsigned long)after_kill,
           r.rcx == (unsigned long)after_kill);
    printf("cs=%#llx ss=%#llx ds=%llu es=%llu fs=%llu gs=%llu flags=%#llx fs_base_ok=%d gs_base=%llu\n",
           r.cs, r.ss, r.ds, r.es, r.fs, r.gs, r.eflags & 0x2c7, r.fs_base == my_fs, r.gs_base);

    siginfo_t si;
    memset(&si, 0, sizeof si);
    rc = ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("getsiginfo=%ld signo=%d code=%d pid_ok=%d\n", rc, si.si_signo, si.si_code, si.si_pid == pid);

    /* PEEKUSER of registers and debug registers; bad offsets. */
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.r12), 0);
    printf("peek r12=%#lx errno=%d\n", v, errno);
    v = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.orig_rax), 0);
    printf("peek orig_rax=%ld\n", v);
    v = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, u_debugreg[7]), 0);
    printf("peek dr7=%ld errno=%d\n", v, errno);
    v = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, u_debugreg[6]), 0);
    printf("peek dr6=%#lx errno=%d\n", v, errno);
    v = ptrace(PTRACE_PEEKUSER, pid, sizeof(struct user), 0);
    printf("peek past glibc's struct user=%ld errno=%d\n", v, errno);
    errno = 0;
    v = ptrace(PTRACE_PEEKUSER, pid, 3, 0);
    printf("peek unaligned=%ld errno=%d\n", v, errno);
    errno = 0;
    v = ptrace(PTRACE_PEEKUSER, pid, sizeof(struct user) + 16, 0);
    printf("peek past the kernel's struct user=%ld errno=%d\n", v, errno);
    errno = 0;
    rc = ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_debugreg[7]), 0);
    printf("poke dr7=0: %ld errno=%d\n", rc, errno);
    errno = 0;
    rc = ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_debugreg[4]), 0);
    printf("poke dr4: %ld errno=%d\n", rc, errno);
    errno = 0;
    rc = ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, regs.cs), 0);
    printf("poke cs=0: %ld errno=%d\n", rc, errno);
    errno = 0;
    rc = ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, regs.fs_base), 0xffffffffffff0000UL);
    printf("poke fs_base kernel: %ld errno=%d\n", rc, errno);
    errno = 0;
    rc = ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_comm), 0);
    printf("poke u_comm: %ld errno=%d\n", rc, errno);

    /* Regsets: the length is cut to the regset and written back; not a multiple of 8 is
     * EINVAL; a partial FP write is EINVAL. */
    struct user_regs_struct r2;
    struct iovec iov = {&r2, sizeof r2};
    rc = ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov);
    printf("getregset prstatus=%ld len=%zu same=%d\n", rc, iov.iov_len, !memcmp(&r, &r2, sizeof r));
    char big[1024];
    iov.iov_base = big;
    iov.iov_len = sizeof big;
    rc = ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov);
    printf("getregset big=%ld len=%zu\n", rc, iov.iov_len);
    iov.iov_len = 12;
    errno = 0;
    rc = ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov);
    printf("getregset 12=%ld errno=%d\n", rc, errno);
    iov.iov_len = sizeof big;
    rc = ptrace(PTRACE_GETREGSET, pid, NT_PRFPREG, &iov);
    printf("getregset prfpreg=%ld len=%zu\n", rc, iov.iov_len);
    iov.iov_len = 256;
    errno = 0;
    rc = ptrace(PTRACE_SETREGSET, pid, NT_PRFPREG, &iov);
    printf("setregset prfpreg partial=%ld errno=%d\n", rc, errno);

    /* FP registers. */
    struct user_fpregs_struct fp;
    rc = ptrace(PTRACE_GETFPREGS, pid, 0, &fp);
    printf("getfpregs=%ld cwd=%#x mxcsr=%#x xmm0_ok=%d\n", rc, fp.cwd, fp.mxcsr,
           !memcmp((char *)fp.xmm_space, pattern0, 16));
    memset((char *)fp.xmm_space + 16, 0xab, 16);
    fp.mxcsr |= 1u << 20;
    errno = 0;
    rc = ptrace(PTRACE_SETFPREGS, pid, 0, &fp);
    printf("setfpregs bad mxcsr=%ld errno=%d\n", rc, errno);
    fp.mxcsr &= ~(1u << 20);
    rc = ptrace(PTRACE_SETFPREGS, pid, 0, &fp);
    printf("setfpregs=%ld\n", rc);

    /* SETREGS: a new r12, and rip past the "mov $2, %r13". */
    r.r12 = 0xcafef00d;
    r.rip = (unsigned long)skip_to;
    rc = ptrace(PTRACE_SETREGS, pid, 0, &r);
    printf("setregs=%ld\n", rc);
    r.cs = 0;
    errno = 0;
    rc = ptrace(PTRACE_SETREGS, pid, 0, &r);
    printf("setregs cs=0: %ld errno=%d\n", rc, errno);
    ptrace(PTRACE_GETREGS, pid, 0, &r2);
    printf("after: r12=%#llx rip_ok=%d cs=%#llx\n", r2.r12, r2.rip == (unsigned long)skip_to, r2.cs);

    /* Resume discarding SIGUSR1 (its default action would kill the child). */
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("int3 stop: stopped=%d sig=%d\n", WIFSTOPPED(st), WSTOPSIG(st));
    ptrace(PTRACE_GETREGS, pid, 0, &r);
    ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("rip_ok=%d orig_rax=%lld signo=%d code=%#x\n", r.rip == (unsigned long)after_int3, r.orig_rax,
           si.si_signo, si.si_code);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
