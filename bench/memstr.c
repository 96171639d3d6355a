/* memory and string functions: memcpy/memset/strlen/strcmp loops over assorted sizes */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10000;
    size_t n = 1 << 16;
    char *a = malloc(n + 64), *b = malloc(n + 64);
    memset(a, 'x', n);
    a[n] = 0;
    unsigned long acc = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t sz = 1; sz <= n; sz = sz * 3 + 1) {
            memcpy(b + (r & 7), a + (sz & 15), sz);
            memset(b, r & 0xff, sz / 2);
            acc += (unsigned char)b[sz / 3];
        }
        memcpy(b, a, n + 1);
        b[n - 1 - (r % 100)] = 'y';
        acc += strlen(a) + (strcmp(a, b) < 0) + (memcmp(a, b, n) < 0);
        for (int k = 0; k < 200; k++) {
            char s1[64], s2[64];
            int l = snprintf(s1, sizeof s1, "key-%d-%d", r, k);
            memcpy(s2, s1, l + 1);
            s2[l - 1] ^= k & 1;
            acc += strlen(s1) + (strcmp(s1, s2) != 0) + (strchr(s1, '-') - s1);
        }
    }
    printf("acc %lu\n", acc);
    return 0;
}
