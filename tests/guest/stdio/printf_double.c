//! link: static-pie
#include <float.h>
#include <math.h>
#include <stdio.h>
static const double vals[] = {0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 0.125, 1.0 / 3.0, 2.0 / 3.0, 9.5, 10.5, 0.05, 0.15, 0.25, 0.35,
    1.5e-5, 123.456, 999.9999, 1e15, 1e16, 1e17, 123456789.987654321, 1e21, 1e22, 1e23, 5e-324, 2.2250738585072014e-308,
    DBL_MAX, M_PI, M_E, 1e100, 6.02214076e23, 1.602176634e-19, 0.000123456, 99999.5, INFINITY, -INFINITY, NAN, -NAN};
static const char *fmts[] = {"%f", "%.0f", "%.1f", "%.3f", "%.10f", "%#.0f", "%12.4f", "%-12.2f|", "%+f", "% f", "%012.3f",
    "%e", "%.0e", "%#.0e", "%.3e", "%.15e", "%E", "%+.2E", "%g", "%.0g", "%.1g", "%.3g", "%.10g", "%.17g", "%#g", "%#.3g",
    "%G", "%a", "%A", "%.0a", "%.1a", "%.3a", "%.20a", "%#a", "%+a", "%20a", "%-20a|", "%F"};
int main(void) {
    for (unsigned v = 0; v < sizeof vals / sizeof *vals; v++) {
        printf("value %u:\n", v);
        for (unsigned f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            char buf[400];
            snprintf(buf, sizeof buf, fmts[f], vals[v]);
            printf("  %-10s [%s]\n", fmts[f], buf);
        }
    }
    for (int p = 0; p <= 30; p++) printf("pi %%.%df = %.*f | %%.*e = %.*e | %%.*g = %.*g\n", p, p, M_PI, p, M_PI, p, M_PI);
    for (int e = -30; e <= 30; e += 3) {
        double d = pow(10.0, e) * 1.2345;
        printf("1.2345e%d: %g %e %f %a\n", e, d, d, d, d);
    }
    /* rounding of halfway cases in decimal conversion */
    for (int i = 0; i < 20; i++) {
        double d = i + 0.5;
        printf("%.0f ", d);
    }
    printf("\n");
    for (int i = 0; i < 20; i++) printf("%.2f ", i / 8.0 + 0.005);
    printf("\n");
    printf("float promoted: %f %e %a\n", 0.1f, 3.4e38f, 1e-45f);
    return 0;
}
