/* Every spelling of a /proc file of this process names the same file: repeated slashes, ".",
 * "..", a dirfd for /proc or /proc/self, the cwd inside /proc/self, a symlink to /proc/self,
 * /proc/thread-self and /proc/<pid>/task/<tid>. Each must show this program's own maps (the
 * kernel resolves the path before deciding what it names), and code patched through any
 * spelling of /proc/self/mem must run patched. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char ref[1 << 16], got[1 << 16];

static long slurp_at(int dfd, const char *path, char *buf) {
    int fd = openat(dfd, path, O_RDONLY);
    if (fd < 0) return -1;
    long n = 0, r;
    while ((r = read(fd, buf + n, (1 << 16) - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

static void same(const char *label, int dfd, const char *path) {
    long n = slurp_at(dfd, path, got);
    printf("%-34s %s\n", label, n < 0 ? "cannot open" : strcmp(got, ref) == 0 ? "same maps" : "DIFFERENT");
}

__attribute__((noinline)) int answer(void) { return 1; }

int main(int argc, char **argv) {
    (void)argc;
    const char *me = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    char p[256], tmp[] = "/tmp/cetbox-proc-XXXXXX";
    if (slurp_at(AT_FDCWD, "/proc/self/maps", ref) <= 0) return 1;
    printf("own program in maps: %s\n", strstr(ref, me) ? "yes" : "no");
    same("/proc//self/maps", AT_FDCWD, "/proc//self/maps");
    same("/proc/./self/maps", AT_FDCWD, "/proc/./self/maps");
    same("/proc/self/./maps", AT_FDCWD, "/proc/self/./maps");
    same("//proc/self/maps", AT_FDCWD, "//proc/self/maps");
    same("/proc/self/../self/maps", AT_FDCWD, "/proc/self/../self/maps");
    same("/proc/thread-self/maps", AT_FDCWD, "/proc/thread-self/maps");
    snprintf(p, sizeof p, "/proc/%d/task/%d/maps", getpid(), gettid());
    same("/proc/PID/task/TID/maps", AT_FDCWD, p);
    int proc = open("/proc", O_RDONLY | O_DIRECTORY);
    same("openat(/proc, self/maps)", proc, "self/maps");
    int self = open("/proc/self", O_RDONLY | O_DIRECTORY);
    same("openat(/proc/self, maps)", self, "maps");
    if (!mkdtemp(tmp)) return 1;
    snprintf(p, sizeof p, "%s/link", tmp);
    symlink("/proc/self", p);
    snprintf(p, sizeof p, "%s/link/maps", tmp);
    same("symlink to /proc/self", AT_FDCWD, p);
    char lk[256];
    snprintf(p, sizeof p, "%s/link", tmp);
    long n = readlink(p, lk, sizeof lk - 1);
    printf("readlink(symlink) = %.*s\n", (int)(n > 0 ? n : 0), lk);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return 1;
    chdir("/proc/self");
    same("chdir(/proc/self); maps", AT_FDCWD, "maps");
    /* /proc/self/exe spelled differently is still this program. */
    n = readlink("/proc/./self/exe", lk, sizeof lk - 1);
    lk[n > 0 ? n : 0] = 0;
    printf("readlink(/proc/./self/exe) names the program: %s\n",
           strstr(lk, me) ? "yes" : "no");
    n = readlink("exe", lk, sizeof lk - 1);
    lk[n > 0 ? n : 0] = 0;
    printf("readlink(exe) in cwd /proc/self names the program: %s\n",
           strstr(lk, me) ? "yes" : "no");
    struct stat a, b;
    stat("/proc/self/exe", &a);
    stat("/proc//self/exe", &b);
    printf("stat /proc//self/exe is the program: %s\n", a.st_ino == b.st_ino && a.st_dev == b.st_dev ? "yes" : "no");
    /* Patch answer() to return 2 through an unusual spelling of /proc/self/mem. */
    int (*volatile fn)(void) = answer;
    printf("answer before: %d\n", fn());
    int mem = open("/proc/./self/mem", O_RDWR);
    static const unsigned char code[] = {0xb8, 2, 0, 0, 0, 0xc3};
    printf("pwrite: %ld\n", (long)pwrite(mem, code, sizeof code, (long)(unsigned long)answer));
    printf("answer after: %d\n", fn());
    chdir(cwd);
    unlink(p);
    rmdir(tmp);
    return 0;
}
