#include <limits.h>
#include <stdio.h>
#include <stdint.h>
typedef unsigned __int128 u128;
typedef __int128 i128;
static void p128(const char *what, u128 v) {
    char buf[50]; int i = 49; buf[i] = 0;
    do { buf[--i] = (char)('0' + (int)(v % 10)); v /= 10; } while (v);
    printf("%s %s\n", what, buf + i);
}
static void ps128(const char *what, i128 v) {
    if (v < 0) { printf("%s -", what); p128("", -(u128)v); } else p128(what, (u128)v);
}
int main(void) {
    volatile u128 a = ((u128)0xfedcba9876543210ULL << 64) | 0x0123456789abcdefULL;
    volatile u128 b = 0x1234567890abcdefULL;
    p128("a", a); p128("b", b);
    p128("a*b", a * b); p128("a/b", a / b); p128("a%b", a % b); p128("a+b", a + b); p128("a-b", a - b);
    p128("a>>67", a >> 67); p128("a<<13", a << 13); p128("~a", ~a);
    volatile i128 m = -(i128)a / 3, n = 7;
    ps128("m", m); ps128("m/7", m / n); ps128("m%7", m % n); ps128("m>>5", m >> 5); ps128("-m*m/..", (-m) / (m / 1000000007));
    u128 f = 1;
    for (int i = 1; i <= 34; i++) { f *= (u128)i; }
    p128("34!", f);
    /* 64-bit edge cases */
    volatile long long x = LLONG_MIN, y = -1, z = 3;
    printf("LLONG_MIN %% -1 avoided: %lld, LLONG_MIN/3 %lld rem %lld\n", x % z == 0 ? 0LL : x % z, x / z, x % z);
    volatile unsigned long ux = ULONG_MAX, uy = 0x100000001UL;
    printf("udiv %lu %lu\n", ux / uy, ux % uy);
    volatile int ia = INT_MIN, ib = -7, ic = 7;
    printf("int div: %d %d %d %d\n", ia / ib, ia % ib, ib / 2, ib % 2);
    printf("shifts: %d %u %lld %d\n", ib >> 1, (unsigned)ib >> 1, (long long)x >> 63, ic << 28);
    volatile int8_t s8 = -128; volatile uint8_t u8 = 200; volatile int16_t s16 = -32768;
    printf("narrow: %d %d %d %d %u\n", (int8_t)(s8 - 1), (uint8_t)(u8 + 100), (int16_t)(s16 - 1), s8 * s8, (unsigned)(u8 * u8));
    (void)y;
    /* multiply high parts */
    uint64_t h = (uint64_t)(((u128)0xffffffffffffffffULL * 0xfffffffffffffffeULL) >> 64);
    int64_t sh = (int64_t)(((i128)(int64_t)-5 * (i128)INT64_MAX) >> 64);
    printf("mulhi %llu smulhi %lld\n", (unsigned long long)h, (long long)sh);
    return 0;
}
