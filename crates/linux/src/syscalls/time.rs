//! Clocks and sleeping: passed to the host after the guest buffers are checked. The clocks are
//! the host's (a guest process natively reads the same clocks).

#![allow(non_upper_case_globals)]

use super::fs::{buf, host, opt_buf};
use crate::errno::SysResult;
use crate::hostcall::HostPtr;
use crate::process::Thread;
use crate::waitcall::Waiter;
use cetbox_mem::Access;
use libc::*;

const TIMESPEC: u64 = 16;

pub(crate) fn sys_clock_gettime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tp = buf(t, a[1], TIMESPEC, Access::Write)?;
    host!(SYS_clock_gettime, a[0] as u32 as u64, tp)
}

pub(crate) fn sys_clock_getres(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tp = opt_buf(t, a[1], TIMESPEC, Access::Write)?;
    host!(SYS_clock_getres, a[0] as u32 as u64, tp)
}

/// Setting a clock is the host's decision (EPERM without CAP_SYS_TIME, as natively).
pub(crate) fn sys_clock_settime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tp = buf(t, a[1], TIMESPEC, Access::Read)?;
    host!(SYS_clock_settime, a[0] as u32 as u64, tp)
}

pub(crate) fn sys_gettimeofday(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tv = opt_buf(t, a[0], 16, Access::Write)?;
    let tz = opt_buf(t, a[1], 8, Access::Write)?;
    host!(SYS_gettimeofday, tv, tz)
}

pub(crate) fn sys_settimeofday(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tv = opt_buf(t, a[0], 16, Access::Read)?;
    let tz = opt_buf(t, a[1], 8, Access::Read)?;
    host!(SYS_settimeofday, tv, tz)
}

pub(crate) fn sys_time(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let out = opt_buf(t, a[0], 8, Access::Write)?;
    host!(SYS_time, out)
}

/// nanosleep: on EINTR the host writes the remaining time into `rem`, as Linux does.
pub(crate) fn sys_nanosleep(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let req = buf(t, a[0], TIMESPEC, Access::Read)?;
    let rem = opt_buf(t, a[1], TIMESPEC, Access::Write)?;
    let args = crate::hostcall::args([req.into(), rem.into()]);
    Waiter::of(t)
        .call_or_skip(SYS_nanosleep, args)
        .unwrap_or_else(|| sleep_skipped(CLOCK_MONOTONIC, 0, req, rem, args, SYS_nanosleep))
}

/// A sleep not begun because a signal was recorded first (`waitcall`): Linux's
/// do_nanosleep returns 0 when the timer has already expired (a zero or past request) and
/// otherwise answers the signal with the whole request left, written to `rem` for a relative
/// sleep (hrtimer_nanosleep_restart's remainder).
fn sleep_skipped(
    clock: clockid_t,
    flags: i32,
    req: HostPtr<'static>,
    rem: HostPtr<'static>,
    args: [crate::hostcall::Arg<'_>; 6],
    nr: i64,
) -> SysResult {
    // SAFETY: `req` is a checked 16-byte guest timespec (or its bounce).
    let r = unsafe { std::ptr::read_unaligned(req.as_ptr().cast::<[i64; 2]>()) };
    let expired = if flags & TIMER_ABSTIME != 0 {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the struct we own.
        unsafe { clock_gettime(clock, &mut now) != 0 || (now.tv_sec, now.tv_nsec) >= (r[0], r[1]) }
    } else {
        r == [0, 0]
    };
    // An invalid request or clock: the host's call says what Linux says.
    if expired || r[0] < 0 || !(0..1_000_000_000).contains(&r[1]) {
        return crate::hostcall::call(nr, args);
    }
    if !rem.is_null() {
        // SAFETY: `rem` is a checked writable 16-byte guest timespec (or its bounce).
        unsafe { std::ptr::write_unaligned(rem.as_ptr().cast::<[i64; 2]>(), r) };
    }
    Err(crate::errno::Errno::EINTR)
}

/// clock_nanosleep: TIMER_ABSTIME sleeps never report a remainder (the host ignores `rem`).
pub(crate) fn sys_clock_nanosleep(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let req = buf(t, a[2], TIMESPEC, Access::Read)?;
    let rem = if a[1] as u32 as i32 & TIMER_ABSTIME == 0 {
        opt_buf(t, a[3], TIMESPEC, Access::Write)?
    } else {
        HostPtr::NULL
    };
    let args = crate::hostcall::args([
        (a[0] as u32 as u64).into(),
        (a[1] as u32 as u64).into(),
        req.into(),
        rem.into(),
    ]);
    Waiter::of(t)
        .call_or_skip(SYS_clock_nanosleep, args)
        .unwrap_or_else(|| {
            let (clock, flags) = (a[0] as u32 as clockid_t, a[1] as u32 as i32);
            sleep_skipped(clock, flags, req, rem, args, SYS_clock_nanosleep)
        })
}

pub(crate) fn sys_times(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let out = opt_buf(t, a[0], 32, Access::Write)?;
    host!(SYS_times, out)
}

pub(crate) fn sys_getrusage(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let out = buf(t, a[1], std::mem::size_of::<rusage>() as u64, Access::Write)?;
    host!(SYS_getrusage, a[0] as u32 as u64, out)
}

/// adjtimex/clock_adjtime: modes == 0 is a query anyone may make; changes need privilege.
pub(crate) fn sys_adjtimex(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tx = buf(t, a[0], std::mem::size_of::<timex>() as u64, Access::Write)?;
    host!(SYS_adjtimex, tx)
}

pub(crate) fn sys_clock_adjtime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let tx = buf(t, a[1], std::mem::size_of::<timex>() as u64, Access::Write)?;
    host!(SYS_clock_adjtime, a[0] as u32 as u64, tx)
}
