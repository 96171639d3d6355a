//! Choosing which pending signal to act on, default actions, running handlers, and the
//! syscall-restart rules (ERESTARTSYS and friends).

use super::fault::{self, FaultSignal};
use super::*;
use crate::events::ViolationKind;
use crate::process::{ExitRequest, Thread};

/// Sets the thread's blocked mask (SIGKILL and SIGSTOP never blocked) and mirrors it onto the
/// host thread, so the host kernel keeps blocked asynchronous signals pending for us.
pub fn set_mask(t: &mut Thread, mask: u64) {
    let m = mask & !UNBLOCKABLE;
    t.signals.mask = m;
    host::set_host_mask(m);
}

/// Delivers a synchronous fault signal now. Like the kernel's force_sig_info, a blocked or
/// ignored signal is unblocked and its action reset to the default first (so a blocked fault
/// signal kills the process).
pub fn force(t: &mut Thread, mut fs: FaultSignal) {
    if fs.trap {
        t.signals.trapno = fs.trapno;
        t.signals.err = fs.err;
        if let Some(cr2) = fs.cr2 {
            t.signals.cr2 = cr2;
        }
        fault::refine_fpe(&mut fs, &t.cpu);
    }
    let sig = fs.info.signo;
    let mut act = t.proc.signals.action(sig);
    let blocked = t.signals.mask & bit(sig) != 0;
    if blocked || act.handler == SIG_IGN {
        act.handler = SIG_DFL;
        t.proc.signals.set_action(sig, act);
        if blocked {
            let m = t.signals.mask & !bit(sig);
            set_mask(t, m);
        }
    }
    let mut restart = take_restart(t, false);
    act_on(t, fs.info, &mut restart);
    if let (Some(r), None) = (restart, t.exit) {
        restart_without_handler(t, r);
    }
}

/// Forces SIGSEGV after a failed signal delivery (force_sigsegv): if the signal being delivered
/// was SIGSEGV itself, its handler is reset first so the process dies.
pub fn force_sigsegv(t: &mut Thread, sig: i32) {
    if sig == SIGSEGV {
        let mut a = t.proc.signals.action(SIGSEGV);
        a.handler = SIG_DFL;
        t.proc.signals.set_action(SIGSEGV, a);
    }
    force(t, FaultSignal::kernel(SIGSEGV));
}

/// How the syscall that just returned should be finished once we know whether a handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    /// orig_rax: the syscall number.
    pub nr: u64,
    /// The (negative) restart code the syscall returned.
    pub code: Errno,
}

/// Reads the syscall-restart state left by the syscall that just returned.
fn take_restart(t: &mut Thread, interrupted_by_host: bool) -> Option<Restart> {
    let nr = t.signals.in_syscall.take()?;
    let rax = t.cpu.gpr[0] as i64;
    let code = Errno((-rax) as i32);
    if (-rax) as u64 > 4095 {
        return None;
    }
    match code {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK => {
            Some(Restart { nr, code })
        }
        Errno::EINTR
            if interrupted_by_host
                && crate::syscalls::table::get(nr).is_some_and(|s| s.restartable()) =>
        {
            Some(Restart {
                nr,
                code: ERESTARTSYS,
            })
        }
        _ => None,
    }
}

/// Re-executes the SYSCALL instruction (2 bytes) with the original number.
fn restart_syscall(t: &mut Thread, r: Restart) {
    t.cpu.gpr[0] = r.nr;
    t.cpu.rip = t.cpu.rip.wrapping_sub(2);
}

/// The restart rules when a handler is about to run (handle_signal).
pub fn restart_for_handler(t: &mut Thread, r: Restart, act: &SigAction) {
    match r.code {
        ERESTARTNOHAND | ERESTART_RESTARTBLOCK => t.cpu.gpr[0] = Errno::EINTR.to_rax(),
        ERESTARTSYS if act.flags & SA_RESTART == 0 => t.cpu.gpr[0] = Errno::EINTR.to_rax(),
        _ => restart_syscall(t, r),
    }
}

