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

use crate::errno::{Errno, SysResult};
use crate::hostcall::Arg;
use std::sync::atomic::AtomicBool;

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
    "mov rax, -4",
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

/// The host syscall `nr`, as `hostcall::call`, but answering EINTR without waiting when
/// `recorded` (the calling thread's "signal recorded, not yet collected" flag) is set, or is
/// set by the host signal handler before the SYSCALL instruction runs.
pub fn call(nr: i64, a: [Arg<'_>; 6], recorded: &AtomicBool) -> SysResult {
    let mut words = [nr as u64; 7];
    for (w, x) in words[1..].iter_mut().zip(a) {
        *w = x.value();
    }
    // SAFETY: as `hostcall::call`: every pointer argument is a HostPtr valid for the call; the
    // stub reads `words` and the flag, which outlive it, and clobbers only what the SysV ABI
    // lets a callee clobber (rax, rcx, rdx, rsi, rdi, r8-r11).
    let r = unsafe { cetbox_wait_syscall(recorded, &words) };
    // The stub returns the kernel's raw result: -4095..-1 is an error number.
    if (-4095..0).contains(&r) {
        Err(Errno(-r as i32))
    } else {
        Ok(r as u64)
    }
}

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
