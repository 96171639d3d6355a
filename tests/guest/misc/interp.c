//! link: static-pie
/* a small stack-machine interpreter (computed goto) running programs built by a tiny assembler */
#include <stdio.h>
#include <string.h>
enum { PUSH, ADD, SUB, MUL, DIV, MOD, DUP, SWAP, OVER, DROP, JMP, JZ, JNZ, LT, LOAD, STORE, PRINT, CALL, RET, HALT };
static long code[512];
static int pc_emit;
static int labels[32];
static int fix_at[64], fix_label[64], nfix;
static void e(long v) { code[pc_emit++] = v; }
static void ej(int op, int label) { e(op); fix_at[nfix] = pc_emit; fix_label[nfix++] = label; e(0); }
static void L(int label) { labels[label] = pc_emit; }
static void link_code(void) { for (int i = 0; i < nfix; i++) code[fix_at[i]] = labels[fix_label[i]]; nfix = 0; }
static long run(const long *c, long *mem) {
    static void *tbl[] = {&&push, &&add, &&sub, &&mul, &&div_, &&mod, &&dup, &&swap, &&over, &&drop, &&jmp, &&jz, &&jnz, &&lt, &&load, &&store, &&print, &&call, &&ret, &&halt};
    long st[256]; int sp = 0; long rs[64]; int rp = 0; long pc = 0; long steps = 0;
#define NEXT do { steps++; goto *tbl[c[pc++]]; } while (0)
    NEXT;
push: st[sp++] = c[pc++]; NEXT;
add: sp--; st[sp - 1] += st[sp]; NEXT;
sub: sp--; st[sp - 1] -= st[sp]; NEXT;
mul: sp--; st[sp - 1] *= st[sp]; NEXT;
div_: sp--; st[sp - 1] /= st[sp]; NEXT;
mod: sp--; st[sp - 1] %= st[sp]; NEXT;
dup: st[sp] = st[sp - 1]; sp++; NEXT;
swap: { long t = st[sp - 1]; st[sp - 1] = st[sp - 2]; st[sp - 2] = t; } NEXT;
over: st[sp] = st[sp - 2]; sp++; NEXT;
drop: sp--; NEXT;
jmp: pc = c[pc]; NEXT;
jz: if (st[--sp] == 0) pc = c[pc]; else pc++; NEXT;
jnz: if (st[--sp] != 0) pc = c[pc]; else pc++; NEXT;
lt: sp--; st[sp - 1] = st[sp - 1] < st[sp]; NEXT;
load: st[sp - 1] = mem[st[sp - 1]]; NEXT;
store: sp -= 2; mem[st[sp + 1]] = st[sp]; NEXT;
print: printf("  out %ld\n", st[sp - 1]); sp--; NEXT;
call: rs[rp++] = pc + 1; pc = c[pc]; NEXT;
ret: pc = rs[--rp]; NEXT;
halt:
    printf("  steps %ld depth %d\n", steps, sp);
    return sp ? st[sp - 1] : 0;
}
int main(void) {
    long mem[16] = {0};
    /* mem[0]=i, mem[1]=acc: acc = sum(i*i mod 1000003) for i < 50000 */
    pc_emit = 0;
    e(PUSH); e(0); e(PUSH); e(0); e(STORE); e(PUSH); e(0); e(PUSH); e(1); e(STORE);
    L(0); e(PUSH); e(0); e(LOAD); e(PUSH); e(50000); e(LT); ej(JZ, 1);
    e(PUSH); e(0); e(LOAD); e(DUP); e(MUL); e(PUSH); e(1); e(LOAD); e(ADD); e(PUSH); e(1000003); e(MOD); e(PUSH); e(1); e(STORE);
    e(PUSH); e(0); e(LOAD); e(PUSH); e(1); e(ADD); e(PUSH); e(0); e(STORE); ej(JMP, 0);
    L(1); e(PUSH); e(1); e(LOAD); e(DUP); e(PRINT); e(HALT);
    link_code();
    printf("sumsq = %ld\n", run(code, mem));
    /* countdown from 5000, calling a print subroutine every 1000 */
    pc_emit = 0;
    e(PUSH); e(5000);
    L(2); e(DUP); e(PUSH); e(1000); e(MOD); ej(JNZ, 3); e(DUP); ej(CALL, 5);
    L(3); e(PUSH); e(1); e(SUB); e(DUP); ej(JNZ, 2); e(DROP); e(PUSH); e(42); e(HALT);
    L(5); e(PRINT); e(RET);
    link_code();
    printf("countdown = %ld\n", run(code, mem));
    /* recursive factorial-like: collatz steps for n in 1..3000, max */
    pc_emit = 0;
    /* mem[2]=n, mem[3]=x, mem[4]=steps, mem[5]=best, mem[6]=bestn */
    e(PUSH); e(1); e(PUSH); e(2); e(STORE);
    L(6); e(PUSH); e(2); e(LOAD); e(PUSH); e(3001); e(LT); ej(JZ, 10);
    e(PUSH); e(2); e(LOAD); e(PUSH); e(3); e(STORE); e(PUSH); e(0); e(PUSH); e(4); e(STORE);
    L(7); e(PUSH); e(3); e(LOAD); e(PUSH); e(1); e(SWAP); e(LT); ej(JZ, 9); /* while 1 < x */
    e(PUSH); e(3); e(LOAD); e(PUSH); e(2); e(MOD); ej(JZ, 8);
    e(PUSH); e(3); e(LOAD); e(PUSH); e(3); e(MUL); e(PUSH); e(1); e(ADD); e(PUSH); e(3); e(STORE);
    e(PUSH); e(4); e(LOAD); e(PUSH); e(1); e(ADD); e(PUSH); e(4); e(STORE); ej(JMP, 7);
    L(8); e(PUSH); e(3); e(LOAD); e(PUSH); e(2); e(DIV); e(PUSH); e(3); e(STORE);
    e(PUSH); e(4); e(LOAD); e(PUSH); e(1); e(ADD); e(PUSH); e(4); e(STORE); ej(JMP, 7);
    L(9); e(PUSH); e(5); e(LOAD); e(PUSH); e(4); e(LOAD); e(LT); ej(JZ, 11);
    e(PUSH); e(4); e(LOAD); e(PUSH); e(5); e(STORE); e(PUSH); e(2); e(LOAD); e(PUSH); e(6); e(STORE);
    L(11); e(PUSH); e(2); e(LOAD); e(PUSH); e(1); e(ADD); e(PUSH); e(2); e(STORE); ej(JMP, 6);
    L(10); e(PUSH); e(6); e(LOAD); e(PRINT); e(PUSH); e(5); e(LOAD); e(HALT);
    link_code();
    printf("collatz best steps = %ld\n", run(code, mem));
    return 0;
}