/// The restart rules when no handler runs: the syscall is transparently restarted.
/// (ERESTART_RESTARTBLOCK would restart through restart_syscall with the remaining time;
/// cetbox's syscalls do not use it, so it reports EINTR.)
pub fn restart_without_handler(t: &mut Thread, r: Restart) {
    match r.code {
        ERESTART_RESTARTBLOCK => t.cpu.gpr[0] = Errno::EINTR.to_rax(),
        _ => restart_syscall(t, r),
    }
}

/// Picks the next signal to act on among `list` not blocked by `mask`: synchronous signals
/// first, then the lowest number; the first queued instance of it.
fn pick(list: &[SigInfo], mask: u64) -> Option<usize> {
    let mut set = 0u64;
    for s in list {
        if valid(s.signo) {
            set |= bit(s.signo);
        }
    }
    set &= !mask;
    if set == 0 {
        return None;
    }
    let sync = set & SYNCHRONOUS;
    let chosen = if sync != 0 { sync } else { set };
    let sig = chosen.trailing_zeros() as i32 + 1;
    list.iter().position(|s| s.signo == sig)
}

/// Takes the next deliverable signal: thread-directed ones first, then process-directed.
pub fn dequeue(t: &mut Thread, mask: u64) -> Option<SigInfo> {
    if let Some(i) = pick(&t.signals.pending, mask) {
        return Some(t.signals.pending.remove(i));
    }
    let mut p = t.proc.signals.pending();
    pick(&p, mask).map(|i| p.remove(i))
}

/// Whether a signal not blocked by `mask` is pending (after collecting host signals).
pub fn has_deliverable(t: &mut Thread, mask: u64) -> bool {
    host::collect(t);
    pick(&t.signals.pending, mask).is_some() || pick(&t.proc.signals.pending(), mask).is_some()
}

/// Queues a signal for this thread (standard signals coalesce; real-time ones queue).
pub fn queue_thread(t: &mut Thread, info: SigInfo) {
    if info.signo < 32 && t.signals.pending.iter().any(|s| s.signo == info.signo) {
        return;
    }
    t.signals.pending.push(info);
}

/// Queues a process-directed signal.
pub fn queue_process(proc: &crate::process::Process, info: SigInfo) {
    let mut p = proc.signals.pending();
    if info.signo < 32 && p.iter().any(|s| s.signo == info.signo) {
        return;
    }
    p.push(info);
}

/// Acts on pending signals that are not blocked (called between runs of guest code). Several
/// signals may be delivered at once; the last handler set up runs first, as in Linux.
pub fn deliver_pending(t: &mut Thread) {
    let got_host = host::collect(t);
    // A guest tracer's attach comes before anything else, blocked or not (it stands for the
    // attach's SIGSTOP, which cannot be blocked).
    crate::syscalls::ptrace::stop::attach_requests(t);
    let mut restart = take_restart(t, got_host);
    let mut handled = false;
    while t.exit.is_none() {
        let mask = t.signals.mask;
        let Some(info) = dequeue(t, mask) else { break };
        if act_on(t, info, &mut restart) {
            handled = true;
        }
    }
    if t.exit.is_some() {
        return;
    }
    if !handled {
        if let Some(r) = restart {
            restart_without_handler(t, r);
        }
        if let Some(m) = t.signals.saved_mask.take() {
            set_mask(t, m);
        }
    }
    if handled || got_host {
        // The mask a handler runs with, and what is still pending, for other processes'
        // view of this thread (`procview`).
        crate::procview::refresh(t, false);
    }
}

