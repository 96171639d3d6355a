//! The guest's VMAs as another cetbox process reads them.
//!
//! A forced access from another guest process (ptrace PEEK/POKE, /proc/PID/mem: FOLL_FORCE)
//! needs what the page table alone does not hold: whether a page without an entry is
//! PROT_NONE memory (Linux lets a forced read or a private forced write reach it) or nothing,
//! and whether a page the guest cannot write belongs to a shared mapping (Linux refuses a
//! forced write there: mm/gup.c `check_vma_flags`, `is_cow_mapping`). Every other mapped page
//! is decided by its entry alone. So the VMAs that carry such a fact (PROT_NONE, or shared
//! without PROT_WRITE: [`special`]) are kept, beside the VMA tree, in a flat sorted array of
//! [`Record`]s in this process's memory, whose address and length sit in [`DIRECTORY`] (an
//! address the Linux personality publishes for remote accessors,
//! crates/linux/src/remote_mem.rs). When a change of the mapping lock's holder touched such a
//! VMA, the array is rebuilt from them alone (a program's ordinary mappings cost nothing) and
//! swapped in as a recorded change of the cross-process protocol
//! (`xlock::Change::Directory`), which waits for accessors still reading the old array: an
//! accessor sees one whole list, the one before or after each change.

use super::Maps;
use crate::{xlock, Vma, VmaKind};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::MutexGuard;

/// One published VMA: start, end, flags ([`FLAG_SHARED`], [`FLAG_SHADOW`] and the guest's
/// PROT_READ/PROT_WRITE/PROT_EXEC in the low bits).
pub type Record = [u64; 3];
/// The VMA is a shared mapping (VM_SHARED).
pub const FLAG_SHARED: u64 = 1 << 8;
/// The VMA is a shadow stack (VM_SHADOW_STACK).
pub const FLAG_SHADOW: u64 = 1 << 9;

/// The published array's address and number of records, in that order.
pub static DIRECTORY: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// The address of [`DIRECTORY`], for the header other processes read.
pub fn directory_addr() -> u64 {
    DIRECTORY.as_ptr() as u64
}

/// Whether a VMA carries a fact a forced remote access needs beyond its pages' entries:
/// PROT_NONE (no entries), or shared without PROT_WRITE (no forced write).
pub fn special(v: &Vma) -> bool {
    let prot = v.prot & 7;
    prot == 0 || (v.shared && prot & libc::PROT_WRITE as u32 == 0)
}

fn record_of(v: &Vma) -> Record {
    let mut f = u64::from(v.prot) & 7;
    if v.shared {
        f |= FLAG_SHARED;
    }
    if v.kind == VmaKind::ShadowStack {
        f |= FLAG_SHADOW;
    }
    [v.start, v.end, f]
}

/// The VMA tree, keeping the [`special`] VMAs' records beside it. Reads go to the tree
/// (`Deref`); changes go through `insert`, `remove` and `set_end`.
#[derive(Default)]
pub(super) struct VmaTree {
    all: BTreeMap<u64, Vma>,
    special: BTreeMap<u64, Record>,
    /// Records of special VMAs an mprotect in progress replaces, published beside the new
    /// ones until the change ends (see `remove_keeping`).
    leaving: Vec<Record>,
    /// Whether `special` or `leaving` changed since they were last published.
    dirty: bool,
}

impl Deref for VmaTree {
    type Target = BTreeMap<u64, Vma>;
    fn deref(&self) -> &BTreeMap<u64, Vma> {
        &self.all
    }
}

impl VmaTree {
    fn forget(&mut self, old: &Option<Vma>) {
        if let Some(o) = old {
            if self.special.remove(&o.start).is_some() {
                self.dirty = true;
            }
        }
    }

    pub(super) fn insert(&mut self, start: u64, v: Vma) -> Option<Vma> {
        if special(&v) {
            self.special.insert(start, record_of(&v));
            self.dirty = true;
        }
        let old = self.all.insert(start, v);
        if let Some(o) = &old {
            if special(o) && !self.all.get(&start).is_some_and(special) {
                self.special.remove(&start);
                self.dirty = true;
            }
        }
        old
    }

