#include <signal.h>
#include <stdio.h>
int main(void) {
    printf("before SIGTERM\n");
    fflush(stdout);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGTERM);
    printf("still alive while blocked\n");
    fflush(stdout);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    printf("not reached\n");
    return 0;
}
