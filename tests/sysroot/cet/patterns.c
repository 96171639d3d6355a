/* Patterns a CET-built glibc must run with shadow stacks on (crates/cli/tests/glibc_cet.rs).
 * Built against the CET glibc sysroot (tests/sysroot/glibc-cet.sh) with -fcf-protection=full
 * and -z cet-report=error, run as `cetbox run --sysroot=DIR -- patterns NAME` with
 * GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK: ld.so enables and locks shadow stacks itself
 * (sysdeps/x86_64/dl-cet.c: _dl_cet_setup_features), no cetbox option asks for it.
 * Each pattern prints what it did; a shadow-stack violation kills the run. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SHSTK_STATUS 0x5005

extern char **environ;
static const char *self;

/* Keeps the compiler from turning calls into jumps or inlining them away. */
#define NOINLINE __attribute__((noinline, noclone))
static volatile int sink;

/* The shadow-stack lines of /proc/self/status and ARCH_SHSTK_STATUS. */
static void status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "x86_Thread_features", 19) == 0)
            fputs(line, stdout);
    if (f)
        fclose(f);
    unsigned long features = ~0UL;
    long r = syscall(SYS_arch_prctl, ARCH_SHSTK_STATUS, &features);
    printf("ARCH_SHSTK_STATUS: %ld, features %#lx\n", r, features);
}

/* ---- setjmp/longjmp out of a deep call chain, then ordinary returns. */
static jmp_buf jb;
NOINLINE static void dive(int n) {
    if (n == 0)
        longjmp(jb, 42);
    dive(n - 1);
    sink++;
}
NOINLINE static int jump_once(void) {
    int r = setjmp(jb);
    if (r == 0)
        dive(50);
    return r;
}
static void p_longjmp(void) {
    int total = 0;
    for (int i = 0; i < 100; i++)
        total += jump_once();
    printf("longjmp: %d\n", total);
}

/* ---- sigsetjmp/siglongjmp out of a signal handler. */
static sigjmp_buf sjb;
static void on_usr1(int sig) {
    (void)sig;
    siglongjmp(sjb, 7);
}
NOINLINE static void raise_deep(int n) {
    if (n == 0)
        raise(SIGUSR1);
    else
        raise_deep(n - 1);
    sink++;
}
NOINLINE static int sigjump_once(void) {
    int r = sigsetjmp(sjb, 1);
    if (r == 0)
        raise_deep(20);
    return r;
}
static void p_siglongjmp(void) {
    signal(SIGUSR1, on_usr1);
    int total = 0;
    for (int i = 0; i < 20; i++)
        total += sigjump_once();
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("siglongjmp: %d, SIGUSR1 blocked after: %d\n", total, sigismember(&cur, SIGUSR1));
}

/* ---- makecontext/swapcontext coroutines (glibc allocates their shadow stacks). */
static ucontext_t main_uc, gen_uc[3];
static int value[3];
NOINLINE static void generator(int id) {
    for (int i = 1; i <= 5; i++) {
        value[id] = id * 100 + i;
        swapcontext(&gen_uc[id], &main_uc);
    }
    value[id] = -1;
}
static void p_swapcontext(void) {
    static char stacks[3][64 * 1024];
    for (int id = 0; id < 3; id++) {
        getcontext(&gen_uc[id]);
        gen_uc[id].uc_stack.ss_sp = stacks[id];
        gen_uc[id].uc_stack.ss_size = sizeof stacks[id];
        gen_uc[id].uc_link = &main_uc;
        makecontext(&gen_uc[id], (void (*)(void))generator, 1, id);
    }
    long sum = 0;
    int finished = 0;
    while (finished < 3) {
        finished = 0;
        for (int id = 0; id < 3; id++) {
            if (value[id] == -1) {
                finished++;
                continue;
            }
            swapcontext(&main_uc, &gen_uc[id]);
            if (value[id] > 0)
                sum += value[id];
        }
    }
    printf("swapcontext: sum %ld\n", sum);
}

