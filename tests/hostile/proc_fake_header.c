// A native process (not under cetbox) that maps a page where cetbox processes publish their
// /proc view (crates/linux/src/procview.rs, PAGE) and fills it as argv[1] says, then waits to
// be killed. A guest reading this process's /proc files must not crash, hang or be led into
// cetbox's own memory: "huge" claims blobs of 1 TiB, "odd" a sequence number that never
// settles (both: the host's view), "fake" a small consistent view whose executable is
// /proc/self/mem (the text is shown; opening the executable is refused), "bigvmas" that view
// with VMA records of 1 TiB (maps is the host's; the executable's path, which is all its
// readlink copies, is the view's), "vast" a view whose
// one VMA record spans all of user space (a reader counting its resident pages must read only
// what the host has mapped, not 2^35 pagemap entries).
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 0x5ffffffd0000ul
#define SLOTS 0x5ffffe000000ul
#define MAGIC 0x6365746270726f64ul

static char exe[] = "/proc/self/mem";

// One VMA record (crates/linux/src/procfs.rs VmaInfo::encode): start, end, flag word (scan,
// class Data), the lengths of the maps and VmFlags lines, the lines.
#define RECORD(name, start, end, line)                                                         \
    static struct __attribute__((packed)) {                                                    \
        uint64_t s, e, bits;                                                                   \
        uint32_t line_len, flags_len;                                                          \
        char l[sizeof line - 1], f[sizeof FLAGS - 1];                                          \
    } name = {start, end, 1 | 4 << 8, sizeof line - 1, sizeof FLAGS - 1, line, FLAGS}
#define FLAGS "VmFlags: rd wr mr mw me ac \n"
RECORD(fake, 0x1000, 0x2000, "fake maps\n");
RECORD(vast, 0x1000, 0x7fffffffe000, "00001000-7fffffffe000 rw-p 00000000 00:00 0 \n");

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    // The header page (procview.rs LEN).
    uint64_t *h = mmap((void *)PAGE, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (h != (uint64_t *)PAGE) {
        perror("mmap");
        return 1;
    }
    // The header words (procview.rs WORDS): the "fake maps" record, no auxv, brk 0, no
    // private-descriptor table.
    uint64_t w[18] = {MAGIC, 2, 0, 0, (uint64_t)exe, sizeof exe - 1,
                      (uint64_t)exe, 0, 0, 0, 0, 0, (uint64_t)exe, sizeof exe - 1,
                      (uint64_t)&fake, sizeof fake, 0, 0};
    if (strcmp(argv[1], "huge") == 0)
        w[5] = w[7] = w[13] = w[15] = 1ul << 40;
    else if (strcmp(argv[1], "bigvmas") == 0)
        w[15] = 1ul << 40;
    else if (strcmp(argv[1], "odd") == 0)
        w[1] = 3;
    else if (strcmp(argv[1], "vast") == 0) {
        w[14] = (uint64_t)&vast;
        w[15] = sizeof vast;
        // A thread slot (procview.rs SLOTS_BASE) for the main thread, facts all zero, and
        // the count of slots taken (W_HIGH).
        uint64_t *s = mmap((void *)SLOTS, 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (s != (uint64_t *)SLOTS) {
            perror("mmap");
            return 1;
        }
        s[0] = getpid();
        h[28] = 1;
    }
    memcpy(h, w, sizeof w);
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
