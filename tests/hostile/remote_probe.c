// Another guest process's memory through process_vm_readv/writev and ptrace PEEKDATA/POKEDATA
// (crates/cli/tests/hostile.rs, other_guest_cannot_reach_cetbox_memory). The child maps a
// shadow stack, prints its /proc/self/maps, the shadow stack's address and "ready", and stops
// as a tracee; the parent then prints the child's pid and "go". The test gives the parent, on
// stdin, addresses of the child's cetbox process outside the child's guest mappings (hex, one
// per line); for each the parent prints what the four accesses gave. Linux has nothing mapped
// there for the child, so: process_vm_* EFAULT, PEEK and POKE EIO. At end of input the parent
// tries the shadow-stack page: readable (8), process_vm_writev refused (EFAULT: mm/gup.c
// check_vma_flags, a VM_SHADOW_STACK mapping is written only with FOLL_FORCE), POKEDATA
// allowed (FOLL_FORCE on a private mapping) and seen by PEEKDATA. /proc/PID/mem reads and
// writes (FOLL_FORCE too: fs/proc/base.c mem_rw) give EIO outside the guest's memory and
// write the shadow-stack page.
#include "../shstk/cet.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

static pid_t child;

static void result(const char *what, long r) {
    if (r < 0)
        printf(" %s %s", what, strerrorname_np(errno));
    else
        printf(" %s %ld", what, r);
}

int main(void) {
    child = fork();
    if (child == 0) {
        long ss = map_shstk(0, 4096, SHADOW_STACK_SET_TOKEN);
        FILE *m = fopen("/proc/self/maps", "r");
        char line[512];
        while (m && fgets(line, sizeof line, m))
            fputs(line, stdout);
        if (m)
            fclose(m);
        printf("ss %lx\nready\n", ss);
        fflush(stdout);
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(0);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFSTOPPED(st))
        return 2;
    printf("pid %d\ngo\n", child);
    fflush(stdout);
    char line[128];
    unsigned long ss = 0;
    snprintf(line, sizeof line, "/proc/%d/mem", child);
    int mfd = open(line, O_RDWR);
    if (mfd < 0)
        return 3;
    while (fgets(line, sizeof line, stdin)) {
        unsigned long addr = strtoul(line, NULL, 16);
        if (!strncmp(line, "ss ", 3)) {
            ss = strtoul(line + 3, NULL, 16);
            break;
        }
        char buf[8] = "ESCAPED!";
        struct iovec l = {buf, 8}, r = {(void *)addr, 8};
        printf("%lx", addr);
        result("read", process_vm_readv(child, &l, 1, &r, 1, 0));
        result("write", process_vm_writev(child, &l, 1, &r, 1, 0));
        errno = 0;
        long v = ptrace(PTRACE_PEEKDATA, child, (void *)addr, 0);
        result("peek", errno ? -1 : 0);
        (void)v;
        result("poke", ptrace(PTRACE_POKEDATA, child, (void *)addr, (void *)0x4443424144434241L));
        result("memread", pread(mfd, buf, 8, (off_t)addr));
        result("memwrite", pwrite(mfd, buf, 8, (off_t)addr));
        printf("\n");
        fflush(stdout);
    }
    if (ss) {
        char buf[8] = "ESCAPED!";
        struct iovec l = {buf, 8}, r = {(void *)(ss + 64), 8};
        printf("shadow stack");
        result("read", process_vm_readv(child, &l, 1, &r, 1, 0));
        result("write", process_vm_writev(child, &l, 1, &r, 1, 0));
        result("poke", ptrace(PTRACE_POKEDATA, child, (void *)(ss + 64), (void *)0x1122334455667788L));
        errno = 0;
        long v = ptrace(PTRACE_PEEKDATA, child, (void *)(ss + 64), 0);
        printf(" peek %lx", errno ? -1L : v);
        result("memwrite", pwrite(mfd, "SHSTKMEM", 8, (off_t)(ss + 72)));
        result("memread", pread(mfd, buf, 8, (off_t)(ss + 72)));
        printf(" %.8s\n", buf);
    }
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    return 0;
}
