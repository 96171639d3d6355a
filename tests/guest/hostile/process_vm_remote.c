/* process_vm_readv/writev and ptrace PEEKDATA/POKEDATA between two processes, page by page
 * (mm/process_vm_access.c process_vm_rw_core: a copy stops at the first page the target does
 * not allow, with a partial count or EFAULT when nothing moved; mm/gup.c check_vma_flags:
 * process_vm_writev needs a writable mapping, ptrace's FOLL_FORCE may write a private
 * read-only one; kernel/ptrace.c generic_ptrace_peekdata/pokedata: EIO unless the whole word
 * was transferred). The child is a stopped tracee, so its memory cannot change meanwhile. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
static pid_t child;
/* Pages: 0 RW, 1 RO, 2 PROT_NONE, 3 unmapped, 4 RW. */
static char *R;

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static long rd(long off, long len, char *out) {
    struct iovec l = {out, (size_t)len}, r = {R + off, (size_t)len};
    return process_vm_readv(child, &l, 1, &r, 1, 0);
}

static long wr(long off, long len, const char *in) {
    struct iovec l = {(void *)in, (size_t)len}, r = {R + off, (size_t)len};
    return process_vm_writev(child, &l, 1, &r, 1, 0);
}

static void peek(const char *what, long off) {
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, child, R + off, 0);
    if (errno)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %lx\n", what, v);
}

static void poke(const char *what, long off, long v) {
    show(what, ptrace(PTRACE_POKEDATA, child, R + off, (void *)v));
}

