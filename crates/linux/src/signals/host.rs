//! Host signals: asynchronous signals sent to the cetbox process (SIGINT from a terminal,
//! SIGALRM from the guest's timers, kill from another process or from the guest itself) are
//! recorded by a host handler and delivered to the guest at the next instruction boundary.
//!
//! The handler only copies the host siginfo into a lock-free ring belonging to the receiving
//! thread (found by its tid in a fixed registry) and sets that thread's stop flag; the thread
//! collects the ring in `deliver_pending`. The handler is installed without SA_RESTART, so a
//! blocking host call made on the guest's behalf returns EINTR and the syscall layer can
//! return EINTR or restart per the guest's SA_RESTART (see `deliver::take_restart`).
//!
//! Host dispositions follow the guest's: SIG_IGN stays SIG_IGN on the host (so ignored signals
//! never interrupt anything and exec'd programs inherit the ignore), SIG_DFL of signals whose
//! default is to ignore, stop or continue is SIG_DFL on the host (the host kernel then stops
//! or continues cetbox itself), and everything else gets the recording handler. The guest's
//! blocked mask is the host thread's mask (`set_host_mask`), so blocked signals stay pending
//! in the host kernel, where rt_sigpending, rt_sigtimedwait and signalfd find them.
//!
//! SIGPIPE: cetbox never dies of its own SIGPIPE: unless the guest ignores it, the recording
//! handler is installed, so a write on the guest's behalf to a broken pipe returns EPIPE and
//! the SIGPIPE the host kernel raised for it reaches the guest as Linux would send it.

use super::*;
use crate::process::Thread;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const RING: usize = 64;
const MAX_THREADS: usize = 4096;

/// A multi-producer queue of raw siginfo images, written from signal handlers.
struct Ring {
    write: AtomicUsize,
    read: AtomicUsize,
    seq: [AtomicUsize; RING],
    data: [[AtomicU64; 16]; RING],
}

impl Ring {
    const fn new() -> Ring {
        Ring {
            write: AtomicUsize::new(0),
            read: AtomicUsize::new(0),
            seq: [const { AtomicUsize::new(0) }; RING],
            data: [const { [const { AtomicU64::new(0) }; 16] }; RING],
        }
    }

    /// Async-signal-safe: atomics only. False when full.
    fn push(&self, w: &[u64; 16]) -> bool {
        loop {
            let i = self.write.load(Ordering::Acquire);
            if i.wrapping_sub(self.read.load(Ordering::Acquire)) >= RING {
                return false;
            }
            if self
                .write
                .compare_exchange(i, i.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let s = i % RING;
                for (d, v) in self.data[s].iter().zip(w) {
                    d.store(*v, Ordering::Relaxed);
                }
                self.seq[s].store(i.wrapping_add(1), Ordering::Release);
                return true;
            }
        }
    }

    /// Whether the ring has no free slot left.
    fn full(&self) -> bool {
        self.write
            .load(Ordering::Acquire)
            .wrapping_sub(self.read.load(Ordering::Acquire))
            >= RING
    }

    /// Whether nothing is waiting in the ring.
    fn empty(&self) -> bool {
        self.write.load(Ordering::Acquire) == self.read.load(Ordering::Acquire)
    }

    /// Single consumer.
    fn pop(&self) -> Option<[u64; 16]> {
        let r = self.read.load(Ordering::Relaxed);
        if r == self.write.load(Ordering::Acquire) {
            return None;
        }
        let s = r % RING;
        if self.seq[s].load(Ordering::Acquire) != r.wrapping_add(1) {
            // A producer claimed the slot and is still writing it; it sets the stop flag
            // afterwards, so we come back.
            return None;
        }
        let mut w = [0u64; 16];
        for (v, d) in w.iter_mut().zip(&self.data[s]) {
            *v = d.load(Ordering::Relaxed);
        }
        self.read.store(r.wrapping_add(1), Ordering::Release);
        Some(w)
    }
}

/// One registered guest thread.
struct Slot {
    tid: AtomicI32,
    /// The thread's stop flag (a leaked Arc<AtomicBool> reference, valid forever).
    stop: AtomicPtr<AtomicBool>,
    ring: Ring,
    /// Set when the handler filled the ring and blocked every asynchronous signal on the
    /// host thread (see `throttle`); `collect` unblocks them once it has drained the ring.
    throttled: AtomicBool,
    /// Set by the handler with each record, cleared by `collect` before it drains the ring:
    /// a signal may be waiting for delivery, so a host wait must not begin (`waitcall`).
    recorded: AtomicBool,
}

