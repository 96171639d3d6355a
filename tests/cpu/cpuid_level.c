/* Prints the CPUID feature bits, leaf 0xD and XCR0 the test checks against the level. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/auxv.h>

int main(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    printf("leaf1 ecx %08x edx %08x\n", c, d);
    __cpuid_count(7, 0, a, b, c, d);
    printf("leaf7 ebx %08x ecx %08x edx %08x\n", b, c, d);
    __cpuid(0x80000001, a, b, c, d);
    printf("ext1 ecx %08x\n", c);
    __cpuid(0, a, b, c, d);
    if (a >= 0xd) {
        for (unsigned s = 0; s < 3; s++) {
            __cpuid_count(0xd, s, a, b, c, d);
            printf("leafd.%u %08x %08x %08x %08x\n", s, a, b, c, d);
        }
    }
    __cpuid(1, a, b, c, d);
    if (c & (1u << 27)) {
        uint32_t lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        printf("xcr0 %08x%08x\n", hi, lo);
    }
    printf("AT_MINSIGSTKSZ %lu\n", getauxval(AT_MINSIGSTKSZ));
    return 0;
}
