//! The debug controller: lets a debugger (the front end's gdb stub) stop, inspect and resume
//! the threads of one guest process, in gdb's all-stop model.
//!
//! The guest threads keep running on their own host threads; the debugger talks to them only
//! through this controller. A thread stops ("parks") by publishing a copy of its registers
//! (`regs::Regs`) and waiting; the debugger reads and changes that copy and the process's
//! memory, then resumes every thread with an action (continue or single-step, with or without
//! a signal). Stops come from:
//! - a software breakpoint: an INT3 byte the controller writes over the instruction (a forced
//!   write, which makes every CPU drop its decoded blocks), as a native debugger does; the
//!   debugger reads and writes the original byte, and a hit rewinds RIP to the breakpoint;
//! - a hardware breakpoint at RIP, checked before the instruction runs;
//! - the end of a single step (after the instruction, or after the syscall it made);
//! - a watchpoint hit (`watch`), after the accessing instruction;
//! - a signal about to be delivered, fault signals included (shadow-stack violations stop
//!   here with RIP at the faulting instruction, before SIGSEGV is delivered);
//! - the debugger's interrupt (Ctrl-C);
//! - a successful execve (reported as SIGTRAP, as Linux does for a traced process).
//!
//! When one thread stops, the others are asked to stop at their next instruction boundary
//! (their stop flags, as for signals); a thread blocked in a syscall counts as stopped with the
//! state it entered the syscall with (its registers are then read-only) and parks when the call
//! returns. Only the engine's interface is used: `Cpu::run` with its stop flag while no
//! hardware breakpoint or watchpoint is set, `Cpu::step` one instruction at a time while one
//! is (or while single-stepping).
//!
//! The controller is process-wide (one per host process); a forked child runs undebugged.

pub mod regs;
pub mod watch;

use crate::errno::Errno;
use crate::process::{ExitRequest, Thread};
use crate::signals::SigInfo;
use cetbox_cpu::{Exception, Exit};
use regs::Regs;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use watch::Watch;

/// The breakpoint instruction (Intel SDM Vol. 2A, INT3).
const INT3: u8 = 0xcc;

// Process-wide statics: one gdb connection serves one host process (`--gdb` attaches to the
// first guest process only), and a fork child's reset is `forked_child`. `ACTIVE` is the
// run loop's one relaxed load per block while no debugger exists; `CURRENT` is reached from
// hooks given no `Process` (`thread_end` gets only a tid). Not async-signal state: no signal
// handler reads either. (Moving both into `Process` would make the fork child's reset
// implicit; not done yet.)
static ACTIVE: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Arc<Debugger>>> = Mutex::new(None);

/// Whether this process is being debugged (one relaxed load: the run loop's fast check).
#[inline(always)]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn current() -> Option<Arc<Debugger>> {
    if !active() {
        return None;
    }
    CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Makes `d` the debugger of this process; every thread stops before its first instruction.
pub fn install(d: Arc<Debugger>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
    ACTIVE.store(true, Ordering::SeqCst);
}

/// In a child made by fork: the debugger stays with the parent (its connection, its server
/// thread); the child runs undebugged. try_lock, as the parent may have held the lock.
pub fn forked_child() {
    if !active() {
        return;
    }
    ACTIVE.store(false, Ordering::SeqCst);
    if let Ok(mut g) = CURRENT.try_lock() {
        // The child's copy of memory has the parent's INT3 bytes: put the code back, as gdb
        // does for a child it does not follow. (The parent inserts breakpoints only while
        // all its threads are stopped, so the table is not locked across a fork.)
        if let Some(d) = g.take() {
            if let Ok(st) = d.st.try_lock() {
                for (&a, &b) in &st.sw {
                    let _ = d.proc.mem.force_write(a, &[b]);
                }
            }
        }
    }
}

/// Why a thread stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// A signal is about to be delivered; the debugger decides whether it is.
    Signal(SigInfo),
    SwBreak,
    HwBreak,
    /// A single step finished.
    Step,
    Watch(watch::Hit),
    /// Stopped at the debugger's request.
    Interrupted,
    /// The thread completed an execve: a new program image.
    Exec,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub tid: i32,
    pub kind: StopKind,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
}

/// What a thread does when resumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Action {
    #[default]
    Continue,
    Step,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Running guest code (or about to).
    Running,
    /// Stopped, registers published.
    Parked,
    /// Inside a syscall that may block; registers published read-only.
    InSyscall,
}

