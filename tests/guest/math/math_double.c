#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
static const double xs[] = {0.0, -0.0, 1e-310, 1e-10, 0.1, 0.5, 0.7853981633974483, 1.0, 1.5, 2.0, 2.718281828459045,
    3.141592653589793, 10.0, 22.5, 100.0, 710.0, 1e10, 1e22, 1e300, -0.3, -1.0, -2.5, -100.0, -745.2, INFINITY, -INFINITY, NAN};
#define N (sizeof xs / sizeof *xs)
#define F1(name) do { for (unsigned i = 0; i < N; i++) { double r = name(xs[i]); printf(#name "(%a) = %.17g %a\n", xs[i], r, r); } } while (0)
#define F2(name) do { for (unsigned i = 0; i < N; i += 2) for (unsigned j = 1; j < N; j += 3) { double r = name(xs[i], xs[j]); \
    printf(#name "(%a, %a) = %.17g %a\n", xs[i], xs[j], r, r); } } while (0)
int main(void) {
    F1(exp); F1(exp2); F1(expm1); F1(log); F1(log2); F1(log10); F1(log1p);
    F1(sin); F1(cos); F1(tan); F1(asin); F1(acos); F1(atan); F1(sinh); F1(cosh); F1(tanh);
    F1(asinh); F1(acosh); F1(atanh); F1(sqrt); F1(cbrt); F1(erf); F1(erfc); F1(lgamma); F1(tgamma);
    F1(floor); F1(ceil); F1(round); F1(trunc); F1(rint); F1(fabs); F1(logb); F1(j0); F1(y0);
    F2(pow); F2(atan2); F2(fmod); F2(remainder); F2(hypot); F2(fmin); F2(fmax); F2(fdim); F2(copysign); F2(nextafter);
    for (unsigned i = 0; i < N; i++) {
        int e; double m = frexp(xs[i], &e); double ip; double fp = modf(xs[i], &ip);
        int q; double rq = remquo(xs[i], 0.75, &q);
        printf("frexp(%a)=%a,%d modf=%a,%a ldexp=%a ilogb=%d remquo=%a,%d signbit=%d isnormal=%d fpclass=%d\n", xs[i], m, e, fp, ip,
               ldexp(xs[i], -3), ilogb(xs[i]), rq, q & 7, signbit(xs[i]) != 0, isnormal(xs[i]), fpclassify(xs[i]));
        printf("fma(%a,1.1,-0.3)=%a sincos:", xs[i], fma(xs[i], 1.1, -0.3));
        double s, c; sincos(xs[i], &s, &c); printf(" %a %a\n", s, c);
    }
    /* some sums that rely on exact IEEE double rounding */
    double acc = 0.0;
    for (int i = 1; i <= 100000; i++) acc += 1.0 / ((double)i * i);
    printf("basel partial %.17g\n", acc);
    volatile double a = 0.1, b = 0.2;
    printf("0.1+0.2=%.17g mul=%.17g div=%.17g\n", a + b, a * b, a / b);
    printf("0/0 sign: %d, -(0/0) sign: %d\n", signbit(a * 0 / (b * 0)) != 0, signbit(-(a * 0 / (b * 0))) != 0);
    return 0;
}
