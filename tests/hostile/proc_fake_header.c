// A native process (not under cetbox) that maps a page where cetbox processes publish their
// /proc view (crates/linux/src/procview.rs, PAGE) and fills it as argv[1] says, then waits to
// be killed. A guest reading this process's /proc files must not crash, hang or be led into
// cetbox's own memory: "huge" claims a 1 TiB maps text, "odd" a sequence number that never
// settles (both: the host's view), "fake" a small consistent view whose executable is
// /proc/self/mem (the text is shown; opening the executable is refused).
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 0x5ffffffd0000ul
#define MAGIC 0x6365746270726f64ul

static char maps[] = "fake maps\n";
static char exe[] = "/proc/self/mem";

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    uint64_t *h = mmap((void *)PAGE, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (h != (uint64_t *)PAGE) {
        perror("mmap");
        return 1;
    }
    // The header words (procview.rs WORDS): no VMA records, brk 0, no private-descriptor table.
    uint64_t w[18] = {MAGIC, 2, (uint64_t)maps, sizeof maps - 1, (uint64_t)exe, sizeof exe - 1,
                      (uint64_t)maps, 0, 0, 0, 0, 0, (uint64_t)exe, sizeof exe - 1,
                      (uint64_t)maps, 0, 0, 0};
    if (strcmp(argv[1], "huge") == 0)
        w[3] = 1ul << 40;
    else if (strcmp(argv[1], "odd") == 0)
        w[1] = 3;
    memcpy(h, w, sizeof w);
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
