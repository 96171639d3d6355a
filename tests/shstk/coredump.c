/* A guest that dies with a core dump (crates/cli/tests/coredump.rs).
 *   ret          smash() overwrites its own return address; under --shstk=on its RET raises
 *                #CP (SIGSEGV, SEGV_CPERR) with RAX = 0x1234567890 and the SSP one entry below
 *                main's (the CALL's push), which main prints first.
 *   ret-threads  the same after starting two threads that block in read().
 *   abort        two threads, abort() from main (SIGABRT), no shadow stacks needed.
 *   wait-status  forks children that abort() and prints what the parent's wait4 and waitid
 *                say of each: with RLIMIT_CORE unlimited the core-dumped bit (WCOREDUMP) is
 *                set and waitid's si_code is CLD_DUMPED; with RLIMIT_CORE 0 neither is.
 * Prints "pid=N ssp=0x..." before dying so the test can check the core against it. */
#include "cet.h"
#include <pthread.h>

#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>

static int pipefd[2], ready[2];

static void *blocker(void *a) {
    char c;
    long tid = syscall(SYS_gettid);
    if (write(ready[1], &tid, sizeof tid) != sizeof tid) return a;
    if (read(pipefd[0], &c, 1) < 0) return a;
    return a;
}

/* Whether thread `tid` is asleep (in the read() it goes to right after reporting ready). */
static int asleep(long tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

__attribute__((noinline)) static void elsewhere(void) {
    puts("elsewhere() ran: no shadow stack stopped the RET");
    _exit(66);
}

__attribute__((noinline)) static long smash(void) {
    void **ra = (void **)__builtin_frame_address(0) + 1;
    *ra = (void *)elsewhere;
    __asm__ volatile("" ::: "memory");
    return 0x1234567890L;
}

/* Starts two threads and returns once both are blocked in read(). */
static void start_threads(void) {
    pthread_t t;
    long tids[2];
    if (pipe(pipefd) != 0 || pipe(ready) != 0) _exit(2);
    pthread_create(&t, 0, blocker, 0);
    pthread_create(&t, 0, blocker, 0);
    for (int i = 0; i < 2; i++)
        if (read(ready[0], &tids[i], sizeof tids[i]) != sizeof tids[i]) _exit(2);
    for (int i = 0; i < 2; i++)
        while (!asleep(tids[i])) sched_yield();
}

static pid_t aborting_child(rlim_t core) {
    pid_t p = fork();
    if (p == 0) {
        struct rlimit r = {core, core};
        setrlimit(RLIMIT_CORE, &r);
        abort();
    }
    return p;
}

static void wait_status(void) {
    rlim_t limits[2] = {RLIM_INFINITY, 0};
    for (int i = 0; i < 2; i++) {
        const char *lim = limits[i] ? "unlimited" : "0";
        int st = 0;
        pid_t p = aborting_child(limits[i]);
        pid_t w = waitpid(p, &st, 0);
        printf("RLIMIT_CORE %s: wait4 %d, signaled %d, signal %d, core dumped %d\n", lim, w == p,
               WIFSIGNALED(st), WTERMSIG(st), !!WCOREDUMP(st));
        p = aborting_child(limits[i]);
        siginfo_t si = {0};
        int r = waitid(P_PID, p, &si, WEXITED);
        printf("RLIMIT_CORE %s: waitid %d, pid %d, si_code %s, status %d\n", lim, r,
               si.si_pid == p, si.si_code == CLD_DUMPED ? "CLD_DUMPED" : si.si_code == CLD_KILLED ? "CLD_KILLED" : "other",
               si.si_status);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "wait-status")) {
        wait_status();
        return 0;
    }
    if (!strcmp(argv[1], "abort")) {
        start_threads();
        printf("pid=%d\n", getpid());
        fflush(stdout);
        abort();
    }
    if (!strcmp(argv[1], "ret-threads")) start_threads();
    printf("pid=%d ssp=%#lx\n", getpid(), (unsigned long)rdssp());
    fflush(stdout);
    long r = smash();
    printf("smash returned %ld\n", r);
    return 0;
}
