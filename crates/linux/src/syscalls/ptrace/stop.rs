//! The traced thread's side of ptrace-stops. Linux stops a tracee at instruction boundaries
//! only: where it delivers a signal (signal-delivery-stop, kernel/signal.c ptrace_signal) and
//! around a syscall under PTRACE_SYSCALL (syscall-enter-stop and syscall-exit-stop,
//! kernel/entry/common.c syscall_trace_enter / syscall_exit_work). The host's own stops of
//! cetbox come anywhere in its code, so the thread stops itself at those places instead:
//! it writes its guest state into its thread page (`page.rs`), marks the page STOPPED and
//! sends itself `CARRIER` with `COOKIE` in si_value; the host stops it there for its tracer
//! (cetbox's tracer process, the host tracer since PTRACE_TRACEME), whose wait4 recognises the
//! stop (`wait.rs`), shows the guest the status from the page and, when the guest resumes the
//! tracee, discards the signal. The thread then takes back what the tracer changed.

use super::page::{self, *};
use super::user;
use crate::process::Thread;
use crate::signals::SigInfo;
use std::sync::atomic::Ordering;

/// The host signal of self-stops and of stop signals carried to the tracee (glibc's
/// SIGCANCEL, which glibc does not let programs block or catch).
pub const CARRIER: i32 = 32;
/// si_value of a self-stop's CARRIER.
pub const COOKIE: u64 = 0x7374_6f70_6365_7462; // "cetbstop"

const SIGTRAP: u64 = 5;
const PTRACE_O_TRACESYSGOOD: u64 = 1;
const PTRACE_O_TRACEEXEC: u64 = 0x10;

/// PTRACE_ATTACH: the host attach's SIGSTOP reached the tracer's cetbox, which sent CARRIER
/// instead (SI_USER from the tracer, as ptrace_signal makes a changed signal's siginfo). A
/// pending CARRIER that is that makes the thread a traced one and is replaced by the attach's
/// SIGSTOP (SEND_SIG_PRIV: SI_KERNEL), which stops it for its tracer when delivered.
pub fn attach_requests(t: &mut Thread) {
    let Some(i) = t.signals.pending.iter().position(is_attach_request) else {
        return;
    };
    if super::become_traced(t, 0).is_err() {
        return;
    }
    t.signals.pending.remove(i);
    stop_first(t, crate::signals::info::SI_KERNEL);
}

fn is_attach_request(info: &SigInfo) -> bool {
    info.signo == CARRIER
        && info.code == crate::signals::info::SI_USER
        && from_tracer(i32::from_le_bytes(info.fields[0..4].try_into().unwrap()))
}

/// Makes SIGSTOP with `code` the thread's next signal.
fn stop_first(t: &mut Thread, code: i32) {
    let sigstop = crate::signals::SIGSTOP;
    t.signals.pending.retain(|s| s.signo != sigstop);
    t.signals.pending.insert(0, SigInfo::new(sigstop, code));
}

/// Whether `sender` is (a thread of) this thread's host tracer.
fn from_tracer(sender: i32) -> bool {
    let tracer = tracer_tgid();
    tracer != 0 && (sender == tracer || tgid_of(sender) == Some(tracer))
}

/// The ptrace event a clone with `flags` reports to the tracer of `t`, if its options ask
/// for it (kernel/fork.c kernel_clone: VFORK for CLONE_VFORK, else CLONE for a thread or a
/// process with another exit signal than SIGCHLD, else FORK; none with CLONE_UNTRACED), with
/// what the new task inherits: its creator's tid and ptrace options (ptrace_init_task).
/// `exit_signal` is None for a thread.
pub fn clone_event(t: &Thread, flags: u64, exit_signal: Option<u64>) -> Option<(u64, (i32, u64))> {
    const CLONE_UNTRACED: u64 = 0x0080_0000;
    const CLONE_VFORK: u64 = 0x4000;
    const SIGCHLD: u64 = 17;
    const PTRACE_EVENT_FORK: u64 = 1;
    const PTRACE_EVENT_VFORK: u64 = 2;
    const PTRACE_EVENT_CLONE: u64 = 3;
    let me = mine(t)?;
    if flags & CLONE_UNTRACED != 0 {
        return None;
    }
    let event = if flags & CLONE_VFORK != 0 {
        PTRACE_EVENT_VFORK
    } else if exit_signal != Some(SIGCHLD) {
        PTRACE_EVENT_CLONE
    } else {
        PTRACE_EVENT_FORK
    };
    let options = page::get(me + T_OPTIONS);
    (options & (1 << event) != 0).then_some((event, (t.tid, options)))
}

