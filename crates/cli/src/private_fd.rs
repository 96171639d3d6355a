//! Descriptors cetbox keeps for itself inside the guest process (report files, the gdb
//! connection): moved to a high number that cetbox registers as its own, so the guest can
//! neither see nor close them, and execve's closing of close-on-exec descriptors leaves them
//! open.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// Returns `fd` moved to a private high descriptor (or unchanged if that fails): see
/// `cetbox_linux::private_fds::make_private_fd`.
pub fn private(fd: OwnedFd) -> OwnedFd {
    let raw = cetbox_linux::private_fds::make_private_fd(fd.into_raw_fd());
    // SAFETY: make_private_fd returns the descriptor it was given, or a duplicate after closing
    // the original; either way nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
