// Shadow stacks and threads (docs/acceptance.md, Linux behaviour 14.9; Linux
// arch/x86/kernel/shstk.c, shstk_alloc_thread_stack() and shstk_free()), run under
// `cetbox run --shstk=on`: every CLONE_VM thread gets a new shadow stack, sized
// PAGE_ALIGN(stack_size) for clone3 and PAGE_ALIGN(min(RLIMIT_STACK, 4 GiB)) for clone, in a
// mapping of its own (VmFlags "ss"), and that mapping is unmapped when the thread exits.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline uint64_t rdssp(void) {
    uint64_t v = 0;
    asm volatile(".byte 0xf3, 0x48, 0x0f, 0x1e, 0xc8" : "+a"(v)); /* rdsspq %rax */
    return v;
}

/* The mapping holding shadow-stack pointer `ssp` (an empty stack's SSP is its end). */
static int find_mapping(uint64_t ssp, uint64_t *start, uint64_t *end) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < ssp && ssp <= e) {
            *start = s;
            *end = e;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Whether smaps marks the mapping starting at `start` as a shadow stack. */
static int has_ss_flag(uint64_t start) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, ss = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = s == start;
        else if (in && !strncmp(line, "VmFlags:", 8))
            ss = strstr(line, " ss") != NULL;
    }
    fclose(f);
    return ss;
}

static volatile uint64_t child_ssp;
static uint32_t release_child, ctid;

static int child_fn(void *arg) {
    (void)arg;
    child_ssp = rdssp();
    while (!__atomic_load_n(&release_child, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &release_child, FUTEX_WAIT, 0, NULL, NULL, 0);
    return 0;
}

static long clone_trampoline(long nr, long a1, long a2, long a3, long a4, int (*fn)(void *)) {
    long ret;
    register long r10 asm("r10") = a4;
    register long r8 asm("r8") = 0;
    register void *r12 asm("r12") = (void *)fn;
    asm volatile("syscall\n\t"
                 "test %%rax, %%rax\n\t"
                 "jnz 1f\n\t"
                 "xor %%ebp, %%ebp\n\t"
                 "call *%%r12\n\t"
                 "mov %%eax, %%edi\n\t"
                 "mov $60, %%eax\n\t"
                 "syscall\n\t"
                 "hlt\n\t"
                 "1:\n\t"
                 : "=a"(ret)
                 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r12)
                 : "rcx", "r11", "memory");
    return ret;
}

#define FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | \
               CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)

static uint64_t main_start, main_end;

static void check_child(const char *what) {
    while (!child_ssp) sched_yield();
    uint64_t s = 0, e = 0;
    int found = find_mapping(child_ssp, &s, &e);
    /* The stack starts empty (SSP = end); the trampoline's call pushed one entry. */
    printf("%s: own mapping %d, one entry below the end %d, size %#lx, differs from main %d, "
           "ss flag %d\n",
           what, found, child_ssp == e - 8, (unsigned long)(e - s), s != main_start, has_ss_flag(s));
    __atomic_store_n(&release_child, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &release_child, FUTEX_WAKE, 1, NULL, NULL, 0);
    uint32_t v;
    while ((v = __atomic_load_n(&ctid, __ATOMIC_SEQ_CST)) != 0)
        syscall(SYS_futex, &ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    uint64_t s2, e2;
    int still = find_mapping(child_ssp, &s2, &e2) && s2 == s && e2 == e;
    printf("%s: shadow stack unmapped after exit %d\n", what, !still);
    child_ssp = 0;
    release_child = 0;
}

static void *pthread_fn(void *arg) {
    uint64_t *out = arg;
    out[0] = rdssp();
    find_mapping(out[0], &out[1], &out[2]);
    return NULL;
}

/* How many mappings smaps marks as shadow stacks. */
static int count_ss_mappings(void) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmFlags:", 8) && strstr(line, " ss")) n++;
    fclose(f);
    return n;
}

/* Shadow stacks off (§6.1 rule 1): a new thread gets none, RDSSP stays a NOP reading 0, and
 * no mapping is a shadow stack. */
static void without_shadow_stacks(void) {
    uint64_t info[3] = {0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, pthread_fn, info);
    pthread_join(t, NULL);
    printf("pthread: ssp %#lx\n", (unsigned long)info[0]);
    printf("shadow-stack mappings: %d\n", count_ss_mappings());
}

int main(void) {
    uint64_t ssp = rdssp();
    printf("main: shadow stacks on %d\n", ssp != 0);
    if (!ssp) {
        without_shadow_stacks();
        return 0;
    }
    printf("main: in a mapping %d\n", find_mapping(ssp, &main_start, &main_end));
    printf("main: ss flag %d\n", has_ss_flag(main_start));

    size_t stack_size = 0x40000;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    /* clone3 with a stack size that is not page aligned: PAGE_ALIGN(0x10001) = 0x11000. */
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = FLAGS;
    ca.child_tid = (uint64_t)&ctid;
    ca.stack = (uint64_t)stack;
    ca.stack_size = 0x10001;
    ctid = ~0u;
    long tid = clone_trampoline(SYS_clone3, (long)&ca, sizeof ca, 0, 0, child_fn);
    printf("clone3: created %d\n", tid > 0);
    check_child("clone3 thread");

    /* Legacy clone: the size comes from RLIMIT_STACK. */
    struct rlimit old, rl;
    getrlimit(RLIMIT_STACK, &old);
    rl = old;
    rl.rlim_cur = 0x180000;
    setrlimit(RLIMIT_STACK, &rl);
    ctid = ~0u;
    tid = clone_trampoline(SYS_clone, FLAGS, (long)(stack + stack_size), 0, (long)&ctid, child_fn);
    printf("clone: created %d\n", tid > 0);
    check_child("clone thread");
    setrlimit(RLIMIT_STACK, &old);

    /* pthread_create: a different shadow stack, gone once joined. */
    uint64_t info[3] = {0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, pthread_fn, info);
    pthread_join(t, NULL);
    uint64_t s, e;
    int still = find_mapping(info[0], &s, &e) && s == info[1] && e == info[2];
    printf("pthread: on a shadow stack %d, differs from main %d, unmapped after join %d\n",
           info[0] != 0, info[1] != main_start, !still);
    printf("main: still on its shadow stack %d\n", find_mapping(rdssp(), &s, &e) && s == main_start);
    return 0;
}
