//! PI futex calls in flight in the host kernel, so that a mapping change taking write access
//! away from a futex word waits until no host call can still write it.
//!
//! FUTEX_LOCK_PI's host call writes the futex word itself (kernel/futex/pi.c
//! `futex_lock_pi_atomic`: a cmpxchg taking a free lock or setting FUTEX_WAITERS, and
//! `fixup_pi_owner` after a handoff), with the host's view of the page, which stays writable
//! when the guest makes it read-only, a shadow stack (munmap, then map_shadow_stack), or
//! unmaps it. Linux's own write faults (EFAULT) once the mapping changed. So a thread
//! registers its word here before it checks the word writable and enters the host, and
//! leaves after the call; a call that took access away (munmap, mprotect, mremap, ...: the
//! syscall layer's shootdown) then waits, before it returns to the guest, until no registered
//! call's word has lost write access. Each host call lasts at most one slice (`lock_pi`,
//! 20 ms), so the wait is bounded. The two sides order themselves with SeqCst fences: either
//! the mapping change sees the registration, or the registered thread's check sees the new
//! page-table entry and does not enter the host.

use crate::process::Thread;
use cetbox_mem::Access;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Registry {
    calls: Mutex<Vec<(i32, u64)>>,
    left: Condvar,
}

/// A registered call; deregisters when dropped.
pub(crate) struct InFlight<'a> {
    reg: &'a Registry,
    entry: (i32, u64),
}

/// Registers thread `t`'s coming host call on the futex word at `addr` and then checks the
/// word writable: None (nothing registered) if it is not.
pub(crate) fn enter(t: &Thread, addr: u64) -> Option<InFlight<'_>> {
    let reg = &t.proc.pi_inflight;
    let entry = (t.tid, addr);
    reg.calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(entry);
    let g = InFlight { reg, entry };
    fence(Ordering::SeqCst);
    if t.mem().check(addr, 4, Access::Write).is_err() {
        return None;
    }
    Some(g)
}

/// Registers the coming host call of thread `tid` (a requeued FUTEX_WAIT_REQUEUE_PI waiter,
/// `requeue_pi`) on the word at `addr`, for it: the caller (its requeuer) holds the mapping
/// lock and has checked the word writable. The waiter takes the registration over with
/// [`adopt`] before its first host call; until that call ends, a mapping change that takes the
/// word away waits for it, as for a call the waiter registered itself.
pub(crate) fn register_for(t: &Thread, tid: i32, addr: u64) {
    t.proc
        .pi_inflight
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((tid, addr));
}

/// Thread `t`'s registration made by [`register_for`], taken over (not checked again:
/// registered while the word was writable, its host call counts as made then).
pub(crate) fn adopt(t: &Thread, addr: u64) -> InFlight<'_> {
    InFlight {
        reg: &t.proc.pi_inflight,
        entry: (t.tid, addr),
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut c = self.reg.calls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = c.iter().position(|&e| e == self.entry) {
            c.swap_remove(i);
        }
        drop(c);
        self.reg.left.notify_all();
    }
}

/// After a mapping change that took access away: waits until no other thread's host PI call
/// is in flight on a word that is no longer writable.
pub(crate) fn quiesce(t: &Thread) {
    fence(Ordering::SeqCst);
    let reg = &t.proc.pi_inflight;
    loop {
        // A process that is ending runs no more guest code and makes no more calls on the
        // word: the wait has nothing left to protect, and the thread is to park at once. A
        // signal for the thread alone (its stop flag) does not end the wait: the mapping
        // change is made and the call must not return before the words are safe (one slice).
        if t.proc.threads.exiting() {
            return;
        }
        let calls: Vec<(i32, u64)> = reg
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .filter(|&(tid, _)| tid != t.tid)
            .collect();
        let stale: Vec<(i32, u64)> = calls
            .into_iter()
            .filter(|&(_, a)| t.mem().check(a, 4, Access::Write).is_err())
            .collect();
        if stale.is_empty() {
            return;
        }
        let c = reg.calls.lock().unwrap_or_else(|e| e.into_inner());
        if stale.iter().any(|s| c.contains(s)) {
            // Bounded by one PI slice; the timeout only guards against a lost notification.
            let _ = reg.left.wait_timeout(c, Duration::from_millis(5));
        }
    }
}
