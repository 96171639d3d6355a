//! Descriptors cetbox keeps for itself inside the guest process (report files, the gdb
//! connection): moved to a high number that cetbox registers as its own, so the guest can
//! neither see nor close them, and execve's closing of close-on-exec descriptors leaves them
//! open.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Returns `fd` moved to a private high descriptor (or unchanged if that fails).
pub fn private(fd: OwnedFd) -> OwnedFd {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    let floor = ((r.rlim_cur.min(1 << 20) as i64) - 32).max(300) as i32;
    // SAFETY: duplicating a descriptor we own.
    let hi = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    if hi < 0 {
        return fd;
    }
    cetbox_linux::syscalls::fs::register_private_fd(hi);
    // SAFETY: `hi` is a new descriptor nobody else owns; `fd` is closed when dropped here.
    unsafe { OwnedFd::from_raw_fd(hi) }
}
