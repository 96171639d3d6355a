//! The guest address space: its mappings (VMAs), the page table derived from them, and checked
//! access to guest memory.

mod bytes;
mod check;
mod eof;
mod mapping;
mod placement;
mod published;
mod residency;
mod scrub;
mod typed;
mod watch;

use crate::faultin::{in_kernel, prefault, touch_for_write, Prefault};
use crate::host::{self, window_end, window_start, RESERVE_END, RESERVE_START};
use crate::pagetable::{page, PageTable, PAGE_SIZE, USER_LIMIT};
use crate::{page_ceil, page_floor, Access, Backing, Fault, FaultKind, Vma, VmaKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub use published::{directory_addr, Record, FLAG_SHADOW, FLAG_SHARED};

/// Why a mapping request failed; the Linux personality turns it into an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No room, or the range collides with cetbox's own memory (ENOMEM).
    NoMemory,
    /// MAP_FIXED_NOREPLACE found a mapping (EEXIST).
    Exists,
    /// The host refused (EACCES for a read-only shared file mapping made writable, ...).
    Host(i32),
}

/// Where `AddressSpace::move_mapping` puts the moved range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveTarget {
    /// Exactly there (MREMAP_FIXED): what is mapped there is unmapped, and a source longer
    /// than the new length is cut to it, under the hold of the mapping lock the move is made
    /// under (mm/mremap.c mremap_to).
    Fixed(u64),
    /// Wherever a new mapping would go, `hint` first when it is usable (0: none).
    Search { hint: u64 },
}

/// Where `AddressSpace::adopt_shared` records a host attach (shmat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptAt {
    /// Wherever a new mapping would go (shmat with a null address).
    Search,
    /// Exactly there, which must be free of guest mappings (Exists otherwise).
    Exactly(u64),
    /// Exactly there, replacing what is mapped there (SHM_REMAP).
    Replace(u64),
}

/// A request to create a mapping; validation of guest arguments is the caller's job.
#[derive(Clone, Debug)]
pub struct MapRequest {
    /// Page-aligned address: the exact place when `fixed`, else a hint (0 for none).
    pub addr: u64,
    /// Length in bytes, page-aligned, non-zero.
    pub len: u64,
    pub prot: u32,
    pub fixed: bool,
    /// MAP_FIXED_NOREPLACE: exact place, but fail with `Exists` if anything is there.
    pub noreplace: bool,
    pub shared: bool,
    pub growsdown: bool,
    /// MAP_32BIT: place the mapping in the first 2 GiB.
    pub low_2g: bool,
    /// Host file descriptor for a file mapping.
    pub fd: Option<i32>,
    pub offset: u64,
    /// Size of the mapped file, so pages past its end raise SIGBUS.
    pub file_size: u64,
    pub kind: VmaKind,
    pub backing: Backing,
}

impl MapRequest {
    pub fn anonymous(addr: u64, len: u64, prot: u32, kind: VmaKind) -> MapRequest {
        MapRequest {
            addr,
            len,
            prot,
            fixed: false,
            noreplace: false,
            shared: false,
            growsdown: false,
            low_2g: false,
            fd: None,
            offset: 0,
            file_size: 0,
            kind,
            backing: Backing::Anonymous,
        }
    }
}

/// Linux's default `stack_guard_gap`: 256 pages kept free below a growsdown VMA.
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// Linux's default `vm.mmap_min_addr`.
pub const MMAP_MIN_ADDR: u64 = 0x10000;

struct Maps {
    /// VMAs keyed by start address; never overlapping.
    vmas: published::VmaTree,
    /// Top-down placement starts below this address.
    mmap_base: u64,
    /// Ranges outside the reservation that the guest unmapped but whose host memory cetbox
    /// keeps (scrubbed, see `host::scrub`) so racing accesses of other guest threads stay
    /// harmless; start -> end. A later guest mapping there takes them back.
    holes: BTreeMap<u64, u64>,
    /// Ranges registered with a guest userfaultfd (start -> end), kept by the Linux
    /// personality (`uffd_registered`). A guest unmap there leaves the host pages
    /// inaccessible instead of scrubbing them, so an access blocked on a missing page and
    /// woken after the unmap faults as it would on Linux (see `unmap_locked`).
    uffd: BTreeMap<u64, u64>,
    /// Ranges the guest unmapped whose host memory still holds the old contents until every
    /// other guest thread has passed an instruction boundary (see `scrub.rs`).
    unscrubbed: Vec<scrub::Unscrubbed>,
    /// The VMA list as other cetbox processes read it (`published.rs`).
    published: published::Published,
    /// Watches of mapping changes for vfork (`watch.rs`).
    watches: watch::Watches,
}

/// Address spaces created so far (the base of each one's `removals`).
static SPACES: AtomicU64 = AtomicU64::new(0);

