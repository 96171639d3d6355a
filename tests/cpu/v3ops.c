/* x86-64-v3 instructions through intrinsics and what gcc emits for -march=x86-64-v3: AVX2
 * integer and permutes, gathers, masked moves, FMA, F16C, BMI1/BMI2, LZCNT, MOVBE. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>

static void p256(const char *what, __m256i v) {
    uint64_t q[4];
    _mm256_storeu_si256((__m256i *)q, v);
    printf("%-12s %016llx %016llx %016llx %016llx\n", what, (unsigned long long)q[0],
           (unsigned long long)q[1], (unsigned long long)q[2], (unsigned long long)q[3]);
}

int main(void) {
    int32_t table[64];
    for (int i = 0; i < 64; i++)
        table[i] = i * i - 7 * i;
    __m256i a = _mm256_setr_epi32(1, -2, 3, -4, 5, -6, 7, -8);
    __m256i b = _mm256_setr_epi32(100, 200, -300, 400, 0x7fffffff, -1, 9, 10);
    p256("vpaddd", _mm256_add_epi32(a, b));
    p256("vpmulld", _mm256_mullo_epi32(a, b));
    p256("vpermd", _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)));
    p256("vpermq", _mm256_permute4x64_epi64(b, 0x1b));
    p256("vperm2i128", _mm256_permute2x128_si256(a, b, 0x21));
    p256("vpshufb", _mm256_shuffle_epi8(b, _mm256_set1_epi8(3)));
    p256("vpsllvd", _mm256_sllv_epi32(b, _mm256_setr_epi32(0, 1, 2, 31, 32, 33, 4, 5)));
    p256("vpgatherdd", _mm256_i32gather_epi32(table, _mm256_setr_epi32(0, 63, 5, 9, 1, 2, 40, 33), 4));
    p256("mask gather", _mm256_mask_i32gather_epi32(a, table, _mm256_setr_epi32(3, 4, 5, 6, 7, 8, 9, 10), _mm256_setr_epi32(-1, 0, -1, 0, 0, -1, -1, 0), 4));
    p256("vpmaskmovd", _mm256_maskload_epi32(table + 8, _mm256_setr_epi32(-1, 0, 0, -1, -1, 0, -1, 0)));
    int32_t out[8] = {0};
    _mm256_maskstore_epi32(out, _mm256_setr_epi32(0, -1, 0, -1, 0, 0, -1, -1), b);
    printf("maskstore %d %d %d %d %d %d %d %d\n", out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]);
    __m256d x = _mm256_setr_pd(1.5, -2.25, 1e300, 3.0), y = _mm256_setr_pd(2.0, 4.0, 1e10, -1.0 / 3);
    __m256d f = _mm256_fmadd_pd(x, y, _mm256_set1_pd(0.1));
    double d[4];
    _mm256_storeu_pd(d, f);
    printf("vfmadd %.17g %.17g %.17g %.17g\n", d[0], d[1], d[2], d[3]);
    __m128i h = _mm256_cvtps_ph(_mm256_setr_ps(1.0f, 65504.0f, 1e-8f, -0.5f, 3.14159f, 1e6f, 0.0f, -0.0f), 0);
    __m256 back = _mm256_cvtph_ps(h);
    float fl[8];
    _mm256_storeu_ps(fl, back);
    printf("f16c %016llx %016llx | %g %g %g %g %g %g %g %g\n", (unsigned long long)_mm_extract_epi64(h, 0),
           (unsigned long long)_mm_extract_epi64(h, 1), fl[0], fl[1], fl[2], fl[3], fl[4], fl[5], fl[6], fl[7]);
    uint64_t v = 0x00f0ff00a5c30180ull;
    printf("bmi %llx %llx %llx %llx %llx %llx %d %d\n", (unsigned long long)_pdep_u64(0x1234, v),
           (unsigned long long)_pext_u64(v, 0xff00ff00ff00ff00ull), (unsigned long long)_bzhi_u64(v, 37),
           (unsigned long long)_blsr_u64(v), (unsigned long long)_andn_u64(v, ~0ull),
           (unsigned long long)_bextr_u64(v, 8, 20), (int)_lzcnt_u64(v >> 9), (int)_tzcnt_u64(v));
    unsigned long long hi;
    unsigned long long lo = _mulx_u64(v, 0xfedcba9876543210ull, &hi);
    printf("mulx %llx %llx rorx %llx shlx %llx\n", hi, lo, (unsigned long long)((v >> 13) | (v << 51)),
           (unsigned long long)(v << (hi & 63)));
    uint32_t be = __builtin_bswap32((uint32_t)table[7]);
    printf("movbe %08x\n", be);
    _mm256_zeroupper();
    return 0;
}
