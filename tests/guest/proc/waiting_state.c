//! cflags: -pthread
// Another process's State (/proc/PID/status) is S only while that process sleeps in the
// kernel (fs/proc/array.c get_task_state): a program may wait for S to know that another has
// reached its blocking call, as glibc's support_process_state_wait does before it sends a
// signal that a sigtimedwait must take (misc/tst-pidfd). Here the child runs busy threads
// (more than there are CPUs on the machines it runs on, so they compete for them) and busy work of its own, then blocks
// in sigtimedwait for SIGUSR1, which it does not block and has a handler for; the parent
// polls the child's status until it shows S, then sends SIGUSR1. sigtimedwait must take it:
// the handler running means that S was shown while the child was not in its wait. Under
// cetbox a guest runs on a host thread that also waits for cetbox's own reasons (locks, a
// virtual CPU, start-up), which the host shows as S.
//
// Then the other common states: S for a child blocked in a pipe read, T for a stopped one, Z
// for one that has exited and is not yet reaped.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 3
#define SPINNERS 3

static atomic_int stop;

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0)
        _exit(3);
}

static void handler(int sig) {
    (void)sig;
    say("the handler ran: S was shown before the child's sigtimedwait\n");
    _exit(1);
}

static void *spin(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        x++;
    return NULL;
}

// The State line's letter of process `pid`, through one descriptor kept open and read again
// from offset 0, as support_process_state_wait does.
static char state_of(int fd, char *line, size_t size) {
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    const char *l = strstr(buf, "State:");
    if (!l)
        return '?';
    const char *e = strchr(l, '\n');
    snprintf(line, size, "%.*s", e ? (int)(e - l) : (int)strlen(l), l);
    l += 6;
    while (*l == ' ' || *l == '\t')
        l++;
    return *l;
}

static int open_status(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("open status");
        exit(2);
    }
    return fd;
}

// Polls until the State letter is `want`; returns the State line.
static void wait_state(int fd, char want, char *line, size_t size) {
    while (state_of(fd, line, size) != want)
        sched_yield();
}

static void busy_child(void) {
    signal(SIGUSR1, handler);
    // The spinners never take SIGUSR1 (a process-directed signal goes to a thread that does
    // not block it): only this thread's wait or handler can.
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    pthread_t th[SPINNERS];
    for (int i = 0; i < SPINNERS; i++)
        if (pthread_create(&th[i], NULL, spin, NULL)) {
            say("pthread_create failed\n");
            _exit(2);
        }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 2000000; i++)
        x += i;
    // Some system calls that do not sleep, too.
    for (int i = 0; i < 2000; i++)
        getppid();
    atomic_store(&stop, 1);
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, NULL);
    _exit(sig == SIGUSR1 ? 0 : 4);
}

int main(void) {
    char line[128];
    alarm(300);
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child = fork();
        if (child < 0) {
            perror("fork");
            return 1;
        }
        if (child == 0)
            busy_child();
        int fd = open_status(child);
        wait_state(fd, 'S', line, sizeof line);
        kill(child, SIGUSR1);
        int st;
        waitpid(child, &st, 0);
        close(fd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("round %d: child status %#x\n", round, st);
            return 1;
        }
    }
    printf("%d rounds: sigtimedwait took the signal sent once the child showed S\n", ROUNDS);

    // Blocked in a pipe read, stopped, a zombie.
    int p[2];
    if (pipe(p)) {
        perror("pipe");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(p[1]);
        _exit(read(p[0], &c, 1) == 1 ? 0 : 5);
    }
    close(p[0]);
    int fd = open_status(child);
    wait_state(fd, 'S', line, sizeof line);
    printf("blocked in read: %s\n", line);
    kill(child, SIGSTOP);
    int st;
    waitpid(child, &st, WUNTRACED);
    state_of(fd, line, sizeof line);
    printf("stopped (%s): %s\n", WIFSTOPPED(st) ? "WIFSTOPPED" : "?", line);
    kill(child, SIGCONT);
    if (write(p[1], "x", 1) != 1)
        return 1;
    siginfo_t info;
    // WNOWAIT leaves the child a zombie.
    waitid(P_PID, child, &info, WEXITED | WNOWAIT);
    state_of(fd, line, sizeof line);
    printf("exited, not reaped (code %d): %s\n", info.si_status, line);
    close(fd);
    waitpid(child, &st, 0);
    return 0;
}
