// A critical-section descriptor the kernel rejects kills the thread with SIGSEGV the next
// time the kernel looks at it (kernel/rseq.c rseq_get_rseq_cs, rseq_need_restart; the
// failure ends in force_sigsegv): here at a signal delivery, either while the thread spins
// inside the section (a periodic timer) or, for the checks that do not depend on where the
// thread is, right after raise(). A handler for SIGSEGV does not save it: delivering SIGSEGV
// runs the same check, which fails again and resets SIGSEGV to its default action.
//! env: GLIBC_TUNABLES=glibc.pthread.rseq=0
#include "../common/rseq_spin.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>

static struct rseq_area rs;
static struct rseq_cs_desc d;

static void on_signal(int sig) {
    (void)sig;
}

static void handle(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(sig, &sa, NULL);
}

enum how { RAISE, SPIN };

static void run(const char *what, enum how how, int segv_handler) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        alarm(20);
        handle(SIGUSR1);
        if (segv_handler)
            handle(SIGSEGV);
        if (how == RAISE) {
            rs.rseq_cs = (uint64_t)&d;
            raise(SIGUSR1);
            // Not reached if the descriptor is rejected.
            _exit(rs.rseq_cs == 0 ? 10 : 11);
        }
        handle(SIGPROF);
        struct itimerval it = {{0, 2000}, {0, 2000}};
        setitimer(ITIMER_PROF, &it, NULL);
        rseq_spin(&rs, &d);
        _exit(12);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        printf("%-52s killed by signal %d\n", what, WTERMSIG(st));
    else
        printf("%-52s exit %d\n", what, WEXITSTATUS(st));
}

int main(void) {
    if (rseq_call(&rs, sizeof rs, 0, RSEQ_SIG) != 0) {
        printf("rseq registration failed\n");
        return 1;
    }
    // The children inherit the registration (fork keeps it).
    d = rseq_spin_desc(rseq_spin_abort);
    run("valid descriptor, signal outside the section", RAISE, 0);
    run("valid descriptor, signal inside the section", SPIN, 0);

    d = rseq_spin_desc(rseq_spin_abort_badsig);
    run("bad signature, signal outside the section", RAISE, 0);
    run("bad signature, with a SIGSEGV handler", RAISE, 1);
    run("bad signature, signal inside the section", SPIN, 0);

    d = rseq_spin_desc(rseq_spin_abort);
    d.version = 1;
    run("version 1, signal outside the section", RAISE, 0);

    d = rseq_spin_desc(rseq_spin_start + 1);
    run("abort handler inside the section", RAISE, 0);

    d = rseq_spin_desc(rseq_spin_abort);
    d.post_commit_offset = ~0ull - d.start_ip + 2;
    run("section wrapping around", RAISE, 0);

    d = rseq_spin_desc(rseq_spin_abort);
    d.flags = 1;
    run("descriptor flags, signal outside the section", RAISE, 0);
    run("descriptor flags, signal inside the section", SPIN, 0);

    d = rseq_spin_desc(rseq_spin_abort);
    rs.flags = 1;
    run("area flags, signal outside the section", RAISE, 0);
    run("area flags, signal inside the section", SPIN, 0);
    rs.flags = 0;

    d = rseq_spin_desc(rseq_spin_abort);
    d.abort_ip = 0x800000000000ull;
    run("abort handler beyond the user address space", RAISE, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        handle(SIGUSR1);
        rs.rseq_cs = 0x800000000000ull;
        raise(SIGUSR1);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    printf("%-52s %s %d\n", "rseq_cs beyond the user address space",
           WIFSIGNALED(st) ? "killed by signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return 0;
}
