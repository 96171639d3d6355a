// A signal delivered while the thread is inside a critical section aborts it: the kernel
// moves the instruction pointer to the abort handler and clears rseq_cs before it builds the
// signal frame (arch/x86/kernel/signal.c setup_rt_frame -> rseq_signal_deliver), so the
// handler's ucontext shows the abort handler's address, never one inside the section, and
// after the handler returns the thread runs the abort handler. A periodic timer interrupts a
// section that spins until aborted, 20 times. A descriptor left in rseq_cs while the thread
// is outside its section is cleared at the next signal and has no other effect.
//! env: GLIBC_TUNABLES=glibc.pthread.rseq=0
#include "../common/rseq_spin.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>

#define ROUNDS 20

static struct rseq_area rs;
static volatile int hits, inside, at_abort, cleared;

static void on_alarm(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    char *ip = (char *)uc->uc_mcontext.gregs[REG_RIP];
    hits++;
    if (ip >= rseq_spin_start && ip < rseq_spin_end)
        inside++;
    if (ip == rseq_spin_abort) {
        at_abort++;
        if (rs.rseq_cs == 0)
            cleared++;
    }
}

int main(void) {
    if (rseq_call(&rs, sizeof rs, 0, RSEQ_SIG) != 0) {
        printf("rseq registration failed\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);

    // Outside the section, a valid descriptor is cleared at the next signal.
    struct rseq_cs_desc d = rseq_spin_desc(rseq_spin_abort);
    rs.rseq_cs = (uint64_t)&d;
    raise(SIGALRM);
    printf("descriptor outside its section, after a signal: rseq_cs %s\n",
           rs.rseq_cs == 0 ? "cleared" : "kept");
    hits = 0;

    struct itimerval it = {{0, 2000}, {0, 2000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int rounds = 0;
    while (rounds < ROUNDS) {
        int before = at_abort;
        rseq_spin(&rs, &d);
        // Back from the abort handler: a signal that hit the section counts (an abort
        // caused by a preemption alone does not).
        if (at_abort != before)
            rounds++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("rounds aborted by a signal: %d\n", rounds);
    printf("handler saw an address inside the section: %d times\n", inside);
    printf("handler saw rseq_cs cleared at the abort handler: %s\n",
           cleared == at_abort ? "always" : "not always");
    return 0;
}
