//! Where guest threads may be waiting in the host kernel on a futex, so that a private wake on
//! an address that is no longer guest memory still reaches them.
//!
//! Linux keys a private futex by (mm, address) alone (kernel/futex/core.c `get_futex_key`:
//! no page lookup unless the futex is shared), so a FUTEX_WAKE_PRIVATE wakes a thread waiting
//! there even after the page was unmapped. cetbox passes a private wake to the host only for
//! guest memory, to keep guest wakes away from cetbox's own futexes; for an address that is
//! not guest memory (any more), it asks this registry whether a guest thread may be waiting
//! there: one that entered a wait at that address and has not come back, or an address waiters
//! were requeued to (FUTEX_CMP_REQUEUE and friends), which is remembered without a count (a
//! later wake there can at worst be a spurious wake of a futex user, which every futex user
//! tolerates).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Waits in progress by address (the count of threads in a host wait there).
static WAITING: Mutex<Option<HashMap<u64, u32>>> = Mutex::new(None);
/// Requeue targets (capped: beyond this many, new ones are not remembered).
static REQUEUED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
const MAX_REQUEUED: usize = 4096;

/// A guest thread is in a host futex wait at `addr` while this lives.
pub struct Waiting(u64);

impl Waiting {
    pub fn enter(addr: u64) -> Waiting {
        let mut w = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        *w.get_or_insert_with(HashMap::new).entry(addr).or_default() += 1;
        Waiting(addr)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut w = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = w.as_mut() {
            if let Some(n) = m.get_mut(&self.0) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.0);
                }
            }
        }
    }
}

/// Waiters may have been requeued to `addr`.
pub fn requeued_to(addr: u64) {
    let mut r = REQUEUED.lock().unwrap_or_else(|e| e.into_inner());
    let s = r.get_or_insert_with(HashSet::new);
    if s.len() < MAX_REQUEUED {
        s.insert(addr);
    }
}

/// Whether a guest thread may be waiting in the host at `addr`.
pub fn may_wait_at(addr: u64) -> bool {
    let waiting = WAITING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|m| m.contains_key(&addr));
    waiting
        || REQUEUED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| s.contains(&addr))
}