/// After a vfork child released its parent (exec or exit): PTRACE_EVENT_VFORK_DONE if the
/// tracer asked for it (kernel/fork.c kernel_clone), with the child's pid.
pub fn vfork_done(t: &mut Thread, child: i32) {
    const PTRACE_O_TRACEVFORKDONE: u64 = 0x20;
    const PTRACE_EVENT_VFORK_DONE: u64 = 5;
    if mine(t).is_some_and(|me| page::get(me + T_OPTIONS) & PTRACE_O_TRACEVFORKDONE != 0) {
        event_stop(t, PTRACE_EVENT_VFORK_DONE, child as u64);
    }
}

/// PTRACE_EVENT_EXIT (kernel/exit.c do_exit: ptrace_event(PTRACE_EVENT_EXIT, code) before
/// the thread lets go of anything): the event message is the exit status as wait reports it.
pub fn exit_event(t: &mut Thread, status: u64) {
    const PTRACE_O_TRACEEXIT: u64 = 0x40;
    const PTRACE_EVENT_EXIT: u64 = 6;
    if mine(t).is_some_and(|me| page::get(me + T_OPTIONS) & PTRACE_O_TRACEEXIT != 0) {
        event_stop(t, PTRACE_EVENT_EXIT, status);
    }
}

/// A PTRACE_EVENT_* stop (include/linux/ptrace.h ptrace_event, ptrace_event_pid): SIGTRAP |
/// event << 8, the event message `msg`, rax still -ENOSYS as the syscall has not returned. A
/// signal given when resuming is dropped (ptrace_notify ignores it).
pub fn event_stop(t: &mut Thread, event: u64, msg: u64) {
    let Some(me) = mine(t) else { return };
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let code = SIGTRAP | event << 8;
    page::set(me + T_EVENTMSG, msg);
    let rax = t.cpu.gpr[0];
    t.cpu.gpr[0] = crate::errno::Errno::ENOSYS.to_rax();
    let info = SigInfo::sent(5, code as i32, pid, uid);
    stop(t, t.orig_rax as u64, (code << 8) | 0x7f, &info, 0);
    t.cpu.gpr[0] = rax;
}

/// A new thread whose creator's tracer asked for PTRACE_O_TRACECLONE waits, before it runs
/// guest code, for that tracer's cetbox to attach to it (wait.rs attaches when it reports the
/// creator's PTRACE_EVENT_CLONE stop, and sends CARRIER to wake it), then stops for its
/// SIGSTOP, which ptrace_init_task adds to its pending set without a siginfo (SI_USER, no
/// sender); its options are its creator's. It stops waiting if its creator is no longer
/// traced (the tracer detached or died before it attached).
///
/// `deliver`: stop now (a new thread, before its first instruction), else only make the
/// SIGSTOP its next signal (a forked child, still inside fork, whose rax is not yet 0).
pub fn await_attach(t: &mut Thread, deliver: bool) {
    let Some((creator, options)) = t.ptrace_auto_attach.take() else {
        return;
    };
    let slice = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        crate::signals::host::collect(t);
        // The CARRIER comes once the attach's SIGSTOP was taken (the host attach alone is not
        // enough: its SIGSTOP is still to come); it may have arrived before the thread
        // registered for host signals, so as a process signal.
        let before = t.signals.pending.len();
        t.signals.pending.retain(|i| !is_attach_request(i));
        let mut found = t.signals.pending.len() != before;
        if !found {
            let mut p = t.proc.signals.pending();
            if let Some(i) = p.iter().position(is_attach_request) {
                p.remove(i);
                found = true;
            }
        }
        if found {
            if super::become_traced(t, options).is_ok() {
                stop_first(t, crate::signals::info::SI_USER);
            }
            break;
        }
        let traced = status_field(&format!("/proc/{creator}/status"), "TracerPid:");
        if traced.unwrap_or(0) == 0 {
            break;
        }
        // Until a signal arrives (the attach's), looking at the creator now and then.
        let _ = crate::waitcall::Waiter::of(t).call_or_skip(
            libc::SYS_nanosleep,
            crate::hostcall::args([crate::hostcall::HostPtr::of(&slice).into(), 0u64.into()]),
        );
    }
    if deliver {
        crate::signals::deliver::deliver_pending(t);
    }
}

