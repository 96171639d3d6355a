// clone(CLONE_VM | CLONE_VFORK) shares the parent's memory while the parent's other threads
// run on (clone(2)). What the child writes goes into the mappings of the moment; when another
// thread then unmaps a mapping and maps something else at its address, the new mapping does
// not show the child's bytes: they went with the old one. A mapping made read-only after the
// child wrote it keeps them. Each step is ordered by pipes, so the result does not depend on
// timing.
//
// cetbox makes such a child a host process whose writes are applied to the parent's memory when
// it exits. They used to be written into whatever the parent had at those addresses by then:
// a fresh anonymous mapping, a read-only file mapping, or a mapping the child itself made at an
// address that was free at the fork, all showed bytes that Linux never put there.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../common/vfork_clone.h"

#define PAGE 4096

static char *fresh, *ro, *filed, *childmap, *kept;
static int to_thread[2], to_child[2], never[2];
static char path[] = "/tmp/vfork_remapped_XXXXXX";
static int file_fd;

static void *other_thread(void *arg) {
    (void)arg;
    char c;
    if (read(to_thread[0], &c, 1) != 1)
        abort();
    /* A fresh anonymous mapping where the child wrote. */
    if (mmap(fresh, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) != fresh)
        abort();
    /* The same mapping, now read-only. */
    if (mprotect(ro, PAGE, PROT_READ) != 0)
        abort();
    /* A read-only private file mapping where the child wrote. */
    if (mmap(filed, PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, file_fd, 0) != filed)
        abort();
    /* The child mapped this page itself (it was free at the fork); a fresh mapping replaces
       the child's. */
    if (mmap(childmap, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) != childmap)
        abort();
    if (write(to_child[1], "d", 1) != 1)
        abort();
    if (read(never[0], &c, 1) != 1)
        abort();
    return NULL;
}

static int child_fn(void *arg) {
    (void)arg;
    fresh[0] = 'F';
    ro[0] = 'R';
    filed[0] = 'L';
    kept[0] = 'K';
    if (mmap(childmap, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) != childmap)
        _exit(102);
    childmap[0] = 'C';
    if (write(to_thread[1], "g", 1) != 1)
        _exit(100);
    char c;
    if (read(to_child[0], &c, 1) != 1)
        _exit(101);
    _exit(9);
}

int main(void) {
    file_fd = mkstemp(path);
    if (file_fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(path);
    char page[PAGE];
    memset(page, 'f', sizeof page);
    if (write(file_fd, page, sizeof page) != PAGE) {
        perror("write");
        return 1;
    }
    /* Five pages with a free page between each two. */
    char *base = mmap(NULL, 9 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (int i = 1; i < 9; i += 2)
        munmap(base + i * PAGE, PAGE);
    fresh = base;
    ro = base + 2 * PAGE;
    filed = base + 4 * PAGE;
    childmap = base + 6 * PAGE;
    kept = base + 8 * PAGE;
    munmap(childmap, PAGE);
    if (pipe(to_thread) || pipe(to_child) || pipe(never)) {
        perror("pipe");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, other_thread, NULL) != 0) {
        puts("pthread_create failed");
        return 1;
    }
    int status = vfork_clone_wait(child_fn);
    if (status < 0)
        return 1;
    printf("child exit %d\n", status);
    printf("fresh mapping: %d\n", fresh[0]);
    printf("made read-only: %c\n", ro[0]);
    printf("file mapping: %c\n", filed[0]);
    printf("child's own mapping replaced: %d\n", childmap[0]);
    printf("untouched mapping: %c\n", kept[0]);
    return 0;
}
