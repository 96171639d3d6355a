/* SSSE3's MMX-register forms (0F 38 00..0B, 1C..1E and PALIGNR 0F 3A 0F on mm operands),
 * one per run: `ssse3_mmx N` executes form N (0..15 with a register source, 16..31 the same
 * with a memory source) and prints its result. On an x86-64-v2 or later CPU they run; a
 * baseline x86-64 CPU (no SSSE3, Intel SDM Vol. 2 "#UD If CPUID.01H:ECX.SSSE3[bit 9] = 0")
 * must raise #UD: SIGILL, and under cetbox one diagnostic line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define REG(op) __asm__ volatile("movq %1, %%mm1\n\t" op " %%mm1, %%mm0\n\tmovq %%mm0, %0\n\temms" \
                                 : "+r"(a) : "r"(b) : "mm0", "mm1")
#define MEM(op) __asm__ volatile("movq %0, %%mm0\n\t" op " %1, %%mm0\n\tmovq %%mm0, %0\n\temms" \
                                 : "+r"(a) : "m"(b) : "mm0")

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 0;
    volatile uint64_t init = 0x8070605040302010ull;
    uint64_t a = init, b = 0x0102030405060708ull;
    __asm__ volatile("movq %0, %%mm0" : : "r"(a) : "mm0");
    switch (n) {
    case 0: REG("pshufb"); break;
    case 1: REG("phaddw"); break;
    case 2: REG("phaddd"); break;
    case 3: REG("phaddsw"); break;
    case 4: REG("pmaddubsw"); break;
    case 5: REG("phsubw"); break;
    case 6: REG("phsubd"); break;
    case 7: REG("phsubsw"); break;
    case 8: REG("psignb"); break;
    case 9: REG("psignw"); break;
    case 10: REG("psignd"); break;
    case 11: REG("pmulhrsw"); break;
    case 12: REG("pabsb"); break;
    case 13: REG("pabsw"); break;
    case 14: REG("pabsd"); break;
    case 15: REG("palignr $3,"); break;
    case 16: MEM("pshufb"); break;
    case 17: MEM("phaddw"); break;
    case 18: MEM("phaddd"); break;
    case 19: MEM("phaddsw"); break;
    case 20: MEM("pmaddubsw"); break;
    case 21: MEM("phsubw"); break;
    case 22: MEM("phsubd"); break;
    case 23: MEM("phsubsw"); break;
    case 24: MEM("psignb"); break;
    case 25: MEM("psignw"); break;
    case 26: MEM("psignd"); break;
    case 27: MEM("pmulhrsw"); break;
    case 28: MEM("pabsb"); break;
    case 29: MEM("pabsw"); break;
    case 30: MEM("pabsd"); break;
    case 31: MEM("palignr $3,"); break;
    default: return 2;
    }
    printf("form %d: %016llx\n", n, (unsigned long long)a);
    return 0;
}
