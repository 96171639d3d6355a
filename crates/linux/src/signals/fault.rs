//! CPU exceptions become signals exactly as Linux's trap handlers make them.

use super::info::*;
use super::SigInfo;
use cetbox_cpu::Exception;
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
}

/// The signal Linux sends for exception `e` raised by the instruction at `rip`.
pub fn from_exception(e: &Exception, rip: u64) -> FaultSignal {
    let (info, cr2) = match e {
        Exception::DivideError => (SigInfo::fault(libc::SIGFPE, FPE_INTDIV, rip), None),
        Exception::Debug => (SigInfo::fault(libc::SIGTRAP, 2 /* TRAP_TRACE */, rip), None),
        Exception::Breakpoint => (SigInfo::new(libc::SIGTRAP, SI_KERNEL), None),
        Exception::InvalidOpcode(_) => (SigInfo::fault(libc::SIGILL, ILL_ILLOPN, rip), None),
        Exception::GeneralProtection | Exception::Alignment => {
            (SigInfo::fault(libc::SIGSEGV, SI_KERNEL, 0), None)
        }
        Exception::PageFault(f) => {
            let (sig, code) = match f.kind {
                FaultKind::NotMapped => (libc::SIGSEGV, SEGV_MAPERR),
                FaultKind::Protection => (libc::SIGSEGV, SEGV_ACCERR),
                FaultKind::BeyondEof => (libc::SIGBUS, BUS_ADRERR),
            };
            (SigInfo::fault(sig, code, f.addr), Some(f.addr))
        }
        Exception::ControlProtection(_) => (SigInfo::fault(libc::SIGSEGV, SEGV_CPERR, 0), None),
        // FPE codes for x87/SIMD are refined by the signals code from FSW/MXCSR.
        Exception::X87Fault => (SigInfo::fault(libc::SIGFPE, 0, rip), None),
        Exception::SimdFault(_) => (SigInfo::fault(libc::SIGFPE, 0, rip), None),
    };
    FaultSignal {
        info,
        trapno: e.vector(),
        err: e.error_code(),
        cr2,
    }
}
