//! A waiting host call made while a signal is already recorded for the thread, for the calls
//! that have no non-waiting form ([`super::nowait`]): accept, reads and writes of ttys and
//! other character devices, splice and sendfile with a socket end, connect, the tty drain
//! requests.
//!
//! Linux looks for a pending signal where such a call is about to sleep (net/ipv4/
//! inet_connection_sock.c inet_csk_wait_for_connect, drivers/tty/n_tty.c n_tty_read and
//! n_tty_write, net/core/stream.c sk_stream_wait_memory, net/ipv4/af_inet.c
//! inet_wait_for_connect) and answers -ERESTARTSYS there, after whatever it transferred
//! before. The signal cetbox recorded was consumed by its host handler, so the host kernel
//! sees nothing pending and would sleep. Here the thread is interrupted again, by host
//! signals of its own, for as long as the call runs: a POSIX timer directed at the thread
//! (SIGEV_THREAD_ID) fires `CARRIER` every [`PERIOD`], so a call that sleeps ends with EINTR
//! (cetbox's handlers have no SA_RESTART) or its partial count within one period, and a call
//! that does not sleep completes as it would have (a signal pending in the host kernel changes
//! a call only where Linux's would see the guest's signal pending too). The handler drops
//! these signals ([`is_poke`]): their si_value is a random cookie of this process, which no
//! guest can read, so no guest signal is mistaken for one.
//!
//! What a guest can see of it: the timer takes a host timer id for the call's duration, so a
//! guest timer created afterwards gets a later id than natively (Linux hands out ids in
//! sequence, kernel/time/posix-timers.c posix_timer_add); a host tracer (a guest tracer's
//! cetbox, strace) gets a signal-delivery-stop per period, which it passes on.

use crate::errno::SysResult;
use crate::hostcall::{call as host_call, Arg};
use crate::syscalls::ptrace::stop::CARRIER;
use std::sync::atomic::{AtomicU64, Ordering};

/// The interval between two pokes, and the delay before the first.
const PERIOD_NS: i64 = 200_000;
/// Linux's si_code for a POSIX timer's signal (include/uapi/asm-generic/siginfo.h).
const SI_TIMER: i32 = -2;
/// include/uapi/asm-generic/siginfo.h: signal a specific thread.
const SIGEV_THREAD_ID: i32 = 4;

/// The si_value of this process's pokes (0 until the first poke).
static COOKIE: AtomicU64 = AtomicU64::new(0);

fn cookie() -> u64 {
    let c = COOKIE.load(Ordering::Relaxed);
    if c != 0 {
        return c;
    }
    let mut v = 0u64;
    // SAFETY: getrandom writes at most 8 bytes into `v`.
    unsafe { libc::getrandom((&raw mut v).cast::<libc::c_void>(), 8, 0) };
    if v == 0 {
        // No entropy: still nothing a guest signal carries by accident.
        v = 0x706f_6b65_6365_7462 ^ std::process::id() as u64;
    }
    match COOKIE.compare_exchange(0, v, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => v,
        Err(c) => c,
    }
}

/// Whether the host signal `sig` with siginfo `words` is one of this process's pokes (the
/// handler then drops it). Async-signal-safe.
pub fn is_poke(sig: i32, words: &[u64; 16]) -> bool {
    let c = COOKIE.load(Ordering::Relaxed);
    // si_code: the int at byte 8; si_value of a timer's signal: the word at byte 24.
    sig == CARRIER && c != 0 && words[1] as u32 as i32 == SI_TIMER && words[3] == c
}

/// The kernel's struct sigevent for SIGEV_THREAD_ID (64 bytes).
#[repr(C)]
struct KSigevent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [i32; 11],
}

/// The kernel's struct itimerspec.
#[repr(C)]
struct KItimerspec {
    interval: libc::timespec,
    value: libc::timespec,
}

/// rt_sigprocmask(`how`, `set`), the previous mask.
fn sigmask(how: i32, set: u64) -> u64 {
    let mut old = 0u64;
    // SAFETY: valid pointers to 8-byte kernel sigsets.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how as libc::c_long,
            &set as *const u64,
            &mut old as *mut u64,
            8usize,
        );
    }
    old
}

/// The host call `nr` with arguments `a`, the thread poked while it runs (module comment).
/// Without a timer (the host refused one) it is the plain call.
pub fn call(nr: i64, a: [Arg<'_>; 6]) -> SysResult {
    let bit = 1u64 << (CARRIER - 1);
    // CARRIER is never blocked for the guest's sake (signals::host::set_host_mask), but the
    // handler's throttle blocks everything for a thread whose ring is full.
    let old = sigmask(libc::SIG_UNBLOCK, bit);
    let sev = KSigevent {
        value: cookie(),
        signo: CARRIER,
        notify: SIGEV_THREAD_ID,
        // SAFETY: gettid has no preconditions.
        tid: unsafe { libc::gettid() },
        pad: [0; 11],
    };
    let mut id: i32 = -1;
    // SAFETY: the kernel reads `sev` and writes the timer id into `id`, both ours.
    let made = unsafe {
        libc::syscall(
            libc::SYS_timer_create,
            libc::CLOCK_MONOTONIC as libc::c_long,
            &sev as *const KSigevent,
            &mut id as *mut i32,
        )
    } == 0;
    if made {
        let period = libc::timespec {
            tv_sec: 0,
            tv_nsec: PERIOD_NS,
        };
        let its = KItimerspec {
            interval: period,
            value: period,
        };
        // SAFETY: the kernel reads `its`; no old value is asked for.
        unsafe {
            libc::syscall(
                libc::SYS_timer_settime,
                id as libc::c_long,
                0 as libc::c_long,
                &its as *const KItimerspec,
                std::ptr::null_mut::<KItimerspec>(),
            )
        };
    }
    let r = host_call(nr, a);
    if made {
        // A poke still pending arrives as this returns (CARRIER is unblocked), and is dropped.
        // SAFETY: deleting our own timer.
        unsafe { libc::syscall(libc::SYS_timer_delete, id as libc::c_long) };
    }
    if old & bit != 0 {
        sigmask(libc::SIG_SETMASK, old);
    }
    r
}
