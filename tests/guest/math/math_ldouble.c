#include <math.h>
#include <stdio.h>
static const long double xs[] = {0.0L, -0.0L, 1e-4940L, 1e-20L, 0.1L, 0.5L, 1.0L, 1.5L, 2.0L, 2.718281828459045235360287L,
    3.141592653589793238462643L, 10.0L, 100.0L, 11356.0L, 1e300L, 1e4000L, -0.3L, -1.0L, -2.5L, -100.0L, INFINITY, -INFINITY, NAN};
#define N (sizeof xs / sizeof *xs)
#define F1(name) do { for (unsigned i = 0; i < N; i++) { long double r = name(xs[i]); printf(#name "(%La) = %.21Lg %La\n", xs[i], r, r); } } while (0)
#define F2(name) do { for (unsigned i = 0; i < N; i += 2) for (unsigned j = 1; j < N; j += 3) { long double r = name(xs[i], xs[j]); \
    printf(#name "(%La, %La) = %.21Lg %La\n", xs[i], xs[j], r, r); } } while (0)
int main(void) {
    F1(expl); F1(exp2l); F1(expm1l); F1(logl); F1(log2l); F1(log10l); F1(log1pl); F1(sinl); F1(cosl); F1(tanl);
    F1(asinl); F1(acosl); F1(atanl); F1(sinhl); F1(coshl); F1(tanhl); F1(sqrtl); F1(cbrtl); F1(erfl); F1(erfcl);
    F1(lgammal); F1(tgammal); F1(floorl); F1(ceill); F1(roundl); F1(truncl); F1(rintl); F1(fabsl);
    F2(powl); F2(atan2l); F2(fmodl); F2(remainderl); F2(hypotl); F2(nextafterl);
    long double acc = 0.0L;
    for (int i = 1; i <= 10000; i++) acc += 1.0L / ((long double)i * i);
    printf("basel partial long double %.21Lg\n", acc);
    volatile long double a = 1.0L, b = 3.0L;
    printf("1/3 = %La, 2^64+1 = %.0Lf, (ld)0.1 = %La\n", a / b, 18446744073709551616.0L + a, (long double)0.1);
    for (int i = -4; i <= 4; i++) {
        long double v = (long double)i * 1.75L + 0.5L;
        printf("conv %La -> int %d long long %lld unsigned long %lu double %a float %a\n", v, (int)v, (long long)v,
               v >= 0 ? (unsigned long)v : 0UL, (double)v, (double)(float)v);
    }
    printf("(unsigned long)1.8e19L = %lu\n", (unsigned long)1.8e19L);
    return 0;
}
