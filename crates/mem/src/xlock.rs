//! The page table's cross-process exclusion.
//!
//! Another guest process is another cetbox process, so process_vm_readv/writev, ptrace
//! PEEK/POKE and /proc/PID/mem between guests are carried out by the accessing cetbox on the
//! host. It must check each page against the *target's* page table and copy while the target
//! cannot take the pages away (Linux holds the target's mmap_lock across its check and pin:
//! mm/gup.c `__get_user_pages` under `mmap_read_lock`, mm/process_vm_access.c). Linux's
//! mmap_lock is never held where the task can stop; a cetbox process can be stopped anywhere
//! (SIGSTOP, a host ptrace stop), inside a change of its table too, so an accessor must
//! neither wait for the target nor need it to finish a change. The protocol, on a page shared
//! through a memfd (the Linux personality creates and publishes it:
//! crates/linux/src/remote_mem.rs):
//!
//! - The word at offset 0 serialises the target's own threads' changes (0 when free, else
//!   the holder's host thread id, with [`WAITERS`] set when someone sleeps on it; a holder
//!   that died is found by a liveness probe and its lock taken over). Accessors never take it.
//! - Before it changes any entry, a changer describes its change (a [`Change`]) in the
//!   record at [`REC_SEQ`] (a sequence count, odd while the record is being written), then
//!   waits until no accessor is registered (the slots at [`SLOTS`] hold the accessors'
//!   thread ids, so that a dead one is found; [`LEFT`] counts departures, the word a waiting
//!   changer sleeps on), then changes the entries.
//! - An accessor registers in a slot, then reads the record, the entries and the record's
//!   sequence again (retrying if a new change began meanwhile) and applies the recorded
//!   change to what it read (`Change::apply`: every change is idempotent, so entries already
//!   changed and entries not yet changed give the same result). It then sees the table as it
//!   is after that change, and no later change can begin until it leaves: it copies, and
//!   leaves. A change never adds host memory after its entries allow access nor removes it
//!   before they refuse it (host mappings are made before the entries are filled and taken
//!   away after they are cleared), so the view is safe to copy by.
//!
//! So an accessor waits for nothing, and a changer waits only for accessors' copies (one
//! bounded chunk each).

use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Set in the lock word while a thread sleeps waiting for it.
pub const WAITERS: u32 = 1 << 31;

/// How long one futex sleep lasts before the holder's liveness is probed again.
const SLICE: Duration = Duration::from_millis(20);

/// Byte offset in the lock page of the change record's sequence count (u64), followed by
/// the record: kind, start, end, a, b (u64 each).
pub const REC_SEQ: usize = 16;
/// Byte offset of the count of accessors' departures (u32, wrapping), which a changer
/// waiting for them sleeps on.
pub const LEFT: usize = 64;
/// Byte offset of the accessors' slots: [`NSLOTS`] u32 thread ids, 0 when free.
pub const SLOTS: usize = 128;
/// How many accessors may be registered at once.
pub const NSLOTS: usize = 32;

/// A change of page-table entries, as recorded for accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Every entry of [start, end) becomes `value` (0: unmapped).
    Fill { start: u64, end: u64, value: u8 },
    /// Every entry `b` of [start, end) becomes `(b & and) | or`.
    Mask {
        start: u64,
        end: u64,
        and: u8,
        or: u8,
    },
    /// A move between two ranges (mremap): both are refused until it is done.
    Move { from: (u64, u64), to: (u64, u64) },
    /// The published VMA list moves to `ptr` (`len` records): see space/published.rs.
    Directory { ptr: u64, len: u64 },
}

impl Change {
    fn words(self) -> [u64; 5] {
        match self {
            Change::Fill { start, end, value } => [1, start, end, value as u64, 0],
            Change::Mask {
                start,
                end,
                and,
                or,
            } => [2, start, end, and as u64, or as u64],
            Change::Move { from, to } => [3, from.0, from.1, to.0, to.1],
            Change::Directory { ptr, len } => [4, 0, 0, ptr, len],
        }
    }

