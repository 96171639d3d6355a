// A shared file mapping follows the file's size at the moment of each access, as Linux decides
// SIGBUS at fault time (mm/filemap.c, filemap_fault): mapped while the file is empty, a store
// gives SIGBUS; after ftruncate grows the file the same store lands in the file; a page past a
// later, smaller size gives SIGBUS again. (glibc's nptl test tst-cancel7 maps a file this way.)
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;

static void on_bus(int sig) {
    (void)sig;
    siglongjmp(env, 1);
}

static const char *store(volatile char *p, char v) {
    if (sigsetjmp(env, 1))
        return "SIGBUS";
    *p = v;
    return "stored";
}

int main(void) {
    signal(SIGBUS, on_bus);
    char name[] = "mmap_resizeXXXXXX";
    int fd = mkstemp(name);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(name);
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    printf("empty file, store to page 0: %s\n", store(p, 'a'));
    ftruncate(fd, 32);
    printf("file of 32 bytes, store to page 0: %s\n", store(p, 'x'));
    char c = 0;
    pread(fd, &c, 1, 0);
    printf("the file's first byte: %c\n", c);
    printf("store to page 1: %s\n", store(p + 4096, 'b'));
    ftruncate(fd, 8192);
    printf("file of 8192 bytes, store to page 1: %s\n", store(p + 4096, 'y'));
    pread(fd, &c, 1, 4096);
    printf("the file's byte 4096: %c\n", c);
    ftruncate(fd, 100);
    printf("file of 100 bytes, store to page 1: %s\n", store(p + 4096, 'z'));
    printf("store to page 0: %s\n", store(p + 50, 'w'));
    return 0;
}
