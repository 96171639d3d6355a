//! System calls: one table (`table.rs`) names every x86-64 syscall and its handler; the
//! handlers live in one module per family.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;

pub mod arch;
pub mod clone;
pub mod compat;
pub mod exec;
pub mod fs;
pub mod futex_waiters;
pub mod info;
pub mod ipc;
pub mod mem;
pub mod memctl;
pub mod mount;
pub mod mount_options;
pub mod newmount;
pub mod ns;
pub mod pi_inflight;
pub mod pidfd;
pub mod process;
pub mod ptrace;
mod ptrace_host;
pub mod requeue_pi;
pub mod shm;
pub mod shstk;
pub mod signal;
pub mod table;
pub mod time;
pub mod trace;
pub mod uffd;

/// A syscall implementation: receives the six argument registers.
pub type SyscallFn = fn(&mut Thread, [u64; 6]) -> SysResult;

/// Handles the SYSCALL the thread just executed: number in RAX, arguments in RDI, RSI, RDX,
/// R10, R8, R9; the result (or -errno) goes to RAX.
pub fn handle(t: &mut Thread) {
    // PTRACE_SYSCALL: the tracer sees the entry and may change the number (orig_rax; -1
    // skips the call, leaving RAX as the tracer set it) and the arguments
    // (kernel/entry/common.c syscall_trace_enter).
    let traced_orig = ptrace::stop::syscall_stops(t).then(|| ptrace::stop::syscall_entry(t));
    let g = &t.cpu.gpr;
    // Linux takes the number as an int (arch/x86/entry/entry_64.S passes %eax sign-extended,
    // do_syscall_x64 compares it unsigned): the upper 32 bits of RAX are ignored.
    let nr = traced_orig.unwrap_or(g[0]) as u32 as u64;
    let args = [g[7], g[6], g[2], g[10], g[8], g[9]];
    t.keep_rax = false;
    if let Some(orig) = traced_orig {
        t.orig_rax = orig as i64;
        if orig as u32 == u32::MAX {
            t.keep_rax = true;
            if ptrace::stop::syscall_stops(t) {
                ptrace::stop::syscall_exit(t, orig);
            }
            return;
        }
    }
    // For the ERESTART* rules applied at signal delivery (rt_sigreturn clears it).
    t.signals.in_syscall = Some(nr);
    let row = table::get(nr);
    // Other processes' view of this one's /proc files, as of now (a fault may have grown the
    // stack since the last call), before a call through which another process can learn of
    // it or which may block: every call but those that only change mappings.
    if !row.is_some_and(|s| s.only_maps()) {
        crate::procview::refresh(t, false);
    }
    let removals = t.mem().removals();
    // A traced process can stop in any syscall (signal stops): its tracer sees and may change
    // the state published here.
    ptrace::publish(t);
    if crate::debug::active() {
        crate::debug::syscall_enter(t, nr);
    }
    crate::usermem::reset();
    // Guest memory the handler reads or writes itself is the kernel's access (EFAULT where
    // Linux's copy_to_user fails, see cetbox_mem's faultin).
    let kernel = cetbox_mem::KernelAccess::enter();
    let res = match row.and_then(|s| s.run) {
        // A mapping call held up by another process's accessor gives way to a signal before
        // it changes anything (remote_mem::settle), and is restarted after it.
        Some(_) if row.is_some_and(|s| s.only_maps()) && !crate::remote_mem::settle(t) => {
            Err(crate::signals::ERESTARTNOINTR)
        }
        Some(f) => f(t, args),
        None => Err(Errno::ENOSYS),
    };
    // What the host wrote into bounce buffers reaches guest memory now, checked again.
    let res = crate::usermem::finish(t, res);
    drop(kernel);
    ptrace::reload(t);
    // Calls that take memory away from other threads (munmap, mprotect, ...): those threads
    // must not keep using it once this call returns.
    let takes_away = row.is_some_and(|s| s.unmaps(&args));
    // Memory unmapped (by this call, or by another thread's whose own wait has not finished)
    // keeps its old contents until no access checked before the unmap can be in flight:
    // after the wait (cetbox_mem's scrub.rs).
    let unscrubbed = t.mem().unscrubbed_mark();
    if (takes_away && t.mem().removals() != removals) || unscrubbed.is_some() {
        crate::thread_group::shootdown(t);
        // Host PI futex calls must not write a word this call made unwritable.
        pi_inflight::quiesce(t);
    }
    if let Some(mark) = unscrubbed {
        t.mem().scrub_through(mark);
    }
    if matches!(nr as i64, libc::SYS_execve | libc::SYS_execveat) && res.is_ok() {
        crate::procview::refresh(t, true);
    }
    if t.proc.opts.trace_syscalls {
        crate::diag::diag(&format!("[{}] {}", t.tid, trace::line(t, nr, &args, &res)));
    }
    if !t.keep_rax {
        t.cpu.gpr[0] = match res {
            Ok(v) => v,
            Err(e) => e.to_rax(),
        };
    }
    if crate::debug::active() {
        crate::debug::syscall_leave(t, nr);
    }
    if let Some(orig) = traced_orig {
        if t.exit.is_none() && ptrace::stop::syscall_stops(t) {
            ptrace::stop::syscall_exit(t, orig);
        }
    }
}
