//! Directory reading: getdents64 and the old getdents. The host writes the records straight
//! into the guest buffer (same layout).

use super::{fd_arg, host, io_prefix};
use crate::errno::SysResult;
use crate::process::Thread;
use cetbox_mem::Access;
use libc::*;

/// Only the usable prefix of the buffer is offered: Linux fills records until the copy faults
/// and returns what it wrote (EFAULT if nothing). A buffer too small for one record gives
/// EINVAL from the host, as from Linux.
fn getdents_common(t: &mut Thread, nr: i64, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let count = a[2] as u32 as u64;
    let (p, n) = io_prefix(t, a[1], count, Access::Write)?;
    if count > i32::MAX as u64 {
        // Linux keeps the count in an int (fs/readdir.c, getdents_callback64): above INT_MAX
        // it is negative and the first record fails with EINVAL; an exhausted directory still
        // returns 0 and a non-directory ENOTDIR. A one-byte count gives the host the same
        // answers without letting it write.
        return host!(nr, fd as u64, p, 1);
    }
    host!(nr, fd as u64, p, n)
}

pub(crate) fn sys_getdents64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    getdents_common(t, SYS_getdents64, a)
}

pub(crate) fn sys_getdents(t: &mut Thread, a: [u64; 6]) -> SysResult {
    getdents_common(t, SYS_getdents, a)
}
