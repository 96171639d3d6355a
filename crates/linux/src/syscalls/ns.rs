//! Namespaces and shared task state: unshare and setns. A guest process is a host process and a
//! guest thread a host thread (cetbox starts no threads of its own), so the host kernel's
//! answer is Linux's: it applies the same rules (kernel/fork.c: ksys_unshare,
//! check_unshare_flags; kernel/nsproxy.c: setns), e.g. EINVAL for CLONE_THREAD, CLONE_VM or
//! CLONE_NEWUSER in a multi-threaded process, EPERM without the capability.

use super::fs::{fd_arg, host};
use crate::errno::SysResult;
use crate::process::Thread;

pub(crate) fn sys_unshare(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_unshare, a[0])
}

pub(crate) fn sys_setns(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(libc::SYS_setns, fd as u64, a[1] as u32 as u64)
}