int main(void) {
    R = mmap(0, 5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (R == MAP_FAILED) return 1;
    memset(R, 'p', 5 * PG);
    munmap(R + 3 * PG, PG);
    child = fork();
    if (child == 0) {
        /* The child's own contents, different from the parent's copy. */
        memset(R, 'c', PG);
        memset(R + PG, 'r', PG);
        memset(R + 4 * PG, 'd', PG);
        mprotect(R + PG, PG, PROT_READ);
        mprotect(R + 2 * PG, PG, PROT_NONE);
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(0);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) return 2;
    /* Forced access to PROT_NONE and shared read-only pages: forced_remote.c. */
    char buf[3 * PG];
    memset(buf, 0, sizeof buf);

    show("read rw", rd(8, 16, buf));
    printf("  %.16s\n", buf);
    show("read ro", rd(PG + 8, 16, buf));
    printf("  %.16s\n", buf);
    show("read none", rd(2 * PG, 16, buf));
    show("read hole", rd(3 * PG, 16, buf));
    show("read rw into ro", rd(PG - 8, 16, buf));
    printf("  %.16s\n", buf);
    show("read ro into none", rd(2 * PG - 100, 200, buf));
    show("read across two pages then none", rd(PG - 100, PG + 200, buf));
    show("read after the hole", rd(4 * PG + 100, 10, buf));
    {
        struct iovec l = {buf, 64}, r[3] = {{R, 16}, {R + 3 * PG, 16}, {R + 4 * PG, 16}};
        show("read three remote iovecs, the second bad", process_vm_readv(child, &l, 1, r, 3, 0));
    }
    {
        struct iovec l[2] = {{buf, 10}, {buf + 100, 10}}, r = {R + PG - 10, 20};
        show("read two local iovecs", process_vm_readv(child, l, 2, &r, 1, 0));
        printf("  %.10s %.10s\n", buf, buf + 100);
    }
    {
        struct iovec l = {buf, 30}, r = {R + 2 * PG - 10, 20};
        show("read local longer than remote, into none", process_vm_readv(child, &l, 1, &r, 1, 0));
    }

    show("write rw", wr(16, 8, "WRITTEN!"));
    show("read back", rd(8, 24, buf));
    printf("  %.24s\n", buf);
    show("write ro", wr(PG, 8, "WRITTEN!"));
    show("write rw into ro", wr(PG - 4, 8, "12345678"));
    show("read back", rd(PG - 8, 16, buf));
    printf("  %.16s\n", buf);
    show("write none", wr(2 * PG, 8, "WRITTEN!"));
    show("write hole", wr(3 * PG, 8, "WRITTEN!"));

    peek("peek rw", 16);
    peek("peek ro", PG);
    peek("peek hole", 3 * PG);
    peek("peek across rw and ro", PG - 4);
    poke("poke rw", 32, 0x4142434445464748L);
    poke("poke ro (forced)", PG + 32, 0x3132333435363738L);
    peek("peek poked ro", PG + 32);
    poke("poke hole", 3 * PG + 8, 1);
    poke("poke into the hole", 3 * PG - 4, 1);
    peek("peek d", 4 * PG);

    /* /proc/PID/mem: forced access (fs/proc/base.c mem_rw), EIO when nothing moved. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", child);
    int mfd = open(path, O_RDWR);
    show("open mem", mfd < 0 ? -1 : 0);
    show("pread rw", pread(mfd, buf, 8, (off_t)(R + 8)));
    printf("  %.8s\n", buf);
    show("pread ro", pread(mfd, buf, 8, (off_t)(R + PG + 64)));
    show("pread hole", pread(mfd, buf, 8, (off_t)(R + 3 * PG)));
    show("pread rw into ro", pread(mfd, buf, 16, (off_t)(R + PG - 8)));
    printf("  %.16s\n", buf);
    show("pwrite ro (forced)", pwrite(mfd, "MEMWRITE", 8, (off_t)(R + PG + 64)));
    show("pread back", pread(mfd, buf, 8, (off_t)(R + PG + 64)));
    printf("  %.8s\n", buf);
    show("pwrite hole", pwrite(mfd, "MEMWRITE", 8, (off_t)(R + 3 * PG)));
    {
        struct iovec l[2] = {{buf, 4}, {buf + 8, 4}};
        show("preadv rw", preadv(mfd, l, 2, (off_t)(R + 4 * PG)));
        printf("  %.4s %.4s\n", buf, buf + 8);
        show("preadv hole", preadv(mfd, l, 2, (off_t)(R + 3 * PG)));
        lseek(mfd, (off_t)(R + PG - 4), SEEK_SET);
        show("readv at the position, rw into ro", readv(mfd, l, 2));
        printf("  %.4s %.4s\n", buf, buf + 8);
        show("position after", lseek(mfd, 0, SEEK_CUR) - (off_t)(R + PG));
    }
    {
        int d = dup(mfd);
        show("pread hole through a dup", pread(d, buf, 8, (off_t)(R + 3 * PG)));
        close(d);
        off_t o = 0;
        show("sendfile from mem", sendfile(1, mfd, &o, 8));
    }
    close(mfd);
    int rfd = open(path, O_RDONLY);
    show("pwrite through read-only open", pwrite(rfd, "MEMWRITE", 8, (off_t)(R + 8)));
    close(rfd);

    /* ptrace requests that write into the tracer: a read-only page of ours is EFAULT. */
    {
        char *ro = mmap(0, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        show("getsiginfo", ptrace(PTRACE_GETSIGINFO, child, 0, &si));
        printf("  signo %d\n", si.si_signo);
        show("getsiginfo into read-only", ptrace(PTRACE_GETSIGINFO, child, 0, ro));
        show("geteventmsg into read-only", ptrace(PTRACE_GETEVENTMSG, child, 0, ro));
        show("getsigmask into read-only", ptrace(PTRACE_GETSIGMASK, child, 8, ro));
        printf("  page still zero: %s\n", ro[0] == 0 && ro[8] == 0 ? "yes" : "no");
        show("unknown request", ptrace((enum __ptrace_request)0x7777, child, 0, 0));
    }

    {
        struct iovec l = {buf, 8}, r = {R, 8};
        show("read of no process", process_vm_readv(999999999, &l, 1, &r, 1, 0));
    }
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    printf("child: %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");
    return 0;
}
