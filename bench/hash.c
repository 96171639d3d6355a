/* integer hashing: FNV-1a and xorshift over a buffer */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 250;
    size_t n = 1 << 20;
    uint8_t *buf = malloc(n);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; buf[i] = (uint8_t)x; }
    uint64_t h = 1469598103934665603ULL, acc = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) h = (h ^ buf[i]) * 1099511628211ULL;
        x ^= h;
        for (size_t i = 0; i < n; i += 8) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; acc += x ^ *(uint64_t *)(buf + i); }
    }
    printf("%016llx %016llx\n", (unsigned long long)h, (unsigned long long)acc);
    return 0;
}
