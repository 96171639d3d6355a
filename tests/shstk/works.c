/* Correct programs that must behave exactly the same with shadow stacks on. One case per process:
 *   works CASE
 *   deeprec   100,000-frame recursion (direct and through function pointers), unwound by RET
 *   nested    signal handlers interrupted by other signals (and by themselves, SA_NODEFER)
 *   altstack  SA_ONSTACK handlers on a sigaltstack that call functions 2,000 frames deep
 *   threads   pthreads that recurse, return, and are joined
 *   fork      fork from a helper function; both sides return through the frames above it
 * The output is deterministic; the test compares it with the native run byte for byte. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- deeprec */
__attribute__((noinline)) static uint64_t down(uint64_t n) {
    volatile uint64_t keep = n * 2654435761u;
    if (n == 0) return 1;
    uint64_t r = down(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return (r ^ keep) + n;
}
static uint64_t (*volatile ping_p)(uint64_t), (*volatile pong_p)(uint64_t);
__attribute__((noinline)) static uint64_t ping(uint64_t n) {
    if (n == 0) return 7;
    uint64_t r = pong_p(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return r * 3 + n;
}
__attribute__((noinline)) static uint64_t pong(uint64_t n) {
    if (n == 0) return 11;
    uint64_t r = ping_p(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return r * 5 - n;
}
static void deeprec(void) {
    ping_p = ping;
    pong_p = pong;
    for (uint64_t n = 10; n <= 100000; n *= 10) printf("down(%lu) = %#lx\n", n, down(n));
    printf("ping(100000) = %#lx\n", ping(100000));
    /* Again after the deep returns: the shadow stack must be back in step at the top. */
    printf("down(5) = %#lx\n", down(5));
}

/* ---- nested signals */
static char trail[256];
static volatile int tn;
static void mark(char c) { if (tn < 255) trail[tn++] = c; }
__attribute__((noinline)) static int work(int n) { return n <= 1 ? 1 : work(n - 1) + work(n - 2); }

static void h_usr2(int sig) {
    (void)sig;
    mark('B');
    mark('0' + work(10) % 10);
    mark('b');
}
static void h_usr1(int sig) {
    (void)sig;
    mark('A');
    raise(SIGUSR2); /* interrupts this handler */
    mark('0' + work(12) % 10);
    raise(SIGUSR2);
    mark('a');
}
static volatile int depth;
static void h_self(int sig) {
    int d = ++depth;
    mark('0' + d);
    if (d < 8) raise(sig); /* SA_NODEFER: the same handler nests */
    mark('0' + work(d + 5) % 10);
    depth--;
}
static void h_alrm(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)si; (void)uc;
    mark('T');
    raise(SIGUSR1); /* a handler interrupting a handler interrupting a handler */
    mark('t');
}
static void nested(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_usr2;
    sigaction(SIGUSR2, &sa, 0);
    sa.sa_handler = h_usr1;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = h_self;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGHUP, &sa, 0);
    sa.sa_sigaction = h_alrm;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, 0);
    for (int round = 0; round < 3; round++) {
        tn = 0;
        raise(SIGUSR1);
        raise(SIGHUP);
        raise(SIGALRM);
        trail[tn] = 0;
        printf("round %d: %s work=%d\n", round, trail, work(15));
    }
    /* A blocked signal delivered at sigprocmask's return while a handler is running. */
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    tn = 0;
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR2);
    mark('|');
    sigprocmask(SIG_SETMASK, &old, 0);
    trail[tn] = 0;
    printf("unblocked: %s\n", trail);
}

/* ---- handlers on a sigaltstack */
static char *alt;
static const size_t altsize = 1 << 20;
static volatile int alt_ok, alt_deep_ok;
__attribute__((noinline)) static uint64_t deep_on_alt(int n) {
    char here;
    if (!(&here >= alt && &here < alt + altsize)) alt_deep_ok = 0;
    if (n == 0) return 3;
    uint64_t r = deep_on_alt(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return r * 7 + (uint64_t)n;
}
static volatile uint64_t alt_result, alt_result2;
static void h_alt2(int sig) {
    (void)sig;
    alt_result2 = deep_on_alt(500);
}
static void h_alt(int sig) {
    char here;
    (void)sig;
    alt_ok = &here >= alt && &here < alt + altsize;
    alt_result = deep_on_alt(2000);
    raise(SIGUSR2); /* nested, on the same alternate stack */
}
static void altstack(void) {
    alt = malloc(altsize);
    stack_t ss = {.ss_sp = alt, .ss_size = altsize};
    printf("sigaltstack: %d\n", sigaltstack(&ss, 0));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h_alt;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = h_alt2;
    sigaction(SIGUSR2, &sa, 0);
    for (int i = 0; i < 3; i++) {
        alt_deep_ok = 1;
        alt_result = alt_result2 = 0;
        raise(SIGUSR1);
        printf("on alt stack %d, deep calls stayed there %d, results %#lx %#lx\n", alt_ok,
               alt_deep_ok, (unsigned long)alt_result, (unsigned long)alt_result2);
    }
    printf("after: %#lx\n", (unsigned long)deep_on_alt(100));
}

/* ---- threads */
static void *thread_main(void *arg) {
    long id = (long)arg;
    uint64_t r = down(1000 + 1000 * (uint64_t)id);
    return (void *)(uintptr_t)(r ^ (uint64_t)id);
}
static void threads(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], 0, thread_main, (void *)i)) { puts("pthread_create failed"); return; }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: %#lx\n", i, (unsigned long)(uintptr_t)r);
    }
    printf("main after join: %#lx\n", (unsigned long)down(50));
}

/* ---- fork */
__attribute__((noinline)) static pid_t fork_here(int *depth_out) {
    pid_t p = fork();
    *depth_out = (int)(down(100) & 0xff);
    return p;
}
__attribute__((noinline)) static int child_or_parent(void) {
    int d;
    pid_t p = fork_here(&d);
    if (p < 0) { puts("fork failed"); return -1; }
    if (p == 0) {
        /* The child returns through fork_here's and this function's frames (both stacks were
         * copied), then exits from main. */
        printf("child: d=%d work=%d\n", d, work(12));
        fflush(stdout);
        return 0;
    }
    int st;
    waitpid(p, &st, 0);
    printf("parent: d=%d child %s %d\n", d, WIFEXITED(st) ? "exited" : "killed by",
           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 1;
}
static int forks(void) {
    int r = child_or_parent();
    if (r == 0) {
        printf("child back in main: %#lx\n", (unsigned long)down(20));
        fflush(stdout);
        exit(23);
    }
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IOLBF, 0);
    if (!strcmp(argv[1], "deeprec")) deeprec();
    else if (!strcmp(argv[1], "nested")) nested();
    else if (!strcmp(argv[1], "altstack")) altstack();
    else if (!strcmp(argv[1], "threads")) threads();
    else if (!strcmp(argv[1], "fork")) forks();
    else { puts("unknown case"); return 2; }
    puts("done");
    return 0;
}
