//! link: static-pie
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned long fnv(const unsigned char *p, size_t n) { unsigned long h = 1469598103934665603UL; for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211UL; return h; }
int main(void) {
    enum { SZ = 4096 };
    unsigned char *src = malloc(SZ + 64), *dst = malloc(SZ + 64);
    for (int i = 0; i < SZ + 64; i++) src[i] = (unsigned char)(i * 7 + (i >> 8));
    unsigned long total = 0;
    static const int lens[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 1000, 2048, 4000};
    for (unsigned li = 0; li < sizeof lens / sizeof *lens; li++) {
        int n = lens[li];
        for (int sa = 0; sa < 16; sa += 3)
            for (int da = 0; da < 16; da += 5) {
                memset(dst, 0xEE, SZ + 64);
                memcpy(dst + da, src + sa, n);
                total = total * 3 + fnv(dst, SZ + 64);
                total += memcmp(dst + da, src + sa, n) == 0;
                memset(dst + da, sa * 17, n);
                total = total * 3 + fnv(dst, SZ + 64);
            }
        /* overlapping moves both ways */
        memcpy(dst, src, SZ);
        memmove(dst + 3, dst, n);
        total = total * 7 + fnv(dst, SZ);
        memmove(dst, dst + 5, n);
        total = total * 7 + fnv(dst, SZ);
        if (n > 0) {
            memcpy(dst, src, n);
            dst[n - 1] ^= 1;
            int c = memcmp(dst, src, n);
            total = total * 5 + (c > 0 ? 2 : c < 0 ? 1 : 0);
        }
        printf("len %4d: %016lx\n", n, total);
    }
    /* memset with every byte value, bzero, memccpy, mempcpy */
    for (int v = 0; v < 256; v += 51) {
        memset(dst, v, 300);
        printf("memset %3d sum %lu\n", v, fnv(dst, 300));
    }
    char out[32];
    char *e = memccpy(out, "copy until: here", ':', sizeof out);
    printf("memccpy copied %ld bytes\n", e ? e - out : -1L);
    free(src); free(dst);
    return 0;
}
