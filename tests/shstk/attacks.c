/* Control-flow hijacks that shadow stacks must stop. One attack per process:
 *   attacks CASE [catch]
 * CASE is one of
 *   overflow  a stack buffer overflow (memcpy past a 16-byte buffer) replaces the return address
 *   pivot     RSP is pivoted to a fake stack of gadget addresses, then RET starts the chain
 *   pushret   `push addr; ret` used as a jump into a function nobody calls
 *   jop       a saved return address is overwritten in place with a function's entry
 * Without shadow stacks every attack reaches a function that is never called, which prints
 * "ATTACK SUCCEEDED: CASE" and exits with status 66. With shadow stacks the hijacking RET raises
 * #CP(1) (NEAR-RET) and Linux sends SIGSEGV/SEGV_CPERR. With "catch", a SA_SIGINFO handler
 * prints what it received (Linux arch/x86/kernel/cet.c, do_user_cp_fault()) and exits 0. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static const char *attack = "?";

/* The attacker's goal. It realigns the stack itself because it is entered by RET, not CALL. */
__attribute__((noinline, used, force_align_arg_pointer)) static void never_called(void) {
    printf("ATTACK SUCCEEDED: %s\n", attack);
    fflush(stdout);
    _exit(66);
}
__attribute__((noinline, used, force_align_arg_pointer)) static void never_called_with(uint64_t arg) {
    printf("ATTACK SUCCEEDED: %s arg=%#lx\n", attack, (unsigned long)arg);
    fflush(stdout);
    _exit(66);
}

/* ---- overflow: the classic bug, a length never checked against the buffer. */
static char payload[256];

__attribute__((noinline)) static void greet(const char *input, size_t len) {
    char name[16];
    memcpy(name, input, len);
    asm volatile("" : : "r"(name) : "memory");
}

__attribute__((noinline)) static void overflow(void) {
    /* The attacker knows the frame layout of greet(): 16 bytes of buffer, the saved frame
     * pointer, then the return address (-O0, no stack protector). */
    uint64_t target = (uint64_t)never_called;
    memset(payload, 'A', sizeof payload);
    memcpy(payload + 24, &target, 8);
    greet(payload, 32);
    puts("greet returned normally");
}

/* ---- pivot: a ROP chain on a fake stack. pivot_gadget is what an attacker finds in the binary
 * (`mov rdi, rsp; ret` style); pop_rdi_gadget loads an argument for the final target. */
asm(".text\n"
    "pivot_gadget: mov %rdi, %rsp\n ret\n"
    "pop_rdi_gadget: pop %rdi\n ret\n"
    "pushret_fn: lea never_called(%rip), %rax\n push %rax\n ret\n");
extern char pivot_gadget[], pop_rdi_gadget[], pushret_fn[];

static uint64_t fake_area[8192] __attribute__((aligned(16)));

__attribute__((noinline)) static void pivot(void) {
    /* The chain sits high in the area so the functions it reaches have stack below it. */
    uint64_t *chain = &fake_area[8000];
    chain[0] = (uint64_t)pop_rdi_gadget;
    chain[1] = 0x1337;
    chain[2] = (uint64_t)never_called_with;
    chain[3] = 0;
    asm volatile("mov %0, %%rdi\n call pivot_gadget" : : "r"(chain) : "rdi", "memory");
    puts("pivot returned normally");
}

/* ---- pushret: the return instruction used as an indirect jump. */
__attribute__((noinline)) static void pushret(void) {
    asm volatile("call pushret_fn" : : : "rax", "memory");
    puts("pushret returned normally");
}

/* ---- jop: a write-what-where primitive aimed at a saved return address. */
__attribute__((noinline)) static void victim(void) {
    uint64_t *ret_slot = (uint64_t *)__builtin_frame_address(0) + 1;
    *(volatile uint64_t *)ret_slot = (uint64_t)never_called;
}
__attribute__((noinline)) static void jop(void) {
    victim();
    puts("victim returned normally");
}

static void on_segv(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *rip = (const unsigned char *)g[REG_RIP];
    printf("caught %s si_code=%d si_addr=%s trapno=%lld err=%lld at_ret=%d\n",
           sig == SIGSEGV ? "SIGSEGV" : "other", si->si_code, si->si_addr ? "nonzero" : "0",
           (long long)g[REG_TRAPNO], (long long)g[REG_ERR], *rip == 0xc3);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    attack = argv[1];
    if (argc > 2 && !strcmp(argv[2], "catch")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, 0);
    }
    if (!strcmp(attack, "overflow")) overflow();
    else if (!strcmp(attack, "pivot")) pivot();
    else if (!strcmp(attack, "pushret")) pushret();
    else if (!strcmp(attack, "jop")) jop();
    else { puts("unknown attack"); return 2; }
    puts("attack failed without a fault");
    return 0;
}
