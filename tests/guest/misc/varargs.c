//! opt: -O0
#include <stdarg.h>
#include <stdio.h>
static double mixed(int n, ...) {
    va_list ap;
    va_start(ap, n);
    double s = 0;
    for (int i = 0; i < n; i++) {
        int kind = va_arg(ap, int);
        switch (kind) {
        case 0: s += va_arg(ap, int); break;
        case 1: s += va_arg(ap, double); break;
        case 2: s += (double)va_arg(ap, long long); break;
        case 3: s += va_arg(ap, long double); break;
        default: { const char *p = va_arg(ap, const char *); while (*p) s += *p++; }
        }
    }
    va_end(ap);
    return s;
}
static void vlog(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    char buf[256];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    printf("vsnprintf %d [%s]\n", n, buf);
    vprintf(fmt, copy);
    printf("\n");
    va_end(copy);
}
static void logf_(const char *fmt, ...) { va_list ap; va_start(ap, fmt); vlog(fmt, ap); va_end(ap); }
struct big { long a, b, c; double d; };
static long sum_structs(int n, ...) {
    va_list ap; va_start(ap, n); long s = 0;
    for (int i = 0; i < n; i++) { struct big b = va_arg(ap, struct big); s += b.a + b.b * 2 + b.c * 3 + (long)b.d; }
    va_end(ap); return s;
}
int main(void) {
    printf("mixed %.6f\n", mixed(6, 0, 42, 1, 2.5, 2, 1LL << 40, 3, 1.25L, 4, "abc", 1, -0.5));
    printf("many ints %.1f\n", mixed(12, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 0, 10, 0, 11, 0, 12));
    printf("many doubles %.3f\n", mixed(10, 1, 0.1, 1, 0.2, 1, 0.3, 1, 0.4, 1, 0.5, 1, 0.6, 1, 0.7, 1, 0.8, 1, 0.9, 1, 1.0));
    logf_("%d %s %.2f %c %lld %Lg %x", 7, "str", 3.14159, 'z', -9LL, 2.5L, 0xbeef);
    struct big b1 = {1, 2, 3, 4.5}, b2 = {10, 20, 30, 40.5};
    printf("structs %ld\n", sum_structs(2, b1, b2));
    return 0;
}