struct Slot {
    regs: Regs,
    state: ThreadState,
    dirty: bool,
    action: Action,
    signal: Option<i32>,
    /// Kept stopped while others run (gdb's scheduler locking).
    held: bool,
    /// The signal of the thread's last signal stop ($_siginfo).
    siginfo: Option<SigInfo>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    slots: BTreeMap<i32, Slot>,
    /// All-stop in effect: every thread must park.
    stopping: bool,
    report: Option<Stop>,
    /// Software breakpoints: address and the original byte under the INT3.
    sw: BTreeMap<u64, u8>,
    hw: BTreeSet<u64>,
    watches: Vec<Watch>,
    ended: Option<Ended>,
    ended_seen: bool,
    /// An execve replaced the image: gdb, not told of it, still inserts breakpoints at the
    /// old program's addresses; where nothing is mapped now, they are accepted and ignored.
    exec_seen: bool,
}

/// The debug controller of a process.
pub struct Debugger {
    pub proc: Arc<crate::Process>,
    st: Mutex<State>,
    cv: Condvar,
    /// Bumped when breakpoints or watchpoints change; threads refresh their copies.
    points_gen: AtomicU64,
    /// Mirrors `State::stopping` for the run loop's lock-free check.
    stopping: AtomicBool,
    /// Wakes the debugger's server when a stop is reported or the process ends.
    notify: Box<dyn Fn() + Send + Sync>,
}

/// A guest thread's copy of what it needs at every instruction.
#[derive(Default)]
struct Local {
    gen: u64,
    hw: BTreeSet<u64>,
    watches: Vec<Watch>,
    action: Action,
    /// The debugger's answer to this thread's own signal stop.
    answer: Option<i32>,
    /// A step finished (reported at the next entry, after the syscall it may have made).
    step_done: bool,
    watch_hit: Option<watch::Hit>,
}