/// The host tracer of this thread (/proc/thread-self/status TracerPid), 0 if none.
fn tracer_tgid() -> i32 {
    status_field("/proc/thread-self/status", "TracerPid:").unwrap_or(0)
}

fn tgid_of(tid: i32) -> Option<i32> {
    status_field(&format!("/proc/{tid}/status"), "Tgid:")
}

fn status_field(path: &str, key: &str) -> Option<i32> {
    let s = {
        let _hold = cetbox_mem::transient::hold();
        std::fs::read_to_string(path).ok()?
    };
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// After a successful execve of the traced thread (include/linux/ptrace.h ptrace_event):
/// with PTRACE_O_TRACEEXEC a PTRACE_EVENT_EXEC stop (SIGTRAP | 4 << 8, the event message the
/// former tid, rax still -ENOSYS as the syscall has not returned), else the legacy report, a
/// SIGTRAP the thread sends itself (send_sig(SIGTRAP, current, 0): SI_USER with its own pid).
pub fn after_exec(t: &mut Thread) {
    let Some(me) = mine(t) else { return };
    super::publish_auxv(t);
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    if page::get(me + T_OPTIONS) & PTRACE_O_TRACEEXEC != 0 {
        const PTRACE_EVENT_EXEC: u64 = 4;
        event_stop(t, PTRACE_EVENT_EXEC, t.tid as u64);
        return;
    }
    crate::signals::deliver::queue_thread(
        t,
        SigInfo::sent(
            crate::signals::SIGTRAP,
            crate::signals::info::SI_USER,
            pid,
            uid,
        ),
    );
}

/// `t`'s thread page if a guest tracer traces it.
fn mine(t: &Thread) -> Option<u64> {
    if !t.proc.traced.load(Ordering::Relaxed) {
        return None;
    }
    page::mine(t.tid)
}

/// Whether a guest tracer traces `t`.
pub fn traced(t: &Thread) -> bool {
    mine(t).is_some()
}

/// Whether the tracer asked for syscall stops (PTRACE_SYSCALL) when it last resumed `t`.
pub fn syscall_stops(t: &Thread) -> bool {
    mine(t).is_some_and(|me| page::get(me + T_RESUME_MODE) == RESUME_SYSCALL)
}

/// Whether the tracer resumed `t` with PTRACE_SINGLESTEP.
pub fn single_stepping(t: &Thread) -> bool {
    mine(t).is_some_and(|me| page::get(me + T_RESUME_MODE) == RESUME_SINGLESTEP)
}

/// The trap after a single-stepped instruction (arch/x86/kernel/traps.c exc_debug_user: #DB
/// with DR6.BS, SIGTRAP TRAP_TRACE at the next instruction), or after a single-stepped
/// SYSCALL (kernel/entry/common.c syscall_exit_work, user_single_step_report in
/// arch/x86/kernel/step.c: TRAP_BRKPT).
pub fn single_step_trap(t: &mut Thread, after_syscall: bool) {
    use crate::signals::fault::FaultSignal;
    use crate::signals::info::{TRAP_BRKPT, TRAP_TRACE};
    let code = if after_syscall {
        TRAP_BRKPT
    } else {
        TRAP_TRACE
    };
    let fs = FaultSignal {
        info: SigInfo::fault(crate::signals::SIGTRAP, code, t.cpu.rip),
        // X86_TRAP_DB.
        trapno: 1,
        err: 0,
        cr2: None,
        trap: true,
        simd_flags: 0,
    };
    crate::signals::deliver::force(t, fs);
}

/// Signal-delivery-stop for `info`. Returns the signal to deliver instead: None when the
/// tracer discarded it, a new siginfo (SI_USER from the tracer, as ptrace_signal makes it)
/// when it gave another signal, else `info` (or the siginfo the tracer set).
pub fn signal_stop(t: &mut Thread, info: SigInfo) -> Option<SigInfo> {
    let me = mine(t)?;
    let status = ((info.signo as u64) << 8) | 0x7f;
    let orig = t.orig_rax as u64;
    stop(t, orig, status, &info, info.signo as u64);
    let resume = page::get(me + T_RESUME_SIG);
    if resume == 0 {
        return None;
    }
    let mut set = [0u8; 128];
    page::get_bytes(me + T_SIGINFO, &mut set);
    let set = SigInfo::from_bytes(&set);
    let new = if resume == set.signo as u64 {
        set
    } else {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        SigInfo::sent(
            resume as i32,
            crate::signals::info::SI_USER,
            tracer_tgid(),
            uid,
        )
    };
    // A signal the thread now blocks is queued again (ptrace_signal).
    if t.signals.mask & crate::signals::bit(new.signo) != 0 {
        crate::signals::deliver::queue_thread(t, new);
        return None;
    }
    Some(new)
}

/// The group-stop of a traced thread whose stop signal was delivered with its default action:
/// reported as a stop with that signal; other threads keep running (a gap: Linux stops the
/// whole group).
pub fn group_stop(t: &mut Thread, sig: i32) {
    let orig = t.orig_rax as u64;
    stop(
        t,
        orig,
        ((sig as u64) << 8) | 0x7f,
        &SigInfo::new(sig, 0),
        0,
    );
}

/// Syscall-enter-stop: rax shows -ENOSYS and orig_rax the number. Returns orig_rax as the
/// tracer left it (the syscall to run; -1 skips it with rax as the tracer left it).
pub fn syscall_entry(t: &mut Thread) -> u64 {
    let orig = t.cpu.gpr[0];
    t.cpu.gpr[0] = crate::errno::Errno::ENOSYS.to_rax();
    syscall_stop(t, orig)
}

/// Syscall-exit-stop, with the result in rax.
pub fn syscall_exit(t: &mut Thread, orig: u64) {
    syscall_stop(t, orig);
}

fn syscall_stop(t: &mut Thread, orig: u64) -> u64 {
    let Some(me) = mine(t) else { return orig };
    let sysgood = page::get(me + T_OPTIONS) & PTRACE_O_TRACESYSGOOD != 0;
    let code = SIGTRAP | if sysgood { 0x80 } else { 0 };
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    // ptrace_notify's siginfo: SIGTRAP with the stop's code and the tracee's pid and uid.
    let info = SigInfo::sent(5, code as i32, pid, uid);
    let regs = stop(t, orig, (code << 8) | 0x7f, &info, 0);
    // A signal given when resuming from a syscall stop is sent to the thread
    // (ptrace_report_syscall: send_sig with priv set, so SI_KERNEL).
    let sig = page::get(me + T_RESUME_SIG) as i32;
    if crate::signals::valid(sig) {
        crate::signals::deliver::queue_thread(
            t,
            SigInfo::new(sig, crate::signals::info::SI_KERNEL),
        );
    }
    regs[user::ORIG_RAX]
}

/// Publishes the state, stops until the tracer resumes the thread and takes back what the
/// tracer changed; returns the user_regs_struct as the tracer left it. `resume_sig` is the
/// signal delivered if no tracer resumes the thread.
fn stop(
    t: &mut Thread,
    orig: u64,
    status: u64,
    info: &SigInfo,
    resume_sig: u64,
) -> [u64; user::NREGS] {
    let regs = user::image(t, orig);
    let Some(me) = mine(t) else { return regs };
    let regs_bytes = user::to_bytes(&regs);
    let mut fx = [0u8; 512];
    cetbox_cpu::fpstate::fxsave(&t.cpu.x87, &t.cpu.sse, &mut fx);
    page::set_bytes(me + T_REGS, &regs_bytes);
    page::set_bytes(me + T_FXSAVE, &fx);
    let ymm_hi = t.cpu.sse.ymm_hi;
    super::xstate::publish(me, t.cpu.config.xcr0(), &ymm_hi);
    page::set_bytes(me + T_SIGINFO, &info.to_bytes());
    page::set(me + T_STATUS, status);
    page::set(me + T_RESUME_SIG, resume_sig);
    super::publish(t);
    page::set(me + T_STATE, STOPPED);
    self_stop(t);
    if page::get(me + T_STATE) != RUNNING {
        // Not resumed by a tracer (it detached at the host level or died): go on as if
        // resumed with the signal.
        page::set(me + T_STATE, RUNNING);
    }
    let mut new_bytes = [0u8; user::REGS_LEN];
    page::get_bytes(me + T_REGS, &mut new_bytes);
    let new = user::from_bytes(&new_bytes);
    if new_bytes != regs_bytes {
        user::apply(t, &new);
    }
    let mut new_fx = [0u8; 512];
    page::get_bytes(me + T_FXSAVE, &mut new_fx);
    if new_fx != fx {
        // The tracer's SETFPREGS checked MXCSR, so this cannot fail.
        cetbox_cpu::fpstate::fxrstor(&mut t.cpu.x87, &mut t.cpu.sse, &new_fx);
    }
    t.cpu.sse.ymm_hi = super::xstate::ymm_hi(me);
    // The tracer may have written our memory from outside (a breakpoint's INT3, through
    // POKETEXT, process_vm_writev or /proc/PID/mem, which cetbox's page table does not see):
    // no decoded or translated block may outlive the stop.
    t.mem().code_epoch_cell().fetch_add(1, Ordering::Release);
    super::reload_from(t, me);
    new
}

/// Sends CARRIER (with COOKIE) to this thread and lets it arrive: the host ptrace-stop comes
/// on the way back from the call that unblocks it (at once if it was not blocked).
fn self_stop(t: &Thread) {
    // SAFETY: siginfo_t is plain data; the fields written are those of SI_QUEUE.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let mut b = [0u8; 128];
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    b[0..4].copy_from_slice(&CARRIER.to_le_bytes());
    b[8..12].copy_from_slice(&crate::signals::info::SI_QUEUE.to_le_bytes());
    b[16..20].copy_from_slice(&pid.to_le_bytes());
    b[20..24].copy_from_slice(&uid.to_le_bytes());
    b[24..32].copy_from_slice(&COOKIE.to_le_bytes());
    // SAFETY: siginfo_t is 128 bytes on x86-64 Linux.
    unsafe {
        std::ptr::copy_nonoverlapping(
            b.as_ptr(),
            (&mut si as *mut libc::siginfo_t).cast::<u8>(),
            128,
        )
    };
    let bit: u64 = 1 << (CARRIER - 1);
    // SAFETY: rt_tgsigqueueinfo to our own thread with a siginfo of ours; rt_sigprocmask with
    // an 8-byte set.
    unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid,
            t.tid,
            CARRIER,
            &si as *const libc::siginfo_t,
        );
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK,
            &bit as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
    crate::signals::host::set_host_mask(t.signals.mask);
}

