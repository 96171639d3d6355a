/* Time, identity and environment: results compared structurally, never printed raw. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    struct timespec a, b, res;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec d = {0, 20 * 1000 * 1000};
    printf("nanosleep: %d\n", nanosleep(&d, NULL));
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("slept >= 20ms: %d\n", ns >= 20000000LL);
    int r = clock_getres(CLOCK_MONOTONIC, &res);
    printf("getres: %d %d\n", r, res.tv_sec == 0);
    struct timeval tv, tv1;
    r = gettimeofday(&tv, NULL);
    printf("gettimeofday: %d\n", r);
    time_t t = time(NULL);
    gettimeofday(&tv1, NULL);
    /* time() reads the tick-updated seconds: at most a tick behind, never ahead. */
    printf("time agrees: %d\n", t >= tv.tv_sec - 1 && t <= tv1.tv_sec);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    rt.tv_nsec += 5000000;
    if (rt.tv_nsec >= 1000000000) { rt.tv_sec++; rt.tv_nsec -= 1000000000; }
    printf("abstime sleep: %d\n", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &rt, NULL));
    printf("bad clock: %d\n", clock_gettime((clockid_t)999, &a) == -1 && errno == EINVAL);
    struct tms tm;
    printf("times ok: %d\n", times(&tm) != (clock_t)-1);
    struct rusage ru;
    printf("getrusage: %d\n", getrusage(RUSAGE_SELF, &ru));

    struct utsname u;
    r = uname(&u);
    printf("uname: %d %s %s\n", r, u.sysname, u.machine);
    struct rlimit rl;
    r = getrlimit(RLIMIT_STACK, &rl);
    printf("getrlimit stack: %d cur>0=%d\n", r, rl.rlim_cur > 0);
    printf("pid>1: %d ppid>0: %d\n", getpid() > 1, getppid() > 0);
    printf("uid==euid: %d gid==egid: %d\n", getuid() == geteuid(), getgid() == getegid());
    printf("sysconf pagesize: %ld\n", sysconf(_SC_PAGESIZE));
    printf("sysconf nproc>0: %d\n", sysconf(_SC_NPROCESSORS_ONLN) > 0);

    printf("argc: %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d]: %s\n", i, argv[i]);
    printf("setenv: %d\n", setenv("CETBOX_TEST_VAR", "value=42", 1));
    printf("getenv: %s\n", getenv("CETBOX_TEST_VAR"));
    int n = 0;
    for (char **e = environ; *e; e++) n++;
    printf("environ non-empty: %d\n", n > 0);
    r = unsetenv("CETBOX_TEST_VAR");
    printf("unsetenv: %d %p\n", r, (void *)getenv("CETBOX_TEST_VAR"));
    return 0;
}
