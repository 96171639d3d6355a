//! Floating-point arithmetic, comparisons and COMISS-family flag setting, executed on the host
//! (`hostfp`) under the guest's rounding mode, FTZ and DAZ, with every exception masked; the
//! guest's exception masks are then applied to the flags the host raised (`settle`).

use super::hostfp::{self, Bin, Cmp};
use super::unbounded;
use super::{imm8, src, Handler};
use crate::exception::Result;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction};

/// MXCSR bits.
pub(crate) const FLAGS: u32 = 0x3f;
pub(crate) const IE: u32 = 1 << 0;
pub(crate) const DE: u32 = 1 << 1;
pub(crate) const ZE: u32 = 1 << 2;
pub(crate) const OE: u32 = 1 << 3;
pub(crate) const UE: u32 = 1 << 4;
pub(crate) const PE: u32 = 1 << 5;
pub(crate) const MASKS: u32 = 0x1f80;
pub(crate) const OM: u32 = 1 << 10;
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

/// `settle` for an instruction whose steps raise exceptions in order (DPPS): `done` holds the
/// flags of the steps that completed without an unmasked exception, which stay in MXCSR
/// whatever the last step `raised` reports.
pub(crate) fn settle_after(cpu: &mut Cpu, done: u32, raised: u32) -> Result<()> {
    cpu.sse.mxcsr |= done & FLAGS;
    settle(cpu, raised)
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
    let raised = if guest & (OM | UM) == OM | UM {
        csr
    } else {
        unmasked_post(op, guest, a, b, r, csr, tiny)
    };
    settle(cpu, raised)?;
    Ok(r)
}

/// How one lane of an operation that can overflow or underflow is computed: the scalar form
/// of the operation, the number of lanes, the width of a source lane in bits, whether the
/// result is double precision, and the x87 form of the operation for `unbounded`.
struct Lanes {
    scalar: Bin,
    count: u32,
    width: u32,
    double: bool,
    op: unbounded::Op,
}

fn lanes_of(op: Bin) -> Option<Lanes> {
    use unbounded::Op::*;
    use Bin::*;
    let (scalar, count, width, double, op) = match op {
        Addps => (Addss, 4, 32, false, Add),
        Subps => (Subss, 4, 32, false, Sub),
        Mulps => (Mulss, 4, 32, false, Mul),
        Divps => (Divss, 4, 32, false, Div),
        Addpd => (Addsd, 2, 64, true, Add),
        Subpd => (Subsd, 2, 64, true, Sub),
        Mulpd => (Mulsd, 2, 64, true, Mul),
        Divpd => (Divsd, 2, 64, true, Div),
        Cvtpd2ps => (Cvtsd2ss, 2, 64, false, Round),
        Addss => (op, 1, 32, false, Add),
        Subss => (op, 1, 32, false, Sub),
        Mulss => (op, 1, 32, false, Mul),
        Divss => (op, 1, 32, false, Div),
        Cvtsd2ss => (op, 1, 64, false, Round),
        Addsd => (op, 1, 64, true, Add),
        Subsd => (op, 1, 64, true, Sub),
        Mulsd => (op, 1, 64, true, Mul),
        Divsd => (op, 1, 64, true, Div),
        _ => return None,
    };
    Some(Lanes {
        scalar,
        count,
        width,
        double,
        op,
    })
}

/// MXCSR.DAZ.
const DAZ: u32 = 1 << 6;

/// The low `width` bits of `v` as a float widened exactly to f64, a denormal read as a zero of
/// its sign when DAZ is set (as the SSE unit reads its operands).
fn operand(v: u128, width: u32, guest: u32) -> f64 {
    if width == 32 {
        let x = v as u32;
        if guest & DAZ != 0 && x & 0x7f80_0000 == 0 {
            return f32::from_bits(x & 0x8000_0000) as f64;
        }
        f32::from_bits(x) as f64
    } else {
        let x = v as u64;
        if guest & DAZ != 0 && x & 0x7ff0_0000_0000_0000 == 0 {
            return f64::from_bits(x & 0x8000_0000_0000_0000);
        }
        f64::from_bits(x)
    }
}

/// The flags an operation reports when the guest unmasks numeric overflow or underflow
/// (`raised`: what the host reported with every exception masked; `r` its result); see
/// `lane_flags`. Scalar forms are settled from the host's own run.
fn unmasked_post(op: Bin, guest: u32, a: u128, b: u128, r: u128, raised: u32, tiny: Tiny) -> u32 {
    match lanes_of(op) {
        Some(l) if l.count == 1 => lane_rule(&l, guest, a, b, r, raised),
        Some(_) => {
            lane_flags(op, guest, a, b).unwrap_or(raised | unmasked_underflow(guest, r, tiny))
        }
        None => raised | unmasked_underflow(guest, r, tiny),
    }
}

