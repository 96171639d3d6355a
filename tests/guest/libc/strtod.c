#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char *inputs[] = {
    "0", "-0", "1", "0.1", "0.2", "0.3", "1e23", "8.98846567431158e307", "1.7976931348623157e308",
    "1.7976931348623158e308", "1.7976931348623159e308", "2e308", "4.9406564584124654e-324",
    "2.4703282292062327e-324", "2.4703282292062328e-324", "2.2250738585072011e-308",
    "2.2250738585072014e-308", "1e-400", "123456789012345678901234567890", "0x1p-1074",
    "0x1.fffffffffffffp1023", "0x1.8p1", "0X.8P+2", "0x1p", "  +42abc", "-.5e-3", "inf", "-Infinity",
    "nan", "NaN(123)", "-nan", "1e", "1e+", ".e1", "", "   ", "abc", "9007199254740993",
    "9007199254740992.5", "3.14159265358979323846264338327950288419716939937510",
    "0.000000000000000000000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124", "4.35e-1", "69e267", "5e-324",
    "7.2057594037927933e16", "1.448997445238699", "2.2250738585072012e-308", "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792",
};
int main(void) {
    for (unsigned i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        char *end;
        errno = 0;
        double d = strtod(inputs[i], &end);
        int e = errno;
        printf("strtod(\"%.40s\") = %.17g [%a] consumed=%ld erange=%d\n", inputs[i], d, d,
               (long)(end - inputs[i]), e == ERANGE);
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", d);
        double back = strtod(buf, NULL);
        if (d == d && memcmp(&back, &d, sizeof d) != 0) printf("  ROUND TRIP MISMATCH\n");
        errno = 0;
        float f = strtof(inputs[i], &end);
        e = errno;
        printf("  strtof = %.9g [%a] consumed=%ld erange=%d\n", f, f, (long)(end - inputs[i]), e == ERANGE);
    }
    /* round trip of many values through %.17g and %a */
    unsigned long long x = 0x9E3779B97F4A7C15ULL;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        double d;
        memcpy(&d, &x, 8);
        if (d != d) continue;
        char b1[64], b2[64];
        snprintf(b1, sizeof b1, "%.17g", d);
        snprintf(b2, sizeof b2, "%a", d);
        double r1 = strtod(b1, NULL), r2 = strtod(b2, NULL);
        if (memcmp(&r1, &d, 8) || memcmp(&r2, &d, 8)) bad++;
        if (i % 2000 == 0) printf("sample %s %s\n", b1, b2);
    }
    printf("round trip failures: %d\n", bad);
    printf("atof(\"2.5e3\")=%g\n", atof("2.5e3"));
    return 0;
}
