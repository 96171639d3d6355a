//! The end of a guest process: cetbox ends with the guest's exit status, or dies of the
//! guest's signal.

use crate::process::{ExitRequest, Process};
use std::io::Write;

/// Ends the cetbox process the way the guest process ended: same exit status, or death by the
/// same signal (so a parent shell sees exactly what it would natively).
pub fn finish(proc: &Process, how: ExitRequest) -> ! {
    // A vfork parent waits for this process to exec or end.
    crate::fork::release_vfork_parent(proc);
    crate::debug::on_end(how);
    proc.observer.finish();
    cetbox_jit::profile::save();
    let _ = std::io::stdout().flush();
    match how {
        ExitRequest::Thread(code) | ExitRequest::Group(code) => {
            std::process::exit(proc.observer.exit_status(code & 0xff))
        }
        ExitRequest::Signal(sig) => die_by_signal(sig),
    }
}

/// Kills the cetbox process with `sig`, with the default action.
pub fn die_by_signal(sig: i32) -> ! {
    // SAFETY: resetting the disposition, unblocking and raising a signal in our own process
    // has no memory-safety preconditions; if the signal does not kill us we exit below.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // A core dump of cetbox itself would be huge and misleading (and would replace the
        // guest's, which crate::coredump has written): the soft limit goes to 0, unless the
        // guest's core was written and the host can dump a small one of cetbox where nobody
        // sees it, for the core-dumped bit of the wait status (crate::coredump::host_bit).
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        lim.rlim_cur = if crate::coredump::dumped::written() && crate::coredump::host_bit::prepare()
        {
            lim.rlim_max
        } else {
            0
        };
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}
