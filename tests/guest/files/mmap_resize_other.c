// A file mapping follows the file's size at each access, whoever changed the size: Linux
// decides SIGBUS at fault time from the file's current size (mm/filemap.c, filemap_fault), and
// truncation unmaps the pages past the new end from every mapping (mm/truncate.c,
// truncate_pagecache). Here a child process grows the file with write(2) and truncate(path)
// and shrinks it after the parent mapped it; the parent itself grows it with pwrite(2) and
// truncate(path), which are not ftruncate either.
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static sigjmp_buf env;
static char name[] = "/tmp/mmap_resize_otherXXXXXX";

static void on_bus(int sig) {
    (void)sig;
    siglongjmp(env, 1);
}

// Two results may be printed by one printf: each call gets its own buffer.
static const char *load(volatile char *at) {
    static char bufs[2][16];
    static int next;
    char *out = bufs[next++ & 1];
    if (sigsetjmp(env, 1))
        return "SIGBUS";
    char c = *at;
    snprintf(out, sizeof bufs[0], "byte %d", c);
    return out;
}

// The file's shared (writable) and private (read-only) mappings.
static char *s, *p;

// Prints `what` and what loads see at offset `so` of the shared mapping and `po` of the
// private one.
static void both(const char *what, long so, long po) {
    printf("%s%sshared page %ld %s, private page %ld %s\n", what, *what ? ": " : "", so / 4096,
           load(s + so), po / 4096, load(p + po));
}

static const char *store(volatile char *at, char v) {
    if (sigsetjmp(env, 1))
        return "SIGBUS";
    *at = v;
    return "stored";
}

// Runs `what` in a child process and waits for it.
static void in_child(void (*what)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        what();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        printf("child failed: %#x\n", st);
}

static void write_hello(void) {
    int fd = open(name, O_WRONLY);
    if (fd < 0 || write(fd, "hello", 5) != 5)
        _exit(1);
    close(fd);
}
static void grow_to_two_pages(void) {
    if (truncate(name, 8192) != 0)
        _exit(1);
}
static void shrink_to_100(void) {
    if (truncate(name, 100) != 0)
        _exit(1);
}
static void write_at_5000(void) {
    int fd = open(name, O_WRONLY);
    if (fd < 0 || pwrite(fd, "W", 1, 5000) != 1)
        _exit(1);
    close(fd);
}

int main(void) {
    signal(SIGBUS, on_bus);
    int fd = mkstemp(name);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    if (s == MAP_FAILED || p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    both("empty file", 0, 0);
    in_child(write_hello);
    both("child wrote 5 bytes", 1, 4);
    printf("store to shared page 0: %s\n", store(s + 10, 'x'));
    both("", 4096, 4096);
    in_child(grow_to_two_pages);
    both("child truncated to 8192", 4097, 4097);
    printf("store to shared page 1: %s\n", store(s + 5000, 'y'));
    printf("private page 1 sees it: %s\n", load(p + 5000));
    in_child(shrink_to_100);
    both("child truncated to 100", 4098, 4098);
    printf("store to shared page 1: %s\n", store(s + 4099, 'z'));
    both("", 10, 10);
    in_child(write_at_5000);
    both("child wrote at 5000", 5000, 5000);
    printf("byte 4098: %s\n", load(s + 4098));
    if (truncate(name, 100) != 0 || pwrite(fd, "V", 1, 6000) != 1)
        perror("truncate/pwrite");
    both("own truncate(path) and pwrite", 6000, 6000);
    if (truncate(name, 0) != 0 || truncate(name, 4096) != 0)
        perror("truncate");
    printf("own truncate(path) to 0 and 4096: shared page 0 %s, page 1 %s\n", load(s + 10),
           load(s + 4096));
    unlink(name);
    return 0;
}
