/* userfaultfd missing-page faults raised by every kind of guest access
 * (crates/cli/tests/uffd.rs). One mode per run:
 *   load, store      an ordinary load / store to a registered page dropped with MADV_DONTNEED
 *   syscall          read(2) into such a page (the kernel's copy_to_user faults)
 *   syscall-umo      the same with UFFD_USER_MODE_ONLY: the kernel-mode fault is EFAULT
 *   emulated         uname(2) into such a page (a call cetbox answers itself): blocks until
 *                    resolved, then writes its answer
 *   emulated-umo     uname(2) and rt_sigprocmask(2)'s old set into such a page with
 *                    UFFD_USER_MODE_ONLY: both EFAULT, as the kernel's copy_to_user faults
 *   wake-op          futex(FUTEX_WAKE_OP) whose second word lies on such a page: the kernel's
 *                    atomic update does not wait for the resolver (futex's
 *                    fault_in_user_writeable cannot retry): EFAULT, no event, the word
 *                    unchanged once a load has the page filled
 *   mprotect-in-resolver  a load, whose resolver calls mprotect before resolving (a thread
 *                    blocked on a fault must not hold up other threads' memory changes)
 *   unmap-load, unmap-store, unmap-read  the access (a load, a store, read(2) from a pipe
 *                    holding data) blocks on the missing page; the resolver unmaps the page
 *                    and wakes the fault (UFFDIO_WAKE): the retried fault finds no mapping,
 *                    so the load and store get SIGSEGV (SEGV_MAPERR at the address) and the
 *                    read EFAULT, its data left in the pipe
 *   umo-frame        with UFFD_USER_MODE_ONLY, a signal whose frame goes to a missing page of
 *                    the alternate signal stack: the kernel's stores of the frame are kernel
 *                    accesses, which fail, so the delivery fails and SIGSEGV is forced
 *                    (SI_KERNEL, delivered on the ordinary stack), with no fault event
 *   register-refused a register range whose later mapping cannot be registered (a regular
 *                    file mapping, MISSING mode) is refused (EINVAL) and changes nothing: the
 *                    first page, registered before, stays registered (another descriptor
 *                    gets EBUSY there), the second, unregistered, stays free
 *   unmap-load-return, unmap-store-return  the same load / store, but the SIGSEGV handler maps
 *                    a fresh page there (word 1 = 0x4242) and returns: the fault left RIP at the
 *                    instruction and nothing changed, so the load re-executes and reads 0x4242,
 *                    the store re-executes and leaves 5
 *   holes            a register range with a hole between two mappings is accepted, one
 *                    entirely in a hole is not (EINVAL); a fault in the second mapping
 *                    reaches the descriptor; unregister over the same hole is accepted
 *   --- shadow stacks (enabled here with arch_prctl; cetbox only) ---
 *   selftest         tools/testing/selftests/x86/test_shadow_stack.c test_userfaultfd, in its
 *                    steps: register the first page of a new shadow stack (MISSING), a second
 *                    thread polls the non-blocking descriptor (EAGAIN) and answers with
 *                    UFFDIO_COPY of a zero page; MADV_DONTNEED then WRSS blocks until then
 *                    and succeeds; after pthread_join, WRSS succeeds again
 *   call, ret        a CALL's push / a RET's pop on a missing shadow-stack page
 *   incssp           INCSSP's read of the popped slot on a missing page
 *   signal           signal delivery's token write on a missing page (and sigreturn's read)
 * For the shadow-stack cases the thread pivots (RSTORSSP/SAVEPREVSSP) to a fresh shadow stack
 * whose top page it registers, so only the access under test can touch that page; madvise is
 * a raw inline syscall there, since a libc call would push onto the page first.
 * A resolver thread reads one fault event, records it, and resolves it with UFFDIO_COPY of
 * `fill` (the page's saved contents, where the access needs them intact). */
#include "cet.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <setjmp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/futex.h>

#define PAGE 4096UL

