//! link: static-pie
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
//! cflags: -frounding-math
static void show(const char *what) {
    int f = fetestexcept(FE_ALL_EXCEPT);
    printf("%-28s:%s%s%s%s%s%s\n", what, f & FE_INVALID ? " INVALID" : "", f & FE_DIVBYZERO ? " DIVBYZERO" : "",
           f & FE_OVERFLOW ? " OVERFLOW" : "", f & FE_UNDERFLOW ? " UNDERFLOW" : "", f & FE_INEXACT ? " INEXACT" : "",
           f ? "" : " none");
    feclearexcept(FE_ALL_EXCEPT);
}
int main(void) {
    volatile double zero = 0.0, one = 1.0, big = DBL_MAX, tiny = DBL_MIN, three = 3.0, neg = -1.0;
    volatile double r;
    volatile float fz = 0.0f, fbig = FLT_MAX, fone = 1.0f;
    volatile float fr;
    volatile long double lz = 0.0L, lone = 1.0L, lbig = LDBL_MAX;
    volatile long double lr;
    volatile int ir;
    feclearexcept(FE_ALL_EXCEPT);
    show("start");
    r = one / zero; show("1/0");
    r = zero / zero; show("0/0");
    r = big * 2.0; show("DBL_MAX*2");
    r = tiny / 1e10; show("DBL_MIN/1e10");
    r = one / three; show("1/3");
    r = one + one; show("1+1");
    r = sqrt(neg); show("sqrt(-1)");
    r = log(zero); show("log(0)");
    r = exp(1000.0 * one); show("exp(1000)");
    r = exp(-1000.0 * one); show("exp(-1000)");
    ir = (int)(big); show("(int)DBL_MAX");
    ir = (int)(one * 2.5); show("(int)2.5");
    fr = fone / fz; show("float 1/0");
    fr = fbig * 2.0f; show("float FLT_MAX*2");
    fr = (float)(big); show("(float)DBL_MAX");
    fr = (float)(one / three); show("(float)(1/3)");
    lr = lone / lz; show("ld 1/0");
    lr = lz / lz; show("ld 0/0");
    lr = lbig * 2.0L; show("ld LDBL_MAX*2");
    lr = lone / 3.0L; show("ld 1/3");
    lr = sqrtl(-lone); show("ld sqrt(-1)");
    r = NAN; r = r + one; show("qNaN+1");
    r = (double)(zero < NAN); show("0 < NaN");
    r = (double)__builtin_isless(zero, NAN); show("isless(0,NaN)");
    feraiseexcept(FE_OVERFLOW | FE_INEXACT); show("feraiseexcept(OV|INEXACT)");
    fexcept_t saved;
    feraiseexcept(FE_DIVBYZERO);
    fegetexceptflag(&saved, FE_ALL_EXCEPT);
    feclearexcept(FE_ALL_EXCEPT);
    fesetexceptflag(&saved, FE_ALL_EXCEPT); show("restored exceptflag");
    fenv_t env;
    fesetround(FE_UPWARD);
    fegetenv(&env);
    fesetround(FE_DOWNWARD);
    fesetenv(&env);
    printf("round after fesetenv upward: %d\n", fegetround() == FE_UPWARD);
    feholdexcept(&env);
    r = one / zero;
    printf("held exceptions raised: %d\n", fetestexcept(FE_DIVBYZERO) != 0);
    feupdateenv(&env); show("after feupdateenv");
    fesetround(FE_TONEAREST);
    fesetenv(FE_DFL_ENV);
    printf("default round nearest: %d\n", fegetround() == FE_TONEAREST);
    (void)r; (void)fr; (void)lr; (void)ir;
    return 0;
}