/// Applies the action for one signal: ignore, default action, or a handler frame. Returns
/// whether a handler was set up. `restart` is the interrupted syscall, if any: the first handler
/// set up consumes it (ignored signals leave it alone, as get_signal skips them).
fn act_on(t: &mut Thread, info: SigInfo, restart: &mut Option<Restart>) -> bool {
    // Stops (ptrace, a debugger) may follow: the thread's virtual CPU is free meanwhile.
    crate::rseq::leave(t);
    // A tracer may look at this process's /proc files while it is stopped for the signal.
    crate::procview::refresh(t, false);
    // A debugger sees every signal first and may discard or replace it.
    let info = if crate::debug::active() {
        match crate::debug::on_signal(t, info) {
            Some(i) => i,
            None => return false,
        }
    } else {
        info
    };
    // A guest tracer too (signal-delivery-stop, kernel/signal.c ptrace_signal).
    let info = if crate::syscalls::ptrace::stop::traced(t) {
        // Linux stops before it finishes the interrupted syscall (get_signal comes before
        // the restart rules of handle_signal): the tracer sees rax = -ERESTART*, and a rax it
        // changes makes the restart rules find no restart code.
        let saved = t.cpu.gpr[0];
        if let Some(r) = *restart {
            t.cpu.gpr[0] = (-(r.code.0 as i64)) as u64;
        }
        let shown = t.cpu.gpr[0];
        let res = crate::syscalls::ptrace::stop::signal_stop(t, info);
        if restart.is_some() {
            if t.cpu.gpr[0] == shown {
                t.cpu.gpr[0] = saved;
            } else {
                *restart = None;
            }
        }
        match res {
            Some(i) => i,
            None => return false,
        }
    } else {
        info
    };
    let sig = info.signo;
    let act = t.proc.signals.action(sig);
    match act.handler {
        SIG_IGN => false,
        SIG_DFL => {
            match default_action(sig) {
                DefaultAction::Terminate | DefaultAction::Core => {
                    t.fatal_siginfo = Some(info);
                    t.exit = Some(ExitRequest::Signal(sig));
                }
                DefaultAction::Stop if crate::syscalls::ptrace::stop::traced(t) => {
                    // A traced thread reports the group-stop to its tracer and stays stopped
                    // until resumed (kernel/signal.c do_signal_stop).
                    crate::syscalls::ptrace::stop::group_stop(t, sig);
                }
                DefaultAction::Stop => {
                    // The whole (host) process stops, as the guest process would; SIGCONT
                    // resumes it.
                    // SAFETY: kill on our own pid has no memory-safety preconditions.
                    unsafe {
                        libc::kill(libc::getpid(), libc::SIGSTOP);
                    }
                }
                DefaultAction::Ignore | DefaultAction::Continue => {}
            }
            false
        }
        handler => {
            if act.flags & SA_RESETHAND != 0 {
                let mut a = act;
                a.handler = SIG_DFL;
                t.proc.signals.set_action(sig, a);
            }
            if let Some(r) = restart.take() {
                restart_for_handler(t, r, &act);
            }
            let saved = t.signals.saved_mask.take();
            let frame_mask = saved.unwrap_or(t.signals.mask);
            if act.flags & SA_IA32_ABI != 0 {
                enter_ia32_handler(t, sig, &act, handler);
                return false;
            }
            match setup_frame(t, sig, &info, &act, handler, frame_mask) {
                Ok(()) => {
                    let mut m = t.signals.mask | act.mask;
                    if act.flags & SA_NODEFER == 0 {
                        m |= bit(sig);
                    }
                    set_mask(t, m);
                    if t.signals.altstack.flags & SS_AUTODISARM != 0 {
                        t.signals.altstack = AltStack::default();
                    }
                    true
                }
                Err(frame::BadFrame) => {
                    t.signals.saved_mask = saved;
                    force_sigsegv(t, sig);
                    false
                }
            }
        }
    }
}

/// A handler installed through a 32-bit syscall (SA_IA32_ABI) is 32-bit code. Linux builds an
/// ia32 frame (which never touches the shadow stack) and returns to CS 0x23; with shadow stacks
/// on, SSP lies above 4 GiB and that IRET raises #GP, so the process gets SIGSEGV with its
/// registers "as if the userspace ip being returned to caused the segfault" (Linux
/// Documentation/arch/x86/shstk.rst). cetbox has no compatibility mode, so without shadow stacks
/// the same SIGSEGV stands in for running the handler, with a diagnostic.
fn enter_ia32_handler(t: &mut Thread, sig: i32, act: &SigAction, handler: u64) {
    if t.shstk.features & crate::shstk::SHSTK == 0 {
        crate::diag::diag(&format!("32-bit signal handler at {handler:#x} for signal {sig}: 32-bit code is not supported; delivering SIGSEGV"));
    }
    let mut m = t.signals.mask | act.mask;
    if act.flags & SA_NODEFER == 0 {
        m |= bit(sig);
    }
    set_mask(t, m);
    t.cpu.rip = handler & 0xffff_ffff;
    force(t, FaultSignal::kernel(SIGSEGV));
}

