#include <fenv.h>
#include <math.h>
#include <stdio.h>
//! cflags: -frounding-math
static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
static const char *names[] = {"nearest", "down", "up", "zero"};
static const double vals[] = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999999999999996, 0.49999999999999994, 1e16 + 1, -3.7, 3.7, -0.0, 4503599627370497.5};
int main(void) {
    for (int m = 0; m < 4; m++) {
        printf("mode %s: set=%d get_ok=%d\n", names[m], fesetround(modes[m]), fegetround() == modes[m]);
        for (unsigned i = 0; i < sizeof vals / sizeof *vals; i++) {
            volatile double v = vals[i];
            printf("  %a: rint=%a nearbyint=%a lrint=%ld llrint=%lld round=%a lround=%ld floor=%a ceil=%a trunc=%a\n", v, rint(v),
                   nearbyint(v), lrint(v), llrint(v), round(v), lround(v), floor(v), ceil(v), trunc(v));
            volatile float fv = (float)vals[i];
            volatile long double lv = vals[i];
            printf("    rintf=%a lrintf=%ld rintl=%La lrintl=%ld\n", (double)rintf(fv), lrintf(fv), rintl(lv), lrintl(lv));
        }
        volatile double one = 1.0, three = 3.0, tiny = 1e-300, big = 1e300;
        printf("  1/3=%a -1/3=%a 2/3=%a sqrt2=%a tiny*tiny=%a big*big=%a\n", one / three, -one / three, (one + one) / three,
               sqrt(one + one), tiny * tiny, big * big);
        volatile float fo = 1.0f, ft = 3.0f;
        printf("  float 1/3=%a conv(1/3 double->float)=%a\n", (double)(fo / ft), (double)(float)(one / three));
        volatile long double lo = 1.0L, lt = 3.0L;
        printf("  long double 1/3=%La sqrtl2=%La\n", lo / lt, sqrtl(lo + lo));
        volatile long long ll = 9007199254740993LL;
        printf("  (double)2^53+1=%a (float)%a\n", (double)ll, (double)(float)ll);
        printf("  exp(1)=%a log(10)=%a sin(1)=%a\n", exp(one), log(10 * one), sin(one));
        char buf[64];
        snprintf(buf, sizeof buf, "%.3f %.0f %.2e", 2.0005, 0.5, 1.235e10);
        printf("  printf under mode: %s\n", buf);
    }
    fesetround(FE_TONEAREST);
    return 0;
}