    /// The change a record's words describe (None: no change, or an unknown kind).
    pub fn from_words(w: [u64; 5]) -> Option<Change> {
        match w[0] {
            1 => Some(Change::Fill {
                start: w[1],
                end: w[2],
                value: w[3] as u8,
            }),
            2 => Some(Change::Mask {
                start: w[1],
                end: w[2],
                and: w[3] as u8,
                or: w[4] as u8,
            }),
            3 => Some(Change::Move {
                from: (w[1], w[2]),
                to: (w[3], w[4]),
            }),
            4 => Some(Change::Directory {
                ptr: w[3],
                len: w[4],
            }),
            _ => None,
        }
    }

    /// The entry of the page at `addr` after this change, given the entry `b` read before,
    /// during or after it.
    pub fn apply(self, addr: u64, b: u8) -> u8 {
        match self {
            Change::Fill { start, end, value } if (start..end).contains(&addr) => value,
            Change::Mask {
                start,
                end,
                and,
                or,
            } if (start..end).contains(&addr) => (b & and) | or,
            Change::Move { from, to }
                if (from.0..from.1).contains(&addr) || (to.0..to.1).contains(&addr) =>
            {
                0
            }
            _ => b,
        }
    }
}

/// The lock page's word at byte offset `off` of the page holding `word`.
fn at<T>(word: &AtomicU32, off: usize) -> &T {
    // SAFETY: `word` is at offset 0 of a whole shared page that stays mapped while installed
    // (`install`); callers pass aligned offsets of that page's layout above.
    unsafe { &*(word.as_ptr().cast::<u8>().add(off).cast::<T>()) }
}

/// Writes `c` into the record of the lock page holding `word` (a seqlock: odd while written).
fn record(word: &AtomicU32, c: Change) {
    let seq: &AtomicU64 = at(word, REC_SEQ);
    let s = seq.load(Ordering::Relaxed);
    seq.store(s.wrapping_add(1) | 1, Ordering::Relaxed);
    fence(Ordering::Release);
    for (i, w) in c.words().iter().enumerate() {
        at::<AtomicU64>(word, REC_SEQ + 8 + 8 * i).store(*w, Ordering::Relaxed);
    }
    seq.store((s.wrapping_add(1) | 1).wrapping_add(1), Ordering::Release);
}

/// Waits until no accessor is registered in the lock page holding `word`, freeing the slots
/// of accessors that died. The wait cannot end early: the change that waits must not begin
/// while an accessor copies by the table as it was. While this thread's stop flag
/// ([`set_stop_flag`]) is set, the personality's hook ([`set_on_stop`]) is called at every
/// slice: a thread of a process that is ending parks there, before its change begins. The
/// mapping calls wait first with [`settle`], which gives up on the stop flag, so a signal
/// finds a thread waiting for accessors before any change at once.
pub fn wait_borrowers(word: &AtomicU32) {
    let stop = STOP.try_with(|s| s.borrow().clone()).ok().flatten();
    while !wait_clear(word, || {
        stop.as_ref().is_some_and(|s| s.load(Ordering::Acquire))
    }) {
        if let Some(hook) = ON_STOP.get() {
            hook();
        }
        // The flag stays set until the thread's call returns: wait one slice, then ask again.
        let left: &AtomicU32 = at(word, LEFT);
        wait_slice(word, left.load(Ordering::SeqCst));
    }
}

/// Waits until no accessor is registered in the lock page holding `word` (true), or until
/// `stop` is set (false), whichever comes first. A mapping call waits here before it changes
/// anything, so that a signal for a thread held up by another process's accessor (which may
/// be stopped for good in the middle of its copy) is acted on at once and the call restarted,
/// as Linux's mmap_write_lock_killable lets a fatal signal through (mm/mmap.c).
pub fn settle(word: &AtomicU32, stop: &AtomicBool) -> bool {
    wait_clear(word, || stop.load(Ordering::Acquire))
}

/// The wait of [`wait_borrowers`] and [`settle`]: false as soon as `interrupted` says so
/// while an accessor is registered.
fn wait_clear(word: &AtomicU32, interrupted: impl Fn() -> bool) -> bool {
    fence(Ordering::SeqCst);
    let left: &AtomicU32 = at(word, LEFT);
    loop {
        // Read before the slots: an accessor that leaves after we looked bumps it, and the
        // sleep below then returns at once.
        let n = left.load(Ordering::SeqCst);
        let busy =
            (0..NSLOTS).any(|i| at::<AtomicU32>(word, SLOTS + 4 * i).load(Ordering::SeqCst) != 0);
        if !busy {
            return true;
        }
        if reclaim_dead(word) {
            continue;
        }
        if interrupted() {
            return false;
        }
        wait_slice(word, n);
    }
}