/// The mapping lock, held by a thread across a host fork (`AddressSpace::try_hold_for_fork`);
/// nothing changes under it, so dropping it publishes nothing.
pub struct ForkHold<'a>(#[allow(dead_code)] std::sync::MutexGuard<'a, Maps>);

pub struct AddressSpace {
    pt: PageTable,
    maps: Mutex<Maps>,
    /// Bumped whenever decoded guest code may be stale (a write to a CODE page; an unmap,
    /// mprotect removing a permission, move or discard of pages holding decoded code or a
    /// shadow stack), so CPUs drop their decoded blocks and translations.
    code_epoch: AtomicU64,
    /// Bumped by every change that takes access away (`removals`).
    removals: AtomicU64,
    /// Bumped whenever the mapping functions take the VMA tree (`vma_generation`): what the
    /// process publishes for other processes' /proc/PID/maps follows it.
    vma_generation: AtomicU64,
    /// Whether the guest ever registered a userfaultfd range: only then can a guest page be
    /// missing on the host in a way cetbox's own accesses must handle (see `faultin`).
    uffd_used: AtomicBool,
    /// The sequence number of the newest entry of `Maps::unscrubbed`, 0 when it is empty: one
    /// load tells the syscall layer whether anything waits to be scrubbed.
    unscrubbed_mark: AtomicU64,
    /// The last sequence number given to an unscrubbed range.
    unscrubbed_seq: AtomicU64,
}

/// The page-table entry for pages of a mapping with `prot`. Pages the guest cannot access at
/// all (PROT_NONE) have entry 0, as if unmapped: their entries are never written, so a huge
/// PROT_NONE reservation costs no table memory; `fault` asks the VMA tree to tell SEGV_ACCERR
/// from SEGV_MAPERR for them.
fn prot_bits(prot: u32, kind: VmaKind) -> u8 {
    let mut b = page::MAPPED;
    if prot & libc::PROT_READ as u32 != 0 {
        b |= page::READ;
    }
    if prot & libc::PROT_WRITE as u32 != 0 {
        b |= page::WRITE;
    }
    if prot & libc::PROT_EXEC as u32 != 0 {
        // x86 has no execute-only pages: exec implies read.
        b |= page::EXEC | page::READ;
    }
    if kind == VmaKind::ShadowStack {
        b |= page::SHADOW;
    }
    if b & (page::READ | page::WRITE | page::EXEC) == 0 {
        return 0;
    }
    b
}

/// The current size of the file a mapping shows, for SIGBUS marking of grown or moved file
/// mappings; 0 (everything beyond EOF) if the file is gone or replaced.
fn file_size_of(path: &str, backing: &Backing) -> u64 {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), backing) {
        (Ok(md), Backing::File { inode, .. }) if md.ino() == *inode => md.size(),
        _ => 0,
    }
}

fn in_reserve(start: u64, end: u64) -> bool {
    host::window_reserved() && start >= window_start() && end <= window_end()
}

/// The host's hard RLIMIT_AS, if finite.
fn host_as_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } != 0 || r.rlim_max == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(r.rlim_max)
}

/// The guest address range a page table may cover under an address-space limit of `limit`
/// bytes: the largest power of two whose table (one byte per page) takes at most an eighth
/// of the limit, at least 64 GiB of guest space, at most the whole user space.
pub fn covered_under(limit: u64) -> u64 {
    let mut c = USER_LIMIT;
    while c > 1 << 36 && c / PAGE_SIZE > limit / 8 {
        c >>= 1;
    }
    c
}

impl AddressSpace {
    /// An empty address space. Reserves the host range guest mappings are placed in, so the
    /// host's own allocations never land where the guest expects free space, and a page
    /// table for the whole 47-bit user space.
    ///
    /// Address-space reservations count against RLIMIT_AS even when nothing backs them
    /// (MAP_NORESERVE), so under a limit too small for them (`ulimit -v` of a batch system or
    /// CI runner) cetbox makes a smaller page table instead, covering the guest addresses
    /// below `covered_under(limit)` (4 TiB under 8 GiB), places guest mappings in the same
    /// proportions of that range (the stack near its top, mmap below, PIE programs at two
    /// thirds), and reserves nothing: the host's own mappings lie far above (its executable,
    /// heap and mmap area are near 0x5555_0000_0000 and 0x7f00_0000_0000), and a guest
    /// mapping is placed with MAP_FIXED_NOREPLACE, so it can never replace one. Guest
    /// mappings above the covered range fail with ENOMEM.
    pub fn new() -> std::io::Result<AddressSpace> {
        let (pt, window) = match Self::full_layout() {
            Ok(pt) => (pt, (RESERVE_START, RESERVE_END, true)),
            Err(e) => {
                let Some(limit) = host_as_limit() else {
                    return Err(e);
                };
                let c = covered_under(limit);
                let pt = PageTable::covering(c)?;
                (pt, (c / 4 * 3, c - c / 64, false))
            }
        };
        host::set_window(window.0, window.1, window.2);
        Ok(AddressSpace {
            pt,
            maps: Mutex::new(Maps {
                vmas: Default::default(),
                mmap_base: window.1,
                holes: BTreeMap::new(),
                uffd: BTreeMap::new(),
                unscrubbed: Vec::new(),
                published: Default::default(),
                watches: Default::default(),
            }),
            code_epoch: AtomicU64::new(0),
            // Each address space counts from its own base, so a count read from one never
            // equals a count of another (the translator keeps remembered pages while the
            // count it saw stays the same: crates/jit/src/lib.rs, `Translator::enter`).
            removals: AtomicU64::new(SPACES.fetch_add(1, Ordering::Relaxed) << 32),
            vma_generation: AtomicU64::new(0),
            uffd_used: AtomicBool::new(false),
            unscrubbed_mark: AtomicU64::new(0),
            unscrubbed_seq: AtomicU64::new(0),
        })
    }

