//! The core-dumped bit (WCOREDUMP, 0x80) of a dead guest child's wait status.
//!
//! Linux sets it when the core was written (fs/coredump.c coredump_finish: `group_exit_code
//! |= 0x80` when the binfmt's core_dump succeeded), and waitid reports CLD_DUMPED instead of
//! CLD_KILLED (kernel/exit.c wait_task_zombie). cetbox writes the guest's core itself and
//! then dies of the signal with its own RLIMIT_CORE at 0, or the host kernel would replace the
//! guest's core with cetbox's; so the host's wait status lacks the bit, and only a cetbox
//! parent can add it. The dying child tells it through shared memory: every cetbox process
//! maps one shared anonymous page before it forks (children inherit the mapping); a child
//! that wrote its core puts its pid there, and the parent's wait4/waitid, on reaping that pid
//! killed by a signal, takes it out and sets the bit (or CLD_DUMPED).
//!
//! A parent that is not a cetbox guest (a native shell) sees the bit only where cetbox could
//! have the host dump it (`host_bit`). Not covered: a child that re-executed cetbox (execve from a multi-threaded guest, see
//! `reexec`), which no longer maps its parent's page.

use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

const SLOTS: usize = 1024;

type Page = [AtomicI32; SLOTS];

// Statics on purpose: they name pages of the host process that the host fork must hand
// down as they are (the child's PARENT is the forking process's MINE, see `after_fork_child`),
// and a dying process reads them after its `Process` may be gone (`report_dumped`).

/// The page this process's children report to (created before the first fork).
static MINE: AtomicPtr<Page> = AtomicPtr::new(std::ptr::null_mut());
/// The page of this process's parent (inherited through fork), if the parent is cetbox.
static PARENT: AtomicPtr<Page> = AtomicPtr::new(std::ptr::null_mut());

fn new_page() -> *mut Page {
    // SAFETY: a fresh shared anonymous mapping at a kernel-chosen address (outside the guest
    // reservation, which the host's own mmap never uses); zero-filled, so every slot is free.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Page>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Called in the parent before it forks: makes sure its page exists, so the child inherits it.
pub fn before_fork() {
    if MINE.load(Ordering::Acquire).is_null() {
        let p = new_page();
        if !p.is_null() {
            MINE.store(p, Ordering::Release);
        }
    }
}

/// Called in a forked child: its parent's page is the one it inherited as its own; its own
/// children will get a fresh one.
pub fn after_fork_child() {
    PARENT.store(MINE.load(Ordering::Acquire), Ordering::Release);
    MINE.store(std::ptr::null_mut(), Ordering::Release);
}

/// Whether this process wrote the guest's core (`report_dumped` was called).
static WRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this dying process wrote the guest's core file.
pub fn written() -> bool {
    WRITTEN.load(Ordering::Acquire)
}

/// Called by a dying process whose core file was written.
pub fn report_dumped(pid: i32) {
    WRITTEN.store(true, Ordering::Release);
    let p = PARENT.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: the page is a live shared mapping for the life of the process.
    let page = unsafe { &*p };
    for s in page.iter() {
        if s.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Whether the child `pid` (just reaped) reported a written core; forgets it.
pub fn take_dumped(pid: i32) -> bool {
    let p = MINE.load(Ordering::Acquire);
    if p.is_null() || pid <= 0 {
        return false;
    }
    // SAFETY: as above.
    let page = unsafe { &*p };
    page.iter().any(|s| {
        s.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}
