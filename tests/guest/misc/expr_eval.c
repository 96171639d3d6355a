#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
static const char *p;
static double expr(void);
static void ws(void) { while (isspace((unsigned char)*p)) p++; }
static double prim(void) {
    ws();
    if (*p == '(') { p++; double v = expr(); ws(); if (*p == ')') p++; return v; }
    if (*p == '-') { p++; return -prim(); }
    char *end; double v = strtod(p, &end); p = end; return v;
}
static double power(void) { double b = prim(); ws(); if (*p == '^') { p++; double e = power(); double r = 1; for (int i = 0; i < (int)e; i++) r *= b; return r; } return b; }
static double term(void) { double v = power(); for (;;) { ws(); if (*p == '*') { p++; v *= power(); } else if (*p == '/') { p++; v /= power(); } else return v; } }
static double expr(void) { double v = term(); for (;;) { ws(); if (*p == '+') { p++; v += term(); } else if (*p == '-') { p++; v -= term(); } else return v; } }
int main(void) {
    const char *tests[] = {"1+2*3", "(1+2)*3", "2^10", "2^3^2", "-4 + 10 / 4", "((((1))))", "1/3", "1e308*10", "-(2.5*-4)", "3 - 2 - 1", "7 / 0", "0/0 + 1", "1.5e-3 * 2e3"};
    for (unsigned i = 0; i < sizeof tests / sizeof *tests; i++) { p = tests[i]; double v = expr(); printf("%-16s = %.17g\n", tests[i], v); }
    char big[4096]; int n = 0;
    for (int i = 0; i < 300; i++) n += snprintf(big + n, sizeof big - n, "%s%d*%d", i ? "+" : "", i, i % 7 + 1);
    p = big;
    printf("long expression = %.17g\n", expr());
    return 0;
}
