//! What Linux tells a user program about a CPU exception, derived here from the exception the
//! emulator raised, so the differential test can compare it with what the host's kernel said:
//! the signal's si_code and si_addr and the frame's trapno and err.
//!
//! Sources (Linux 6.6): arch/x86/kernel/traps.c (exc_divide_error and exc_invalid_op via
//! do_error_trap with the faulting RIP as address; exc_general_protection and do_int3_user via
//! force_sig, i.e. SI_KERNEL and no address; exc_alignment_check SIGBUS BUS_ADRALN),
//! arch/x86/mm/fault.c (set_signal_archinfo: err = error code | X86_PF_USER, cr2 = address;
//! SEGV_MAPERR without a VMA, SEGV_ACCERR with one; do_sigbus BUS_ADRERR),
//! arch/x86/kernel/fpu/core.c (fpu__exception_code: the SIGFPE si_code of #MF/#XM).

use super::FaultInfo;
use cetbox_cpu::Exception;
use cetbox_mem::FaultKind;

const SI_KERNEL: i32 = 0x80;
const FPE_INTDIV: i32 = 1;
const FPE_FLTDIV: i32 = 3;
const FPE_FLTOVF: i32 = 4;
const FPE_FLTUND: i32 = 5;
const FPE_FLTRES: i32 = 6;
const FPE_FLTINV: i32 = 7;
const ILL_ILLOPN: i32 = 2;
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;
const BUS_ADRERR: i32 = 2;

/// fpu__exception_code's order for the unmasked pending exception flags.
fn fpe_code(pending: u32) -> i32 {
    if pending & 0x01 != 0 {
        FPE_FLTINV
    } else if pending & 0x04 != 0 {
        FPE_FLTDIV
    } else if pending & 0x08 != 0 {
        FPE_FLTOVF
    } else if pending & 0x12 != 0 {
        FPE_FLTUND
    } else if pending & 0x20 != 0 {
        FPE_FLTRES
    } else {
        0
    }
}

/// What Linux reports for `e` raised at `rip` (the faulting instruction), with the emulator's
/// MXCSR, x87 status and control words after the exception.
pub fn linux_fault(e: &Exception, rip: u64, mxcsr: u32, fsw: u16, fcw: u16) -> FaultInfo {
    let (code, addr) = match e {
        Exception::DivideError => (FPE_INTDIV, rip),
        Exception::InvalidOpcode(_) => (ILL_ILLOPN, rip),
        Exception::Breakpoint => (SI_KERNEL, 0),
        Exception::GeneralProtection | Exception::Alignment => (SI_KERNEL, 0),
        Exception::PageFault(f) => (
            match f.kind {
                FaultKind::NotMapped => SEGV_MAPERR,
                FaultKind::Protection => SEGV_ACCERR,
                FaultKind::BeyondEof => BUS_ADRERR,
            },
            f.addr,
        ),
        Exception::X87Fault => (fpe_code((fsw & !fcw) as u32 & 0x3f), rip),
        Exception::SimdFault(flags) => {
            let m = mxcsr | (flags & 0x3f);
            (fpe_code(!(m >> 7) & m & 0x3f), rip)
        }
        // Not raised by the forms compared here; the emulator's own values.
        _ => (SI_KERNEL, 0),
    };
    FaultInfo {
        trapno: e.vector(),
        err: e.error_code(),
        code,
        addr,
    }
}
