#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <wchar.h>
int main(void) {
    const long long vals[] = {0, 1, -1, 7, -42, 127, 128, 255, 256, 32767, -32768, 65535, INT_MAX, INT_MIN, UINT_MAX,
                              LLONG_MAX, LLONG_MIN, 1234567890123LL, -987654321};
    const char *fmts[] = {"%d", "%i", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d", "%-+8.3d|", "%u", "%o", "%#o",
                          "%x", "%#x", "%X", "%#X", "%#10.4x", "%hhd", "%hd", "%hhu", "%hu", "%.0d", "%#.0o"};
    for (unsigned v = 0; v < sizeof vals / sizeof *vals; v++) {
        printf("%lld:", vals[v]);
        for (unsigned f = 0; f < sizeof fmts / sizeof *fmts; f++) {
            printf(" [");
            printf(fmts[f], (int)vals[v]);
            printf("]");
        }
        printf("\n  ll: [%lld] [%llu] [%llx] [%#llo] [%20lld] [%-20lli] [%+.25lld]\n", vals[v], (unsigned long long)vals[v],
               (unsigned long long)vals[v], (unsigned long long)vals[v], vals[v], vals[v], vals[v]);
    }
    printf("j/z/t: %jd %zu %zd %td %ju\n", (intmax_t)INTMAX_MIN, (size_t)SIZE_MAX, (ssize_t)-5, (ptrdiff_t)-77, (uintmax_t)UINTMAX_MAX);
    printf("PRI: %" PRId8 " %" PRIu16 " %" PRIx32 " %" PRId64 " %" PRIX64 "\n", (int8_t)-5, (uint16_t)65000, (uint32_t)0xdeadbeef,
           (int64_t)-1, (uint64_t)0xcafebabe12345678ULL);
    printf("star: [%*d] [%-*d] [%.*d] [%*.*d] [%*d]\n", 6, 42, 6, 42, 4, 7, 8, 3, 5, -6, 9);
    printf("chars: [%c] [%5c] [%-5c] [%c]\n", 'A', 'b', 'c', 0x7e);
    printf("strings: [%s] [%10s] [%-10s] [%.2s] [%10.3s] [%s]\n", "hello", "hi", "hi", "hello", "hello", "");
    printf("null %%s: [%s]\n", (char *)NULL);
    printf("pointers: [%p] [%p] [%20p]\n", (void *)0x1234abcdUL, (void *)NULL, (void *)0xffUL);
    printf("wide: [%ls] [%lc] [%5ls]\n", L"wide", (wint_t)L'W', L"ab");
    int n1 = 0, n2 = 0;
    signed char hn = 0;
    printf("count%n this%hhn text%n\n", &n1, &hn, &n2);
    printf("n1=%d hn=%d n2=%d\n", n1, hn, n2);
    errno = ENOENT;
    printf("errno: %m\n");
    errno = EINVAL;
    printf("errno: %m\n");
    printf("percent: %% [%5%]\n");
    printf("positional: %2$s %1$s %3$05d\n", "world", "hello", 42);
    char buf[16];
    int r = snprintf(buf, sizeof buf, "%s-%d-%s", "abcdefgh", 123456, "ijklmnop");
    printf("snprintf ret=%d buf=[%s]\n", r, buf);
    r = snprintf(NULL, 0, "%0100d", 1);
    printf("snprintf size query=%d\n", r);
    int total = printf("%s\n", "return value check");
    printf("printf returned %d\n", total);
    printf("thousands flag in C locale: [%'d]\n", 1234567);
    return 0;
}
