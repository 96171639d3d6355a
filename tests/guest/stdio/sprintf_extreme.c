//! opt: -O0
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static unsigned long sum(const char *s) { unsigned long h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
int main(void) {
    static char buf[20000];
    int n;
    n = sprintf(buf, "%f", DBL_MAX); printf("DBL_MAX %%f: len %d\n%s\n", n, buf);
    n = sprintf(buf, "%.1074f", 5e-324); printf("denorm_min %%.1074f: len %d hash %lu tail %s\n", n, sum(buf), buf + n - 40);
    n = sprintf(buf, "%.1100e", 5e-324); printf("denorm_min %%.1100e: len %d hash %lu\n", n, sum(buf));
    n = sprintf(buf, "%.767e", 4.9406564584124654e-324); printf("exact digits: %.60s...%s\n", buf, buf + n - 30);
    n = sprintf(buf, "%Lf", LDBL_MAX); printf("LDBL_MAX %%Lf: len %d hash %lu head %.50s\n", n, sum(buf), buf);
    n = sprintf(buf, "%.16450Lf", LDBL_TRUE_MIN); printf("LDBL_TRUE_MIN: len %d hash %lu\n", n, sum(buf));
    n = sprintf(buf, "%.60Lg", LDBL_MIN); printf("LDBL_MIN %%.60Lg: %s\n", buf);
    n = sprintf(buf, "%.5000f", 1.0 / 3.0); printf("1/3 %%.5000f: len %d hash %lu\n", n, sum(buf));
    n = sprintf(buf, "%5000d|", 7); printf("wide field: len %d last %s\n", n, buf + n - 3);
    n = sprintf(buf, "%.4000d", -7); printf("long precision: len %d hash %lu\n", n, sum(buf));
    for (int e = 300; e <= 308; e++) {
        char fmt[16];
        double d = strtod("1e300", NULL);
        for (int i = 300; i < e; i++) d *= 10;
        snprintf(fmt, sizeof fmt, "%%.%de", 40);
        printf("1e%d: %.40e / %.0f hash %lu\n", e, d, d, (sprintf(buf, "%.0f", d), sum(buf)));
    }
    char small[8];
    for (int i = 0; i <= 8; i++) {
        memset(small, 'X', sizeof small);
        n = snprintf(small, (size_t)i, "%d", 123456789);
        printf("snprintf size %d -> ret %d [%.*s]\n", i, n, i ? (int)strnlen(small, sizeof small) : 0, small);
    }
    return 0;
}
