#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
//! link: static-pie
#include <locale.h>
#include <stdio.h>
#include <time.h>
int main(void) {
    const char *convs = "aAbBcCdDeFgGhHIjklmMnprRsStTuUVwWxXyYzZ%+";
    const long long ts[] = {0, 951825601, 1230768000, 1234567890, 1609459199, 1700000000, -86400 * 366LL};
    for (unsigned k = 0; k < sizeof ts / sizeof *ts; k++) {
        time_t t = (time_t)ts[k];
        struct tm tm;
        gmtime_r(&t, &tm);
        printf("t=%lld\n", ts[k]);
        for (const char *c = convs; *c; c++) {
            char fmt[8] = {'%', *c, 0}, out[128];
            size_t n = strftime(out, sizeof out, fmt, &tm);
            printf("  %%%c -> [%s] %zu\n", *c, out, n);
        }
        char out[128];
        strftime(out, sizeof out, "%Ec|%EY|%Od|%-d|%_H|%010Y|%^a|%#b", &tm);
        printf("  ext [%s]\n", out);
    }
    struct tm tm = {0};
    char *end = strptime("2024-02-29 13:45:07", "%Y-%m-%d %H:%M:%S", &tm);
    printf("strptime rest [%s] %d-%d-%d %d:%d:%d wday %d yday %d\n", end, tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           tm.tm_wday, tm.tm_yday);
    char small[5];
    printf("strftime too small: %zu\n", strftime(small, sizeof small, "%Y-%m-%d", &tm));
    return 0;
}
