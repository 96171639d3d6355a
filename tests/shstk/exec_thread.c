/* Shadow-stack state across an execve made by a non-leader thread (docs/acceptance.md 14.11, Linux
 * arch/x86/kernel/shstk.c reset_thread_features via begin_new_exec): the new program starts
 * with the start-up state (shadow stacks off, or on by cetbox's --shstk=on policy), WRSS off
 * and nothing locked, whatever the exec'ing thread had enabled and locked; the old shadow
 * stacks are gone with the old address space. Run under cetbox only: expected output is
 * written from the spec in crates/cli/tests/exec_threads.rs. */
#include "cet.h"
#include <pthread.h>
#include <sys/syscall.h>

static long status(void) {
    unsigned long s = 0;
    long r = arch_prctl_(ARCH_SHSTK_STATUS, (unsigned long)&s);
    return r ? r : (long)s;
}

static void print_status_lines(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "x86_Thread_features", 19)) fputs(line, stdout);
    if (f) fclose(f);
}

static char **gargv;

static void *execer(void *a) {
    (void)a;
    /* This thread enables WRSS (on top of what it has) and locks everything it has. */
    long w = arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS);
    long l = arch_prctl_(ARCH_SHSTK_LOCK, ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS);
    printf("thread: wrss enable %ld, lock %ld, status %ld\n", w, l, status());
    fflush(stdout);
    char *args[] = {gargv[0], "after", 0};
    execv("/proc/self/exe", args);
    puts("exec failed");
    _exit(1);
}

int main(int argc, char **argv) {
    gargv = argv;
    if (argc > 1 && !strcmp(argv[1], "after")) {
        printf("after: tid == pid %d, status %ld, ssp nonzero %d\n",
               syscall(SYS_gettid) == getpid(), status(), rdssp() != 0);
        print_status_lines();
        /* Nothing is locked: WRSS can be enabled again with shadow stacks on; with them off
         * the kernel refuses it because WRSS needs SHSTK (-EPERM), not because of a lock. */
        printf("after: wrss enable %ld\n", arch_prctl_(ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS));
        return 0;
    }
    pthread_t t;
    printf("main: status %ld\n", status());
    fflush(stdout);
    pthread_create(&t, 0, execer, 0);
    pthread_join(t, 0);
    puts("join returned");
    return 1;
}
