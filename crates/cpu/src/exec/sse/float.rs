//! Floating-point arithmetic, comparisons and COMISS-family flag setting, executed on the host
//! (`hostfp`) under the guest's rounding mode, FTZ and DAZ, with every exception masked; the
//! guest's exception masks are then applied to the flags the host raised (`settle`).

use super::hostfp::{self, Bin, Cmp};
use super::{imm8, src, Handler};
use crate::exception::Result;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction};

/// MXCSR bits.
pub(crate) const FLAGS: u32 = 0x3f;
pub(crate) const IE: u32 = 1 << 0;
pub(crate) const DE: u32 = 1 << 1;
pub(crate) const ZE: u32 = 1 << 2;
pub(crate) const UE: u32 = 1 << 4;
pub(crate) const MASKS: u32 = 0x1f80;
pub(crate) const UM: u32 = 1 << 11;
pub(crate) const FTZ: u32 = 1 << 15;

/// Which result lanes are floating-point values that may underflow, for the unmasked-UE rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tiny {
    No,
    F32(usize),
    F64(usize),
}

/// The MXCSR the host runs with: the guest's rounding control, FTZ and DAZ, all exceptions
/// masked, flags clear. FTZ only acts on masked underflow, so it is dropped when the guest
/// unmasks UE (the exact tiny result is then needed to detect the trap).
#[inline(always)]
pub(crate) fn host_csr(guest: u32) -> u32 {
    let mut c = (guest & 0xffff & !FLAGS) | MASKS;
    if guest & UM == 0 {
        c &= !FTZ;
    }
    c
}

/// With UE unmasked, underflow is signalled for any tiny result, exact or not, while the
/// masked host run reports it only when also inexact: a non-zero denormal result lane is the
/// exact tiny case.
#[inline(always)]
pub(crate) fn unmasked_underflow(guest: u32, r: u128, tiny: Tiny) -> u32 {
    if guest & UM != 0 {
        return 0;
    }
    let any = match tiny {
        Tiny::No => false,
        Tiny::F32(n) => (0..n).any(|k| {
            let v = (r >> (32 * k)) as u32;
            v & 0x7f80_0000 == 0 && v & 0x007f_ffff != 0
        }),
        Tiny::F64(n) => (0..n).any(|k| {
            let v = (r >> (64 * k)) as u64;
            v & 0x7ff0_0000_0000_0000 == 0 && v & 0x000f_ffff_ffff_ffff != 0
        }),
    };
    if any {
        UE
    } else {
        0
    }
}

/// Applies the guest's exception masks to the flags an operation raised. With no unmasked
/// exception the flags are ORed into MXCSR and the caller commits its result. Otherwise the
/// instruction faults with #XM and its destination is not written; MXCSR records, as the
/// hardware does, the pre-computation exceptions (IE, DE, ZE) if one of them is unmasked, or
/// else every exception detected.
pub(crate) fn settle(cpu: &mut Cpu, raised: u32) -> Result<()> {
    let flags = raised & FLAGS;
    let unmasked = !(cpu.sse.mxcsr >> 7) & FLAGS;
    if flags & unmasked != 0 {
        let pre = flags & (IE | DE | ZE);
        let report = if pre & unmasked != 0 { pre } else { flags };
        cpu.sse.mxcsr |= report;
        return Err(Exception::SimdFault(cpu.sse.mxcsr & FLAGS));
    }
    cpu.sse.mxcsr |= flags;
    Ok(())
}

pub(crate) fn no_host(i: &Instruction) -> Exception {
    Exception::InvalidOpcode(UdReason::Unimplemented(format!(
        "{i} ({:?}): floating point needs an x86-64 host",
        i.code()
    )))
}

/// Runs `op` on the host for `a` (destination value) and `b` (source), settles exceptions and
/// returns the result to commit.
pub(crate) fn run_bin(
    cpu: &mut Cpu,
    i: &Instruction,
    op: Bin,
    tiny: Tiny,
    a: u128,
    b: u128,
) -> Result<u128> {
    let guest = cpu.sse.mxcsr;
    let (r, csr) = hostfp::bin(op, host_csr(guest), a, b).ok_or_else(|| no_host(i))?;
    settle(cpu, csr | unmasked_underflow(guest, r, tiny))?;
    Ok(r)
}

/// `OP xmm, xmm/mem` computed by the host instruction of the same name.
pub(crate) fn arith(cpu: &mut Cpu, i: &Instruction, op: Bin, tiny: Tiny) -> Result<()> {
    let d = i.op0_register();
    let b = src(cpu, i, 1)?;
    let a = cpu.xmm(d);
    let r = run_bin(cpu, i, op, tiny, a, b)?;
    cpu.set_xmm(d, r);
    Ok(())
}

