/* x86-64-v2 instructions through intrinsics: POPCNT, CRC32, PCMPISTRI/PCMPESTRM, PTEST,
 * PMULLD, PBLENDVB, ROUNDPD, PSHUFB, HADDPD, PHMINPOSUW, CMPXCHG16B. Built with
 * -march=x86-64-v2 (and -mcx16). */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    uint64_t acc = 0x12345678;
    const char *text = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox";
    for (size_t i = 0; i + 8 <= strlen(text); i++) {
        uint64_t w;
        memcpy(&w, text + i, 8);
        acc = _mm_crc32_u64(acc, w) ^ (uint64_t)__builtin_popcountll(w * 0x9e3779b97f4a7c15ull);
    }
    printf("crc/popcnt %016llx\n", (unsigned long long)acc);
    __m128i needle = _mm_loadu_si128((const __m128i *)"fox\0\0\0\0\0\0\0\0\0\0\0\0\0");
    for (size_t i = 0; i + 16 <= strlen(text); i += 5) {
        __m128i hay = _mm_loadu_si128((const __m128i *)(text + i));
        int idx = _mm_cmpistri(needle, hay, _SIDD_CMP_EQUAL_ORDERED);
        __m128i m = _mm_cmpestrm(needle, 3, hay, 16, _SIDD_CMP_EQUAL_ANY | _SIDD_UNIT_MASK);
        printf("at %2zu: cmpistri %2d cmpestrm %016llx\n", i, idx,
               (unsigned long long)_mm_cvtsi128_si64(m));
    }
    __m128i a = _mm_setr_epi32(-7, 100000, 3, 0x7fffffff), b = _mm_setr_epi32(9, -100000, 5, 2);
    __m128i p = _mm_mullo_epi32(a, b);
    __m128i bl = _mm_blendv_epi8(a, b, _mm_setr_epi8(0, -1, 0, -1, 0, 0, -1, -1, 1, 2, -3, -4, 5, 6, 7, -8));
    __m128d r = _mm_round_pd(_mm_setr_pd(2.5, -3.5), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m128d h = _mm_hadd_pd(_mm_setr_pd(1.25, 2.5), _mm_setr_pd(-8, 0.125));
    __m128i sh = _mm_shuffle_epi8(_mm_setr_epi8(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
                                  _mm_setr_epi8(15, -1, 0, 3, 3, 3, 8, 7, 6, 5, 4, 3, 2, 1, 0, -128));
    __m128i mn = _mm_minpos_epu16(_mm_setr_epi16(9, 8, 7, 300, 5, 6, 4, 1000));
    printf("pmulld %08x %08x %08x %08x ptest %d\n", _mm_extract_epi32(p, 0), _mm_extract_epi32(p, 1),
           _mm_extract_epi32(p, 2), _mm_extract_epi32(p, 3), _mm_testz_si128(a, b));
    printf("pblendvb %016llx %016llx\n", (unsigned long long)_mm_extract_epi64(bl, 0),
           (unsigned long long)_mm_extract_epi64(bl, 1));
    printf("roundpd %g %g haddpd %g %g\n", _mm_cvtsd_f64(r), _mm_cvtsd_f64(_mm_unpackhi_pd(r, r)),
           _mm_cvtsd_f64(h), _mm_cvtsd_f64(_mm_unpackhi_pd(h, h)));
    printf("pshufb %016llx %016llx minpos %08x\n", (unsigned long long)_mm_extract_epi64(sh, 0),
           (unsigned long long)_mm_extract_epi64(sh, 1), _mm_cvtsi128_si32(mn));
    static __int128 cell __attribute__((aligned(16))) = 5;
    /* With -mcx16 gcc inlines LOCK CMPXCHG16B for the __sync builtins. */
    int ok1 = __sync_bool_compare_and_swap(&cell, (__int128)5, (__int128)7 << 64);
    int ok2 = __sync_bool_compare_and_swap(&cell, (__int128)5, (__int128)9);
    printf("cmpxchg16b %d %d %llx\n", ok1, ok2, (unsigned long long)(cell >> 64));
    return 0;
}
