//! Signal syscalls: dispositions, masks, waiting, alternate stacks, sending, and the timers
//! whose expiry is a signal.
//!
//! Sending (kill, tgkill, rt_sigqueueinfo...) and timers (alarm, setitimer, timer_create) are
//! passed to the host kernel: guest pids and tids are host pids and tids, so the host fills
//! siginfo exactly as Linux would, and the signal comes back through cetbox's host handler
//! (`signals::host`) to be delivered to the guest. signalfd is passed through as well; it sees
//! the signals the guest blocks, because the guest mask is the host thread mask. Limits: a
//! signalfd read does not see signals cetbox already collected for delivery (those that
//! arrived unblocked and were blocked again before delivery), and timers with SIGEV_THREAD_ID
//! aimed at a thread of another process behave as on the host.

use crate::errno::{Errno, SysResult};
use crate::hostcall::{host, HostPtr};
use crate::process::Thread;
use crate::signals::{self, deliver, host, SigAction, SigInfo, UNBLOCKABLE};
use cetbox_mem::Access;

const SIGSET_SIZE: u64 = 8;

fn read_action(t: &Thread, addr: u64) -> Result<SigAction, Errno> {
    let mut b = [0u8; 32];
    t.mem().read_bytes(addr, &mut b)?;
    let q = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    Ok(SigAction {
        handler: q(0),
        flags: q(8),
        restorer: q(16),
        mask: q(24),
    })
}

fn write_action(t: &Thread, addr: u64, a: &SigAction) -> Result<(), Errno> {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&a.handler.to_le_bytes());
    b[8..16].copy_from_slice(&a.flags.to_le_bytes());
    b[16..24].copy_from_slice(&a.restorer.to_le_bytes());
    b[24..32].copy_from_slice(&a.mask.to_le_bytes());
    t.mem().write_bytes(addr, &b)?;
    Ok(())
}

/// Drops pending instances of `sig` that cetbox holds (the host kernel drops its own when the
/// host disposition becomes SIG_IGN or SIG_DFL-ignore).
fn flush_pending(t: &mut Thread, sig: i32) {
    t.signals.pending.retain(|s| s.signo != sig);
    t.proc.signals.pending().retain(|s| s.signo != sig);
}

pub(crate) fn rt_sigaction(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let sig = a[0] as i32;
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if a[1] != 0 {
        Some(read_action(t, a[1])?)
    } else {
        None
    };
    if !signals::valid(sig)
        || (new.is_some() && (sig == signals::SIGKILL || sig == signals::SIGSTOP))
    {
        return Err(Errno::EINVAL);
    }
    let old = t.proc.signals.action(sig);
    if let Some(mut n) = new {
        n.flags &= signals::SA_KNOWN;
        n.mask &= !UNBLOCKABLE;
        t.proc.signals.set_action(sig, n);
        if signals::ignored_by(&n, sig) {
            flush_pending(t, sig);
        }
        host::sync_action(&t.proc, sig);
    }
    if a[2] != 0 {
        write_action(t, a[2], &old)?;
    }
    Ok(0)
}

