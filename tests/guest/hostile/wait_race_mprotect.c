/* A thread blocks in wait4(child, status, ...) with status on a page P; another thread makes P
 * read-only and then lets the child exit. Linux's put_user of the status sees the page as it
 * is then: wait4 fails with EFAULT, P keeps its bytes, and the child has been reaped all the
 * same (kernel/exit.c wait_task_zombie releases the task before it copies the status). The
 * same with waitid's siginfo. The waiter is waited for in its system call
 * (common/wait_blocked.h), so the race is what is tested. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/wait_blocked.h"

static char *P;
static pid_t child;
static long ret;
static volatile pid_t waiter_tid;
static int use_waitid;

static void *waiter(void *a) {
    (void)a;
    waiter_tid = (pid_t)syscall(SYS_gettid);
    if (use_waitid)
        ret = syscall(SYS_waitid, P_PID, child, (siginfo_t *)P, WEXITED, NULL);
    else
        ret = syscall(SYS_wait4, child, (int *)P, 0, NULL);
    if (ret < 0) ret = -errno;
    return NULL;
}

static void one(int waitid_form) {
    int gate[2];
    pipe(gate);
    child = fork();
    if (child == 0) {
        char c;
        close(gate[1]);
        read(gate[0], &c, 1); /* until the parent closes its end */
        _exit(7);
    }
    close(gate[0]);
    use_waitid = waitid_form;
    P = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(P, 0x11, 4096);
    pthread_t t = start_blocked(waiter, &waiter_tid, waitid_form ? SYS_waitid : SYS_wait4,
                                waitid_form ? (void *)P_PID : (void *)(long)child);
    mprotect(P, 4096, PROT_READ);
    close(gate[1]);
    pthread_join(t, NULL);
    int unchanged = 1;
    for (int i = 0; i < 4096; i++) unchanged &= P[i] == 0x11;
    errno = 0;
    pid_t again = waitpid(child, NULL, WNOHANG);
    printf("%s: %s; page %s; child afterwards: %s\n", waitid_form ? "waitid" : "wait4",
           ret == -EFAULT ? "EFAULT" : ret >= 0 ? "ok" : "other error", unchanged ? "unchanged" : "CHANGED",
           again < 0 && errno == ECHILD ? "reaped" : again == 0 ? "still there" : "waited now");
    munmap(P, 4096);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    one(0);
    one(1);
    return 0;
}