thread_local! {
    /// Per host thread, so per guest thread (each guest thread has its own host thread).
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

impl Debugger {
    /// A controller for `proc`, whose thread `first` reports a SIGTRAP stop when it starts (as a
    /// process does under ptrace after execve), before running any instruction.
    pub fn new(proc: Arc<crate::Process>, first: i32, notify: Box<dyn Fn() + Send + Sync>) -> Self {
        let st = State {
            stopping: true,
            report: Some(Stop {
                tid: first,
                kind: StopKind::Signal(SigInfo::new(libc::SIGTRAP, 0)),
            }),
            ..State::default()
        };
        Debugger {
            proc,
            st: Mutex::new(st),
            cv: Condvar::new(),
            points_gen: AtomicU64::new(0),
            stopping: AtomicBool::new(true),
            notify,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- The debugger's side ----

    /// Waits until a stop is reported and every thread has stopped; returns the stop, or the
    /// end of the process.
    pub fn wait_stopped(&self) -> Result<Stop, Ended> {
        let mut g = self.lock();
        loop {
            if let Some(e) = g.ended {
                return Err(e);
            }
            if let Some(r) = &g.report {
                let all = g.slots.values().all(|s| s.state != ThreadState::Running);
                if all && g.slots.contains_key(&r.tid) {
                    return Ok(r.clone());
                }
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether a stop or the end is ready to be reported (without waiting for other threads).
    pub fn has_event(&self) -> bool {
        let g = self.lock();
        g.ended.is_some() || g.report.is_some()
    }

    /// Stops every thread (Ctrl-C); the stop is reported for the lowest tid.
    pub fn interrupt(&self) {
        let mut g = self.lock();
        if g.stopping || g.ended.is_some() {
            return;
        }
        let Some(&tid) = g.slots.keys().next() else {
            return;
        };
        // As gdbserver's kill(SIGINT) would: SI_USER, from this process's own pid here.
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let info = SigInfo::sent(libc::SIGINT, 0, self.proc.pid, uid);
        if let Some(s) = g.slots.get_mut(&tid) {
            s.siginfo = Some(info);
        }
        g.report = Some(Stop {
            tid,
            kind: StopKind::Interrupted,
        });
        self.begin_stop(&mut g);
    }

    fn begin_stop(&self, g: &mut State) {
        g.stopping = true;
        self.stopping.store(true, Ordering::SeqCst);
        for s in g.slots.values() {
            s.stop.store(true, Ordering::SeqCst);
        }
        (self.notify)();
    }

    /// Resumes the threads: those named in `actions` with their action; the others continue
    /// without a signal if `others_run`, else stay stopped (scheduler locking).
    pub fn resume(&self, actions: &BTreeMap<i32, (Action, Option<i32>)>, others_run: bool) {
        let mut g = self.lock();
        for (tid, s) in g.slots.iter_mut() {
            let named = actions.get(tid).copied();
            let (a, sig) = named.unwrap_or((Action::Continue, None));
            s.action = a;
            s.signal = sig;
            s.held = named.is_none() && !others_run;
        }
        g.report = None;
        g.stopping = false;
        self.stopping.store(false, Ordering::SeqCst);
        self.cv.notify_all();
    }

    /// Ends debugging: breakpoints and watchpoints go, and every thread runs on.
    pub fn detach(&self) {
        let mut g = self.lock();
        for (&a, &b) in &g.sw {
            let _ = self.proc.mem.force_write(a, &[b]);
        }
        g.sw.clear();
        g.hw.clear();
        g.watches.clear();
        ACTIVE.store(false, Ordering::SeqCst);
        for s in g.slots.values_mut() {
            s.action = Action::Continue;
            s.signal = None;
            s.held = false;
        }
        g.report = None;
        g.stopping = false;
        self.stopping.store(false, Ordering::SeqCst);
        self.points_gen.fetch_add(1, Ordering::SeqCst);
        self.cv.notify_all();
    }

    /// Tells a process that is ending that its end was reported.
    pub fn end_seen(&self) {
        let mut g = self.lock();
        g.ended_seen = true;
        self.cv.notify_all();
    }

    pub fn threads(&self) -> Vec<i32> {
        self.lock().slots.keys().copied().collect()
    }

    pub fn regs(&self, tid: i32) -> Option<Regs> {
        self.lock().slots.get(&tid).map(|s| s.regs.clone())
    }

    pub fn thread_state(&self, tid: i32) -> Option<ThreadState> {
        self.lock().slots.get(&tid).map(|s| s.state)
    }

    /// Replaces a parked thread's registers (EBUSY for a thread blocked in a syscall). The
    /// shadow-stack pointer goes through `Regs::set_ssp`'s checks.
    pub fn set_regs(&self, tid: i32, r: &Regs) -> Result<(), Errno> {
        let mut g = self.lock();
        let s = g.slots.get_mut(&tid).ok_or(Errno::ESRCH)?;
        if s.state != ThreadState::Parked {
            return Err(Errno(libc::EBUSY));
        }
        let mut n = r.clone();
        n.shstk_enabled = s.regs.shstk_enabled;
        n.ssp = s.regs.ssp;
        if r.ssp != s.regs.ssp {
            n.set_ssp(r.ssp)?;
        }
        s.regs = n;
        s.dirty = true;
        Ok(())
    }

    /// The signal of `tid`'s last signal stop.
    pub fn siginfo(&self, tid: i32) -> Option<SigInfo> {
        self.lock().slots.get(&tid).and_then(|s| s.siginfo)
    }

    /// Inserts or removes a breakpoint. Returns false if a software breakpoint cannot be
    /// written (unmapped address).
    pub fn set_breakpoint(&self, addr: u64, hw: bool, on: bool) -> bool {
        let mut g = self.lock();
        self.points_gen.fetch_add(1, Ordering::SeqCst);
        if hw {
            if on {
                g.hw.insert(addr);
            } else {
                g.hw.remove(&addr);
            }
            return true;
        }
        let mem = &self.proc.mem;
        if on {
            if g.sw.contains_key(&addr) {
                return true;
            }
            let mut orig = [0u8; 1];
            if crate::procfs::forced_access(mem, addr, &mut orig, false).is_err()
                || mem.force_write(addr, &[INT3]).is_err()
            {
                return g.exec_seen && mem.find_vma(addr).is_none();
            }
            g.sw.insert(addr, orig[0]);
        } else if let Some(b) = g.sw.remove(&addr) {
            let _ = mem.force_write(addr, &[b]);
        }
        true
    }

    fn is_sw_breakpoint(&self, addr: u64) -> bool {
        self.lock().sw.contains_key(&addr)
    }

    pub fn set_watch(&self, w: Watch, on: bool) -> bool {
        let mut g = self.lock();
        if on {
            g.watches.push(w);
        } else if let Some(i) = g.watches.iter().position(|x| *x == w) {
            g.watches.remove(i);
        } else {
            return false;
        }
        self.points_gen.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Reads guest memory as ptrace does (FOLL_FORCE: any mapped page, whatever its
    /// protection). Returns how much was read; Err if nothing could be.
    pub fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let g = self.lock();
        let n = crate::procfs::forced_access(&self.proc.mem, addr, buf, false)? as usize;
        // The debugger sees the original bytes under its breakpoints.
        for (&a, &b) in g.sw.range(addr..addr.saturating_add(n as u64)) {
            buf[(a - addr) as usize] = b;
        }
        Ok(n)
    }

    /// Writes guest memory as ptrace does (FOLL_FORCE: read-only and shadow-stack pages too).
    pub fn write_memory(&self, addr: u64, data: &[u8]) -> Result<usize, Errno> {
        let mut g = self.lock();
        let mut b = data.to_vec();
        // A write over a breakpoint changes the byte the breakpoint restores.
        let end = addr.saturating_add(data.len() as u64);
        for (&a, orig) in g.sw.range_mut(addr..end) {
            *orig = b[(a - addr) as usize];
            b[(a - addr) as usize] = INT3;
        }
        crate::procfs::forced_access(&self.proc.mem, addr, &mut b, true).map(|n| n as usize)
    }

    // ---- The guest threads' side ----

    /// Publishes the thread's registers, waits for the resume and takes its action. The
    /// thread whose stop is reported (`reporting`) gets its resume signal as the answer to
    /// its stop (`Local::answer`); any other thread has it injected as a new signal.
    fn park<'a>(
        &'a self,
        t: &mut Thread,
        mut g: MutexGuard<'a, State>,
        reporting: bool,
    ) -> MutexGuard<'a, State> {
        let tid = t.tid;
        // A parked thread runs no guest code: its virtual CPU is free for others meanwhile.
        crate::rseq::leave(t);
        if let Some(s) = g.slots.get_mut(&tid) {
            s.regs = Regs::of(t, u64::MAX);
            s.state = ThreadState::Parked;
            s.dirty = false;
        }
        self.cv.notify_all();
        while g.stopping || g.slots.get(&tid).is_some_and(|s| s.held) {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        let (mut action, mut signal) = (Action::Continue, None);
        if let Some(s) = g.slots.get_mut(&tid) {
            if s.dirty {
                s.regs.apply(t);
                s.dirty = false;
            }
            s.state = ThreadState::Running;
            action = s.action;
            signal = s.signal.take();
        }
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            l.action = action;
            l.step_done = false;
            l.watch_hit = None;
            l.answer = if reporting { signal } else { None };
        });
        if let (Some(sig), false) = (signal, reporting) {
            // A signal the debugger gives a thread whose stop was not a signal stop: queued
            // for the thread as if sent to it by kill.
            let pid = t.proc.pid;
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            crate::signals::deliver::queue_thread(t, SigInfo::sent(sig, 0, pid, uid));
        }
        g
    }

    /// Reports `kind` for thread `t` and parks it. Returns the action and signal the debugger
    /// resumed it with, or None if another thread's stop was in progress: the thread parked
    /// for that one and the caller must look again whether its own event still holds.
    fn stop_here(&self, t: &mut Thread, kind: StopKind) -> Option<(Action, Option<i32>)> {
        let mut g = self.lock();
        if !active() {
            return Some((Action::Continue, None));
        }
        if g.stopping {
            drop(self.park(t, g, false));
            return None;
        }
        let info = stop_siginfo(t, &kind);
        if let Some(s) = g.slots.get_mut(&t.tid) {
            s.siginfo = Some(info);
        }
        if kind == StopKind::Exec {
            // The old image's addresses mean nothing in the new one.
            g.sw.clear();
            g.hw.clear();
            g.watches.clear();
            g.exec_seen = true;
            self.points_gen.fetch_add(1, Ordering::SeqCst);
        }
        g.report = Some(Stop { tid: t.tid, kind });
        self.begin_stop(&mut g);
        drop(self.park(t, g, true));
        Some(LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            (l.action, l.answer.take())
        }))
    }

    /// If `exit` is one of our INT3s trapping, rewinds RIP to the breakpoint and reports it;
    /// returns whether it was. (A thread that finds another stop in progress parks first; the
    /// breakpoint, if still there, traps again when it resumes.)
    fn breakpoint_hit(&self, t: &mut Thread, exit: &Exit) -> bool {
        if *exit != Exit::Exception(Exception::Breakpoint) {
            return false;
        }
        let at = t.cpu.rip.wrapping_sub(1);
        if !self.is_sw_breakpoint(at) {
            return false;
        }
        t.cpu.rip = at;
        self.stop_here(t, StopKind::SwBreak);
        true
    }

    /// Parks the thread if an all-stop is in effect.
    fn park_if_stopping(&self, t: &mut Thread) {
        if self.stopping.load(Ordering::SeqCst) {
            let g = self.lock();
            if g.stopping {
                drop(self.park(t, g, false));
            }
        }
    }

    fn refresh_points(&self) {
        let gen = self.points_gen.load(Ordering::SeqCst);
        LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            if l.gen == gen {
                return;
            }
            let g = self.lock();
            l.hw = g.hw.clone();
            l.watches = g.watches.clone();
            l.gen = self.points_gen.load(Ordering::SeqCst);
        });
    }
}

