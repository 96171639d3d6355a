// The FPU part of the signal frame: handlers start with a clean FPU (default MXCSR, x87 control
// word), the interrupted state is saved in uc_mcontext.fpregs with the XSAVE magic, restored on
// return, and edits made to it by the handler take effect.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <xmmintrin.h>

#include "../common/handle_signals.h"

static void h(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    ucontext_t *uc = ctx;
    struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
    unsigned short fcw;
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    uint32_t magic1;
    memcpy(&magic1, (char *)fp + 464, 4);
    printf("in handler: mxcsr=%#x fcw=%#x\n", _mm_getcsr(), fcw);
    printf("saved: mxcsr=%#x fcw=%#x xmm3.lo=%#x uc_flags=%#lx magic1=%#x aligned64=%d\n",
           fp->mxcsr, fp->cwd, fp->_xmm[3].element[0], uc->uc_flags & 7, magic1,
           (int)((uintptr_t)fp % 64 == 0));
    // Round toward zero after return.
    fp->mxcsr = (fp->mxcsr & ~0x6000u) | 0x6000u;
    fp->_xmm[3].element[0] = 0xabcd;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    handle_signals(h, 0, SIGUSR1);
    unsigned short fcw = 0x027f;
    __asm__ volatile("fldcw %0" : : "m"(fcw));
    _mm_setcsr(0x1f80 | 0x2000); // round down
    unsigned int x3;
    long pid = getpid();
    // kill(getpid(), SIGUSR1) as a raw syscall so no library code touches xmm3 in between.
    __asm__ volatile("mov $0x1234, %%eax\n movd %%eax, %%xmm3\n"
                     "mov %1, %%rdi\n mov $10, %%esi\n mov $62, %%eax\n syscall\n"
                     "movd %%xmm3, %0\n"
                     : "=r"(x3) : "r"(pid) : "rax", "rdi", "rsi", "rcx", "r11", "xmm3", "memory");
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    printf("after: mxcsr=%#x fcw=%#x xmm3=%#x\n", _mm_getcsr(), fcw, x3);
    return 0;
}
