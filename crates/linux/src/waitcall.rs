//! Host calls that wait, made so that a signal recorded for the guest just before the wait
//! began cannot be missed.
//!
//! cetbox records a host signal in its handler and delivers it to the guest later (see
//! `signals::host`). A signal that arrives while a thread is between the guest's SYSCALL and
//! the host call that waits on the guest's behalf (a futex wait) would be recorded and then
//! slept through: the host call starts after the handler returned and waits for a wake-up that
//! may never come (glibc's setuid broadcast, nptl/nptl_setxid.c, waits for every thread to run
//! its SIGSETXID handler while they wait for a lock it holds). Linux checks for pending signals
//! before it sleeps. As QEMU's linux-user does (its "safe_syscall", common-user/safe-syscall.S),
//! the wait goes through a small assembly stub that tests the thread's "signal recorded" flag
//! immediately before its SYSCALL instruction, and the host signal handler, when it interrupts
//! the stub between that test and the SYSCALL, moves the thread to the stub's EINTR exit
//! (`rewind`). A signal before the test sets the flag; one during the call makes the host call
//! return EINTR (cetbox's handlers have no SA_RESTART); one after it finds the call finished.
//!
//! Every host call that may sleep on the guest's behalf goes through here ([`host_wait!`],
//! [`host_wait_on!`] or [`Waiter::call_or_skip`] with the thread's [`Waiter`]): read, write and
//! their vectored forms, recv/send and their msg forms, accept, poll, ppoll, select, pselect6,
//! the epoll waits, nanosleep, clock_nanosleep, wait4, waitid, futex waits and futex_waitv,
//! msgrcv, msgsnd, semop/semtimedop, flock, F_SETLKW/F_OFD_SETLKW, rt_sigtimedwait, splice,
//! tee, sendfile, connect, opening a FIFO (`syscalls/fs/fifo_open.rs`) and the tty requests
//! that wait for output to drain (TCSBRK, TCSBRKP, the draining TCSETS forms). A call
//! whose flag was set before it began is not made, and the syscall layer answers EINTR or
//! restarts it per the guest's SA_RESTART (`signals::deliver`), as Linux does for a signal that
//! arrives while the call sleeps. Linux looks for signals only when the call is about to
//! sleep, so each call site then decides whether it would have slept: with the call's own
//! non-waiting form (MSG_DONTWAIT, RWF_NOWAIT, SPLICE_F_NONBLOCK, a zero timeout, WNOHANG,
//! IPC_NOWAIT, LOCK_NB, F_SETLK: `call_on`, [`nowait`]), whose answer is Linux's when it
//! would not sleep and whose EAGAIN is where Linux would have found the signal. (Testing the
//! descriptor's readiness and then making the waiting call is not enough: another thread can
//! take the data in between, and a ready descriptor can still make the call sleep after a
//! partial transfer.)
//! Calls with no non-waiting form (accept, reads and writes of ttys and other character
//! devices, splice or sendfile with a socket end, connect, the tty drains) are made as waiting
//! calls once the descriptor tested ready, with the thread interrupted by host signals of its
//! own for as long as the call runs ([`poke`]), so a call that sleeps (another thread took the
//! connection or the data in between, a tty write found no room) ends with EINTR or its
//! partial count, as Linux's ends where it finds the signal before sleeping.
//! (copy_file_range takes no pipes or sockets, so it never waits for them.)

use crate::errno::{Errno, SysResult};
use crate::hostcall::Arg;
use crate::process::Thread;
use std::sync::atomic::AtomicBool;

mod nowait;
pub mod poke;

/// What the stub returns at its EINTR exit: no system call returns it (results are
/// addresses, counts or -4095..-1).
const SKIPPED: i64 = i64::MIN;

std::arch::global_asm!(
    ".pushsection .text.cetbox_wait_syscall,\"ax\",@progbits",
    ".globl cetbox_wait_syscall",
    ".type cetbox_wait_syscall,@function",
    // rdi: the flag; rsi: [nr, a0..a5].
    "cetbox_wait_syscall:",
    "mov r11, rdi",
    "mov rax, [rsi]",
    "mov rdi, [rsi + 8]",
    "mov rdx, [rsi + 24]",
    "mov r10, [rsi + 32]",
    "mov r8, [rsi + 40]",
    "mov r9, [rsi + 48]",
    "mov rsi, [rsi + 16]",
    ".globl cetbox_wait_syscall_start",
    "cetbox_wait_syscall_start:",
    "cmp byte ptr [r11], 0",
    "jne cetbox_wait_syscall_eintr",
    "syscall",
    ".globl cetbox_wait_syscall_end",
    "cetbox_wait_syscall_end:",
    "ret",
    ".globl cetbox_wait_syscall_eintr",
    "cetbox_wait_syscall_eintr:",
    "movabs rax, 0x8000000000000000",
    "ret",
    ".size cetbox_wait_syscall, . - cetbox_wait_syscall",
    ".popsection",
);

extern "C" {
    fn cetbox_wait_syscall(flag: *const AtomicBool, call: *const [u64; 7]) -> i64;
    static cetbox_wait_syscall_start: u8;
    static cetbox_wait_syscall_end: u8;
    static cetbox_wait_syscall_eintr: u8;
}

