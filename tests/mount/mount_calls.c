// mount(2), umount2(2) and chroot(2), compared with native runs by crates/cli/tests/mount.rs.
//
//   mount_calls unprivileged   the answers of a process without CAP_SYS_ADMIN (a root caller
//                              drops to uid/gid 65534 first): argument errors in Linux's order
//                              (fs/namespace.c: type, source, data, then the target's lookup,
//                              then may_mount's EPERM), for mount, umount2 and chroot
//   mount_calls userns         in a new user and mount namespace (as glibc's
//                              support_become_root does): tmpfs with options, a file in it,
//                              remount read-only, bind mount, chroot into it, propagation
//                              change, umount,
//                              MNT_DETACH; exits 77 when the kernel refuses the namespaces
//   mount_calls newapi         the same namespaces, the new mount API (fsopen, fsconfig,
//                              fsmount, move_mount, fspick, open_tree, mount_setattr), with
//                              glibc's misc/tst-mount checks and bad pointers and sizes
//   mount_calls pivot          the same namespaces, pivot_root into a tmpfs after its
//                              refusals (not a mount point, bad pointers, too long, put_old
//                              missing, outside the new root, a file), the old root detached
//   mount_calls overlay LOWER  the same namespaces, an overlay whose lower layer is LOWER
//                              (mount(2) options and fsconfig strings): crates/cli/tests/
//                              mount.rs runs it natively with the real directory and under
//                              `cetbox run --sysroot=DIR` with the path inside DIR
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(long r) {
    if (r == 0)
        return "0";
    switch (errno) {
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case ENODEV: return "ENODEV";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case E2BIG: return "E2BIG";
    default: {
        static char b[32];
        snprintf(b, sizeof b, "errno %d", errno);
        return b;
    }
    }
}

static long mnt(const void *src, const void *dst, const void *type, unsigned long fl,
                const void *data) {
    return syscall(SYS_mount, src, dst, type, fl, data);
}

static long umnt(const void *dst, long fl) { return syscall(SYS_umount2, dst, fl); }

// A page of readable memory followed by an unmapped one.
static char *edge(void) {
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p + 4096, 4096);
    return p;
}