/// The siginfo of a stop, as Linux fills it for the SIGTRAP or SIGINT a ptraced thread
/// reports: a single step is TRAP_TRACE, an INT3 breakpoint SI_KERNEL (do_int3_user), a
/// debug-register breakpoint or watchpoint TRAP_HWBKPT (arch/x86/kernel/traps.c,
/// exc_debug_user), the post-execve trap and an interrupt SI_USER from the process itself
/// (send_sig and kill).
fn stop_siginfo(t: &Thread, kind: &StopKind) -> SigInfo {
    use crate::signals::info::{SI_KERNEL, TRAP_TRACE};
    const TRAP_HWBKPT: i32 = 4;
    let pid = t.proc.pid;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    match kind {
        StopKind::Signal(si) => *si,
        StopKind::Step => SigInfo::fault(libc::SIGTRAP, TRAP_TRACE, 0),
        StopKind::SwBreak => SigInfo::new(libc::SIGTRAP, SI_KERNEL),
        StopKind::HwBreak => SigInfo::fault(libc::SIGTRAP, TRAP_HWBKPT, t.cpu.rip),
        StopKind::Watch(h) => SigInfo::fault(libc::SIGTRAP, TRAP_HWBKPT, h.addr),
        StopKind::Exec => SigInfo::sent(libc::SIGTRAP, 0, pid, uid),
        StopKind::Interrupted => SigInfo::sent(libc::SIGINT, 0, pid, uid),
    }
}

