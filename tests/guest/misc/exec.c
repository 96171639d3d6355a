// execve and execveat: the errors Linux returns with the caller's image intact (ENOENT,
// EACCES, ENOEXEC, E2BIG, EFAULT, ENOTDIR, ELOOP), and what survives a successful exec:
// descriptors without FD_CLOEXEC, the blocked mask, ignored signals, pending signals, the
// pid; argv and envp as given; #! scripts with their argument; fexecve; exit statuses.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char dir[] = "/tmp/cetbox-exec-XXXXXX";
static char self[4096];

static void write_file(const char *name, const char *text, int mode) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    write(fd, text, strlen(text));
    close(fd);
    chmod(p, mode);
}

static void try_exec(const char *what, const char *path, char **argv, char **envp) {
    errno = 0;
    long r = syscall(SYS_execve, path, argv, envp);
    printf("%-28s -> %ld %s\n", what, r, strerrorname_np(errno));
}

static int run_child(const char *what, const char *path, char *const argv[]) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execv(path, argv);
        printf("%s: exec failed %s\n", what, strerrorname_np(errno));
        fflush(stdout);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFEXITED(st))
        printf("%s: exit %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: signal %s\n", what, sigabbrev_np(WTERMSIG(st)));
    return st;
}

static int child_main(int argc, char **argv) {
    // Re-executed: report what survived.
    printf("child argc=%d", argc);
    for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
    printf("\n");
    const char *e = getenv("EXEC_TEST");
    printf("env EXEC_TEST=%s\n", e ? e : "(unset)");
    printf("fd 5 %s, fd 6 %s\n", fcntl(5, F_GETFD) >= 0 ? "open" : "closed",
           fcntl(6, F_GETFD) >= 0 ? "open" : "closed");
    sigset_t m, p;
    sigprocmask(SIG_BLOCK, NULL, &m);
    sigpending(&p);
    struct sigaction sa;
    sigaction(SIGUSR2, NULL, &sa);
    int ign = sa.sa_handler == SIG_IGN;
    sigaction(SIGHUP, NULL, &sa);
    printf("USR1 blocked=%d pending=%d; USR2 ignored=%d; HUP default=%d\n", sigismember(&m, SIGUSR1),
           sigismember(&p, SIGUSR1), ign, sa.sa_handler == SIG_DFL);
    char comm[32] = {0};
    int fd = open("/proc/self/comm", O_RDONLY);
    read(fd, comm, sizeof comm - 1);
    close(fd);
    printf("comm %s", comm);
    return 17;
}

