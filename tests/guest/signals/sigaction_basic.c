// Handlers installed with sigaction: raise, SA_RESETHAND, SA_NODEFER, sa_mask, the mask seen
// inside a handler, and old-action readback.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile int depth, count;

static void show_mask(const char *where) {
    sigset_t s;
    sigprocmask(SIG_BLOCK, NULL, &s);
    printf("%s: USR1=%d USR2=%d INT=%d\n", where, sigismember(&s, SIGUSR1),
           sigismember(&s, SIGUSR2), sigismember(&s, SIGINT));
}

static void h(int sig) {
    count++;
    printf("handler sig=%d depth=%d\n", sig, depth);
    show_mask("in handler");
    if (sig == SIGUSR1 && depth++ < 2)
        raise(SIGUSR1);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1); // nested raise is deferred until the handler returns
    printf("after raise: count=%d\n", count);
    show_mask("main");

    depth = 0;
    count = 0;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1); // nested raise runs immediately
    printf("nodefer: count=%d\n", count);

    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    sigaction(SIGUSR2, NULL, &old);
    printf("resethand: handler is %s\n", old.sa_handler == SIG_DFL ? "SIG_DFL" : "other");

    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    printf("ignored SIGUSR2 survived\n");

    sa.sa_handler = h;
    sa.sa_flags = SA_SIGINFO | 0x400; // SA_UNSUPPORTED must read back as cleared
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGHUP, NULL, &old);
    printf("flags readback: siginfo=%d unsupported=%d\n", !!(old.sa_flags & SA_SIGINFO),
           !!(old.sa_flags & 0x400));
    printf("sigaction(SIGKILL) = %d\n", sigaction(SIGKILL, &sa, NULL));
    return 0;
}
