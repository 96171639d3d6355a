/* A signal handler that reads and changes YMM state through the ucontext (the XSAVE layout
 * Linux writes: the AVX component at offset 576 of the FPU state), and rt_sigreturn restoring
 * it. Prints only what does not depend on the host's other XSAVE components. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>

static volatile int hits;

static void handler(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
    uint32_t magic1, xsize, magic2, extended;
    uint64_t xfeatures, bv;
    memcpy(&magic1, fp + 464, 4);
    memcpy(&extended, fp + 468, 4);
    memcpy(&xfeatures, fp + 472, 8);
    memcpy(&xsize, fp + 480, 4);
    memcpy(&bv, fp + 512, 8);
    memcpy(&magic2, fp + xsize, 4);
    printf("signal %d: magic1 %x magic2 %x extended==xsize+4 %d xfeatures&7 %lx xstate_bv&7 %lx\n",
           sig, magic1, magic2, extended == xsize + 4, (unsigned long)(xfeatures & 7),
           (unsigned long)(bv & 7));
    uint32_t lo[4], hi[4];
    memcpy(lo, fp + 160 + 16 * 3, 16);
    memcpy(hi, fp + 576 + 16 * 3, 16);
    printf("ymm3 in handler: %u %u %u %u | %u %u %u %u\n", lo[0], lo[1], lo[2], lo[3], hi[0], hi[1],
           hi[2], hi[3]);
    uint32_t nv[4] = {100, 200, 300, 400};
    memcpy(fp + 576 + 16 * 3, nv, 16);
    uint32_t nl[4] = {11, 22, 33, 44};
    memcpy(fp + 160 + 16 * 3, nl, 16);
    /* The handler itself clobbers YMM3 (its own state is fresh and discarded on return). */
    __asm__ volatile("vpcmpeqd %%ymm3, %%ymm3, %%ymm3" ::: "xmm3");
    hits++;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    static const uint32_t init[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t out[8];
    long pid = getpid();
    __asm__ volatile("vmovdqu %[in], %%ymm3\n\t"
                     "mov %[pid], %%rdi\n\t"
                     "mov $10, %%esi\n\t"
                     "mov $62, %%eax\n\t"
                     "syscall\n\t"
                     "vmovdqu %%ymm3, %[out]\n\t"
                     : [out] "=m"(out)
                     : [in] "m"(init), [pid] "r"(pid)
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "xmm3", "memory");
    printf("ymm3 after return: %u %u %u %u | %u %u %u %u\n", out[0], out[1], out[2], out[3], out[4],
           out[5], out[6], out[7]);
    printf("hits %d\n", hits);
    return 0;
}
