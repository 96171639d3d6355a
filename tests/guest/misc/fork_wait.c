#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    fflush(stdout);
    for (int i = 0; i < 4; i++) {
        pid_t p = fork();
        if (p == 0) {
            if (i == 3) raise(SIGKILL);
            if (i == 2) { volatile int *z = 0; *z = 1; }
            _exit(i * 10 + 1);
        }
        int st;
        waitpid(p, &st, 0);
        if (WIFEXITED(st)) printf("child %d exited %d\n", i, WEXITSTATUS(st));
        else if (WIFSIGNALED(st)) printf("child %d killed by %d\n", i, WTERMSIG(st));
    }
    int fds[2];
    pipe(fds);
    pid_t p = fork();
    if (p == 0) {
        close(fds[0]);
        for (int i = 0; i < 1000; i++) dprintf(fds[1], "%d\n", i);
        _exit(0);
    }
    close(fds[1]);
    char buf[256]; long total = 0, sum = 0; ssize_t n;
    FILE *f = fdopen(fds[0], "r");
    while (fgets(buf, sizeof buf, f)) { sum += atol(buf); total++; }
    (void)n;
    int st;
    printf("read %ld lines sum %ld from child, wait ok %d status %d\n", total, sum, waitpid(p, &st, 0) == p, st);
    printf("wait with no children: %d\n", wait(NULL));
    return 0;
}
