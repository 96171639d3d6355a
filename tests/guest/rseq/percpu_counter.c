// Per-CPU counters updated with restartable sequences, as tcmalloc and librseq do: eight
// threads (more than this machine's CPUs) each increment the counter of the CPU they run on,
// cpu_id read inside the critical section, the plain store of the new value being its last
// instruction (the commit) and the abort handler starting over. This is correct only if no
// other thread of the same CPU runs between the load and the store, or the section is
// aborted when one did (preemption, migration, signal): the total must be exactly the number
// of increments. Under cetbox that is the virtual CPUs' mutual exclusion (crates/linux/src/
// vcpu.rs); without it, two threads given the same cpu_id on two host CPUs lose updates.
//! env: GLIBC_TUNABLES=glibc.pthread.rseq=0
//! cflags: -pthread
#include "../common/rseq.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define ITERATIONS 200000
// One cache line per CPU.
#define STRIDE 8

static long *counters;
static pthread_barrier_t start;
static __thread struct rseq_area rs;

static void increment(void) {
    __asm__ __volatile__(
        ".pushsection __rseq_cs, \"aw\"\n\t"
        ".balign 32\n\t"
        "3:\n\t"
        ".long 0, 0\n\t"
        ".quad 1f, (2f - 1f), 4f\n\t"
        ".popsection\n\t"
        "5:\n\t"
        "leaq 3b(%%rip), %%rax\n\t"
        "movq %%rax, %[cs]\n\t"
        "1:\n\t"
        "movl %[cpu], %%eax\n\t"
        "shlq $6, %%rax\n\t"
        "movq (%[base], %%rax), %%rcx\n\t"
        // Some work between the load and the commit widens the window a lost update needs.
        "movl $16, %%edx\n\t"
        "6:\n\t"
        "decl %%edx\n\t"
        "jnz 6b\n\t"
        "addq $1, %%rcx\n\t"
        "movq %%rcx, (%[base], %%rax)\n\t"
        "2:\n\t"
        ".pushsection __rseq_failure, \"ax\"\n\t"
        // The signature: the 4 bytes before the abort handler (the immediate of a UD1).
        ".byte 0x0f, 0xb9, 0x3d\n\t"
        ".long 0x53053053\n\t"
        "4:\n\t"
        "jmp 5b\n\t"
        ".popsection\n\t"
        : [cs] "=m"(rs.rseq_cs)
        : [cpu] "m"(rs.cpu_id), [base] "r"(counters)
        : "rax", "rcx", "rdx", "memory", "cc");
}

static void *worker(void *arg) {
    (void)arg;
    long r = rseq_call(&rs, sizeof rs, 0, RSEQ_SIG);
    if (r != 0) {
        printf("rseq: %s\n", rseq_errname(r));
        exit(1);
    }
    pthread_barrier_wait(&start);
    for (int i = 0; i < ITERATIONS; i++)
        increment();
    return NULL;
}

int main(void) {
    counters = calloc(CPU_SETSIZE, STRIDE * sizeof(long));
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    long sum = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        sum += counters[c * STRIDE];
    printf("increments %ld, expected %ld\n", sum, (long)THREADS * ITERATIONS);
    return sum == (long)THREADS * ITERATIONS ? 0 : 1;
}
