/* A small coroutine library that is correct under shadow stacks, and its tests.
 *
 * Each coroutine owns a normal stack (mmap) and a shadow stack from
 * map_shadow_stack(0, size, SHADOW_STACK_SET_TOKEN), whose restore token sits at top - 8
 * (Linux arch/x86/kernel/shstk.c, map_shadow_stack). Switching follows Intel SDM Vol. 2B
 * RSTORSSP and SAVEPREVSSP: RSTORSSP on the target's restore token,
 * then SAVEPREVSSP, which leaves a restore token on the stack being left, 8 bytes below its SSP.
 * The next switch back goes through that token. A new coroutine is primed as glibc's makecontext
 * does (glibc sysdeps/unix/sysv/linux/x86_64/__start_context.S, __push___start_context):
 * switch to its shadow stack, CALL to push the entry address there,
 * switch back, which leaves a restore token just below that entry.
 *
 * main() enables shadow stacks itself with an inline arch_prctl, so plain `cetbox run` works;
 * natively (no CET) the enable fails and the library skips the shadow-stack steps, printing the
 * same lines except the last.
 *
 *   coro demo                 the library tests
 *   coro skip_saveprevssp     negative: enter a coroutine with RSTORSSP only; its first RET finds
 *                             the previous-ssp token on top of its shadow stack → #CP(1)
 *   coro skip_restore_token   negative: enter a coroutine with RSTORSSP + INCSSPQ (no restore
 *                             token left behind); switching back finds no token → #CP(4)
 */
#include "cet.h"

struct ctx {
    uint64_t sp;    /* saved RSP (offset 0) */
    uint64_t token; /* address of its restore token on its shadow stack (offset 8) */
};

struct coro {
    struct ctx ctx;
    void (*fn)(void *);
    void *arg;
    struct coro *caller;
    long value;
    int done;
    const char *name;
    char *stack;
    size_t stack_size;
    uint64_t shstk;
    size_t shstk_size;
};

static int shstk_on;
static int own_shadow_stack_ok = 1;

asm(".text\n"
    /* void coro_switch(struct ctx *from, struct ctx *to) */
    ".globl coro_switch\n"
    "coro_switch:\n"
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n"
    " xor %eax, %eax\n rdsspq %rax\n test %rax, %rax\n jz 1f\n"
    " sub $8, %rax\n mov %rax, 8(%rdi)\n" /* SAVEPREVSSP will put our restore token here */
    " mov 8(%rsi), %rcx\n"
    ".globl coro_switch_rstorssp\n"
    "coro_switch_rstorssp:\n"
    " rstorssp (%rcx)\n"
    " saveprevssp\n"
    "1: mov (%rsi), %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    " ret\n"

    /* uint64_t coro_prime(uint64_t new_token): pushes coro_first_entry on the new shadow stack
     * and returns the address of the restore token left just below it. */
    ".globl coro_prime\n"
    "coro_prime:\n"
    " xor %eax, %eax\n rdsspq %rax\n"
    " rstorssp (%rdi)\n saveprevssp\n"
    " call 2f\n"
    ".globl coro_first_entry\n"
    "coro_first_entry:\n"
    " jmp coro_start\n"
    "2: add $8, %rsp\n"
    " lea -8(%rax), %rcx\n rstorssp (%rcx)\n saveprevssp\n"
    " lea -8(%rdi), %rax\n"
    " ret\n"

    /* Broken switches for the negative cases (same frame layout as coro_switch). */
    ".globl bad_switch_no_saveprevssp\n"
    "bad_switch_no_saveprevssp:\n"
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n"
    " xor %eax, %eax\n rdsspq %rax\n sub $8, %rax\n mov %rax, 8(%rdi)\n"
    " mov 8(%rsi), %rcx\n rstorssp (%rcx)\n" /* no SAVEPREVSSP: the previous-ssp token stays on top */
    " mov (%rsi), %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    ".globl bad_switch_no_saveprevssp_ret\n"
    "bad_switch_no_saveprevssp_ret:\n"
    " ret\n"
    ".globl bad_switch_no_token\n"
    "bad_switch_no_token:\n"
    " push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n"
    " mov %rsp, (%rdi)\n"
    " xor %eax, %eax\n rdsspq %rax\n sub $8, %rax\n mov %rax, 8(%rdi)\n"
    " mov 8(%rsi), %rcx\n rstorssp (%rcx)\n"
    " mov $1, %eax\n incsspq %rax\n" /* drops the previous-ssp token: no restore token is left */
    " mov (%rsi), %rsp\n"
    " pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
    " ret\n");
