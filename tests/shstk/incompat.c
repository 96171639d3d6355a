/* Patterns that are correct without shadow stacks but incompatible with them (a near RET must
 * match the shadow stack: Intel SDM Vol. 2B, RET; glibc sysdeps/x86_64/__longjmp.S pops the
 * abandoned entries only when built CET-enabled). One case per process:
 *   incompat CASE
 *   longjmp    glibc 2.36's longjmp does not touch SSP; the function that called setjmp then
 *              returns, and its RET meets the stale entries of the abandoned frames → #CP(1)
 *   switch     a hand-written context switch that swaps RSP between two stacks and RETs into the
 *              other context, without RSTORSSP → #CP(1) at the first RET on the other stack
 *   stackcall  control: RSP moved to another stack, functions CALLed and RETurned there, RSP moved
 *              back. Calls and returns stay paired, so this one is compatible.
 * Every case prints the same lines natively and, with --on-violation=continue, under cetbox. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- longjmp */
static jmp_buf jb;
static int trail[16], tn;

__attribute__((noinline)) static void deeper(int n) {
    trail[tn++] = n;
    if (n == 3) longjmp(jb, 7);
    deeper(n + 1);
    asm volatile("" ::: "memory");
}
__attribute__((noinline)) static int uses_setjmp(void) {
    volatile int r = setjmp(jb);
    if (r == 0) {
        deeper(0);
        return -1;
    }
    return r * 10; /* this RET pops a stale entry when longjmp left SSP deep */
}
static void do_longjmp(void) {
    int r = uses_setjmp();
    printf("uses_setjmp returned %d after %d frames\n", r, tn);
}

/* ---- switch: a minimal cooperative context switch in the style of many coroutine libraries
 * (save callee-saved registers, swap RSP, restore, RET). */
asm(".text\n"
    "sw_switch:\n" /* void sw_switch(uint64_t *save_sp, uint64_t new_sp) */
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n mov %rsi, %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    " ret\n");
void sw_switch(uint64_t *save_sp, uint64_t new_sp);

static uint64_t main_sp, task_sp;
static int task_steps;

__attribute__((noinline)) static int task_work(int n) { return n < 2 ? n : task_work(n - 1) + task_work(n - 2); }

/* Entered by RET from sw_switch, never returns. Realigns because it is not entered by CALL. */
__attribute__((noinline, force_align_arg_pointer)) static void task_entry(void) {
    for (;;) {
        task_steps++;
        printf("task step %d: fib=%d\n", task_steps, task_work(task_steps + 10));
        sw_switch(&task_sp, main_sp);
    }
}

static void do_switch(void) {
    size_t size = 1 << 16;
    char *stk = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t *sp = (uint64_t *)(stk + size) - 8;
    sp[6] = (uint64_t)task_entry; /* above six zeroed register slots: where sw_switch RETs to */
    for (int i = 0; i < 6; i++) sp[i] = 0;
    task_sp = (uint64_t)sp;
    for (int i = 0; i < 3; i++) {
        sw_switch(&main_sp, task_sp);
        printf("main: back from task (%d steps)\n", task_steps);
    }
}

/* ---- stackcall */
__attribute__((noinline, used)) static uint64_t on_other_stack(uint64_t n) {
    char here;
    printf("running on the other stack: %d, fib=%d\n", (uint64_t)&here < n && (uint64_t)&here > n - 4096,
           task_work(15));
    return n;
}
static void do_stackcall(void) {
    size_t size = 1 << 16;
    char *stk = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t top = (uint64_t)(stk + size), r;
    asm volatile("mov %%rsp, %%rbx\n mov %1, %%rsp\n mov %1, %%rdi\n call on_other_stack\n mov %%rbx, %%rsp"
                 : "=a"(r) : "r"(top - 64) : "rbx", "rdi", "rsi", "rdx", "rcx", "r8", "r9", "r10", "r11", "memory");
    printf("back on the main stack: %d\n", r == top - 64);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    if (!strcmp(argv[1], "longjmp")) do_longjmp();
    else if (!strcmp(argv[1], "switch")) do_switch();
    else if (!strcmp(argv[1], "stackcall")) do_stackcall();
    else { puts("unknown case"); return 2; }
    puts("done");
    return 0;
}
