//! The code cache: host memory holding translated code, with W^X discipline.
//!
//! One shared anonymous mapping mapped twice (the second made by mremap(2) with old_size 0,
//! which maps the same pages again): a read-execute view translated code runs from, and a
//! read-write view at another address that appends write through. No mapping is ever
//! writable and executable, and appending costs no system call (the previous design made
//! pages writable and executable again with two mprotect calls per translated block, which
//! dominated start-up: thousands of blocks per process). Neither view is guest memory, so no
//! guest access can reach them: the page-table check refuses every address the guest has not
//! mapped. The views are shared mappings, so a forked child still sees its parent's cache;
//! it never uses it (a forked thread gets a fresh engine, `Engine::fork`) and unmaps it when
//! the old engine is dropped. The cache is bounded; when an append does not fit, the owner
//! flushes it whole (`reset`) and translates again.

use std::collections::HashMap;

const PAGE: usize = 4096;

pub struct CodeCache {
    /// The read-execute view.
    base: *mut u8,
    /// The read-write view of the same bytes.
    write: *mut u8,
    size: usize,
    /// Bytes in use; code is appended here.
    used: usize,
    /// Guest RIP -> host address of its translation, or `INTERPRET` for blocks the translator
    /// does not handle (so it does not retry them on every visit).
    map: HashMap<u64, u64, BuildRipHasher>,
    /// How many times `reset` emptied the cache: a code address recorded before a reset is
    /// not one to patch after it.
    resets: u64,
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
const EMPTY_SLOT: Slot = Slot {
    rip: EMPTY,
    host: 0,
};

/// The front-table index of `rip`; translated code computes the same (`translate::dispatch`).
pub fn slot(rip: u64) -> usize {
    (rip ^ (rip >> 12)) as usize & (FAST_SLOTS - 1)
}

/// Hashes guest RIPs for `CodeCache::map` with one multiplication (Fibonacci hashing): the
/// keys are addresses the guest cannot choose to collide on any more than it could fill the
/// cache, and std's default SipHash cost a measurable share of start-up.
#[derive(Default, Clone, Copy)]
pub struct BuildRipHasher;

impl std::hash::BuildHasher for BuildRipHasher {
    type Hasher = RipHasher;
    fn build_hasher(&self) -> RipHasher {
        RipHasher(0)
    }
}

pub struct RipHasher(u64);

impl std::hash::Hasher for RipHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The marker of a block left to the interpreter.
pub const INTERPRET: u64 = 0;

// SAFETY: the cache is owned by one engine, which runs on one host thread at a time; the raw
// pointer is only an address of memory the cache owns.
unsafe impl Send for CodeCache {}

impl CodeCache {
    pub fn new(size: usize) -> std::io::Result<CodeCache> {
        let size = size.div_ceil(PAGE) * PAGE;
        let err = std::io::Error::last_os_error;
        // SAFETY: a fresh shared anonymous mapping at a kernel-chosen address, then a second
        // mapping of the same pages (mremap(2) with old_size 0 on a shareable mapping) at
        // another kernel-chosen address, made read-execute; neither affects existing memory,
        // and both are unmapped on failure. No descriptor is involved: a descriptor, however
        // briefly open, shows in the guest's /proc/self/fd listings made meanwhile by another
        // guest thread (tests/guest/proc/fd_listing.c).
        unsafe {
            let write = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if write == libc::MAP_FAILED {
                return Err(err());
            }
            let exec = libc::mremap(write, 0, size, libc::MREMAP_MAYMOVE);
            if exec == libc::MAP_FAILED
                || libc::mprotect(exec, size, libc::PROT_READ | libc::PROT_EXEC) != 0
            {
                let e = err();
                if exec != libc::MAP_FAILED {
                    libc::munmap(exec, size);
                }
                libc::munmap(write, size);
                return Err(e);
            }
            Ok(CodeCache {
                base: exec.cast::<u8>(),
                write: write.cast::<u8>(),
                size,
                used: 0,
                resets: 0,
                map: HashMap::default(),
                fast: vec![EMPTY_SLOT; FAST_SLOTS].into_boxed_slice(),
            })
        }
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
        // SAFETY: [used, used + len) lies inside the read-write view (checked above); only
        // this engine's thread writes it, and it is not executing translated code while it
        // translates. The bytes become visible at the same offset of the executable view; a
        // JMP into them from this thread is ordered after the stores (Intel SDM Vol. 3A
        // §11.6, self-modifying code through a different linear address).
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), self.write.add(self.used), code.len());
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
        self.resets += 1;
    }

    /// The number of resets so far (see `resets`).
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Points the `jmp rel32` at host address `site` (translated code, `translate::link_exit`)
    /// at `target`. Ignored unless both lie in the code in use and the displacement fits.
    pub fn link(&mut self, site: u64, target: u64) {
        let base = self.base as u64;
        let end = base + self.used as u64;
        let inside = |a: u64| a >= base && a < end;
        let Some(disp) = (target as i64).checked_sub(site as i64 + 5) else {
            return;
        };
        let Ok(disp) = i32::try_from(disp) else {
            return;
        };
        if !inside(site) || site + 5 > end || !inside(target) {
            return;
        }
        let off = (site - base) as usize;
        // SAFETY: [off, off + 5) lies inside the read-write view's bytes in use (checked
        // above), where `translate::link_exit` emitted a `jmp rel32` (opcode E9); only this
        // engine's thread writes or runs this cache, and it is not running translated code
        // now. The next jump into the executable view is ordered after the store (Intel SDM
        // Vol. 3A §11.6).
        unsafe {
            let p = self.write.add(off);
            debug_assert_eq!(*p, 0xe9);
            std::ptr::copy_nonoverlapping(disp.to_le_bytes().as_ptr(), p.add(1), 4);
        }
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
        // SAFETY: both views are this cache's own and nothing executes them any more.
        unsafe {
            libc::munmap(self.base.cast::<libc::c_void>(), self.size);
            libc::munmap(self.write.cast::<libc::c_void>(), self.size);
        }
    }
}
