#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <sched.h>
#include <sys/syscall.h>
int main(void) {
    struct utsname u;
    printf("uname rc %d\n", uname(&u));
    printf("sysname %s machine %s\n", u.sysname, u.machine);
    printf("uid==euid %d gid==egid %d\n", getuid() == geteuid(), getgid() == getegid());
    printf("pid>0 %d ppid>0 %d gettid==getpid %d\n", getpid() > 0, getppid() > 0, (pid_t)syscall(SYS_gettid) == getpid());
    printf("sched_yield %d\n", sched_yield());
    unsigned char rb[64];
    printf("getrandom %zd\n", getrandom(rb, sizeof rb, 0));
    struct rlimit rl;
    int rc = getrlimit(RLIMIT_STACK, &rl);
    printf("getrlimit stack rc %d\n", rc);
    rc = getrlimit(RLIMIT_NOFILE, &rl);
    printf("getrlimit nofile rc %d cur>=64 %d\n", rc, rl.rlim_cur >= 64);
    printf("sysconf pagesize %ld open_max>0 %d\n", sysconf(_SC_PAGESIZE), sysconf(_SC_OPEN_MAX) > 0);
    errno = 0;
    long r = syscall(999999);
    printf("unknown syscall: %ld ENOSYS %d\n", r, errno == ENOSYS);
    char host[256];
    printf("gethostname rc %d\n", gethostname(host, sizeof host));
    printf("isatty(0) %d\n", isatty(0));
    int prio = getpriority(PRIO_PROCESS, 0);
    printf("getpriority %d\n", prio);
    cpu_set_t set;
    CPU_ZERO(&set);
    rc = sched_getaffinity(0, sizeof set, &set);
    printf("sched_getaffinity rc %d count>0 %d\n", rc, CPU_COUNT(&set) > 0);
    return 0;
}