/// A guest thread's handle for host calls that may sleep: its "signal recorded, not yet
/// collected" flag (`signals::host`), or none for a thread the host signal registry could
/// not take (its signals arrive through the process-wide ring, and its waits are plain host
/// calls).
#[derive(Clone, Copy)]
pub struct Waiter(Option<&'static AtomicBool>);

impl Waiter {
    pub fn of(t: &Thread) -> Waiter {
        Waiter(crate::signals::host::recorded_flag(t))
    }

    /// The host syscall `nr`, as `hostcall::call`, but answering EINTR without making it when
    /// a signal was recorded for the thread before its SYSCALL instruction.
    pub fn call(self, nr: i64, a: [Arg<'_>; 6]) -> SysResult {
        self.call_or_skip(nr, a).unwrap_or(Err(Errno::EINTR))
    }

    /// As [`Waiter::call`], but `None` when the call was not made (or was restarted by the
    /// host kernel and then abandoned, which leaves nothing done either), for the calls that
    /// must then write what Linux writes when it finds a signal pending (nanosleep's
    /// remaining time).
    pub fn call_or_skip(self, nr: i64, a: [Arg<'_>; 6]) -> Option<SysResult> {
        // Another process reading this thread's State sees S from here on (`procview`).
        let _waiting = crate::procview::Waiting::begin();
        let Some(flag) = self.0 else {
            return Some(crate::hostcall::call(nr, a));
        };
        let mut words = [nr as u64; 7];
        for (w, x) in words[1..].iter_mut().zip(a) {
            *w = x.value();
        }
        // SAFETY: as `hostcall::call`: every pointer argument is a HostPtr valid for the
        // call; the stub reads `words` and the flag, which outlive it, and clobbers only what
        // the SysV ABI lets a callee clobber (rax, rcx, rdx, rsi, rdi, r8-r11).
        let r = unsafe { cetbox_wait_syscall(flag, &words) };
        if r == SKIPPED {
            return None;
        }
        // The stub returns the kernel's raw result: -4095..-1 is an error number.
        Some(if (-4095..0).contains(&r) {
            Err(Errno(-r as i32))
        } else {
            Ok(r as u64)
        })
    }
}

impl Waiter {
    /// The call `nr` on descriptor `fd`, which sleeps until `fd` is ready for `events`
    /// (POLLIN, POLLOUT): when a signal was recorded before it began, it is still made if it
    /// would not sleep (the descriptor is non-blocking or the call says MSG_DONTWAIT
    /// (`nonblocking`)), and otherwise made in its non-waiting form ([`nowait`]) when `fd` is
    /// ready now, as Linux tests for signals only before it sleeps (fs/pipe.c pipe_read,
    /// net/core/sock.c sk_wait_data): EINTR where that form answers EAGAIN or `fd` is not
    /// ready. A call with no such form is made poked ([`poke`]).
    pub fn call_on(
        self,
        fd: i32,
        events: i16,
        nonblocking: bool,
        nr: i64,
        a: [Arg<'_>; 6],
    ) -> SysResult {
        let _waiting = crate::procview::Waiting::begin();
        self.call_or_skip(nr, a).unwrap_or_else(|| {
            if nonblocking || fd_nonblocking(fd) {
                return crate::hostcall::call(nr, a);
            }
            if !fd_ready(fd, events) {
                return Err(Errno::EINTR);
            }
            match nowait::call_nowait(fd, nr, a) {
                Some(Err(Errno::EAGAIN)) => Err(Errno::EINTR),
                Some(r) => r,
                None => poke::call(nr, a),
            }
        })
    }
}

/// Whether `fd`'s open file description has O_NONBLOCK.
pub fn fd_nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL takes no pointer.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// Whether `fd` is ready for `events` now (or in an error or hang-up state, which also ends a
/// wait).
pub fn fd_ready(fd: i32, events: i16) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one pollfd of ours, no timeout.
    unsafe { libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents != 0 }
}

/// `host_wait!(waiter, nr, args...)`: as `host!`, for a host call that may sleep on the
/// guest's behalf (see the module documentation).
macro_rules! host_wait {
    ($w:expr, $nr:expr $(, $a:expr)* $(,)?) => {
        $crate::waitcall::Waiter::call(
            $w,
            $nr,
            $crate::hostcall::args([$($crate::hostcall::Arg::from($a)),*]),
        )
    };
}
pub(crate) use host_wait;

/// `host_wait_on!(waiter, fd, events, nonblocking, nr, args...)`: [`Waiter::call_on`].
macro_rules! host_wait_on {
    ($w:expr, $fd:expr, $ev:expr, $nb:expr, $nr:expr $(, $a:expr)* $(,)?) => {
        $crate::waitcall::Waiter::call_on(
            $w,
            $fd,
            $ev,
            $nb,
            $nr,
            $crate::hostcall::args([$($crate::hostcall::Arg::from($a)),*]),
        )
    };
}
pub(crate) use host_wait_on;

/// Called by the host signal handler after it recorded a signal for this thread: if the
/// thread was interrupted between the stub's flag test and its SYSCALL (inclusive, so also
/// when the kernel set RIP back to the SYSCALL to restart it), it resumes at the EINTR exit
/// instead. Async-signal-safe.
pub fn rewind(ctx: *mut libc::c_void) {
    // The addresses of the stub's labels (nothing is read through them).
    let (start, end, eintr) = (
        std::ptr::addr_of!(cetbox_wait_syscall_start) as u64,
        std::ptr::addr_of!(cetbox_wait_syscall_end) as u64,
        std::ptr::addr_of!(cetbox_wait_syscall_eintr) as u64,
    );
    // SAFETY: the kernel passes the interrupted thread's ucontext to an SA_SIGINFO handler;
    // rt_sigreturn resumes at the RIP left in it.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize];
        if (start..end).contains(&(*rip as u64)) {
            *rip = eintr as i64;
        }
    }
}