// The statics below are what the host signal handler reads or writes. They are statics
// because async-signal safety requires it: a handler gets no argument through which to reach
// a `Process` and may take no lock, so it can only use lock-free data at fixed addresses.
// (`ORPHANS_CONSUMER` is taken by the collecting threads, never by the handler.)

/// Registered threads, filled in order and never freed (a slot is reused by setting its tid),
/// so the handler can walk it without locks.
static SLOTS: [AtomicPtr<Slot>; MAX_THREADS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_THREADS];
/// Signals that arrived on a thread that runs no guest code: process-directed.
static ORPHANS: Ring = Ring::new();
static ORPHANS_CONSUMER: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// The host dispositions cetbox found at start, for chaining real faults of cetbox itself.
static OLD_HANDLER: [AtomicUsize; NSIG + 1] = [const { AtomicUsize::new(0) }; NSIG + 1];
static OLD_FLAGS: [AtomicU64; NSIG + 1] = [const { AtomicU64::new(0) }; NSIG + 1];
/// glibc's restorer, for the raw rt_sigaction calls on the signals glibc reserves (32, 33).
static RESTORER: AtomicUsize = AtomicUsize::new(0);

/// The kernel's struct sigaction for x86-64.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct KSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

fn raw_sigaction(sig: i32, new: Option<&KSigaction>) -> Option<KSigaction> {
    let mut old = KSigaction::default();
    let np = new.map_or(std::ptr::null(), |n| n as *const KSigaction);
    // SAFETY: both pointers are valid KSigaction structures (or null), size 8 is the kernel's
    // sigset size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig as libc::c_long,
            np,
            &mut old as *mut KSigaction,
            8usize,
        )
    };
    (r == 0).then_some(old)
}

