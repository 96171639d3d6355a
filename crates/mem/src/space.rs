//! The guest address space: its mappings (VMAs), the page table derived from them, and checked
//! access to guest memory.

use crate::host::{self, window_end, window_start, RESERVE_END, RESERVE_START};
use crate::pagetable::{page, PageTable, PAGE_SIZE, USER_LIMIT};
use crate::{page_ceil, page_floor, Access, Backing, Fault, FaultKind, Vma, VmaKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

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
    vmas: BTreeMap<u64, Vma>,
    /// Top-down placement starts below this address.
    mmap_base: u64,
    /// Ranges outside the reservation that the guest unmapped but whose host memory cetbox
    /// keeps (scrubbed, see `host::scrub`) so racing accesses of other guest threads stay
    /// harmless; start -> end. A later guest mapping there takes them back.
    holes: BTreeMap<u64, u64>,
}

pub struct AddressSpace {
    pt: PageTable,
    maps: Mutex<Maps>,
    /// Bumped whenever guest code may have changed (a write to a CODE page, unmap, mprotect),
    /// so CPUs drop their decoded blocks.
    code_epoch: AtomicU64,
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
                vmas: BTreeMap::new(),
                mmap_base: window.1,
                holes: BTreeMap::new(),
            }),
            code_epoch: AtomicU64::new(0),
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

    fn maps(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
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

    // ---------------------------------------------------------------- mappings

    /// A snapshot of every VMA, in address order.
    pub fn vmas(&self) -> Vec<Vma> {
        self.maps().vmas.values().cloned().collect()
    }

    /// The VMA containing `addr`.
    pub fn find_vma(&self, addr: u64) -> Option<Vma> {
        let m = self.maps();
        m.vmas
            .range(..=addr)
            .next_back()
            .filter(|(_, v)| addr < v.end)
            .map(|(_, v)| v.clone())
    }

    /// Whether [start, end) overlaps any VMA.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        Self::free_in(&self.maps(), start, end)
    }

    fn free_in(m: &Maps, start: u64, end: u64) -> bool {
        if let Some((_, v)) = m.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// The gap Linux keeps free below a VMA (`vm_start_gap`): 256 pages below a growsdown
    /// stack (`stack_guard_gap`), one page below a shadow stack.
    fn start_gap(v: &Vma) -> u64 {
        if v.kind == VmaKind::ShadowStack {
            PAGE_SIZE
        } else if v.growsdown {
            STACK_GUARD_GAP
        } else {
            0
        }
    }

    /// Linux's `unmapped_area_topdown`: the highest `len`-byte range in [floor, below) that
    /// leaves every VMA's start gap free and `own_gap` free bytes below itself.
    fn find_free_in(m: &Maps, len: u64, below: u64, floor: u64, own_gap: u64) -> Option<u64> {
        let need = len.checked_add(own_gap)?;
        // `hi` is the top of the current candidate hole.
        let mut hi = below;
        let mut iter = m.vmas.range(..below).rev().peekable();
        // A VMA that straddles `below` caps the first hole at its start gap.
        if let Some((_, v)) = m.vmas.range(below..).next() {
            hi = hi.min(v.start.saturating_sub(Self::start_gap(v)));
        }
        loop {
            let (lo, next_hi) = match iter.next() {
                Some((_, v)) => {
                    if v.end > below {
                        // Straddles the limit: no room above its start.
                        hi = hi.min(v.start.saturating_sub(Self::start_gap(v)));
                        continue;
                    }
                    (v.end, v.start.saturating_sub(Self::start_gap(v)))
                }
                None => (0, 0),
            };
            let lo = lo.max(floor);
            if hi >= lo && hi - lo >= need {
                return Some(page_floor(hi - len));
            }
            if lo <= floor {
                return None;
            }
            hi = hi.min(next_hi);
        }
    }

    /// Bottom-up search for MAP_32BIT: the lowest free range in [floor, limit).
    fn find_free_bottom_up(m: &Maps, len: u64, floor: u64, limit: u64) -> Option<u64> {
        let mut lo = floor;
        for (_, v) in m.vmas.range(..limit) {
            if v.end <= lo {
                continue;
            }
            let hi = v.start.saturating_sub(Self::start_gap(v));
            if hi > lo && hi - lo >= len {
                break;
            }
            lo = lo.max(v.end);
        }
        (lo.checked_add(len)? <= limit).then_some(lo)
    }

    /// Whether a hint `[h, h + len)` is usable: free, outside every VMA's start gap.
    fn hint_ok(m: &Maps, h: u64, len: u64, limit: u64) -> bool {
        let Some(end) = h.checked_add(len) else {
            return false;
        };
        if end > USER_LIMIT - PAGE_SIZE || end > limit || h < MMAP_MIN_ADDR {
            return false;
        }
        if let Some((_, prev)) = m.vmas.range(..=h).next_back() {
            if prev.end > h {
                return false;
            }
        }
        if let Some((_, next)) = m.vmas.range(h..).next() {
            if end > next.start.saturating_sub(Self::start_gap(next)) {
                return false;
            }
        }
        true
    }

    /// Chooses an address for a non-fixed mapping of `len` bytes (Linux's top-down allocator:
    /// the hint if it is free, else the highest free range below mmap_base). `guard` is the
    /// free space the new mapping needs below itself (one page for a shadow stack).
    pub fn find_free(&self, hint: u64, len: u64, low_2g: bool, guard: u64) -> Option<u64> {
        let m = self.maps();
        if low_2g {
            return Self::find_free_bottom_up(&m, len, 0x4000_0000, 0x8000_0000);
        }
        if hint != 0 {
            let h = page_floor(hint);
            if Self::hint_ok(&m, h, len, self.pt.limit()) {
                // Outside our reservation the host may hold memory there; the map step checks.
                return Some(h);
            }
        }
        Self::find_free_in(&m, len, m.mmap_base, window_start(), guard)
    }

    /// Top-down placement below mmap_base ignoring any hint, with the start address aligned
    /// to `align` (a power of two, at least a page).
    pub fn find_free_aligned(&self, len: u64, align: u64) -> Option<u64> {
        let m = self.maps();
        let align = align.max(PAGE_SIZE);
        let a = Self::find_free_in(
            &m,
            len.checked_add(align - PAGE_SIZE)?,
            m.mmap_base,
            window_start(),
            0,
        )?;
        let top = a + len + align - PAGE_SIZE;
        Some((top - len) & !(align - 1))
    }

    /// Creates a mapping and returns its address.
    pub fn map(&self, req: &MapRequest) -> Result<u64, MapError> {
        match self.map_once(req) {
            Err(MapError::NoMemory) if !req.fixed && !req.noreplace && req.addr != 0 => {
                // The hint was free for the guest but not on the host: search instead.
                let mut r = req.clone();
                r.addr = 0;
                self.map_once(&r)
            }
            r => r,
        }
    }

    fn map_once(&self, req: &MapRequest) -> Result<u64, MapError> {
        let len = page_ceil(req.len);
        if len == 0 {
            return Err(MapError::NoMemory);
        }
        let addr = if req.fixed || req.noreplace {
            req.addr
        } else {
            let guard = if req.kind == VmaKind::ShadowStack {
                PAGE_SIZE
            } else {
                0
            };
            match self.find_free(req.addr, len, req.low_2g, guard) {
                Some(a) => a,
                None => return Err(MapError::NoMemory),
            }
        };
        let end = addr.checked_add(len).ok_or(MapError::NoMemory)?;
        if end > self.pt.limit() || addr < PAGE_SIZE {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps();
        if !Self::free_in(&m, addr, end) {
            if req.noreplace || !req.fixed {
                return Err(MapError::Exists);
            }
            self.unmap_locked(&mut m, addr, end)?;
        }
        // The host side. Inside the reservation we own everything; outside, NOREPLACE makes
        // sure we never clobber cetbox's own memory (holes the guest left are ours to reuse).
        let mut replace = in_reserve(addr, end);
        if !replace {
            replace = Self::claim_holes(&mut m, addr, end);
        }
        let mut host_prot = libc::PROT_READ | libc::PROT_WRITE;
        let mut flags = libc::MAP_PRIVATE;
        let (fd, offset) = match req.fd {
            Some(fd) => (fd, req.offset),
            None => {
                flags |= libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
                (-1, 0)
            }
        };
        if req.shared {
            flags = (flags & !libc::MAP_PRIVATE) | libc::MAP_SHARED;
            if req.fd.is_some() && req.prot & libc::PROT_WRITE as u32 == 0 {
                host_prot = libc::PROT_READ;
            }
        }
        if let Err(e) = host::map_at(addr, len, host_prot, flags, fd, offset, replace) {
            let errno = e.raw_os_error().unwrap_or(libc::ENOMEM);
            return Err(if errno == libc::EEXIST {
                MapError::NoMemory
            } else {
                MapError::Host(errno)
            });
        }
        let vma = Vma {
            start: addr,
            end,
            prot: req.prot,
            shared: req.shared,
            growsdown: req.growsdown,
            kind: req.kind,
            backing: req.backing.clone(),
        };
        self.fill_prot(addr, end, req.prot, req.kind);
        if req.fd.is_some() && prot_bits(req.prot, req.kind) != 0 {
            self.mark_eof(addr, end, req.offset, req.file_size);
        }
        m.vmas.insert(addr, vma);
        Self::merge_around(&mut m, addr, end);
        // No code epoch change: a new mapping takes nothing away (one it replaced was
        // unmapped above, which changed the epoch), so no thread needs to wait for others.
        Ok(addr)
    }

    /// Records as guest memory a shared mapping that `attach` creates on the host at exactly
    /// [addr, addr + len) (a System V shared-memory attach, which only the host kernel can
    /// make). `attach` is told whether it may replace what the host has there (the guest
    /// reservation or memory the guest gave up, always cetbox's), and runs under the mapping
    /// lock. The range must be free for the guest (Exists otherwise).
    pub fn adopt_shared(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        attach: impl FnOnce(bool) -> std::io::Result<()>,
    ) -> Result<(), MapError> {
        let len = page_ceil(len);
        let end = addr.checked_add(len).ok_or(MapError::NoMemory)?;
        if len == 0 || end > self.pt.limit() || addr < MMAP_MIN_ADDR {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps();
        if !Self::free_in(&m, addr, end) {
            return Err(MapError::Exists);
        }
        let replace = in_reserve(addr, end) || Self::claim_holes(&mut m, addr, end);
        attach(replace).map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
        m.vmas.insert(
            addr,
            Vma {
                start: addr,
                end,
                prot,
                shared: true,
                growsdown: false,
                kind: VmaKind::Normal,
                backing: Backing::Anonymous,
            },
        );
        self.fill_prot(addr, end, prot, VmaKind::Normal);
        Ok(())
    }

    /// Marks the pages of [start, end) that map file offsets at or past the end of a file of
    /// `file_size` bytes, starting at file offset `offset`.
    fn mark_eof(&self, start: u64, end: u64, offset: u64, file_size: u64) {
        let eof_page = page_ceil(file_size);
        let first_beyond = start
            .saturating_add(eof_page.saturating_sub(offset))
            .min(end);
        if first_beyond < end {
            self.pt.update(first_beyond, end, |b| b | page::BEYOND_EOF);
        }
    }

    /// Whether `b` directly continues `a` with identical attributes (Linux's vma_merge test).
    fn mergeable(a: &Vma, b: &Vma) -> bool {
        if a.end != b.start
            || a.prot != b.prot
            || a.shared != b.shared
            || a.growsdown != b.growsdown
            || a.kind != b.kind
            || matches!(a.kind, VmaKind::Vdso | VmaKind::Vvar)
        {
            return false;
        }
        match (&a.backing, &b.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::File {
                    path: p1,
                    dev: d1,
                    inode: i1,
                    offset: o1,
                },
                Backing::File {
                    path: p2,
                    dev: d2,
                    inode: i2,
                    offset: o2,
                },
            ) => p1 == p2 && d1 == d2 && i1 == i2 && o1 + a.len() == *o2,
            _ => false,
        }
    }

    /// Merges the VMAs touching [start, end) with their neighbours where Linux would.
    fn merge_around(m: &mut Maps, start: u64, end: u64) {
        let first = m
            .vmas
            .range(..start)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(start);
        let keys: Vec<u64> = m.vmas.range(first..=end).map(|(k, _)| *k).collect();
        let mut cur: Option<u64> = None;
        for k in keys {
            if let Some(c) = cur {
                let (a, b) = (&m.vmas[&c], &m.vmas[&k]);
                if Self::mergeable(a, b) {
                    let b = m.vmas.remove(&k).expect("key from the map");
                    if let Some(a) = m.vmas.get_mut(&c) {
                        a.end = b.end;
                    }
                    continue;
                }
            }
            cur = Some(k);
        }
    }

    /// Grows the mapping that ends at `addr + old_len` in place to `addr + new_len`
    /// (mremap without moving). The VMA holding `addr` must end exactly at `addr + old_len`
    /// and the space after it must be free.
    pub fn grow_in_place(&self, addr: u64, old_len: u64, new_len: u64) -> Result<(), MapError> {
        let old_end = addr.checked_add(old_len).ok_or(MapError::NoMemory)?;
        let new_end = addr.checked_add(new_len).ok_or(MapError::NoMemory)?;
        if new_end <= old_end {
            return Ok(());
        }
        let mut m = self.maps();
        let v = m
            .vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end == old_end && v.start <= addr)
            .ok_or(MapError::NoMemory)?;
        if new_end > (USER_LIMIT - PAGE_SIZE).min(self.pt.limit())
            || !Self::free_in(&m, old_end, new_end)
        {
            return Err(MapError::NoMemory);
        }
        if let Some((_, next)) = m.vmas.range(old_end..).next() {
            if new_end > next.start.saturating_sub(Self::start_gap(next)) {
                return Err(MapError::NoMemory);
            }
        }
        // The host mapping is grown with mremap, which keeps file and shared-memory
        // semantics; inside the reservation the reserved pages are dropped first.
        let reserved = in_reserve(old_end, new_end);
        if reserved {
            host::release(old_end, new_end).map_err(|_| MapError::NoMemory)?;
        } else {
            Self::release_holes(&mut m, old_end, new_end);
        }
        if let Err(e) = host::remap(v.start, v.len(), new_end - v.start, None) {
            if reserved {
                let _ = host::reserve(old_end, new_end);
            }
            return Err(MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)));
        }
        self.fill_prot(old_end, new_end, v.prot, v.kind);
        if let (Backing::File { path, offset, .. }, true) =
            (&v.backing, prot_bits(v.prot, v.kind) != 0)
        {
            let size = file_size_of(path, &v.backing);
            self.mark_eof(v.start, new_end, *offset, size);
        }
        if let Some(vm) = m.vmas.get_mut(&v.start) {
            vm.end = new_end;
        }
        Self::merge_around(&mut m, v.start, new_end);
        Ok(())
    }

    /// Moves [old, old + old_len) (inside one VMA) to `new` with length `new_len` (mremap with
    /// MREMAP_MAYMOVE or MREMAP_FIXED). The target must be free of guest mappings; `dontunmap`
    /// leaves the old range mapped with empty pages (MREMAP_DONTUNMAP).
    pub fn move_mapping(
        &self,
        old: u64,
        old_len: u64,
        new: u64,
        new_len: u64,
        dontunmap: bool,
    ) -> Result<u64, MapError> {
        let old_end = old.checked_add(old_len).ok_or(MapError::NoMemory)?;
        let new_end = new.checked_add(new_len).ok_or(MapError::NoMemory)?;
        if new_end > (USER_LIMIT - PAGE_SIZE).min(self.pt.limit()) || new < MMAP_MIN_ADDR {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps();
        let v = m
            .vmas
            .range(..=old)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end >= old_end)
            .ok_or(MapError::NoMemory)?;
        if !Self::free_in(&m, new, new_end) {
            return Err(MapError::Exists);
        }
        // Outside the reservation, claim the target first so the host move cannot clobber
        // cetbox's own memory.
        if !in_reserve(new, new_end) {
            Self::release_holes(&mut m, new, new_end);
            host::map_at(
                new,
                new_end - new,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
                false,
            )
            .map_err(|_| MapError::NoMemory)?;
        }
        let r = host::remap(old, old_len, new_len, Some((new, dontunmap)));
        if let Err(e) = r {
            if in_reserve(new, new_end) {
                let _ = host::rereserve(new, new_end);
            } else {
                let _ = host::release(new, new_end);
            }
            return Err(MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)));
        }
        // Page entries travel with the pages (decoded code does not).
        let copy_len = old_len.min(new_len);
        // PROT_NONE entries are 0 on both sides already.
        let mut p = if prot_bits(v.prot, v.kind) == 0 {
            copy_len
        } else {
            0
        };
        while p < copy_len {
            let b = self.pt.get(old + p) & !page::CODE;
            self.pt.fill(new + p, new + p + PAGE_SIZE, b);
            p += PAGE_SIZE;
        }
        let moved = v.slice(old, old_end);
        if new_len > copy_len {
            self.fill_prot(new + copy_len, new_end, v.prot, v.kind);
            if let (Backing::File { path, offset, .. }, true) =
                (&moved.backing, prot_bits(v.prot, v.kind) != 0)
            {
                let size = file_size_of(path, &moved.backing);
                self.mark_eof(new, new_end, *offset, size);
            }
        }
        if !dontunmap {
            m.vmas.remove(&v.start);
            if v.start < old {
                m.vmas.insert(v.start, v.slice(v.start, old));
            }
            if v.end > old_end {
                m.vmas.insert(old_end, v.slice(old_end, v.end));
            }
            self.pt.clear(old, old_end);
            if in_reserve(old, old_end) {
                let _ = host::scrub(old, old_end);
            } else if host::map_at(
                old,
                old_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
                false,
            )
            .is_ok()
            {
                Self::note_hole(&mut m, old, old_end);
            }
        } else {
            // The old range keeps its VMA but its pages are gone: drop decoded code.
            self.pt.update(old, old_end, |b| b & !page::CODE);
        }
        m.vmas.insert(
            new,
            Vma {
                start: new,
                end: new_end,
                ..moved
            },
        );
        Self::merge_around(&mut m, new, new_end);
        self.code_epoch.fetch_add(1, Ordering::Release);
        Ok(new)
    }

    /// msync for guest memory (the caller checked the range is mapped).
    pub fn sync(&self, addr: u64, len: u64, flags: i32) -> Result<(), MapError> {
        host::msync(addr, page_ceil(len), flags)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))
    }

    /// mincore for guest memory into a host buffer of one byte per page (the caller checked
    /// the range is mapped).
    pub fn residency(&self, addr: u64, len: u64, out: &mut [u8]) -> Result<(), MapError> {
        host::mincore(addr, page_ceil(len), out)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)))
    }

    /// Records the parts of [start, end) outside the reservation as holes (host memory kept
    /// after a guest unmap).
    fn note_hole(m: &mut Maps, start: u64, end: u64) {
        if !host::window_reserved() {
            m.holes.insert(start, end);
            return;
        }
        for (s, e) in [
            (start, end.min(window_start())),
            (start.max(window_end()), end),
        ] {
            if s < e {
                m.holes.insert(s, e);
            }
        }
    }

    /// Removes [start, end) from the hole list, returning the pieces that were holes.
    fn cut_holes(m: &mut Maps, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut keys: Vec<u64> = Vec::new();
        if let Some((k, e)) = m.holes.range(..start).next_back() {
            if *e > start {
                keys.push(*k);
            }
        }
        keys.extend(m.holes.range(start..end).map(|(k, _)| *k));
        let mut cut = Vec::new();
        for k in keys {
            let Some(e) = m.holes.remove(&k) else {
                continue;
            };
            if k < start {
                m.holes.insert(k, start);
            }
            if e > end {
                m.holes.insert(end, e);
            }
            cut.push((k.max(start), e.min(end)));
        }
        cut
    }

    /// Gives the host memory of holes in [start, end) back to the host, so a NOREPLACE
    /// mapping or an in-place mremap can take the range.
    fn release_holes(m: &mut Maps, start: u64, end: u64) {
        for (s, e) in Self::cut_holes(m, start, end) {
            let _ = host::release(s, e);
        }
    }

    /// Prepares [start, end) (outside the reservation) for a new host mapping. If holes cover
    /// all of it, they are taken over in place (true: map with MAP_FIXED, no window in which
    /// the range is unmapped on the host); otherwise they are released (false: NOREPLACE).
    fn claim_holes(m: &mut Maps, start: u64, end: u64) -> bool {
        let mut cursor = start;
        for (s, e) in m.holes.range(..end) {
            if *e <= cursor {
                continue;
            }
            if *s > cursor {
                break;
            }
            cursor = *e;
            if cursor >= end {
                break;
            }
        }
        if cursor >= end {
            Self::cut_holes(m, start, end);
            true
        } else {
            Self::release_holes(m, start, end);
            false
        }
    }

    /// Removes every mapping in [addr, addr + len).
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), MapError> {
        let end = addr.checked_add(page_ceil(len)).ok_or(MapError::NoMemory)?;
        let mut m = self.maps();
        self.unmap_locked(&mut m, addr, end)
    }

    fn overlapping(m: &Maps, start: u64, end: u64) -> Vec<u64> {
        let mut keys: Vec<u64> = Vec::new();
        if let Some((k, v)) = m.vmas.range(..start).next_back() {
            if v.end > start {
                keys.push(*k);
            }
        }
        keys.extend(m.vmas.range(start..end).map(|(k, _)| *k));
        keys
    }

    fn unmap_locked(&self, m: &mut Maps, start: u64, end: u64) -> Result<(), MapError> {
        let keys = Self::overlapping(m, start, end);
        if keys.is_empty() {
            // Nothing was there: nothing taken away, no code to drop.
            return Ok(());
        }
        // Whether any page removed was accessible: pages of PROT_NONE mappings have no
        // page-table entry (see `prot_bits`), so no other thread can have an access to them in
        // flight or decoded code from them, and removing only those takes nothing away (glibc
        // trims every new thread's malloc arena that way, from a PROT_NONE reservation).
        let mut takes = false;
        for k in keys {
            let v = m.vmas.remove(&k).expect("key from the map");
            takes |= prot_bits(v.prot, v.kind) != 0;
            if v.start < start {
                m.vmas.insert(v.start, v.slice(v.start, start));
            }
            if v.end > end {
                m.vmas.insert(end, v.slice(end, v.end));
            }
            let (s, e) = (v.start.max(start), v.end.min(end));
            // Page table first: from here on new accesses fault; racing ones that passed
            // their check already hit zero pages, never a host hole.
            self.pt.clear(s, e);
            host::scrub(s, e)
                .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)))?;
            Self::note_hole(m, s, e);
        }
        if takes {
            self.code_epoch.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Changes the protection of [addr, addr + len); fails with NoMemory if any page in the
    /// range is unmapped (Linux's ENOMEM), changing nothing.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) -> Result<(), MapError> {
        let end = addr.checked_add(page_ceil(len)).ok_or(MapError::NoMemory)?;
        let mut m = self.maps();
        // Every byte must be covered.
        let keys = Self::overlapping(&m, addr, end);
        // Whether any page loses a permission: only then may other threads hold accesses or
        // decoded code the change invalidates (the code epoch changes, and the syscall layer
        // waits for them); adding permissions, as pthread_create does for a new stack, needs
        // neither.
        let removes = keys.iter().any(|k| m.vmas[k].prot & !prot != 0);
        let mut cursor = addr;
        for k in &keys {
            let v = &m.vmas[k];
            if v.start > cursor {
                return Err(MapError::NoMemory);
            }
            cursor = v.end;
        }
        if cursor < end {
            return Err(MapError::NoMemory);
        }
        for k in keys {
            let v = m.vmas.remove(&k).expect("key from the map");
            if v.start < addr {
                m.vmas.insert(v.start, v.slice(v.start, addr));
            }
            if v.end > end {
                m.vmas.insert(end, v.slice(end, v.end));
            }
            let mut mid = v.slice(addr, end);
            // Shared file mappings are made writable on the host only when the guest asks for
            // write access (the host then checks the file's open mode, giving EACCES). They
            // are never made read-only again: the page table already refuses guest writes,
            // and another guest thread whose write passed its check must not crash cetbox.
            if v.shared
                && matches!(v.backing, Backing::File { .. })
                && prot & libc::PROT_WRITE as u32 != 0
            {
                let hp = libc::PROT_READ | libc::PROT_WRITE;
                host::protect(mid.start, mid.len(), hp)
                    .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EACCES)))?;
            }
            let was_none = prot_bits(mid.prot, mid.kind) == 0;
            mid.prot = prot;
            let keep = page::CODE | page::BEYOND_EOF | page::POPULATED;
            let bits = prot_bits(prot, mid.kind);
            if bits == 0 {
                self.pt.clear(mid.start, mid.end);
            } else {
                self.pt.update(mid.start, mid.end, |b| (b & keep) | bits);
                // PROT_NONE pages kept no entries: mark those past EOF again.
                if let (true, Backing::File { path, offset, .. }) = (was_none, &mid.backing) {
                    let size = file_size_of(path, &mid.backing);
                    self.mark_eof(mid.start, mid.end, *offset, size);
                }
            }
            m.vmas.insert(mid.start, mid);
        }
        Self::merge_around(&mut m, addr, end);
        if removes {
            self.code_epoch.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Extends the VMA starting at `start` downward to `new_start` (stack growth).
    pub fn grow_down(&self, start: u64, new_start: u64) -> Result<(), MapError> {
        if new_start >= start {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps();
        let v = m.vmas.get(&start).cloned().ok_or(MapError::NoMemory)?;
        if !Self::free_in(&m, new_start, start) {
            return Err(MapError::NoMemory);
        }
        if !in_reserve(new_start, start) {
            Self::release_holes(&mut m, new_start, start);
        }
        host::map_at(
            new_start,
            start - new_start,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
            in_reserve(new_start, start),
        )
        .map_err(|_| MapError::NoMemory)?;
        m.vmas.remove(&start);
        self.fill_prot(new_start, start, v.prot, v.kind);
        m.vmas.insert(
            new_start,
            Vma {
                start: new_start,
                ..v
            },
        );
        Ok(())
    }

    /// Forwards madvise advice for guest memory. Advice that may discard pages
    /// (MADV_DONTNEED, MADV_FREE, MADV_REMOVE) also drops decoded code.
    pub fn advise(&self, addr: u64, len: u64, advice: i32) -> Result<(), MapError> {
        host::advise(addr, page_ceil(len), advice)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
        if matches!(
            advice,
            libc::MADV_DONTNEED | libc::MADV_FREE | libc::MADV_REMOVE
        ) {
            // Discarded pages lose their page-table entries (and any decoded code). Only
            // dropping decoded code changes the epoch (which makes the syscall layer wait for
            // other threads); discarding data races with other threads' accesses on Linux
            // too.
            let changed = self.pt.update(addr, addr + page_ceil(len), |b| {
                b & !(page::CODE | page::POPULATED)
            });
            if changed & page::CODE != 0 {
                self.code_epoch.fetch_add(1, Ordering::Release);
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- decoded-code tracking

    /// The current code epoch; a change means decoded blocks may be stale.
    #[inline(always)]
    pub fn code_epoch(&self) -> u64 {
        self.code_epoch.load(Ordering::Acquire)
    }

    /// The code epoch's own cell, for translated code that checks it inline between blocks
    /// (crates/jit); valid as long as this address space lives.
    pub fn code_epoch_cell(&self) -> &AtomicU64 {
        &self.code_epoch
    }

    /// Records that instructions were decoded from the page holding `addr`.
    pub fn mark_code(&self, addr: u64) {
        self.pt.set_bits(addr, page::CODE);
    }

    fn code_written(&self, addr: u64, len: u64) {
        let mut any = false;
        let mut p = page_floor(addr);
        while p < addr + len {
            any |= self.pt.clear_bits(p, page::CODE);
            p += PAGE_SIZE;
        }
        if any {
            self.code_epoch.fetch_add(1, Ordering::Release);
        }
    }

    // ---------------------------------------------------------------- checks

    /// Classifies a failed access at `addr` (whose page entry is `bits`).
    #[cold]
    fn fault(&self, addr: u64, bits: u8, access: Access) -> Fault {
        if bits & page::MAPPED == 0 {
            return self.fault_in(&self.maps(), addr, bits, access);
        }
        self.fault_in_mapped(addr, bits, access)
    }

    /// `fault` for callers holding the mapping lock. An entry without MAPPED is either
    /// unmapped or PROT_NONE (whose entries stay 0): the VMA tree tells.
    #[cold]
    fn fault_in(&self, m: &Maps, addr: u64, bits: u8, access: Access) -> Fault {
        if bits & page::MAPPED == 0 && Self::covering(m, addr).is_some() {
            return Fault {
                addr,
                access,
                kind: FaultKind::Protection,
                present: false,
            };
        }
        self.fault_in_mapped(addr, bits, access)
    }

    /// The VMA holding `addr`.
    fn covering(m: &Maps, addr: u64) -> Option<&Vma> {
        m.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    fn fault_in_mapped(&self, addr: u64, bits: u8, access: Access) -> Fault {
        let kind = if bits & page::MAPPED == 0 {
            FaultKind::NotMapped
        } else if bits & page::BEYOND_EOF != 0 {
            FaultKind::BeyondEof
        } else {
            FaultKind::Protection
        };
        // PROT_NONE pages have no present page-table entry on x86 Linux.
        let present =
            bits & page::POPULATED != 0 && bits & (page::READ | page::WRITE | page::EXEC) != 0;
        Fault {
            addr,
            access,
            kind,
            present,
        }
    }

    #[inline(always)]
    fn allowed(bits: u8, access: Access) -> bool {
        match access {
            Access::Read => bits & page::READ_MASK == page::READ,
            Access::Write => bits & (page::WRITE | page::SHADOW | page::BEYOND_EOF) == page::WRITE,
            Access::Fetch => bits & page::FETCH_MASK == page::EXEC,
            Access::ShadowRead | Access::ShadowWrite => {
                bits & page::SHADOW_MASK == page::SHADOW | page::WRITE
            }
        }
    }

    /// Checks that every byte of [addr, addr + len) allows `access`; the fault names the first
    /// byte that does not. A write also invalidates decoded code in the range.
    #[inline(always)]
    pub fn check(&self, addr: u64, len: u64, access: Access) -> Result<(), Fault> {
        // One page, allowed outright: the common case of CALL's and RET's checks.
        if len.wrapping_sub(1) < PAGE_SIZE
            && addr & (PAGE_SIZE - 1) <= PAGE_SIZE - len
            && Self::allowed_fast(self.pt.get(addr), access)
        {
            return Ok(());
        }
        self.check_slow(addr, len, access)
    }

    #[inline(never)]
    fn check_slow(&self, addr: u64, len: u64, access: Access) -> Result<(), Fault> {
        self.scan(addr, len, access)
            .map_err(|(p, bits)| self.fault(p, bits, access))
    }

    /// `check` for callers holding the mapping lock.
    fn check_in(&self, m: &Maps, addr: u64, len: u64, access: Access) -> Result<(), Fault> {
        self.scan(addr, len, access)
            .map_err(|(p, bits)| self.fault_in(m, p, bits, access))
    }

    /// The work of `check_slow`; a refusal names the first bad address and its entry.
    fn scan(&self, addr: u64, len: u64, access: Access) -> Result<(), (u64, u8)> {
        if len == 0 {
            return Ok(());
        }
        let last = addr
            .checked_add(len - 1)
            .ok_or((USER_LIMIT.max(addr), 0u8))?;
        let mut p = addr;
        let mut code = false;
        loop {
            let bits = self.pt.get(p);
            if !Self::allowed(bits, access) {
                return Err((p, bits));
            }
            if bits & page::POPULATED == 0 {
                self.pt.set_bits(p, page::POPULATED);
            }
            code |= bits & page::CODE != 0;
            let next = page_floor(p) + PAGE_SIZE;
            if next > last {
                break;
            }
            p = next;
        }
        if code && access.is_write() {
            self.code_written(addr, len);
        }
        Ok(())
    }

    /// Checks an access and returns the host pointer to the guest bytes (the same address).
    /// The pointer is valid until the guest unmaps the range.
    #[inline]
    pub fn host_ptr(&self, addr: u64, len: u64, access: Access) -> Result<*mut u8, Fault> {
        self.check(addr, len, access)?;
        Ok(addr as *mut u8)
    }

    // ---------------------------------------------------------------- typed access

    /// Whether an access of `N` bytes at `addr` passes the fast check: inside one page whose
    /// entry allows it outright (a write also needs the page free of decoded code).
    #[inline(always)]
    fn fast_ok<const N: u64>(&self, addr: u64, access: Access) -> bool {
        if addr & (PAGE_SIZE - 1) > PAGE_SIZE - N {
            return false;
        }
        let bits = self.pt.get(addr);
        Self::allowed_fast(bits, access)
    }

    /// `allowed`, but writes to pages holding decoded code fail too (the slow path handles
    /// them: it must invalidate the code).
    #[inline(always)]
    fn allowed_fast(bits: u8, access: Access) -> bool {
        // Unpopulated pages fail too: the slow path populates them (the P bit of later
        // fault error codes).
        const P: u8 = page::POPULATED;
        match access {
            Access::Read => bits & (page::READ_MASK | P) == page::READ | P,
            Access::Write => bits & (page::WRITE_MASK | P) == page::WRITE | P,
            Access::Fetch => bits & (page::FETCH_MASK | P) == page::EXEC | P,
            Access::ShadowRead => bits & (page::SHADOW_MASK | P) == page::SHADOW | page::WRITE | P,
            Access::ShadowWrite => {
                bits & (page::SHADOW_MASK | page::CODE | P) == page::SHADOW | page::WRITE | P
            }
        }
    }

    /// Checks an access of `N` bytes at `addr` on the fast path (one page) or the slow path.
    #[inline(always)]
    fn check_small<const N: u64>(&self, addr: u64, access: Access) -> Result<(), Fault> {
        if self.fast_ok::<N>(addr, access) {
            return Ok(());
        }
        self.check(addr, N, access)
    }

    /// The out-of-line part of the typed reads: full check, then the load.
    #[cold]
    #[inline(never)]
    fn read_slow<const N: u64>(&self, addr: u64) -> Result<u64, Fault> {
        self.check(addr, N, Access::Read)?;
        // SAFETY: checked readable above.
        Ok(unsafe {
            match N {
                1 => std::ptr::read_volatile(addr as *const u8) as u64,
                2 => std::ptr::read_unaligned(addr as *const u16) as u64,
                4 => std::ptr::read_unaligned(addr as *const u32) as u64,
                _ => std::ptr::read_unaligned(addr as *const u64),
            }
        })
    }

    /// The out-of-line part of the typed writes: full check (which also invalidates decoded
    /// code), then the store.
    #[cold]
    #[inline(never)]
    fn write_slow<const N: u64>(&self, addr: u64, v: u64) -> Result<(), Fault> {
        self.check(addr, N, Access::Write)?;
        // SAFETY: checked writable above.
        unsafe {
            match N {
                1 => std::ptr::write_volatile(addr as *mut u8, v as u8),
                2 => std::ptr::write_unaligned(addr as *mut u16, v as u16),
                4 => std::ptr::write_unaligned(addr as *mut u32, v as u32),
                _ => std::ptr::write_unaligned(addr as *mut u64, v),
            }
        }
        Ok(())
    }

    #[inline(always)]
    pub fn read_u8(&self, addr: u64) -> Result<u8, Fault> {
        if self.fast_ok::<1>(addr, Access::Read) {
            // SAFETY: the page table says the guest mapped this byte readable, so it is host
            // memory.
            return Ok(unsafe { std::ptr::read_volatile(addr as *const u8) });
        }
        self.read_slow::<1>(addr).map(|v| v as u8)
    }

    #[inline(always)]
    pub fn read_u16(&self, addr: u64) -> Result<u16, Fault> {
        if self.fast_ok::<2>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u16) });
        }
        self.read_slow::<2>(addr).map(|v| v as u16)
    }

    #[inline(always)]
    pub fn read_u32(&self, addr: u64) -> Result<u32, Fault> {
        if self.fast_ok::<4>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u32) });
        }
        self.read_slow::<4>(addr).map(|v| v as u32)
    }

    #[inline(always)]
    pub fn read_u64(&self, addr: u64) -> Result<u64, Fault> {
        if self.fast_ok::<8>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u64) });
        }
        self.read_slow::<8>(addr)
    }

    #[inline(always)]
    pub fn read_u128(&self, addr: u64) -> Result<u128, Fault> {
        self.check_small::<16>(addr, Access::Read)?;
        // SAFETY: checked readable above.
        Ok(unsafe { std::ptr::read_unaligned(addr as *const u128) })
    }

    /// Reads `size` (1, 2, 4 or 8) bytes zero-extended.
    #[inline(always)]
    pub fn read_sized(&self, addr: u64, size: u32) -> Result<u64, Fault> {
        match size {
            1 => self.read_u8(addr).map(u64::from),
            2 => self.read_u16(addr).map(u64::from),
            4 => self.read_u32(addr).map(u64::from),
            _ => self.read_u64(addr),
        }
    }

    #[inline(always)]
    pub fn write_u8(&self, addr: u64, v: u8) -> Result<(), Fault> {
        if self.fast_ok::<1>(addr, Access::Write) {
            // SAFETY: the page table says the guest mapped this byte writable.
            unsafe { std::ptr::write_volatile(addr as *mut u8, v) };
            return Ok(());
        }
        self.write_slow::<1>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u16(&self, addr: u64, v: u16) -> Result<(), Fault> {
        if self.fast_ok::<2>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u16, v) };
            return Ok(());
        }
        self.write_slow::<2>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), Fault> {
        if self.fast_ok::<4>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u32, v) };
            return Ok(());
        }
        self.write_slow::<4>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), Fault> {
        if self.fast_ok::<8>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u64, v) };
            return Ok(());
        }
        self.write_slow::<8>(addr, v)
    }

    #[inline(always)]
    pub fn write_u128(&self, addr: u64, v: u128) -> Result<(), Fault> {
        self.check_small::<16>(addr, Access::Write)?;
        // SAFETY: checked writable above.
        unsafe { std::ptr::write_unaligned(addr as *mut u128, v) };
        Ok(())
    }

    /// Writes the low `size` (1, 2, 4 or 8) bytes of `v`.
    #[inline(always)]
    pub fn write_sized(&self, addr: u64, size: u32, v: u64) -> Result<(), Fault> {
        match size {
            1 => self.write_u8(addr, v as u8),
            2 => self.write_u16(addr, v as u16),
            4 => self.write_u32(addr, v as u32),
            _ => self.write_u64(addr, v),
        }
    }

    /// Whether a `len`-byte shadow-stack access at `addr` passes the fast check (one page);
    /// `check` decides otherwise.
    #[inline(always)]
    fn shadow_fast(&self, addr: u64, size: u32, access: Access) -> bool {
        match size {
            8 => self.fast_ok::<8>(addr, access),
            4 => self.fast_ok::<4>(addr, access),
            _ => false,
        }
    }

    /// A shadow-stack load of 8 bytes (or 4 with `size` 4).
    #[inline(always)]
    pub fn shadow_read(&self, addr: u64, size: u32) -> Result<u64, Fault> {
        // Any width but 4 accesses 8 bytes below; check what is touched.
        let size = if size == 4 { 4 } else { 8 };
        if !self.shadow_fast(addr, size, Access::ShadowRead) {
            self.check(addr, size as u64, Access::ShadowRead)?;
        }
        // SAFETY: checked: a writable shadow-stack page, which is host memory.
        Ok(unsafe {
            if size == 4 {
                std::ptr::read_unaligned(addr as *const u32) as u64
            } else {
                std::ptr::read_unaligned(addr as *const u64)
            }
        })
    }

    /// A shadow-stack store of 8 bytes (or 4 with `size` 4).
    #[inline(always)]
    pub fn shadow_write(&self, addr: u64, size: u32, v: u64) -> Result<(), Fault> {
        // Any width but 4 accesses 8 bytes below; check what is touched.
        let size = if size == 4 { 4 } else { 8 };
        if !self.shadow_fast(addr, size, Access::ShadowWrite) {
            self.check(addr, size as u64, Access::ShadowWrite)?;
        }
        // SAFETY: checked: a writable shadow-stack page.
        unsafe {
            if size == 4 {
                std::ptr::write_unaligned(addr as *mut u32, v as u32)
            } else {
                std::ptr::write_unaligned(addr as *mut u64, v)
            }
        }
        Ok(())
    }

    /// Atomically compares the 8-byte shadow-stack slot at `addr` (8-aligned) with `expect`
    /// and replaces it with `new` if equal; returns the old value (RSTORSSP's locked RMW).
    pub fn shadow_cmpxchg(&self, addr: u64, f: impl Fn(u64) -> u64) -> Result<u64, Fault> {
        self.check(addr, 8, Access::ShadowWrite)?;
        if !addr.is_multiple_of(8) {
            // Callers align the slot; should one not, serialise rather than make a misaligned
            // atomic reference.
            static SPLIT: Mutex<()> = Mutex::new(());
            let _g = SPLIT.lock().unwrap_or_else(|e| e.into_inner());
            let old = self.shadow_read(addr, 8)?;
            self.shadow_write(addr, 8, f(old))?;
            return Ok(old);
        }
        // SAFETY: checked: a writable shadow-stack page (host memory mapped read-write) holding
        // all 8 bytes, and 8-aligned as AtomicU64 requires.
        let cell = unsafe { &*(addr as *const AtomicU64) };
        let mut old = cell.load(Ordering::SeqCst);
        loop {
            match cell.compare_exchange(old, f(old), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) => return Ok(v),
                Err(v) => old = v,
            }
        }
    }

    /// The first page of [addr, end) a forced access (FOLL_FORCE) may not touch: unmapped, or
    /// past the end of its file. PROT_NONE pages (entry 0) are fine if a VMA covers them, as
    /// Linux's check_vma_flags allows forced access to VM_MAYREAD/VM_MAYWRITE mappings.
    fn forced_bad(&self, m: &Maps, addr: u64, end: u64) -> Option<(u64, u8)> {
        let mut p = addr;
        while p < end {
            let bits = self.pt.get(p);
            let ok = if bits & page::MAPPED == 0 {
                Self::covering(m, p).is_some()
            } else {
                bits & page::BEYOND_EOF == 0
            };
            if !ok {
                return Some((p, bits));
            }
            p = page_floor(p) + PAGE_SIZE;
        }
        None
    }

    /// Whether every page of [addr, addr + len) may be read by a forced access (/proc/self/mem,
    /// ptrace): mapped, whatever its protection, and not past the end of its file.
    pub fn forced_readable(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        end <= USER_LIMIT && self.forced_bad(&self.maps(), addr, end).is_none()
    }

    /// A forced write that ignores page permissions, like the kernel's FOLL_FORCE (ptrace,
    /// /proc/self/mem, and WRUSS for signal frames). The range must be mapped.
    pub fn force_write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let len = data.len() as u64;
        let end = addr.checked_add(len).ok_or(Fault {
            present: false,
            addr: USER_LIMIT.max(addr),
            access: Access::Write,
            kind: FaultKind::NotMapped,
        })?;
        // Held until the copy is done: the range cannot be unmapped or replaced meanwhile.
        let m = self.maps();
        if let Some((p, bits)) = self.forced_bad(&m, addr, end) {
            return Err(self.fault_in(&m, p, bits, Access::Write));
        }
        // A shared mapping without PROT_WRITE may be read-only on the host (a shared file
        // mapping is); Linux refuses forced writes to any shared non-writable mapping.
        if len != 0 {
            for k in Self::overlapping(&m, addr, end) {
                let v = &m.vmas[&k];
                if v.shared && v.prot & libc::PROT_WRITE as u32 == 0 {
                    let at = v.start.max(addr);
                    return Err(self.fault_in(&m, at, self.pt.get(at), Access::Write));
                }
            }
        }
        self.code_written(addr, len);
        // SAFETY: every page in the range is mapped guest memory, and not part of a shared
        // mapping without PROT_WRITE, so the host maps it read-write (private, anonymous and
        // shadow-stack memory always is; shared file memory is when the guest may write it).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    /// Performs an atomic read-modify-write of `size` bytes for a LOCK-prefixed instruction:
    /// `f` maps the old value to the new one (or None to leave memory unchanged, as a failed
    /// CMPXCHG does, though it still counts as a write access). Returns the old value.
    pub fn atomic_rmw(
        &self,
        addr: u64,
        size: u32,
        f: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Result<u64, Fault> {
        // Any other width is treated as 8 bytes, as `read_sized` does, so the check always
        // covers every byte the access below touches.
        let size = match size {
            1 | 2 | 4 => size,
            _ => 8,
        };
        self.check(addr, size as u64, Access::Write)?;
        use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU8};
        macro_rules! cas {
            ($t:ty, $a:ty) => {{
                if addr % size as u64 == 0 {
                    // SAFETY: all `size` bytes were checked writable (so the host maps them
                    // read-write), and the address is aligned for this width.
                    let cell = unsafe { &*(addr as *const $a) };
                    let mut old = cell.load(Ordering::SeqCst);
                    loop {
                        let Some(new) = f(old as u64) else {
                            return Ok(old as u64);
                        };
                        match cell.compare_exchange_weak(
                            old,
                            new as $t,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        ) {
                            Ok(_) => return Ok(old as u64),
                            Err(v) => old = v,
                        }
                    }
                }
            }};
        }
        match size {
            1 => cas!(u8, AtomicU8),
            2 => cas!(u16, AtomicU16),
            4 => cas!(u32, AtomicU32),
            _ => cas!(u64, AtomicU64),
        }
        // A split or misaligned lock: serialise through one global lock.
        static SPLIT: Mutex<()> = Mutex::new(());
        let _g = SPLIT.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.read_sized(addr, size)?;
        if let Some(new) = f(old) {
            self.write_sized(addr, size, new)?;
        }
        Ok(old)
    }

    /// Copies guest memory into `buf`.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.check(addr, buf.len() as u64, Access::Read)?;
        // SAFETY: checked readable; the host buffer is ours and does not overlap guest memory.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into guest memory, all or nothing. The check and the copy happen under
    /// the mapping lock, so no other guest thread can unmap or write-protect the range, or put
    /// a shadow stack there, between them (the kernel's own copy_to_user sees the page type at
    /// the moment of the write in the same way).
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let m = self.maps();
        self.check_in(&m, addr, data.len() as u64, Access::Write)?;
        // SAFETY: checked writable under the mapping lock, which every change of mappings or
        // protections takes, so the host still maps it read-write; `data` is host memory and
        // does not overlap guest memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    /// Copies as much of `data` into guest memory at `addr` as the guest can write at this
    /// moment: page by page under the mapping lock, stopping at the first page that is not
    /// writable (unmapped, read-only, a shadow stack). Returns the number of bytes copied, as
    /// the kernel's copy_to_user reports a partial copy. This is how results of host calls
    /// that wrote into a bounce buffer reach the guest.
    pub fn copy_out(&self, addr: u64, data: &[u8]) -> usize {
        let data = &data[..prefault(addr, data.len())];
        let _m = self.maps();
        let mut done = 0usize;
        while done < data.len() {
            let p = addr.wrapping_add(done as u64);
            if p >= USER_LIMIT {
                break;
            }
            let n = ((page_floor(p) + PAGE_SIZE - p) as usize).min(data.len() - done);
            if self.scan(p, n as u64, Access::Write).is_err() {
                break;
            }
            // SAFETY: the n bytes at p lie in one page checked writable under the mapping
            // lock, so the host maps them read-write until the lock is released.
            unsafe {
                std::ptr::copy_nonoverlapping(data[done..].as_ptr(), p as *mut u8, n);
            }
            done += n;
        }
        done
    }

    /// Copies `len` bytes of guest memory from `src` to `dst` with memmove semantics, after
    /// checking the whole source readable and the whole destination writable (REP MOVS).
    /// Nothing is copied if either check fails.
    pub fn copy_within(&self, dst: u64, src: u64, len: u64) -> Result<(), Fault> {
        self.check(src, len, Access::Read)?;
        self.check(dst, len, Access::Write)?;
        // SAFETY: both ranges were just checked to be guest memory with the needed access,
        // which is host memory mapped read-write; `copy` allows overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, len as usize) };
        Ok(())
    }

    /// Fills `count` consecutive `elem`-byte (1, 2, 4 or 8) elements at `dst` with the low
    /// bytes of `pattern`, after checking the whole range writable (REP STOS). Nothing is
    /// written if the check fails.
    pub fn fill(&self, dst: u64, count: u64, elem: u32, pattern: u64) -> Result<(), Fault> {
        let len = count.checked_mul(elem as u64).ok_or(Fault {
            present: false,
            addr: dst,
            access: Access::Write,
            kind: FaultKind::NotMapped,
        })?;
        self.check(dst, len, Access::Write)?;
        // SAFETY: [dst, dst + len) was just checked writable guest memory; unaligned stores.
        unsafe {
            match elem {
                1 => std::ptr::write_bytes(dst as *mut u8, pattern as u8, len as usize),
                2 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 2 * k) as *mut u16, pattern as u16)
                    }
                }
                4 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 4 * k) as *mut u32, pattern as u32)
                    }
                }
                8 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 8 * k) as *mut u64, pattern)
                    }
                }
                _ => {
                    for k in 0..len {
                        let byte = (pattern >> (8 * ((k % elem as u64) & 7))) as u8;
                        std::ptr::write((dst + k) as *mut u8, byte)
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL). Returns None
    /// (ENAMETOOLONG territory) if no NUL was found within `max` bytes.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Option<Vec<u8>>, Fault> {
        let mut out = Vec::new();
        let mut p = addr;
        while out.len() < max {
            // Checked first: a readable page lies below USER_LIMIT, so `page_end` cannot
            // overflow (a guest pointer near 2^64 would).
            self.check(p, 1, Access::Read)?;
            let page_end = page_floor(p) + PAGE_SIZE;
            let n = ((page_end - p) as usize).min(max - out.len());
            // SAFETY: the whole page holding p is readable (permissions are per page).
            let chunk = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(Some(out));
            }
            out.extend_from_slice(chunk);
            p = page_end;
        }
        Ok(None)
    }

    /// Copies up to `buf.len()` executable bytes at `addr` for the decoder; stops at the first
    /// page that is not executable. Returns the count, or the fault if `addr` itself is not.
    pub fn fetch(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Fault> {
        let mut n = 0usize;
        let mut p = addr;
        while n < buf.len() {
            let bits = self.pt.get(p);
            if !Self::allowed(bits, Access::Fetch) {
                if n == 0 {
                    return Err(self.fault(p, bits, Access::Fetch));
                }
                break;
            }
            if bits & page::POPULATED == 0 {
                self.pt.set_bits(p, page::POPULATED);
            }
            let page_end = page_floor(p) + PAGE_SIZE;
            let k = ((page_end - p) as usize).min(buf.len() - n);
            // SAFETY: the page is executable guest memory, hence mapped readable on the host
            // (and an unmap racing with the copy leaves zero pages there, never a hole).
            unsafe { std::ptr::copy_nonoverlapping(p as *const u8, buf[n..].as_mut_ptr(), k) };
            // The page may have been unmapped by another thread between the check and the
            // copy: an unmap clears the entry first and only then replaces the memory with
            // zero pages (`unmap_locked`), so if the entry still allows the fetch after the
            // copy, the copy read the old bytes. Otherwise the bytes may be those zeros, which
            // decode as instructions the guest never had (`add %al,(%rax)`, faulting at an
            // address that has nothing to do with the unmapped page): the fetch faults here as
            // it would have after the unmap.
            std::sync::atomic::fence(Ordering::SeqCst);
            let now = self.pt.get(p);
            if !Self::allowed(now, Access::Fetch) {
                if n == 0 {
                    return Err(self.fault(p, now, Access::Fetch));
                }
                break;
            }
            n += k;
            p = page_end;
        }
        Ok(n)
    }
}

