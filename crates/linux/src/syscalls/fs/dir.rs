//! Directory reading: getdents64 and the old getdents. The host writes the records straight
//! into the guest buffer (same layout).

use super::{fd_arg, host, io_prefix};
use crate::errno::SysResult;
use crate::hostcall::HostPtr;
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
    if n != 0 {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let target = target.as_deref();
        if let Some(pid) = target.and_then(descriptor_dir) {
            let list = || {
                let private = crate::procview::private_fds_of(pid);
                if private.is_empty() {
                    return host!(nr, fd as u64, p, n);
                }
                let skip = |name: &[u8]| {
                    std::str::from_utf8(name)
                        .ok()
                        .and_then(|s| s.parse::<i32>().ok())
                        .is_some_and(|d| private.contains(&d))
                };
                leaving_out(nr, fd, p, n, &skip)
            };
            // SAFETY: getpid has no preconditions.
            if pid == unsafe { getpid() } {
                // This process's own: with none of cetbox's short-lived descriptors open
                // meanwhile (`cetbox_mem::transient`), and the registry of the lasting ones
                // read in the same moment (they are registered under a hold).
                return cetbox_mem::transient::without_holds(list);
            }
            return list();
        }
        if target.is_some_and(|t| t.as_os_str() == "/proc") {
            // vfork snapshot holders (`crate::fork`) are cetbox's, no processes of a guest.
            let skip = |name: &[u8]| {
                std::str::from_utf8(name)
                    .ok()
                    .and_then(|s| s.parse::<i32>().ok())
                    .is_some_and(crate::procview::is_holder)
            };
            return leaving_out(nr, fd, p, n, &skip);
        }
    }
    host!(nr, fd as u64, p, n)
}

/// The process whose descriptor directory `target` (what a directory descriptor names) is
/// (`/proc/PID/fd`, `/proc/PID/fdinfo`, the same under `/proc/PID/task/TID/`, this process's
/// through /proc/self too), if it is one: the descriptors cetbox keeps there for itself
/// (`private_fds`; another guest's as it publishes them, `procview`) would otherwise be
/// listed: a guest that fstats what it lists (glibc's support_descriptors in tst-cancel31 and
/// every test using it) would meet a descriptor that answers EBADF, and another guest would
/// see descriptors Linux would not show it.
fn descriptor_dir(target: &std::path::Path) -> Option<i32> {
    use std::os::unix::ffi::OsStrExt as _;
    let p = crate::procfs::ProcPath::parse(target.as_os_str().as_bytes())?;
    if !matches!(p.rest.as_slice(), [b"fd"] | [b"fdinfo"]) {
        return None;
    }
    p.pid
}

/// getdents on a directory with records to leave out (`skip` says which names): the host
/// fills a private buffer, the records `skip` names are left out, and the rest are copied to
/// the guest's buffer (read again when a whole batch was cetbox's, so 0 still means the end).
/// Each record's d_off names the position after it, so leaving records out keeps later reads
/// exact.
fn leaving_out(
    nr: i64,
    fd: i32,
    p: HostPtr<'static>,
    n: u64,
    skip: &dyn Fn(&[u8]) -> bool,
) -> SysResult {
    // d_reclen follows d_ino and d_off in both layouts; the name follows d_type in
    // linux_dirent64 and d_reclen in the old linux_dirent (fs/readdir.c).
    let name_at = if nr == SYS_getdents64 { 19 } else { 18 };
    // The guest's count sizes a host buffer here: read at most 64 KiB a call (getdents may
    // always return fewer records than fit).
    let n = n.min(64 << 10);
    let mut raw = vec![0u8; n as usize];
    loop {
        let got = host!(nr, fd as u64, HostPtr::of_mut(&mut raw[..]), n)? as usize;
        let mut out = Vec::with_capacity(got);
        let mut at = 0;
        while at + name_at <= got {
            let len = u16::from_le_bytes([raw[at + 16], raw[at + 17]]) as usize;
            if len < name_at || at + len > got {
                break;
            }
            let name = &raw[at + name_at..at + len];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if !skip(name) {
                out.extend_from_slice(&raw[at..at + len]);
            }
            at += len;
        }
        if got == 0 || !out.is_empty() {
            // SAFETY: `p` stands for `n` writable bytes of guest output (`io_prefix`: the
            // checked guest range, or the bounce buffer copied to it after the call), and
            // `out` holds at most `got` <= `n` bytes.
            unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), p.as_ptr(), out.len()) };
            return Ok(out.len() as u64);
        }
    }
}

pub(crate) fn sys_getdents64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    getdents_common(t, SYS_getdents64, a)
}

pub(crate) fn sys_getdents(t: &mut Thread, a: [u64; 6]) -> SysResult {
    getdents_common(t, SYS_getdents, a)
}