static int unprivileged(void) {
    if (getuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534))) {
        perror("dropping root");
        return 1;
    }
    char *e = edge();
    void *bad = (void *)16;
    // A string of 4096 bytes with no NUL within PATH_MAX.
    char *longstr = malloc(8192);
    memset(longstr, 'a', 8191);
    longstr[8191] = 0;
    // Data ending at the end of the readable page.
    char *tail = e + 4096 - 8;
    memcpy(tail, "size=1k", 8);
    printf("tmpfs on /tmp: %s\n", err(mnt("none", "/tmp", "tmpfs", 0, NULL)));
    printf("bad type pointer: %s\n", err(mnt("none", "/tmp", bad, 0, NULL)));
    printf("bad source pointer: %s\n", err(mnt(bad, "/tmp", "tmpfs", 0, NULL)));
    printf("bad data pointer: %s\n", err(mnt("none", "/tmp", "tmpfs", 0, bad)));
    printf("bad target pointer: %s\n", err(mnt("none", bad, "tmpfs", 0, NULL)));
    printf("null target: %s\n", err(mnt("none", NULL, "tmpfs", 0, NULL)));
    printf("type longer than PATH_MAX: %s\n", err(mnt("none", "/tmp", longstr, 0, NULL)));
    printf("source longer than PATH_MAX: %s\n", err(mnt(longstr, "/tmp", "tmpfs", 0, NULL)));
    printf("target longer than PATH_MAX: %s\n", err(mnt("none", longstr, "tmpfs", 0, NULL)));
    printf("type at a page end: %s\n", err(mnt("none", "/tmp", e + 4096 - 3, 0, NULL)));
    memcpy(e + 4096 - 3, "abc", 3);
    printf("type running into an unmapped page: %s\n",
           err(mnt("none", "/tmp", e + 4096 - 3, 0, NULL)));
    printf("data ending at a page end: %s\n", err(mnt("none", "/tmp", "tmpfs", 0, tail)));
    printf("missing target: %s\n", err(mnt("none", "/nonexistent/x", "tmpfs", 0, NULL)));
    printf("unknown type: %s\n", err(mnt("none", "/tmp", "cetbox-nofs", 0, NULL)));
    printf("no type: %s\n", err(mnt("none", "/tmp", NULL, 0, NULL)));
    printf("bind: %s\n", err(mnt("/tmp", "/tmp", NULL, MS_BIND, NULL)));
    printf("remount: %s\n", err(mnt(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL)));
    printf("make private: %s\n", err(mnt("none", "/", NULL, MS_PRIVATE | MS_REC, NULL)));
    printf("umount2 /tmp: %s\n", err(umnt("/tmp", 0)));
    printf("umount2 bad flags: %s\n", err(umnt("/tmp", 0x100)));
    printf("umount2 bad flags, bad pointer: %s\n", err(umnt(bad, 0x100)));
    printf("umount2 bad pointer: %s\n", err(umnt(bad, 0)));
    printf("umount2 missing: %s\n", err(umnt("/nonexistent/x", 0)));
    printf("umount2 too long: %s\n", err(umnt(longstr, 0)));
    printf("umount2 MNT_DETACH|UMOUNT_NOFOLLOW: %s\n", err(umnt("/tmp", MNT_DETACH | 8)));
    printf("chroot /tmp: %s\n", err(chroot("/tmp")));
    printf("chroot bad pointer: %s\n", err(chroot(bad)));
    printf("chroot missing: %s\n", err(chroot("/nonexistent/x")));
    printf("chroot a file: %s\n", err(chroot("/proc/self/status")));
    // may_mount's EPERM comes before either path is read.
    printf("pivot_root: %s\n", err(syscall(SYS_pivot_root, "/tmp", "/tmp")));
    printf("pivot_root bad pointers: %s\n", err(syscall(SYS_pivot_root, bad, bad)));
    // Linux ignores the dirfd of an absolute path (and needs no privilege for open_tree
    // without OPEN_TREE_CLONE): every closed descriptor number works as one, and none with a
    // relative path (EBADF).
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long lim = rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
    int abs_failed = 0, rel_not_ebadf = 0;
    for (int fd = 3; fd < lim; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        long r = syscall(SYS_open_tree, fd, "/tmp", OPEN_TREE_CLOEXEC);
        if (r < 0)
            abs_failed++;
        else
            close(r);
        r = syscall(SYS_open_tree, fd, "tmp", OPEN_TREE_CLOEXEC);
        if (r >= 0 || errno != EBADF)
            rel_not_ebadf++;
        if (r >= 0)
            close(r);
    }
    printf("open_tree with each closed descriptor: absolute path failed %d, relative path not "
           "EBADF %d\n", abs_failed, rel_not_ebadf);
    return 0;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
    close(fd);
    return r;
}

// A new user and mount namespace in which the caller is root (as glibc's
// support_become_root): 77 when the kernel refuses it, 1 on another failure, else 0.
static int become_root(void) {
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        printf("unshare(CLONE_NEWUSER | CLONE_NEWNS): %s\n", err(-1));
        return 77;
    }
    char map[64];
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) || write_file("/proc/self/setgroups", "deny") ||
        (snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid), write_file("/proc/self/gid_map", map))) {
        perror("id maps");
        return 1;
    }
    return 0;
}

