#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>
int main(void) {
    setlocale(LC_ALL, "C");
    const wchar_t *a = L"Hello, wide world", *b = L"Hello, wide World";
    printf("wcslen=%zu wcscmp=%d wcsncmp=%d\n", wcslen(a), wcscmp(a, b) > 0, wcsncmp(a, b, 12));
    wchar_t buf[64];
    wcscpy(buf, a);
    wcscat(buf, L"!");
    printf("wcscat len %zu, wcschr %ld, wcsrchr %ld, wcsstr %ld\n", wcslen(buf), wcschr(buf, L'w') - buf, wcsrchr(buf, L'o') - buf, wcsstr(buf, L"wide") - buf);
    printf("wcsspn=%zu wcscspn=%zu\n", wcsspn(L"aabbcc", L"ab"), wcscspn(L"hello", L"l"));
    wchar_t wb[128];
    int n = swprintf(wb, 128, L"%d %5.2f %ls %s %c %x", 42, 3.14159, L"wstr", "nstr", 'c', 255);
    char nb[256];
    size_t cn = wcstombs(nb, wb, sizeof nb);
    printf("swprintf ret %d -> [%s] (%zu)\n", n, nb, cn);
    printf("swprintf overflow ret %d\n", swprintf(wb, 4, L"%s", "toolong"));
    wchar_t conv[64];
    size_t m = mbstowcs(conv, "plain ascii text", 64);
    printf("mbstowcs %zu, conv[6]=%lc\n", m, (wint_t)conv[6]);
    size_t bad = mbstowcs(conv, "caf\xc3\xa9", 64);
    printf("mbstowcs high bytes in C locale: %ld\n", (long)bad);
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc;
    size_t r = mbrtowc(&wc, "A", 1, &st);
    printf("mbrtowc A -> %zu %d, MB_CUR_MAX=%zu\n", r, (int)wc, MB_CUR_MAX);
    r = mbrtowc(&wc, "\x80", 1, &st);
    printf("mbrtowc 0x80 -> %ld\n", (long)r);
    char out[8];
    memset(&st, 0, sizeof st);
    printf("wcrtomb L'z' -> %zu, wctomb(0x100) -> %d\n", wcrtomb(out, L'z', &st), wctomb(out, 0x100));
    wchar_t *end;
    printf("wcstol %ld, wcstod %g, wcstoul %lu\n", wcstol(L"  -1234xyz", &end, 10), wcstod(L"2.5e3", NULL), wcstoul(L"ff", NULL, 16));
    printf("towupper %lc towlower %lc iswalpha %d iswdigit %d iswspace %d\n", (wint_t)towupper(L'q'), (wint_t)towlower(L'Q'), !!iswalpha(L'x'), !!iswdigit(L'7'), !!iswspace(L'\t'));
    wmemset(buf, L'x', 10);
    buf[10] = 0;
    printf("wmemset -> %ls, wmemcmp %d, wcsdup len %zu\n", buf, wmemcmp(buf, L"xxxxy", 5) < 0, wcslen(buf));
    printf("wide printf: [%ls] [%10ls] [%-6lc]\n", L"abc", L"right", (wint_t)L'L');
    int cnt = 0;
    for (wint_t c = 0; c < 256; c++) cnt += iswprint(c) ? 1 : 0;
    printf("iswprint count in C locale: %d\n", cnt);
    return 0;
}