pub(crate) fn rt_sigprocmask(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let old = t.signals.mask;
    if a[1] != 0 {
        let set = t.mem().read_u64(a[1])? & !UNBLOCKABLE;
        let new = match a[0] as i32 {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        deliver::set_mask(t, new);
    }
    if a[2] != 0 {
        t.mem().write_u64(a[2], old)?;
    }
    Ok(0)
}

pub(crate) fn rt_sigreturn(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    deliver::sigreturn(t);
    Ok(0)
}

/// Blocked signals pending for the thread: those cetbox holds and those the host kernel holds.
fn pending_set(t: &mut Thread) -> u64 {
    host::collect(t);
    let mut set = host::host_pending();
    for s in t
        .signals
        .pending
        .iter()
        .chain(t.proc.signals.pending().iter())
    {
        if signals::valid(s.signo) {
            set |= signals::bit(s.signo);
        }
    }
    set & t.signals.mask
}

pub(crate) fn rt_sigpending(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set = pending_set(t);
    let n = a[1] as usize;
    t.mem().write_bytes(a[0], &set.to_le_bytes()[..n])?;
    Ok(0)
}

/// Sleeps with `mask` blocked until a signal it does not block is pending.
fn wait_with_mask(t: &mut Thread, mask: u64) {
    // Everything blocked on the host while we look, so a signal cannot slip in between the
    // check and the sleep; rt_sigsuspend then unblocks atomically.
    host::set_host_mask(!0);
    t.signals.mask = mask & !UNBLOCKABLE;
    let waiting = crate::procview::Waiting::begin();
    while !deliver::has_deliverable(t, t.signals.mask) {
        host::suspend(t.signals.mask);
    }
    drop(waiting);
    host::set_host_mask(t.signals.mask);
}

pub(crate) fn rt_sigsuspend(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[1] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = t.mem().read_u64(a[0])? & !UNBLOCKABLE;
    let old = t.signals.mask;
    wait_with_mask(t, new);
    t.signals.saved_mask = Some(old);
    Err(signals::ERESTARTNOHAND)
}

pub(crate) fn pause(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    let m = t.signals.mask;
    wait_with_mask(t, m);
    Err(signals::ERESTARTNOHAND)
}

pub(crate) fn rt_sigtimedwait(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let these = t.mem().read_u64(a[0])? & !UNBLOCKABLE;
    let ts = if a[2] != 0 {
        let sec = t.mem().read_u64(a[2])? as i64;
        let nsec = t.mem().read_u64(a[2] + 8)? as i64;
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        })
    } else {
        None
    };
    // Waited-for signals stay in the host kernel while we look at our own lists.
    host::set_host_mask(t.signals.mask | these);
    host::collect(t);
    let mine = deliver::dequeue(t, !these);
    let res = match mine {
        Some(info) => Ok(info),
        // A signal it does not wait for is pending and unblocked (it may have arrived while
        // this call began, before `collect`): Linux's wait ends at once with EINTR.
        None if deliver::has_deliverable(t, t.signals.mask) => Err(Errno::EINTR),
        None => {
            let mut hi: libc::siginfo_t = unsafe_zeroed_siginfo();
            let set = these;
            let tsp = ts.as_ref().map_or(HostPtr::NULL, HostPtr::of);
            let zero = [0i64; 2];
            let hip = HostPtr::of_mut(&mut hi);
            let setp = HostPtr::of(&set);
            // 8 is the kernel's sigset size.
            let wait = crate::hostcall::args([setp.into(), hip.into(), tsp.into(), 8u64.into()]);
            let now = crate::hostcall::args([
                setp.into(),
                hip.into(),
                HostPtr::of(&zero).into(),
                8u64.into(),
            ]);
            // A signal the guest does not wait for, recorded after `collect` above, ends the
            // wait (`waitcall`), unless a waited-for one is there already: the zero-timeout
            // form decides (do_sigtimedwait dequeues before it sleeps).
            let r = crate::waitcall::Waiter::of(t)
                .call_or_skip(libc::SYS_rt_sigtimedwait, wait)
                .unwrap_or_else(
                    || match crate::hostcall::call(libc::SYS_rt_sigtimedwait, now) {
                        Err(Errno::EAGAIN) => Err(Errno::EINTR),
                        r => r,
                    },
                );
            r.map(|_| SigInfo::from_host(&hi))
        }
    };
    host::set_host_mask(t.signals.mask);
    let info = res?;
    if a[1] != 0 {
        t.mem().write_bytes(a[1], &info.to_bytes())?;
    }
    Ok(info.signo as u64)
}

fn unsafe_zeroed_siginfo() -> libc::siginfo_t {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

pub(crate) fn sigaltstack(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let new = if a[0] != 0 {
        let mut b = [0u8; 24];
        t.mem().read_bytes(a[0], &mut b)?;
        Some((
            u64::from_le_bytes(b[0..8].try_into().unwrap()),
            i32::from_le_bytes(b[8..12].try_into().unwrap()),
            u64::from_le_bytes(b[16..24].try_into().unwrap()),
        ))
    } else {
        None
    };
    let old = t.signals.altstack;
    let old_flags = old.state(t.cpu.gpr[4]) | (old.flags & signals::SS_AUTODISARM);
    if let Some((sp, flags, size)) = new {
        let rsp = t.cpu.gpr[4];
        deliver::set_altstack(t, rsp, sp, flags, size)?;
    }
    if a[1] != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&old.sp.to_le_bytes());
        b[8..12].copy_from_slice(&old_flags.to_le_bytes());
        b[16..24].copy_from_slice(&old.size.to_le_bytes());
        t.mem().write_bytes(a[1], &b)?;
    }
    Ok(0)
}

