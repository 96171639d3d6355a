//! System calls, one module per family. Each module exposes `lookup(nr) -> Option<SyscallFn>`.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;

pub mod arch;
pub mod clone;
pub mod compat;
pub mod exec;
pub mod fs;
pub mod info;
pub mod mem;
pub mod names;
pub mod process;
pub mod ptrace;
pub mod shstk;
pub mod signal;
pub mod time;

/// A syscall implementation: receives the six argument registers.
pub type SyscallFn = fn(&mut Thread, [u64; 6]) -> SysResult;

fn lookup(nr: u64) -> Option<SyscallFn> {
    fs::lookup(nr)
        .or_else(|| mem::lookup(nr))
        .or_else(|| signal::lookup(nr))
        .or_else(|| process::lookup(nr))
        .or_else(|| time::lookup(nr))
        .or_else(|| info::lookup(nr))
        .or_else(|| arch::lookup(nr))
        .or_else(|| shstk::lookup(nr))
        .or_else(|| clone::lookup(nr))
        .or_else(|| exec::lookup(nr))
        .or_else(|| ptrace::lookup(nr))
}

/// Handles the SYSCALL the thread just executed: number in RAX, arguments in RDI, RSI, RDX,
/// R10, R8, R9; the result (or -errno) goes to RAX.
pub fn handle(t: &mut Thread) {
    let g = &t.cpu.gpr;
    let nr = g[0];
    let args = [g[7], g[6], g[2], g[10], g[8], g[9]];
    t.keep_rax = false;
    // For the ERESTART* rules applied at signal delivery (rt_sigreturn clears it).
    t.signals.in_syscall = Some(nr);
    let epoch = t.mem().code_epoch();
    // A traced process can stop in any syscall (signal stops): its tracer sees and may change
    // the state published here.
    ptrace::publish(t);
    if crate::debug::active() {
        crate::debug::syscall_enter(t, nr);
    }
    let res = match lookup(nr) {
        Some(f) => f(t, args),
        None => Err(Errno::ENOSYS),
    };
    ptrace::reload(t);
    // munmap, mprotect, mremap, madvise, brk, mmap(MAP_FIXED) and shmdt may take memory away
    // from other threads: they must not keep using it once this call returns.
    let takes_away = match nr {
        9 => args[3] & libc::MAP_FIXED as u64 != 0,
        10 | 11 | 12 | 25 | 28 | 67 => true,
        _ => false,
    };
    if takes_away && t.mem().code_epoch() != epoch {
        crate::thread::shootdown(t.tid);
    }
    if t.proc.opts.trace_syscalls {
        trace(t, nr, &args, &res);
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
}

fn trace(t: &Thread, nr: u64, args: &[u64; 6], res: &SysResult) {
    let name = names::name(nr);
    let a = names::format_args(t, nr, args);
    let r = match res {
        Ok(v) => names::format_result(nr, *v),
        Err(e) => format!(
            "-1 {} ({})",
            names::errno_name(e.0),
            std::io::Error::from_raw_os_error(e.0)
        ),
    };
    crate::run::diag(&format!("[{}] {}({}) = {}", t.tid, name, a.join(", "), r));
}
