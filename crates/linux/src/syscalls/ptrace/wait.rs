//! The tracer's side of ptrace-stops (see `stop.rs`). The host reports every stop of a traced
//! cetbox to its tracer's wait4: the tracee's self-stops, which carry the guest stop's status
//! in the tracee's thread page, and the host's own signal-delivery-stops of signals on their
//! way to the tracee, which catch its cetbox anywhere. wait4 shows the guest the former and
//! passes the latter on to the tracee's cetbox unseen (it records them and stops itself for
//! them where it delivers them, at an instruction boundary); stop signals, which the host would
//! act on itself, travel as CARRIER with the signal in the tracee's page.

use super::page::{self, *};
use super::stop::{CARRIER, COOKIE};
use crate::errno::{Errno, SysResult};
use std::sync::Mutex;

const PTRACE_CONT: u64 = 7;
const PTRACE_DETACH: u64 = 17;
const PTRACE_GETSIGINFO: u64 = 0x4202;

fn host(req: u64, tid: i32, addr: u64, data: u64) -> SysResult {
    // SAFETY: requests on a host tracee of ours; `data` is a buffer of ours for GETSIGINFO.
    Errno::check(unsafe { libc::syscall(libc::SYS_ptrace, req, tid, addr, data) })
}

fn host_siginfo(tid: i32) -> Result<[u8; 128], Errno> {
    let mut si = [0u8; 128];
    host(PTRACE_GETSIGINFO, tid, 0, si.as_mut_ptr() as u64)?;
    Ok(si)
}

/// What wait4 does with a stop it found.
pub enum Seen {
    /// Report this status to the guest.
    Report(i32),
    /// The stop was passed on: wait again.
    Again,
}

/// Threads this process attached to (host PTRACE_ATTACH) whose attach SIGSTOP has not been
/// seen yet, with whether their host tracing gets PTRACE_O_EXITKILL (inherited by a thread
/// auto-attached at its creation).
static ATTACHING: Mutex<Vec<(i32, bool)>> = Mutex::new(Vec::new());

pub fn attaching(tid: i32, exitkill: bool) {
    ATTACHING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((tid, exitkill));
}

fn take_attaching(tid: i32) -> Option<bool> {
    let mut a = ATTACHING.lock().unwrap_or_else(|e| e.into_inner());
    let i = a.iter().position(|&(t, _)| t == tid)?;
    Some(a.swap_remove(i).1)
}

const PTRACE_ATTACH: u64 = 16;
const PTRACE_SETOPTIONS: u64 = 0x4200;
const PTRACE_O_EXITKILL: u64 = 0x10_0000;
const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_CLONE: i32 = 3;

/// A PTRACE_EVENT_CLONE, _FORK or _VFORK stop about to be reported: the new thread or process
/// (the event message) waits for its creator's tracer to attach (stop.rs `await_attach`); the
/// host attach's SIGSTOP wakes it.
fn attach_new_thread(tid: i32, th: u64) {
    let (Ok(new), Ok(options)) = (
        remote_get(tid, th + T_EVENTMSG),
        remote_get(tid, th + T_OPTIONS),
    ) else {
        return;
    };
    if host(PTRACE_ATTACH, new as i32, 0, 0).is_ok() {
        attaching(new as i32, options & PTRACE_O_EXITKILL != 0);
    }
}

/// Looks at the stop (status `st`) wait4 found for `tid`.
pub fn filter(tid: i32, st: i32) -> Seen {
    if st & 0xff == 0x7f && st >> 16 == 0 && (st >> 8) & 0xff == 19 {
        if let Some(exitkill) = take_attaching(tid) {
            // The attach's SIGSTOP caught the tracee's cetbox anywhere: it becomes CARRIER,
            // which makes the tracee take its pages and stop itself for the SIGSTOP at its
            // next instruction boundary (stop.rs attach_requests).
            if exitkill {
                let _ = host(PTRACE_SETOPTIONS, tid, 0, PTRACE_O_EXITKILL);
            }
            let _ = host(PTRACE_CONT, tid, 0, CARRIER as u64);
            return Seen::Again;
        }
    }
    if st & 0xff != 0x7f || st >> 16 != 0 {
        return Seen::Report(st);
    }
    let Ok(th) = page::thread_of(tid) else {
        if (st >> 8) & 0xff == CARRIER {
            // The attach's CARRIER, held by a thread that blocked it (a new thread starts
            // with every host signal blocked), came back when it was unblocked: on its way
            // again.
            let _ = host(PTRACE_CONT, tid, 0, CARRIER as u64);
            return Seen::Again;
        }
        return Seen::Report(st);
    };
    let sig = (st >> 8) & 0xff;
    let Ok(si) = host_siginfo(tid) else {
        // A group-stop, not a signal-delivery-stop: the host's own business.
        return Seen::Report(st);
    };
    let code = i32::from_le_bytes(si[8..12].try_into().unwrap());
    let value = u64::from_le_bytes(si[24..32].try_into().unwrap());
    if sig == CARRIER
        && code == crate::signals::info::SI_QUEUE
        && value == COOKIE
        && remote_get(tid, th + T_STATE) == Ok(STOPPED)
    {
        return match remote_get(tid, th + T_STATUS) {
            Ok(s) => {
                let s = s as i32;
                if s & 0xff == 0x7f && (PTRACE_EVENT_FORK..=PTRACE_EVENT_CLONE).contains(&(s >> 16))
                {
                    attach_new_thread(tid, th);
                }
                Seen::Report(s)
            }
            Err(_) => Seen::Report(st),
        };
    }
    let stop_signal = matches!(sig, 19..=22);
    let forward = if stop_signal && remote_get(tid, th + T_INJECT_SIG) == Ok(0) {
        let ok = remote_write(tid, th + T_INJECT_INFO, &si)
            .and_then(|()| remote_set(tid, th + T_INJECT_SIG, sig as u64));
        if ok.is_ok() {
            CARRIER
        } else {
            sig
        }
    } else {
        sig
    };
    let _ = host(PTRACE_CONT, tid, 0, forward as u64);
    Seen::Again
}

/// Whether `tid` is in a published stop of a tracee of ours (Linux's ptrace_check_attach).
pub fn check_stopped(tid: i32) -> Result<(), Errno> {
    let th = page::thread_of(tid)?;
    if remote_get(tid, th + T_STATE)? != STOPPED {
        return Err(Errno::ESRCH);
    }
    // Only its tracer can read a stopped host tracee's siginfo.
    host_siginfo(tid).map(|_| ())
}

/// PTRACE_CONT, PTRACE_SYSCALL and PTRACE_DETACH of a stopped tracee: the signal and the mode
/// go into its page, then the host lets it go (the self-stop's CARRIER discarded).
pub fn resume(tid: i32, mode: u64, sig: u64, detach: bool) -> SysResult {
    check_stopped(tid)?;
    let th = page::thread_of(tid)?;
    if sig > crate::signals::NSIG as u64 {
        return Err(Errno::EIO);
    }
    remote_set(tid, th + T_RESUME_SIG, sig)?;
    remote_set(tid, th + T_RESUME_MODE, mode)?;
    if detach {
        // No longer traced: the tracee stops itself no more.
        remote_set(tid, th + T_RESUME_MODE, RESUME_CONT)?;
        page::remote_release(tid)?;
    }
    remote_set(tid, th + T_STATE, RUNNING)?;
    host(if detach { PTRACE_DETACH } else { PTRACE_CONT }, tid, 0, 0)
}
