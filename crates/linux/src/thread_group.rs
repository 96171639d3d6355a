//! The thread group of a guest process: `Threads`, the registry of its live guest threads that
//! `Process::threads` owns, and what a guest thread publishes to the others through it (the
//! stop flag, robust-list head, registers for core dumps, whether it is in guest code). The
//! run loop, the TLB shootdown, fork and exit_group use it; creating and ending threads is
//! `thread.rs`.

use crate::process::Thread;
use crate::signals;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What other threads may need to know about a live guest thread.
pub(crate) struct Shared {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) robust_head: AtomicU64,
    pub(crate) robust_len: AtomicU64,
    /// Odd while the thread runs guest code (inside `Cpu::run`); bumped on entry and exit.
    pub(crate) guest_gen: AtomicU64,
    /// The thread's registers as last published (syscall entry, or parked while the process
    /// ends), for core dumps; `parked` once it has stopped for good.
    pub(crate) regs: Mutex<Option<crate::coredump::notes::ThreadRegs>>,
    pub(crate) parked: AtomicBool,
    /// Set while the thread is inside a syscall it published its registers for.
    pub(crate) in_syscall: AtomicBool,
}

// A thread-local, not process-wide state: it maps the host thread to the guest thread it
// runs (one each), for the hooks that have no `Thread` at hand (guest_enter, syscall_done).
thread_local! {
    /// The guest thread this host thread runs.
    static ME: std::cell::RefCell<Option<Arc<Shared>>> = const { std::cell::RefCell::new(None) };
}

pub(crate) fn set_me(s: &Arc<Shared>) {
    ME.with(|m| *m.borrow_mut() = Some(s.clone()));
    // A wait for another process's accessors (cetbox_mem::xlock) looks at it too.
    cetbox_mem::xlock::set_stop_flag(s.stop.clone());
}

/// Set once the process is ending (`thread::end_process`): for the hook of a thread waiting
/// for another process's accessors, which has no `Thread` at hand.
pub(crate) static ENDING: AtomicBool = AtomicBool::new(false);

/// The hook of a thread waiting for another process's accessors with its stop flag set
/// (`cetbox_mem::xlock::set_on_stop`): a thread of a process that is ending parks before its
/// change begins (it makes no more changes, and the host's exit_group ends it); any other
/// goes on waiting, as the change it is making must not begin before the accessors leave.
pub(crate) fn park_if_ending() {
    if ENDING.load(Ordering::Acquire) {
        park_forever();
    }
}

fn bump_gen() {
    ME.with(|m| {
        if let Some(s) = m.borrow().as_ref() {
            s.guest_gen.fetch_add(1, Ordering::SeqCst);
        }
    });
}

/// Called by the run loop right before entering guest code.
pub fn guest_enter() {
    bump_gen();
}

/// Called by the run loop right after leaving guest code.
pub fn guest_leave() {
    bump_gen();
}

/// After a syscall that removed or restricted guest memory (munmap, mprotect, mremap...):
/// waits until every other thread that was running guest code has reached an instruction
/// boundary between blocks, the analogue of a TLB shootdown. From then on no thread finishes
/// an access that passed its page-table check before the change, and each one drops its
/// decoded blocks before running more guest code if the change removed pages holding decoded
/// code or a shadow stack (the code epoch changed then; `AddressSpace::removals` counts every
/// change that calls for this wait).
pub fn shootdown(t: &Thread) {
    let others = t.proc.threads.others(t.tid);
    if others.is_empty() {
        return;
    }
    std::sync::atomic::fence(Ordering::SeqCst);
    let mut waiting = Vec::new();
    for (tid, s) in others {
        let g = s.guest_gen.load(Ordering::SeqCst);
        if g & 1 == 1 {
            s.stop.store(true, Ordering::SeqCst);
            waiting.push((tid, s, g));
        }
    }
    for (tid, s, g) in waiting {
        let mut spins = 0u32;
        while s.guest_gen.load(Ordering::SeqCst) == g {
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            // A thread that sleeps in the host kernel in the middle of guest code is blocked
            // in a page fault on a userfaultfd-registered page: it may stay there until this
            // very thread resolves the fault, so it is not waited for (natively the fault
            // would not hold this thread up either).
            if spins >= 4096 && spins.is_multiple_of(1024) && host_sleeping(tid) {
                break;
            }
        }
    }
}

