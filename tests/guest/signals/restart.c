// SA_RESTART: a read on an empty pipe interrupted by a signal returns EINTR without it and is
// restarted with it; nanosleep is never restarted.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int hits;
static void h(int sig) { (void)sig; hits++; }

static void one(int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        usleep(300000);
        write(p[1], "x", 1);
        _exit(0);
    }
    close(p[1]);
    hits = 0;
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    char b;
    ssize_t r = read(p[0], &b, 1);
    printf("%s: read=%zd errno=%s hits=%d\n", flags ? "SA_RESTART" : "no SA_RESTART", r,
           r < 0 ? strerrorname_np(errno) : "-", hits);
    waitpid(c, NULL, 0);
    close(p[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    one(0);
    one(SA_RESTART);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec ts = {1, 0}, rem;
    int r = nanosleep(&ts, &rem);
    printf("nanosleep: ret=%d errno=%s remaining<1s=%d\n", r, strerrorname_np(errno),
           rem.tv_sec == 0 && rem.tv_nsec > 0);
    return 0;
}
