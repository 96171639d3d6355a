/* A tiny JIT: machine code written into memory at run time, executed, rewritten in place and
 * executed again, moved with mremap, and regenerated after munmap/mmap at the same address.
 * The emulator's decoded-code cache must notice every change. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*fn_t)(int);

/* mov eax, edi ; add eax, imm32 ; ret */
static void emit_add(unsigned char *p, int imm) {
    unsigned char code[] = {0x89, 0xf8, 0x05, 0, 0, 0, 0, 0xc3};
    memcpy(code + 3, &imm, 4);
    memcpy(p, code, sizeof code);
}

/* A loop the JIT patches while it runs: the function at p calls itself through a patched
 * immediate count. (imul eax, edi, imm32 ; ret) */
static void emit_mul(unsigned char *p, int imm) {
    unsigned char code[] = {0x69, 0xc7, 0, 0, 0, 0, 0xc3};
    memcpy(code + 2, &imm, 4);
    memcpy(p, code, sizeof code);
}

int main(void) {
    unsigned char *p = mmap(0, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    fn_t f = (fn_t)p;
    int total = 0;
    for (int i = 0; i < 50; i++) {
        emit_add(p, i); /* rewrite the same bytes every iteration */
        total += f(1000);
    }
    printf("rewritten in place: %d\n", total);

    /* Patch only the immediate of code that has already run. */
    emit_mul(p, 3);
    int a = f(7);
    p[2] = 5;
    int b = f(7);
    printf("patched immediate: %d %d\n", a, b);

    /* W^X style: RW to write, RX to run. */
    unsigned char *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    emit_add(q, 11);
    mprotect(q, 4096, PROT_READ | PROT_EXEC);
    int c = ((fn_t)q)(1);
    mprotect(q, 4096, PROT_READ | PROT_WRITE);
    emit_add(q, 22);
    mprotect(q, 4096, PROT_READ | PROT_EXEC);
    int d = ((fn_t)q)(1);
    printf("w^x: %d %d\n", c, d);

    /* Unmap and map again at the same address with different code. */
    munmap(q, 4096);
    unsigned char *r = mmap(q, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    emit_mul(r, 9);
    printf("remapped: %d same_address=%d\n", ((fn_t)r)(5), r == q);

    /* Code that moves with mremap. */
    emit_add(p + 4096, 40);
    unsigned char *m = mremap(p, 8192, 16384, MREMAP_MAYMOVE);
    printf("after mremap: %d\n", ((fn_t)(m + 4096))(2));

    /* Self-modifying code: the function rewrites its own immediate, then runs it again. */
    unsigned char *s = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* mov byte [rip+N], 0x2a ; mov eax, 1 ; ret   -- N points at the 1's immediate */
    unsigned char smc[] = {0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0x2a, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
    smc[2] = 1; /* rel32 from the end of this 7-byte instruction to the imm32 byte at +8 */
    memcpy(s, smc, sizeof smc);
    int first = ((int (*)(void))s)();
    int second = ((int (*)(void))s)();
    printf("self-modifying: %d %d\n", first, second);
    return 0;
}
