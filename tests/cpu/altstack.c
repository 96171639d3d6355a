/* A signal delivered on an alternate stack of MINSIGSTKSZ (2048) bytes, the smallest
 * sigaltstack accepts: the x86-64-v3 frame (AT_MINSIGSTKSZ 1472) fits. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *stack_lo, *stack_hi;
static volatile int on_alt;

static void handler(int sig) {
    char here;
    on_alt = &here >= stack_lo && &here < stack_hi;
}

int main(void) {
    stack_t ss;
    ss.ss_sp = malloc(MINSIGSTKSZ);
    ss.ss_size = MINSIGSTKSZ;
    ss.ss_flags = 0;
    stack_lo = ss.ss_sp;
    stack_hi = stack_lo + MINSIGSTKSZ;
    if (sigaltstack(&ss, 0) != 0) {
        perror("sigaltstack");
        return 1;
    }
    ss.ss_size = MINSIGSTKSZ - 1;
    printf("size-1 refused: %d\n", sigaltstack(&ss, 0) != 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, 0);
    raise(SIGUSR2);
    printf("handler ran on the alternate stack: %d\n", on_alt);
    return 0;
}
