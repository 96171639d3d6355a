/* execve from a multi-threaded process (Linux fs/exec.c de_thread): every other thread is
 * killed first, the exec'ing thread takes over the thread-group leader's pid (gettid() ==
 * getpid() afterwards, one entry in /proc/self/task), blocked pending signals of the process
 * and of the exec'ing thread survive while the killed leader's own pending signal is lost,
 * the blocked mask is kept, ignored signals stay ignored and caught ones are reset.
 *
 * Two scenarios, each in a forked child so they run one after the other: a non-leader thread
 * execs while the leader waits in pthread_join and two more threads run (one spinning in user
 * code, one blocked in read()); then the leader execs while another thread spins. */
//! cflags: -pthread
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char pidbuf[32];
static char *self_argv0;
static int pipefd[2];
static volatile int spin_count;

static void on_int(int s) { (void)s; }

static int count_tasks(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static int after(const char *who, long old_pid) {
    long pid = getpid(), tid = syscall(SYS_gettid);
    sigset_t pend, cur;
    struct sigaction sa;
    sigpending(&pend);
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("%s: after exec: tid == pid %d, pid kept %d, tasks %d\n", who, tid == pid,
           pid == old_pid, count_tasks());
    printf("%s: pending: SIGUSR1 (process) %d, SIGUSR2 (exec'ing thread) %d, SIGHUP (leader) %d\n",
           who, sigismember(&pend, SIGUSR1), sigismember(&pend, SIGUSR2),
           sigismember(&pend, SIGHUP));
    printf("%s: blocked: SIGUSR1 %d SIGUSR2 %d SIGHUP %d SIGQUIT %d\n", who,
           sigismember(&cur, SIGUSR1), sigismember(&cur, SIGUSR2), sigismember(&cur, SIGHUP),
           sigismember(&cur, SIGQUIT));
    sigaction(SIGTERM, NULL, &sa);
    printf("%s: SIGTERM ignored %d", who, sa.sa_handler == SIG_IGN);
    sigaction(SIGINT, NULL, &sa);
    printf(", SIGINT reset to default %d", sa.sa_handler == SIG_DFL);
    sigaction(SIGPIPE, NULL, &sa);
    printf(", SIGPIPE ignored %d\n", sa.sa_handler == SIG_IGN);
    return 0;
}

static void *spinner(void *a) {
    (void)a;
    for (;;) spin_count++;
    return NULL;
}

static void *reader(void *a) {
    char c;
    (void)a;
    if (read(pipefd[0], &c, 1) >= 0) puts("reader: read returned (must not happen)");
    return NULL;
}

static void do_exec(const char *who) {
    char *args[] = {self_argv0, "after", (char *)who, pidbuf, NULL};
    fflush(stdout);
    execv("/proc/self/exe", args);
    perror("execv");
    _exit(1);
}

static void *execer(void *a) {
    (void)a;
    /* Thread-directed, blocked: stays pending on this thread. */
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR2);
    do_exec("non-leader");
    return NULL;
}

static void setup(void) {
    sigset_t s;
    snprintf(pidbuf, sizeof pidbuf, "%ld", (long)getpid());
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_int);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    sigaddset(&s, SIGHUP);
    sigaddset(&s, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    /* Process-directed, blocked. */
    kill(getpid(), SIGUSR1);
    /* Directed at the leader thread, blocked: dies with the leader. */
    syscall(SYS_tgkill, getpid(), getpid(), SIGHUP);
    if (pipe(pipefd) != 0) _exit(2);
}

static void from_non_leader(void) {
    pthread_t a, b, c;
    setup();
    pthread_create(&a, NULL, spinner, NULL);
    pthread_create(&b, NULL, reader, NULL);
    pthread_create(&c, NULL, execer, NULL);
    pthread_join(c, NULL);
    puts("leader: join returned (must not happen)");
    _exit(3);
}

static void from_leader(void) {
    pthread_t a;
    setup();
    pthread_create(&a, NULL, spinner, NULL);
    /* Wait until the spinner really runs. */
    while (spin_count < 1000) sched_yield();
    syscall(SYS_tgkill, getpid(), getpid(), SIGUSR2);
    /* Here the leader is the exec'ing thread: its own pending SIGUSR2 stays and SIGHUP too. */
    do_exec("leader");
}

int main(int argc, char **argv) {
    self_argv0 = argv[0];
    if (argc == 4 && strcmp(argv[1], "after") == 0) return after(argv[2], atol(argv[3]));
    void (*scenario[])(void) = {from_non_leader, from_leader};
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            scenario[i]();
            _exit(4);
        }
        int st;
        waitpid(p, &st, 0);
        printf("scenario %d: exit status %d\n", i, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    }
    return 0;
}
