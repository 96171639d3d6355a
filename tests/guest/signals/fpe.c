//! link: static-pie
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
static sigjmp_buf env;
static volatile int code, sig;
static void h(int s, siginfo_t *si, void *uc) { (void)uc; sig = s; code = si->si_code; siglongjmp(env, 1); }
static int divide(int a, int b) { return a / b; }
static long ldivide(long a, long b) { return a / b; }
static unsigned udiv(unsigned a, unsigned b) { return a / b; }
static int modulo(int a, int b) { return a % b; }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGFPE, &sa, NULL);
    int (*volatile dv)(int, int) = divide;
    long (*volatile ldv)(long, long) = ldivide;
    unsigned (*volatile udv)(unsigned, unsigned) = udiv;
    int (*volatile md)(int, int) = modulo;
    struct { const char *what; int kind; long a, b; } cases[] = {
        {"7/0", 0, 7, 0}, {"INT_MIN/-1", 0, INT_MIN, -1}, {"LONG_MIN/-1", 1, LONG_MIN, -1}, {"long 5/0", 1, 5, 0},
        {"unsigned 9/0", 2, 9, 0}, {"INT_MIN%-1", 3, INT_MIN, -1}, {"10/3", 0, 10, 3}, {"-7%3", 3, -7, 3},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        sig = 0; code = 0;
        if (sigsetjmp(env, 1) == 0) {
            long r;
            switch (cases[i].kind) {
            case 0: r = dv((int)cases[i].a, (int)cases[i].b); break;
            case 1: r = ldv(cases[i].a, cases[i].b); break;
            case 2: r = udv((unsigned)cases[i].a, (unsigned)cases[i].b); break;
            default: r = md((int)cases[i].a, (int)cases[i].b); break;
            }
            printf("%s = %ld\n", cases[i].what, r);
        } else {
            printf("%s: signal %d si_code %d (FPE_INTDIV=%d)\n", cases[i].what, sig, code, FPE_INTDIV);
        }
    }
    /* floating-point division by zero does not trap with default MXCSR */
    volatile double z = 0.0;
    printf("1.0/0.0 = %f, no signal\n", 1.0 / z);
    fflush(stdout);
    signal(SIGFPE, SIG_DFL);
    return dv(1, 0);
}