/// Writes the frame, pushes the shadow-stack part and enters the handler.
fn setup_frame(
    t: &mut Thread,
    sig: i32,
    info: &SigInfo,
    act: &SigAction,
    handler: u64,
    frame_mask: u64,
) -> Result<(), frame::BadFrame> {
    // The frame's stores are the kernel's (put_user in x64_setup_rt_frame): on a missing page
    // of a UFFD_USER_MODE_ONLY range they fail (fs/userfaultfd.c handle_userfault refuses a
    // fault without FAULT_FLAG_USER) and the delivery fails with SIGSEGV. The shadow-stack
    // token below is written with WRUSS, whose accesses are user accesses (Intel SDM Vol. 3A
    // §4.7: the page-fault error code has U/S set), so it waits for the resolver even then.
    // rseq_signal_deliver comes first (setup_rt_frame): the frame saves the abort handler's
    // address if the thread was inside a critical section. Where the kernel forces SIGSEGV
    // and still builds the frame, the delivery fails here with the same SIGSEGV.
    if crate::rseq::signal_deliver(t).is_err() {
        return Err(frame::BadFrame);
    }
    let p = {
        let _kernel = cetbox_mem::KernelAccess::enter();
        frame::write(t, info, act, frame_mask)?
    };
    if crate::shstk::signal_push(t, act.restorer).is_err() {
        crate::violation::on_kernel_violation(t, ViolationKind::SignalDeliveryFailed);
        return Err(frame::BadFrame);
    }
    frame::enter_handler(t, sig, &p, handler);
    Ok(())
}

/// rt_sigreturn: restores the state saved in the frame at RSP - 8. On a bad frame the
/// registers read so far stay, RAX is 0 and SIGSEGV (SI_KERNEL) is forced.
pub fn sigreturn(t: &mut Thread) {
    t.keep_rax = true;
    // Registers come from the frame: this is no longer an interrupted syscall.
    t.signals.in_syscall = None;
    let frame = frame::sigreturn_frame(t.cpu.gpr[4]);
    if sigreturn_inner(t, frame).is_err() {
        t.cpu.gpr[0] = 0;
        force(t, FaultSignal::kernel(SIGSEGV));
    }
}

fn sigreturn_inner(t: &mut Thread, frame: u64) -> Result<(), frame::BadFrame> {
    // Observed on 6.18: restore_altstack's "on the alternate stack" check uses the stack
    // pointer of the sigreturn call (the handler's), not the restored one.
    let sp_at_call = t.cpu.gpr[4];
    let (mask, _uc_flags) = frame::read_mask(t, frame)?;
    set_mask(t, mask);
    frame::restore_sigcontext(t, frame)?;
    if crate::shstk::signal_restore(t).is_err() {
        crate::violation::on_kernel_violation(t, ViolationKind::BadSigreturn);
        return Err(frame::BadFrame);
    }
    let (sp, flags, size) = frame::read_altstack(t, frame)?;
    // restore_altstack ignores every error but EFAULT.
    let _ = set_altstack(t, sp_at_call, sp, flags, size);
    Ok(())
}

/// do_sigaltstack's setting half: validates and installs a new alternate stack for a thread
/// whose stack pointer is `rsp`.
pub fn set_altstack(t: &mut Thread, rsp: u64, sp: u64, flags: i32, size: u64) -> Result<(), Errno> {
    if t.signals.altstack.on_stack(rsp) {
        return Err(Errno::EPERM);
    }
    let mode = flags & !SS_AUTODISARM;
    if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
        return Err(Errno::EINVAL);
    }
    let (sp, size) = if mode == SS_DISABLE {
        (0, 0)
    } else {
        if size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        (sp, size)
    };
    t.signals.altstack = AltStack { sp, flags, size };
    Ok(())
}