static int uffd;
static char fill[PAGE] __attribute__((aligned(4096)));
static volatile uint64_t ev_addr, ev_flags;
static volatile int ev_count, nonblocking_polls;
/* mprotect-in-resolver: a page the resolver reprotects before it resolves the fault. */
static void *resolver_mprotect;
static volatile int mprotect_result = -2;

/* unmap-*: the resolver unmaps the page instead of filling it, then wakes the fault. */
static int unmap_instead;
static volatile int unmap_result = -2, wake_result = -2;

static void *resolver(void *a) {
    (void)a;
    struct uffd_msg msg;
    for (;;) {
        ssize_t n = read(uffd, &msg, sizeof msg);
        if (n < 0 && errno == EAGAIN) {
            nonblocking_polls = 1;
            continue;
        }
        if (n != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) return (void *)1;
        break;
    }
    ev_addr = msg.arg.pagefault.address;
    ev_flags = msg.arg.pagefault.flags;
    ev_count++;
    if (resolver_mprotect) mprotect_result = mprotect(resolver_mprotect, PAGE, PROT_READ);
    if (unmap_instead) {
        uint64_t pg = msg.arg.pagefault.address & ~(PAGE - 1);
        unmap_result = munmap((void *)pg, PAGE);
        struct uffdio_range r = {.start = pg, .len = PAGE};
        wake_result = ioctl(uffd, UFFDIO_WAKE, &r);
        return 0;
    }
    struct uffdio_copy c = {.dst = msg.arg.pagefault.address & ~(PAGE - 1),
                            .src = (uint64_t)fill, .len = PAGE, .mode = 0};
    if (ioctl(uffd, UFFDIO_COPY, &c) != 0) return (void *)2;
    return 0;
}

static pthread_t start(uint64_t page, int flags) {
    uffd = syscall(SYS_userfaultfd, flags);
    if (uffd < 0) { printf("userfaultfd: %s\n", strerror(errno)); _exit(1); }
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(uffd, UFFDIO_API, &api)) { puts("UFFDIO_API failed"); _exit(1); }
    struct uffdio_register r = {.range = {.start = page, .len = PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(uffd, UFFDIO_REGISTER, &r)) { printf("UFFDIO_REGISTER: %s\n", strerror(errno)); _exit(1); }
    printf("register: copy %d zeropage %d wake %d\n", !!(r.ioctls & (1UL << _UFFDIO_COPY)),
           !!(r.ioctls & (1UL << _UFFDIO_ZEROPAGE)), !!(r.ioctls & (1UL << _UFFDIO_WAKE)));
    pthread_t t;
    pthread_create(&t, 0, resolver, 0);
    return t;
}

static void report(const char *what, uint64_t page, pthread_t t) {
    void *rv;
    pthread_join(t, &rv);
    printf("%s: resolver %ld, events %d, at the page %d, write %d\n", what, (long)rv, ev_count,
           (ev_addr & ~(PAGE - 1)) == page, (int)(ev_flags & UFFD_PAGEFAULT_FLAG_WRITE));
}

static uint64_t anon_page(void) {
    char *p = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1; /* populate, so the MADV_DONTNEED below is what makes it missing */
    return (uint64_t)p;
}

