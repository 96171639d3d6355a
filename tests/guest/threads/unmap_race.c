// Another thread unmaps (or mprotects) memory that a thread is reading, writing or executing
// in a tight loop. The looping thread must get SIGSEGV (SEGV_MAPERR after munmap, SEGV_ACCERR
// after mprotect) as on Linux, recovered with siglongjmp, every round; the emulator itself
// must never crash. A read racing with the unmap sees the old contents or faults, never
// anything else (cetbox once replaced the memory before the looping thread's checked read).
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ROUNDS 60
enum { READ, WRITE, EXEC };

static sigjmp_buf jb;
static volatile int fault_code;
static volatile void *fault_addr;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static char *volatile target;
static volatile int mode;
static volatile int round_no, started_round, done_round;
static volatile long sink, wrong_values;
#define PATTERN 0x5a5a5a5a5a5a5a5aL

static void *looper(void *arg) {
    (void)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    for (int r = 1;; r++) {
        while (round_no < r) {
            if (round_no < 0) return NULL;
            sched_yield();
        }
        if (sigsetjmp(jb, 1) == 0) {
            char *p = target;
            __atomic_store_n(&started_round, r, __ATOMIC_SEQ_CST);
            if (mode == READ)
                for (;;) {
                    long v = *(volatile long *)(p + 64);
                    if (v != PATTERN) wrong_values++;
                }
            else if (mode == WRITE)
                for (long i = 0;; i++) *(volatile long *)(p + 128) = i;
            else
                for (;;) sink += ((long (*)(void))p)();
        }
        __atomic_store_n(&done_round, r, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* mov $7, %eax; ret */
static const unsigned char code[] = {0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3};

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, looper, NULL);
    int r = 0;
    const char *names[] = {"read", "write", "exec"};
    for (int m = 0; m < 3; m++) {
        for (int use_mprotect = 0; use_mprotect < 2; use_mprotect++) {
            if (m == EXEC && use_mprotect) continue;
            int mapped = 0, accerr = 0, right_addr = 0;
            for (int i = 0; i < ROUNDS; i++) {
                int prot = m == EXEC ? PROT_READ | PROT_WRITE | PROT_EXEC : PROT_READ | PROT_WRITE;
                char *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m == EXEC) memcpy(p, code, sizeof code);
                if (m == READ) memset(p, 0x5a, 4096);
                target = p;
                mode = m;
                r++;
                __atomic_store_n(&round_no, r, __ATOMIC_SEQ_CST);
                while (__atomic_load_n(&started_round, __ATOMIC_SEQ_CST) < r) {
                    sched_yield();
                }
                if (i % 3 == 0) usleep(100);
                if (use_mprotect)
                    mprotect(p, 4096, PROT_NONE);
                else
                    munmap(p, 4096);
                while (__atomic_load_n(&done_round, __ATOMIC_SEQ_CST) < r) {
                    sched_yield();
                }
                if (fault_code == SEGV_MAPERR) mapped++;
                if (fault_code == SEGV_ACCERR) accerr++;
                long off = (char *)fault_addr - p;
                /* An instruction fetch may fault at either instruction of the function. */
                if (m == EXEC ? off >= 0 && off < (long)sizeof code : off == (m == READ ? 64 : 128))
                    right_addr++;
                if (use_mprotect) munmap(p, 4096);
            }
            printf("%s vs %s: %d rounds, MAPERR %d, ACCERR %d, right address %d\n", names[m],
                   use_mprotect ? "mprotect" : "munmap", ROUNDS, mapped, accerr, right_addr);
        }
    }
    printf("reads of a value never written: %ld\n", wrong_values);
    round_no = -1;
    pthread_join(t, NULL);
    return 0;
}
