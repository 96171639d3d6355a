/* The --sysroot path rules, seen from a guest (crates/cli/tests/sysroot.rs builds the sysroot
 * and states the expected output). argv[1]: the sysroot's host path; argv[2]: the path the
 * program was started as (what /proc/self/exe must show). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void greet(void);

static void cat(const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("open %s: failed\n", path);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    printf("open %s: %s", path, buf);
}

static const char *kind(const char *path, int follow) {
    struct stat st;
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0)
        return "missing";
    if (S_ISLNK(st.st_mode))
        return "symlink";
    if (S_ISCHR(st.st_mode))
        return "char device";
    if (S_ISDIR(st.st_mode))
        return "directory";
    if (S_ISREG(st.st_mode))
        return "regular file";
    return "other";
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    const char *root = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);

    greet();
    cat("/etc/cetbox-sysroot-only");
    cat("/etc/abs-link");
    char link[256];
    ssize_t n = readlink("/etc/abs-link", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("readlink /etc/abs-link: %s\n", link);
    printf("lstat /etc/abs-link: %s\n", kind("/etc/abs-link", 0));
    printf("stat /etc/abs-link: %s\n", kind("/etc/abs-link", 1));
    printf("access /etc/passwd (host only): %s\n", access("/etc/passwd", R_OK) == 0 ? "yes" : "no");
    printf("stat /dev/null: %s\n", kind("/dev/null", 1));
    printf("stat /dev/marker (sysroot only): %s\n", kind("/dev/marker", 1));
    printf("stat /proc/self/status: %s\n", kind("/proc/self/status", 1));

    /* /proc/self/exe and /proc/self/maps show the paths the guest believes in. */
    n = readlink("/proc/self/exe", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("/proc/self/exe is argv[2]: %s\n", strcmp(link, argv[2]) == 0 ? "yes" : link);
    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];
    int greet_lib = 0, interp = 0, leaked = 0;
    while (m && fgets(line, sizeof line, m)) {
        if (strstr(line, " /opt/cetbox-sysroot-test/lib/libgreet.so\n"))
            greet_lib = 1;
        if (strstr(line, " /lib/x86_64-linux-gnu/ld-cetbox-copy.so\n"))
            interp = 1;
        if (strstr(line, root))
            leaked = 1;
    }
    if (m)
        fclose(m);
    printf("maps: libgreet.so as /opt/...: %s, interpreter as /lib/...: %s, sysroot path shown: %s\n",
           greet_lib ? "yes" : "no", interp ? "yes" : "no", leaked ? "yes" : "no");

    /* stat follows /proc/self/exe to the program the guest believes in, itself looked up in
       the sysroot: the same file as argv[2]. */
    struct stat se, sp;
    printf("stat /proc/self/exe is argv[2]: %s\n",
           stat("/proc/self/exe", &se) == 0 && stat(argv[2], &sp) == 0 && se.st_dev == sp.st_dev &&
                   se.st_ino == sp.st_ino
               ? "yes"
               : "no");

    /* A link inside the sysroot that points into /proc reaches cetbox's /proc view (the
       guest's maps, with the guest's paths), not the host's file of that name. */
    m = fopen("/etc/maps-link", "r");
    greet_lib = 0;
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, " /opt/cetbox-sysroot-test/lib/libgreet.so\n"))
            greet_lib = 1;
    if (m)
        fclose(m);
    printf("/etc/maps-link shows the guest's maps: %s\n", greet_lib ? "yes" : "no");

    /* Relative paths are the host's, relative to a current directory inside the sysroot;
       getcwd reports the host path. */
    if (chdir("/etc") != 0)
        printf("chdir /etc: failed\n");
    cat("cetbox-sysroot-only");
    char cwd[512], want[512];
    snprintf(want, sizeof want, "%s/etc", root);
    printf("getcwd is the host path: %s\n",
           getcwd(cwd, sizeof cwd) && strcmp(cwd, want) == 0 ? "yes" : "no");

    /* execve looks the program up in the sysroot too. */
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/hello", "hello", (char *)0);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("/bin/hello exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
