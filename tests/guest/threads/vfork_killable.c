// A vfork parent waits for its child to exec or exit, but the wait is killable (kernel/fork.c,
// wait_for_vfork_done): a signal whose action is to terminate the process (SIGTERM with the
// default action, SIGKILL) ends the parent while the child runs on; a signal it catches or
// blocks stays pending until vfork returns. Ordered by pipes: the signal is sent once the
// child runs, while the parent is in (or entering) its vfork wait.
//
// cetbox's vfork parent waits in a read of a pipe the child holds; a signal interrupted the
// read, which was retried: the parent lived on (SIGTERM) until the child ended.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_usr1(int sig) {
    (void)sig;
    caught = 1;
}

static void round_(const char *what, int sig, int catch_it, int block_it) {
    int ready[2], release[2];
    if (pipe(ready) || pipe(release)) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    pid_t p1 = fork();
    if (p1 < 0) {
        perror("fork");
        exit(1);
    }
    if (p1 == 0) {
        close(ready[0]);
        close(release[1]);
        if (catch_it)
            signal(sig, on_usr1);
        if (block_it) {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, sig);
            sigprocmask(SIG_BLOCK, &s, NULL);
        }
        pid_t c = vfork();
        if (c == 0) {
            char b;
            if (write(ready[1], "r", 1) != 1)
                _exit(2);
            /* Until the grandparent closes its end. */
            while (read(release[0], &b, 1) > 0)
                ;
            _exit(0);
        }
        sigset_t pending;
        sigpending(&pending);
        printf("  %s: vfork returned, caught %d, pending %d\n", what, (int)caught,
               sigismember(&pending, sig));
        int st;
        waitpid(c, &st, 0);
        exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char b;
    if (read(ready[0], &b, 1) != 1) {
        puts("child did not run");
        exit(1);
    }
    kill(p1, sig);
    if (catch_it || block_it) {
        /* The parent resumes only after its child ends. */
        close(release[1]);
    }
    int st;
    if (waitpid(p1, &st, 0) != p1) {
        perror("waitpid");
        exit(1);
    }
    if (WIFSIGNALED(st))
        printf("%s: parent killed by %s\n", what, strsignal(WTERMSIG(st)));
    else
        printf("%s: parent exited %d\n", what, WEXITSTATUS(st));
    /* Ends the vfork child. */
    close(release[1]);
    close(ready[0]);
}

int main(void) {
    round_("SIGTERM", SIGTERM, 0, 0);
    round_("SIGKILL", SIGKILL, 0, 0);
    round_("SIGUSR1 caught", SIGUSR1, 1, 0);
    round_("SIGTERM blocked", SIGTERM, 0, 1);
    return 0;
}