/* ---- vfork + exec, posix_spawn: the child runs this program again. */
NOINLINE static pid_t do_vfork(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        execl(self, self, "child", (char *)0);
        _exit(127);
    }
    return pid;
}
static int wait_status(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
static void p_vfork(void) {
    pid_t pid = do_vfork();
    printf("vfork+exec: child exit %d\n", wait_status(pid));
}
static void p_posix_spawn(void) {
    pid_t pid;
    char *argv[] = {(char *)self, "child", NULL};
    int r = posix_spawn(&pid, self, NULL, NULL, argv, environ);
    printf("posix_spawn: %d, child exit %d\n", r, r == 0 ? wait_status(pid) : -1);
}

/* ---- threads: each recurses and returns; their shadow stacks come from the kernel. */
NOINLINE static long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static void *thread_main(void *arg) {
    long n = (long)arg;
    return (void *)fib(n);
}
static void p_threads(void) {
    pthread_t t[4];
    long total = 0;
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_main, (void *)(15 + i));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("threads: %ld\n", total);
}

/* ---- backtrace(): glibc dlopens libgcc_s.so.1 for its unwinder. */
NOINLINE static int bt_deep(int n) {
    if (n == 0) {
        void *frames[64];
        return backtrace(frames, 64);
    }
    int r = bt_deep(n - 1);
    sink++;
    return r;
}
NOINLINE static void p_backtrace(void) {
    int n = bt_deep(5);
    /* bt_deep x6, p_backtrace, main, __libc_start_call_main, __libc_start_main, _start: 11. */
    printf("backtrace: %d frames\n", n);
}

/* ---- qsort with a callback, deep recursion. */
static int cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static void p_qsort(void) {
    static int v[10000];
    for (int i = 0; i < 10000; i++)
        v[i] = (i * 7919) % 10007;
    qsort(v, 10000, sizeof v[0], cmp);
    int sorted = 1;
    for (int i = 1; i < 10000; i++)
        sorted &= v[i - 1] <= v[i];
    printf("qsort: sorted %d\n", sorted);
}
NOINLINE static long deep(long n) {
    if (n == 0)
        return 0;
    long r = deep(n - 1) + 1;
    sink++;
    return r;
}
static void p_recursion(void) { printf("recursion: %ld\n", deep(100000)); }

/* ---- what must still be caught: a return-address overwrite... */
NOINLINE static void target(void) {
    printf("overwrite: reached target\n");
    exit(0);
}
NOINLINE static void overwrite(void) {
    /* volatile: the compiler may not drop a store into its own frame. */
    void *volatile *ret = __builtin_frame_address(0);
    ret[1] = (void *)target;
}
/* ...and a hand-written stack switch without RSTORSSP: RSP moves to a new stack whose top
   holds a return address the shadow stack never saw. */
static char other_stack[16384] __attribute__((aligned(16)));
NOINLINE static void stack_switch(void) {
    void **top = (void **)(other_stack + sizeof other_stack) - 2;
    top[0] = (void *)target;
    asm volatile("mov %0, %%rsp\n\tret" : : "r"(top) : "memory");
}

int main(int argc, char **argv) {
    self = argv[0];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    const char *p = argv[1];
    if (!strcmp(p, "child"))
        return 0;
    status();
    if (!strcmp(p, "status"))
        ;
    else if (!strcmp(p, "longjmp"))
        p_longjmp();
    else if (!strcmp(p, "siglongjmp"))
        p_siglongjmp();
    else if (!strcmp(p, "swapcontext"))
        p_swapcontext();
    else if (!strcmp(p, "vfork"))
        p_vfork();
    else if (!strcmp(p, "posix_spawn"))
        p_posix_spawn();
    else if (!strcmp(p, "threads"))
        p_threads();
    else if (!strcmp(p, "backtrace"))
        p_backtrace();
    else if (!strcmp(p, "qsort"))
        p_qsort();
    else if (!strcmp(p, "recursion"))
        p_recursion();
    else if (!strcmp(p, "overwrite")) {
        overwrite();
        printf("overwrite: returned normally\n");
    } else if (!strcmp(p, "stack-switch"))
        stack_switch();
    else
        return 2;
    printf("done\n");
    return 0;
}
