// rseq(2) registration and unregistration: every argument check in the order of
// SYSCALL_DEFINE4(rseq) (kernel/rseq.c), the fields the kernel writes on registration
// (cpu_id of the CPU the thread is pinned to, getcpu agreeing) and on unregistration, and the
// registration's lifetime: a new thread starts unregistered, a fork child keeps it, a
// CLONE_VM child (vfork) does not, execve drops it, and an area the kernel cannot write (null,
// unmapped, read-only) is accepted by the call and kills the thread with SIGSEGV on its way
// back to user mode (or, with CONFIG_DEBUG_RSEQ, unreadable ones are refused with EFAULT).
//! env: GLIBC_TUNABLES=glibc.pthread.rseq=0
//! cflags: -pthread
#include "../common/rseq.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static struct rseq_area area;
static char big[256] __attribute__((aligned(64)));

static void show(const char *what, long r) {
    printf("%-44s %s\n", what, rseq_errname(r));
}

static void *thread_main(void *arg) {
    (void)arg;
    static struct rseq_area own;
    show("thread: unregister (never registered)", rseq_call(&own, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("thread: register own area", rseq_call(&own, 32, 0, RSEQ_SIG));
    printf("thread: cpu_id matches getcpu: %d\n", (int)own.cpu_id == sched_getcpu());
    show("thread: unregister", rseq_call(&own, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    return NULL;
}

// Runs `f` in a child process and reports how it ended.
static void in_child(const char *what, void (*f)(void)) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        alarm(20);
        f();
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st))
        printf("%-44s killed by signal %d\n", what, WTERMSIG(st));
    else
        printf("%-44s exit %d\n", what, WEXITSTATUS(st));
}

// An area the kernel cannot access: a kernel built with CONFIG_DEBUG_RSEQ (Linux 6.12+) reads
// the area in the call and answers EFAULT; without it (Linux 6.6) the call succeeds and the
// write of cpu_id on the way back to user mode kills the thread with SIGSEGV. Either is
// "refused"; a call that succeeds and a thread that goes on is not.
static void bad_area(const char *what, void *p) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        alarm(20);
        _exit(rseq_call(p, 32, 0, RSEQ_SIG) == -EFAULT ? 3 : 4);
    }
    int st;
    waitpid(c, &st, 0);
    int refused = (WIFEXITED(st) && WEXITSTATUS(st) == 3) || (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    printf("%-44s %s\n", what, refused ? "refused" : "accepted");
}

static void register_readonly(void) {
    char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("%-44s %s\n", "  the call", rseq_errname(rseq_call(p, 32, 0, RSEQ_SIG)));
    fflush(stdout);
}

static int vm_child(void *arg) {
    (void)arg;
    _exit(rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == -EINVAL ? 0 : 1);
}

static void fork_keeps(void) {
    // The child is registered on the same area: a second registration is EBUSY.
    _exit(rseq_call(&area, 32, 0, RSEQ_SIG) == -EBUSY ? 0 : 1);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        show("after execve: unregister", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
        show("after execve: register", rseq_call(&area, 32, 0, RSEQ_SIG));
        return 0;
    }
    // Pinned to the first CPU it may use, the thread's cpu_id is known.
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("sched_setaffinity");

    show("unregister (never registered)", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("unregister with an unknown flag", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER | 2, RSEQ_SIG));
    show("unknown flag", rseq_call(&area, 32, 2, RSEQ_SIG));
    show("len 0", rseq_call(&area, 0, 0, RSEQ_SIG));
    show("len 31", rseq_call(&area, 31, 0, RSEQ_SIG));
    show("len 32 at 16-byte alignment", rseq_call(big + 16, 32, 0, RSEQ_SIG));
    show("len 64 at 16-byte alignment", rseq_call(big + 16, 64, 0, RSEQ_SIG));
    show("len 32 at a kernel address", rseq_call((void *)0xffffffffffffffe0ul, 32, 0, RSEQ_SIG));
    show("len 64 wrapping around", rseq_call((void *)0xffffffffffffffe0ul, 64, 0, RSEQ_SIG));

    memset(&area, 0x55, sizeof area);
    area.rseq_cs = 0;
    area.flags = 0;
    show("register", rseq_call(&area, 32, 0, RSEQ_SIG));
    printf("cpu_id is the pinned cpu: %d\n", area.cpu_id == (uint32_t)cpu);
    printf("cpu_id_start == cpu_id: %d\n", area.cpu_id_start == area.cpu_id);
    printf("getcpu == cpu_id: %d\n", sched_getcpu() == (int)area.cpu_id);
    printf("node_id %u mm_cid %u\n", area.node_id, area.mm_cid);
    show("again, same arguments", rseq_call(&area, 32, 0, RSEQ_SIG));
    show("again, another signature", rseq_call(&area, 32, 0, RSEQ_SIG + 1));
    show("again, another length", rseq_call(&area, 64, 0, RSEQ_SIG));
    show("again, another length and signature", rseq_call(&area, 64, 0, RSEQ_SIG + 1));
    show("again, another address", rseq_call(big, 32, 0, RSEQ_SIG));
    show("again, with an unknown flag", rseq_call(&area, 32, 2, RSEQ_SIG));

    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    pthread_join(th, NULL);
    in_child("fork child: registration kept", fork_keeps);
    {
        // clone with CLONE_VM | CLONE_VFORK, the child on a stack of its own (vfork itself
        // returns twice on one shadow stack, which --shstk=on reports).
        static char stack[65536] __attribute__((aligned(16)));
        fflush(stdout);
        pid_t p = clone(vm_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
        int st;
        waitpid(p, &st, 0);
        printf("%-44s exit %d\n", "CLONE_VM child: not registered", WEXITSTATUS(st));
    }

    show("unregister, another address", rseq_call(big, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("unregister, another length", rseq_call(&area, 64, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("unregister, another signature", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG + 1));
    show("unregister, another length and signature", rseq_call(&area, 64, RSEQ_FLAG_UNREGISTER, RSEQ_SIG + 1));
    show("unregister", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    printf("after unregister: cpu_id_start %u cpu_id %d node_id %u mm_cid %u\n", area.cpu_id_start,
           (int)area.cpu_id, area.node_id, area.mm_cid);
    show("unregister again", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));

    show("register len 64", rseq_call(big, 64, 0, RSEQ_SIG));
    show("unregister len 32", rseq_call(big, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("unregister len 64", rseq_call(big, 64, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));
    show("register len 2^32 + 32 (a u32)", rseq_call(&area, (1ul << 32) | 32, 0, RSEQ_SIG));
    show("unregister len 32", rseq_call(&area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG));

    bad_area("register a null area", NULL);
    {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(p, 4096);
        bad_area("register an unmapped area", p);
    }
    in_child("register a read-only area", register_readonly);

    show("register before execve", rseq_call(&area, 32, 0, RSEQ_SIG));
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
    perror("execl");
    return 1;
}
