//! Where mappings are and where new ones go: the VMA snapshot and lookups, and the search
//! for free ranges (top-down below mmap_base, bottom-up, hints, alignment, guard gaps).

use super::*;

impl AddressSpace {
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

    pub(super) fn free_in(m: &Maps, start: u64, end: u64) -> bool {
        if let Some((_, v)) = m.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// The gap Linux keeps free below a VMA (`vm_start_gap`): 256 pages below a growsdown
    /// stack (`stack_guard_gap`), one page below a shadow stack.
    pub(super) fn start_gap(v: &Vma) -> u64 {
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
        self.find_free_locked(&self.maps(), hint, len, low_2g, guard)
    }

    /// [`AddressSpace::find_free`] under the mapping lock the caller holds, so that the range
    /// it finds is still free when the caller maps it (mm/mmap.c do_mmap searches and maps
    /// under one mmap_lock).
    pub(super) fn find_free_locked(
        &self,
        m: &Maps,
        hint: u64,
        len: u64,
        low_2g: bool,
        guard: u64,
    ) -> Option<u64> {
        if low_2g {
            return Self::find_free_bottom_up(m, len, 0x4000_0000, 0x8000_0000);
        }
        if hint != 0 {
            let h = page_floor(hint);
            if Self::hint_ok(m, h, len, self.pt.limit()) {
                // Outside our reservation the host may hold memory there; the map step checks.
                return Some(h);
            }
        }
        Self::find_free_in(m, len, m.mmap_base, window_start(), guard)
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
}