    pub(super) fn remove(&mut self, start: &u64) -> Option<Vma> {
        let old = self.all.remove(start);
        self.forget(&old);
        old
    }

    /// `remove` for a change of protection: the removed VMA's record stays published beside
    /// the new ones until the mapping lock is released. Its pages' entries change between
    /// the two; an accessor that finds both records takes the answer either would give
    /// (crates/linux/src/remote_mem.rs `forced_allowed`), one before or after the change.
    pub(super) fn remove_keeping(&mut self, start: &u64) -> Option<Vma> {
        let old = self.all.remove(start);
        if let Some(r) = old.as_ref().and_then(|o| self.special.remove(&o.start)) {
            self.leaving.push(r);
            self.dirty = true;
        }
        old
    }

    /// Moves the end of the VMA starting at `start` (a merge or a growth).
    pub(super) fn set_end(&mut self, start: u64, end: u64) {
        if let Some(v) = self.all.get_mut(&start) {
            v.end = end;
            if let Some(r) = self.special.get_mut(&start) {
                r[1] = end;
                self.dirty = true;
            }
        }
    }
}

/// The published array and a spare one, reused so a rebuild seldom allocates.
#[derive(Default)]
pub(super) struct Published {
    live: Vec<Record>,
    spare: Vec<Record>,
}

impl Published {
    /// Rebuilds the published array from `m`'s special VMAs (sorted, disjoint), followed by
    /// the records of those an mprotect in progress replaces; the directory's length word
    /// holds the first count in its low half and the second in its high half.
    fn republish(m: &mut Maps) {
        let mut next = std::mem::take(&mut m.published.spare);
        next.clear();
        next.extend(m.vmas.special.values().copied());
        next.extend(m.vmas.leaving.iter().copied());
        m.vmas.dirty = false;
        {
            // Accessors that may still read the old array are waited for; one that comes
            // while the two words change reads them from the recorded change.
            let len = m.vmas.special.len() as u64 | (m.vmas.leaving.len() as u64) << 32;
            let ptr = next.as_ptr() as u64;
            let _x = xlock::Hold::take(xlock::Change::Directory { ptr, len });
            DIRECTORY[0].store(ptr, Ordering::Release);
            DIRECTORY[1].store(len, Ordering::Release);
            std::mem::swap(&mut m.published.live, &mut next);
        }
        m.published.spare = next;
    }
}

/// The mapping lock's guard: republishes the special VMAs when released after a change of
/// them.
pub(super) struct MapsGuard<'a> {
    g: MutexGuard<'a, Maps>,
}

impl<'a> MapsGuard<'a> {
    pub(super) fn new(g: MutexGuard<'a, Maps>) -> Self {
        MapsGuard { g }
    }

    /// Makes the release republish the VMA list even if nothing changed.
    pub(super) fn republish_on_release(&mut self) {
        self.g.vmas.dirty = true;
    }
}

impl Deref for MapsGuard<'_> {
    type Target = Maps;
    fn deref(&self) -> &Maps {
        &self.g
    }
}

impl DerefMut for MapsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Maps {
        &mut self.g
    }
}

impl Maps {
    /// Publishes the special VMAs now if they changed: a mapping change calls it after it
    /// changed the tree and before it changes the entries or the host memory of the range,
    /// so an accessor never finds a record that the memory no longer matches.
    pub(super) fn sync_published(&mut self) {
        // Only when another process can read it: the Linux personality installs the lock
        // once it publishes the table (and asks for a first publication then).
        if self.vmas.dirty && xlock::installed().is_some() {
            Published::republish(self);
        }
    }
}

impl Drop for MapsGuard<'_> {
    fn drop(&mut self) {
        if !self.g.vmas.leaving.is_empty() {
            self.g.vmas.leaving.clear();
            self.g.vmas.dirty = true;
        }
        self.g.sync_published();
    }
}
