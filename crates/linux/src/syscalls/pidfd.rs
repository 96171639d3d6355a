//! Process file descriptors: pidfd_open, pidfd_getfd, process_mrelease (pidfd_send_signal is
//! with the signals). Guest pids are host pids and a guest process is a host process, so the
//! host kernel's pidfds refer to the right processes and make all of Linux's checks
//! (kernel/pid.c, mm/oom_kill.c).

use super::fs::{fd_arg, host, is_private};
use crate::errno::{Errno, SysResult};
use crate::process::Thread;

pub(crate) fn sys_pidfd_open(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_pidfd_open, a[0] as u32 as u64, a[1] as u32 as u64)
}

/// pidfd_getfd(pidfd, targetfd, flags): a duplicate of another process's descriptor. A target
/// running under cetbox holds cetbox's own descriptors too (`fs::register_private_fd`); the
/// numbers this cetbox keeps private answer EBADF, as if closed, which covers this process and
/// its fork children (they inherit them). Another cetbox's private descriptors, at other
/// numbers, are as reachable as under Linux's ptrace-attach check.
pub(crate) fn sys_pidfd_getfd(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let pidfd = fd_arg(a[0])?;
    if a[2] as u32 == 0 && is_private(a[1] as u32 as i32) {
        return Err(Errno::EBADF);
    }
    host!(
        libc::SYS_pidfd_getfd,
        pidfd as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_process_mrelease(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let pidfd = fd_arg(a[0])?;
    host!(libc::SYS_process_mrelease, pidfd as u64, a[1] as u32 as u64)
}
