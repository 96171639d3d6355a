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
    /// A direct-mapped front for `map`: (guest RIP, host address); `EMPTY` when unused.
    fast: Box<[(u64, u64)]>,
}

const FAST_SLOTS: usize = 4096;
/// Never a guest RIP that is looked up (not canonical).
const EMPTY: u64 = u64::MAX;

fn slot(rip: u64) -> usize {
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
            fast: vec![(EMPTY, 0); FAST_SLOTS].into_boxed_slice(),
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
        if self.fast[s].0 == rip {
            return Some(self.fast[s].1);
        }
        let host = *self.map.get(&rip)?;
        self.fast[s] = (rip, host);
        Some(host)
    }

    /// `lookup` without filling the front table.
    pub fn peek(&self, rip: u64) -> Option<u64> {
        self.map.get(&rip).copied()
    }

    pub fn insert(&mut self, rip: u64, host: u64) {
        self.map.insert(rip, host);
        self.fast[slot(rip)] = (rip, host);
    }

    /// Forgets every translation past the first `keep` bytes (the trampolines).
    pub fn reset(&mut self, keep: usize) {
        self.map.clear();
        self.fast.fill((EMPTY, 0));
        self.used = keep.min(self.used);
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