/// Faults in, outside the mapping lock, the pages of [addr, addr + len) the host has not
/// populated yet, as the write fault of Linux's copy_to_user would: a page of a
/// guest's userfaultfd range then blocks until a guest thread resolves it (which may need the
/// mapping lock, so `copy_out` must not hold it meanwhile), or fails under
/// UFFD_USER_MODE_ONLY (kernel accesses get EFAULT). Returns how many bytes from `addr` may
/// be copied: all of them, or up to the first page that could not be faulted in. One mincore
/// call per copy finds the pages to fault in (usually none).
fn prefault(addr: u64, len: usize) -> usize {
    if len == 0 || addr.checked_add(len as u64).is_none_or(|e| e > USER_LIMIT) {
        return len; // the locked scan refuses it
    }
    let first = page_floor(addr);
    let pages = (page_ceil(addr + len as u64) - first) / PAGE_SIZE;
    let mut resident = vec![0u8; pages as usize];
    // SAFETY: mincore writes one byte per page of the range into `resident`, which has one per
    // page; a range with unmapped pages fails with ENOMEM and then the locked scan decides.
    let r = unsafe {
        libc::mincore(
            first as *mut libc::c_void,
            (pages * PAGE_SIZE) as usize,
            resident.as_mut_ptr(),
        )
    };
    if r != 0 {
        return len;
    }
    for (i, _) in resident.iter().enumerate().filter(|(_, r)| *r & 1 == 0) {
        let pg = first + i as u64 * PAGE_SIZE;
        // MADV_POPULATE_WRITE (Linux 5.14): the write fault copy_to_user would take, without
        // the write itself (so nothing lands before the locked check).
        // SAFETY: populating page tables of one page of our own address space changes no
        // memory contents.
        let w = unsafe { libc::madvise(pg as *mut libc::c_void, PAGE_SIZE as usize, 23) };
        if w != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return pg.saturating_sub(addr) as usize;
        }
    }
    len
}
