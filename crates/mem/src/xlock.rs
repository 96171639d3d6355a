//! The page table's cross-process lock.
//!
//! Another guest process is another cetbox process, so process_vm_readv/writev, ptrace
//! PEEK/POKE and /proc/PID/mem between guests are carried out by the accessing cetbox on the
//! host. It must check each page against the *target's* page table and copy while that table
//! cannot change (Linux holds the target's mmap_lock across its check and copy: mm/gup.c
//! `__get_user_pages` under `mmap_read_lock`, mm/process_vm_access.c). This lock is that
//! exclusion: a 32-bit word in a page shared through a memfd (the Linux personality creates it
//! and publishes it: crates/linux/src/remote_mem.rs). The owning process takes it around every
//! change of its page-table entries ([`Hold`], from `PageTable::fill`, `clear` and `update`);
//! a remote accessor takes it around its check and copy.
//!
//! The word is 0 when free, else the host thread id of the holder, with [`WAITERS`] set when
//! someone sleeps on it (a shared futex: FUTEX_WAIT without FUTEX_PRIVATE_FLAG, since two
//! processes map the page). A holder that died while holding it (SIGKILL between its check and
//! its copy) is found by a liveness probe after each sleep slice and its lock taken over.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set in the lock word while a thread sleeps waiting for it.
pub const WAITERS: u32 = 1 << 31;

/// How long one futex sleep lasts before the holder's liveness is probed again.
const SLICE: Duration = Duration::from_millis(20);

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
/// memory the entries still describe). Holds nest within a thread.
pub struct Hold(Option<&'static AtomicU32>);

impl Hold {
    /// Takes this process's lock if one is installed (waiting as long as a remote accessor
    /// that holds it lives: its hold covers one bounded check and copy).
    pub fn take() -> Hold {
        let w = installed();
        if let Some(w) = w {
            // Outside thread-local storage (a thread being torn down) a hold does not nest.
            let depth = DEPTH.try_with(|d| d.replace(d.get() + 1)).unwrap_or(0);
            if depth == 0 {
                acquire(w, None);
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
