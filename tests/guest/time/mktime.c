#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static void show(const char *what, struct tm tm) {
    time_t t = mktime(&tm);
    printf("%-28s -> %lld = %04d-%02d-%02d %02d:%02d:%02d wday %d yday %d dst %d off %ld %s\n", what, (long long)t, tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_wday, tm.tm_yday, tm.tm_isdst, tm.tm_gmtoff, tm.tm_zone);
}
static struct tm mk(int y, int mo, int d, int h, int mi, int s, int dst) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900; tm.tm_mon = mo - 1; tm.tm_mday = d; tm.tm_hour = h; tm.tm_min = mi; tm.tm_sec = s; tm.tm_isdst = dst;
    return tm;
}
int main(void) {
    const char *zones[] = {"UTC", "EST5EDT,M3.2.0,M11.1.0", "CET-1CEST,M3.5.0,M10.5.0/3", "<+0530>-5:30", "NZST-12NZDT,M9.5.0,M4.1.0/3"};
    for (unsigned z = 0; z < sizeof zones / sizeof *zones; z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        printf("TZ=%s tzname=%s/%s timezone=%ld daylight=%d\n", zones[z], tzname[0], tzname[1], timezone, daylight);
        show("2000-01-01 00:00:00", mk(2000, 1, 1, 0, 0, 0, -1));
        show("2021-07-04 12:00:00", mk(2021, 7, 4, 12, 0, 0, -1));
        show("month 13 normalises", mk(2020, 13, 1, 0, 0, 0, -1));
        show("day 0 normalises", mk(2021, 3, 0, 0, 0, 0, -1));
        show("negative seconds", mk(2021, 1, 1, 0, 0, -3661, -1));
        show("spring-forward gap", mk(2021, 3, 14, 2, 30, 0, -1));
        show("fall-back overlap dst=0", mk(2021, 11, 7, 1, 30, 0, 0));
        show("fall-back overlap dst=1", mk(2021, 11, 7, 1, 30, 0, 1));
        show("1969-12-31 23:59:59", mk(1969, 12, 31, 23, 59, 59, -1));
        show("2038-01-19 03:14:08", mk(2038, 1, 19, 3, 14, 8, -1));
        time_t t = 1625400000;
        struct tm lt;
        localtime_r(&t, &lt);
        char buf[64];
        strftime(buf, sizeof buf, "%F %T %Z %z", &lt);
        printf("  localtime(1625400000) = %s\n", buf);
    }
    printf("difftime %.1f\n", difftime(1000, 250));
    return 0;
}
