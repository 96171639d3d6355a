//! Waiting for descriptors: poll, ppoll, select, pselect6 and epoll.
//!
//! The signal masks of ppoll/pselect6/epoll_pwait are given to the host for the duration of
//! the wait: a signal the guest blocks stays pending on the host until the call returns, and
//! one it unblocks interrupts the wait (EINTR), after which the signal code delivers it with
//! the guest's ordinary mask. (Linux delivers it with the temporary mask still in force; the
//! difference only shows for signals unblocked just for the wait.)

use super::{buf, fd_arg, host, opt_buf};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use cetbox_mem::Access;
use libc::*;

/// sizeof(struct pollfd).
const POLLFD: u64 = 8;
/// sizeof(struct epoll_event) on x86-64 (packed).
const EPOLL_EVENT: u64 = 12;
/// Linux's RLIMIT_NOFILE ceiling for nfds.
const NR_OPEN: u64 = 1 << 20;
/// The kernel's sigset size on x86-64.
const SIGSET: u64 = 8;

pub(crate) fn sys_poll(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let n = a[1] as u32 as u64;
    if n > NR_OPEN {
        return Err(Errno::EINVAL);
    }
    let fds = buf(t, a[0], n * POLLFD, Access::Write)?;
    host!(SYS_poll, fds, n, a[2] as u32 as u64)
}

fn sigmask(t: &Thread, addr: u64, size: u64) -> Result<HostPtr<'static>, Errno> {
    if addr == 0 {
        return Ok(HostPtr::NULL);
    }
    if size != SIGSET {
        return Err(Errno::EINVAL);
    }
    buf(t, addr, SIGSET, Access::Read)
}

pub(crate) fn sys_ppoll(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let n = a[1] as u32 as u64;
    if n > NR_OPEN {
        return Err(Errno::EINVAL);
    }
    let fds = buf(t, a[0], n * POLLFD, Access::Write)?;
    let ts = opt_buf(t, a[2], 16, Access::Write)?;
    let mask = sigmask(t, a[3], a[4])?;
    host!(SYS_ppoll, fds, n, ts, mask, a[4])
}

/// The three fd_sets of select cover `nfds` bits each, rounded to longs.
fn fdsets(t: &Thread, a: &[u64], nfds: u64) -> Result<[HostPtr<'static>; 3], Errno> {
    let bytes = nfds.div_ceil(64) * 8;
    let mut out = [HostPtr::NULL; 3];
    for i in 0..3 {
        out[i] = opt_buf(t, a[i], bytes, Access::Write)?;
    }
    Ok(out)
}

/// The arguments select and pselect6 share: nfds, the three fd_sets and the timeout (a
/// timeval or a timespec, 16 bytes either way), which both update.
fn select_args(
    t: &Thread,
    a: [u64; 6],
) -> Result<(u64, [HostPtr<'static>; 3], HostPtr<'static>), Errno> {
    let nfds = a[0] as u32 as i32;
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    let s = fdsets(t, &a[1..4], nfds as u64)?;
    let timeout = opt_buf(t, a[4], 16, Access::Write)?;
    Ok((nfds as u64, s, timeout))
}

pub(crate) fn sys_select(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (nfds, s, tv) = select_args(t, a)?;
    host!(SYS_select, nfds, s[0], s[1], s[2], tv)
}

pub(crate) fn sys_pselect6(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (nfds, s, ts) = select_args(t, a)?;
    // The sixth argument points to { const sigset_t *ss; size_t ss_len; }.
    let mut sig = [0u64; 2];
    let sigp = if a[5] != 0 {
        sig[0] = t.mem().read_u64(a[5])?;
        sig[1] = t.mem().read_u64(a[5] + 8)?;
        sig[0] = sigmask(t, sig[0], sig[1])?.addr();
        HostPtr::of(&sig)
    } else {
        HostPtr::NULL
    };
    host!(SYS_pselect6, nfds, s[0], s[1], s[2], ts, sigp)
}

pub(crate) fn sys_epoll_create(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[0] as u32 as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    host!(SYS_epoll_create1)
}

pub(crate) fn sys_epoll_create1(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_epoll_create1, a[0] as u32 as u64)
}

pub(crate) fn sys_epoll_ctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let epfd = fd_arg(a[0])?;
    let fd = fd_arg(a[2])?;
    let op = a[1] as u32 as i32;
    let ev = if op == EPOLL_CTL_DEL {
        opt_buf(t, a[3], EPOLL_EVENT, Access::Read)?
    } else {
        buf(t, a[3], EPOLL_EVENT, Access::Read)?
    };
    host!(SYS_epoll_ctl, epfd as u64, op as u32 as u64, fd as u64, ev)
}

/// The arguments the epoll_wait calls share: the epoll descriptor and the events buffer of
/// `maxevents` entries (EINVAL unless 0 < maxevents <= INT_MAX / sizeof(struct epoll_event)).
fn wait_args(t: &Thread, a: [u64; 6]) -> Result<(u64, HostPtr<'static>), Errno> {
    let epfd = fd_arg(a[0])?;
    let max = a[2] as u32 as i32;
    if max <= 0 || max as u64 > (i32::MAX as u64) / EPOLL_EVENT {
        return Err(Errno::EINVAL);
    }
    let ev = buf(t, a[1], max as u64 * EPOLL_EVENT, Access::Write)?;
    Ok((epfd as u64, ev))
}

pub(crate) fn sys_epoll_wait(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (epfd, ev) = wait_args(t, a)?;
    host!(
        SYS_epoll_wait,
        epfd,
        ev,
        a[2] as u32 as u64,
        a[3] as u32 as u64
    )
}

pub(crate) fn sys_epoll_pwait(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (epfd, ev) = wait_args(t, a)?;
    let mask = sigmask(t, a[4], a[5])?;
    host!(
        SYS_epoll_pwait,
        epfd,
        ev,
        a[2] as u32 as u64,
        a[3] as u32 as u64,
        mask,
        a[5]
    )
}

pub(crate) fn sys_epoll_pwait2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (epfd, ev) = wait_args(t, a)?;
    let ts = opt_buf(t, a[3], 16, Access::Read)?;
    let mask = sigmask(t, a[4], a[5])?;
    host!(
        SYS_epoll_pwait2,
        epfd,
        ev,
        a[2] as u32 as u64,
        ts,
        mask,
        a[5]
    )
}
