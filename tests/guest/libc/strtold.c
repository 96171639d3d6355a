//! link: static-pie
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char *inputs[] = {
    "0", "1", "0.1", "-0.1", "1e4932", "1.18973149535723176502e+4932", "1.2e4932", "3.6451995318824746025e-4951",
    "1e-4955", "3.645199531882474602528e-4951", "0x1p-16445", "0x1.fffffffffffffffep16383", "0xap-3", "inf",
    "nan", "-0", "123456789012345678901234567890e-10", "2.7182818284590452353602874713526624977572",
    "1.0000000000000000000542101086242752217", "1.0000000000000000001084202172485504434",
    "18446744073709551615", "18446744073709551617", "1e-320", "4.9406564584124654e-324",
};
int main(void) {
    for (unsigned i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        char *end;
        errno = 0;
        long double v = strtold(inputs[i], &end);
        printf("strtold(\"%s\") = %.21Lg [%La] consumed=%ld erange=%d\n", inputs[i], v, v,
               (long)(end - inputs[i]), errno == ERANGE);
        char buf[80];
        snprintf(buf, sizeof buf, "%.21Lg", v);
        long double back = strtold(buf, NULL);
        if (v == v && back != v) printf("  ROUND TRIP MISMATCH %s\n", buf);
        printf("  as double %.17g, as float %.9g\n", (double)v, (float)v);
    }
    long double acc = 1.0L;
    for (int i = 1; i <= 30; i++) {
        acc *= 3.0L / (long double)i + 0.5L;
        char buf[80];
        snprintf(buf, sizeof buf, "%.25Le", acc);
        long double back = strtold(buf, NULL);
        printf("%2d %s %La %s\n", i, buf, acc, back == acc ? "ok" : "MISMATCH");
    }
    return 0;
}
