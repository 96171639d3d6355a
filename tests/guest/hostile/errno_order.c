/* Which error Linux reports first when several apply, and calls real programs use. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#define MPOL_DEFAULT 0
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BAD ((void *)16)

static void show(const char *what, long r) {
    printf("%-36s %s\n", what, r >= 0 ? "ok" : strerrorname_np(errno));
}

int main(void) {
    int nul = open("/dev/null", O_RDWR);
    int p[2];
    pipe(p);
    show("ioctl TCGETS /dev/null bad ptr", syscall(SYS_ioctl, nul, TCGETS, BAD));
    show("ioctl TIOCGWINSZ pipe bad ptr", syscall(SYS_ioctl, p[0], TIOCGWINSZ, BAD));
    show("ioctl FIONREAD pipe bad ptr", syscall(SYS_ioctl, p[0], FIONREAD, BAD));
    show("futex WAKE kernel address", syscall(SYS_futex, (void *)0xffffffff81000000UL, FUTEX_WAKE, 1, 0, 0, 0));
    show("futex WAKE unaligned", syscall(SYS_futex, (char *)&nul + 1, FUTEX_WAKE, 1, 0, 0, 0));
    show("futex WAKE unmapped", syscall(SYS_futex, BAD, FUTEX_WAKE, 1, 0, 0, 0));
    show("wait4 no children bad status", syscall(SYS_wait4, -1, BAD, 0, 0));
    show("wait4 no children bad rusage", syscall(SYS_wait4, -1, 0, 0, BAD));
    show("waitid no children bad info", syscall(SYS_waitid, P_ALL, 0, BAD, WEXITED, 0));
    show("sendmsg pipe bad msghdr", syscall(SYS_sendmsg, p[1], BAD, 0));
    show("recvmsg pipe bad msghdr", syscall(SYS_recvmsg, p[0], BAD, 0));
    show("sendto pipe bad buf", syscall(SYS_sendto, p[1], BAD, 10, 0, 0, 0));
    show("recvfrom pipe bad buf", syscall(SYS_recvfrom, p[0], BAD, 10, 0, 0, 0));
    show("getsockname pipe bad ptr", syscall(SYS_getsockname, p[0], BAD, BAD));
    static char page[4096] __attribute__((aligned(4096)));
    show("pkey_mprotect pkey -1", syscall(SYS_pkey_mprotect, page, 4096, PROT_READ | PROT_WRITE, -1));
    show("pkey_mprotect pkey 5", syscall(SYS_pkey_mprotect, page, 4096, PROT_READ | PROT_WRITE, 5));
    show("mbind MPOL_DEFAULT", syscall(SYS_mbind, page, 4096, MPOL_DEFAULT, 0, 0, 0));
    show("mbind unmapped", syscall(SYS_mbind, (void *)0x10000000, 4096, MPOL_DEFAULT, 0, 0, 0));
    char src[16] = "remote bytes", dst[16] = {0};
    struct iovec l = {dst, sizeof dst}, r = {src, sizeof src};
    long n = syscall(SYS_process_vm_readv, getpid(), &l, 1, &r, 1, 0);
    printf("process_vm_readv self: %ld %s\n", n, dst);
    memcpy(src, "written back", 13);
    struct iovec l2 = {src, 13}, r2 = {dst, 13};
    n = syscall(SYS_process_vm_writev, getpid(), &l2, 1, &r2, 1, 0);
    printf("process_vm_writev self: %ld %s\n", n, dst);
    struct iovec rb = {BAD, 8};
    show("process_vm_readv bad remote", syscall(SYS_process_vm_readv, getpid(), &l, 1, &rb, 1, 0));
    int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    printf("shmget: %s\n", id >= 0 ? "ok" : strerrorname_np(errno));
    char *a = shmat(id, 0, 0), *b = shmat(id, 0, 0);
    printf("shmat twice: %s\n", a != (void *)-1 && b != (void *)-1 && a != b ? "ok" : strerrorname_np(errno));
    if (a != (void *)-1 && b != (void *)-1) {
        strcpy(a + 5000, "shared");
        printf("seen through the other attach: %s\n", b + 5000);
        struct shmid_ds ds;
        shmctl(id, IPC_STAT, &ds);
        printf("nattch %lu size %zu\n", (unsigned long)ds.shm_nattch, ds.shm_segsz);
        printf("shmdt: %d %d\n", shmdt(a), shmdt(b));
    }
    shmctl(id, IPC_RMID, 0);
    return 0;
}
