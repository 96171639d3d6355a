//! opt: -O3
#include <stdint.h>
#include <stdio.h>
#define N 4099
static int32_t ia[N], ib[N], ic[N];
static int16_t sa[N], sb[N];
static uint8_t ua[N], ub[N];
static float fa[N], fb[N];
static double da[N], db[N];
int main(void) {
    for (int i = 0; i < N; i++) {
        ia[i] = i * 7 - 3000; ib[i] = (i * 13) % 1001 - 500; sa[i] = (int16_t)(i * 31); sb[i] = (int16_t)(-i * 17);
        ua[i] = (uint8_t)(i * 5); ub[i] = (uint8_t)(i * 3 + 1); fa[i] = (float)i * 0.5f - 100.0f; fb[i] = 1.0f / (float)(i + 1);
        da[i] = i * 0.25 - 7.0; db[i] = 3.0 / (i + 1);
    }
    long s1 = 0; int64_t s2 = 0; uint32_t s3 = 0; float f1 = 0; double d1 = 0; int mx = -1 << 30, mn = 1 << 30;
    for (int i = 0; i < N; i++) ic[i] = ia[i] * ib[i] + (ia[i] >> 3) - (ib[i] << 2);
    for (int i = 0; i < N; i++) s1 += ic[i];
    for (int i = 0; i < N; i++) s2 += (int64_t)sa[i] * sb[i];
    for (int i = 0; i < N; i++) s3 += (uint32_t)(ua[i] > ub[i] ? ua[i] - ub[i] : ub[i] - ua[i]);
    for (int i = 0; i < N; i++) { mx = ic[i] > mx ? ic[i] : mx; mn = ic[i] < mn ? ic[i] : mn; }
    for (int i = 0; i < N; i++) fa[i] = fa[i] * fb[i] + 0.5f;
    for (int i = 0; i < N; i++) f1 += fa[i];
    for (int i = 0; i < N; i++) da[i] = da[i] * db[i] - da[i] / 3.0;
    for (int i = 0; i < N; i++) d1 += da[i];
    uint8_t sat[N];
    for (int i = 0; i < N; i++) { int v = ua[i] + ub[i]; sat[i] = v > 255 ? 255 : (uint8_t)v; }
    uint32_t s4 = 0;
    for (int i = 0; i < N; i++) s4 = s4 * 3 + sat[i];
    int16_t sh[N];
    for (int i = 0; i < N; i++) sh[i] = (int16_t)((sa[i] * sb[i]) >> 16);
    int64_t s5 = 0;
    for (int i = 0; i < N; i++) s5 += sh[i];
    uint32_t s6 = 0;
    for (int i = 0; i < N; i++) s6 ^= (uint32_t)ia[i] * 2654435761u;
    printf("s1 %ld s2 %lld s3 %u max %d min %d s4 %u s5 %lld s6 %u\n", s1, (long long)s2, s3, mx, mn, s4, (long long)s5, s6);
    printf("f1 %a d1 %a\n", (double)f1, d1);
    return 0;
}
