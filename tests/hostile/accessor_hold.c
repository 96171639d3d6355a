// A native helper (crates/cli/tests/hostile.rs,
// mapping_call_held_by_an_accessor_acts_on_signals): runs `CETBOX run -- GUEST`
// (held_mapper.c) as its child and registers itself as an accessor of the child's page table
// the way another cetbox process does while it copies (crates/mem/src/xlock.rs: its thread id
// in a slot of the lock page published at remote_mem::HEADER), and stays registered, as an
// accessor stopped by SIGSTOP in its copy would. The guest's mmap then waits for it; Linux's
// target is never held up by a reader, and a signal reaches it at once. Checked: a SIGUSR1
// sent meanwhile runs the guest's handler; the mmap completes once the accessor leaves; a
// SIGTERM sent while it waits again ends the guest.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEADER 0x5ffffffe0000ull
#define MAGIC 0x636574626f784d54ull
#define SLOTS 128

static pid_t child;
static FILE *from;
static int to;

static void expect(const char *want) {
    char line[128];
    if (!fgets(line, sizeof line, from)) {
        printf("guest output ended, wanted %s", want);
        exit(1);
    }
    if (strcmp(line, want)) {
        printf("guest said %s, wanted %s", line, want);
        exit(1);
    }
}

/* Waits until the child's main thread sleeps (state S): it waits for us in its mmap. */
static void wait_sleeping(void) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", child, child);
    for (;;) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = 0;
        char *close = strrchr(buf, ')');
        if (close && close[1] == ' ' && close[2] == 'S')
            return;
        usleep(1000);
    }
}

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    int out[2], in[2];
    if (pipe(out) || pipe(in))
        return 2;
    child = fork();
    if (child == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execl(argv[1], argv[1], "run", "--", argv[2], (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    from = fdopen(out[0], "r");
    to = in[1];
    expect("ready\n");
    uint64_t h[6];
    struct iovec l = {h, sizeof h}, r = {(void *)HEADER, sizeof h};
    if (process_vm_readv(child, &l, 1, &r, 1, 0) != sizeof h || h[0] != MAGIC) {
        printf("no published table\n");
        return 1;
    }
    int pidfd = syscall(SYS_pidfd_open, child, 0);
    int fd = syscall(SYS_pidfd_getfd, pidfd, (int)h[2], 0);
    uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (pidfd < 0 || fd < 0 || page == MAP_FAILED) {
        printf("no lock page\n");
        return 1;
    }
    uint32_t *slot = &page[SLOTS / 4];
    uint32_t zero = 0, me = gettid();
    /* Registered: no change of the child's table may begin until we leave. */
    if (!__atomic_compare_exchange_n(slot, &zero, me, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        printf("slot taken\n");
        return 1;
    }
    write(to, "g", 1);
    expect("mapping\n");
    wait_sleeping();
    kill(child, SIGUSR1);
    expect("usr1\n");
    printf("SIGUSR1 acted on while the mmap waits for an accessor\n");
    __atomic_store_n(slot, 0, __ATOMIC_SEQ_CST);
    expect("mapped\n");
    printf("the mmap made once the accessor left\n");
    zero = 0;
    __atomic_compare_exchange_n(slot, &zero, me, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    write(to, "g", 1);
    expect("mapping\n");
    wait_sleeping();
    kill(child, SIGTERM);
    int st;
    waitpid(child, &st, 0);
    __atomic_store_n(slot, 0, __ATOMIC_SEQ_CST);
    if (WIFSIGNALED(st))
        printf("ended by signal %d while the mmap waits for an accessor\n", WTERMSIG(st));
    else
        printf("status %#x\n", st);
    return 0;
}
