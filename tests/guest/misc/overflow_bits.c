//! link: static-pie
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
int main(void) {
    const long long vals[] = {0, 1, -1, 2, 3, 100, INT_MAX, INT_MIN, LLONG_MAX, LLONG_MIN, 0x7fff, 0x80000000LL, 123456789012345LL};
    const int n = sizeof vals / sizeof *vals;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j += 2) {
            int ri; long long rl; unsigned ru;
            int o1 = __builtin_add_overflow((int)vals[i], (int)vals[j], &ri);
            int o2 = __builtin_mul_overflow(vals[i], vals[j], &rl);
            int o3 = __builtin_sub_overflow((unsigned)vals[i], (unsigned)vals[j], &ru);
            long long rs; int o4 = __builtin_sub_overflow(vals[i], vals[j], &rs);
            printf("%lld,%lld: add32 %d/%d mul64 %d/%lld usub32 %d/%u sub64 %d/%lld\n", vals[i], vals[j], o1, ri, o2, rl, o3, ru, o4, rs);
        }
    const unsigned long long bits[] = {1, 2, 3, 0x80, 0xff, 0x100, 0x8000000000000000ULL, 0xffffffffffffffffULL, 0x123456789abcdef0ULL,
                                       0x00f0000000000000ULL, 0x5555555555555555ULL, 40, 0x10000};
    for (unsigned i = 0; i < sizeof bits / sizeof *bits; i++) {
        volatile unsigned long long v = bits[i];
        volatile unsigned u = (unsigned)v;
        printf("%#llx: clzll %d ctzll %d popcountll %d parityll %d ffsll %d clrsbll %d", v, __builtin_clzll(v), __builtin_ctzll(v),
               __builtin_popcountll(v), __builtin_parityll(v), __builtin_ffsll((long long)v), __builtin_clrsbll((long long)v));
        if (u) printf(" clz %d ctz %d popcount %d", __builtin_clz(u), __builtin_ctz(u), __builtin_popcount(u));
        printf(" bswap64 %#llx bswap32 %#x bswap16 %#x\n", (unsigned long long)__builtin_bswap64(v), __builtin_bswap32(u), __builtin_bswap16((uint16_t)u));
        unsigned long long r = (v << 13) | (v >> 51);
        printf("  rotl13 %#llx rotr7 %#x\n", r, (u >> 7) | (u << 25));
    }
    unsigned long long acc = 0;
    for (unsigned long long x = 1; x < 2000000; x += 37) acc += __builtin_popcountll(x * 0x9E3779B97F4A7C15ULL) + __builtin_ctzll(x) + __builtin_clzll(x);
    printf("bit loop %llu\n", acc);
    return 0;
}