/// Whether host thread `tid` of this process is sleeping interruptibly (state S in
/// /proc/self/task/TID/stat, proc(5)).
fn host_sleeping(tid: i32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    let Some(close) = stat.iter().rposition(|&c| c == b')') else {
        return false;
    };
    stat.get(close + 2) == Some(&b'S')
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Guest threads that have not exited, counted from the moment clone decides to create
    /// one (before its tid exists), so the "last thread" test cannot race with a clone.
    pub(crate) live: usize,
    pub(crate) by_tid: HashMap<i32, Arc<Shared>>,
}

/// The guest threads of one host process: a kernel object owned by its `Process`
/// (`Process::threads`), as Linux's thread group hangs off its signal_struct. The TLB
/// shootdown, exit_group, core dumps and get_robust_list walk it. A fork child's `Process`
/// gets a new one listing only the forking thread (`register_first`); the parent's lock is
/// held across the host fork (`lock_for_fork`). Host signal handlers never touch it (they
/// use `signals::host`'s lock-free slots).
pub struct Threads {
    registry: Mutex<Registry>,
    /// `Registry::live`, readable without the lock (for the per-syscall test in the run loop).
    live: AtomicUsize,
    /// Set once the process is ending (exit_group or a fatal signal).
    pub(crate) exiting: AtomicBool,
}

impl Default for Threads {
    fn default() -> Threads {
        Threads {
            registry: Mutex::new(Registry::default()),
            live: AtomicUsize::new(1),
            exiting: AtomicBool::new(false),
        }
    }
}

impl Threads {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The started threads other than `me`.
    fn others(&self, me: i32) -> Vec<(i32, Arc<Shared>)> {
        self.registry()
            .by_tid
            .iter()
            .filter(|(tid, _)| **tid != me)
            .map(|(tid, s)| (*tid, s.clone()))
            .collect()
    }

    /// Changes the registry under its lock and republishes the live count; returns it.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Registry)) -> usize {
        let mut r = self.registry();
        f(&mut r);
        self.live.store(r.live, Ordering::SeqCst);
        r.live
    }

    /// Counts one thread less (it exited, or its creation failed after being counted), and
    /// removes `tid` if it had started; returns how many remain.
    pub(crate) fn remove(&self, tid: Option<i32>) -> usize {
        self.update(|r| {
            if let Some(tid) = tid {
                r.by_tid.remove(&tid);
            }
            r.live = r.live.saturating_sub(1);
        })
    }

    /// The tids of the live guest threads that have started, in ascending order (a debugger
    /// enumerates threads through this).
    pub fn tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.registry().by_tid.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// How many guest threads are alive (counted from clone's decision).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Whether the process may have more than one guest thread: only then can another thread
    /// change the mappings while this one is in a host call (see usermem).
    pub fn multithreaded(&self) -> bool {
        self.live() != 1
    }

    /// Whether the process is ending; threads that notice stop running guest code.
    pub fn exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    /// Makes `t` the one thread of a new registry (a new process's leader, a fork child).
    fn register_first(&self, t: &Thread) {
        let s = shared_of(t);
        set_me(&s);
        let mut r = self.registry();
        *r = Registry::default();
        r.live = 1;
        r.by_tid.insert(t.tid, s);
        self.live.store(1, Ordering::SeqCst);
    }
}

pub(crate) fn shared_of(t: &Thread) -> Arc<Shared> {
    Arc::new(Shared {
        stop: t.stop.clone(),
        robust_head: AtomicU64::new(t.robust_list.0),
        robust_len: AtomicU64::new(t.robust_list.1),
        guest_gen: AtomicU64::new(0),
        regs: Mutex::new(None),
        parked: AtomicBool::new(false),
        in_syscall: AtomicBool::new(false),
    })
}