/// Registers a thread that starts running guest code.
pub fn thread_begin(t: &mut Thread) {
    let Some(d) = current() else { return };
    let mut g = d.lock();
    g.slots.insert(
        t.tid,
        Slot {
            regs: Regs::of(t, u64::MAX),
            state: ThreadState::Running,
            dirty: false,
            action: Action::Continue,
            signal: None,
            held: false,
            siginfo: None,
            stop: t.stop.clone(),
        },
    );
    LOCAL.with(|l| *l.borrow_mut() = Local::default());
    if g.stopping {
        t.stop.store(true, Ordering::SeqCst);
    }
}

/// Forgets a thread whose run loop ended.
pub fn thread_end(tid: i32) {
    let Some(d) = current() else { return };
    let mut g = d.lock();
    g.slots.remove(&tid);
    d.cv.notify_all();
}

/// Runs guest code for the run loop in place of `Cpu::run`, stopping where the debugger
/// asked.
/// Runs the engine once an rseq-registered thread holds its virtual CPU (`crate::rseq::enter`).
fn run_engine(t: &mut Thread, stop: &std::sync::atomic::AtomicBool) -> Exit {
    if !crate::rseq::enter(t) {
        return Exit::Interrupted;
    }
    t.engine.run(&mut t.cpu, stop)
}

