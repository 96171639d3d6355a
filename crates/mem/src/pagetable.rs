//! One byte of permissions and type per guest page, for the whole 47-bit user address space.
//!
//! The table is a single 32 GiB reservation made with MAP_NORESERVE: the host kernel supplies
//! zero pages lazily, so only the parts describing mapped guest memory cost anything, and a
//! lookup is one load with no locks. Other guest threads may change entries concurrently; every
//! entry is an atomic byte. Changes of entries (`fill`, `clear`, `update`) hold the table's
//! cross-process lock (`xlock`), so a cetbox accessing this guest's memory from another process
//! checks and copies against a table that cannot change meanwhile.

use crate::xlock::Change;
use std::sync::atomic::{AtomicU8, Ordering};

pub const PAGE_SIZE: u64 = 4096;
/// First address above the x86-64 4-level user address space; never guest memory.
pub const USER_LIMIT: u64 = 1 << 47;

/// Bits of a page-table entry.
pub mod page {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    /// A shadow-stack page: only shadow-stack accesses may write it (Intel SDM Vol. 3A §4.6;
    /// Linux arch/x86/mm/fault.c, access_error()).
    pub const SHADOW: u8 = 8;
    /// The CPU holds decoded instructions from this page; a write must invalidate them.
    pub const CODE: u8 = 16;
    /// The page maps file offsets past the end of the file: any access is SIGBUS.
    pub const BEYOND_EOF: u8 = 32;
    /// Some mapping covers the page (distinguishes SEGV_ACCERR from SEGV_MAPERR).
    pub const MAPPED: u8 = 64;
    /// The page has been accessed since it was mapped (or last discarded), so Linux has a
    /// page-table entry for it: the P bit of a protection fault's error code. Pages start
    /// unpopulated, so their first access takes the slow path, which sets it.
    pub const POPULATED: u8 = 128;

    /// Not a combination a mapped page has (BEYOND_EOF without MAPPED): the page was unmapped
    /// while registered with a guest userfaultfd and its host memory is inaccessible, so a
    /// host fault there is a guest access that was blocked on a missing page when the guest
    /// unmapped it (see `recover_unmapped_fault`). Every check refuses it as unmapped.
    pub const UNMAPPED_UFFD: u8 = BEYOND_EOF;

    /// Bits that must be exactly READ for an ordinary read to take the fast path.
    pub const READ_MASK: u8 = READ | BEYOND_EOF;
    /// Bits that must be exactly WRITE for an ordinary write to take the fast path.
    pub const WRITE_MASK: u8 = WRITE | SHADOW | CODE | BEYOND_EOF;
    /// Bits that must be exactly EXEC for a fetch.
    pub const FETCH_MASK: u8 = EXEC | SHADOW | BEYOND_EOF;
    /// Bits that must be exactly SHADOW | WRITE for a shadow-stack access.
    pub const SHADOW_MASK: u8 = SHADOW | WRITE | BEYOND_EOF;
}

pub struct PageTable {
    base: *const AtomicU8,
    /// First guest address the table does not describe (USER_LIMIT unless an address-space
    /// limit made cetbox cover less; addresses at or above it are never guest memory).
    limit: u64,
}

