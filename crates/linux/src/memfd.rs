//! Anonymous in-memory files (memfd_create(2)) filled with given bytes: synthesized /proc files
//! the guest reads through a real descriptor, and the handover of a re-executing cetbox.

use crate::errno::Errno;
use std::ffi::CStr;
use std::io::{Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// Why `holding` failed.
pub enum Failed {
    /// memfd_create failed with this errno.
    Create(Errno),
    /// Writing the bytes failed (the memfd is closed again).
    Write,
}

/// A new memfd named `name` (with `flags`, e.g. MFD_CLOEXEC) holding `data`, its offset back
/// at 0.
pub fn holding(name: &CStr, flags: libc::c_uint, data: &[u8]) -> Result<OwnedFd, Failed> {
    // SAFETY: `name` is a NUL-terminated string; memfd_create takes no other pointer.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(Failed::Create(Errno::last()));
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(data)
        .and_then(|()| file.rewind())
        .map_err(|_| Failed::Write)?;
    Ok(file.into())
}
