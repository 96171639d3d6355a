// Reads another process's (argv[1]) /proc/PID/maps and exe as a guest: prints the maps text,
// the exe link, and whether opening the exe worked (tests/hostile/proc_fake_header.c).
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
    return 0;
}
