//! opt: -O0
#include <alloca.h>
#include <stdio.h>
#include <string.h>
static unsigned long deep(int n, unsigned long acc) {
    volatile char pad[200];
    pad[n % 200] = (char)n;
    if (n == 0) return acc;
    return deep(n - 1, acc * 31 + pad[n % 200]) + 1;
}
static unsigned long vla(int n) {
    char buf[n];
    memset(buf, n % 251, n);
    unsigned long s = 0;
    for (int i = 0; i < n; i += 64) s += (unsigned char)buf[i];
    return s;
}
int main(void) {
    printf("deep recursion %lu\n", deep(20000, 7));
    printf("vla 1MB %lu\n", vla(1 << 20));
    printf("vla 4MB %lu\n", vla(4 << 20));
    char *a = alloca(2 << 20);
    memset(a, 3, 2 << 20);
    unsigned long s = 0;
    for (int i = 0; i < (2 << 20); i += 4096) s += a[i];
    printf("alloca 2MB %lu\n", s);
    return 0;
}
