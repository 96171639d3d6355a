//! cflags: -pthread
// accept racing another thread for the same connection, with a signal sent at a random moment
// around its SYSCALL instruction: the call must end when the signal comes. Linux looks for a
// pending signal when accept is about to sleep (net/unix/af_unix.c unix_accept through
// skb_recv_datagram; net/ipv4/inet_connection_sock.c inet_csk_wait_for_connect), so an accept
// whose connection another thread took first ends with EINTR.
//
// A second thread accepts on the same listener once per round, a random moment after the main
// thread reached its SYSCALL; each round the main thread queues one connection and accepts it
// too, through a stub that marks its SYSCALL
// instruction (a signal that arrives before it makes the stub skip the call, as a safe-syscall
// stub does, so natively every call ends: a connection, EINTR or "skipped"). cetbox, when the
// signal arrived between the guest's SYSCALL and its host call, used to test the listener
// ready and then make the waiting host call; when the other thread took the connection in
// between, the call slept with the signal already recorded. That window is a few
// instructions wide, so a run catches it only now and then (2 of 30 runs on a loaded
// machine); the test guards the poked call that replaced it (waitcall/poke.rs). alarm() is the
// watchdog: a call still asleep 20 s after it began is reported.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ROUNDS 4000
#define SKIPPED (-100000L)

// long at_call(long nr, long a0, long a1, long a2, long a3)
__asm__(".text\n"
        ".globl at_call\n"
        ".type at_call,@function\n"
        "at_call:\n"
        "mov %rdi, %rax\n"
        "mov %rsi, %rdi\n"
        "mov %rdx, %rsi\n"
        "mov %rcx, %rdx\n"
        "mov %r8, %r10\n"
        ".globl at_start\n"
        "at_start:\n"
        "cmpl $0, at_early(%rip)\n"
        "jne at_skip\n"
        "lock incl go(%rip)\n"
        ".globl at_syscall\n"
        "at_syscall:\n"
        "syscall\n"
        "ret\n"
        ".globl at_skip\n"
        "at_skip:\n"
        "mov $-100000, %rax\n"
        "ret\n");
extern char at_start[], at_syscall[], at_skip[];
long at_call(long nr, long a0, long a1, long a2, long a3);

volatile int at_early;

static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    uintptr_t rip = uc->uc_mcontext.gregs[REG_RIP];
    if (rip >= (uintptr_t)at_start && rip <= (uintptr_t)at_syscall)
        uc->uc_mcontext.gregs[REG_RIP] = (uintptr_t)at_skip;
    else if (rip != (uintptr_t)at_syscall + 2)
        at_early = 1;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "accept: a call slept through its signal\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static uint64_t rng = 88172645463325252ull;
static unsigned next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)rng;
}

static int listener;
static volatile int stop;
// Counts the rounds: the stub adds one just before its SYSCALL, the main thread after a
// skipped call.
volatile unsigned go;

// Takes connections: one accept per round, a random moment after the main thread reached its
// SYSCALL instruction, so that it lands at every point of the main thread's accept. Each round
// queues one connection and there are at least as many accepts, so none pile up.
static void *taker(void *arg) {
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned handled = 0;
    while (!stop) {
        if (go == handled)
            continue;
        handled++;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (volatile unsigned i = (unsigned)(x % 400); i > 0; i--) {
        }
        int c = accept(listener, NULL, NULL);
        if (c >= 0)
            close(c);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction act = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR1, &act, NULL);
    signal(SIGALRM, on_alarm);
    timer_t timer;
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) {
        perror("timer_create");
        return 1;
    }

    // An abstract unix address of this process (no file to clean up).
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "accept_taken.%d", getpid());
    socklen_t salen = offsetof(struct sockaddr_un, sun_path) + 1 + len;
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&sa, salen) || listen(listener, 64)) {
        perror("listener");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, taker, NULL)) {
        perror("pthread_create");
        return 1;
    }

    int bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (c < 0) {
            perror("socket");
            return 1;
        }
        if (connect(c, (struct sockaddr *)&sa, salen)) {
            perror("connect");
            return 1;
        }
        unsigned d = next_rand();
        struct itimerspec its = {.it_value = {0, 1 + (d >> 1) % 40000}};
        alarm(20);
        timer_settime(timer, 0, &its, NULL);
        long res = at_call(SYS_accept4, listener, 0, 0, 0);
        if (res == SKIPPED)
            __atomic_add_fetch(&go, 1, __ATOMIC_SEQ_CST);
        // Wait for the timer's signal (it has not always come yet), so the next round starts
        // without one on its way.
        struct itimerspec left;
        do
            timer_gettime(timer, &left);
        while (left.it_value.tv_sec || left.it_value.tv_nsec);
        alarm(0);
        if (res >= 0)
            close((int)res);
        else if (res != -EINTR && res != SKIPPED && bad++ < 3)
            printf("accept: round %d: answer %ld\n", r, res);
        close(c);
        at_early = 0;
    }
    printf("accept (connection taken by another thread): %d rounds, %d wrong answers\n", ROUNDS,
           bad);
    stop = 1;
    // Wake the taker (if it waits in accept) with one more connection.
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, salen)) {
        perror("last connect");
        return 1;
    }
    pthread_join(th, NULL);
    return bad != 0;
}
