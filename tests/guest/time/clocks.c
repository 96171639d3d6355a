//! link: static-pie
#include <stdio.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
static long long ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(void) {
    long long prev = ns(CLOCK_MONOTONIC);
    int mono_ok = 1;
    for (int i = 0; i < 1000; i++) { long long n = ns(CLOCK_MONOTONIC); if (n < prev) mono_ok = 0; prev = n; }
    printf("monotonic never goes back: %d\n", mono_ok);
    struct timespec res;
    int rc = clock_getres(CLOCK_MONOTONIC, &res);
    printf("getres monotonic rc %d, res <= 1ms %d\n", rc, res.tv_sec == 0 && res.tv_nsec <= 1000000);
    /* Only orderings Linux guarantees, whatever the scheduling delays between the calls:
     * CLOCK_REALTIME and gettimeofday read the same clock (kernel/time/timekeeping.c,
     * ktime_get_real_ts64), so readings taken in sequence never decrease; time() reads the
     * tick-updated seconds (ktime_get_real_seconds), which lag the fine clock by less than
     * a tick and never lead it, so it lies in [tv0.tv_sec - 1, tv1.tv_sec]. */
    long long r0 = ns(CLOCK_REALTIME);
    struct timeval tv0, tv1;
    gettimeofday(&tv0, NULL);
    time_t now = time(NULL);
    gettimeofday(&tv1, NULL);
    long long r1 = ns(CLOCK_REALTIME);
    long long us0 = tv0.tv_sec * 1000000LL + tv0.tv_usec, us1 = tv1.tv_sec * 1000000LL + tv1.tv_usec;
    printf("time/gettimeofday/clock_gettime agree: %d %d\n",
           (long long)now >= (long long)tv0.tv_sec - 1 && (long long)now <= (long long)tv1.tv_sec,
           r0 / 1000 <= us0 && us0 <= us1 && us1 <= r1 / 1000 + 1);
    printf("after 2020: %d\n", now > 1577836800);
    long long t0 = ns(CLOCK_MONOTONIC);
    struct timespec req = {0, 20000000};
    printf("nanosleep rc %d\n", nanosleep(&req, NULL));
    long long slept = ns(CLOCK_MONOTONIC) - t0;
    printf("slept at least 20ms: %d\n", slept >= 20000000);
    t0 = ns(CLOCK_MONOTONIC);
    usleep(10000);
    printf("usleep at least 10ms: %d\n", ns(CLOCK_MONOTONIC) - t0 >= 10000000);
    long long c0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 3000000; i++) x += i * i;
    long long c1 = ns(CLOCK_PROCESS_CPUTIME_ID);
    printf("process cpu time advances: %d\n", c1 > c0);
    printf("thread cpu time positive: %d\n", ns(CLOCK_THREAD_CPUTIME_ID) > 0);
    struct tms tm;
    clock_t tk = times(&tm);
    printf("times ok %d, clock() >= 0 %d\n", tk != (clock_t)-1, clock() >= 0);
    struct rusage ru;
    rc = getrusage(RUSAGE_SELF, &ru);
    printf("getrusage rc %d maxrss>0 %d\n", rc, ru.ru_maxrss > 0);
    printf("CLOCKS_PER_SEC %ld sysconf(_SC_CLK_TCK) %ld\n", (long)CLOCKS_PER_SEC, sysconf(_SC_CLK_TCK));
    /* CLOCK_BOOTTIME is CLOCK_MONOTONIC plus the time spent suspended, so a BOOTTIME reading
     * taken after a MONOTONIC one is never smaller (the order of the two reads is fixed). */
    long long mono = ns(CLOCK_MONOTONIC);
    long long boot = ns(CLOCK_BOOTTIME);
    printf("boottime >= monotonic: %d\n", boot >= mono);
    printf("coarse clocks work: %d\n", ns(CLOCK_MONOTONIC_COARSE) > 0 && ns(CLOCK_REALTIME_COARSE) > 0);
    printf("bad clock id: %d\n", clock_gettime((clockid_t)12345, &res));
    return 0;
}
