/* execve's E2BIG boundary counts the file name: with RLIMIT_STACK at 512 KiB the strings may
 * take 128 KiB less one pointer per argument and environment string (fs/exec.c); the file
 * name, copied first, is one of the strings. One byte under the limit runs, at it fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *try_exec(size_t big_len) {
    static char big[140000];
    memset(big, 'a', big_len);
    big[big_len] = 0;
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = {"/bin/true", big, 0}, *envp[] = {0};
        execve("/bin/true", argv, envp);
        _exit(errno == E2BIG ? 7 : 8);
    }
    int st;
    waitpid(c, &st, 0);
    return !WIFEXITED(st) ? "signal" : WEXITSTATUS(st) == 0 ? "ran" : WEXITSTATUS(st) == 7 ? "E2BIG" : "other";
}

int main(void) {
    struct rlimit r = {512 << 10, RLIM_INFINITY};
    setrlimit(RLIMIT_STACK, &r);
    size_t name = strlen("/bin/true") + 1;
    size_t room = 131072 - 2 * 8 - 2 * name; /* for the big string, its NUL included */
    printf("largest argument: %s\n", try_exec(room - 1));
    printf("one byte more: %s\n", try_exec(room));
    return 0;
}