/// Sleeps until an accessor leaves the lock page holding `word` (its departure count moves
/// from `n`), 2 ms at most (the slice at which a dead accessor and the stop flag are looked
/// at again).
fn wait_slice(word: &AtomicU32, n: u32) {
    let left: &AtomicU32 = at(word, LEFT);
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000,
    };
    futex(left, libc::FUTEX_WAIT, n, Some(&ts));
}

thread_local! {
    /// This thread's stop flag, given by the personality ([`set_stop_flag`]).
    static STOP: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// What a thread waiting for accessors with its stop flag set does (the personality's).
static ON_STOP: OnceLock<fn()> = OnceLock::new();

/// Makes `flag` the stop flag this thread's waits for accessors look at (see
/// [`wait_borrowers`]).
pub fn set_stop_flag(flag: Arc<AtomicBool>) {
    let _ = STOP.try_with(|s| *s.borrow_mut() = Some(flag));
}

/// Sets the hook a waiting thread calls while its stop flag is set (once per process; later
/// calls change nothing). It may not return (a thread of an ending process parks).
pub fn set_on_stop(hook: fn()) {
    let _ = ON_STOP.set(hook);
}

/// Frees the slots of registered accessors that died (SIGKILL during a copy); returns
/// whether it freed any.
fn reclaim_dead(word: &AtomicU32) -> bool {
    let mut any = false;
    for i in 0..NSLOTS {
        let slot: &AtomicU32 = at(word, SLOTS + 4 * i);
        let tid = slot.load(Ordering::Relaxed);
        if tid != 0
            && dead(tid)
            && slot
                .compare_exchange(tid, 0, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            any = true;
        }
    }
    any
}

/// An accessor's registration in a target's lock page (see the module comment); leaves when
/// dropped.
pub struct Borrow<'a> {
    word: &'a AtomicU32,
    slot: usize,
}

