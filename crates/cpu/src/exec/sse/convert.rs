//! Conversions between integers and floating point, including the MMX-operand forms.

use super::float::{host_csr, no_host, run_bin, settle, Tiny};
use super::hostfp::{self, Bin, FromInt, ToInt};
use super::{load, mmx, src, Handler};
use crate::exception::Result;
use crate::Cpu;
use iced_x86::{Code, Instruction};

const LO: u128 = u64::MAX as u128;

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    use Tiny::*;
    macro_rules! fp {
        ($op:ident, $tiny:expr) => {
            |c: &mut Cpu, i: &Instruction| super::float::arith(c, i, Bin::$op, $tiny)
        };
    }
    macro_rules! from {
        ($op:ident) => {
            |c: &mut Cpu, i: &Instruction| from_int(c, i, FromInt::$op)
        };
    }
    macro_rules! to {
        ($op:ident) => {
            |c: &mut Cpu, i: &Instruction| to_int(c, i, ToInt::$op)
        };
    }
    let h: Handler = match code {
        Cvtps2pd_xmm_xmmm64 => fp!(Cvtps2pd, No),
        Cvtpd2ps_xmm_xmmm128 => fp!(Cvtpd2ps, F32(2)),
        Cvtss2sd_xmm_xmmm32 => fp!(Cvtss2sd, No),
        Cvtsd2ss_xmm_xmmm64 => fp!(Cvtsd2ss, F32(1)),
        Cvtdq2ps_xmm_xmmm128 => fp!(Cvtdq2ps, No),
        Cvtps2dq_xmm_xmmm128 => fp!(Cvtps2dq, No),
        Cvttps2dq_xmm_xmmm128 => fp!(Cvttps2dq, No),
        Cvtdq2pd_xmm_xmmm64 => fp!(Cvtdq2pd, No),
        Cvtpd2dq_xmm_xmmm128 => fp!(Cvtpd2dq, No),
        Cvttpd2dq_xmm_xmmm128 => fp!(Cvttpd2dq, No),
        Cvtsi2ss_xmm_rm32 => from!(Cvtsi2ss32),
        Cvtsi2ss_xmm_rm64 => from!(Cvtsi2ss64),
        Cvtsi2sd_xmm_rm32 => from!(Cvtsi2sd32),
        Cvtsi2sd_xmm_rm64 => from!(Cvtsi2sd64),
        Cvtss2si_r32_xmmm32 => to!(Cvtss2si32),
        Cvtss2si_r64_xmmm32 => to!(Cvtss2si64),
        Cvttss2si_r32_xmmm32 => to!(Cvttss2si32),
        Cvttss2si_r64_xmmm32 => to!(Cvttss2si64),
        Cvtsd2si_r32_xmmm64 => to!(Cvtsd2si32),
        Cvtsd2si_r64_xmmm64 => to!(Cvtsd2si64),
        Cvttsd2si_r32_xmmm64 => to!(Cvttsd2si32),
        Cvttsd2si_r64_xmmm64 => to!(Cvttsd2si64),
        Cvtpi2ps_xmm_mmm64 => cvtpi2ps,
        Cvtpi2pd_xmm_mmm64 => cvtpi2pd,
        Cvtps2pi_mm_xmmm64 => |c: &mut Cpu, i: &Instruction| to_pi(c, i, Bin::Cvtps2dq),
        Cvttps2pi_mm_xmmm64 => |c: &mut Cpu, i: &Instruction| to_pi(c, i, Bin::Cvttps2dq),
        Cvtpd2pi_mm_xmmm128 => |c: &mut Cpu, i: &Instruction| to_pi(c, i, Bin::Cvtpd2dq),
        Cvttpd2pi_mm_xmmm128 => |c: &mut Cpu, i: &Instruction| to_pi(c, i, Bin::Cvttpd2dq),
        _ => return None,
    };
    Some(h)
}

/// CVTSI2SS/CVTSI2SD: the integer goes into the low lane, the rest of the register is kept.
fn from_int(cpu: &mut Cpu, i: &Instruction, op: FromInt) -> Result<()> {
    let d = i.op0_register();
    let v = load(cpu, i, 1, true)? as u64;
    let a = cpu.xmm(d);
    let (r, csr) = hostfp::from_int(op, host_csr(cpu.sse.mxcsr), a, v).ok_or_else(|| no_host(i))?;
    settle(cpu, csr)?;
    cpu.set_xmm(d, r);
    Ok(())
}

/// CVT(T)SS2SI/CVT(T)SD2SI: out-of-range and NaN inputs give the integer indefinite value
/// and IE, as the host does.
fn to_int(cpu: &mut Cpu, i: &Instruction, op: ToInt) -> Result<()> {
    let a = src(cpu, i, 1)?;
    let (r, csr) = hostfp::to_int(op, host_csr(cpu.sse.mxcsr), a).ok_or_else(|| no_host(i))?;
    settle(cpu, csr)?;
    cpu.set_reg(i.op0_register(), r);
    Ok(())
}

/// CVTPI2PS xmm, mm/m64: two int32 to the low two floats; the high half is kept. The host
/// converts four lanes whose upper two are zero, which convert exactly and raise nothing.
/// Only the register form is an MMX instruction (x87 transition).
fn cvtpi2ps(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let b = src(cpu, i, 1)? & LO;
    let r = run_bin(cpu, i, Bin::Cvtdq2ps, Tiny::No, 0, b)?;
    cpu.set_xmm(d, (cpu.xmm(d) & !LO) | (r & LO));
    mmx::commit(cpu, m);
    Ok(())
}

/// CVTPI2PD xmm, mm/m64: exact, writes the whole register.
fn cvtpi2pd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let b = src(cpu, i, 1)? & LO;
    let r = run_bin(cpu, i, Bin::Cvtdq2pd, Tiny::No, 0, b)?;
    cpu.set_xmm(d, r);
    mmx::commit(cpu, m);
    Ok(())
}

/// CVT(T)PS2PI and CVT(T)PD2PI: to two int32 in an MMX register (always an MMX transition).
/// For the PS forms only the low two lanes are converted; the upper lanes given to the host
/// are +0.0, which raise nothing.
fn to_pi(cpu: &mut Cpu, i: &Instruction, op: Bin) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let mut b = src(cpu, i, 1)?;
    if matches!(op, Bin::Cvtps2dq | Bin::Cvttps2dq) {
        b &= LO;
    }
    let r = run_bin(cpu, i, op, Tiny::No, 0, b)?;
    super::set_reg_value(cpu, i.op0_register(), r & LO);
    mmx::commit(cpu, m);
    Ok(())
}