/// What the host handler does with a CARRIER it received (async-signal-safe: reads and
/// writes of our own pages only).
pub enum Carried {
    /// A carried stop signal: record this siginfo instead.
    Signal([u64; 16]),
    /// Our own self-stop signal that no tracer discarded: drop it.
    Drop,
    /// An ordinary CARRIER from someone: record it.
    Keep,
}

pub fn carried(words: &[u64; 16]) -> Carried {
    if !page::mapped() {
        return Carried::Keep;
    }
    // SAFETY: getpid has no preconditions and is async-signal-safe.
    let pid = unsafe { libc::getpid() } as u32 as u64;
    let code = words[1] as u32 as i32;
    if code == crate::signals::info::SI_QUEUE && words[3] == COOKIE && words[2] as u32 as u64 == pid
    {
        return Carried::Drop;
    }
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    let Some(me) = page::mine(tid) else {
        return Carried::Keep;
    };
    let sig = page::get(me + T_INJECT_SIG);
    if sig == 0 {
        return Carried::Keep;
    }
    let mut b = [0u8; 128];
    page::get_bytes(me + T_INJECT_INFO, &mut b);
    page::set(me + T_INJECT_SIG, 0);
    let mut w = [0u64; 16];
    for (i, v) in w.iter_mut().enumerate() {
        *v = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    }
    Carried::Signal(w)
}