// ------------------------------------------------------------------ sending

pub(crate) fn kill(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_kill, a[0] as i32 as u64, a[1] as i32 as u64)
}

pub(crate) fn tkill(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_tkill, a[0] as i32 as u64, a[1] as i32 as u64)
}

pub(crate) fn tgkill(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(
        libc::SYS_tgkill,
        a[0] as i32 as u64,
        a[1] as i32 as u64,
        a[2] as i32 as u64
    )
}

fn read_info(t: &Thread, addr: u64) -> Result<[u8; 128], Errno> {
    let mut b = [0u8; 128];
    t.mem().read_bytes(addr, &mut b)?;
    Ok(b)
}

pub(crate) fn rt_sigqueueinfo(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let info = read_info(t, a[2])?;
    host!(
        libc::SYS_rt_sigqueueinfo,
        a[0] as i32 as u64,
        a[1] as i32 as u64,
        HostPtr::of(&info)
    )
}

pub(crate) fn rt_tgsigqueueinfo(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let info = read_info(t, a[3])?;
    host!(
        libc::SYS_rt_tgsigqueueinfo,
        a[0] as i32 as u64,
        a[1] as i32 as u64,
        a[2] as i32 as u64,
        HostPtr::of(&info)
    )
}

pub(crate) fn pidfd_send_signal(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let info = if a[2] != 0 {
        Some(read_info(t, a[2])?)
    } else {
        None
    };
    let p = info.as_ref().map_or(HostPtr::NULL, HostPtr::of);
    host!(
        libc::SYS_pidfd_send_signal,
        a[0] as i32 as u64,
        a[1] as i32 as u64,
        p,
        a[3] as u32 as u64
    )
}

// ------------------------------------------------------------------ timers

/// A guest buffer as a host pointer (null stays null).
fn ptr(t: &Thread, addr: u64, len: u64, access: Access) -> Result<HostPtr<'static>, Errno> {
    // Outputs go through a bounce buffer (see usermem).
    crate::syscalls::fs::opt_buf(t, addr, len, access)
}

pub(crate) fn alarm(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    // SAFETY: integer argument only.
    Ok(unsafe { libc::alarm(a[0] as u32) } as u64)
}

pub(crate) fn getitimer(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let out = ptr(t, a[1], 32, Access::Write)?;
    host!(libc::SYS_getitimer, a[0] as i32 as u64, out)
}

pub(crate) fn setitimer(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let new = ptr(t, a[1], 32, Access::Read)?;
    let old = ptr(t, a[2], 32, Access::Write)?;
    host!(libc::SYS_setitimer, a[0] as i32 as u64, new, old)
}

pub(crate) fn timer_create(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let sev = ptr(t, a[1], 64, Access::Read)?;
    let id = ptr(t, a[2], 4, Access::Write)?;
    if id.is_null() {
        return Err(Errno::EFAULT);
    }
    // struct sigevent is 64 bytes, timer_t 4.
    host!(libc::SYS_timer_create, a[0] as i32 as u64, sev, id)
}

pub(crate) fn timer_settime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let new = ptr(t, a[2], 32, Access::Read)?;
    let old = ptr(t, a[3], 32, Access::Write)?;
    // struct itimerspec is 32 bytes.
    host!(
        libc::SYS_timer_settime,
        a[0] as i32 as u64,
        a[1] as i32 as u64,
        new,
        old
    )
}

pub(crate) fn timer_gettime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let cur = ptr(t, a[1], 32, Access::Write)?;
    host!(libc::SYS_timer_gettime, a[0] as i32 as u64, cur)
}

pub(crate) fn timer_getoverrun(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_timer_getoverrun, a[0] as i32 as u64)
}

pub(crate) fn timer_delete(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_timer_delete, a[0] as i32 as u64)
}

pub(crate) fn signalfd4(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[2] != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = t.mem().read_u64(a[1])?;
    host!(
        libc::SYS_signalfd4,
        a[0] as i32 as u64,
        HostPtr::of(&mask),
        8,
        a[3] as i32 as u64
    )
}

pub(crate) fn signalfd(t: &mut Thread, a: [u64; 6]) -> SysResult {
    signalfd4(t, [a[0], a[1], a[2], 0, 0, 0])
}
