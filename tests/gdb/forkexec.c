/* fork, then exec: the forked child runs undebugged (its marker(1) call does not stop), the
 * parent stops in marker(2), and its execve of /bin/true is reported as a SIGTRAP stop. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void marker(int who) {
    __asm__ volatile("" ::: "memory");
    (void)who;
}

int main(void) {
    pid_t p = fork();
    if (p == 0) {
        marker(1);
        _exit(7);
    }
    int st;
    waitpid(p, &st, 0);
    printf("child %d\n", WEXITSTATUS(st));
    marker(2);
    fflush(stdout);
    execl("/bin/true", "true", (char *)0);
    return 1;
}
