//! The 32-bit system-call gate, `int 0x80`, used from 64-bit code: Linux dispatches it through
//! the i386 table with 32-bit arguments in EBX, ECX, EDX, ESI, EDI, EBP. cetbox runs no 32-bit
//! code, so it answers the calls 64-bit programs make this way (exit, getpid, the old
//! sigaction the shadow-stack selftest uses) and ENOSYS for the rest.

use crate::errno::{Errno, SysResult};
use crate::process::{ExitRequest, Thread};
use crate::signals::{self, SigAction, SA_IA32_ABI};

const NR_EXIT: u64 = 1;
const NR_GETPID: u64 = 20;
const NR_SIGACTION: u64 = 67;
const NR_GETTID: u64 = 224;
const NR_EXIT_GROUP: u64 = 252;
const NR_ARCH_PRCTL: u64 = 384;

/// Handles the `int 0x80` the thread just executed (RIP is after it); the result goes to RAX,
/// sign-extended from 32 bits as the compat entry does.
pub fn handle(t: &mut Thread) {
    let g = &t.cpu.gpr;
    let nr = g[0] & 0xffff_ffff;
    let a = [g[3], g[1], g[2], g[6], g[7], g[5]].map(|v| v & 0xffff_ffff);
    let r: SysResult = match nr {
        NR_EXIT => {
            t.exit = Some(ExitRequest::Thread(a[0] as i32));
            Ok(0)
        }
        NR_EXIT_GROUP => {
            t.exit = Some(ExitRequest::Group(a[0] as i32));
            Ok(0)
        }
        NR_GETPID => Ok(t.proc.pid as u64),
        NR_GETTID => Ok(t.tid as u64),
        NR_SIGACTION => old_sigaction(t, a[0] as i32, a[1], a[2]),
        // The ia32 arch_prctl never reaches shstk_prctl() (Linux arch/x86/kernel/process_64.c).
        NR_ARCH_PRCTL => Err(Errno::EINVAL),
        // map_shadow_stack (453) is not in the i386 table, nor is anything cetbox lacks.
        _ => Err(Errno::ENOSYS),
    };
    if t.proc.opts.trace_syscalls {
        crate::diag::diag(&format!(
            "[{}] int 0x80: i386 syscall {nr}({:#x}, {:#x}, {:#x}) = {:?}",
            t.tid, a[0], a[1], a[2], r
        ));
    }
    t.cpu.gpr[0] = match r {
        Ok(v) => v as u32 as i32 as i64 as u64,
        Err(e) => e.to_rax(),
    };
}

/// i386 `sigaction` (67) with the 16-byte `struct old_sigaction` {handler, mask, flags,
/// restorer} of 32-bit words; the action is marked SA_IA32_ABI, so it gets an ia32 frame.
fn old_sigaction(t: &mut Thread, sig: i32, act: u64, oact: u64) -> SysResult {
    if !signals::valid(sig) || ((sig == libc::SIGKILL || sig == libc::SIGSTOP) && act != 0) {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 {
        let mut b = [0u8; 16];
        t.mem().read_bytes(act, &mut b)?;
        let w = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as u64;
        Some(SigAction {
            handler: w(0),
            mask: w(1),
            flags: w(2) | SA_IA32_ABI,
            restorer: w(3),
        })
    } else {
        None
    };
    let old = t.proc.signals.action(sig);
    if oact != 0 {
        let mut b = [0u8; 16];
        for (i, v) in [
            old.handler,
            old.mask,
            old.flags & !SA_IA32_ABI,
            old.restorer,
        ]
        .iter()
        .enumerate()
        {
            b[4 * i..4 * i + 4].copy_from_slice(&(*v as u32).to_le_bytes());
        }
        t.mem().write_bytes(oact, &b)?;
    }
    if let Some(n) = new {
        t.proc.signals.set_action(sig, n);
        signals::host::sync_action(&t.proc, sig);
    }
    Ok(0)
}