/// The flags of one lane computed as `r` with flags `f` by the host with every exception
/// masked, once the guest's masks apply. A lane whose result overflows with OE unmasked, or is
/// tiny with UE unmasked, has no result delivered (the instruction faults and leaves its
/// destination unchanged: Intel SDM Vol. 1 §11.5.2.4, §11.5.2.5); it reports OE or UE, UE even
/// for an exact tiny result (§4.9.1.5), and PE exactly when rounding with an unbounded
/// exponent is inexact (`unbounded`), where the masked host run reports the inexactness of
/// the infinity, MAX, denormal or zero it delivers.
fn lane_rule(l: &Lanes, guest: u32, a: u128, b: u128, r: u128, f: u32) -> u32 {
    let lane_tiny = if l.double { Tiny::F64(1) } else { Tiny::F32(1) };
    let mut f = f | unmasked_underflow(guest, r, lane_tiny);
    if (f & OE != 0 && guest & OM == 0) || (f & UE != 0 && guest & UM == 0) {
        let x = operand(a, l.width, guest);
        let y = operand(b, l.width, guest);
        f &= !PE;
        if unbounded::inexact(l.op, l.double, (guest >> 13) & 3, x, y).unwrap_or(true) {
            f |= PE;
        }
    }
    f
}

/// One lane of the scalar operation `op` (ADDSS/SD, SUB, MUL, DIV) on (a, b) run by the host
/// and judged by `lane_rule`: (the host's result, the flags under the guest's masks).
pub(crate) fn lane_rule_op(op: Bin, guest: u32, a: u128, b: u128) -> Option<(u128, u32)> {
    let l = lanes_of(op)?;
    let (r, f) = hostfp::bin(l.scalar, host_csr(guest), a, b)?;
    Some((r, lane_rule(&l, guest, a, b, r, f & FLAGS)))
}

/// One lane of a fused multiply-add, `±(a * b) ± c` rounded once (FMA3), as `lane_rule`
/// judges the other operations: the host's scalar FMA gives the masked flags, and with OE or
/// UE unmasked an overflowing or tiny lane reports UE for an exact tiny result and PE exactly
/// when the unbounded-exponent rounding is inexact (`unbounded::fma_inexact`).
pub(crate) fn lane_rule_fma(
    double: bool,
    guest: u32,
    a: u128,
    b: u128,
    c: u128,
    neg_product: bool,
    sub: bool,
) -> Option<u32> {
    let sign: u128 = if double { 1 << 63 } else { 1 << 31 };
    let a = if neg_product { a ^ sign } else { a };
    let c = if sub { c ^ sign } else { c };
    let (r, f) = hostfp::fma(double, host_csr(guest), a, b, c)?;
    let tiny = if double { Tiny::F64(1) } else { Tiny::F32(1) };
    let mut f = (f & FLAGS) | unmasked_underflow(guest, r, tiny);
    if (f & OE != 0 && guest & OM == 0) || (f & UE != 0 && guest & UM == 0) {
        let width = if double { 64 } else { 32 };
        let (x, y, z) = (
            operand(a, width, guest),
            operand(b, width, guest),
            operand(c, width, guest),
        );
        f &= !PE;
        if unbounded::fma_inexact(double, x, y, z) {
            f |= PE;
        }
    }
    Some(f)
}

/// The flags `op` on (a, b) reports under the guest's MXCSR, settled lane by lane: each lane
/// is computed by the scalar form of the operation and judged by `lane_rule`, and the lanes'
/// flags are ORed (§11.5.3: every exception detected, masked or not, is flagged). None for an
/// operation that cannot overflow or underflow, or without an x86 host.
fn lane_flags(op: Bin, guest: u32, a: u128, b: u128) -> Option<u32> {
    let l = lanes_of(op)?;
    let mut out = 0;
    for k in 0..l.count {
        let (ak, bk) = (a >> (l.width * k), b >> (l.width * k));
        let (rk, fk) = hostfp::bin(l.scalar, host_csr(guest), ak, bk)?;
        out |= lane_rule(&l, guest, ak, bk, rk, fk & FLAGS);
    }
    Some(out)
}

