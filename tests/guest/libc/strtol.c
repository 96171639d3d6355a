//! opt: -O0
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
static const char *in[] = {"0", "-0", "42", "  -17xyz", "+99", "0x1f", "0X1F", "017", "0b101", "z", "Zz",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "-1", "   ", "", "0x", "ffffffffffffffffff", "1_000", "  +0x7fffffffffffffff"};
static const int bases[] = {0, 2, 8, 10, 16, 36};
int main(void) {
    for (unsigned i = 0; i < sizeof in / sizeof *in; i++) {
        for (unsigned b = 0; b < sizeof bases / sizeof *bases; b++) {
            char *end;
            errno = 0;
            long v = strtol(in[i], &end, bases[b]);
            int e1 = errno;
            errno = 0;
            unsigned long u = strtoul(in[i], &end, bases[b]);
            int e2 = errno;
            printf("\"%s\" base %d: strtol=%ld(%d) strtoul=%lu(%d) end=%ld\n", in[i], bases[b], v, e1, u, e2, (long)(end - in[i]));
        }
        errno = 0;
        long long ll = strtoll(in[i], NULL, 0);
        intmax_t im = strtoimax(in[i], NULL, 0);
        printf("  strtoll=%lld strtoimax=%jd atoi=%d atol=%ld\n", ll, im, atoi(in[i]), atol(in[i]));
    }
    char *end;
    errno = 0;
    printf("bad base: %ld errno=%d\n", strtol("10", &end, 1), errno);
    printf("labs=%ld llabs=%lld div=%d/%d ldiv=%ld/%ld\n", labs(-5L), llabs(LLONG_MIN + 1), div(-7, 2).quot, div(-7, 2).rem,
           ldiv(7L, -2L).quot, ldiv(7L, -2L).rem);
    return 0;
}
