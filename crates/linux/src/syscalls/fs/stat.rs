//! stat, lstat, fstat, newfstatat, statx. The structures are x86-64 Linux layout on both sides,
//! so the host fills guest memory directly after the checks.

use super::{buf, dirfd_arg, fd_arg, guest_path_arg, host, proc_link, sysroot_path, AT_FDCWD};
use crate::errno::SysResult;
use crate::hostcall::HostPtr;
use crate::process::Thread;
use cetbox_mem::Access;
use libc::*;
use std::ffi::CString;

/// sizeof(struct stat) on x86-64.
pub const STAT_SIZE: u64 = 144;
/// sizeof(struct statx).
pub const STATX_SIZE: u64 = 256;

/// The host path to stat for a guest path: an absolute path is looked up under --sysroot
/// (crate::sysroot); then a followed /proc link the view answers (exe; self and thread-self)
/// stats what the guest's link points to, itself a guest path looked up under --sysroot.
/// Only paths whose last component has such a name are resolved (a few host calls), however
/// they reach /proc; a symlink of another name to /proc/self/exe still stats the host's target
/// (cetbox's binary: information, not access).
fn follow_proc(t: &Thread, dfd: i32, path: CString, follow: bool) -> CString {
    let path = sysroot_path(t, path, follow);
    let b = path.as_bytes();
    let last = b
        .rsplit(|&c| c == b'/')
        .find(|c| !c.is_empty() && *c != b".");
    if follow && matches!(last, Some(b"exe" | b"self" | b"thread-self")) {
        if let Some(target) = proc_link(t, dfd, b) {
            if target.first() == Some(&b'/') {
                if let Ok(c) = CString::new(target) {
                    return sysroot_path(t, c, follow);
                }
            }
        }
    }
    path
}

fn stat_at(t: &mut Thread, dirfd: u64, path: u64, out: u64, flags: u64) -> SysResult {
    let path = guest_path_arg(t, path)?;
    let dfd = if dirfd as u32 as i32 == AT_FDCWD {
        AT_FDCWD
    } else {
        dirfd_arg(dirfd, path.as_bytes())?
    };
    let out = buf(t, out, STAT_SIZE, Access::Write)?;
    let flags = flags as u32 as i32;
    let path = follow_proc(t, dfd, path, flags & AT_SYMLINK_NOFOLLOW == 0);
    host!(
        SYS_newfstatat,
        dfd as u64,
        HostPtr::of(path.as_bytes_with_nul()),
        out,
        flags as u32 as u64
    )
}

pub(crate) fn sys_stat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    stat_at(t, AT_FDCWD as u64, a[0], a[1], 0)
}

pub(crate) fn sys_lstat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    stat_at(t, AT_FDCWD as u64, a[0], a[1], AT_SYMLINK_NOFOLLOW as u64)
}

pub(crate) fn sys_newfstatat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    stat_at(t, a[0], a[1], a[2], a[3])
}

pub(crate) fn sys_fstat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let out = buf(t, a[1], STAT_SIZE, Access::Write)?;
    host!(SYS_fstat, fd as u64, out)
}

pub(crate) fn sys_statx(t: &mut Thread, a: [u64; 6]) -> SysResult {
    // Linux 6.11+ accepts a NULL path with AT_EMPTY_PATH.
    let flags = a[2] as u32 as i32;
    let path = if a[1] == 0 && flags & AT_EMPTY_PATH != 0 {
        CString::default()
    } else {
        guest_path_arg(t, a[1])?
    };
    let dfd = dirfd_arg(a[0], path.as_bytes())?;
    let out = buf(t, a[4], STATX_SIZE, Access::Write)?;
    let path = follow_proc(t, dfd, path, flags & AT_SYMLINK_NOFOLLOW == 0);
    host!(
        SYS_statx,
        dfd as u64,
        HostPtr::of(path.as_bytes_with_nul()),
        flags as u32 as u64,
        a[3] as u32 as u64,
        out
    )
}
