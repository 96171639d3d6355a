/* VmRSS reports resident memory, not the size of the mappings: a 512 MiB mapping of which
 * 64 MiB is touched grows VmRSS by about 64 MiB (and VmSize by 512 MiB); unmapping it gives
 * the 64 MiB back. Likewise statm's resident field and smaps' Rss of the mapping. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static long field(const char *file, const char *name) {
    FILE *f = fopen(file, "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name))) v = atol(line + strlen(name));
    if (f) fclose(f);
    return v;
}

static long smaps_rss(unsigned long addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long v = -1;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2) in = s == addr;
        else if (in && !strncmp(line, "Rss:", 4)) v = atol(line + 4);
    }
    if (f) fclose(f);
    return v;
}

static const char *near(long got, long want) { return got >= want - 2048 && got <= want + 4096 ? "yes" : "no"; }

int main(void) {
    long rss0 = field("/proc/self/status", "VmRSS:"), size0 = field("/proc/self/status", "VmSize:");
    char *p = mmap(0, 512UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 1, 64UL << 20);
    long rss1 = field("/proc/self/status", "VmRSS:"), size1 = field("/proc/self/status", "VmSize:");
    printf("VmSize grew by 512 MiB: %s\n", size1 - size0 == 512 * 1024 ? "yes" : "no");
    printf("VmRSS grew by about 64 MiB: %s\n", near(rss1 - rss0, 64 * 1024));
    printf("RssAnon about VmRSS: %s\n", near(field("/proc/self/status", "RssAnon:"), rss1 - field("/proc/self/status", "RssFile:")));
    printf("smaps Rss of the mapping is 64 MiB: %s\n", smaps_rss((unsigned long)p) == 64 * 1024 ? "yes" : "no");
    munmap(p, 512UL << 20);
    long rss2 = field("/proc/self/status", "VmRSS:");
    printf("VmRSS back after munmap: %s\n", near(rss2, rss0));
    return 0;
}