pub fn run(t: &mut Thread) -> Exit {
    let stop = t.stop.clone();
    let Some(d) = current() else {
        return run_engine(t, &stop);
    };
    loop {
        d.park_if_stopping(t);
        if !active() {
            return run_engine(t, &stop);
        }
        d.refresh_points();
        // Events of the previous step, reported now that its syscall (if any) is done.
        let (step_done, hit) = LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            (std::mem::take(&mut l.step_done), l.watch_hit.take())
        });
        if let Some(h) = hit {
            d.stop_here(t, StopKind::Watch(h));
            continue;
        }
        if step_done {
            d.stop_here(t, StopKind::Step);
            continue;
        }
        let (stepping, points) = LOCAL.with(|l| {
            let l = l.borrow();
            (
                l.action == Action::Step,
                !l.hw.is_empty() || !l.watches.is_empty(),
            )
        });
        if !stepping && !points {
            let exit = run_engine(t, &stop);
            if d.breakpoint_hit(t, &exit) {
                continue;
            }
            return exit;
        }
        // One instruction at a time, checking breakpoints before and watchpoints after each.
        loop {
            if stop.load(Ordering::Relaxed) {
                return Exit::Interrupted;
            }
            let rip = t.cpu.rip;
            if LOCAL.with(|l| l.borrow().hw.contains(&rip)) {
                d.stop_here(t, StopKind::HwBreak);
                break;
            }
            let watches = LOCAL.with(|l| l.borrow().watches.clone());
            let (acc, before) = if watches.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                (watch::accesses(t), watch::snapshot(t, &watches))
            };
            if !crate::rseq::enter(t) {
                return Exit::Interrupted;
            }
            let r = t.engine.step(&mut t.cpu);
            if let Some(e) = &r {
                if d.breakpoint_hit(t, e) {
                    break;
                }
            }
            let completed = !matches!(r, Some(Exit::Exception(_)));
            if completed && !watches.is_empty() {
                if let Some(h) = watch::check(t, &watches, &acc, &before) {
                    LOCAL.with(|l| l.borrow_mut().watch_hit = Some(h));
                    return r.unwrap_or(Exit::Interrupted);
                }
            }
            if stepping {
                if completed {
                    LOCAL.with(|l| l.borrow_mut().step_done = true);
                }
                return r.unwrap_or(Exit::Interrupted);
            }
            if let Some(e) = r {
                return e;
            }
        }
    }
}

/// A signal is about to be delivered to `t`: the debugger sees it first. Returns the signal to
/// deliver (the same, another one, or None to discard it).
pub fn on_signal(t: &mut Thread, info: SigInfo) -> Option<SigInfo> {
    let d = current()?;
    let _ = &d;
    loop {
        let Some(d) = current() else {
            return Some(info);
        };
        if let Some((_, sig)) = d.stop_here(t, StopKind::Signal(info)) {
            return match sig {
                None => None,
                Some(s) if s == info.signo => Some(info),
                Some(s) => {
                    let pid = t.proc.pid;
                    // SAFETY: getuid has no preconditions.
                    let uid = unsafe { libc::getuid() };
                    Some(SigInfo::sent(s, 0, pid, uid))
                }
            };
        }
    }
}

/// A shadow-stack violation that audit mode resynchronizes (no signal follows): the debugger
/// sees the SIGSEGV Linux would have sent, with RIP at the faulting instruction.
pub fn on_resynchronized_violation(t: &mut Thread, e: &Exception) {
    let info = crate::signals::fault::from_exception(e, t.cpu.rip).info;
    loop {
        let Some(d) = current() else { return };
        if d.stop_here(t, StopKind::Signal(info)).is_some() {
            return;
        }
    }
}

/// Before a syscall: the thread may block, so its state is published (read-only) and it
/// counts as stopped for an all-stop.
pub fn syscall_enter(t: &mut Thread, nr: u64) {
    let Some(d) = current() else { return };
    let mut g = d.lock();
    if let Some(s) = g.slots.get_mut(&t.tid) {
        s.regs = Regs::of(t, nr);
        s.state = ThreadState::InSyscall;
    }
    d.cv.notify_all();
}

/// After a syscall: back to running, parking if an all-stop began meanwhile; a successful
/// execve stops the thread with SIGTRAP, as Linux stops a traced process after exec.
pub fn syscall_leave(t: &mut Thread, nr: u64) {
    let Some(d) = current() else { return };
    {
        let mut g = d.lock();
        if let Some(s) = g.slots.get_mut(&t.tid) {
            s.state = ThreadState::Running;
        }
    }
    let exec = (nr == 59 || nr == 322) && t.keep_rax && t.cpu.gpr[0] == 0;
    if exec {
        while d.stop_here(t, StopKind::Exec).is_none() {}
    }
}

/// The process ends: the debugger is told (gdb's W or X reply) before the host process goes.
pub fn on_end(how: ExitRequest) {
    let Some(d) = current() else { return };
    let mut g = d.lock();
    g.ended = Some(match how {
        ExitRequest::Thread(c) | ExitRequest::Group(c) => Ended::Exited(c & 0xff),
        ExitRequest::Signal(s) => Ended::Killed(s),
    });
    (d.notify)();
    d.cv.notify_all();
    // Bounded: a debugger that went away must not keep the process alive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !g.ended_seen && active() {
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        g =
            d.cv.wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
    }
}
