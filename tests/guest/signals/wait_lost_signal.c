//! cflags: -pthread
// A signal sent at a random moment to a thread that is about to block in a system call must
// interrupt the call: Linux looks for pending signals before it sleeps, so a signal that
// arrives after the thread's SYSCALL instruction ends the call with EINTR (or restarts it
// under SA_RESTART, for the calls that restart), and one that arrives before that instruction
// runs its handler first. cetbox records a host signal and delivers it to the guest later; one
// that arrived between the guest's SYSCALL and the host call that waits on its behalf used to
// be slept through (the call waited forever for a wake-up nobody sends).
//
// The worker makes each call through a stub (below) that marks where its SYSCALL instruction
// is. The handler, run for a signal that arrived before that instruction, moves the worker to
// the stub's "skipped" exit, as a safe-syscall stub does; so every call either is skipped or
// returns -EINTR, and none can wait for ever unless a signal was lost. Under SA_RESTART (pipe
// read and socket recv) the handler instead writes one byte where the call reads, so the
// restarted call returns it, and the answer must be exactly 1 byte.
//
// A watchdog reports a call that did not return within 20 s of its signal (natively each
// returns within microseconds) and ends the program.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ROUNDS 150
#define SKIPPED (-100000L)

// long wl_call(long nr, long a0, long a1, long a2, long a3, long a4, long a5): the system
// call, after storing `wl_next` into `wl_armed` (the sender waits for that store).
__asm__(".text\n"
        ".globl wl_call\n"
        ".type wl_call,@function\n"
        "wl_call:\n"
        "mov %rdi, %rax\n"
        "mov %rsi, %rdi\n"
        "mov %rdx, %rsi\n"
        "mov %rcx, %rdx\n"
        "mov %r8, %r10\n"
        "mov %r9, %r8\n"
        "mov 8(%rsp), %r9\n"
        ".globl wl_start\n"
        "wl_start:\n"
        "mov wl_next(%rip), %r11d\n"
        "mov %r11d, wl_armed(%rip)\n"
        "cmpl $0, wl_early(%rip)\n"
        "jne wl_skip\n"
        ".globl wl_syscall\n"
        "wl_syscall:\n"
        "syscall\n"
        "ret\n"
        ".globl wl_skip\n"
        "wl_skip:\n"
        "mov $-100000, %rax\n"
        "ret\n");
extern char wl_start[], wl_syscall[], wl_skip[];
long wl_call(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

int wl_next;
volatile int wl_armed;
// Set by the handler for a signal that arrived before the worker reached the stub.
volatile int wl_early;
static sem_t done;
static int restart_mode;
static int restart_fd = -1;

static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    uintptr_t rip = uc->uc_mcontext.gregs[REG_RIP];
    if (restart_mode) {
        char c = 'x';
        if (write(restart_fd, &c, 1) != 1)
            _exit(3);
    } else if (rip >= (uintptr_t)wl_start && rip <= (uintptr_t)wl_syscall) {
        uc->uc_mcontext.gregs[REG_RIP] = (uintptr_t)wl_skip;
    } else if (rip != (uintptr_t)wl_syscall + 2) {
        // Not in the call (which it interrupted, RIP after its SYSCALL): on the way there.
        wl_early = 1;
    }
}

struct call {
    const char *name;
    long nr;
    long a[6];
    int restart;   // SA_RESTART, handler writes a byte to `wfd`, answer must be 1
    int wfd;
};

static struct call calls[48];
static int ncalls;
static timer_t timer;
static int bad_total;

static uint64_t rng = 88172645463325252ull;
static unsigned next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

// Every call, ROUNDS times, each with a timer signal at a random moment: mostly within the
// first 10 microseconds after the timer is set, the rest within 100 (the call begins a few
// instructions after the timer is set; under an emulator some microseconds later).
static void *worker(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &s, NULL);
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
        perror("timer_create");
        exit(1);
    }
    for (int i = 0; i < ncalls; i++) {
        struct call *k = &calls[i];
        struct sigaction act = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
        if (k->restart)
            act.sa_flags |= SA_RESTART;
        sigaction(SIGUSR1, &act, NULL);
        restart_mode = k->restart;
        restart_fd = k->wfd;
        int bad = 0;
        for (int r = 0; r < ROUNDS; r++) {
            unsigned d = next_rand();
            long ns = 1 + (d & 1 ? (d >> 1) % 10000 : (d >> 1) % 100000);
            struct itimerspec its = {.it_value = {0, ns}};
            wl_next++;
            timer_settime(timer, 0, &its, NULL);
            long res = wl_call(k->nr, k->a[0], k->a[1], k->a[2], k->a[3], k->a[4], k->a[5]);
            int ok = k->restart ? res == 1 : (res == -EINTR || res == SKIPPED);
            if (!ok && bad++ < 3)
                printf("%s: round %d: answer %ld\n", k->name, r, res);
            wl_early = 0;
            sem_post(&done);
        }
        bad_total += bad;
        printf("%-24s %d rounds, %d wrong answers\n", k->name, ROUNDS, bad);
    }
    return NULL;
}

