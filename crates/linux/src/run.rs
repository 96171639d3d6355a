//! Running a guest: the loop that alternates guest code, syscalls and signal delivery, and the
//! end of the process (exit status or death by the same signal).

use crate::loader;
use crate::options::Options;
use crate::process::{ExitRequest, Process, Thread};
use crate::signals;
use crate::syscalls;
use cetbox_cpu::{Exception, Exit, UdReason};
use std::io::Write;
use std::sync::Arc;

/// Runs a thread until it exits or the process ends.
pub fn run_thread(t: &mut Thread) -> ExitRequest {
    crate::debug::thread_begin(t);
    let how = run_thread_inner(t);
    crate::debug::thread_end(t.tid);
    how
}

fn run_thread_inner(t: &mut Thread) -> ExitRequest {
    loop {
        if t.proc.threads.exiting() {
            // Another thread is ending the process (exit_group, a fatal signal); a core dump
            // wants this thread's registers.
            crate::thread::publish_regs(t, true);
            crate::thread::park_forever();
        }
        let stop = t.stop.clone();
        crate::thread::guest_enter();
        let exit = if crate::debug::active() {
            crate::debug::run(t)
        } else {
            t.engine.run(&mut t.cpu, &stop)
        };
        crate::thread::guest_leave();
        t.orig_rax = -1;
        match exit {
            Exit::Syscall => {
                t.orig_rax = t.cpu.gpr[0] as i64;
                // Blocking syscalls keep a thread away from the run loop: its registers at
                // entry are what a core dump shows for it.
                let published =
                    t.proc.threads.live() > 1 && crate::coredump::may_block(t.cpu.gpr[0]);
                if published {
                    crate::thread::publish_regs(t, false);
                }
                syscalls::handle(t);
                if published {
                    crate::thread::syscall_done();
                }
            }
            Exit::Exception(Exception::SystemCallGate) => syscalls::compat::handle(t),
            Exit::Exception(e) => {
                if let Exception::InvalidOpcode(UdReason::Unimplemented(what)) = &e {
                    crate::diag::diag(&format!(
                        "unsupported instruction at {:#x}: {what}; delivering SIGILL",
                        t.cpu.rip
                    ));
                }
                if let Exception::PageFault(f) = &e {
                    // A fault just below a growable stack extends it, invisibly to the guest.
                    if crate::stack_growth::try_grow_stack(t, f.addr) {
                        continue;
                    }
                }
                if crate::violation::on_exception(t, &e) {
                    continue;
                }
                let fs = signals::fault::from_exception(&e, t.cpu.rip);
                signals::deliver::force(t, fs);
            }
            Exit::Interrupted => {}
        }
        if let Some(x) = t.exit {
            return x;
        }
        signals::deliver::deliver_pending(t);
        if let Some(x) = t.exit {
            return x;
        }
    }
}

/// Ends the cetbox process the way the guest process ended: same exit status, or death by the
/// same signal (so a parent shell sees exactly what it would natively).
pub fn finish(proc: &Process, how: ExitRequest) -> ! {
    // A vfork parent waits for this process to exec or end.
    crate::fork::release_vfork_parent(proc);
    crate::debug::on_end(how);
    proc.observer.finish();
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
        // guest's, which crate::coredump has written): the soft limit goes to 0.
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        lim.rlim_cur = 0;
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

/// Starts `path` with `argv` and `envp` in a new guest process and runs it to the end;
/// `before` is called once the program is loaded, before its first instruction, with the
/// process and the first thread's tid (a debugger attaches there).
pub fn run_program(
    opts: Options,
    observer: Option<Arc<dyn crate::events::Observer>>,
    path: &str,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    before: impl FnOnce(&Arc<Process>, i32),
) -> Result<std::convert::Infallible, loader::LoadError> {
    let proc = Process::new(Arc::new(opts), observer).map_err(|e| loader::LoadError {
        errno: e.raw_os_error().unwrap_or(libc::ENOMEM),
        message: format!("cannot set up the guest address space: {e}"),
    })?;
    let mut t = Thread::new(proc.clone(), proc.pid);
    loader::load(&mut t, path, &argv, &envp)?;
    signals::host::install(&mut t);
    crate::thread::register_main(&t);
    before(&proc, t.tid);
    let how = run_thread(&mut t);
    // Returns only if the leader exited alone while other threads run on.
    crate::thread::finish_thread(&mut t, how);
    crate::thread::park_forever()
}