    /// The usual layout: the placement window reserved and a table for all of user space.
    fn full_layout() -> std::io::Result<PageTable> {
        host::reserve(RESERVE_START, RESERVE_END)?;
        PageTable::new().inspect_err(|_| {
            let _ = host::release(RESERVE_START, RESERVE_END);
        })
    }

    /// First address above the guest addresses cetbox can map (USER_LIMIT normally).
    pub fn user_limit(&self) -> u64 {
        self.pt.limit()
    }

    /// Takes the mapping lock for a host fork, if it is free now. A host fork copies the
    /// lock word as it is: a child made while another thread holds the lock would find it
    /// held by a thread that does not exist there, and hang at its first mapping lookup (glibc's
    /// stdlib/tst-arc4random-thread, which forks while other threads run, hung so under the
    /// translator, whose hot-block hints look mappings up). The forking thread holds it across
    /// the fork and drops it in both processes at once. None when another thread holds it:
    /// the caller lets go of its other locks and tries again, so no lock order is imposed.
    pub fn try_hold_for_fork(&self) -> Option<ForkHold<'_>> {
        match self.maps.try_lock() {
            Ok(g) => Some(ForkHold(g)),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(ForkHold(e.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn maps(&self) -> published::MapsGuard<'_> {
        published::MapsGuard::new(self.maps.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Publishes the VMA list for other cetbox processes now (once their lock is installed;
    /// afterwards every change republishes it: `published.rs`).
    pub fn publish_vmas(&self) {
        self.maps().republish_on_release();
    }

    /// The VMA tree, taken to change it: the VMA generation moves on (once the lock is held,
    /// so a reader that saw the new generation and then takes the lock sees the change).
    fn maps_changing(&self) -> published::MapsGuard<'_> {
        let g = self.maps();
        self.vma_generation.fetch_add(1, Ordering::AcqRel);
        g
    }

    /// A number that changes whenever the VMAs may have changed (mmap, munmap, mprotect,
    /// mremap, brk, stack growth, ...): what `/proc/PID/maps` shows can differ only across a
    /// change of it.
    pub fn vma_generation(&self) -> u64 {
        self.vma_generation.load(Ordering::Acquire)
    }

    /// The highest address cetbox may give the guest's stack (top of the placement window).
    pub fn stack_limit(&self) -> u64 {
        window_end()
    }

    /// Sets where top-down placement of non-fixed mappings begins.
    pub fn set_mmap_base(&self, base: u64) {
        self.maps().mmap_base = page_floor(base);
    }

    pub fn mmap_base(&self) -> u64 {
        self.maps().mmap_base
    }

    pub fn page_table(&self) -> &PageTable {
        &self.pt
    }

    /// Sets the entries of [start, end) for a mapping with `prot` (clearing them, and giving
    /// the table's memory back, for PROT_NONE).
    fn fill_prot(&self, start: u64, end: u64, prot: u32, kind: VmaKind) {
        match prot_bits(prot, kind) {
            0 => self.pt.clear(start, end),
            b => self.pt.fill(start, end, b),
        }
    }
}

/// Removes [start, end) from a set of disjoint ranges (start -> end), returning the pieces
/// that were in it.
fn cut_ranges(set: &mut BTreeMap<u64, u64>, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut keys: Vec<u64> = Vec::new();
    if let Some((k, e)) = set.range(..start).next_back() {
        if *e > start {
            keys.push(*k);
        }
    }
    keys.extend(set.range(start..end).map(|(k, _)| *k));
    let mut cut = Vec::new();
    for k in keys {
        let Some(e) = set.remove(&k) else {
            continue;
        };
        if k < start {
            set.insert(k, start);
        }
        if e > end {
            set.insert(end, e);
        }
        cut.push((k.max(start), e.min(end)));
    }
    cut
}
