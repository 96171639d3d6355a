/* Access to the memory of a process stopped at an arbitrary point (SIGSTOP) while it keeps
 * changing its mappings: Linux never stops a task inside a change of its mappings (mmap_lock
 * is held only in the kernel), so process_vm_readv/writev and /proc/PID/mem of a page the
 * child does not touch succeed at once, every time, whatever the child was doing. The child
 * spends most of its time changing the protection of a large range (mprotect of 256 MiB
 * between PROT_NONE and read-write), so most stops land inside such a change; a forced read
 * (/proc/PID/mem) of a page of that range returns its contents in either state (mm/gup.c
 * check_vma_flags). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (256L << 20)
#define ROUNDS 60

int main(void) {
    char *stable = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *big = mmap(0, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (stable == MAP_FAILED || big == MAP_FAILED) return 1;
    memset(stable, 's', 4096);
    memcpy(big + 100 * 4096, "bigpage!", 8);
    int ready[2];
    if (pipe(ready)) return 1;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        /* Never outlives a parent that gave up early. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(9);
        close(ready[0]);
        write(ready[1], "r", 1);
        for (;;) {
            mprotect(big, BIG, PROT_NONE);
            mprotect(big, BIG, PROT_READ | PROT_WRITE);
            /* Mapping and unmapping too: entries filled and cleared. */
            char *p = mmap(0, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            munmap(p, 1 << 20);
        }
    }
    char c;
    if (read(ready[0], &c, 1) != 1) return 2;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", child);
    int mfd = open(path, O_RDWR);
    if (mfd < 0) return 3;
    int bad = 0;
    for (int i = 0; i < ROUNDS && !bad; i++) {
        int st;
        kill(child, SIGSTOP);
        if (waitpid(child, &st, WUNTRACED) != child || !WIFSTOPPED(st)) return 4;
        char buf[16] = {0};
        struct iovec l = {buf, 16}, r = {stable + 100, 16};
        long n = process_vm_readv(child, &l, 1, &r, 1, 0);
        if (n != 16 || memcmp(buf, "ssssssssssssssss", 16)) {
            printf("round %d: process_vm_readv %ld (%s)\n", i, n, n < 0 ? strerrorname_np(errno) : "");
            bad = 1;
        }
        char w[8] = {'0' + i % 10, 'w', 'w', 'w', 'w', 'w', 'w', 'w'};
        struct iovec wl = {w, 8}, wr = {stable + 200, 8};
        n = process_vm_writev(child, &wl, 1, &wr, 1, 0);
        if (n != 8) {
            printf("round %d: process_vm_writev %ld (%s)\n", i, n, n < 0 ? strerrorname_np(errno) : "");
            bad = 1;
        }
        n = pread(mfd, buf, 8, (off_t)(stable + 200));
        if (n != 8 || memcmp(buf, w, 8)) {
            printf("round %d: /proc/PID/mem read %ld (%s)\n", i, n, n < 0 ? strerrorname_np(errno) : "");
            bad = 1;
        }
        n = pread(mfd, buf, 8, (off_t)(big + 100 * 4096));
        if (n != 8 || memcmp(buf, "bigpage!", 8)) {
            printf("round %d: /proc/PID/mem read of the changing range %ld (%s)\n", i, n,
                   n < 0 ? strerrorname_np(errno) : "");
            bad = 1;
        }
        n = pwrite(mfd, "mmmmmmmm", 8, (off_t)(stable + 300));
        if (n != 8) {
            printf("round %d: /proc/PID/mem write %ld (%s)\n", i, n, n < 0 ? strerrorname_np(errno) : "");
            bad = 1;
        }
        kill(child, SIGCONT);
        /* Let it run into its changes again before the next stop. */
        for (volatile int k = 0; k < 200000; k++) {
        }
    }
    kill(child, SIGKILL);
    int st;
    waitpid(child, &st, 0);
    printf("%d rounds: %s\n", ROUNDS, bad ? "failed" : "every access succeeded");
    return 0;
}
