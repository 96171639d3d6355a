/* Threads created one after another, each running code an earlier (ended) thread made hot,
 * with the code changed between them: rewritten in place, unmapped and mapped again with
 * other code at the same address, made non-executable (the thread must fault), moved with
 * mremap. Under cetbox a new thread may take over an ended thread's engine with its
 * translations (crates/linux/src/engine_pool.rs); none of them may run after the code it was
 * made from changed. Then waves of concurrent threads, more than the engines kept, ending
 * while others start, some of them signalled as they end. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*fn_t)(int);

static unsigned char *code;

/* mov eax, edi ; add eax, imm32 ; ret */
static void emit_add(unsigned char *p, int imm) {
    unsigned char c[] = {0x89, 0xf8, 0x05, 0, 0, 0, 0, 0xc3};
    memcpy(c + 3, &imm, 4);
    memcpy(p, c, sizeof c);
}

/* imul eax, edi, imm32 ; ret */
static void emit_mul(unsigned char *p, int imm) {
    unsigned char c[] = {0x69, 0xc7, 0, 0, 0, 0, 0xc3};
    memcpy(c + 2, &imm, 4);
    memcpy(p, c, sizeof c);
}

static sigjmp_buf fault_jmp;
static void on_segv(int sig) {
    (void)sig;
    siglongjmp(fault_jmp, 1);
}

/* Calls the generated function often enough that an engine translates it, and some libc
 * code too (formatting, string functions) that every thread shares. */
static void *worker(void *arg) {
    fn_t f = (fn_t)arg;
    long sum = 0;
    char buf[64];
    for (int i = 0; i < 3000; i++) {
        sum += f(i);
        if (i % 500 == 0) {
            snprintf(buf, sizeof buf, "%d:%ld", i, sum);
            sum += (long)strlen(buf);
        }
    }
    return (void *)sum;
}

/* The same, expecting the code not to be executable: the thread catches its own SIGSEGV. */
static void *faulting_worker(void *arg) {
    fn_t f = (fn_t)arg;
    if (sigsetjmp(fault_jmp, 1) == 0) {
        long r = f(1);
        return (void *)(r + 1000000);
    }
    return (void *)-1L;
}

static long run_one(void *(*fn)(void *), void *arg) {
    pthread_t t;
    void *r;
    if (pthread_create(&t, 0, fn, arg) != 0 || pthread_join(t, &r) != 0) {
        puts("pthread failed");
        _exit(1);
    }
    return (long)r;
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
    (void)sig;
    usr1_seen = 1;
}

/* A wave member: a little work on a shared function, then it ends. */
static void *wave_worker(void *arg) {
    long k = (long)arg;
    long sum = 0;
    for (int i = 0; i < 400; i++)
        sum += ((fn_t)code)(i) ^ k;
    return (void *)sum;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, 0);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);

    code = mmap(0, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 1;
    fn_t f = (fn_t)code;

    /* Rewritten in place between threads. */
    for (int round = 0; round < 6; round++) {
        if (round % 2)
            emit_mul(code, round + 2);
        else
            emit_add(code, round * 1000);
        printf("in place, round %d: %ld\n", round, run_one(worker, f));
    }

    /* Unmapped, and other code mapped at the same address. */
    for (int round = 0; round < 4; round++) {
        munmap(code, 8192);
        unsigned char *p = mmap(code, 8192, PROT_READ | PROT_WRITE | PROT_EXEC,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p != code)
            return 2;
        emit_add(code, 7 - round * 3);
        printf("remapped, round %d: %ld\n", round, run_one(worker, f));
    }

    /* Made non-executable: the next thread faults instead of running the old code. */
    run_one(worker, f);
    mprotect(code, 8192, PROT_READ | PROT_WRITE);
    printf("not executable: %ld\n", run_one(faulting_worker, f));
    mprotect(code, 8192, PROT_READ | PROT_WRITE | PROT_EXEC);
    emit_mul(code, -3);
    printf("executable again: %ld\n", run_one(worker, f));

    /* Moved: the old address is gone, the code runs at the new one. */
    void *target = mmap(0, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *moved = mremap(code, 8192, 8192, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    if (target == MAP_FAILED || moved != target)
        return 3;
    printf("old address after the move: %ld\n", run_one(faulting_worker, f));
    code = moved;
    printf("new address: %ld\n", run_one(worker, (void *)moved));

    /* Waves of concurrent threads, more than the engines kept, some signalled as they end;
     * the code changes between waves. */
    for (int wave = 0; wave < 5; wave++) {
        emit_add(code, wave * 11);
        pthread_t t[12];
        for (long k = 0; k < 12; k++)
            if (pthread_create(&t[k], 0, wave_worker, (void *)k) != 0)
                return 4;
        for (int k = 0; k < 12; k += 3)
            pthread_kill(t[k], SIGUSR1);
        long total = 0;
        for (int k = 0; k < 12; k++) {
            void *r;
            pthread_join(t[k], &r);
            total += (long)r;
        }
        printf("wave %d: %ld\n", wave, total);
    }
    return 0;
}
