//! The Linux x86-64 user ABI: the constants the personality needs that the `libc` crate does
//! not give with the width syscall arguments have, each defined once. Values are ABI facts
//! from the Linux headers named beside each group.

// ------------------------------------------------------------------ address space
// arch/x86/include/asm/page_64_types.h (4-level paging, the only mode cetbox presents).

/// The highest user address plus one (`TASK_SIZE_MAX`): `access_ok` limit, FS/GS base limit,
/// end of the mmap area.
pub const TASK_SIZE: u64 = 0x0000_7fff_ffff_f000;

// ------------------------------------------------------------------ mmap
// include/uapi/asm-generic/mman-common.h, arch/x86/include/uapi/asm/mman.h,
// include/uapi/linux/mman.h.

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_DENYWRITE: u64 = 0x800;
pub const MAP_EXECUTABLE: u64 = 0x1000;
pub const MAP_LOCKED: u64 = 0x2000;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_NONBLOCK: u64 = 0x10000;
pub const MAP_STACK: u64 = 0x20000;
pub const MAP_HUGETLB: u64 = 0x40000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
pub const MAP_UNINITIALIZED: u64 = 0x4000000;
pub const MAP_HUGE_SHIFT: u64 = 26;
pub const MAP_HUGE_MASK: u64 = 0x3f;

pub const PROT_READ: u64 = 0x1;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;
pub const PROT_RWX: u64 = PROT_READ | PROT_WRITE | PROT_EXEC;
pub const PROT_SEM: u64 = 0x8;
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
pub const PROT_GROWSUP: u64 = 0x0200_0000;

// ------------------------------------------------------------------ clone
// include/uapi/linux/sched.h.

pub const CSIGNAL: u64 = 0xff;
pub const CLONE_NEWTIME: u64 = 0x80;
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_NEWCGROUP: u64 = 0x2000000;
pub const CLONE_NEWUTS: u64 = 0x4000000;
pub const CLONE_NEWIPC: u64 = 0x8000000;
pub const CLONE_NEWUSER: u64 = 0x10000000;
pub const CLONE_NEWPID: u64 = 0x20000000;
pub const CLONE_NEWNET: u64 = 0x40000000;
pub const CLONE_IO: u64 = 0x80000000;
pub const CLONE_CLEAR_SIGHAND: u64 = 1 << 32;
pub const CLONE_INTO_CGROUP: u64 = 1 << 33;

// ------------------------------------------------------------------ arch_prctl
// arch/x86/include/uapi/asm/prctl.h.

pub const ARCH_SET_GS: u32 = 0x1001;
pub const ARCH_SET_FS: u32 = 0x1002;
pub const ARCH_GET_FS: u32 = 0x1003;
pub const ARCH_GET_GS: u32 = 0x1004;
pub const ARCH_GET_CPUID: u32 = 0x1011;
pub const ARCH_SET_CPUID: u32 = 0x1012;
pub const ARCH_GET_XCOMP_SUPP: u32 = 0x1021;
pub const ARCH_GET_XCOMP_PERM: u32 = 0x1022;
pub const ARCH_REQ_XCOMP_PERM: u32 = 0x1023;
pub const ARCH_GET_XCOMP_GUEST_PERM: u32 = 0x1024;
pub const ARCH_REQ_XCOMP_GUEST_PERM: u32 = 0x1025;
pub const ARCH_GET_UNTAG_MASK: u32 = 0x4001;
pub const ARCH_ENABLE_TAGGED_ADDR: u32 = 0x4002;
pub const ARCH_GET_MAX_TAG_BITS: u32 = 0x4003;
pub const ARCH_FORCE_TAGGED_SVA: u32 = 0x4004;
pub const ARCH_SHSTK_ENABLE: u32 = 0x5001;
pub const ARCH_SHSTK_DISABLE: u32 = 0x5002;
pub const ARCH_SHSTK_LOCK: u32 = 0x5003;
pub const ARCH_SHSTK_UNLOCK: u32 = 0x5004;
pub const ARCH_SHSTK_STATUS: u32 = 0x5005;
/// ARCH_SHSTK_* feature bits.
pub const ARCH_SHSTK_SHSTK: u64 = 1 << 0;
pub const ARCH_SHSTK_WRSS: u64 = 1 << 1;

// ------------------------------------------------------------------ shadow stacks
// include/uapi/asm-generic/mman-common.h, include/uapi/linux/prctl.h.

/// map_shadow_stack(2) flag: put a restore token at the top.
pub const SHADOW_STACK_SET_TOKEN: u32 = 1 << 0;
/// Generic prctl options (arm64 GCS; x86 answers EINVAL).
pub const PR_GET_SHADOW_STACK_STATUS: u64 = 74;
pub const PR_SET_SHADOW_STACK_STATUS: u64 = 75;
pub const PR_LOCK_SHADOW_STACK_STATUS: u64 = 76;

// ------------------------------------------------------------------ siginfo codes
// include/uapi/asm-generic/siginfo.h.

pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const SEGV_PKUERR: i32 = 4;
pub const SEGV_CPERR: i32 = 10;
pub const BUS_ADRALN: i32 = 1;
pub const BUS_ADRERR: i32 = 2;
pub const ILL_ILLOPC: i32 = 1;
pub const ILL_ILLOPN: i32 = 2;

// ------------------------------------------------------------------ futex
// include/uapi/linux/futex.h: the operations, the flags ORed into them, and the bits of a PI
// or robust futex word.

pub const FUTEX_WAIT: u32 = 0;
pub const FUTEX_WAKE: u32 = 1;
pub const FUTEX_FD: u32 = 2;
pub const FUTEX_REQUEUE: u32 = 3;
pub const FUTEX_CMP_REQUEUE: u32 = 4;
pub const FUTEX_WAKE_OP: u32 = 5;
pub const FUTEX_LOCK_PI: u32 = 6;
pub const FUTEX_UNLOCK_PI: u32 = 7;
pub const FUTEX_TRYLOCK_PI: u32 = 8;
pub const FUTEX_WAIT_BITSET: u32 = 9;
pub const FUTEX_WAKE_BITSET: u32 = 10;
pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
pub const FUTEX_CMP_REQUEUE_PI: u32 = 12;
pub const FUTEX_LOCK_PI2: u32 = 13;
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
/// The operation bits (the kernel masks the flags off: FUTEX_CMD_MASK).
pub const FUTEX_CMD_MASK: u32 = 0x7f;
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
