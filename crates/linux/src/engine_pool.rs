//! Engines of ended threads, kept for the process's next new threads.
//!
//! Each guest thread runs its own engine, and the translator's code cache belongs to that
//! engine (crates/jit/src/cache.rs), so a new thread used to start with nothing translated and
//! paid for its first blocks again: a program that creates many short threads (glibc's
//! nptl/tst-stack4 makes 6,000; thread-per-task servers and test suites do the same) spent
//! most of its time re-translating and interpreting code every earlier thread had already
//! made hot. The translations describe the process's address space, not a thread, and stay
//! valid exactly as long as they would have for the thread that made them (a code-epoch
//! change or a mode change flushes them when the engine next looks a block up), so an ended
//! thread's engine is handed to the next thread the process creates.
//!
//! The engine travels with its thread's stop flag: translated code polls the flag through an
//! address compiled into it (`cetbox_jit::translate::Chain::stop_at`), and a new address
//! would flush the cache. A late store to the flag by whoever stopped the old thread only
//! makes the new one leave translated code once and find nothing to do
//! (`signals::host::collect` clears it).
//!
//! Bounded: at most `KEPT` engines wait, so a process that ends many threads at once keeps a
//! few code caches, not one per thread. A forked child starts with an empty pool (its engines
//! would share code-cache pages with the parent's), and exec empties it (the program's code
//! is gone).

use cetbox_cpu::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many ended threads' engines a process keeps.
const KEPT: usize = 4;

/// An engine and the stop flag its translations poll.
type Kept = (Box<dyn Engine>, Arc<AtomicBool>);

#[derive(Default)]
pub struct EnginePool(Mutex<Vec<Kept>>);

impl EnginePool {
    /// An engine for a new thread, with its stop flag (cleared), if one is kept.
    pub fn take(&self) -> Option<Kept> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
        kept.1.store(false, Ordering::SeqCst);
        Some(kept)
    }

    /// Keeps the engine of a thread that has ended, unless enough are kept already. Called
    /// on the host thread that ran it, after the thread's last guest instruction.
    pub fn give(&self, mut engine: Box<dyn Engine>, stop: Arc<AtomicBool>) {
        engine.retire();
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT {
            kept.push((engine, stop));
        }
    }

    /// Drops every kept engine (exec: they hold the old program's translations).
    pub fn clear(&self) {
        let old = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        drop(old);
    }

    /// In a forked child: drops the engines inherited from the parent, whose code caches are
    /// mappings shared with it, without waiting for a lock some thread of the parent may have
    /// held at the fork (then they are left as they are: never run, only mapped).
    pub fn forget_after_fork(&self) {
        if let Ok(mut kept) = self.0.try_lock() {
            kept.clear();
        }
    }
}