/// For the VEX arithmetic forms the host thunks run (crate::exec::hostop): the flags they
/// report when the guest unmasks OE or UE, settled lane by lane as the legacy forms are, from
/// the source registers and the memory operand's bytes `mem` (as read for the thunk). None
/// when both are masked or the form is not one of them: the host's flags stand. The flags come
/// as `lanewise::flags` gives them: (completed steps, last step) for `settle_after`.
pub(crate) fn vex_unmasked(cpu: &Cpu, i: &Instruction, mem: &[u8]) -> Option<(u32, u32)> {
    use iced_x86::OpKind;
    use Code::*;
    let guest = cpu.sse.mxcsr;
    if guest & MASKS == MASKS {
        return None;
    }
    // The forms that combine lanes: settled whenever an exception is unmasked (DPPS reports
    // different flags masked and unmasked).
    if let Some(f) = super::lanewise::flags(cpu, i, mem) {
        return Some(f);
    }
    if guest & (OM | UM) == OM | UM {
        return None;
    }
    // (operation per 128 bits, 256-bit, the operand number of the first source or None for
    // the one-source conversions)
    let (op, ymm, first) = match i.code() {
        VEX_Vaddps_xmm_xmm_xmmm128 => (Bin::Addps, false, Some(1)),
        VEX_Vaddps_ymm_ymm_ymmm256 => (Bin::Addps, true, Some(1)),
        VEX_Vaddpd_xmm_xmm_xmmm128 => (Bin::Addpd, false, Some(1)),
        VEX_Vaddpd_ymm_ymm_ymmm256 => (Bin::Addpd, true, Some(1)),
        VEX_Vaddss_xmm_xmm_xmmm32 => (Bin::Addss, false, Some(1)),
        VEX_Vaddsd_xmm_xmm_xmmm64 => (Bin::Addsd, false, Some(1)),
        VEX_Vsubps_xmm_xmm_xmmm128 => (Bin::Subps, false, Some(1)),
        VEX_Vsubps_ymm_ymm_ymmm256 => (Bin::Subps, true, Some(1)),
        VEX_Vsubpd_xmm_xmm_xmmm128 => (Bin::Subpd, false, Some(1)),
        VEX_Vsubpd_ymm_ymm_ymmm256 => (Bin::Subpd, true, Some(1)),
        VEX_Vsubss_xmm_xmm_xmmm32 => (Bin::Subss, false, Some(1)),
        VEX_Vsubsd_xmm_xmm_xmmm64 => (Bin::Subsd, false, Some(1)),
        VEX_Vmulps_xmm_xmm_xmmm128 => (Bin::Mulps, false, Some(1)),
        VEX_Vmulps_ymm_ymm_ymmm256 => (Bin::Mulps, true, Some(1)),
        VEX_Vmulpd_xmm_xmm_xmmm128 => (Bin::Mulpd, false, Some(1)),
        VEX_Vmulpd_ymm_ymm_ymmm256 => (Bin::Mulpd, true, Some(1)),
        VEX_Vmulss_xmm_xmm_xmmm32 => (Bin::Mulss, false, Some(1)),
        VEX_Vmulsd_xmm_xmm_xmmm64 => (Bin::Mulsd, false, Some(1)),
        VEX_Vdivps_xmm_xmm_xmmm128 => (Bin::Divps, false, Some(1)),
        VEX_Vdivps_ymm_ymm_ymmm256 => (Bin::Divps, true, Some(1)),
        VEX_Vdivpd_xmm_xmm_xmmm128 => (Bin::Divpd, false, Some(1)),
        VEX_Vdivpd_ymm_ymm_ymmm256 => (Bin::Divpd, true, Some(1)),
        VEX_Vdivss_xmm_xmm_xmmm32 => (Bin::Divss, false, Some(1)),
        VEX_Vdivsd_xmm_xmm_xmmm64 => (Bin::Divsd, false, Some(1)),
        VEX_Vcvtpd2ps_xmm_xmmm128 => (Bin::Cvtpd2ps, false, None),
        VEX_Vcvtpd2ps_xmm_ymmm256 => (Bin::Cvtpd2ps, true, None),
        VEX_Vcvtsd2ss_xmm_xmm_xmmm64 => (Bin::Cvtsd2ss, false, Some(1)),
        _ => return None,
    };
    // Operand n as (low 128 bits, high 128 bits).
    let value = |n: u32| -> (u128, u128) {
        if i.op_kind(n) == OpKind::Memory {
            let mut b = [0u8; 32];
            let k = mem.len().min(32);
            b[..k].copy_from_slice(&mem[..k]);
            (
                u128::from_le_bytes(b[..16].try_into().unwrap_or([0; 16])),
                u128::from_le_bytes(b[16..].try_into().unwrap_or([0; 16])),
            )
        } else {
            let r = i.op_register(n).number() & 15;
            (cpu.sse.xmm[r], cpu.sse.ymm_hi[r])
        }
    };
    let (a, b) = match first {
        Some(n) => (value(n), value(n + 1)),
        None => ((0, 0), value(1)),
    };
    let mut flags = lane_flags(op, guest, a.0, b.0)?;
    if ymm {
        flags |= lane_flags(op, guest, a.1, b.1)?;
    }
    Some((0, flags))
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
