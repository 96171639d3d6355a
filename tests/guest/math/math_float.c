//! link: static-pie
#include <math.h>
#include <stdio.h>
static const float xs[] = {0.0f, -0.0f, 1e-40f, 1e-6f, 0.1f, 0.5f, 1.0f, 1.5f, 2.0f, 3.14159265f, 10.0f, 88.7f, 89.0f, 1e10f, 3e38f,
    -0.3f, -1.0f, -2.5f, -100.0f, -103.9f, INFINITY, -INFINITY, NAN};
#define N (sizeof xs / sizeof *xs)
#define F1(name) do { for (unsigned i = 0; i < N; i++) { float r = name(xs[i]); printf(#name "(%a) = %.9g %a\n", (double)xs[i], (double)r, (double)r); } } while (0)
#define F2(name) do { for (unsigned i = 0; i < N; i += 2) for (unsigned j = 1; j < N; j += 3) { float r = name(xs[i], xs[j]); \
    printf(#name "(%a, %a) = %.9g %a\n", (double)xs[i], (double)xs[j], (double)r, (double)r); } } while (0)
int main(void) {
    F1(expf); F1(exp2f); F1(expm1f); F1(logf); F1(log2f); F1(log10f); F1(log1pf); F1(sinf); F1(cosf); F1(tanf);
    F1(asinf); F1(acosf); F1(atanf); F1(sinhf); F1(coshf); F1(tanhf); F1(sqrtf); F1(cbrtf); F1(erff); F1(erfcf);
    F1(lgammaf); F1(tgammaf); F1(floorf); F1(ceilf); F1(roundf); F1(truncf); F1(rintf);
    F2(powf); F2(atan2f); F2(fmodf); F2(remainderf); F2(hypotf); F2(nextafterf);
    float acc = 0.0f;
    for (int i = 1; i <= 10000; i++) acc += 1.0f / (float)i;
    printf("harmonic float %.9g\n", (double)acc);
    volatile float a = 16777216.0f, b = 1.0f;
    printf("2^24+1 = %.9g, (float)0.1 = %a, float mul %a\n", (double)(a + b), (double)(float)0.1, (double)(a * 1.0000001f));
    for (int i = -5; i <= 5; i++) {
        float v = (float)i * 0.75f + 0.125f;
        printf("conv %a -> int %d long %ld, double %a\n", (double)v, (int)v, (long)v, (double)v);
    }
    return 0;
}