macro_rules! fp {
    ($op:ident, $tiny:expr) => {
        |c: &mut Cpu, i: &Instruction| arith(c, i, Bin::$op, $tiny)
    };
}

macro_rules! fpcmp {
    ($op:ident) => {
        |c: &mut Cpu, i: &Instruction| arith(c, i, Bin::$op(imm8(i) & 7), Tiny::No)
    };
}

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    use Tiny::*;
    let h: Handler = match code {
        Addps_xmm_xmmm128 => fp!(Addps, F32(4)),
        Addpd_xmm_xmmm128 => fp!(Addpd, F64(2)),
        Addss_xmm_xmmm32 => fp!(Addss, F32(1)),
        Addsd_xmm_xmmm64 => fp!(Addsd, F64(1)),
        Subps_xmm_xmmm128 => fp!(Subps, F32(4)),
        Subpd_xmm_xmmm128 => fp!(Subpd, F64(2)),
        Subss_xmm_xmmm32 => fp!(Subss, F32(1)),
        Subsd_xmm_xmmm64 => fp!(Subsd, F64(1)),
        Mulps_xmm_xmmm128 => fp!(Mulps, F32(4)),
        Mulpd_xmm_xmmm128 => fp!(Mulpd, F64(2)),
        Mulss_xmm_xmmm32 => fp!(Mulss, F32(1)),
        Mulsd_xmm_xmmm64 => fp!(Mulsd, F64(1)),
        Divps_xmm_xmmm128 => fp!(Divps, F32(4)),
        Divpd_xmm_xmmm128 => fp!(Divpd, F64(2)),
        Divss_xmm_xmmm32 => fp!(Divss, F32(1)),
        Divsd_xmm_xmmm64 => fp!(Divsd, F64(1)),
        Minps_xmm_xmmm128 => fp!(Minps, No),
        Minpd_xmm_xmmm128 => fp!(Minpd, No),
        Minss_xmm_xmmm32 => fp!(Minss, No),
        Minsd_xmm_xmmm64 => fp!(Minsd, No),
        Maxps_xmm_xmmm128 => fp!(Maxps, No),
        Maxpd_xmm_xmmm128 => fp!(Maxpd, No),
        Maxss_xmm_xmmm32 => fp!(Maxss, No),
        Maxsd_xmm_xmmm64 => fp!(Maxsd, No),
        Sqrtps_xmm_xmmm128 => fp!(Sqrtps, No),
        Sqrtpd_xmm_xmmm128 => fp!(Sqrtpd, No),
        Sqrtss_xmm_xmmm32 => fp!(Sqrtss, No),
        Sqrtsd_xmm_xmmm64 => fp!(Sqrtsd, No),
        Rcpps_xmm_xmmm128 => fp!(Rcpps, No),
        Rcpss_xmm_xmmm32 => fp!(Rcpss, No),
        Rsqrtps_xmm_xmmm128 => fp!(Rsqrtps, No),
        Rsqrtss_xmm_xmmm32 => fp!(Rsqrtss, No),
        Cmpps_xmm_xmmm128_imm8 => fpcmp!(Cmpps),
        Cmppd_xmm_xmmm128_imm8 => fpcmp!(Cmppd),
        Cmpss_xmm_xmmm32_imm8 => fpcmp!(Cmpss),
        Cmpsd_xmm_xmmm64_imm8 => fpcmp!(Cmpsd),
        Comiss_xmm_xmmm32 => |c: &mut Cpu, i: &Instruction| comi(c, i, Cmp::Comiss),
        Ucomiss_xmm_xmmm32 => |c: &mut Cpu, i: &Instruction| comi(c, i, Cmp::Ucomiss),
        Comisd_xmm_xmmm64 => |c: &mut Cpu, i: &Instruction| comi(c, i, Cmp::Comisd),
        Ucomisd_xmm_xmmm64 => |c: &mut Cpu, i: &Instruction| comi(c, i, Cmp::Ucomisd),
        _ => return None,
    };
    Some(h)
}

/// COMISS and friends: ZF, PF, CF from the comparison; OF, SF and AF cleared.
fn comi(cpu: &mut Cpu, i: &Instruction, op: Cmp) -> Result<()> {
    let a = cpu.xmm(i.op0_register());
    let b = src(cpu, i, 1)?;
    let (z, p, c, csr) =
        hostfp::compare(op, host_csr(cpu.sse.mxcsr), a, b).ok_or_else(|| no_host(i))?;
    settle(cpu, csr)?;
    cpu.flags.set_arith(c, p, false, z, false, false);
    Ok(())
}
