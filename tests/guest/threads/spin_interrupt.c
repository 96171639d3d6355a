// A thread spinning in a tight loop is reached by what other threads do: a store it polls, a
// signal sent to it, the unmapping of the code it runs, and a rewrite of the code it runs.
// Each must take effect while the loop spins (a translated loop chains to itself inside the
// code cache, so the engine has to reach a check point in it), and each must look exactly as
// it does natively: the signal runs the handler on the spinning thread, the unmapped code
// faults with SIGSEGV/SEGV_MAPERR at its address, the rewritten code runs.
//! cflags: -pthread
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static atomic_int ready;
static atomic_int flag;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_usr1(int sig) {
    (void)sig;
    siglongjmp(env, 1);
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(env, 2);
}

static void wait_ready(void) {
    while (!atomic_load(&ready))
        ;
}

// 1. A loop reading a flag another thread stores.
static void *poll_flag(void *arg) {
    (void)arg;
    atomic_store(&ready, 1);
    unsigned long spins = 0;
    while (!atomic_load_explicit(&flag, memory_order_relaxed))
        spins++;
    (void)spins;
    return "store: the spinning thread saw the flag";
}

// 2. A one-instruction loop (jmp to itself) left only by the signal handler's siglongjmp.
static void *spin_for_signal(void *arg) {
    (void)arg;
    if (sigsetjmp(env, 1) == 0) {
        atomic_store(&ready, 1);
        __asm__ volatile("1: jmp 1b");
    }
    return "signal: the handler ran on the spinning thread and left the loop";
}

// 3 and 4: spin in code on a page of its own, called through a function pointer.
static void *spin_in_page(void *page) {
    if (sigsetjmp(env, 1) == 0) {
        atomic_store(&ready, 1);
        ((void (*)(void))page)();
        return "returned";
    }
    return "faulted";
}

static void *code_page(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
    if (p == MAP_FAILED) {
        perror("mmap");
        _exit(1);
    }
    // jmp . (EB FE): spins at the first byte of the page.
    memcpy(p, "\xeb\xfe", 2);
    return p;
}

static const char *run(void *(*fn)(void *), void *arg, void (*act)(pthread_t)) {
    pthread_t t;
    void *res;
    atomic_store(&ready, 0);
    pthread_create(&t, NULL, fn, arg);
    wait_ready();
    act(t);
    pthread_join(t, &res);
    return res;
}

static void set_flag(pthread_t t) {
    (void)t;
    atomic_store(&flag, 1);
}

static void send_usr1(pthread_t t) { pthread_kill(t, SIGUSR1); }

static void *page;

static void unmap_page(pthread_t t) {
    (void)t;
    munmap(page, 4096);
}

static void rewrite_page(pthread_t t) {
    (void)t;
    // ret; nop (C3 90) over the jmp, in one store.
    __atomic_store_n((uint16_t *)page, (uint16_t)0x90c3, __ATOMIC_SEQ_CST);
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = NULL;
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);

    puts(run(poll_flag, NULL, set_flag));
    puts(run(spin_for_signal, NULL, send_usr1));

    page = code_page();
    const char *r = run(spin_in_page, page, unmap_page);
    printf("unmap: the spinning thread %s", r);
    if (fault_addr == page)
        printf(" at the first byte of the unmapped page, si_code %s\n",
               fault_code == SEGV_MAPERR ? "SEGV_MAPERR" : "other");
    else
        printf(" elsewhere\n");

    page = code_page();
    printf("rewrite: the spinning thread %s\n", (const char *)run(spin_in_page, page, rewrite_page));
    return 0;
}
