/* Forced access (FOLL_FORCE: ptrace PEEKDATA/POKEDATA, /proc/PID/mem) to another process's
 * pages by their mapping (mm/gup.c check_vma_flags): a forced read reaches every mapping,
 * PROT_NONE included; a forced write reaches private mappings whatever their protection
 * (copy-on-write for a file: the file is unchanged) and no shared mapping without PROT_WRITE,
 * anonymous or file (is_cow_mapping). A word or buffer straddling into a page the access may
 * not touch is copied up to that page (mm/memory.c __access_remote_vm): /proc/PID/mem returns
 * the partial count, POKEDATA writes the first part and answers EIO (kernel/ptrace.c
 * generic_ptrace_pokedata). The child is a stopped tracee, so its memory cannot change. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
/* Pages: 0 RW private, 1 PROT_NONE private, 2 RO shared anonymous, 3 unmapped,
 * 4 RO private file, 5 RO shared file, 6 PROT_NONE shared anonymous, 7 RW private. */
static char *R;
static pid_t child;

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
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

static void fixed(int page, int prot, int flags, int fd, char fill) {
    char *p = mmap(R + page * PG, PG, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) exit(10 + page);
    if (fill && fd < 0) memset(p, fill, PG);
    if (mprotect(p, PG, prot)) exit(20 + page);
}

int main(void) {
    int fd = memfd_create("forced", 0);
    char file[PG];
    memset(file, 'f', PG);
    if (fd < 0 || write(fd, file, PG) != PG) return 1;
    R = mmap(0, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (R == MAP_FAILED) return 1;
    fixed(0, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 'w');
    fixed(1, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 'n');
    fixed(2, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 's');
    munmap(R + 3 * PG, PG);
    /* Read-only file pages: the memfd is open read-write, so VM_MAYWRITE is set. */
    fixed(4, PROT_READ, MAP_PRIVATE, fd, 0);
    fixed(5, PROT_READ, MAP_SHARED, fd, 0);
    fixed(6, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 'S');
    fixed(7, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 'W');
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
        /* Never outlives a parent that gave up early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(9);
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        /* Resumed: report what the tracer's writes left in the pages. */
        mprotect(R + PG, PG, PROT_READ);
        mprotect(R + 6 * PG, PG, PROT_READ);
        printf("child sees: none %.8s, shared none %.8s, file private %.8s, file shared %.8s\n",
               R + PG + 64, R + 6 * PG + 64, R + 4 * PG + 64, R + 5 * PG + 64);
        printf("child sees: rw end %.8s, shared ro %.8s\n", R + PG - 8, R + 2 * PG + 64);
        fflush(stdout);
        _exit(0);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st)) return 2;

    peek("peek none", PG);
    poke("poke none", PG + 64, 0x4e4f4e45504f4b45L);
    peek("peek poked none", PG + 64);
    peek("peek shared ro", 2 * PG);
    poke("poke shared ro", 2 * PG + 64, 0x4141414141414141L);
    peek("peek shared ro after", 2 * PG + 64);
    peek("peek hole", 3 * PG);
    peek("peek file private", 4 * PG);
    poke("poke file private", 4 * PG + 64, 0x5052495641544521L);
    peek("peek file private after", 4 * PG + 64);
    peek("peek file shared", 5 * PG);
    poke("poke file shared", 5 * PG + 64, 0x5348415245442121L);
    peek("peek shared none", 6 * PG);
    poke("poke shared none", 6 * PG + 64, 0x4242424242424242L);
    peek("peek across rw and none", PG - 4);
    peek("peek across none and shared ro", 2 * PG - 4);
    /* A word that starts on a page the write may use and ends on one it may not. */
    poke("poke rw into none", PG - 4, 0x3837363534333231L);
    poke("poke none into shared ro", 2 * PG - 4, 0x6867666564636261L);
    peek("peek none end", 2 * PG - 8);
    poke("poke shared ro into hole", 3 * PG - 4, 0x7877767574737271L);
    poke("poke shared none into rw", 7 * PG - 4, 0x2a2a2a2a2a2a2a2aL);
    peek("peek rw 7", 7 * PG);

    char path[64], buf[2 * PG];
    snprintf(path, sizeof path, "/proc/%d/mem", child);
    int mfd = open(path, O_RDWR);
    show("open mem", mfd < 0 ? -1 : 0);
    show("pread none", pread(mfd, buf, 8, (off_t)(R + PG + 128)));
    printf("  %.8s\n", buf);
    show("pread rw, none, shared ro", pread(mfd, buf, 2 * PG, (off_t)(R + PG - 16)));
    printf("  %.4s %.4s %.4s\n", buf, buf + 16, buf + PG + 16);
    show("pwrite none", pwrite(mfd, "MEMWRITE", 8, (off_t)(R + PG + 256)));
    show("pwrite shared ro", pwrite(mfd, "MEMWRITE", 8, (off_t)(R + 2 * PG + 256)));
    show("pwrite none into shared ro", pwrite(mfd, "ABCDEFGHIJKLMNOP", 16, (off_t)(R + 2 * PG - 8)));
    show("pwrite shared ro into hole", pwrite(mfd, "ABCDEFGHIJKLMNOP", 16, (off_t)(R + 3 * PG - 8)));
    show("pread shared ro into hole", pread(mfd, buf, 16, (off_t)(R + 3 * PG - 8)));
    show("pwrite file private", pwrite(mfd, "COWCOPY!", 8, (off_t)(R + 4 * PG + 256)));
    show("pwrite file shared", pwrite(mfd, "SHARED!!", 8, (off_t)(R + 5 * PG + 256)));
    show("pread shared none", pread(mfd, buf, 8, (off_t)(R + 6 * PG + 128)));
    printf("  %.8s\n", buf);
    show("pwrite shared none", pwrite(mfd, "MEMWRITE", 8, (off_t)(R + 6 * PG + 256)));
    show("pread back none", pread(mfd, buf, 8, (off_t)(R + PG + 256)));
    printf("  %.8s\n", buf);
    close(mfd);

    /* The file itself never changed. */
    char f[16];
    show("file", pread(fd, f, 16, 64));
    printf("  %.8s %.8s\n", f, f + 8);
    show("file at 256", pread(fd, f, 8, 256));
    printf("  %.8s\n", f);

    fflush(stdout);
    ptrace(PTRACE_CONT, child, 0, 0);
    waitpid(child, &st, 0);
    printf("child: %s %d\n", WIFEXITED(st) ? "exited" : "killed",
           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 0;
}
