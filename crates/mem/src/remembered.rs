//! Pages translated code remembers as readable, and forgetting them from a host fault handler.
//!
//! The translator (crates/jit/src/memop.rs, `check_place`) lets each read site of translated
//! code remember the page its last full page-table check allowed, until something may have
//! taken that access away. Every change that takes access away either happens in Rust while
//! this thread is outside translated code and is counted (`AddressSpace::removals`, or
//! [`generation`] below: the next entry into translated code then forgets every page), or,
//! made by another thread, waits for this one to leave (the syscall layer's shootdown). The one
//! change that reaches a thread in the middle of translated code is the host's: a file shrunk
//! under a guest file mapping makes the host raise SIGBUS at the access, and the host fault
//! handler then replaces the page with zeros and marks it past the end of its file
//! ([`crate::recover_host_fault`]), or a userfaultfd wake-up finds its page unmapped
//! ([`crate::recover_unmapped_fault`]). Those run on the faulting thread and call [`forget`]
//! so that no later read of that entry skips the table's verdict, and count the change for
//! the other threads' next entries.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped by every [`forget`] on any thread: a host fault handler changed the page table (a
/// page marked past the end of its file, or a userfaultfd page made accessible again) where
/// no syscall counted it as a removal (`AddressSpace::removals`). The translator keeps its
/// remembered pages from one entry into translated code to the next only while neither this
/// count nor the address space's removals changed (crates/jit/src/lib.rs, `Translator::enter`).
static FORGOTTEN: AtomicU64 = AtomicU64::new(0);

/// How many times [`forget`] ran, on any thread (see `FORGOTTEN`).
pub fn generation() -> u64 {
    FORGOTTEN.load(Ordering::Acquire)
}

/// A slot value no check compares equal to (bit 3 set: the compared value has bits 3-11
/// clear; see crates/jit/src/memop.rs).
pub const NO_PAGE: u64 = 8;

thread_local! {
    /// The remembered-page slots of the translated code this host thread runs: address and
    /// count (0 when none).
    static SLOTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Makes `len` slots at `slots` this host thread's remembered pages. The caller keeps them
/// alive until it calls [`unregister`].
pub fn register(slots: *mut u64, len: usize) {
    SLOTS.with(|s| s.set((slots as usize, len)));
}

/// Forgets the registration of `slots` if it is this thread's.
pub fn unregister(slots: *mut u64) {
    SLOTS.with(|s| {
        if s.get().0 == slots as usize {
            s.set((0, 0));
        }
    });
}

/// Forgets every page this host thread's translated code remembers. Async-signal-safe (a
/// thread-local read and plain stores to memory only this thread uses).
pub fn forget() {
    // Other threads' remembered pages of the same address space learn of the change at their
    // next entry into translated code (an atomic add is async-signal-safe).
    FORGOTTEN.fetch_add(1, Ordering::Release);
    let (at, len) = SLOTS.with(Cell::get);
    for i in 0..len {
        // SAFETY: `register`'s caller keeps the slots alive while registered; only this
        // thread reads or writes them, and the code it interrupted is not writing one (it
        // faulted on a guest access).
        unsafe { std::ptr::write_volatile((at as *mut u64).add(i), NO_PAGE) };
    }
}
