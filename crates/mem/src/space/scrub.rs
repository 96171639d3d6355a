//! Unmapped memory keeps its old contents until no access can be in flight.
//!
//! Another guest thread may have passed its page-table check for an address just before this
//! thread's munmap cleared the entry, and be about to load or store there (a translated
//! instruction between its check and its access, the interpreter between its check and its
//! copy). On Linux such an access either happens before the unmap (it sees the old contents)
//! or faults; it never sees memory the kernel has already replaced. So the host memory of an
//! unmapped range is not replaced with zero pages at once: the range is recorded here, the
//! syscall layer makes every other thread pass an instruction boundary (the shootdown of
//! crates/linux/src/thread.rs), and only then scrubs it (`scrub_through`). In between the
//! range is unmapped for the guest (no page-table entry, no VMA) and cetbox itself never
//! touches it, so nothing can observe the delay except those racing accesses, which now read
//! the old contents, as on Linux.
//!
//! A range mapped again before the scrub got fresh host memory from that mapping (every
//! guest mapping creates its host mapping with MAP_FIXED or NOREPLACE), so the scrub skips
//! whatever a VMA covers again, and whatever a newer unmap recorded (its own shootdown has not
//! happened yet). Outside the guest reservation it touches only the holes cetbox still owns.

use super::{in_reserve, AddressSpace, Maps};
use crate::host::{self, window_end, window_start};
use std::sync::atomic::Ordering;

/// A range unmapped at sequence number `seq`, whose host memory is still the old memory.
pub(super) struct Unscrubbed {
    start: u64,
    end: u64,
    seq: u64,
}

/// `pieces` minus every range of `cuts`.
pub(super) fn subtract(
    pieces: Vec<(u64, u64)>,
    cuts: impl Iterator<Item = (u64, u64)>,
) -> Vec<(u64, u64)> {
    let mut out = pieces;
    for (cs, ce) in cuts {
        out = out
            .into_iter()
            .flat_map(|(s, e)| {
                if ce <= s || cs >= e {
                    vec![(s, e)]
                } else {
                    [(s, cs), (ce, e)]
                        .into_iter()
                        .filter(|(a, b)| a < b)
                        .collect()
                }
            })
            .collect();
    }
    out
}

impl AddressSpace {
    /// Records [start, end), just unmapped (its page-table entries already cleared), as memory
    /// to scrub once no access to it can be in flight.
    pub(super) fn defer_scrub(&self, m: &mut Maps, start: u64, end: u64) {
        let seq = self.unscrubbed_seq.fetch_add(1, Ordering::Relaxed) + 1;
        m.unscrubbed.push(Unscrubbed { start, end, seq });
        self.unscrubbed_mark.store(seq, Ordering::Release);
    }

    /// The sequence number of the newest unmapped range still holding its old contents, if
    /// any: after every other thread has passed an instruction boundary (a shootdown begun
    /// after this call), `scrub_through` with it may scrub every range up to it.
    pub fn unscrubbed_mark(&self) -> Option<u64> {
        match self.unscrubbed_mark.load(Ordering::Acquire) {
            0 => None,
            seq => Some(seq),
        }
    }

    /// Replaces with zero pages the host memory of the ranges unmapped up to sequence number
    /// `mark` that are still unmapped (see the module comment). The caller guarantees that no
    /// guest access checked before those unmaps can still be in flight.
    pub fn scrub_through(&self, mark: u64) {
        let mut m = self.maps();
        let (due, newer): (Vec<Unscrubbed>, Vec<Unscrubbed>) = std::mem::take(&mut m.unscrubbed)
            .into_iter()
            .partition(|u| u.seq <= mark);
        for u in &due {
            let mut pieces = vec![(u.start, u.end)];
            let mapped: Vec<(u64, u64)> = Self::overlapping(&m, u.start, u.end)
                .into_iter()
                .map(|k| (m.vmas[&k].start, m.vmas[&k].end))
                .collect();
            pieces = subtract(pieces, mapped.into_iter());
            pieces = subtract(pieces, newer.iter().map(|n| (n.start, n.end)));
            for (s, e) in pieces {
                self.scrub_owned(&m, s, e);
            }
        }
        let newest = newer.iter().map(|u| u.seq).max().unwrap_or(0);
        m.unscrubbed = newer;
        self.unscrubbed_mark.store(newest, Ordering::Release);
    }

    /// Scrubs [start, end) where cetbox owns the host memory: inside the reservation all of it,
    /// outside only the holes it keeps (`note_hole`; anything else there may have gone back to
    /// the host since).
    fn scrub_owned(&self, m: &Maps, start: u64, end: u64) {
        if host::window_reserved() {
            let (s, e) = (start.max(window_start()), end.min(window_end()));
            if s < e && in_reserve(s, e) {
                let _ = host::scrub(s, e);
            }
        }
        for (hs, he) in m.holes.range(..end) {
            let (s, e) = (start.max(*hs), end.min(*he));
            if s < e {
                let _ = host::scrub(s, e);
            }
        }
    }
}
