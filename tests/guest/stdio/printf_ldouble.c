#include <float.h>
#include <math.h>
#include <stdio.h>
static const long double vals[] = {0.0L, -0.0L, 1.0L, 0.1L, 1.0L / 3.0L, 123.456L, 1e-5L, 1e20L, 1e30L, 1e300L, 1e-300L, 1e4000L,
    1e-4000L, LDBL_MAX, LDBL_MIN, LDBL_TRUE_MIN, LDBL_EPSILON, 3.14159265358979323846264338327950288L, 18446744073709551615.0L,
    0.5L, 2.5L, INFINITY, -INFINITY, NAN};
static const char *fmts[] = {"%Lf", "%.0Lf", "%.3Lf", "%.20Lf", "%Le", "%.0Le", "%.5Le", "%.25Le", "%LE", "%Lg", "%.3Lg",
    "%.21Lg", "%#Lg", "%La", "%LA", "%.0La", "%.4La", "%.16La", "%+25.10Le", "%-30La|"};
int main(void) {
    for (unsigned v = 0; v < sizeof vals / sizeof *vals; v++) {
        printf("value %u:\n", v);
        for (unsigned f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            char buf[200];
            int r = snprintf(buf, sizeof buf, fmts[f], vals[v]);
            printf("  %-10s [%s] %d\n", fmts[f], buf, r);
        }
    }
    long double x = 1.0L;
    for (int i = 0; i < 70; i++) {
        printf("2^-%d = %.30Le\n", i, x);
        x /= 2.0L;
    }
    return 0;
}