fn is_sync(sig: i32) -> bool {
    valid(sig) && SYNCHRONOUS & bit(sig) != 0
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler must leave it as it found it.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let words: [u64; 16] = unsafe { std::ptr::read(info as *const [u64; 16]) };
    // si_code is the int at byte offset 8: the low half of the second word.
    let code = words[1] as u32 as i32;
    if is_sync(sig) && code > 0 {
        if sig == libc::SIGBUS && cetbox_mem::recover_host_fault(words[2]) {
            // Host memory behind a guest file page vanished (the file was truncated under the
            // mapping): the page now reads as zeros and the guest gets the SIGBUS Linux sends
            // (BUS_ADRERR at that address), at the end of the interrupted instruction.
            let mut w = [0u64; 16];
            w[0] = libc::SIGBUS as u64;
            w[1] = crate::signals::info::BUS_ADRERR as u32 as u64;
            w[2] = words[2];
            record(&w);
        } else if let Some(fixup) = (sig == libc::SIGSEGV)
            .then(|| cetbox_mem::probe_fixup(fault_rip(ctx)))
            .flatten()
        {
            // A probe of a guest page (cetbox_mem's faultin::probe) found it unmapped while it
            // waited for a userfaultfd resolver: the probe reports it, and the access faults
            // in the page-table check, precisely, as Linux's retried fault does.
            set_fault_rip(ctx, fixup);
        } else if sig == libc::SIGSEGV && cetbox_mem::recover_unmapped_fault(words[2]) {
            // A guest access blocked on a userfaultfd missing page was woken after another
            // guest thread unmapped the page: Linux's retried fault finds no VMA and raises
            // SIGSEGV (SEGV_MAPERR) at the address; the access itself completed on a zero
            // page, and the signal comes at the end of the interrupted instruction.
            let mut w = [0u64; 16];
            w[0] = libc::SIGSEGV as u64;
            w[1] = crate::signals::info::SEGV_MAPERR as u32 as u64;
            w[2] = words[2];
            record(&w);
        } else {
            // A real fault in cetbox itself (guest faults never reach the host): chain to the
            // handler that was there before (Rust's stack-overflow report) or die of it.
            crash(sig, info, ctx);
        }
    } else if crate::waitcall::poke::is_poke(sig, &words) {
        // A poke of a waiting call made with a signal already recorded (waitcall/poke.rs):
        // it has done its work by interrupting the call, and is no signal of the guest's.
    } else {
        // A CARRIER may carry a stop signal from a guest tracer's cetbox, or be our own
        // ptrace self-stop signal left over (syscalls/ptrace/stop.rs).
        let words = if sig == crate::syscalls::ptrace::stop::CARRIER {
            match crate::syscalls::ptrace::stop::carried(&words) {
                crate::syscalls::ptrace::stop::Carried::Signal(w) => w,
                crate::syscalls::ptrace::stop::Carried::Drop => {
                    // SAFETY: as above.
                    unsafe { *libc::__errno_location() = saved_errno };
                    return;
                }
                crate::syscalls::ptrace::stop::Carried::Keep => words,
            }
        } else {
            words
        };
        if record(&words) {
            throttle(ctx);
        }
        // A host wait about to begin for this thread must not sleep through the signal.
        crate::waitcall::rewind(ctx);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// The RIP of the interrupted context.
fn fault_rip(ctx: *mut libc::c_void) -> u64 {
    // SAFETY: the kernel passes the interrupted thread's ucontext to an SA_SIGINFO handler.
    unsafe { (*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 }
}

/// Makes the interrupted context resume at `rip` (rt_sigreturn reloads it).
fn set_fault_rip(ctx: *mut libc::c_void, rip: u64) {
    // SAFETY: as in `fault_rip`; the context is the handler's to change.
    unsafe {
        (*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RIP as usize] = rip as i64;
    }
}

/// The ring of the interrupted thread is full: block every asynchronous signal in the
/// context the handler returns to, so further ones stay queued in the host kernel (which
/// keeps up to RLIMIT_SIGPENDING of them, as Linux does for the guest) instead of being lost;
/// `collect` unblocks them after draining the ring. Faults stay unblocked (a blocked fault
/// kills the process).
fn throttle(ctx: *mut libc::c_void) {
    let keep = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
    ]
    .iter()
    .fold(0u64, |m, &s| m | 1 << (s - 1));
    // SAFETY: the kernel passes the ucontext of the interrupted thread; its uc_sigmask is
    // restored by rt_sigreturn, and its first 8 bytes are the kernel's sigset.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let mask = std::ptr::addr_of_mut!((*uc).uc_sigmask).cast::<u64>();
        *mask |= !keep;
    }
}

/// Stores a signal for the receiving thread; true if that filled its ring (the caller then
/// throttles the thread).
fn record(words: &[u64; 16]) -> bool {
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    for s in SLOTS.iter() {
        let p = s.load(Ordering::Acquire);
        if p.is_null() {
            break;
        }
        // SAFETY: slots are leaked and never freed.
        let slot = unsafe { &*p };
        if slot.tid.load(Ordering::Acquire) == tid {
            if slot.ring.push(words) {
                slot.recorded.store(true, Ordering::SeqCst);
                wake(slot);
                if slot.ring.full() {
                    slot.throttled.store(true, Ordering::SeqCst);
                    return true;
                }
                return false;
            }
            break;
        }
    }
    let _ = ORPHANS.push(words);
    for s in SLOTS.iter() {
        let p = s.load(Ordering::Acquire);
        if p.is_null() {
            break;
        }
        // SAFETY: as above.
        wake(unsafe { &*p });
    }
    false
}

fn wake(slot: &Slot) {
    let f = slot.stop.load(Ordering::Acquire);
    if !f.is_null() {
        // SAFETY: the stop flag behind the pointer is leaked and never freed.
        unsafe { (*f).store(true, Ordering::SeqCst) };
    }
}

fn crash(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let old = OLD_HANDLER[sig as usize].load(Ordering::Relaxed);
    let flags = OLD_FLAGS[sig as usize].load(Ordering::Relaxed);
    if old > 1 {
        if flags & SA_SIGINFO != 0 {
            // SAFETY: the previous owner installed this function as an SA_SIGINFO handler.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(old) };
            f(sig, info, ctx);
        } else {
            // SAFETY: as above, a plain handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(old) };
            f(sig);
        }
        return;
    }
    // Returning re-executes the faulting instruction, which now kills us with the signal.
    let dfl = KSigaction {
        restorer: RESTORER.load(Ordering::Relaxed),
        flags: SA_RESTORER,
        ..KSigaction::default()
    };
    let _ = raw_sigaction(sig, Some(&dfl));
}

/// Registers a thread so host signals that arrive on it are recorded for it. Called by
/// `install` for the first thread; thread creation must call it for new threads (it is also
/// done lazily at the first `collect`).
pub fn register_thread(t: &mut Thread) {
    let stop = std::sync::Arc::into_raw(t.stop.clone()) as *mut AtomicBool;
    // Reuse a slot already holding this tid or a freed one (tid 0), else take a new one.
    for (i, s) in SLOTS.iter().enumerate() {
        let p = s.load(Ordering::Acquire);
        if p.is_null() {
            let slot = Box::into_raw(Box::new(Slot {
                tid: AtomicI32::new(t.tid),
                stop: AtomicPtr::new(stop),
                ring: Ring::new(),
                throttled: AtomicBool::new(false),
                recorded: AtomicBool::new(false),
            }));
            if s.compare_exchange(
                std::ptr::null_mut(),
                slot,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
            {
                t.signals.host_slot = Some(i);
                return;
            }
            // SAFETY: we just allocated it and nobody else saw it.
            drop(unsafe { Box::from_raw(slot) });
            continue;
        }
        // SAFETY: slots are leaked and never freed.
        let slot = unsafe { &*p };
        let cur = slot.tid.load(Ordering::Acquire);
        if cur == t.tid
            || (cur == 0
                && slot
                    .tid
                    .compare_exchange(0, t.tid, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok())
        {
            // Old records belong to a previous owner of the tid (a forked parent).
            while slot.ring.pop().is_some() {}
            slot.throttled.store(false, Ordering::SeqCst);
            slot.recorded.store(false, Ordering::SeqCst);
            slot.stop.store(stop, Ordering::Release);
            t.signals.host_slot = Some(i);
            return;
        }
    }
    // Registry full: signals for this thread arrive through the orphan ring.
}

/// In a forked child only the forking thread survives: every slot of the parent's threads is
/// freed, records the parent had not collected yet are dropped (they were the parent's), and
/// the thread registers under its new tid.
pub fn after_fork(t: &mut Thread) {
    for s in SLOTS.iter() {
        let p = s.load(Ordering::Acquire);
        if p.is_null() {
            break;
        }
        // SAFETY: slots are leaked and never freed.
        let slot = unsafe { &*p };
        slot.tid.store(0, Ordering::Release);
        while slot.ring.pop().is_some() {}
    }
    while ORPHANS.pop().is_some() {}
    t.signals.host_slot = None;
    register_thread(t);
}

/// Frees the thread's slot at thread exit.
pub fn unregister_thread(t: &mut Thread) {
    if let Some(slot) = my_slot(t) {
        slot.tid.store(0, Ordering::Release);
    }
    t.signals.host_slot = None;
}

/// The thread's "signal recorded, not yet collected" flag, for host waits (`waitcall`).
pub fn recorded_flag(t: &Thread) -> Option<&'static AtomicBool> {
    my_slot(t).map(|s| &s.recorded)
}

fn my_slot(t: &Thread) -> Option<&'static Slot> {
    let i = t.signals.host_slot?;
    let p = SLOTS.get(i)?.load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: slots are leaked and never freed.
    let slot = unsafe { &*p };
    (slot.tid.load(Ordering::Acquire) == t.tid).then_some(slot)
}

/// Moves recorded host signals into the thread's (and process's) pending lists and clears the
/// stop flag. Returns whether any signal was recorded since the last call.
pub fn collect(t: &mut Thread) -> bool {
    t.stop.store(false, Ordering::SeqCst);
    if my_slot(t).is_none() {
        register_thread(t);
    }
    let mut got = false;
    if let Some(slot) = my_slot(t) {
        // Before draining: a record made meanwhile sets it again.
        slot.recorded.store(false, Ordering::SeqCst);
        loop {
            while let Some(w) = slot.ring.pop() {
                got = true;
                deliver::queue_thread(t, info_from_words(&w));
            }
            if !slot.throttled.swap(false, Ordering::SeqCst) {
                break;
            }
            // The ring has room again: let the host deliver what it kept queued (the handler
            // runs as the mask changes, refilling the ring), until nothing is left, so all
            // of them are pending for the guest now, as they would be on Linux.
            set_host_mask(t.signals.mask);
        }
        // A record made between the store above and the drain (this thread's handler can
        // interrupt `collect` anywhere) was drained but left the flag set, which would make
        // the next host wait answer EINTR for nothing: clear it again, and set it back if a
        // record arrived meanwhile (a handler running after the check sets it itself).
        slot.recorded.store(false, Ordering::SeqCst);
        if !slot.ring.empty() {
            slot.recorded.store(true, Ordering::SeqCst);
        }
    }
    if ORPHANS.read.load(Ordering::Acquire) != ORPHANS.write.load(Ordering::Acquire) {
        if let Ok(_g) = ORPHANS_CONSUMER.try_lock() {
            while let Some(w) = ORPHANS.pop() {
                got = true;
                deliver::queue_process(&t.proc, info_from_words(&w));
            }
        }
    }
    got
}

fn info_from_words(w: &[u64; 16]) -> SigInfo {
    let mut b = [0u8; 128];
    for (i, v) in w.iter().enumerate() {
        b[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    SigInfo::from_bytes(&b)
}

/// Sets the host thread's blocked mask (the kernel drops SIGKILL and SIGSTOP itself). The
/// ptrace CARRIER stays unblocked (syscalls/ptrace/stop.rs): a guest CARRIER the guest blocks
/// is then held by cetbox, pending, until the guest unblocks it.
pub fn set_host_mask(mask: u64) {
    let m = mask & !bit(crate::syscalls::ptrace::stop::CARRIER);
    // SAFETY: valid pointer to an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as libc::c_long,
            &m as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

/// Blocks every host signal on this host thread, the ptrace CARRIER included (which
/// `set_host_mask` always leaves unblocked): around a fork, whose child must not take one
/// before it has registered for host signals.
pub fn block_all() {
    let m = !0u64;
    // SAFETY: valid pointer to an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as libc::c_long,
            &m as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

/// The host thread's blocked mask.
pub fn host_mask() -> u64 {
    let mut m = 0u64;
    // SAFETY: valid pointer to an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK as libc::c_long,
            std::ptr::null::<u64>(),
            &mut m as *mut u64,
            8usize,
        );
    }
    m
}

/// Signals pending for this host thread or the host process (blocked ones, since unblocked
/// ones go straight to the handler).
pub fn host_pending() -> u64 {
    let mut m = 0u64;
    // SAFETY: valid pointer to an 8-byte kernel sigset.
    unsafe {
        libc::syscall(libc::SYS_rt_sigpending, &mut m as *mut u64, 8usize);
    }
    m
}

/// Finds glibc's signal restorer, needed for raw rt_sigaction calls: installs a disposition
/// through libc once and reads back what libc passed to the kernel.
fn init_restorer() {
    if RESTORER.load(Ordering::Relaxed) != 0 {
        return;
    }
    // SAFETY: a zeroed sigaction with SIG_DFL is valid; SIGURG's default is to ignore, and
    // its previous disposition is put back right away.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let mut old: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGURG, &sa, &mut old);
        if let Some(k) = raw_sigaction(libc::SIGURG, None) {
            RESTORER.store(k.restorer, Ordering::Relaxed);
        }
        libc::sigaction(libc::SIGURG, &old, std::ptr::null_mut());
    }
}

/// Makes the host disposition of `sig` follow the guest's action (see the module comment).
pub fn sync_action(proc: &crate::process::Process, sig: i32) {
    if !valid(sig) || sig == SIGKILL || sig == SIGSTOP {
        return;
    }
    init_restorer();
    let (handler, flags) = host_action(proc, sig);
    let k = KSigaction {
        handler,
        flags: flags | SA_RESTORER,
        restorer: RESTORER.load(Ordering::Relaxed),
        // Nothing interrupts the recording handler.
        mask: !UNBLOCKABLE,
    };
    let _ = raw_sigaction(sig, Some(&k));
}

/// The host handler and flags that follow the guest's disposition of `sig` (module comment).
pub fn host_action(proc: &crate::process::Process, sig: i32) -> (usize, u64) {
    let a = proc.signals.action(sig);
    // The ptrace CARRIER stays caught whatever the guest's action (syscalls/ptrace/stop.rs:
    // it carries a guest tracer's requests, which must reach cetbox): cetbox applies the
    // guest's action when it delivers.
    let (handler, mut flags) = if sig == crate::syscalls::ptrace::stop::CARRIER {
        (on_signal as *const () as usize, SA_SIGINFO | SA_ONSTACK)
    } else if a.handler == SIG_IGN {
        (SIG_IGN as usize, 0)
    } else if a.handler == SIG_DFL
        && !is_sync(sig)
        && matches!(
            default_action(sig),
            DefaultAction::Ignore | DefaultAction::Stop | DefaultAction::Continue
        )
    {
        (SIG_DFL as usize, 0)
    } else {
        (on_signal as *const () as usize, SA_SIGINFO | SA_ONSTACK)
    };
    if sig == SIGCHLD {
        flags |= a.flags & (SA_NOCLDSTOP | SA_NOCLDWAIT);
    }
    (handler, flags)
}

/// Routes host signals to the guest: records the dispositions and mask cetbox inherited (an
/// exec'd guest keeps its ignored signals and its blocked mask, as on Linux), installs the
/// host handlers and registers the thread.
pub fn install(t: &mut Thread) {
    init_restorer();
    let ours = on_signal as *const () as usize;
    // The dispositions cetbox inherited, read before the host C library can change them.
    let inherited: Vec<(i32, Option<KSigaction>)> = (1..=NSIG as i32)
        .filter(|&sig| sig != SIGKILL && sig != SIGSTOP)
        .map(|sig| (sig, raw_sigaction(sig, None)))
        .collect();
    settle_host_libc_threads();
    for (sig, old) in inherited {
        let Some(old) = old else {
            continue;
        };
        if old.handler != ours {
            OLD_HANDLER[sig as usize].store(old.handler, Ordering::Relaxed);
            OLD_FLAGS[sig as usize].store(old.flags, Ordering::Relaxed);
            // Rust's runtime ignores SIGPIPE for itself; that is not the guest's choice.
            if old.handler == SIG_IGN as usize && sig != SIGPIPE {
                t.proc.signals.set_action(
                    sig,
                    SigAction {
                        handler: SIG_IGN,
                        ..SigAction::default()
                    },
                );
            }
            // Setting SIG_IGN, or SIG_DFL of a signal whose default is to ignore, discards
            // its pending instances, blocked ones included (kernel/signal.c do_sigaction,
            // POSIX): where the host already has what the guest's disposition needs (an
            // exec'd guest's inherited SIG_IGN and SIG_DFL), it is left alone, so signals
            // pending across the exec stay pending as on Linux.
            let (handler, _) = host_action(&t.proc, sig);
            if handler == old.handler
                && (handler == SIG_IGN as usize || handler == SIG_DFL as usize)
            {
                continue;
            }
        }
        sync_action(&t.proc, sig);
    }
    t.signals.mask = host_mask() & !UNBLOCKABLE;
    set_host_mask(t.signals.mask);
    register_thread(t);
}

/// The host C library's one-time set-up for a multi-threaded process runs now, before cetbox
/// installs its handlers, not at the first guest thread: glibc's first pthread_create
/// (nptl/pthread_create.c, late_init) installs its own handler for SIGSETXID (signal 33, the
/// signal of its setuid broadcast, nptl/nptl_setxid.c) and unblocks signals 32 and 33. Had it
/// replaced cetbox's handler, a guest's own setxid broadcast (a guest thread calling setuid
/// while others run: tgkill with signal 33 to each) would run the host glibc's handler in the
/// guest threads, which finds no setxid command of the host's and dies of SIGSEGV. The
/// thread's signal mask is put back, as the guest inherits it.
fn settle_host_libc_threads() {
    let mask = host_mask();
    // A thread that cannot be created leaves late_init for later: nothing worse than before.
    let _ = std::thread::Builder::new()
        .name("cetbox-init".into())
        .spawn(|| {})
        .map(|h| h.join());
    set_host_mask(mask);
}

/// Waits for a host signal with the host thread mask `mask` (rt_sigsuspend); returns once a
/// handler has run.
pub fn suspend(mask: u64) {
    let m = mask;
    // SAFETY: valid pointer to an 8-byte kernel sigset.
    unsafe {
        libc::syscall(libc::SYS_rt_sigsuspend, &m as *const u64, 8usize);
    }
}