static void add(const char *name, long nr, long a0, long a1, long a2, long a3, long a4,
                long a5) {
    struct call *c = &calls[ncalls++];
    c->name = name;
    c->nr = nr;
    long a[6] = {a0, a1, a2, a3, a4, a5};
    memcpy(c->a, a, sizeof a);
    c->restart = 0;
    c->wfd = -1;
}

static void fill(int fd) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    static char junk[4096];
    while (write(fd, junk, sizeof junk) > 0) {
    }
    while (write(fd, junk, 1) > 0) {
    }
    fcntl(fd, F_SETFL, fl);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sem_init(&done, 0, 0);
    // The main thread sends; only the worker takes SIGUSR1.
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    static char buf[64];
    // Many segments: Linux and cetbox both look at each before the call waits.
    static char seg[IOV_MAX];
    static struct iovec iov[IOV_MAX];
    for (int i = 0; i < IOV_MAX; i++)
        iov[i] = (struct iovec){seg + i, 1};
    static struct msghdr mh = {.msg_iov = iov, .msg_iovlen = IOV_MAX};
    int p[2], full[2], sp[2], fsp[2], rp[2], rsp[2], ready[2], sq[2];
    if (pipe(p) || pipe(full) || pipe(rp) || pipe(ready) || pipe(sq) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sp) || socketpair(AF_UNIX, SOCK_STREAM, 0, fsp) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, rsp)) {
        perror("setup");
        return 1;
    }
    fill(full[1]);
    fill(fsp[0]);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    // An address of sa_family alone: the kernel picks an abstract name (autobind).
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa_family_t)) || listen(ls, 1)) {
        perror("listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    static struct pollfd pfd;
    pfd.fd = p[0];
    pfd.events = POLLIN;
    static fd_set rset;
    FD_ZERO(&rset);
    FD_SET(p[0], &rset);
    static struct timespec long_ts = {1000, 0}, abs_ts;
    clock_gettime(CLOCK_MONOTONIC, &abs_ts);
    abs_ts.tv_sec += 1000;
    static int futex_word;
    int mq = msgget(IPC_PRIVATE, 0600);
    int sem = semget(IPC_PRIVATE, 1, 0600);
    static struct sembuf down = {0, -1, 0};
    static struct {
        long type;
        char text[16];
    } msg;
    char lockname[] = "/tmp/wait_lost_signal.XXXXXX";
    int lf = mkstemp(lockname);
    // A child holds a flock and a record lock on the file and never exits on its own: it is
    // also what wait4 and waitid wait for.
    pid_t holder = fork();
    if (holder == 0) {
        int f = open(lockname, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (f < 0 || flock(f, LOCK_EX) || fcntl(f, F_SETLK, &fl))
            _exit(1);
        char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char c;
    if (read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "lock holder failed\n");
        return 1;
    }
    unlink(lockname);
    static struct flock wl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    static siginfo_t wsi;
    static sigset_t usr2, unblock_usr1;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigemptyset(&unblock_usr1);
    sigaddset(&unblock_usr1, SIGUSR2);

    add("read", SYS_read, p[0], (long)buf, 1, 0, 0, 0);
    add("readv", SYS_readv, p[0], (long)iov, IOV_MAX, 0, 0, 0);
    add("write (full pipe)", SYS_write, full[1], (long)buf, 1, 0, 0, 0);
    add("recvfrom", SYS_recvfrom, sp[0], (long)buf, 1, 0, 0, 0);
    add("recvmsg", SYS_recvmsg, sp[0], (long)&mh, 0, 0, 0, 0);
    add("sendto (full socket)", SYS_sendto, fsp[0], (long)buf, 1, 0, 0, 0);
    add("accept", SYS_accept, ls, 0, 0, 0, 0, 0);
    add("poll", SYS_poll, (long)&pfd, 1, -1, 0, 0, 0);
    add("ppoll", SYS_ppoll, (long)&pfd, 1, 0, 0, 8, 0);
    add("select", SYS_select, p[0] + 1, (long)&rset, 0, 0, 0, 0);
    add("pselect6", SYS_pselect6, p[0] + 1, (long)&rset, 0, 0, 0, 0);
    add("epoll_wait", SYS_epoll_wait, ep, (long)&ev, 1, -1, 0, 0);
    add("epoll_pwait", SYS_epoll_pwait, ep, (long)&ev, 1, -1, 0, 8);
    add("nanosleep", SYS_nanosleep, (long)&long_ts, 0, 0, 0, 0, 0);
    add("clock_nanosleep", SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&long_ts, 0, 0, 0);
    add("clock_nanosleep abstime", SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME,
        (long)&abs_ts, 0, 0, 0);
    add("wait4", SYS_wait4, holder, 0, 0, 0, 0, 0);
    add("waitid", SYS_waitid, P_PID, holder, (long)&wsi, WEXITED, 0, 0);
    add("futex WAIT", SYS_futex, (long)&futex_word, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    add("futex WAIT_BITSET", SYS_futex, (long)&futex_word, FUTEX_WAIT_BITSET_PRIVATE, 0, 0, 0,
        -1);
    add("msgrcv", SYS_msgrcv, mq, (long)&msg, sizeof msg.text, 0, 0, 0);
    add("semop", SYS_semop, sem, (long)&down, 1, 0, 0, 0);
    add("flock", SYS_flock, lf, LOCK_EX, 0, 0, 0, 0);
    add("fcntl F_SETLKW", SYS_fcntl, lf, F_SETLKW, (long)&wl, 0, 0, 0);
    add("rt_sigtimedwait", SYS_rt_sigtimedwait, (long)&usr2, 0, 0, 8, 0, 0);
    add("pause", SYS_pause, 0, 0, 0, 0, 0, 0);
    add("rt_sigsuspend", SYS_rt_sigsuspend, (long)&unblock_usr1, 8, 0, 0, 0, 0);
    // splice and tee from the empty pipe into one with room; sendfile from a file with data
    // into the full pipe.
    add("splice (empty pipe)", SYS_splice, p[0], 0, sq[1], 0, 1, 0);
    add("tee (empty pipe)", SYS_tee, p[0], sq[1], 1, 0, 0, 0);
    char dataname[] = "/tmp/wait_lost_signal_data.XXXXXX";
    int df = mkstemp(dataname);
    if (df < 0 || write(df, seg, sizeof seg) != (ssize_t)sizeof seg) {
        perror("data file");
        return 1;
    }
    unlink(dataname);
    static off_t data_off;
    add("sendfile (full pipe)", SYS_sendfile, full[1], df, (long)&data_off, 1, 0, 0);
    // connect to a listener whose backlog is full (listen 0, one connection queued) waits
    // for room (unix_stream_connect); opening a FIFO waits for its other end (fifo_open).
    int full_ls = socket(AF_UNIX, SOCK_STREAM, 0), queued = socket(AF_UNIX, SOCK_STREAM, 0);
    int connecting = socket(AF_UNIX, SOCK_STREAM, 0);
    static struct sockaddr_un full_sa;
    socklen_t full_len = sizeof full_sa;
    if (bind(full_ls, (struct sockaddr *)&sa, sizeof(sa_family_t)) || listen(full_ls, 0) ||
        getsockname(full_ls, (struct sockaddr *)&full_sa, &full_len) ||
        connect(queued, (struct sockaddr *)&full_sa, full_len)) {
        perror("full listener");
        return 1;
    }
    add("connect (full backlog)", SYS_connect, connecting, (long)&full_sa, full_len, 0, 0, 0);
    static char fifodir[] = "/tmp/wait_lost_signal_fifo.XXXXXX", fifo[64];
    if (!mkdtemp(fifodir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(fifo, sizeof fifo, "%s/fifo", fifodir);
    if (mkfifo(fifo, 0600)) {
        perror("mkfifo");
        return 1;
    }
    add("open FIFO to read", SYS_openat, AT_FDCWD, (long)fifo, O_RDONLY, 0, 0, 0);
    add("open FIFO to write", SYS_openat, AT_FDCWD, (long)fifo, O_WRONLY, 0, 0, 0);
    add("read SA_RESTART", SYS_read, rp[0], (long)buf, 1, 0, 0, 0);
    calls[ncalls - 1].restart = 1;
    calls[ncalls - 1].wfd = rp[1];
    add("recvfrom SA_RESTART", SYS_recvfrom, rsp[0], (long)buf, 1, 0, 0, 0);
    calls[ncalls - 1].restart = 1;
    calls[ncalls - 1].wfd = rsp[1];

    // One call alone, by name (for investigating a failure).
    if (argc > 1) {
        int n = 0;
        for (int i = 0; i < ncalls; i++)
            if (strcmp(calls[i].name, argv[1]) == 0)
                calls[n++] = calls[i];
        ncalls = n;
    }
    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    // The watchdog: every round must end within 20 s of the previous one.
    for (int r = 0; r < ncalls * ROUNDS; r++) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 20;
        while (sem_timedwait(&done, &dl) != 0) {
            if (errno == ETIMEDOUT) {
                printf("%s: a call slept through its signal\n", calls[r / ROUNDS].name);
                kill(holder, SIGKILL);
                _exit(1);
            }
        }
    }
    pthread_join(w, NULL);
    kill(holder, SIGKILL);
    int st;
    waitpid(holder, &st, 0);
    printf("lock holder: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? "killed" : "?");
    unlink(fifo);
    rmdir(fifodir);
    msgctl(mq, IPC_RMID, NULL);
    semctl(sem, 0, IPC_RMID);
    return bad_total != 0;
}
