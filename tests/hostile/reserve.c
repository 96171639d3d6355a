/* Makes a 4 TiB PROT_NONE MAP_NORESERVE reservation, uses 1 MiB of it, unmaps it, and does it
 * again `rounds` times: the page table must cost memory only for accessible pages (and give
 * it back after munmap), so cetbox's RSS stays far below the 1 GiB a byte per reserved page
 * would cost. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 0; i < rounds; i++) {
        char *p = mmap(0, 4UL << 40, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return 1;
        if (mprotect(p + (1UL << 30), 1 << 20, PROT_READ | PROT_WRITE)) return 2;
        memset(p + (1UL << 30), 1, 1 << 20);
        if (munmap(p, 4UL << 40)) return 3;
    }
    puts("ok");
    return 0;
}