static int userns(void) {
    int became = become_root();
    if (became)
        return became;
    printf("make / private: %s\n", err(mnt("none", "/", NULL, MS_PRIVATE | MS_REC, NULL)));
    char a[] = "/tmp/cetbox-mount-a.XXXXXX", b[] = "/tmp/cetbox-mount-b.XXXXXX";
    if (!mkdtemp(a) || !mkdtemp(b)) {
        perror("mkdtemp");
        return 1;
    }
    char f[128], g[128];
    snprintf(f, sizeof f, "%s/file", a);
    snprintf(g, sizeof g, "%s/file", b);
    char *e = edge();
    char *data = e + 4096 - 17;
    memcpy(data, "size=64k,mode=700", 17); // no NUL: the kernel's copy ends at the page
    printf("tmpfs, data running into an unmapped page: %s\n", err(mnt("none", a, "tmpfs", 0, data)));
    printf("umount2: %s\n", err(umnt(a, 0)));
    printf("tmpfs with options: %s\n",
           err(mnt("none", a, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=700")));
    struct statfs sf;
    struct stat st;
    long r = statfs(a, &sf);
    printf("statfs: %s, tmpfs %d, KiB %ld\n", err(r), sf.f_type == 0x01021994,
           (long)sf.f_blocks * sf.f_bsize / 1024);
    r = stat(a, &st);
    printf("stat: %s, mode %o\n", err(r), st.st_mode & 07777);
    int fd = open(f, O_CREAT | O_WRONLY, 0600);
    printf("create a file: %s\n", fd >= 0 ? "0" : err(-1));
    printf("write: %ld\n", (long)write(fd, "hello", 5));
    close(fd);
    // In a child, so the new root ends with it.
    pid_t c = fork();
    if (c == 0) {
        long r1 = chroot(a);
        long r2 = stat("/file", &st);
        printf("chroot into the tmpfs: %s, /file there: %s, size %ld\n", err(r1), err(r2),
               (long)st.st_size);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("unknown type with data: %s\n", err(mnt("none", b, "cetbox-nofs", 0, "x=1")));
    printf("bind to b: %s\n", err(mnt(a, b, NULL, MS_BIND, NULL)));
    printf("file through b: %s\n", err(stat(g, &st)));
    printf("remount b read-only: %s\n",
           err(mnt(NULL, b, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)));
    printf("create through b: %s\n", open(g, O_WRONLY | O_TRUNC) >= 0 ? "0" : err(-1));
    printf("umount2 b, MNT_DETACH: %s\n", err(umnt(b, MNT_DETACH)));
    printf("file through b after: %s\n", err(stat(g, &st)));
    printf("umount2 a while it is the cwd: ");
    if (chdir(a) == 0) {
        printf("%s\n", err(umnt(a, 0)));
        if (chdir("/"))
            return 1;
    }
    printf("umount2 a: %s\n", err(umnt(a, 0)));
    printf("file after umount: %s\n", err(stat(f, &st)));
    printf("umount2 a again: %s\n", err(umnt(a, 0)));
    printf("move mount: %s\n", err(mnt("none", a, "tmpfs", 0, NULL)));
    printf("move a to b: %s\n", err(mnt(a, b, NULL, MS_MOVE, NULL)));
    printf("umount2 b: %s\n", err(umnt(b, 0)));
    rmdir(a);
    rmdir(b);
    return 0;
}

static int newapi(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        printf("unshare(CLONE_NEWUSER | CLONE_NEWNS): %s\n", err(-1));
        return 77;
    }
    printf("make / private: %s\n", err(mnt("none", "/", NULL, MS_PRIVATE | MS_REC, NULL)));
    char a[] = "/tmp/cetbox-mount-n.XXXXXX";
    if (!mkdtemp(a)) {
        perror("mkdtemp");
        return 1;
    }
    void *bad = (void *)16;
    char *e = edge();
    memcpy(e + 4096 - 4, "size", 4); // no NUL before the unmapped page
    char longkey[300];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    printf("fsopen unknown: %s\n", err(syscall(SYS_fsopen, "it_should_be_not_a_valid_mount", 0)));
    printf("fsopen bad pointer: %s\n", err(syscall(SYS_fsopen, bad, 0)));
    long fd = syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    printf("fsopen tmpfs: %s\n", fd >= 0 ? "0" : err(-1));
    printf("fsconfig -1: %s\n", err(syscall(SYS_fsconfig, -1, FSCONFIG_SET_STRING, "size", "2048", 0)));
    printf("fsconfig bad key: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, bad, "2048", 0)));
    printf("fsconfig key into unmapped page: %s\n",
           err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, e + 4096 - 4, "2048", 0)));
    printf("fsconfig long key: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, longkey, "1", 0)));
    printf("fsconfig bad value: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "size", bad, 0)));
    printf("fsconfig flag with a value: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_FLAG, "ro", "x", 0)));
    printf("fsconfig binary, bad pointer: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_BINARY, "size", bad, 4)));
    printf("fsconfig unknown key: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "cetbox", "1", 0)));
    printf("fsconfig size: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "size", "2048", 0)));
    printf("fsconfig create: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)));
    printf("fsmount -1: %s\n", err(syscall(SYS_fsmount, -1, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV)));
    long mfd = syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
    printf("fsmount: %s\n", mfd >= 0 ? "0" : err(-1));
    printf("move_mount -1: %s\n", err(syscall(SYS_move_mount, -1, "", AT_FDCWD, "/tmp", 0)));
    printf("move_mount bad path: %s\n", err(syscall(SYS_move_mount, mfd, "", AT_FDCWD, bad, MOVE_MOUNT_F_EMPTY_PATH)));
    printf("move_mount: %s\n", err(syscall(SYS_move_mount, mfd, "", AT_FDCWD, a, MOVE_MOUNT_F_EMPTY_PATH)));
    struct statfs sf;
    long r = statfs(a, &sf);
    printf("statfs: %s, tmpfs %d, KiB %ld\n", err(r), sf.f_type == 0x01021994,
           (long)sf.f_blocks * sf.f_bsize / 1024);
    printf("fspick empty: %s\n", err(syscall(SYS_fspick, AT_FDCWD, "", 0)));
    long pfd = syscall(SYS_fspick, AT_FDCWD, a, FSPICK_CLOEXEC);
    printf("fspick: %s\n", pfd >= 0 ? "0" : err(-1));
    printf("open_tree empty: %s\n", err(syscall(SYS_open_tree, AT_FDCWD, "", 0)));
    long tfd = syscall(SYS_open_tree, AT_FDCWD, a, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    printf("open_tree: %s\n", tfd >= 0 ? "0" : err(-1));
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    printf("mount_setattr: %s\n", err(syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH, &attr, sizeof attr)));
    printf("mount_setattr -1: %s\n", err(syscall(SYS_mount_setattr, -1, "", AT_EMPTY_PATH, &attr, sizeof attr)));
    printf("mount_setattr short: %s\n", err(syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH, &attr, sizeof attr - 8)));
    printf("mount_setattr huge: %s\n", err(syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH, &attr, 8192)));
    printf("mount_setattr bad pointer: %s\n", err(syscall(SYS_mount_setattr, tfd, "", AT_EMPTY_PATH, bad, sizeof attr)));
    // The descriptors hold the mount busy (and its directory would be left behind).
    close(tfd);
    close(pfd);
    close(mfd);
    close(fd);
    printf("umount2: %s\n", err(umnt(a, 0)));
    rmdir(a);
    return 0;
}

// Reads `dir`/file into a printable line.
static const char *file_in(const char *dir) {
    static char text[64];
    char path[256];
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return err(-1);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    text[strcspn(text, "\n")] = 0;
    return text;
}

// An overlay whose lower layer is `lower` (a directory holding `file`), by mount(2) and by
// the new API; the upper, work and merged directories on a tmpfs of its own.
// (No "make / private": under --sysroot the guest's "/" is the sysroot's directory, not a
// mount point; the namespace's mounts are slaves of the host's anyway, as a new user
// namespace's copy makes them: fs/namespace.c copy_mnt_ns, CL_SHARED_TO_SLAVE.)
static int overlay(const char *lower) {
    int became = become_root();
    if (became)
        return became;
    char t[] = "/tmp/cetbox-mount-o.XXXXXX";
    if (!mkdtemp(t)) {
        perror("mkdtemp");
        return 1;
    }
    printf("tmpfs: %s\n", err(mnt("none", t, "tmpfs", 0, NULL)));
    char up[64], work[64], merged[64], opts[512];
    snprintf(up, sizeof up, "%s/up", t);
    snprintf(work, sizeof work, "%s/work", t);
    snprintf(merged, sizeof merged, "%s/merged", t);
    if (mkdir(up, 0700) || mkdir(work, 0700) || mkdir(merged, 0700)) {
        perror("mkdir");
        return 1;
    }
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, up, work);
    printf("mount overlay: %s\n", err(mnt("overlay", merged, "overlay", 0, opts)));
    printf("file in the merged directory: %s\n", file_in(merged));
    printf("umount2: %s\n", err(umnt(merged, 0)));
    long fd = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
    printf("fsopen overlay: %s\n", fd >= 0 ? "0" : err(-1));
    printf("fsconfig lowerdir: %s\n",
           err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "lowerdir", lower, 0)));
    printf("fsconfig upperdir: %s\n",
           err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "upperdir", up, 0)));
    printf("fsconfig workdir: %s\n",
           err(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, "workdir", work, 0)));
    printf("fsconfig create: %s\n", err(syscall(SYS_fsconfig, fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0)));
    long mfd = syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, 0);
    printf("fsmount: %s\n", mfd >= 0 ? "0" : err(-1));
    printf("move_mount: %s\n",
           err(syscall(SYS_move_mount, mfd, "", AT_FDCWD, merged, MOVE_MOUNT_F_EMPTY_PATH)));
    printf("file in the merged directory: %s\n", file_in(merged));
    close(mfd);
    close(fd);
    printf("umount2: %s\n", err(umnt(merged, 0)));
    printf("umount2 the tmpfs: %s\n", err(umnt(t, 0)));
    rmdir(t);
    return 0;
}

