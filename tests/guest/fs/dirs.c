/* Directories: mkdir, readdir (getdents64), nested paths, *at calls, getcwd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/cetbox-dirs-XXXXXX";

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list(const char *path) {
    DIR *d = opendir(path);
    if (!d) { printf("opendir %s: %s\n", path, strerror(errno)); return; }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char type = e->d_type == DT_DIR ? 'd' : e->d_type == DT_REG ? 'f' : '?';
        char *s = malloc(strlen(e->d_name) + 3);
        sprintf(s, "%s/%c", e->d_name, type);
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    printf("%s:", path);
    for (int i = 0; i < n; i++) { printf(" %s", names[i]); free(names[i]); }
    printf("\n");
}

int main(void) {
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    if (chdir(dir) != 0) return 1;
    char cwd[4096];
    printf("getcwd matches: %d\n", getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0);
    int r = mkdir("sub", 0755);
    printf("mkdir: %d", r);
    r = mkdir("sub/deeper", 0700);
    printf(" %d\n", r);
    r = mkdir("sub", 0755);
    printf("mkdir exists: %d %s\n", r, strerror(errno));
    for (int i = 0; i < 40; i++) {
        char name[32];
        sprintf(name, "sub/file%02d", i);
        int fd = open(name, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) { perror(name); return 1; }
        close(fd);
    }
    list("sub");
    list(".");
    int dfd = open("sub", O_RDONLY | O_DIRECTORY);
    printf("openat dir: %d\n", dfd >= 0);
    int fd = openat(dfd, "at-file", O_CREAT | O_WRONLY, 0600);
    printf("openat rel: %d\n", fd >= 0);
    printf("write: %zd\n", write(fd, "abc", 3));
    close(fd);
    struct stat st;
    r = fstatat(dfd, "at-file", &st, 0);
    printf("fstatat: %d size=%lld\n", r, (long long)st.st_size);
    printf("renameat: %d\n", renameat(dfd, "at-file", AT_FDCWD, "moved"));
    r = unlinkat(AT_FDCWD, "sub", AT_REMOVEDIR);
    printf("unlinkat dir non-empty: %d %s\n", r, strerror(errno));
    printf("fchdir: %d\n", fchdir(dfd));
    printf("in sub: %d\n", getcwd(cwd, sizeof cwd) && strstr(cwd, "/sub") != NULL);
    for (int i = 0; i < 40; i++) {
        char name[32];
        sprintf(name, "file%02d", i);
        if (unlink(name) != 0) { perror(name); return 1; }
    }
    printf("rmdir deeper: %d\n", rmdir("deeper"));
    list(".");
    if (chdir(dir) != 0) return 1;
    close(dfd);
    r = unlink("moved");
    printf("cleanup: %d", r);
    r = rmdir("sub");
    printf(" %d\n", r);
    if (chdir("/") != 0) return 1;
    printf("rmdir: %d\n", rmdir(dir));
    DIR *none = opendir("/nonexistent-cetbox");
    printf("opendir missing: %p %s\n", (void *)none, strerror(errno));
    return 0;
}
