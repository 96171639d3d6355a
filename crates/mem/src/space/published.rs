//! The guest's VMAs as another cetbox process reads them.
//!
//! A forced access from another guest process (ptrace PEEK/POKE, /proc/PID/mem: FOLL_FORCE)
//! needs what the page table alone does not hold: whether a page without an entry is
//! PROT_NONE memory (Linux lets a forced read or a private forced write reach it) or nothing,
//! and whether a page the guest cannot write belongs to a shared mapping (Linux refuses a
//! forced write there: mm/gup.c `check_vma_flags`, `is_cow_mapping`). So the VMA list is kept
//! as a flat, sorted array of [`Record`]s in this process's memory, whose address and length
//! sit in [`DIRECTORY`] (an address the Linux personality publishes for remote accessors,
//! crates/linux/src/remote_mem.rs). The array is rebuilt whenever a holder of the mapping lock
//! may have changed the VMAs, and swapped in as a recorded change of the cross-process
//! protocol (`xlock::Change::Directory`), which waits for accessors still reading the old
//! array: an accessor sees one whole list, the one before or after each change.

use super::Maps;
use crate::xlock;
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

/// The published array and a spare one, reused so a rebuild seldom allocates.
#[derive(Default)]
pub(super) struct Published {
    live: Vec<Record>,
    spare: Vec<Record>,
}

impl Published {
    /// Rebuilds the published array from `m`'s VMAs.
    fn republish(m: &mut Maps) {
        let mut next = std::mem::take(&mut m.published.spare);
        next.clear();
        next.extend(m.vmas.values().map(|v| {
            let mut f = u64::from(v.prot) & 7;
            if v.shared {
                f |= FLAG_SHARED;
            }
            if v.kind == crate::VmaKind::ShadowStack {
                f |= FLAG_SHADOW;
            }
            [v.start, v.end, f]
        }));
        {
            // Accessors that may still read the old array are waited for; one that comes
            // while the two words change reads them from the recorded change.
            let (ptr, len) = (next.as_ptr() as u64, next.len() as u64);
            let _x = xlock::Hold::take(xlock::Change::Directory { ptr, len });
            DIRECTORY[0].store(ptr, Ordering::Release);
            DIRECTORY[1].store(len, Ordering::Release);
            std::mem::swap(&mut m.published.live, &mut next);
        }
        m.published.spare = next;
    }
}

/// The mapping lock's guard: republishes the VMA list when released after mutable use.
pub(super) struct MapsGuard<'a> {
    g: MutexGuard<'a, Maps>,
    dirty: bool,
}

impl<'a> MapsGuard<'a> {
    pub(super) fn new(g: MutexGuard<'a, Maps>) -> Self {
        MapsGuard { g, dirty: false }
    }

    /// Makes the release republish the VMA list even if nothing changed.
    pub(super) fn republish_on_release(&mut self) {
        self.dirty = true;
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
        self.dirty = true;
        &mut self.g
    }
}

impl Drop for MapsGuard<'_> {
    fn drop(&mut self) {
        // Only when another process can read it: the Linux personality installs the lock
        // once it publishes the table.
        if self.dirty && xlock::installed().is_some() {
            Published::republish(&mut self.g);
        }
    }
}
