//! Waiting for descriptors: poll, ppoll, select, pselect6 and epoll.
//!
//! The signal masks of ppoll/pselect6/epoll_pwait are given to the host for the duration of
//! the wait: a signal the guest blocks stays pending on the host until the call returns, and
//! one it unblocks interrupts the wait (EINTR). As on Linux, the temporary mask then stays in
//! force until the signal is delivered, and the handler's frame holds the thread's own mask
//! (`keep_mask_on_eintr`), so a signal unblocked just for the wait runs its handler.
//!
//! A signal recorded just before the wait began (`waitcall`) ends it as Linux does: do_poll,
//! do_select and ep_poll look at the descriptors first and answer EINTR only when none is
//! ready, so the wait is then made again with a zero timeout, which decides.

use super::{buf, fd_arg, host, opt_buf};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use crate::signals::{deliver, UNBLOCKABLE};
use crate::waitcall::Waiter;
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
    let timeout = a[2] as u32 as u64;
    or_ready(
        t,
        0,
        SYS_poll,
        [fds.into(), n.into(), timeout.into()],
        2,
        0u64.into(),
    )
}

/// The wait `nr` with `args` through `waitcall` (`wait_masked`); when it was not made because
/// a signal was pending first, the same call with a zero timeout (argument `at` replaced by
/// `zero`): its events if any (Linux also reports what is ready before it looks for signals),
/// EINTR if none. (poll and ppoll write zero revents then; so does Linux, do_sys_poll.)
fn or_ready<const N: usize>(
    t: &mut Thread,
    mask_addr: u64,
    nr: i64,
    args: [crate::hostcall::Arg<'_>; N],
    at: usize,
    zero: crate::hostcall::Arg<'_>,
) -> SysResult {
    let args = crate::hostcall::args(args);
    wait_masked(t, mask_addr, nr, args).unwrap_or_else(|| {
        let mut again = args;
        again[at] = zero;
        match crate::hostcall::call(nr, again) {
            Ok(0) => Err(Errno::EINTR),
            r => r,
        }
    })
}

/// The wait through `waitcall`, for a call with a temporary signal mask at guest address
/// `mask_addr` (0: none). Linux sets that mask before it tests for signals (set_user_sigmask,
/// kernel/signal.c), so a pending signal the mask lets through ends the wait even when the
/// thread's own mask blocks it, and one the mask blocks stays pending while the call sleeps:
/// the wait is made again when the signal recorded just before it is blocked by the mask.
/// `None` when the wait was not made because a signal the mask lets through is pending.
fn wait_masked(
    t: &mut Thread,
    mask_addr: u64,
    nr: i64,
    args: [crate::hostcall::Arg<'_>; 6],
) -> Option<SysResult> {
    if mask_addr == 0 {
        return Waiter::of(t).call_or_skip(nr, args);
    }
    // Read once, as Linux copies it once (`sigmask` checked it readable; a page unmapped since
    // gives EFAULT, as the host's own read of it would).
    let mask = match t.mem().read_u64(mask_addr) {
        Ok(m) => m & !UNBLOCKABLE,
        Err(_) => return Some(Err(Errno::EFAULT)),
    };
    loop {
        if deliver::has_deliverable(t, mask) {
            return None;
        }
        // Skipped: `has_deliverable` collects what was recorded (clearing the flag) and
        // decides again.
        if let Some(r) = Waiter::of(t).call_or_skip(nr, args) {
            return Some(r);
        }
    }
}

/// A wait with a temporary signal mask (guest address `mask_addr`, 0 for none) that ends with
/// EINTR leaves that mask in force and saves the thread's own for the signal frame, as
/// sigsuspend does: Linux restores the saved mask only after delivering the signal that
/// ended the wait (poll_select_finish and epoll_pwait's restore_saved_sigmask_unless,
/// fs/select.c, fs/eventpoll.c; kernel/signal.c).
fn keep_mask_on_eintr(t: &mut Thread, mask_addr: u64, r: SysResult) -> SysResult {
    if mask_addr != 0 && r == Err(Errno::EINTR) {
        // Readable: `sigmask` checked it before the wait.
        if let Ok(m) = t.mem().read_u64(mask_addr) {
            let own = t.signals.mask;
            deliver::set_mask(t, m & !UNBLOCKABLE);
            t.signals.saved_mask = Some(own);
        }
    }
    r
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
    let zero = [0i64; 2];
    let r = or_ready(
        t,
        a[3],
        SYS_ppoll,
        [fds.into(), n.into(), ts.into(), mask.into(), a[4].into()],
        2,
        HostPtr::of(&zero).into(),
    );
    keep_mask_on_eintr(t, a[3], r)
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
    Waiter::of(t)
        .call_or_skip(
            SYS_select,
            crate::hostcall::args([
                nfds.into(),
                s[0].into(),
                s[1].into(),
                s[2].into(),
                tv.into(),
            ]),
        )
        .unwrap_or_else(|| select_ready(nfds, &s, 0))
}

/// After a wait skipped for a recorded signal: whether any descriptor of the three sets is
/// ready (a zero-timeout select on copies, so the guest's sets are left as Linux leaves them
/// when it answers EINTR, core_sys_select); if one is, the guest's select again, which then
/// returns at once (`sig`: pselect6's mask argument, 0 for select).
fn select_ready(nfds: u64, s: &[HostPtr<'static>; 3], sig: u64) -> SysResult {
    let words = nfds.div_ceil(64) as usize;
    // Only the sets the guest gave (each backed by that much guest memory): nfds alone is
    // the guest's, up to 2^31.
    let copy_of = |p: &HostPtr<'static>| vec![0u64; if p.is_null() { 0 } else { words }];
    let mut copies = [copy_of(&s[0]), copy_of(&s[1]), copy_of(&s[2])];
    for (c, p) in copies.iter_mut().zip(s) {
        if !p.is_null() {
            // SAFETY: `fdsets` checked `words` longs of guest memory (or a bounce) there.
            unsafe {
                std::ptr::copy_nonoverlapping(p.as_ptr().cast::<u64>(), c.as_mut_ptr(), words)
            };
        }
    }
    let zero = [0i64; 2];
    let [c0, c1, c2] = &mut copies;
    fn set<'a>(c: &'a mut [u64], p: &HostPtr<'static>) -> HostPtr<'a> {
        if p.is_null() {
            HostPtr::NULL
        } else {
            HostPtr::of_mut(c)
        }
    }
    let (p0, p1, p2) = (set(c0, &s[0]), set(c1, &s[1]), set(c2, &s[2]));
    match host!(SYS_pselect6, nfds, p0, p1, p2, HostPtr::of(&zero), 0u64) {
        Ok(0) => Err(Errno::EINTR),
        Err(e) => Err(e),
        Ok(_) => {
            let zero = [0i64; 2];
            host!(
                SYS_pselect6,
                nfds,
                s[0],
                s[1],
                s[2],
                HostPtr::of(&zero),
                sig
            )
        }
    }
}

pub(crate) fn sys_pselect6(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (nfds, s, ts) = select_args(t, a)?;
    // The sixth argument points to { const sigset_t *ss; size_t ss_len; }.
    let mut sig = [0u64; 2];
    let mut mask_addr = 0;
    let sigp = if a[5] != 0 {
        sig[0] = t.mem().read_u64(a[5])?;
        sig[1] = t.mem().read_u64(a[5] + 8)?;
        mask_addr = sig[0];
        sig[0] = sigmask(t, sig[0], sig[1])?.addr();
        HostPtr::of(&sig)
    } else {
        HostPtr::NULL
    };
    let args = crate::hostcall::args([
        nfds.into(),
        s[0].into(),
        s[1].into(),
        s[2].into(),
        ts.into(),
        sigp.into(),
    ]);
    let r = wait_masked(t, mask_addr, SYS_pselect6, args)
        .unwrap_or_else(|| select_ready(nfds, &s, sigp.addr()));
    keep_mask_on_eintr(t, mask_addr, r)
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
    or_ready(
        t,
        0,
        SYS_epoll_wait,
        [
            epfd.into(),
            ev.into(),
            (a[2] as u32 as u64).into(),
            (a[3] as u32 as u64).into(),
        ],
        3,
        0u64.into(),
    )
}

pub(crate) fn sys_epoll_pwait(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (epfd, ev) = wait_args(t, a)?;
    let mask = sigmask(t, a[4], a[5])?;
    let r = or_ready(
        t,
        a[4],
        SYS_epoll_pwait,
        [
            epfd.into(),
            ev.into(),
            (a[2] as u32 as u64).into(),
            (a[3] as u32 as u64).into(),
            mask.into(),
            a[5].into(),
        ],
        3,
        0u64.into(),
    );
    keep_mask_on_eintr(t, a[4], r)
}

pub(crate) fn sys_epoll_pwait2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (epfd, ev) = wait_args(t, a)?;
    let ts = opt_buf(t, a[3], 16, Access::Read)?;
    let mask = sigmask(t, a[4], a[5])?;
    let zero = [0i64; 2];
    let r = or_ready(
        t,
        a[4],
        SYS_epoll_pwait2,
        [
            epfd.into(),
            ev.into(),
            (a[2] as u32 as u64).into(),
            ts.into(),
            mask.into(),
            a[5].into(),
        ],
        3,
        HostPtr::of(&zero).into(),
    );
    keep_mask_on_eintr(t, a[4], r)
}
