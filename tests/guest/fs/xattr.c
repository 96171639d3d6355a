// Extended attributes through the getxattr and listxattr families (path, lpath and fd forms):
// the size query with a zero size, the value and the list copied into the caller's buffer
// (only the bytes returned are written: the rest of the buffer keeps its fill), a buffer too
// small (ERANGE), a bad buffer (EFAULT), an empty name (ERANGE). Whether the file system
// supports user xattrs at all is the host's answer, the same natively and under cetbox.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

/* The buffer's contents as text, with the fill byte '#' marking what was not written. */
static void dump(const char *what, const char *b, size_t n) {
    printf("%s: [", what);
    for (size_t i = 0; i < n; i++)
        putchar(b[i] == 0 ? '|' : b[i]);
    printf("]\n");
}

int main(void) {
    char path[] = "/tmp/cetbox-xattr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    long r = setxattr(path, "user.cetbox", "value-1", 7, 0);
    show("setxattr", r);
    if (r == 0) {
        show("fsetxattr", fsetxattr(fd, "user.second", "v2", 2, 0));
        char b[32];
        /* An address no mapping covers, hidden from the compiler's buffer-size checks. */
        char *volatile bad = (char *)8;
        show("getxattr size query", getxattr(path, "user.cetbox", NULL, 0));
        memset(b, '#', sizeof b);
        r = getxattr(path, "user.cetbox", b, sizeof b);
        show("getxattr", r);
        dump("getxattr buffer", b, 12);
        memset(b, '#', sizeof b);
        show("lgetxattr", lgetxattr(path, "user.second", b, sizeof b));
        dump("lgetxattr buffer", b, 6);
        memset(b, '#', sizeof b);
        show("fgetxattr", fgetxattr(fd, "user.cetbox", b, sizeof b));
        dump("fgetxattr buffer", b, 10);
        show("getxattr too small", getxattr(path, "user.cetbox", b, 3));
        show("getxattr bad buffer", getxattr(path, "user.cetbox", bad, 16));
        show("getxattr missing", getxattr(path, "user.none", b, sizeof b));
        show("getxattr empty name", getxattr(path, "", b, sizeof b));
        /* The list holds only user.* names here (no security module labels on /tmp files
         * of this host): compared with the native run either way. */
        long n = listxattr(path, NULL, 0);
        show("listxattr size query", n);
        char l[256];
        memset(l, '#', sizeof l);
        r = listxattr(path, l, sizeof l);
        show("listxattr", r);
        if (r > 0)
            dump("listxattr buffer", l, (size_t)r + 4);
        memset(l, '#', sizeof l);
        r = flistxattr(fd, l, sizeof l);
        show("flistxattr", r);
        show("llistxattr too small", llistxattr(path, l, 1));
        show("listxattr bad buffer", listxattr(path, bad, 64));
        show("removexattr", removexattr(path, "user.second"));
        show("listxattr after remove", listxattr(path, NULL, 0));
    }
    close(fd);
    unlink(path);
    return 0;
}
