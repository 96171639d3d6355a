//! CPU exceptions become signals exactly as Linux's trap handlers make them.

use super::info::*;
use super::SigInfo;
use cetbox_cpu::{Cpu, Exception};
use cetbox_mem::FaultKind;

/// A synchronous signal caused by an instruction, with the trap details Linux records in the
/// signal frame's sigcontext (trapno, err, cr2).
#[derive(Clone, Copy, Debug)]
pub struct FaultSignal {
    pub info: SigInfo,
    pub trapno: u64,
    pub err: u64,
    /// Set for page faults (sigcontext.cr2).
    pub cr2: Option<u64>,
    /// Whether the signal comes from a CPU trap (and so updates the thread's trap number and
    /// error code); false for signals the kernel forces for other reasons (a signal frame it
    /// could not build, a bad rt_sigreturn frame), whose frames show the previous trap state.
    pub trap: bool,
    /// For #XM: the exception flags the CPU reported (merged with MXCSR's).
    pub simd_flags: u32,
}

impl FaultSignal {
    /// A signal the kernel forces with `force_sig`: si_code SI_KERNEL, no address, trap state
    /// unchanged.
    pub fn kernel(sig: i32) -> FaultSignal {
        FaultSignal {
            info: SigInfo::new(sig, SI_KERNEL),
            trapno: 0,
            err: 0,
            cr2: None,
            trap: false,
            simd_flags: 0,
        }
    }
}

/// The signal Linux sends for exception `e` raised by the instruction at `rip` (for traps such
/// as #BP and #DB, `rip` is already past the instruction).
pub fn from_exception(e: &Exception, rip: u64) -> FaultSignal {
    let (info, cr2) = match e {
        Exception::DivideError => (SigInfo::fault(libc::SIGFPE, FPE_INTDIV, rip), None),
        Exception::Debug => (SigInfo::fault(libc::SIGTRAP, TRAP_TRACE, rip), None),
        // do_int3_user: a plain force_sig, so SI_KERNEL and no address.
        Exception::Breakpoint => (SigInfo::new(libc::SIGTRAP, SI_KERNEL), None),
        // The personality handles the system-call gate; this is only a safe default.
        Exception::SystemCallGate => (SigInfo::fault(libc::SIGSEGV, SI_KERNEL, 0), None),
        Exception::InvalidOpcode(_) => (SigInfo::fault(libc::SIGILL, ILL_ILLOPN, rip), None),
        Exception::GeneralProtection | Exception::Alignment => {
            (SigInfo::fault(libc::SIGSEGV, SI_KERNEL, 0), None)
        }
        // exc_alignment_check: do_trap(.., SIGBUS, .., BUS_ADRALN, NULL).
        Exception::AlignmentCheck => (SigInfo::fault(libc::SIGBUS, BUS_ADRALN, 0), None),
        Exception::PageFault(f) => {
            let (sig, code) = match f.kind {
                FaultKind::NotMapped => (libc::SIGSEGV, SEGV_MAPERR),
                FaultKind::Protection => (libc::SIGSEGV, SEGV_ACCERR),
                FaultKind::BeyondEof => (libc::SIGBUS, BUS_ADRERR),
            };
            (SigInfo::fault(sig, code, f.addr), Some(f.addr))
        }
        Exception::ControlProtection(_) => (SigInfo::fault(libc::SIGSEGV, SEGV_CPERR, 0), None),
        // si_code is computed from the FPU state by `refine_fpe` once the CPU is at hand.
        Exception::X87Fault => (SigInfo::fault(libc::SIGFPE, 0, rip), None),
        Exception::SimdFault(_) => (SigInfo::fault(libc::SIGFPE, 0, rip), None),
    };
    let err = match e {
        // A page past the end of its file is not present (observed: err 4 for a read).
        Exception::PageFault(f) if f.kind == FaultKind::BeyondEof => e.error_code() & !1,
        _ => e.error_code(),
    };
    FaultSignal {
        info,
        trapno: e.vector(),
        err,
        cr2,
        trap: true,
        simd_flags: match e {
            Exception::SimdFault(f) => *f,
            _ => 0,
        },
    }
}

/// The SIGFPE si_code for an unmasked floating-point exception: the lowest-priority-first
/// order Linux uses (invalid, divide by zero, overflow, denormal/underflow, precision), from
/// the exception flags that are set and not masked. 0 means no unmasked exception is pending.
pub fn fpe_code(pending_unmasked: u32) -> i32 {
    if pending_unmasked & 0x01 != 0 {
        FPE_FLTINV
    } else if pending_unmasked & 0x04 != 0 {
        FPE_FLTDIV
    } else if pending_unmasked & 0x08 != 0 {
        FPE_FLTOVF
    } else if pending_unmasked & 0x12 != 0 {
        FPE_FLTUND
    } else if pending_unmasked & 0x20 != 0 {
        FPE_FLTRES
    } else {
        0
    }
}

/// Fills in si_code of an x87 (#MF, vector 16) or SIMD (#XM, vector 19) SIGFPE from the FPU
/// state: for x87 the status-word flags not masked in the control word, for SIMD the MXCSR
/// flags not masked by MXCSR's own mask bits. Other signals are left alone.
pub fn refine_fpe(fs: &mut FaultSignal, cpu: &Cpu) {
    if fs.info.signo != libc::SIGFPE || !fs.trap {
        return;
    }
    let pending = match fs.trapno {
        16 => (cpu.x87.status_word() & !cpu.x87.fcw) as u32 & 0x3f,
        19 => {
            let mxcsr = cpu.sse.mxcsr | (fs.simd_flags & 0x3f);
            !(mxcsr >> 7) & mxcsr & 0x3f
        }
        _ => return,
    };
    fs.info.code = fpe_code(pending);
}
