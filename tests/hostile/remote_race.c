// A parent writes a pattern into its child's page P with process_vm_writev as fast as it can
// while the child, over and over, maps P read-write, unmaps it and maps a shadow stack there
// (crates/cli/tests/hostile.rs, remote_write_never_reaches_a_shadow_stack). Linux refuses
// process_vm_writev to a shadow-stack mapping (mm/gup.c check_vma_flags: VM_SHADOW_STACK is
// written only with FOLL_FORCE), and its check and copy happen under the target's mmap lock,
// so no byte of the pattern may ever appear in a shadow-stack page, however the two race. The
// child reads each shadow stack it maps (shadow-stack pages are readable) and counts pages
// holding a pattern byte; it prints the count and how many rounds it made.
#include "../shstk/cet.h"
#include <errno.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define P 0x200000000UL
#define ROUNDS 3000

int main(void) {
    int ready[2];
    if (pipe(ready))
        return 2;
    pid_t child = fork();
    if (child == 0) {
        int tainted = 0;
        for (int i = 0; i < ROUNDS; i++) {
            void *m = mmap((void *)P, 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (m != (void *)P)
                return 3;
            if (i == 0 && write(ready[1], "r", 1) != 1)
                return 4;
            munmap(m, 4096);
            long ss = map_shstk(P, 4096, SHADOW_STACK_SET_TOKEN);
            if (ss != (long)P)
                return 5;
            volatile unsigned char *s = (volatile unsigned char *)P;
            for (int b = 0; b < 4096; b++) {
                if (s[b] == 0xA5) {
                    tainted++;
                    break;
                }
            }
            munmap((void *)P, 4096);
        }
        printf("rounds %d, shadow-stack pages with a remote write: %d\n", ROUNDS, tainted);
        fflush(stdout);
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 6;
    static unsigned char pattern[4096];
    memset(pattern, 0xA5, sizeof pattern);
    struct iovec l = {pattern, sizeof pattern}, r = {(void *)P, sizeof pattern};
    int st;
    long written = 0, refused = 0;
    for (;;) {
        if (process_vm_writev(child, &l, 1, &r, 1, 0) == 4096)
            written++;
        else
            refused++;
        if (waitpid(child, &st, WNOHANG) == child)
            break;
    }
    // How the race went (timing, not compared): writes into the read-write page, refusals.
    fprintf(stderr, "written %ld refused %ld\n", written, refused);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}
