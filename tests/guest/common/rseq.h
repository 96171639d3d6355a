// The rseq(2) ABI as include/uapi/linux/rseq.h defines it, for guest programs that register
// their own area (they run with GLIBC_TUNABLES=glibc.pthread.rseq=0 so that glibc does not
// register one for every thread first), and x86-64 critical sections written as the kernel's
// selftests write them (tools/testing/selftests/rseq/rseq-x86.h): the descriptor in a data
// section, the abort handler preceded by the 4-byte signature (the immediate of a UD1).
#ifndef GUEST_COMMON_RSEQ_H
#define GUEST_COMMON_RSEQ_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RSEQ_SIG 0x53053053u
#define RSEQ_FLAG_UNREGISTER 1

struct rseq_cs_desc {
    uint32_t version;
    uint32_t flags;
    uint64_t start_ip;
    uint64_t post_commit_offset;
    uint64_t abort_ip;
} __attribute__((aligned(32)));

struct rseq_area {
    uint32_t cpu_id_start;
    uint32_t cpu_id;
    uint64_t rseq_cs;
    uint32_t flags;
    uint32_t node_id;
    uint32_t mm_cid;
    char end[0];
} __attribute__((aligned(32)));

// The raw call: 0 or -errno.
static inline long rseq_call(void *area, unsigned long len, long flags, unsigned long sig) {
    long r = syscall(SYS_rseq, area, len, flags, sig);
    return r == 0 ? 0 : -errno;
}

static inline const char *rseq_errname(long r) {
    switch (r) {
    case 0: return "ok";
    case -EINVAL: return "EINVAL";
    case -EPERM: return "EPERM";
    case -EBUSY: return "EBUSY";
    case -EFAULT: return "EFAULT";
    case -ENOSYS: return "ENOSYS";
    default: return "other";
    }
}
#endif
