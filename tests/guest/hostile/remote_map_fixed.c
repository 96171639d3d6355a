/* Another process reads memory that a MAP_FIXED mmap replaces meanwhile: Linux replaces the
 * mapping in one step under mmap_lock (mm/mmap.c do_mmap, mmap_region), and
 * process_vm_readv takes that lock to pin the pages (mm/process_vm_access.c), so every read
 * finds the old or the new mapping and copies all of it. cetbox cleared the old page-table
 * entries and filled the new ones as two changes, and a read between the two failed
 * (EFAULT) or stopped short. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (16 << 12)
#define READS 20000

int main(void) {
    char *area = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED || stop == MAP_FAILED)
        return 1;
    memset(area, 'a', LEN);
    int ready[2];
    if (pipe(ready))
        return 1;
    pid_t me = getpid();
    pid_t reader = fork();
    if (reader == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != me)
            _exit(9);
        static char buf[LEN];
        char c;
        if (read(ready[0], &c, 1) != 1)
            _exit(8);
        int bad = 0;
        for (int i = 0; i < READS; i++) {
            struct iovec l = {buf, LEN}, r = {area, LEN};
            if (process_vm_readv(me, &l, 1, &r, 1, 0) != LEN)
                bad++;
        }
        *stop = 1;
        _exit(bad ? 1 : 0);
    }
    write(ready[1], "g", 1);
    /* Replaced over and over, private anonymous and then shared anonymous, until the reader
     * is done. */
    for (unsigned n = 0; !*stop; n++) {
        int flags = (n & 1 ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED;
        if (mmap(area, LEN, PROT_READ | PROT_WRITE, flags, -1, 0) != area) {
            printf("mmap failed\n");
            return 1;
        }
        area[n % LEN] = 'b';
    }
    int st;
    waitpid(reader, &st, 0);
    printf("%d reads of memory that MAP_FIXED replaced meanwhile: %s\n", READS,
           WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "all copied whole" : "some failed");
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
