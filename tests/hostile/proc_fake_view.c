// Reads another process's (argv[1]) /proc/PID/maps and exe as a guest: prints the maps text,
// the exe link, and whether opening the exe worked (tests/hostile/proc_fake_header.c); with a
// second argument, its status lines VmSize and VmRSS as well.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%s/maps", argv[1]);
    int fd = open(path, O_RDONLY);
    long n = 0, r;
    while (fd >= 0 && n < (long)sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    buf[n] = 0;
    printf("maps<<%s>>\n", buf);
    snprintf(path, sizeof path, "/proc/%s/exe", argv[1]);
    n = readlink(path, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    printf("exe<<%s>>\n", buf);
    fd = open(path, O_RDONLY);
    printf("open exe: %s\n", fd >= 0 ? "ok" : strerror(errno));
    if (argc > 2) {
        snprintf(path, sizeof path, "/proc/%s/status", argv[1]);
        FILE *f = fopen(path, "r");
        while (f && fgets(buf, sizeof buf, f))
            if (strncmp(buf, "VmSize:", 7) == 0 || strncmp(buf, "VmRSS:", 6) == 0)
                fputs(buf, stdout);
    }
    return 0;
}