/// Publishes this thread's registers for a core dump (`parking`: it is stopping for good).
pub fn publish_regs(t: &Thread, parking: bool) {
    let orig = if parking { -1 } else { t.orig_rax };
    let mut r = crate::coredump::regs_of(t, orig);
    if !parking {
        // Killed while blocked in the syscall, the kernel's saved RAX holds the syscall's
        // -ERESTARTSYS (or a like code), not the number.
        r.gpr[0] = (-512i64) as u64;
    }
    ME.with(|m| {
        if let Some(s) = m.borrow().as_ref() {
            *s.regs.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            if parking {
                s.parked.store(true, Ordering::SeqCst);
            } else {
                s.in_syscall.store(true, Ordering::SeqCst);
            }
        }
    });
}

/// The syscall `publish_regs` was called for has returned.
pub fn syscall_done() {
    ME.with(|m| {
        if let Some(s) = m.borrow().as_ref() {
            s.in_syscall.store(false, Ordering::SeqCst);
        }
    });
}

/// For a core dump while the process ends: waits (at most about a second) until every other
/// thread has parked (publishing its registers) or is inside a syscall that may block (whose
/// entry registers it published), and returns their registers (tid order). A thread that
/// stays away longer (blocked in a quick syscall on a userfaultfd page, stopped) is left out.
pub(crate) fn others_regs(t: &Thread) -> Vec<crate::coredump::notes::ThreadRegs> {
    let others = t.proc.threads.others(t.tid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut out = Vec::new();
    for (_, s) in &others {
        while !s.parked.load(Ordering::SeqCst)
            && !s.in_syscall.load(Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        if let Some(r) = s.regs.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.tid);
    out
}

/// Registers the process's first thread (the leader).
pub fn register_main(t: &Thread) {
    t.proc.threads.register_first(t);
}

/// The parent's thread registry, held by the forking thread across fork (crates/linux/src/
/// fork.rs): another parent thread must not be halfway through changing it (clone, exit)
/// when the host fork copies memory.
pub struct ForkGuard<'a> {
    _held: MutexGuard<'a, Registry>,
}

/// Takes `parent`'s registry lock for a fork (see `ForkGuard`); both sides drop it after.
pub fn lock_for_fork(parent: &Threads) -> ForkGuard<'_> {
    ForkGuard {
        _held: parent.registry(),
    }
}

/// In a child made by fork, once `t.proc` is the child's `Process`: its registry lists only
/// the thread that forked. The parent's registry (`g`) is not the child's any more.
pub fn after_fork_child(t: &Thread, g: ForkGuard) {
    drop(g);
    // The parent may have begun to end after this thread passed its checks: the child has
    // not (else a mapping call of its waiting for an accessor would park it for good).
    ENDING.store(false, Ordering::Release);
    t.proc.threads.register_first(t);
}

/// Records a new set_robust_list head, for get_robust_list from other threads.
pub fn note_robust(t: &Thread) {
    let r = t.proc.threads.registry();
    if let Some(s) = r.by_tid.get(&t.tid) {
        s.robust_head.store(t.robust_list.0, Ordering::Relaxed);
        s.robust_len.store(t.robust_list.1, Ordering::Relaxed);
    }
}

/// The robust list (head, len) of live thread `tid` of `t`'s process.
pub fn robust_list_of(t: &Thread, tid: i32) -> Option<(u64, u64)> {
    let r = t.proc.threads.registry();
    let s = r.by_tid.get(&tid)?;
    Some((
        s.robust_head.load(Ordering::Relaxed),
        s.robust_len.load(Ordering::Relaxed),
    ))
}

/// Asks every other thread to leave guest code at its next block boundary.
pub(crate) fn stop_others(t: &Thread) {
    for (tid, s) in &t.proc.threads.registry().by_tid {
        if *tid != t.tid {
            s.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Blocks this host thread for good, taking no signals (so the host kernel routes
/// process-directed signals to threads that run guest code).
pub fn park_forever() -> ! {
    signals::host::set_host_mask(!0);
    loop {
        std::thread::park();
    }
}
