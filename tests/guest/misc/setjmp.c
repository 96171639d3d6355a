#include <setjmp.h>
#include <stdio.h>
static jmp_buf outer, inner;
static int trail[64], tn;
__attribute__((noinline)) static void dive(int n, int target) {
    volatile char pad[64];
    pad[0] = (char)n;
    trail[tn++] = n;
    if (n == target) longjmp(outer, n + pad[0]);
    dive(n + 1, target);
}
__attribute__((noinline)) static int nested(int level) {
    jmp_buf here;
    int r = setjmp(here);
    if (r == 0) {
        if (level < 5) {
            int v = nested(level + 1);
            return v + level;
        }
        longjmp(here, 100);
    }
    return r + level;
}
static jmp_buf bufs[8];
int main(void) {
    for (int t = 1; t <= 40; t += 13) {
        tn = 0;
        int r = setjmp(outer);
        if (r == 0) dive(0, t);
        else printf("longjmp from depth %d returned %d after %d frames\n", t, r, tn);
    }
    printf("nested setjmp result %d\n", nested(0));
    volatile int count = 0;
    if (setjmp(inner) < 3) { count++; longjmp(inner, count); }
    printf("loop via longjmp count %d\n", count);
    int z = setjmp(inner);
    if (z == 0) longjmp(inner, 0);
    printf("longjmp(…, 0) yields %d\n", z);
    volatile int i;
    for (i = 0; i < 8; i++) if (setjmp(bufs[i]) != 0) break;
    printf("buffers set %d\n", i);
    sigjmp_buf sj;
    volatile int k = 0;
    if (sigsetjmp(sj, 0) == 0) { k = 1; siglongjmp(sj, 5); }
    printf("sigsetjmp without mask k=%d\n", k);
    return 0;
}
