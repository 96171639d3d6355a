/* PTRACE_O_TRACECLONE: a traced thread's pthread_create stops it with PTRACE_EVENT_CLONE
 * (status SIGTRAP | 3 << 16, GETEVENTMSG the new tid, rax -ENOSYS and orig_rax the clone
 * syscall as it has not returned yet); the new thread is traced from its creation and stops
 * first with its SIGSTOP (SI_USER, no sender: ptrace_init_task adds it without a siginfo),
 * at the same rip as its creator with rax 0 and its own fs base; its options are inherited
 * (a second clone from it is reported too). Each thread's exit is reported to the tracer with
 * waitpid(tid, __WALL) (leaf before middle, which joins it), then the process's. Linux kernel/fork.c kernel_clone, kernel/ptrace.c
 * ptrace_init_task. */
//! link: static
//! cflags: -pthread
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void *leaf(void *a) { return a; }

static void *middle(void *a) {
    pthread_t t;
    void *r;
    pthread_create(&t, 0, leaf, a);
    pthread_join(t, &r);
    return r;
}

static void show(const char *what, pid_t tid, int st) {
    if (WIFSTOPPED(st))
        printf("%s: stopped sig=%d event=%d\n", what, WSTOPSIG(st), st >> 16);
    else if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else
        printf("%s: status %#x\n", what, st);
    (void)tid;
}

/* Waits for the event stop of `who`, then the new thread's first stop; returns its tid. */
static pid_t clone_pair(pid_t who, const char *name) {
    int st;
    pid_t w = waitpid(who, &st, __WALL);
    printf("%s: waited own=%d\n", name, w == who);
    show(name, who, st);
    unsigned long msg = 0;
    long rc = ptrace(PTRACE_GETEVENTMSG, who, 0, &msg);
    struct user_regs_struct r, n;
    ptrace(PTRACE_GETREGS, who, 0, &r);
    printf("%s: geteventmsg=%ld rax=%lld orig_rax_is_clone=%d\n", name, rc, (long long)r.rax,
           r.orig_rax == 56 || r.orig_rax == 435);
    pid_t tid = (pid_t)msg;
    w = waitpid(tid, &st, __WALL);
    printf("new: waited=%d\n", w == tid);
    show("new", tid, st);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    rc = ptrace(PTRACE_GETSIGINFO, tid, 0, &si);
    printf("new: getsiginfo=%ld signo=%d code=%d pid=%d uid=%d\n", rc, si.si_signo, si.si_code,
           si.si_pid, si.si_uid);
    ptrace(PTRACE_GETREGS, tid, 0, &n);
    printf("new: rax=%lld same_rip=%d orig_rax=%d own_fs=%d\n", (long long)n.rax, n.rip == r.rip,
           n.orig_rax == r.orig_rax, n.fs_base != r.fs_base && n.fs_base != 0);
    return tid;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        pthread_t t;
        void *r;
        pthread_create(&t, 0, middle, (void *)7);
        pthread_join(t, &r);
        /* Stopped until the tracer has seen both threads end: a thread's exit status is the
         * group's once the process exits (kernel/exit.c wait_task_zombie). */
        raise(SIGUSR1);
        _exit((int)(long)r);
    }
    int st;
    waitpid(pid, &st, 0);
    show("child", pid, st);
    long rc = ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACECLONE);
    printf("setoptions=%ld\n", rc);
    ptrace(PTRACE_CONT, pid, 0, 0);
    pid_t mid = clone_pair(pid, "main");
    ptrace(PTRACE_CONT, pid, 0, 0);
    ptrace(PTRACE_CONT, mid, 0, 0);
    pid_t leaf_tid = clone_pair(mid, "middle");
    ptrace(PTRACE_CONT, mid, 0, 0);
    ptrace(PTRACE_CONT, leaf_tid, 0, 0);
    pid_t w = waitpid(leaf_tid, &st, __WALL);
    printf("leaf end: waited=%d\n", w == leaf_tid);
    show("leaf", leaf_tid, st);
    w = waitpid(mid, &st, __WALL);
    printf("middle end: waited=%d\n", w == mid);
    show("middle", mid, st);
    w = waitpid(pid, &st, __WALL);
    printf("main stop: waited=%d\n", w == pid);
    show("main", pid, st);
    ptrace(PTRACE_CONT, pid, 0, 0);
    w = waitpid(pid, &st, __WALL);
    printf("main end: waited=%d\n", w == pid);
    show("main", pid, st);
    errno = 0;
    w = waitpid(-1, &st, __WALL);
    printf("no more: %d errno=%d\n", w, errno);
    return 0;
}
