/* ioctls cetbox cannot prove safe never reach the host with a guest pointer in them.
 *
 * "kvm": KVM_GET_DIRTY_LOG (struct kvm_dirty_log: the kernel writes the dirty bitmap where its
 * dirty_bitmap pointer says; virt/kvm/kvm_main.c `kvm_get_dirty_log`) with that pointer at the
 * restore token of a fresh shadow stack. Linux's copy_to_user cannot write a shadow-stack page
 * (EFAULT); cetbox does not know the structure, so it refuses the request: ENOTTY, the token
 * unchanged. The VM is made on /dev/kvm where it can be opened (there, without the refusal, the
 * host would write the bitmap over the token); elsewhere the same calls go to /dev/null, and
 * cetbox refuses them before any host call all the same. KVM_SET_USER_MEMORY_REGION, whose
 * userspace_addr the host would map into a VM, is refused too.
 *
 * "once": the same unknown request twice, and another one, with pointer arguments: ENOTTY each
 * time (the diagnostic is the test's to check: one line per request). A request cetbox does not
 * know with a small integer argument reaches the host (ENOTTY from /dev/null, no diagnostic).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *res(long r) {
    static char b[32];
    if (r >= 0) {
        snprintf(b, sizeof b, "%ld", r);
        return b;
    }
    return strerrorname_np(errno);
}

static int kvm(void) {
    int dev = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (dev < 0) dev = open("/dev/null", O_RDWR | O_CLOEXEC);
    int vm = ioctl(dev, KVM_CREATE_VM, 0);
    if (vm < 0) vm = dev;
    unsigned char *mem = mmap(0, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_userspace_memory_region reg = {
        .slot = 0,
        .flags = KVM_MEM_LOG_DIRTY_PAGES,
        .guest_phys_addr = 0,
        .memory_size = 65536,
        .userspace_addr = (uintptr_t)mem,
    };
    printf("KVM_SET_USER_MEMORY_REGION: %s\n", res(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &reg)));
    long ss = syscall(453 /* map_shadow_stack */, 0, 4096, 1 /* SHADOW_STACK_SET_TOKEN */);
    if (ss == -1) {
        printf("map_shadow_stack: %s\n", res(-1));
        return 1;
    }
    uint64_t *token = (uint64_t *)(ss + 4096 - 8);
    uint64_t before = *token;
    printf("restore token for the top: %s\n", before == ((uint64_t)(ss + 4096) | 1) ? "yes" : "no");
    struct kvm_dirty_log log;
    memset(&log, 0, sizeof log);
    log.slot = 0;
    log.dirty_bitmap = token;
    printf("KVM_GET_DIRTY_LOG into the shadow stack: %s\n", res(ioctl(vm, KVM_GET_DIRTY_LOG, &log)));
    printf("token: %s\n", *token == before ? "unchanged" : "overwritten");
    return 0;
}

#define UNKNOWN_A _IOWR('x', 0x31, uint64_t[4])
#define UNKNOWN_B _IO(0xf7, 0x02)

static int once(void) {
    int null = open("/dev/null", O_RDWR);
    uint64_t v[4] = {0};
    printf("A: %s\n", res(ioctl(null, UNKNOWN_A, v)));
    printf("A again: %s\n", res(ioctl(null, UNKNOWN_A, v)));
    printf("B: %s\n", res(ioctl(null, UNKNOWN_B, v)));
    printf("B with 5: %s\n", res(ioctl(null, UNKNOWN_B, 5)));
    printf("A on a closed descriptor: %s\n", res(ioctl(1000, UNKNOWN_A, v)));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "kvm")) return kvm();
    if (argc > 1 && !strcmp(argv[1], "once")) return once();
    return 2;
}
