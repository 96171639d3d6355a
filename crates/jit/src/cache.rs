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

/// Pages of both views are faulted in ahead of the appends at most this many bytes at a
/// time (`populate`), and at first `POPULATE_MIN`, the step doubling with the code in use
/// (a short process translates a few KiB).
const POPULATE: usize = 128 * 1024;
const POPULATE_MIN: usize = 16 * 1024;

pub struct CodeCache {
    /// The read-execute view.
    base: *mut u8,
    /// The read-write view of the same bytes.
    write: *mut u8,
    size: usize,
    /// Bytes in use; code is appended here.
    used: usize,
    /// Bytes from the start whose pages `populate` has faulted in (in both views).
    populated: usize,
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
                populated: 0,
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
        if self.used + code.len() > self.populated {
            self.populate(self.used + code.len());
        }
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

    /// Faults in the pages of both views up to at least `end` (a multiple of the step past
    /// it, within the cache; the step is what is populated already, from `POPULATE_MIN` to
    /// `POPULATE`) with one madvise(2) each (MADV_POPULATE_WRITE for the
    /// read-write view, MADV_POPULATE_READ for the executable one; Linux 5.14), instead of
    /// one page fault per page and view as appends and the first runs of new code reach them:
    /// python3's start-up writes about 1,000 pages of code, each faulted in twice. Only a
    /// hint: on failure (an older kernel) the pages fault in on first use as before, and it is
    /// not tried again.
    fn populate(&mut self, end: usize) {
        let from = self.populated;
        let step = from.clamp(POPULATE_MIN, POPULATE);
        let to = (end.div_ceil(step) * step).min(self.size);
        self.populated = if to > from { to } else { self.size };
        if to <= from {
            return;
        }
        // SAFETY: [from, to) lies inside both views of this cache (`to` <= size); populating
        // changes no byte and no protection, only which pages are present.
        let ok = unsafe {
            let len = to - from;
            libc::madvise(self.write.add(from).cast(), len, libc::MADV_POPULATE_WRITE) == 0
                && libc::madvise(self.base.add(from).cast(), len, libc::MADV_POPULATE_READ) == 0
        };
        if !ok {
            self.populated = self.size;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends that cross populate boundaries, up to a size that is not a multiple of
    /// `POPULATE`, land intact in the executable view, populate only inside the cache (a
    /// range past it would make madvise fail, which `populated == size` before the end would
    /// show), and go on working after a reset.
    #[test]
    fn appends_populate_ahead_within_the_cache() {
        let size = 2 * POPULATE + 3 * PAGE;
        let mut c = CodeCache::new(size).expect("code cache");
        let mut expect = Vec::new();
        let mut k = 0u8;
        while c.remaining() > 0 {
            let n = (3000 + 977 * k as usize % 9000).min(c.remaining());
            let code: Vec<u8> = (0..n).map(|i| (i as u8) ^ k).collect();
            let before = c.populated;
            let at = c.append(&code).expect("fits");
            assert!(c.populated >= c.used(), "appended past the populated pages");
            let step = before.clamp(POPULATE_MIN, POPULATE);
            let want = if c.used() <= before {
                before
            } else {
                (c.used().div_ceil(step) * step).min(size)
            };
            assert_eq!(c.populated, want, "populated {:#x}", c.populated);
            expect.push((at, code));
            k = k.wrapping_add(1);
        }
        assert!(c.append(&[0x90]).is_none());
        for (at, code) in &expect {
            // SAFETY: `at` and the code's length lie inside the executable view of `c`,
            // which is readable and alive.
            let got = unsafe { std::slice::from_raw_parts(*at as *const u8, code.len()) };
            assert_eq!(got, &code[..]);
        }
        c.reset(0);
        let at = c.append(&[0xc3; 10]).expect("fits after a reset");
        // SAFETY: as above.
        assert_eq!(unsafe { *(at as *const u8) }, 0xc3);
    }
}
