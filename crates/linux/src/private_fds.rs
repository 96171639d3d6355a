//! Descriptors cetbox keeps for itself in the guest's descriptor table (diagnostics, internal
//! pipes, the report file, the gdb connection): guest calls that name one fail with EBADF, as
//! if it were closed (`syscalls::fs::fd_arg`).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

pub const MAX_PRIVATE: usize = 16;
// Static on purpose: the table describes the host process's descriptor table, which has the
// same lifetime (one per host process, copied by fork, since descriptors are inherited), and
// the front end registers its own descriptors (report file, tally page) before any `Process`
// exists. Lock-free, so the fork child can use it whatever the parent's threads were doing.
static PRIVATE_COUNT: AtomicUsize = AtomicUsize::new(0);
static PRIVATE: [AtomicI32; MAX_PRIVATE] = [const { AtomicI32::new(-1) }; MAX_PRIVATE];

/// The host address of the table (MAX_PRIVATE host-endian i32 words, -1 for a free entry),
/// which another cetbox process reads to leave these out of this process's /proc/PID/fd
/// (`procview`).
pub fn table_address() -> u64 {
    PRIVATE.as_ptr() as u64
}

/// Marks a descriptor cetbox opened for itself (diagnostics, internal pipes). Guest calls that
/// name it fail with EBADF, as if it were closed; open it at a high number with O_CLOEXEC.
/// Returns false when the table is full.
pub fn register_private_fd(fd: i32) -> bool {
    for slot in &PRIVATE {
        if slot
            .compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            PRIVATE_COUNT.fetch_add(1, Ordering::SeqCst);
            return true;
        }
    }
    false
}

/// Moves a descriptor cetbox opened for itself to a high number (close-on-exec, at least 64
/// below the RLIMIT_NOFILE soft limit, where guests rarely look) and registers it as private.
/// Returns the descriptor to use: the new one (the old one is closed), or `fd` itself,
/// registered, if it could not be moved.
pub fn make_private_fd(fd: i32) -> i32 {
    // The new number is unregistered until `register_private_fd` (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    let floor = ((r.rlim_cur.min(1 << 20) as i64) - 64).max(300) as i32;
    // SAFETY: duplicating a descriptor cetbox owns.
    let hi = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    let fd = if hi >= 0 {
        // SAFETY: closing the descriptor just duplicated, which cetbox owns.
        unsafe { libc::close(fd) };
        hi
    } else {
        fd
    };
    register_private_fd(fd);
    fd
}

/// Forgets a descriptor registered with [`register_private_fd`] (before cetbox closes it).
pub fn unregister_private_fd(fd: i32) {
    for slot in &PRIVATE {
        if slot
            .compare_exchange(fd, -1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            PRIVATE_COUNT.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Whether `fd` belongs to cetbox rather than the guest.
pub fn is_private(fd: i32) -> bool {
    if fd < 0 || PRIVATE_COUNT.load(Ordering::Relaxed) == 0 {
        return false;
    }
    PRIVATE.iter().any(|s| s.load(Ordering::Relaxed) == fd)
}

/// The registered private descriptors, sorted.
pub fn private_fds() -> Vec<i32> {
    let mut v: Vec<i32> = PRIVATE
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .filter(|&f| f >= 0)
        .collect();
    v.sort_unstable();
    v
}
