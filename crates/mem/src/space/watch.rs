//! Watches of mapping identity, for the vfork emulation of `cetbox_linux` (crates/linux/src/
//! fork.rs): a vfork child runs on a copy of the memory and, when it execs or exits, its
//! writes are applied to the parent's memory. On Linux the child wrote into the memory shared
//! at the time; if another thread of the parent unmapped or replaced a mapping meanwhile, the
//! child's bytes went with the old mapping and are not in the new one. A watch records every
//! range whose mapping was created, removed or moved since it began (mmap, munmap, MAP_FIXED
//! over a mapping, mremap, brk, stack growth; not mprotect, which keeps the mapping and its
//! contents), so a page that is mapped now and untouched by those changes is still the
//! mapping it was when the watch began: only there may the child's bytes land.

use super::*;

/// Most disjoint changed ranges a watch keeps; past it, every page counts as changed (the
/// child's bytes are dropped rather than cetbox's memory growing without bound while a vfork
/// child runs and other threads map and unmap).
const MAX_RANGES: usize = 4096;

#[derive(Default)]
pub(super) struct Watches {
    next: u64,
    list: Vec<Watch>,
}

struct Watch {
    id: u64,
    /// Changed ranges, start -> end, disjoint and not adjacent.
    changed: BTreeMap<u64, u64>,
    overflow: bool,
}

impl Watch {
    fn add(&mut self, start: u64, end: u64) {
        if self.overflow || start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        // Ranges are disjoint, so their ends grow with their starts: walking down from the
        // last one starting at or before `end`, the first that ends before `start` ends the
        // overlapping (or adjacent) ones.
        let keys: Vec<u64> = self
            .changed
            .range(..=end)
            .rev()
            .take_while(|(_, &ve)| ve >= start)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(ve) = self.changed.remove(&k) {
                s = s.min(k);
                e = e.max(ve);
            }
        }
        self.changed.insert(s, e);
        if self.changed.len() > MAX_RANGES {
            self.overflow = true;
            self.changed.clear();
        }
    }

    fn touches(&self, start: u64, end: u64) -> bool {
        self.overflow
            || self
                .changed
                .range(..end)
                .next_back()
                .is_some_and(|(_, &e)| e > start)
    }
}

impl Watches {
    /// The mapping of [start, end) was created, removed or moved.
    pub(super) fn note(&mut self, start: u64, end: u64) {
        for w in &mut self.list {
            w.add(start, end);
        }
    }

    /// Whether watch `id` exists and saw no change of [start, end).
    fn unchanged(&self, id: u64, start: u64, end: u64) -> bool {
        self.list
            .iter()
            .find(|w| w.id == id)
            .is_some_and(|w| !w.touches(start, end))
    }
}

impl AddressSpace {
    /// Begins a watch of mapping changes (see the module comment); returns its id, never 0.
    /// A fork copies the watch with the address space: the child's copy records the child's
    /// changes under the same id.
    pub fn watch_mappings(&self) -> u64 {
        let mut m = self.maps();
        m.watches.next += 1;
        let id = m.watches.next;
        m.watches.list.push(Watch {
            id,
            changed: BTreeMap::new(),
            overflow: false,
        });
        id
    }

    /// Ends watch `id`.
    pub fn unwatch_mappings(&self, id: u64) {
        self.maps().watches.list.retain(|w| w.id != id);
    }

    /// Whether every page of [addr, addr + len) is mapped now by the mapping it had when watch
    /// `id` began: mapped, and neither mapped, unmapped nor moved since.
    pub fn unchanged_since(&self, id: u64, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let (start, end) = (page_floor(addr), page_ceil(end));
        let m = self.maps();
        if !m.watches.unchanged(id, start, end) {
            return false;
        }
        let mut p = start;
        while p < end {
            let Some(v) = Self::covering(&m, p) else {
                return false;
            };
            p = v.end;
        }
        true
    }

    /// Writes `data` (within one page) at `addr` if that page still has the mapping it had
    /// when watch `id` began (`unchanged_since`), a private one, of the same kind: a
    /// shadow-stack run (`shadow`) only into a shadow stack and nothing else into one. As a
    /// forced write (FOLL_FORCE, `force_write`): the bytes were written into this very mapping
    /// while the child could write it, so a protection another thread took away since (a
    /// later mprotect to read-only or PROT_NONE) does not undo them, as it does not on Linux;
    /// pages past the end of their file (truncated since) are not written, as Linux's
    /// truncation drops even private copies. The checks and the copy happen under the
    /// mapping lock, so no other thread can unmap or replace the page in between. Returns
    /// whether it wrote.
    pub fn write_unchanged(&self, id: u64, addr: u64, data: &[u8], shadow: bool) -> bool {
        let len = data.len() as u64;
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        if len == 0 || end > USER_LIMIT || page_floor(addr) != page_floor(end - 1) {
            return false;
        }
        let m = self.maps();
        if !m.watches.unchanged(id, page_floor(addr), page_ceil(end)) {
            return false;
        }
        let Some(v) = Self::covering(&m, addr) else {
            return false;
        };
        if v.shared || (v.kind == VmaKind::ShadowStack) != shadow {
            return false;
        }
        if self.forced_bad(&m, addr, end).is_some() {
            return false;
        }
        self.code_written(addr, len);
        // SAFETY: the bytes lie in one page of a private guest mapping, checked under the
        // mapping lock, which every change of mappings takes: the host maps private memory
        // read-write whatever the guest's protection (see `force_write`) until the lock is
        // released; `data` is host memory and does not overlap guest memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch {
            id: 1,
            changed: BTreeMap::new(),
            overflow: false,
        }
    }

    #[test]
    fn ranges_merge_and_are_found() {
        let mut w = watch();
        w.add(0x1000, 0x2000);
        w.add(0x5000, 0x6000);
        assert!(!w.touches(0x2000, 0x5000));
        assert!(w.touches(0x1fff, 0x2000));
        assert!(w.touches(0x5fff, 0x7000));
        w.add(0x2000, 0x5000);
        assert_eq!(w.changed.len(), 1);
        assert_eq!(w.changed.get(&0x1000), Some(&0x6000));
        w.add(0x800, 0x900);
        assert!(!w.touches(0x900, 0x1000));
        assert!(w.touches(0, 0x801));
    }

    #[test]
    fn too_many_ranges_means_everything_changed() {
        let mut w = watch();
        for i in 0..=MAX_RANGES as u64 {
            w.add(i * 0x2000, i * 0x2000 + 0x1000);
        }
        assert!(w.overflow);
        assert!(w.touches(u64::MAX - 1, u64::MAX));
    }
}