static void ordinary(const char *mode) {
    for (unsigned i = 0; i < PAGE / 8; i++) ((uint64_t *)fill)[i] = 0x1111 * (i + 1);
    uint64_t page = anon_page();
    int umo = !strcmp(mode, "syscall-umo") || !strcmp(mode, "emulated-umo");
    if (!strcmp(mode, "mprotect-in-resolver"))
        resolver_mprotect = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t = start(page, O_CLOEXEC | (umo ? UFFD_USER_MODE_ONLY : 0));
    madvise((void *)page, PAGE, MADV_DONTNEED);
    volatile uint64_t *p = (uint64_t *)page;
    if (!strcmp(mode, "wake-op")) {
        static int word1;
        /* *uaddr2 = 7, then wake uaddr2's waiters if the old value was 0 (none either way). */
        long r = syscall(SYS_futex, &word1, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, 0, (void *)page,
                         FUTEX_OP(FUTEX_OP_SET, 7, FUTEX_OP_CMP_EQ, 0));
        int e = errno;
        printf("wake-op: futex %ld%s, events so far %d\n", r, r < 0 && e == EFAULT ? " EFAULT" : "",
               ev_count);
        printf("wake-op: then a load reads the word %#x\n", *(volatile int *)page);
    } else if (!strcmp(mode, "load") || resolver_mprotect) {
        uint64_t v = p[1];
        printf("%s: value %#lx\n", mode, v);
        if (resolver_mprotect) printf("%s: the resolver's mprotect %d\n", mode, mprotect_result);
    } else if (!strcmp(mode, "emulated")) {
        int r = uname((struct utsname *)(page + 64));
        printf("emulated: uname %d, sysname %s\n", r, ((struct utsname *)(page + 64))->sysname);
    } else if (!strcmp(mode, "emulated-umo")) {
        int r = uname((struct utsname *)(page + 64));
        int e1 = errno;
        sigset_t set;
        sigemptyset(&set);
        long m = syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, (void *)(page + 8), 8);
        int e2 = errno;
        printf("emulated-umo: uname %d%s, rt_sigprocmask %ld%s\n", r, r && e1 == EFAULT ? " EFAULT" : "",
               m, m && e2 == EFAULT ? " EFAULT" : "");
        uint64_t v = p[0];
        printf("emulated-umo: then a load reads %#lx\n", v);
    } else if (!strcmp(mode, "store")) {
        p[1] = 5;
        printf("store: value %lu, neighbour %#lx\n", p[1], p[2]);
    } else {
        int fds[2];
        if (pipe(fds)) _exit(1);
        if (write(fds[1], "12345678", 8) != 8) _exit(1);
        ssize_t n = read(fds[0], (void *)(page + 8), 8);
        printf("%s: read %zd%s\n", mode, n, n < 0 && errno == EFAULT ? " EFAULT" : "");
        if (umo) {
            /* Nothing was queued: resolve from user mode so the resolver ends. */
            uint64_t v = p[0];
            printf("%s: then a load reads %#lx\n", mode, v);
        } else {
            printf("%s: bytes %.8s, next word %#lx\n", mode, (char *)(page + 8), p[2]);
        }
    }
    report(mode, page, t);
}

static sigjmp_buf unmap_jb;
static volatile int segv_code;
static volatile uint64_t segv_addr;
static void on_segv(int s, siginfo_t *si, void *c) {
    (void)s; (void)c;
    segv_code = si->si_code;
    segv_addr = (uint64_t)si->si_addr;
    siglongjmp(unmap_jb, 1);
}