/// The page table of this process's guest (there is one per host process), for the host
/// fault handler, which cannot reach it any other way.
static ACTIVE: std::sync::atomic::AtomicPtr<AtomicU8> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());
static ACTIVE_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Called from the host SIGBUS handler when host memory backing a guest page faulted (a file
/// truncated under a guest file mapping): if `addr` is guest memory, replaces its page with
/// zeros so the interrupted access can complete, marks it past the end of its file so every
/// later guest access gets SIGBUS from the emulator, and returns true. Async-signal-safe: one
/// mmap and atomic byte operations.
pub fn recover_host_fault(addr: u64) -> bool {
    let base = ACTIVE.load(Ordering::Acquire);
    if base.is_null() || addr >= ACTIVE_LIMIT.load(Ordering::Acquire) {
        return false;
    }
    // SAFETY: `base` is the live page-table reservation (cleared before it is unmapped) and
    // addr below its limit keeps the index inside it.
    let cell = unsafe { &*base.add((addr >> 12) as usize) };
    if cell.load(Ordering::Relaxed) & page::MAPPED == 0 {
        return false;
    }
    let pg = addr & !(PAGE_SIZE - 1);
    if crate::host::map_at(
        pg,
        PAGE_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
        true,
    )
    .is_err()
    {
        return false;
    }
    note_replaced(pg);
    cell.fetch_or(page::BEYOND_EOF, Ordering::Relaxed);
    // Later reads of this entry into translated code must see the mark.
    crate::remembered::forget();
    true
}

/// Guest pages whose host memory [`recover_host_fault`] replaced with anonymous zeros: the
/// host mapping there no longer shows the file, so only a new mapping of the file can tell
/// whether the page came back inside it (`AddressSpace::eof_recheck`). 0 is a free slot (page
/// 0 is never guest memory). Written by the host fault handler, hence a fixed array.
static REPLACED: [std::sync::atomic::AtomicU64; 64] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 64];
/// Set when a replaced page found no free slot: from then on every page past the end of its
/// file counts as replaced.
static REPLACED_LOST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that the host memory of guest page `pg` was replaced. Async-signal-safe.
fn note_replaced(pg: u64) {
    if REPLACED.iter().any(|s| s.load(Ordering::Relaxed) == pg) {
        return;
    }
    for s in &REPLACED {
        if s.compare_exchange(0, pg, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
    REPLACED_LOST.store(true, Ordering::Release);
}

/// Whether the host memory of guest page `pg` may have been replaced by
/// [`recover_host_fault`].
pub(crate) fn was_replaced(pg: u64) -> bool {
    REPLACED_LOST.load(Ordering::Acquire)
        || REPLACED.iter().any(|s| s.load(Ordering::Acquire) == pg)
}

/// Forgets the replaced pages in [start, end): the guest unmapped them or cetbox mapped its
/// file there again.
pub(crate) fn forget_replaced(start: u64, end: u64) {
    for s in &REPLACED {
        let v = s.load(Ordering::Acquire);
        if v != 0 && v >= start && v < end {
            let _ = s.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Called from the host SIGSEGV handler: if `addr` lies on a page marked
/// [`page::UNMAPPED_UFFD`] (a guest access blocked on a userfaultfd missing page, woken after
/// another guest thread unmapped the page), gives the page zero-filled read-write host memory
/// so the interrupted access can complete harmlessly, clears the mark (later guest accesses
/// fault in the page-table check, as unmapped), and returns true: the caller then sends the
/// guest the SIGSEGV (SEGV_MAPERR at `addr`) Linux's retried fault raises. Async-signal-safe:
/// one mprotect and atomic byte operations.
pub fn recover_unmapped_fault(addr: u64) -> bool {
    let base = ACTIVE.load(Ordering::Acquire);
    if base.is_null() || addr >= ACTIVE_LIMIT.load(Ordering::Acquire) {
        return false;
    }
    // SAFETY: `base` is the live page-table reservation (cleared before it is unmapped) and
    // addr below its limit keeps the index inside it.
    let cell = unsafe { &*base.add((addr >> 12) as usize) };
    if cell.load(Ordering::Relaxed) != page::UNMAPPED_UFFD {
        return false;
    }
    let pg = addr & !(PAGE_SIZE - 1);
    // The page is the inaccessible anonymous memory `AddressSpace::unmap` left (a new guest
    // mapping there would have replaced the mark first).
    if crate::host::protect(pg, PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE).is_err() {
        return false;
    }
    let _ = cell.compare_exchange(page::UNMAPPED_UFFD, 0, Ordering::Relaxed, Ordering::Relaxed);
    crate::remembered::forget();
    true
}

// SAFETY: the table is only ever accessed through atomic bytes.
unsafe impl Send for PageTable {}
// SAFETY: as above; concurrent readers and writers see whole bytes.
unsafe impl Sync for PageTable {}

impl PageTable {
    /// A table for the whole user address space.
    pub fn new() -> std::io::Result<PageTable> {
        Self::covering(USER_LIMIT)
    }

    /// A table describing guest addresses below `limit` (a power of two up to USER_LIMIT):
    /// limit / 4096 bytes of address space.
    pub fn covering(limit: u64) -> std::io::Result<PageTable> {
        let limit = limit.min(USER_LIMIT);
        let entries = (limit / PAGE_SIZE) as usize;
        // SAFETY: an anonymous private reservation at a kernel-chosen address has no effect on
        // any existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                entries,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `p` is the reservation just made; keeping it out of core dumps only changes
        // what a crash dump contains.
        unsafe {
            libc::madvise(p, entries, libc::MADV_DONTDUMP);
        }
        ACTIVE_LIMIT.store(limit, Ordering::Release);
        ACTIVE.store(p.cast::<AtomicU8>(), Ordering::Release);
        Ok(PageTable {
            base: p as *const AtomicU8,
            limit,
        })
    }

    /// First address the table does not describe.
    #[inline(always)]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The host address of the entry for guest page 0; the entry for `addr` (below `limit`)
    /// is the byte at `base_addr() + (addr >> 12)`. For generated code, which checks accesses
    /// inline with one byte load (crates/jit); entries are only read there, never written.
    pub fn base_addr(&self) -> u64 {
        self.base as u64
    }

    /// The entry for the page holding `addr`; 0 (nothing mapped) outside the table.
    #[inline(always)]
    pub fn get(&self, addr: u64) -> u8 {
        if addr >= self.limit {
            return 0;
        }
        // SAFETY: addr < limit, so the index is inside the limit/4096-byte reservation.
        unsafe { (*self.base.add((addr >> 12) as usize)).load(Ordering::Relaxed) }
    }

    /// Sets every entry of pages [start, end) (page-aligned, below USER_LIMIT) to `value`.
    pub fn fill(&self, start: u64, end: u64, value: u8) {
        let _remote = crate::xlock::Hold::take(Change::Fill { start, end, value });
        let (s, e) = self.range(start, end);
        for i in s..e {
            // SAFETY: `range` clamps indices to the reservation.
            unsafe { (*self.base.add(i)).store(value, Ordering::Relaxed) };
        }
    }

    /// Sets every entry of pages [start, end) to 0 and gives the table's own memory back to
    /// the host where whole table pages (4096 entries, 16 MiB of guest space) became zero:
    /// a huge PROT_NONE reservation or an unmapped range costs nothing afterwards.
    pub fn clear(&self, start: u64, end: u64) {
        let _remote = crate::xlock::Hold::take(Change::Fill {
            start,
            end,
            value: 0,
        });
        let (s, e) = self.range(start, end);
        const TP: usize = PAGE_SIZE as usize;
        let (inner_s, inner_e) = (s.div_ceil(TP) * TP, e / TP * TP);
        if inner_s >= inner_e {
            self.fill_idx(s, e, 0);
            return;
        }
        self.fill_idx(s, inner_s, 0);
        self.fill_idx(inner_e, e, 0);
        // SAFETY: [inner_s, inner_e) is a page-aligned part of the table reservation; after
        // MADV_DONTNEED a private anonymous mapping reads as zeros, the value stored anyway.
        // Concurrent readers see either the old entry or 0, both valid states of an unmap.
        let r = unsafe {
            libc::madvise(
                self.base.add(inner_s) as *mut libc::c_void,
                inner_e - inner_s,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            self.fill_idx(inner_s, inner_e, 0);
        }
    }

    fn fill_idx(&self, s: usize, e: usize, value: u8) {
        for i in s..e {
            // SAFETY: callers pass indices from `range`, inside the reservation.
            unsafe { (*self.base.add(i)).store(value, Ordering::Relaxed) };
        }
    }

    /// Makes every entry `b` of pages [start, end) `(b & and) | or`, calling `seen` with each
    /// entry as it was when replaced; returns the OR of the bits it changed. Unchanged
    /// entries are not written (a write would make the host back a table page that only ever
    /// held zeros). Each entry changes atomically (compare and swap): other threads set and
    /// clear single bits of the same entries at any time (`set_bits`, `clear_bits`), and
    /// callers that do not hold the mapping lock (madvise) may race with an unmap or
    /// mprotect; a plain load and store would lose their changes or bring a cleared entry
    /// back. The change is a mask so that another process reading the table can apply it
    /// itself (`xlock::Change`).
    pub fn update(&self, start: u64, end: u64, and: u8, or: u8, seen: impl Fn(u8)) -> u8 {
        let _remote = crate::xlock::Hold::take(Change::Mask {
            start,
            end,
            and,
            or,
        });
        let (s, e) = self.range(start, end);
        let mut changed = 0;
        for i in s..e {
            // SAFETY: `range` clamps indices to the reservation.
            let cell = unsafe { &*self.base.add(i) };
            let mut old = cell.load(Ordering::Relaxed);
            loop {
                seen(old);
                let new = (old & and) | or;
                if new == old {
                    break;
                }
                match cell.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        changed |= old ^ new;
                        break;
                    }
                    Err(now) => old = now,
                }
            }
        }
        changed
    }

    /// Clears `bits` in one page's entry; returns whether any was set.
    pub fn clear_bits(&self, addr: u64, bits: u8) -> bool {
        if addr >= self.limit {
            return false;
        }
        // SAFETY: addr < limit.
        let cell = unsafe { &*self.base.add((addr >> 12) as usize) };
        cell.fetch_and(!bits, Ordering::Relaxed) & bits != 0
    }

    /// Sets `bits` in one page's entry; returns the entry as it was (0 outside the table).
    /// One atomic read-modify-write: against `take` on the same entry, either `take` sees the
    /// bits or this sees the entry already cleared.
    pub fn set_bits(&self, addr: u64, bits: u8) -> u8 {
        if addr < self.limit {
            // SAFETY: addr < limit.
            let cell = unsafe { &*self.base.add((addr >> 12) as usize) };
            cell.fetch_or(bits, Ordering::AcqRel)
        } else {
            0
        }
    }

    /// `clear`, returning the OR of the entries it replaced. Each entry that is not zero is
    /// exchanged for zero atomically, so a bit another thread sets at the same time
    /// (`set_bits`: a decoder marking CODE) is either reported here or lands on the zero entry,
    /// where its setter sees the page gone (`AddressSpace::mark_code`). Zero entries are only
    /// read (a huge range that was never accessible keeps its table pages unbacked).
    pub fn take(&self, start: u64, end: u64) -> u8 {
        // A remote accessor must not see the entries change under its check (as in `clear`).
        let _remote = crate::xlock::Hold::take(Change::Fill {
            start,
            end,
            value: 0,
        });
        let (s, e) = self.range(start, end);
        let mut old = 0;
        for i in s..e {
            // SAFETY: `range` clamps indices to the reservation.
            let cell = unsafe { &*self.base.add(i) };
            if cell.load(Ordering::Relaxed) != 0 {
                old |= cell.swap(0, Ordering::AcqRel);
            }
        }
        self.clear(start, end);
        old
    }

    fn range(&self, start: u64, end: u64) -> (usize, usize) {
        let s = (start.min(self.limit) >> 12) as usize;
        let e = (end.min(self.limit).div_ceil(PAGE_SIZE)) as usize;
        (s, e.max(s))
    }
}

impl Drop for PageTable {
    fn drop(&mut self) {
        let _ = ACTIVE.compare_exchange(
            self.base as *mut AtomicU8,
            std::ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        // SAFETY: the reservation was made in `covering` with this size and is no longer
        // referenced.
        unsafe {
            libc::munmap(
                self.base as *mut libc::c_void,
                (self.limit / PAGE_SIZE) as usize,
            );
        }
    }
}
