// sigaltstack: SA_ONSTACK handlers run on the alternate stack, the state is reported as
// SS_ONSTACK inside, changes are refused there, errors, SS_AUTODISARM, and a stack overflow
// handled on the alternate stack.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <ucontext.h>
#pragma GCC diagnostic ignored "-Winfinite-recursion"
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char *alt;
static size_t altsize = 65536;

static int on_alt(void *p) {
    return (char *)p >= alt && (char *)p < alt + altsize;
}

static void h(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    int local;
    stack_t cur, ns;
    sigaltstack(NULL, &cur);
    ns.ss_sp = alt;
    ns.ss_size = altsize;
    ns.ss_flags = 0;
    int r = sigaltstack(&ns, NULL);
    printf("handler %d: on_alt=%d ss_flags=%d set_ret=%d errno=%s uc_stack.ss_flags=%#x "
           "uc_stack_sp_ok=%d frame_aligned=%d\n",
           sig, on_alt(&local), cur.ss_flags, r, r ? strerrorname_np(errno) : "-",
           uc->uc_stack.ss_flags, uc->uc_stack.ss_sp == alt,
           (int)(((uintptr_t)__builtin_frame_address(0) + 16) % 16 == 0));
    (void)si;
}

static volatile int overflowed;
static void segv(int sig, siginfo_t *si, void *ctx) {
    int local;
    (void)sig; (void)si; (void)ctx;
    printf("overflow caught: on_alt=%d code=%d\n", on_alt(&local), si->si_code);
    _exit(0);
}

__attribute__((noinline)) static int recurse(int n) {
    volatile char buf[1024];
    buf[0] = (char)n;
    return recurse(n + 1) + buf[0];
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    alt = malloc(altsize);
    stack_t ss = {0}, old;
    sigaltstack(NULL, &old);
    printf("initial: flags=%d size=%zu\n", old.ss_flags, old.ss_size);
    ss.ss_sp = alt;
    ss.ss_size = 1000;
    int r = sigaltstack(&ss, NULL);
    printf("small: %d %s\n", r, strerrorname_np(errno));
    ss.ss_size = altsize;
    ss.ss_flags = 7;
    r = sigaltstack(&ss, NULL);
    printf("badflags: %d %s\n", r, strerrorname_np(errno));
    ss.ss_flags = 0;
    printf("set: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("query: flags=%d size=%zu sp_ok=%d\n", old.ss_flags, old.ss_size, old.ss_sp == alt);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR1);
    raise(SIGUSR2);

    ss.ss_flags = SS_AUTODISARM;
    printf("autodisarm set: %d\n", sigaltstack(&ss, NULL));
    raise(SIGUSR1);
    sigaltstack(NULL, &old);
    printf("after autodisarm handler: flags=%#x\n", old.ss_flags);

    ss.ss_flags = SS_DISABLE;
    printf("disable: %d\n", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("disabled: flags=%d size=%zu\n", old.ss_flags, old.ss_size);
    raise(SIGUSR1);

    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
    struct rlimit rl = {8 << 20, 8 << 20};
    setrlimit(RLIMIT_STACK, &rl);
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    return recurse(0);
}