static volatile int segv_returns;
static void on_segv_map_back(int s, siginfo_t *si, void *c) {
    (void)s; (void)c;
    segv_code = si->si_code;
    segv_addr = (uint64_t)si->si_addr;
    segv_returns++;
    uint64_t *pg = mmap((void *)(segv_addr & ~(PAGE - 1)), PAGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (pg == MAP_FAILED) _exit(3);
    pg[1] = 0x4242;
}

static void unmapped(const char *mode) {
    uint64_t page = anon_page();
    unmap_instead = 1;
    int returning = strstr(mode, "-return") != 0;
    struct sigaction sa = {.sa_sigaction = returning ? on_segv_map_back : on_segv,
                           .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, 0);
    int fds[2];
    if (pipe(fds) || write(fds[1], "12345678", 8) != 8) _exit(1);
    pthread_t t = start(page, O_CLOEXEC);
    madvise((void *)page, PAGE, MADV_DONTNEED);
    volatile uint64_t *p = (uint64_t *)page;
    ssize_t n = -2;
    int err = 0;
    if (!sigsetjmp(unmap_jb, 1)) {
        if (!strcmp(mode, "unmap-load-return")) {
            uint64_t v = p[1];
            printf("%s: handler returned %d times, the load read %#lx\n", mode, segv_returns, v);
        } else if (!strcmp(mode, "unmap-store-return")) {
            p[1] = 5;
            printf("%s: handler returned %d times, the word holds %#lx\n", mode, segv_returns,
                   (unsigned long)p[1]);
        } else if (!strcmp(mode, "unmap-load")) {
            uint64_t v = p[1];
            printf("%s: no fault, value %#lx\n", mode, v);
        } else if (!strcmp(mode, "unmap-store")) {
            p[1] = 5;
            puts("unmap-store: no fault");
        } else {
            n = read(fds[0], (void *)(page + 8), 8);
            err = errno;
        }
    }
    report(mode, page, t);
    printf("%s: the resolver's munmap %d, wake %d\n", mode, unmap_result, wake_result);
    if (n != -2) {
        char b[9] = {0};
        ssize_t left = read(fds[0], b, 8);
        printf("%s: read %zd%s, then the pipe still holds %zd bytes \"%s\"\n", mode, n,
               n < 0 && err == EFAULT ? " EFAULT" : "", left, b);
    } else {
        printf("%s: SIGSEGV code %d at the address %d\n", mode, segv_code, segv_addr == page + 8);
    }
}

static volatile int usr1_ran;
static void on_usr1_counted(int s) { (void)s; usr1_ran = 1; }
static void on_segv_frame(int s, siginfo_t *si, void *c) {
    (void)s; (void)c;
    printf("umo-frame: SIGUSR1 handler ran %d, SIGSEGV code %d, events %d\n", usr1_ran,
           si->si_code, ev_count);
    _exit(0);
}

static void umo_frame(void) {
    char *alt = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(alt, 1, 4 * PAGE);
    uint64_t top = (uint64_t)alt + 3 * PAGE;
    start(top, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    madvise((void *)top, PAGE, MADV_DONTNEED);
    stack_t ss = {.ss_sp = alt, .ss_size = 4 * PAGE};
    struct sigaction segv = {.sa_sigaction = on_segv_frame, .sa_flags = SA_SIGINFO};
    struct sigaction usr1 = {.sa_handler = on_usr1_counted, .sa_flags = SA_ONSTACK};
    if (sigaltstack(&ss, 0) || sigaction(SIGSEGV, &segv, 0) || sigaction(SIGUSR1, &usr1, 0))
        _exit(1);
    raise(SIGUSR1);
    printf("umo-frame: no SIGSEGV, SIGUSR1 handler ran %d\n", usr1_ran);
}

static void register_refused(void) {
    char *p = mmap(0, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int file = open("/proc/self/exe", O_RDONLY);
    if (p == MAP_FAILED || file < 0 || munmap(p + 2 * PAGE, PAGE) ||
        mmap(p + 3 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, file, 0) != p + 3 * PAGE)
        _exit(1);
    int a = syscall(SYS_userfaultfd, O_CLOEXEC), b = syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (a < 0 || b < 0 || ioctl(a, UFFDIO_API, &api)) _exit(1);
    api.features = 0;
    if (ioctl(b, UFFDIO_API, &api)) _exit(1);
    struct uffdio_register r = {.range = {.start = (uint64_t)p, .len = PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
    int first = ioctl(a, UFFDIO_REGISTER, &r);
    r = (struct uffdio_register){.range = {.start = (uint64_t)p, .len = 4 * PAGE},
                                 .mode = UFFDIO_REGISTER_MODE_MISSING};
    int all = ioctl(a, UFFDIO_REGISTER, &r);
    int all_err = errno;
    r = (struct uffdio_register){.range = {.start = (uint64_t)p, .len = PAGE},
                                 .mode = UFFDIO_REGISTER_MODE_MISSING};
    int other0 = ioctl(b, UFFDIO_REGISTER, &r);
    int other0_err = errno;
    r = (struct uffdio_register){.range = {.start = (uint64_t)p + PAGE, .len = PAGE},
                                 .mode = UFFDIO_REGISTER_MODE_MISSING};
    int other1 = ioctl(b, UFFDIO_REGISTER, &r);
    printf("register-refused: first page %d; whole range %d%s; first page on another "
           "descriptor %d%s; second page on another descriptor %d\n",
           first, all, all && all_err == EINVAL ? " EINVAL" : "", other0,
           other0 && other0_err == EBUSY ? " EBUSY" : "", other1);
}

static void holes(void) {
    for (unsigned i = 0; i < PAGE / 8; i++) ((uint64_t *)fill)[i] = 0x1111 * (i + 1);
    char *p = mmap(0, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = p[2 * PAGE] = 1;
    munmap(p + PAGE, PAGE);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) { puts("userfaultfd failed"); _exit(1); }
    struct uffdio_register hole = {.range = {.start = (uint64_t)p + PAGE, .len = PAGE},
                                   .mode = UFFDIO_REGISTER_MODE_MISSING};
    int h = ioctl(uffd, UFFDIO_REGISTER, &hole);
    printf("holes: register inside the hole %d%s\n", h, h && errno == EINVAL ? " EINVAL" : "");
    struct uffdio_register r = {.range = {.start = (uint64_t)p, .len = 3 * PAGE},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
    int rg = ioctl(uffd, UFFDIO_REGISTER, &r);
    printf("holes: register across the hole %d%s, copy %d zeropage %d wake %d\n", rg,
           rg && errno == EINVAL ? " EINVAL" : "", !!(r.ioctls & (1UL << _UFFDIO_COPY)),
           !!(r.ioctls & (1UL << _UFFDIO_ZEROPAGE)), !!(r.ioctls & (1UL << _UFFDIO_WAKE)));
    pthread_t t;
    pthread_create(&t, 0, resolver, 0);
    madvise(p + 2 * PAGE, PAGE, MADV_DONTNEED);
    uint64_t v = ((volatile uint64_t *)(p + 2 * PAGE))[1];
    printf("holes: the second mapping's load reads %#lx\n", v);
    report("holes", (uint64_t)p + 2 * PAGE, t);
    struct uffdio_range u = {.start = (uint64_t)p, .len = 3 * PAGE};
    int ur = ioctl(uffd, UFFDIO_UNREGISTER, &u);
    struct uffdio_range uh = {.start = (uint64_t)p + PAGE, .len = PAGE};
    int uhr = ioctl(uffd, UFFDIO_UNREGISTER, &uh);
    printf("holes: unregister across the hole %d, inside the hole %d%s\n", ur, uhr,
           uhr && errno == EINVAL ? " EINVAL" : "");
    /* No longer registered: a dropped page reads as zeros without an event. */
    madvise(p + 2 * PAGE, PAGE, MADV_DONTNEED);
    printf("holes: after unregister the load reads %#lx\n", ((volatile uint64_t *)(p + 2 * PAGE))[1]);
}

/* ---- shadow stacks */

static uint64_t saved_ssp;
static uint64_t new_top;

AI void pivot_to(uint64_t top) {
    saved_ssp = rdssp();
    rstorssp((void *)(top - 8));
    saveprevssp();
}
AI void pivot_back(void) {
    rstorssp((void *)(saved_ssp - 8));
    saveprevssp();
}
AI void drop(uint64_t page) { sys3(28, (long)page, PAGE, MADV_DONTNEED); }
AI void save(uint64_t page) {
    for (unsigned i = 0; i < PAGE / 8; i++) ((volatile uint64_t *)fill)[i] = ((volatile uint64_t *)page)[i];
}

__attribute__((noinline)) static int callee(int x) { return x + 1; }

static uint64_t ret_page;
__attribute__((noinline)) static int ret_victim(void) {
    /* Our return address is the only entry on the page: keep it for the resolver. */
    save(ret_page);
    drop(ret_page);
    return 7;
}

static volatile int handled;
static void on_usr1(int s) { (void)s; handled = 1; }

static void shadow(const char *mode) {
    uint64_t base = map_shstk(0, 16 * PAGE, SHADOW_STACK_SET_TOKEN);
    new_top = base + 16 * PAGE;
    uint64_t page = new_top - PAGE;
    memset(fill, 0, sizeof fill);
    pthread_t t = start(page, O_CLOEXEC);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, 0);
    long r = 0;
    int ok = 0;
    pid_t pid = getpid();
    long tid = syscall(SYS_gettid);
    pivot_to(new_top);
    if (!strcmp(mode, "call")) {
        drop(page);
        r = callee(41); /* the CALL's push faults */
        ok = rdssp() == new_top;
    } else if (!strcmp(mode, "ret")) {
        ret_page = page;
        r = ret_victim(); /* its RET's pop faults */
        ok = rdssp() == new_top;
    } else if (!strcmp(mode, "incssp")) {
        /* A CALL with a non-zero displacement pushes (one with displacement 0 does not: Intel
         * SDM vol. 2A, CALL); the normal stack's copy is dropped at once. */
        asm volatile("call 1f\n nop\n1: add $8, %%rsp" ::: "memory");
        save(page);
        drop(page);
        incssp(1); /* reads the popped slot */
        ok = rdssp() == new_top;
    } else if (!strcmp(mode, "signal")) {
        drop(page);
        r = sys3(SYS_tgkill, pid, tid, SIGUSR1); /* delivery writes the token */
        ok = handled && rdssp() == new_top;
    }
    pivot_back();
    report(mode, page, t);
    printf("%s: result %ld, back on the new stack's top before pivoting back %d\n", mode, r, ok);
}

static void selftest(void) {
    /* The steps of test_userfaultfd, with a fresh shadow stack as its shstk_ptr. */
    uint64_t *shstk_ptr = (uint64_t *)map_shstk(0, 2 * 1024 * 1024, SHADOW_STACK_SET_TOKEN);
    uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) { puts("[SKIP] userfaultfd unavailable"); _exit(1); }
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    int a = ioctl(uffd, UFFDIO_API, &api);
    struct uffdio_register reg = {.range = {.start = (uint64_t)shstk_ptr, .len = 4096},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    int rg = ioctl(uffd, UFFDIO_REGISTER, &reg);
    memset(fill, 0, sizeof fill);
    pthread_t t;
    pthread_create(&t, 0, resolver, 0);
    /* The fault comes after the resolver has polled the empty descriptor at least once. */
    while (!nonblocking_polls) sched_yield();
    int m = madvise(shstk_ptr, 4096, MADV_DONTNEED);
    wrss(shstk_ptr, 1); /* blocks until the resolver's UFFDIO_COPY */
    uint64_t v1 = *shstk_ptr;
    void *rv;
    pthread_join(t, &rv);
    wrss(shstk_ptr, 2);
    printf("selftest: api %d register %d madvise %d resolver %ld polled %d events %d write %d "
           "value %lu after join %lu\n",
           a, rg, m, (long)rv, nonblocking_polls, ev_count, (int)(ev_flags & UFFD_PAGEFAULT_FLAG_WRITE),
           v1, *shstk_ptr);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    const char *m = argv[1];
    if (!strcmp(m, "load") || !strcmp(m, "store") || !strcmp(m, "syscall") ||
        !strcmp(m, "syscall-umo") || !strcmp(m, "mprotect-in-resolver") ||
        !strcmp(m, "emulated") || !strcmp(m, "emulated-umo") || !strcmp(m, "wake-op")) {
        ordinary(m);
        return 0;
    }
    if (!strncmp(m, "unmap-", 6)) {
        unmapped(m);
        return 0;
    }
    if (!strcmp(m, "register-refused")) {
        register_refused();
        return 0;
    }
    if (!strcmp(m, "umo-frame")) {
        umo_frame();
        return 0;
    }
    if (!strcmp(m, "holes")) {
        holes();
        return 0;
    }
    if (shstk_enable() || arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS)) {
        puts("enable failed");
        _exit(1);
    }
    if (!strcmp(m, "selftest")) selftest();
    else shadow(m);
    _exit(0);
}