void coro_switch(struct ctx *from, struct ctx *to);
uint64_t coro_prime(uint64_t new_token);
void bad_switch_no_saveprevssp(struct ctx *from, struct ctx *to);
void bad_switch_no_token(struct ctx *from, struct ctx *to);
extern char coro_first_entry[], coro_switch_rstorssp[], bad_switch_no_saveprevssp_ret[];

static struct coro main_coro = {.name = "main"};
static struct coro *current = &main_coro;

static void check_own_shadow_stack(struct coro *c) {
    if (!shstk_on || c == &main_coro) return;
    uint64_t s = rdssp();
    if (s < c->shstk || s >= c->shstk + c->shstk_size) own_shadow_stack_ok = 0;
}

/* Entered from coro_first_entry by JMP, with an empty shadow stack; never returns. */
__attribute__((used, noreturn)) static void coro_start(void) {
    struct coro *self = current;
    check_own_shadow_stack(self);
    self->fn(self->arg);
    self->done = 1;
    coro_switch(&self->ctx, &self->caller->ctx);
    abort(); /* a finished coroutine is never resumed */
}

static struct coro *coro_create(const char *name, void (*fn)(void *), void *arg) {
    struct coro *c = calloc(1, sizeof *c);
    c->name = name;
    c->fn = fn;
    c->arg = arg;
    c->stack_size = 256 * 1024;
    c->stack = mmap(0, c->stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Six zeroed register slots, then the address coro_switch RETs to. RSP after that RET is
     * 8 mod 16, as at a function entry. */
    uint64_t *sp = (uint64_t *)(c->stack + c->stack_size) - 8;
    memset(sp, 0, 8 * 8);
    sp[6] = (uint64_t)coro_first_entry;
    c->ctx.sp = (uint64_t)sp;
    if (shstk_on) {
        c->shstk_size = 64 * 1024;
        long r = map_shstk(0, c->shstk_size, SHADOW_STACK_SET_TOKEN);
        if (r < 0 && r > -4096) { printf("map_shadow_stack failed: %ld\n", r); exit(1); }
        c->shstk = (uint64_t)r;
        c->ctx.token = coro_prime(c->shstk + c->shstk_size - 8);
    }
    return c;
}

static void coro_destroy(struct coro *c) {
    munmap(c->stack, c->stack_size);
    if (c->shstk) munmap((void *)c->shstk, c->shstk_size);
    free(c);
}

/* Runs c until it yields or finishes; returns the yielded value. */
static long coro_resume(struct coro *c) {
    struct coro *me = current;
    c->caller = me;
    current = c;
    coro_switch(&me->ctx, &c->ctx);
    current = me;
    return c->value;
}

static void coro_yield(long v) {
    struct coro *self = current;
    self->value = v;
    coro_switch(&self->ctx, &self->caller->ctx);
    check_own_shadow_stack(self);
}

/* ---- the tests */

static void generator(void *arg) {
    long n = (long)arg;
    for (long i = 1; i <= n; i++) coro_yield(i);
}

/* Yields from deep inside a recursion; after each resume the frames above return normally. */
__attribute__((noinline)) static long deep_yield(int depth, int at) {
    if (depth == at) {
        coro_yield(1000 + depth);
        return depth;
    }
    long r = deep_yield(depth + 1, at);
    asm volatile("" : "+r"(r) : : "memory");
    return r + 1;
}
__attribute__((noinline)) static long deep_yield_free(int n) {
    if (n == 0) return 0;
    long r = deep_yield_free(n - 1);
    asm volatile("" : "+r"(r) : : "memory");
    return r + 1;
}
static void deep_worker(void *arg) {
    (void)arg;
    for (int at = 10; at <= 300; at *= 3) {
        long r = deep_yield(0, at);
        coro_yield(r);
    }
}

static struct coro *pong_c;
static void ponger(void *arg) {
    (void)arg;
    for (int i = 1;; i++) {
        printf("  pong %d (from %s)\n", i, current->caller->name);
        coro_yield(i * 100);
    }
}
static void pinger(void *arg) {
    long rounds = (long)arg;
    for (long i = 1; i <= rounds; i++) {
        printf("  ping %ld\n", i);
        long v = coro_resume(pong_c); /* a coroutine resuming another coroutine */
        printf("  ping %ld got %ld\n", i, v);
        coro_yield(i);
    }
}

/* A signal delivered while a coroutine runs: Linux pushes its shadow-stack frame on the current
 * (the coroutine's) shadow stack and sigreturn pops it (Linux arch/x86/kernel/shstk.c,
 * setup_signal_shadow_stack() and restore_signal_shadow_stack()). */
static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    check_own_shadow_stack(current);
    handled += (int)(deep_yield_free(50) == 50);
}
static void signalled(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        raise(SIGUSR1);
        coro_yield(handled);
    }
}

