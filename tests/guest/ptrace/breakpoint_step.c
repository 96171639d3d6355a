/* Breakpoints and single steps on a PTRACE_TRACEME tracee: POKETEXT of an int3 over code the
 * tracee has already run (so its translation must be dropped) stops it with SIGTRAP (SI_KERNEL)
 * and rip after the int3; the tracer puts the byte back, moves rip back and the code runs as
 * before. PTRACE_SINGLESTEP over a known sequence stops after each instruction with SIGTRAP
 * TRAP_TRACE at the next one (si_addr too), a stepped SYSCALL stops after the call returned
 * with TRAP_BRKPT; PEEKTEXT reads the code. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

extern char target[], step_start[], step_end[];

/* Adds 1 to *p; "target" is its first instruction (a 3-byte incl). */
__attribute__((noinline)) static void bump(int *p) {
    __asm__ volatile(".globl target\ntarget:\n\t"
                     "incl (%0)\n\t"
                     "nop\n\t"
                     :
                     : "r"(p)
                     : "memory");
}

static void child(void) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0)) _exit(90);
    int n = 0;
    for (int i = 0; i < 100; i++) bump(&n);
    kill(getpid(), SIGSTOP);
    for (int i = 0; i < 3; i++) bump(&n);
    printf("child: n=%d\n", n);
    long rax;
    __asm__ volatile("int3\n\t"
                     ".globl step_start\nstep_start:\n\t"
                     "mov $1, %%eax\n\t"
                     "add $2, %%eax\n\t"
                     "lea 3(%%rax), %%ecx\n\t"
                     "jmp 1f\n\t"
                     "ud2\n"
                     "1:\tnop\n\t"
                     "mov $39, %%eax\n\t" /* getpid */
                     "syscall\n\t"
                     "xor %%eax, %%eax\n\t"
                     ".globl step_end\nstep_end:\n\t"
                     : "=a"(rax)
                     :
                     : "rcx", "r11", "memory", "cc");
    printf("child: rax=%ld\n", rax);
    _exit(0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) child();
    int st;
    waitpid(pid, &st, 0);
    printf("stop: sig=%d\n", WSTOPSIG(st));

    /* The breakpoint. */
    unsigned long addr = (unsigned long)target;
    long word = ptrace(PTRACE_PEEKTEXT, pid, addr, 0);
    printf("peektext_same=%d\n", memcmp(&word, target, sizeof word) == 0);
    long with_int3 = (word & ~0xffL) | 0xcc;
    printf("poketext=%ld\n", ptrace(PTRACE_POKETEXT, pid, addr, with_int3));
    ptrace(PTRACE_CONT, pid, 0, 0);
    for (int hit = 0; hit < 3; hit++) {
        waitpid(pid, &st, 0);
        struct user_regs_struct r;
        siginfo_t si;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        printf("hit %d: sig=%d code=%#x rip=target+%lld\n", hit, WSTOPSIG(st), si.si_code,
               (long long)(r.rip - addr));
        /* Step over it: the original byte back, rip back, one step, the int3 again. */
        ptrace(PTRACE_POKETEXT, pid, addr, word);
        r.rip = addr;
        ptrace(PTRACE_SETREGS, pid, 0, &r);
        ptrace(PTRACE_SINGLESTEP, pid, 0, 0);
        waitpid(pid, &st, 0);
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        printf("  stepped: sig=%d code=%d rip=target+%lld addr_is_rip=%d\n", WSTOPSIG(st), si.si_code,
               (long long)(r.rip - addr), (unsigned long)si.si_addr == r.rip);
        ptrace(PTRACE_POKETEXT, pid, addr, hit < 2 ? with_int3 : word);
        ptrace(PTRACE_CONT, pid, 0, 0);
    }

    /* The int3 before the stepped sequence. */
    waitpid(pid, &st, 0);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, pid, 0, &r);
    printf("int3: sig=%d at_start=%d\n", WSTOPSIG(st), r.rip == (unsigned long)step_start);
    int steps = 0;
    while (r.rip != (unsigned long)step_end && steps < 20) {
        siginfo_t si;
        ptrace(PTRACE_SINGLESTEP, pid, 0, 0);
        waitpid(pid, &st, 0);
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        steps++;
        printf("step %d: sig=%d code=%d off=%lld rax=%lld orig_rax=%lld\n", steps, WSTOPSIG(st), si.si_code,
               (long long)(r.rip - (unsigned long)step_start), r.rax == pid ? -2LL : r.rax, r.orig_rax);
    }
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
