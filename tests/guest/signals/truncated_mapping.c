/* A file truncated under a shared mapping: touching the vanished page raises SIGBUS
 * (BUS_ADRERR, si_addr = the page). The handler jumps back out. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile void *fault_addr;
static volatile int fault_code, fault_sig;

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(env, 1);
}

int main(void) {
    char path[] = "/tmp/cetbox-trunc-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    char buf[8192];
    memset(buf, 'x', sizeof buf);
    if (write(fd, buf, sizeof buf) != sizeof buf) return 1;
    volatile char *m = mmap(0, 8192, PROT_READ, MAP_SHARED, fd, 0);
    printf("before: %c %c\n", m[0], m[4096]);
    if (ftruncate(fd, 100)) return 1;
    struct sigaction sa = {.sa_sigaction = on_bus, .sa_flags = SA_SIGINFO};
    sigaction(SIGBUS, &sa, 0);
    printf("first page still readable: %c\n", m[0]);
    if (sigsetjmp(env, 1) == 0) {
        char c = m[4096 + 5];
        printf("no fault: %d\n", c);
    } else {
        printf("fault: sig=%d code=%d addr_in_second_page=%d\n", fault_sig, fault_code,
               (char *)fault_addr >= (char *)m + 4096 && (char *)fault_addr < (char *)m + 8192);
    }
    if (sigsetjmp(env, 1) == 0) {
        char c = m[4096];
        printf("no fault again: %d\n", c);
    } else {
        printf("fault again: sig=%d code=%d\n", fault_sig, fault_code);
    }
    return 0;
}
