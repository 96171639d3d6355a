//! The code cache: host memory holding translated code, with W^X discipline.
//!
//! One private anonymous mapping, executable and never writable at the same time: code is
//! appended by making the pages it lands on read-write, copying, and making them read-execute
//! again (mprotect(2)). Private anonymous memory is copied on fork, so a forked child's
//! translations never write into its parent's cache. The cache is bounded; when an
//! append does not fit, the owner flushes it whole (`reset`) and translates again.

use std::collections::HashMap;

const PAGE: usize = 4096;

pub struct CodeCache {
    base: *mut u8,
    size: usize,
    /// Bytes in use; code is appended here.
    used: usize,
    /// Guest RIP -> host address of its translation, or `INTERPRET` for blocks the translator
    /// does not handle (so it does not retry them on every visit).
    map: HashMap<u64, u64>,
    /// A direct-mapped front for `map`, also probed by translated code for indirect branches
    /// and returns (`translate::dispatch`); `rip` is `EMPTY` when unused.
    fast: Box<[Slot]>,
}

/// One entry of the direct-mapped front table, in the layout translated code reads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Slot {
    pub rip: u64,
    /// The translation's host address, or `INTERPRET`.
    pub host: u64,
}

/// Entries of the front table (a power of two).
pub const FAST_SLOTS: usize = 4096;
/// Never a guest RIP that is looked up (not canonical).
const EMPTY: u64 = u64::MAX;
const EMPTY_SLOT: Slot = Slot { rip: EMPTY, host: 0 };

/// The front-table index of `rip`; translated code computes the same (`translate::dispatch`).
pub fn slot(rip: u64) -> usize {
    (rip ^ (rip >> 12)) as usize & (FAST_SLOTS - 1)
}

/// The marker of a block left to the interpreter.
pub const INTERPRET: u64 = 0;

// SAFETY: the cache is owned by one engine, which runs on one host thread at a time; the raw
// pointer is only an address of memory the cache owns.
unsafe impl Send for CodeCache {}

impl CodeCache {
    pub fn new(size: usize) -> std::io::Result<CodeCache> {
        let size = size.div_ceil(PAGE) * PAGE;
        // SAFETY: a fresh anonymous private mapping affects no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(CodeCache {
            base: p.cast::<u8>(),
            size,
            used: 0,
            map: HashMap::new(),
            fast: vec![EMPTY_SLOT; FAST_SLOTS].into_boxed_slice(),
        })
    }

    /// The host address the next appended code will have.
    pub fn cursor(&self) -> u64 {
        self.base as u64 + self.used as u64
    }

    pub fn remaining(&self) -> usize {
        self.size - self.used
    }

    /// Appends `code` (assembled for the address `cursor()`); returns its address, or None if
    /// it does not fit.
    pub fn append(&mut self, code: &[u8]) -> Option<u64> {
        if code.len() > self.remaining() {
            return None;
        }
        let at = self.cursor();
        let first = (self.used / PAGE) * PAGE;
        let end = (self.used + code.len()).div_ceil(PAGE) * PAGE;
        // SAFETY: [first, end) lies inside the mapping; only this engine's thread executes it,
        // and it is not executing while it translates.
        unsafe {
            let pages = self.base.add(first).cast::<libc::c_void>();
            if libc::mprotect(pages, end - first, libc::PROT_READ | libc::PROT_WRITE) != 0 {
                return None;
            }
            std::ptr::copy_nonoverlapping(code.as_ptr(), self.base.add(self.used), code.len());
            if libc::mprotect(pages, end - first, libc::PROT_READ | libc::PROT_EXEC) != 0 {
                // Not executable: the cache is unusable; report it as full so it is flushed.
                return None;
            }
        }
        self.used += code.len();
        Some(at)
    }

    #[inline]
    pub fn lookup(&mut self, rip: u64) -> Option<u64> {
        let s = slot(rip);
        if self.fast[s].rip == rip {
            return Some(self.fast[s].host);
        }
        let host = *self.map.get(&rip)?;
        self.fast[s] = Slot { rip, host };
        Some(host)
    }

    /// `lookup` without filling the front table.
    pub fn peek(&self, rip: u64) -> Option<u64> {
        self.map.get(&rip).copied()
    }

    pub fn insert(&mut self, rip: u64, host: u64) {
        self.map.insert(rip, host);
        self.fast[slot(rip)] = Slot { rip, host };
    }

    /// Forgets every translation past the first `keep` bytes (the trampolines).
    pub fn reset(&mut self, keep: usize) {
        self.map.clear();
        self.fast.fill(EMPTY_SLOT);
        self.used = keep.min(self.used);
    }

    /// The address of the front table (stable: it is boxed and never reallocated).
    pub fn fast_table(&self) -> u64 {
        self.fast.as_ptr() as u64
    }

    pub fn used(&self) -> usize {
        self.used
    }
}

impl Drop for CodeCache {
    fn drop(&mut self) {
        // SAFETY: the mapping is this cache's own and nothing executes it any more.
        unsafe {
            libc::munmap(self.base.cast::<libc::c_void>(), self.size);
        }
    }
}
