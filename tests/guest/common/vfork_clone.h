/* Shared by guest programs (include as "../common/vfork_clone.h"); crates/cli/tests/guest.rs
 * hashes the headers a program includes into its build cache key. */
#ifndef CETBOX_GUEST_VFORK_CLONE_H
#define CETBOX_GUEST_VFORK_CLONE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Runs fn(NULL) in a clone(CLONE_VM | CLONE_VFORK) child (posix_spawn's way) on a stack of
 * its own and reaps it: its exit status, or -1 (with a message) if the clone or the wait
 * failed or the child did not exit normally. */
static int vfork_clone_wait(int (*fn)(void *)) {
    size_t size = 256 * 1024;
    char *stack = malloc(size);
    pid_t pid = clone(fn, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (pid < 0) {
        perror("clone");
        return -1;
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        puts("waitpid failed");
        return -1;
    }
    free(stack);
    return WEXITSTATUS(st);
}

#endif