impl<'a> Borrow<'a> {
    /// Registers this thread as an accessor of the lock page holding `word` (a mapping of
    /// another process's page), waiting only while all slots are taken by other accessors.
    pub fn enter(word: &'a AtomicU32) -> Borrow<'a> {
        let me = gettid();
        let mut i = 0usize;
        loop {
            let slot: &AtomicU32 = at(word, SLOTS + 4 * (i % NSLOTS));
            if slot
                .compare_exchange(0, me, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                fence(Ordering::SeqCst);
                return Borrow {
                    word,
                    slot: i % NSLOTS,
                };
            }
            i += 1;
            if i.is_multiple_of(NSLOTS) {
                // Every slot taken: free those of accessors that died, else let the others
                // finish their copies.
                if !reclaim_dead(word) {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Reads the target's table consistently: `read` reads entries (and whatever else a
    /// change may alter) and is given the change in progress, if any, to apply to them; it
    /// is called again if a new change began while it ran.
    pub fn read<R>(&self, mut read: impl FnMut(Option<Change>) -> R) -> R {
        let seq: &AtomicU64 = at(self.word, REC_SEQ);
        loop {
            let s1 = seq.load(Ordering::Acquire);
            // Odd: a change is being recorded and has not touched an entry (it waits for us
            // first), so the entries are as the last change left them.
            let change = if s1 & 1 == 0 {
                let mut w = [0u64; 5];
                for (i, v) in w.iter_mut().enumerate() {
                    *v = at::<AtomicU64>(self.word, REC_SEQ + 8 + 8 * i).load(Ordering::Relaxed);
                }
                Change::from_words(w)
            } else {
                None
            };
            let r = read(change);
            fence(Ordering::Acquire);
            if s1 & 1 == 1 || seq.load(Ordering::Relaxed) == s1 {
                return r;
            }
        }
    }
}

impl Drop for Borrow<'_> {
    fn drop(&mut self) {
        let slot: &AtomicU32 = at(self.word, SLOTS + 4 * self.slot);
        if slot.swap(0, Ordering::SeqCst) != 0 {
            let left: &AtomicU32 = at(self.word, LEFT);
            left.fetch_add(1, Ordering::SeqCst);
            futex(left, libc::FUTEX_WAKE, i32::MAX as u32, None);
        }
    }
}

/// This process's lock word (in its shared page), null before the Linux personality installs
/// it. Static because there is one page table per host process.
static WORD: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

/// Makes `word` the lock this process takes around page-table changes; returns the previous
/// one (null if none). `word` must stay mapped for as long as it is installed.
pub fn install(word: *const AtomicU32) -> *const AtomicU32 {
    WORD.swap(word as *mut AtomicU32, Ordering::AcqRel)
}

/// This process's installed lock word, if any.
pub fn installed() -> Option<&'static AtomicU32> {
    let p = WORD.load(Ordering::Acquire);
    // SAFETY: an installed word stays mapped while installed (see `install`); a fork child
    // that replaces it keeps the old page mapped until it has installed the new one.
    (!p.is_null()).then(|| unsafe { &*p })
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Whether the host thread `tid` no longer exists (kill with signal 0 finds threads by id).
fn dead(tid: u32) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    unsafe { libc::kill(tid as i32, 0) != 0 && *libc::__errno_location() == libc::ESRCH }
}

fn futex(word: &AtomicU32, op: i32, val: u32, timeout: Option<&libc::timespec>) {
    let ts = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live 32-bit word; the timeout, if any, is a valid timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            val,
            ts,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}

/// Takes `word`. With `patience`, gives up (returns false) once that much time has passed
/// without getting it; without, waits as long as the holder lives.
pub fn acquire(word: &AtomicU32, patience: Option<Duration>) -> bool {
    let me = gettid();
    if word
        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return true;
    }
    let start = Instant::now();
    loop {
        let v = word.load(Ordering::Relaxed);
        if v == 0 {
            // Others may still sleep: keep WAITERS so our release wakes them.
            if word
                .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            continue;
        }
        if v & WAITERS == 0
            && word
                .compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let mut slice = SLICE;
        if let Some(p) = patience {
            let spent = start.elapsed();
            if spent >= p {
                return false;
            }
            slice = slice.min(p - spent);
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: slice.as_nanos() as libc::c_long,
        };
        futex(word, libc::FUTEX_WAIT, v | WAITERS, Some(&ts));
        let now = word.load(Ordering::Relaxed);
        if now != 0
            && dead(now & !WAITERS)
            && word
                .compare_exchange(now, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
    }
}

/// Releases `word`, taken by [`acquire`].
pub fn release(word: &AtomicU32) {
    if word.swap(0, Ordering::Release) & WAITERS != 0 {
        futex(word, libc::FUTEX_WAKE, i32::MAX as u32, None);
    }
}

thread_local! {
    /// How many [`Hold`]s this thread has open: a change that spans a host call and several
    /// table updates (mremap) holds the lock across all of them, its table updates nest.
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The owning process's hold on its own lock while it changes page-table entries (or host
/// memory the entries still describe). Holds nest within a thread; the outermost one records
/// its change and waits for registered accessors before the change begins.
pub struct Hold(Option<&'static AtomicU32>);

impl Hold {
    /// Takes this process's lock if one is installed (waiting for another of its threads
    /// that changes the table), records `change` and waits until no accessor reads the table.
    pub fn take(change: Change) -> Hold {
        let w = installed();
        if let Some(w) = w {
            // Outside thread-local storage (a thread being torn down) a hold does not nest.
            let depth = DEPTH.try_with(|d| d.replace(d.get() + 1)).unwrap_or(0);
            if depth == 0 {
                acquire(w, None);
                record(w, change);
                wait_borrowers(w);
            } else if matches!(change, Change::Directory { .. }) {
                // A change that ends by republishing the VMA list (mremap) has made all its
                // entry changes by then: the list's move replaces its record.
                record(w, change);
                wait_borrowers(w);
            }
        }
        Hold(w)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            let left = DEPTH
                .try_with(|d| {
                    d.set(d.get().saturating_sub(1));
                    d.get()
                })
                .unwrap_or(0);
            if left == 0 {
                release(w);
            }
        }
    }
}
