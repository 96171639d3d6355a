//! cflags: -pthread
// Another thread's fcntl(F_GETFL) never sees a file status flag the program did not set, even
// while a connect is interrupted by a signal: Linux's connect changes no flag of the open file
// (net/socket.c __sys_connect_file passes file->f_flags to the protocol). cetbox, for a
// connect that found a signal recorded before it began, used to set O_NONBLOCK on the socket
// for the call.
//
// The main thread connects new blocking sockets to a listener, one per round, with a timer
// signal sent to it at a random moment around the call; a second thread reads the flags of the
// socket's descriptor number all the while and counts O_NONBLOCK. Natively it never appears.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 3000

static volatile int watched = -1, stop;
static volatile long seen;

static void *watcher(void *arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!stop) {
        int fd = watched;
        if (fd < 0)
            continue;
        int fl = fcntl(fd, F_GETFL);
        if (fl != -1 && (fl & O_NONBLOCK))
            seen++;
    }
    return NULL;
}

static void on_usr1(int sig) { (void)sig; }

static uint64_t rng = 88172645463325252ull;
static unsigned next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction act = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &act, NULL);
    timer_t timer;
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
        perror("timer_create");
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "connect_flags.%d", getpid());
    socklen_t salen = offsetof(struct sockaddr_un, sun_path) + 1 + len;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    // The listener is non-blocking: a round whose connect was interrupted queues nothing.
    if (l < 0 || bind(l, (struct sockaddr *)&sa, salen) || listen(l, 64) ||
        fcntl(l, F_SETFL, O_NONBLOCK)) {
        perror("listener");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, watcher, NULL)) {
        perror("pthread_create");
        return 1;
    }
    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c < 0) {
            perror("socket");
            return 1;
        }
        watched = c;
        unsigned d = next_rand();
        struct itimerspec its = {.it_value = {0, 1 + (d >> 1) % 30000}};
        timer_settime(timer, 0, &its, NULL);
        int res = connect(c, (struct sockaddr *)&sa, salen);
        if (res != 0 && errno != EINTR && bad++ < 3)
            printf("connect: round %d: %s\n", r, strerror(errno));
        // Let the timer's signal come before the next round.
        struct itimerspec left;
        do
            timer_gettime(timer, &left);
        while (left.it_value.tv_sec || left.it_value.tv_nsec);
        watched = -1;
        close(c);
        int a = accept(l, NULL, NULL);
        if (a >= 0)
            close(a);
    }
    stop = 1;
    pthread_join(th, NULL);
    printf("connect: %d rounds, %d errors, O_NONBLOCK seen by another thread: %s\n", ROUNDS, bad,
           seen ? "yes" : "no");
    return bad != 0 || seen != 0;
}
