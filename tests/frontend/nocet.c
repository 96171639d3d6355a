/* What a program sees on a CPU without CET under a shadow-stack-capable kernel (Linux
 * arch/x86/kernel/shstk.c: EOPNOTSUPP without X86_FEATURE_USER_SHSTK, while shstk_prctl()'s
 * STATUS and LOCK need no CPU support; arch/x86/kernel/cpu/proc.c): no CET_SS in CPUID,
 * EOPNOTSUPP from the ABI, STATUS and LOCK still work, the /proc status lines present but
 * empty. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
int main(void) {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned long f = 0xdead;
    long enable = sys3(158, 0x5001, 1, 0);
    long map = sys3(453, 0, 4096, 1);
    long lock = sys3(158, 0x5003, 1, 0);
    long status = sys3(158, 0x5005, (long)&f, 0);
    printf("cet_ss=%u enable=%ld map=%ld lock=%ld status=%ld features=%lu\n", (c >> 7) & 1, enable, map, lock,
           status, f);
    char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    long n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char *p = strstr(buf, "x86_Thread_features:");
    fputs(p ? p : "no status lines\n", stdout);
    fflush(stdout);
    /* With CET, shadow stacks are now on and main's own return address is not on the shadow
     * stack: leave without returning. */
    _exit(0);
}
