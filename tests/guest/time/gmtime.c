#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
int main(void) {
    const long long ts[] = {0, 1, -1, 59, 86399, 86400, 951782400, 951868800, 978307199, 1000000000, 1234567890, 1700000000,
                            2147483647LL, 2147483648LL, 4102444800LL, 253402300799LL, -2208988800LL, -62135596800LL, 1583020799, 68169600};
    for (unsigned i = 0; i < sizeof ts / sizeof *ts; i++) {
        time_t t = (time_t)ts[i];
        struct tm tm;
        gmtime_r(&t, &tm);
        printf("%lld: %04d-%02d-%02d %02d:%02d:%02d wday %d yday %d isdst %d gmtoff %ld zone %s", ts[i], tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_wday, tm.tm_yday, tm.tm_isdst, tm.tm_gmtoff, tm.tm_zone);
        time_t back = timegm(&tm);
        struct tm lt;
        localtime_r(&t, &lt);
        printf(" timegm ok %d local==gm %d\n", back == t, lt.tm_hour == tm.tm_hour && lt.tm_mday == tm.tm_mday);
    }
    char buf[64];
    time_t t = 1234567890;
    printf("ctime_r: %s", ctime_r(&t, buf));
    struct tm tm;
    printf("asctime_r: %s", asctime_r(gmtime_r(&t, &tm), buf));
    tzset();
    printf("tzname %s/%s timezone %ld daylight %d\n", tzname[0], tzname[1], timezone, daylight);
    return 0;
}
