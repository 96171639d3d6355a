//! link: static-pie
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char *alt;
static size_t altsz = 65536;
static sigjmp_buf env;
static volatile int on_alt, flags_onstack, depth_reached;
static void h(int sig, siginfo_t *si, void *uc) {
    (void)si; (void)uc; (void)sig;
    char local;
    on_alt = &local >= alt && &local < alt + altsz;
    stack_t cur;
    sigaltstack(NULL, &cur);
    flags_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
    siglongjmp(env, 1);
}
static int recurse(int n) {
    volatile char buf[1024];
    buf[0] = (char)n;
    depth_reached = n;
    return recurse(n + 1) + buf[0];
}
int main(void) {
    alt = malloc(altsz);
    stack_t ss = {.ss_sp = alt, .ss_size = altsz, .ss_flags = 0};
    printf("sigaltstack set: %d\n", sigaltstack(&ss, NULL));
    stack_t old;
    sigaltstack(NULL, &old);
    printf("query: size ok %d flags %d\n", old.ss_size == altsz && old.ss_sp == alt, old.ss_flags);
    stack_t tiny = {.ss_sp = alt, .ss_size = 100, .ss_flags = 0};
    printf("too small: %d\n", sigaltstack(&tiny, NULL));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) raise(SIGUSR1);
    printf("SIGUSR1 handler on alt stack %d, SS_ONSTACK inside %d\n", on_alt, flags_onstack);
    on_alt = 0;
    if (sigsetjmp(env, 1) == 0) recurse(0);
    printf("stack overflow caught on alt stack %d, deep %d\n", on_alt, depth_reached > 1000);
    sigaltstack(NULL, &old);
    printf("after: SS_ONSTACK %d\n", (old.ss_flags & SS_ONSTACK) != 0);
    stack_t dis = {.ss_flags = SS_DISABLE};
    printf("disable: %d\n", sigaltstack(&dis, NULL));
    sigaltstack(NULL, &old);
    printf("disabled flag %d\n", (old.ss_flags & SS_DISABLE) != 0);
    return 0;
}