static void onhup(int s) { (void)s; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child_main(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    if (!mkdtemp(dir)) return 1;

    char *args[] = {"prog", NULL};
    char *envs[] = {NULL};
    try_exec("missing file", "/nonexistent/prog", args, envs);
    try_exec("empty path", "", args, envs);
    try_exec("directory", "/tmp", args, envs);
    try_exec("path through a file", "/etc/passwd/x", args, envs);
    try_exec("bad path pointer", (const char *)8, args, envs);
    write_file("noexec", "#!/bin/sh\necho hi\n", 0644);
    char p[4200];
    snprintf(p, sizeof p, "%s/noexec", dir);
    try_exec("not executable", p, args, envs);
    write_file("garbage", "\x01\x02\x03 this is not a program\n", 0755);
    snprintf(p, sizeof p, "%s/garbage", dir);
    try_exec("unknown format", p, args, envs);
    write_file("short", "\x7f" "ELF", 0755);
    snprintf(p, sizeof p, "%s/short", dir);
    try_exec("truncated ELF", p, args, envs);
    write_file("badinterp", "#!/nonexistent/interpreter\n", 0755);
    snprintf(p, sizeof p, "%s/badinterp", dir);
    try_exec("missing #! interpreter", p, args, envs);
    write_file("emptyline", "#!\n", 0755);
    snprintf(p, sizeof p, "%s/emptyline", dir);
    try_exec("empty #! line", p, args, envs);
    try_exec("bad argv pointer", "/bin/true", (char **)8, envs);
    char *badarg[] = {"x", (char *)8, NULL};
    try_exec("bad argv string", "/bin/true", badarg, envs);
    try_exec("bad envp pointer", "/bin/true", args, (char **)8);
    // One string longer than MAX_ARG_STRLEN (32 pages).
    char *big = malloc(40 * 4096);
    memset(big, 'a', 40 * 4096 - 1);
    big[40 * 4096 - 1] = 0;
    char *bigargv[] = {"x", big, NULL};
    try_exec("argument too long", "/bin/true", bigargv, envs);
    // Many strings whose total exceeds a quarter of the stack limit.
    int many = 200000;
    char **lots = calloc(many + 2, sizeof *lots);
    lots[0] = "x";
    for (int i = 1; i <= many; i++) lots[i] = big + 40 * 4096 - 101;
    try_exec("argument list too long", "/bin/true", lots, envs);
    errno = 0;
    long r = syscall(SYS_execveat, AT_FDCWD, "/bin/true", args, envs, 0x4000);
    printf("%-28s -> %ld %s\n", "execveat bad flags", r, strerrorname_np(errno));
    int tfd = open("/etc/passwd", O_RDONLY);
    r = syscall(SYS_execveat, tfd, "x", args, envs, 0);
    printf("%-28s -> %ld %s\n", "execveat file as dirfd", r, strerrorname_np(errno));
    symlink("/bin/true", "/tmp/cetbox-exec-link");
    snprintf(p, sizeof p, "%s/link", dir);
    symlink("/bin/true", p);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    r = syscall(SYS_execveat, dfd, "link", args, envs, AT_SYMLINK_NOFOLLOW);
    printf("%-28s -> %ld %s\n", "execveat symlink nofollow", r, strerrorname_np(errno));
    r = syscall(SYS_execveat, dfd, "", args, envs, 0);
    printf("%-28s -> %ld %s\n", "execveat empty no flag", r, strerrorname_np(errno));
    unlink("/tmp/cetbox-exec-link");

    // Successful execs, in children.
    char *a1[] = {"true", NULL};
    run_child("/bin/true", "/bin/true", a1);
    char *a2[] = {"sh", "-c", "exit 5", NULL};
    run_child("sh exit 5", "/bin/sh", a2);
    write_file("script", "#!/bin/sh -u\necho \"script: ${0##*/} $# ${1##*/} $2\"\nexit 9\n", 0755);
    snprintf(p, sizeof p, "%s/script", dir);
    char *a3[] = {"ignored-argv0", "one", "two three", NULL};
    run_child("script", p, a3);
    write_file("nested", "#!", 0755);
    snprintf(p, sizeof p, "%s/nested", dir);
    {
        // A #! script whose interpreter is itself a #! script.
        char text[4300];
        snprintf(text, sizeof text, "#!%s/script\n", dir);
        write_file("nested", text, 0755);
    }
    char *a4[] = {"n", "arg", NULL};
    run_child("nested script", p, a4);

    // What survives: fds, masks, ignored signals, pending signals, environment, argv.
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int a = open("/dev/null", O_RDONLY);
        dup2(a, 5);
        dup2(a, 6);
        fcntl(6, F_SETFD, FD_CLOEXEC);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        sigprocmask(SIG_BLOCK, &s, NULL);
        raise(SIGUSR1);
        signal(SIGUSR2, SIG_IGN);
        signal(SIGHUP, onhup);
        setenv("EXEC_TEST", "kept", 1);
        execl(self, "renamed", "child", "x", "", "y z", (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    printf("re-exec: exit %d\n", WEXITSTATUS(st));

    // fexecve (execveat with AT_EMPTY_PATH) of an open file.
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int fd = open(self, O_RDONLY | O_CLOEXEC);
        char *a[] = {"fexec", "child", NULL};
        fexecve(fd, a, environ);
        printf("fexecve failed %s\n", strerrorname_np(errno));
        _exit(127);
    }
    waitpid(c, &st, 0);
    printf("fexecve: exit %d\n", WEXITSTATUS(st));

    // A relative path with a dirfd.
    fflush(stdout);
    c = fork();
    if (c == 0) {
        int bin = open("/bin", O_RDONLY | O_DIRECTORY);
        char *a[] = {"sh", "-c", "echo via dirfd", NULL};
        syscall(SYS_execveat, bin, "sh", a, environ, 0);
        _exit(127);
    }
    waitpid(c, &st, 0);
    printf("execveat dirfd: exit %d\n", WEXITSTATUS(st));

    // exec from a vfork child; the parent resumes after the exec.
    fflush(stdout);
    c = vfork();
    if (c == 0) {
        char *a[] = {"sh", "-c", "echo from vfork child", NULL};
        execv("/bin/sh", a);
        _exit(127);
    }
    waitpid(c, &st, 0);
    printf("vfork+exec: exit %d\n", WEXITSTATUS(st));

    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    system(cmd);
    return 0;
}
