// Raw clone and clone3 as threading libraries use them: argument checks (sizes, flag
// combinations, stack fields), CLONE_PARENT_SETTID / CHILD_SETTID / CHILD_CLEARTID with the
// futex wake at exit, the child's registers (RAX 0, its own stack, FS from CLONE_SETTLS), and
// finally the leader leaving with exit(2) while a raw thread runs on: the process status is
// the last thread's (observed on Linux 6.18).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

struct args_v2 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
    uint64_t extra;
};

/* Runs fn(arg) in the child on its new stack, then exit(fn's result). */
static long clone_trampoline(long nr, long a1, long a2, long a3, long a4, long a5, int (*fn)(void *),
                             void *arg) {
    long ret;
    register long r10 asm("r10") = a4;
    register long r8 asm("r8") = a5;
    register void *r12 asm("r12") = (void *)fn;
    register void *r13 asm("r13") = arg;
    asm volatile("syscall\n\t"
                 "test %%rax, %%rax\n\t"
                 "jnz 1f\n\t"
                 "xor %%ebp, %%ebp\n\t"
                 "mov %%r13, %%rdi\n\t"
                 "call *%%r12\n\t"
                 "mov %%eax, %%edi\n\t"
                 "mov $60, %%eax\n\t"
                 "syscall\n\t"
                 "hlt\n\t"
                 "1:\n\t"
                 : "=a"(ret)
                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r12), "r"(r13)
                 : "rcx", "r11", "memory");
    return ret;
}

static volatile long child_tid_seen, child_pid_seen, child_fs, child_sp;
static int child_fn(void *arg) {
    child_tid_seen = syscall(SYS_gettid);
    child_pid_seen = syscall(SYS_getpid);
    long fs;
    syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
    child_fs = fs;
    int local;
    child_sp = (long)&local;
    return (int)(long)arg;
}

static char *stack;
#define STACK_SIZE (64 * 1024)
static uint32_t ptid, ctid;

static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static long c3(struct args_v2 *a, size_t size) {
    return syscall(SYS_clone3, a, size);
}

static void join_ctid(void) {
    uint32_t v;
    while ((v = __atomic_load_n(&ctid, __ATOMIC_SEQ_CST)) != 0)
        syscall(SYS_futex, &ctid, FUTEX_WAIT, v, NULL, NULL, 0);
}

static const uint64_t THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                     CLONE_THREAD | CLONE_SYSVSEM;

static int late_child(void *arg) {
    (void)arg;
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    static const char msg[] = "raw thread outlived the leader\n";
    write(1, msg, sizeof msg - 1);
    return 3;
}

int main(void) {
    stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct args_v2 a;
    memset(&a, 0, sizeof a);
    a.flags = THREAD_FLAGS;
    printf("clone3 size 0: %s\n", e(c3(&a, 0)));
    printf("clone3 size 63: %s\n", e(c3(&a, 63)));
    printf("clone3 size 4097: %s\n", e(c3(&a, 4097)));
    a.extra = 1;
    printf("clone3 nonzero byte past the known struct: %s\n", e(c3(&a, sizeof a)));
    a.extra = 0;
    a.stack = (uint64_t)stack;
    printf("clone3 stack without size: %s\n", e(c3(&a, 88)));
    a.stack = 0;
    a.exit_signal = SIGCHLD;
    printf("clone3 thread with exit signal: %s\n", e(c3(&a, 88)));
    a.exit_signal = 0;
    a.flags = THREAD_FLAGS | (1ull << 40);
    printf("clone3 unknown high flag: %s\n", e(c3(&a, 88)));
    a.flags = CLONE_SIGHAND;
    printf("clone3 SIGHAND without VM: %s\n", e(c3(&a, 88)));
    a.flags = CLONE_VM | CLONE_THREAD;
    printf("clone3 THREAD without SIGHAND: %s\n", e(c3(&a, 88)));
    a.flags = THREAD_FLAGS | CLONE_NEWUSER;
    printf("clone3 THREAD with NEWUSER: %s\n", e(c3(&a, 88)));
    a.flags = CLONE_FS | CLONE_NEWNS;
    printf("clone3 FS with NEWNS: %s\n", e(c3(&a, 88)));
    a.flags = THREAD_FLAGS | CLONE_SIGHAND | CLONE_CLEAR_SIGHAND;
    printf("clone3 CLEAR_SIGHAND with SIGHAND: %s\n", e(c3(&a, 88)));
    a.flags = THREAD_FLAGS;
    a.set_tid_size = 1;
    printf("clone3 set_tid_size without set_tid: %s\n", e(c3(&a, 88)));
    a.set_tid_size = 0;
    printf("clone SIGHAND without VM: %s\n", e(syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0)));

    /* A real thread through clone3, with the 96-byte struct (zero tail accepted). */
    memset(&a, 0, sizeof a);
    a.flags = THREAD_FLAGS | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID |
              CLONE_SETTLS;
    a.parent_tid = (uint64_t)&ptid;
    a.child_tid = (uint64_t)&ctid;
    a.stack = (uint64_t)stack;
    a.stack_size = STACK_SIZE;
    long fs;
    syscall(SYS_arch_prctl, 0x1003, &fs);
    a.tls = (uint64_t)fs; /* share the leader's TLS: the child calls nothing that uses it */
    ctid = ~0u; /* until the child's CLONE_CHILD_SETTID store */
    long tid = clone_trampoline(SYS_clone3, (long)&a, sizeof a, 0, 0, 0, child_fn, (void *)0);
    join_ctid();
    printf("clone3 thread: tid>0 %d ptid %d ctid cleared %d gettid %d pid %d fs %d sp on stack %d\n",
           tid > 0, ptid == (uint32_t)tid, ctid == 0, child_tid_seen == tid, child_pid_seen == getpid(),
           child_fs == fs, child_sp > (long)stack && child_sp < (long)stack + STACK_SIZE);

    /* The same through legacy clone: the stack argument is the initial stack pointer. */
    ptid = 0;
    child_sp = 0;
    ctid = ~0u;
    long flags = THREAD_FLAGS | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    tid = clone_trampoline(SYS_clone, flags, (long)(stack + STACK_SIZE), (long)&ptid, (long)&ctid, 0,
                           child_fn, (void *)0);
    join_ctid();
    printf("clone thread: ptid %d ctid cleared %d gettid %d sp on stack %d\n", ptid == (uint32_t)tid,
           ctid == 0, child_tid_seen == tid,
           child_sp > (long)stack && child_sp < (long)stack + STACK_SIZE);
    fflush(stdout);

    /* The leader leaves first with exit(2); the raw thread exits later with another status. */
    flags = THREAD_FLAGS;
    clone_trampoline(SYS_clone, flags, (long)(stack + STACK_SIZE), 0, 0, 0, late_child, NULL);
    syscall(SYS_exit, 5);
    return 99;
}
