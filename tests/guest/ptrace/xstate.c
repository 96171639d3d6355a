/* PTRACE_GETREGSET / SETREGSET of NT_X86_XSTATE: the stopped tracee's XSAVE area in the
 * standard format, with Linux's software-reserved bytes (XCR0 in the first word, which has
 * x87, SSE and AVX, zeros after it) and the header's XSTATE_BV showing AVX in use; ymm0 and ymm15, loaded before the stop, are there (low halves at 160, high halves at
 * 576); a new ymm0 high half written with SETREGSET is the tracee's when it resumes, ymm15
 * unchanged; a partial buffer is refused (EFAULT). Linux arch/x86/kernel/fpu/regset.c
 * xstateregs_get/xstateregs_set, xstate.c __copy_xstate_to_uabi_buf; Intel SDM Vol. 1, 13.4. */
//! link: static
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned char y0[32], y15[32], out0[32], out15[32];

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < 32; i++) {
        y0[i] = (unsigned char)(0x10 + i);
        y15[i] = (unsigned char)(0xa0 + i);
    }
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        long me = getpid();
        /* Load, stop (kill(getpid(), SIGSTOP)) and store, with no code in between. */
        __asm__ volatile("vmovdqu %2, %%ymm0\n\t"
                         "vmovdqu %3, %%ymm15\n\t"
                         "mov $62, %%eax\n\t"
                         "mov %4, %%rdi\n\t"
                         "mov $19, %%esi\n\t"
                         "syscall\n\t"
                         "vmovdqu %%ymm0, %0\n\t"
                         "vmovdqu %%ymm15, %1\n\t"
                         : "=m"(out0), "=m"(out15)
                         : "m"(y0), "m"(y15), "r"(me)
                         : "rax", "rdi", "rsi", "rcx", "r11", "xmm0", "xmm15", "memory");
        int ok0 = 1, ok15 = memcmp(out15, y15, 32) == 0;
        for (int i = 0; i < 32; i++)
            if (out0[i] != (i < 16 ? y0[i] : (unsigned char)(0x70 + i))) ok0 = 0;
        printf("child: ymm0 as set by the tracer=%d ymm15 unchanged=%d\n", ok0, ok15);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("stopped=%d sig=%d\n", WIFSTOPPED(st), WSTOPSIG(st));
    /* Larger than any XSAVE area (AMX's included), so the length written back is the whole. */
    static unsigned char x[16384];
    struct iovec iov = {x, sizeof x};
    long rc = ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov);
    size_t len = iov.iov_len;
    uint64_t xcr0, bv;
    memcpy(&xcr0, x + 464, 8);
    memcpy(&bv, x + 512, 8);
    int rest_zero = 1;
    for (int i = 472; i < 512; i++)
        if (x[i]) rest_zero = 0;
    printf("getregset=%ld len_at_least_832=%d xcr0_x87_sse_avx=%d sw_rest_zero=%d\n", rc,
           len >= 832, (int)((xcr0 & 7) == 7), rest_zero);
    printf("avx in use=%d xmm0=%d xmm15=%d ymm0_hi=%d ymm15_hi=%d\n", (int)(bv >> 2 & 1),
           memcmp(x + 160, y0, 16) == 0, memcmp(x + 160 + 15 * 16, y15, 16) == 0,
           memcmp(x + 576, y0 + 16, 16) == 0, memcmp(x + 576 + 15 * 16, y15 + 16, 16) == 0);
    for (int i = 16; i < 32; i++) x[576 + i - 16] = (unsigned char)(0x70 + i);
    struct iovec part = {x, 512};
    errno = 0;
    rc = ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &part);
    printf("setregset partial=%ld errno=%d\n", rc, errno);
    iov.iov_len = len;
    rc = ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov);
    printf("setregset=%ld\n", rc);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("end: exited=%d status=%d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}