static void demo(void) {
    /* 1. A generator that yields 1..10, then completes. */
    struct coro *g = coro_create("gen", generator, (void *)10L);
    long sum = 0;
    printf("generator:");
    while (1) {
        long v = coro_resume(g);
        if (g->done) break;
        printf(" %ld", v);
        sum += v;
    }
    printf("\ngenerator done=%d sum=%ld\n", g->done, sum);
    coro_destroy(g);

    /* 2. Several coroutines interleaved round-robin, finishing at different times. */
    struct coro *cs[3];
    long lens[3] = {3, 5, 2};
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) cs[i] = coro_create(names[i], generator, (void *)lens[i]);
    int live = 3;
    printf("round robin:");
    while (live) {
        for (int i = 0; i < 3; i++) {
            if (!cs[i]) continue;
            long v = coro_resume(cs[i]);
            if (cs[i]->done) {
                printf(" %s:done", cs[i]->name);
                coro_destroy(cs[i]);
                cs[i] = 0;
                live--;
            } else {
                printf(" %s%ld", cs[i]->name, v);
            }
        }
    }
    printf("\n");

    /* 3. Ping-pong between two coroutines. */
    pong_c = coro_create("pong", ponger, 0);
    struct coro *p = coro_create("ping", pinger, (void *)3L);
    printf("ping-pong:\n");
    while (1) {
        long v = coro_resume(p);
        if (p->done) break;
        printf("  main got %ld\n", v);
    }
    printf("ping done=%d pong done=%d\n", p->done, pong_c->done);
    coro_destroy(p);
    coro_destroy(pong_c);

    /* 4. Yields from deep recursion inside a coroutine. */
    struct coro *d = coro_create("deep", deep_worker, 0);
    printf("deep:");
    while (1) {
        long v = coro_resume(d);
        if (d->done) break;
        printf(" %ld", v);
    }
    printf("\n");
    coro_destroy(d);

    /* 5. Many short-lived coroutines (shadow stacks mapped and unmapped each time). */
    long total = 0;
    for (int i = 0; i < 200; i++) {
        struct coro *c = coro_create("short", generator, (void *)(long)(i % 4));
        while (1) {
            long v = coro_resume(c);
            if (c->done) break;
            total += v;
        }
        coro_destroy(c);
    }
    printf("200 short coroutines: total %ld\n", total);

    /* 6. Signals handled while a coroutine runs. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    struct coro *sc = coro_create("sig", signalled, 0);
    printf("signals in a coroutine:");
    while (1) {
        long v = coro_resume(sc);
        if (sc->done) break;
        printf(" %ld", v);
    }
    printf("\n");
    coro_destroy(sc);
}

/* ---- negative cases */
static void never_runs(void *arg) {
    (void)arg;
    puts("coroutine body ran");
}
static void yields_once(void *arg) {
    (void)arg;
    puts("coroutine running, switching back");
    coro_yield(1);
}

int main(int argc, char **argv) {
    if (argc < 2) { puts("usage: coro demo|skip_saveprevssp|skip_restore_token"); exit(2); }
    setvbuf(stdout, 0, _IONBF, 0);
    /* Inline syscall, and main never returns: no RET crosses the enable point. */
    shstk_on = shstk_enable() == 0 && rdssp() != 0;
    if (!strcmp(argv[1], "demo")) {
        demo();
        printf("shadow stacks: %s, coroutines on their own shadow stacks: %d\n", shstk_on ? "on" : "off",
               own_shadow_stack_ok);
        exit(0);
    }
    if (!shstk_on) { puts("needs shadow stacks"); exit(1); }
    catch_faults();
    if (!strcmp(argv[1], "skip_saveprevssp")) {
        struct coro *c = coro_create("bad", never_runs, 0);
        c->caller = &main_coro;
        current = c;
        expect_rip = (uint64_t)bad_switch_no_saveprevssp_ret;
        bad_switch_no_saveprevssp(&main_coro.ctx, &c->ctx);
        puts("returned from the bad switch");
        exit(0);
    }
    if (!strcmp(argv[1], "skip_restore_token")) {
        struct coro *c = coro_create("bad", yields_once, 0);
        c->caller = &main_coro;
        current = c;
        expect_rip = (uint64_t)coro_switch_rstorssp;
        bad_switch_no_token(&main_coro.ctx, &c->ctx);
        puts("back in main");
        exit(0);
    }
    puts("unknown case");
    exit(2);
}
