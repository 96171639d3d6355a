/* Two call sites that break shadow stacks the way this (non-CET) glibc's longjmp does: longjmp
 * leaves deep()'s return addresses on the shadow stack, so the next RET of the function that
 * called setjmp does not match. Natively (no shadow stacks) it prints sums and exits 3. */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf jb;

__attribute__((noinline)) static void deep(int n) {
    if (n == 0) longjmp(jb, 1);
    deep(n - 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int site_a(void) {
    if (setjmp(jb) == 0) deep(3);
    return 7;
}

__attribute__((noinline)) static int site_b(void) {
    if (setjmp(jb) == 0) deep(5);
    return 100;
}

int main(void) {
    int sum = 0;
    for (int i = 0; i < 5; i++) sum += site_a();
    sum += site_b();
    printf("sum=%d\n", sum);
    return 3;
}
