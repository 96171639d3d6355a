// Probes addresses it is given on stdin (hex, one per line) with a one-byte read and a one-byte
// write, printing for each what happened. First prints its own /proc/self/maps and "ready", so
// the test can tell its mappings from cetbox's (crates/cli/tests/hostile.rs,
// guest_cannot_reach_cetbox_memory): every address outside the guest's mappings must fault
// as on Linux, SIGSEGV with SEGV_MAPERR at that address, whatever cetbox keeps there (its code
// cache, heap, thread contexts and the shadow-stack pointer they hold, stacks, page table).
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sigjmp_buf env;
static void *fault_addr;
static int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(env, 1);
}

static const char *outcome(unsigned long addr, int faulted) {
    if (!faulted)
        return "ok";
    if (fault_addr != (void *)addr)
        return "SIGSEGV-elsewhere";
    return fault_code == SEGV_MAPERR ? "SIGSEGV-MAPERR" : "SIGSEGV-other";
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];
    while (m && fgets(line, sizeof line, m))
        fputs(line, stdout);
    if (m)
        fclose(m);
    puts("ready");
    fflush(stdout);

    while (fgets(line, sizeof line, stdin)) {
        unsigned long addr = strtoul(line, NULL, 16);
        volatile unsigned char *p = (volatile unsigned char *)addr;
        int faulted = 0;
        if (sigsetjmp(env, 1))
            faulted = 1;
        else
            (void)*p;
        printf("%lx read %s", addr, outcome(addr, faulted));
        faulted = 0;
        if (sigsetjmp(env, 1))
            faulted = 1;
        else
            *p = 0x5a;
        printf(" write %s\n", outcome(addr, faulted));
        fflush(stdout);
    }
    return 0;
}
