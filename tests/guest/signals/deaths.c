// Default actions seen by a parent: terminate, core, ignore; SIGPIPE on a broken pipe with the
// default action, with SIG_IGN (EPIPE) and with a handler; a fault while the fault signal is
// blocked or ignored still kills; SIGKILL.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void status(const char *what, int st) {
    if (WIFSIGNALED(st))
        printf("%s: killed by %s\n", what, sigabbrev_np(WTERMSIG(st)));
    else
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
}

static void run(const char *what, void (*f)(void)) {
    pid_t c = fork();
    if (c == 0) {
        f();
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    status(what, st);
}

static void term(void) { raise(SIGTERM); }
static void quit(void) { raise(SIGQUIT); }
static void chld(void) { raise(SIGCHLD); raise(SIGWINCH); raise(SIGURG); }
static void abrt(void) { abort(); }
static void killself(void) { kill(getpid(), SIGKILL); }
static void segv_blocked(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigprocmask(SIG_BLOCK, &s, NULL);
    *(volatile int *)8 = 1;
}
static void segv_ignored(void) {
    signal(SIGSEGV, SIG_IGN);
    *(volatile int *)8 = 1;
}
static void usr1_ignored(void) { signal(SIGUSR1, SIG_IGN); raise(SIGUSR1); }

static int broken_pipe(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    int r = write(p[1], "x", 1);
    return r < 0 ? errno : 0;
}
static void pipe_dfl(void) { broken_pipe(); }
static void pipe_ign(void) {
    signal(SIGPIPE, SIG_IGN);
    int e = broken_pipe();
    printf("  SIG_IGN: write error %s\n", strerrorname_np(e));
    fflush(stdout);
}
static volatile int piped;
static void onpipe(int s) { (void)s; piped++; }
static void pipe_handler(void) {
    signal(SIGPIPE, onpipe);
    int e = broken_pipe();
    printf("  handler: write error %s, handler ran %d\n", strerrorname_np(e), piped);
    fflush(stdout);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    run("SIGTERM", term);
    run("SIGQUIT", quit);
    run("SIGCHLD/WINCH/URG", chld);
    run("abort", abrt);
    run("SIGKILL", killself);
    run("SIGSEGV blocked", segv_blocked);
    run("SIGSEGV ignored", segv_ignored);
    run("SIGUSR1 ignored", usr1_ignored);
    run("SIGPIPE default", pipe_dfl);
    run("SIGPIPE ignored", pipe_ign);
    run("SIGPIPE handled", pipe_handler);
    return 0;
}
