/* Two call sites that break shadow stacks the way a longjmp not built for them does: the jump
 * leaves deep()'s return addresses on the shadow stack, so the next RET of the function that
 * called setjmp does not match. Natively (no shadow stacks) it prints sums and exits 3.
 *
 * The setjmp/longjmp pair is written here (restoring the stack pointer and jumping, without
 * touching the shadow stack, as glibc's does when built without --enable-cet), so the
 * expected reports do not depend on how the distribution built its C library. */
#include <stdio.h>

typedef unsigned long jump_buffer[8];
__attribute__((returns_twice)) int plain_setjmp(jump_buffer b);
/* Not declared noreturn, so the call in deep() is followed by deep()'s own code and its
 * return address (the stale shadow-stack entry) symbolizes as deep. */
void plain_longjmp(jump_buffer b, int v);
__asm__(".text\n"
        ".globl plain_setjmp\n"
        ".type plain_setjmp,@function\n"
        "plain_setjmp:\n"
        "  mov %rbx, 0(%rdi)\n"
        "  mov %rbp, 8(%rdi)\n"
        "  mov %r12, 16(%rdi)\n"
        "  mov %r13, 24(%rdi)\n"
        "  mov %r14, 32(%rdi)\n"
        "  mov %r15, 40(%rdi)\n"
        "  lea 8(%rsp), %rdx\n"
        "  mov %rdx, 48(%rdi)\n"
        "  mov (%rsp), %rdx\n"
        "  mov %rdx, 56(%rdi)\n"
        "  xor %eax, %eax\n"
        "  ret\n"
        ".size plain_setjmp, .-plain_setjmp\n"
        ".globl plain_longjmp\n"
        ".type plain_longjmp,@function\n"
        "plain_longjmp:\n"
        "  mov 0(%rdi), %rbx\n"
        "  mov 8(%rdi), %rbp\n"
        "  mov 16(%rdi), %r12\n"
        "  mov 24(%rdi), %r13\n"
        "  mov 32(%rdi), %r14\n"
        "  mov 40(%rdi), %r15\n"
        "  mov 48(%rdi), %rsp\n"
        "  mov %esi, %eax\n"
        "  test %eax, %eax\n"
        "  jnz 1f\n"
        "  inc %eax\n"
        "1: jmp *56(%rdi)\n"
        ".size plain_longjmp, .-plain_longjmp\n");

static jump_buffer jb;

__attribute__((noinline)) static void deep(int n) {
    if (n == 0) plain_longjmp(jb, 1);
    deep(n - 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int site_a(void) {
    if (plain_setjmp(jb) == 0) deep(3);
    return 7;
}

__attribute__((noinline)) static int site_b(void) {
    if (plain_setjmp(jb) == 0) deep(5);
    return 100;
}

int main(void) {
    int sum = 0;
    for (int i = 0; i < 5; i++) sum += site_a();
    sum += site_b();
    printf("sum=%d\n", sum);
    return 3;
}
