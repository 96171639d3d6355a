// clone(CLONE_VM | CLONE_VFORK), posix_spawn's clone, shares the parent's memory while the
// parent's calling thread is suspended (clone(2); kernel/fork.c, wait_for_vfork_done) and the
// parent's other threads run on. What the child writes is the parent's after the child execs
// or exits, and what the other threads write meanwhile is not undone; what the kernel writes
// for the parent at the clone (CLONE_PARENT_SETTID, CLONE_PIDFD) is in place before the child
// runs (kernel_clone, copy_process), so the child sees the first and neither is lost.
//
// cetbox makes such a child a host process of its own and sends the child's writes back to
// the parent. It used to send every page the child held alone when it exec'd or exited,
// which includes the pages the parent's other threads (or the kernel, for the parent) had
// written since the fork: those went back to their contents at the fork (glibc's
// nptl/tst-exec5 crashed intermittently: its main thread runs on, its stack among what it
// writes, while posix_spawn's child runs). Here each step is ordered by pipes, so the result
// does not depend on timing.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* A page only the other thread writes, and one both the child and the other thread write
   (different bytes). */
static volatile int thread_page[1024] __attribute__((aligned(4096)));
static struct {
    volatile int child_word;
    volatile char child_byte;
    volatile char thread_byte; /* next to the child's byte */
    volatile int thread_word;
} shared_page __attribute__((aligned(4096)));
static volatile int child_page[1024] __attribute__((aligned(4096)));

static int to_thread[2], to_child[2], never[2];

static void *other_thread(void *arg) {
    (void)arg;
    char c;
    /* Wait until the child runs (the forking thread is suspended then). */
    if (read(to_thread[0], &c, 1) != 1)
        abort();
    thread_page[0] = 2;
    thread_page[1023] = 3;
    shared_page.thread_byte = 4;
    shared_page.thread_word = 5;
    /* A thread's own stack is written too, as any running thread does. */
    volatile int local[64];
    for (int i = 0; i < 64; i++)
        local[i] = i;
    if (write(to_child[1], "d", 1) != 1)
        abort();
    /* Blocked until the process exits: nothing of this thread is read after the clone. */
    if (read(never[0], &c, 1) != 1)
        abort();
    return (void *)(long)local[63];
}

static int child_fn(void *arg) {
    (void)arg;
    shared_page.child_word = 6;
    shared_page.child_byte = 7;
    child_page[5] = 8;
    char c = 'g';
    if (write(to_thread[1], &c, 1) != 1)
        _exit(100);
    /* The other thread has written its pages when this read returns. */
    if (read(to_child[0], &c, 1) != 1)
        _exit(101);
    _exit(9);
}

static volatile pid_t seen_ptid;
static volatile pid_t ptid_word;

static int child_settid(void *arg) {
    (void)arg;
    /* With CLONE_VM the parent's tid word is written before the child runs. */
    seen_ptid = ptid_word;
    _exit(0);
}

static volatile int pidfd_word;

static int child_quiet(void *arg) {
    (void)arg;
    _exit(3);
}

static char *new_stack(void) {
    size_t size = 64 * 1024;
    char *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return s + size;
}

int main(void) {
    int st;
    /* Single-threaded first: what the kernel stores for the parent stays. */
    ptid_word = -1;
    seen_ptid = -1;
    pid_t pid = clone(child_settid, new_stack(),
                      CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD, NULL, &ptid_word);
    printf("CLONE_PARENT_SETTID: parent's word is the pid: %s, the child saw it: %s\n",
           ptid_word == pid ? "yes" : "no", seen_ptid == pid ? "yes" : "no");
    waitpid(pid, &st, 0);

    pidfd_word = -1;
    pid = clone(child_quiet, new_stack(), CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, NULL,
                &pidfd_word);
    printf("CLONE_PIDFD: pidfd stored: %s\n", pidfd_word >= 0 ? "yes" : "no");
    if (pidfd_word >= 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PIDFD, pidfd_word, &si, WEXITED);
        printf("waitid(P_PIDFD): %s, same pid: %s, status %d\n", r == 0 ? "ok" : strerror(errno),
               si.si_pid == pid ? "yes" : "no", si.si_status);
    } else {
        waitpid(pid, &st, 0);
    }

    /* Then with another thread that writes while the child runs. */
    if (pipe(to_thread) || pipe(to_child) || pipe(never)) {
        perror("pipe");
        return 1;
    }
    /* Every page is present before the clone, as in a running program. */
    thread_page[0] = thread_page[1023] = 1;
    shared_page.child_word = 1;
    shared_page.thread_word = 1;
    child_page[5] = 1;

    pthread_t th;
    if (pthread_create(&th, NULL, other_thread, NULL)) {
        puts("pthread_create failed");
        return 1;
    }
    pid = clone(child_fn, new_stack(), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    if (pid < 0) {
        perror("clone");
        return 1;
    }
    /* The child has exited: its writes and the other thread's are both here. */
    printf("other thread's page: %d %d\n", thread_page[0], thread_page[1023]);
    printf("shared page: child %d %d, thread %d %d\n", shared_page.child_word,
           shared_page.child_byte, shared_page.thread_byte, shared_page.thread_word);
    printf("child's page: %d\n", child_page[5]);
    if (waitpid(pid, &st, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    printf("child exit %d\n", WEXITSTATUS(st));
    /* The other thread is still blocked; exit ends it. */
    return 0;
}
