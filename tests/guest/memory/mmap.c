//! link: static-pie
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *p = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap ok %d aligned %d\n", p != MAP_FAILED, ((unsigned long)p % pg) == 0);
    int zero = 1;
    for (long i = 0; i < 16 * pg; i++) if (p[i]) zero = 0;
    printf("zero filled %d\n", zero);
    for (long i = 0; i < 16 * pg; i++) p[i] = (unsigned char)(i / pg + i);
    printf("mprotect ro: %d\n", mprotect(p + 4 * pg, pg, PROT_READ));
    int mr = mprotect(p + 1, pg, PROT_READ);
    printf("mprotect unaligned: %d errno EINVAL %d\n", mr, errno == EINVAL);
    printf("munmap middle: %d\n", munmap(p + 8 * pg, 2 * pg));
    unsigned char vec[16];
    int rc = mincore(p, 16 * pg, vec);
    printf("mincore over hole: %d errno ENOMEM %d\n", rc, errno == ENOMEM);
    mr = madvise(p, pg, MADV_DONTNEED);
    printf("madvise dontneed: %d, first byte after %d, in other page %d\n", mr, p[0], p[pg + 5]);
    unsigned char *q = mremap(p + 12 * pg, 4 * pg, 8 * pg, MREMAP_MAYMOVE);
    printf("mremap grow ok %d content kept %d new part zero %d\n", q != MAP_FAILED, q[5] == (unsigned char)(12 * pg + 5 + 12), q[6 * pg] == 0);
    unsigned char *fixed = mmap(p + 8 * pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED into hole at requested address %d\n", fixed == p + 8 * pg);
    unsigned char *nr = mmap(p + 8 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE on used range fails %d errno EEXIST %d\n", nr == MAP_FAILED, errno == EEXIST);
    void *bad = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap len 0 fails %d errno EINVAL %d\n", bad == MAP_FAILED, errno == EINVAL);
    bad = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 12345, 0);
    printf("mmap bad fd fails %d errno EBADF %d\n", bad == MAP_FAILED, errno == EBADF);
    unsigned char *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[100] = 77;
    printf("shared anon %d\n", sh[100]);
    unsigned char *grow = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    grow[3 * pg - 1] = 1;
    printf("munmap all: %d %d %d %d\n", munmap(p, 8 * pg), munmap(fixed, pg), munmap(q, 8 * pg), munmap(grow, 3 * pg));
    printf("msync on anonymous: %d\n", msync(sh, pg, MS_SYNC));
    printf("mlock: %d\n", mlock(sh, pg) == 0 || errno == EPERM || errno == ENOMEM);
    void *brk0 = sbrk(0);
    void *brk1 = sbrk(100000);
    char *b = brk1;
    b[99999] = 5;
    void *brk2 = sbrk(0);
    printf("sbrk grew by %ld\n", (long)((char *)brk2 - (char *)brk0));
    sbrk(-100000);
    printf("sbrk shrink back %d\n", sbrk(0) == brk0);
    return 0;
}
