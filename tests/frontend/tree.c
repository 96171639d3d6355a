/* A process tree for --error-exitcode: `tree DEPTH MODE [COPIES]`.
 * DEPTH > 0: fork COPIES children (default 1) that each exec this program with DEPTH - 1, wait
 * for them and exit 0 whatever they did (as a test driver that hides its children's
 * failures would). DEPTH == 0 with MODE "violate": break the shadow stack at two sites the
 * way a non-CET glibc's longjmp does (site_a twice, site_b once), then exit 0; with MODE
 * "clean": just exit 0. Natively (no shadow stacks) every process exits 0. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static jmp_buf jb;

__attribute__((noinline)) static void deep(int n) {
    if (n == 0) longjmp(jb, 1);
    deep(n - 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int site_a(void) {
    if (setjmp(jb) == 0) deep(3);
    return 7;
}

__attribute__((noinline)) static int site_b(void) {
    if (setjmp(jb) == 0) deep(5);
    return 100;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int depth = atoi(argv[1]);
    int copies = argc > 3 ? atoi(argv[3]) : 1;
    if (depth == 0) {
        int sum = 0;
        if (strcmp(argv[2], "violate") == 0) sum = site_a() + site_a() + site_b();
        printf("leaf sum=%d\n", sum);
        return 0;
    }
    for (int i = 0; i < copies; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            char d[16];
            snprintf(d, sizeof d, "%d", depth - 1);
            char *args[] = {argv[0], d, argv[2], NULL};
            execv("/proc/self/exe", args);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        printf("depth %d: child %d ended with %#x\n", depth, i, st);
    }
    return 0;
}