// pivot_root into a tmpfs, with Linux's refusals first (pivot_root(2)).
// `t` is an empty directory (main removes it: after pivot_root this process cannot).
static int pivot(const char *t) {
    int became = become_root();
    if (became)
        return became;
    printf("make / private: %s\n", err(mnt("none", "/", NULL, MS_PRIVATE | MS_REC, NULL)));
    char old[64], file[64], longstr[8192];
    snprintf(old, sizeof old, "%s/old", t);
    snprintf(file, sizeof file, "%s/file", t);
    memset(longstr, 'a', sizeof longstr - 1);
    longstr[sizeof longstr - 1] = 0;
    void *bad = (void *)16;
    printf("pivot_root, new root not a mount point: %s\n",
           err(syscall(SYS_pivot_root, t, "/tmp")));
    printf("tmpfs: %s\n", err(mnt("none", t, "tmpfs", 0, NULL)));
    if (mkdir(old, 0700)) {
        perror("mkdir");
        return 1;
    }
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    if (fd < 0 || write(fd, "the new root", 12) != 12) {
        perror("file");
        return 1;
    }
    close(fd);
    printf("pivot_root bad new_root pointer: %s\n", err(syscall(SYS_pivot_root, bad, old)));
    printf("pivot_root bad put_old pointer: %s\n", err(syscall(SYS_pivot_root, t, bad)));
    printf("pivot_root new_root too long: %s\n", err(syscall(SYS_pivot_root, longstr, old)));
    printf("pivot_root missing put_old: %s\n",
           err(syscall(SYS_pivot_root, t, "/nonexistent/x")));
    printf("pivot_root put_old outside the new root: %s\n",
           err(syscall(SYS_pivot_root, t, "/tmp")));
    printf("pivot_root put_old a file: %s\n", err(syscall(SYS_pivot_root, t, file)));
    printf("pivot_root: %s\n", err(syscall(SYS_pivot_root, t, old)));
    printf("chdir /: %s\n", err(chdir("/")));
    printf("/file: %s\n", file_in("/"));
    struct stat st;
    printf("/old/tmp: %s\n", err(stat("/old/tmp", &st)));
    printf("umount2 /old, MNT_DETACH: %s\n", err(umnt("/old", MNT_DETACH)));
    printf("/old/tmp after: %s\n", err(stat("/old/tmp", &st)));
    printf("/tmp after: %s\n", err(stat("/tmp", &st)));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    char pivot_dir[] = "/tmp/cetbox-mount-p.XXXXXX";
    if (strcmp(argv[1], "pivot") == 0 && !mkdtemp(pivot_dir)) {
        perror("mkdtemp");
        return 1;
    }
    // In a child, so the namespaces and the dropped privileges end with it.
    pid_t c = fork();
    if (c == 0)
        _exit(strcmp(argv[1], "userns") == 0    ? userns()
              : strcmp(argv[1], "newapi") == 0  ? newapi()
              : strcmp(argv[1], "overlay") == 0 ? overlay(argc > 2 ? argv[2] : "/")
              : strcmp(argv[1], "pivot") == 0   ? pivot(pivot_dir)
                                                : unprivileged());
    int st;
    waitpid(c, &st, 0);
    if (strcmp(argv[1], "pivot") == 0)
        rmdir(pivot_dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
