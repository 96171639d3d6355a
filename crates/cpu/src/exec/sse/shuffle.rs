//! Lane rearrangement: unpacks, packs with saturation, shuffles, whole-register byte shifts,
//! and word insert/extract.

use super::int::{binop, lane, put, sat_s, sat_u, sx};
use super::{imm8, mmx, reg_value, set_reg_value, src, Handler};
use crate::exception::Result;
use crate::Cpu;
use iced_x86::{Code, Instruction};

/// Interleaves the low (or high) halves of `a` and `b` in `s`-byte lanes.
#[inline(always)]
fn unpack(a: u128, b: u128, w: usize, s: usize, high: bool) -> u128 {
    let n = w / s;
    let base = if high { n / 2 } else { 0 };
    let mut r = 0u128;
    for k in 0..n / 2 {
        put(&mut r, s, 2 * k, lane(a, s, base + k));
        put(&mut r, s, 2 * k + 1, lane(b, s, base + k));
    }
    r
}

/// Narrows the `s`-byte signed lanes of `a` then `b` to `s/2` bytes with `sat`.
#[inline(always)]
fn pack(a: u128, b: u128, w: usize, s: usize, sat: fn(i64, usize) -> u64) -> u128 {
    let n = w / s;
    let mut r = 0u128;
    for k in 0..n {
        put(&mut r, s / 2, k, sat(sx(lane(a, s, k), s), s / 2));
        put(&mut r, s / 2, n + k, sat(sx(lane(b, s, k), s), s / 2));
    }
    r
}

macro_rules! unpacks {
    ($s:expr, $high:expr) => {
        |c: &mut Cpu, i: &Instruction| binop(c, i, |a, b, w| unpack(a, b, w, $s, $high))
    };
}

macro_rules! packs {
    ($s:expr, $sat:expr) => {
        |c: &mut Cpu, i: &Instruction| binop(c, i, |a, b, w| pack(a, b, w, $s, $sat))
    };
}

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    let h: Handler = match code {
        Punpcklbw_mm_mmm32 | Punpcklbw_xmm_xmmm128 => unpacks!(1, false),
        Punpcklwd_mm_mmm32 | Punpcklwd_xmm_xmmm128 => unpacks!(2, false),
        Punpckldq_mm_mmm32 | Punpckldq_xmm_xmmm128 | Unpcklps_xmm_xmmm128 => unpacks!(4, false),
        Punpcklqdq_xmm_xmmm128 | Unpcklpd_xmm_xmmm128 => unpacks!(8, false),
        Punpckhbw_mm_mmm64 | Punpckhbw_xmm_xmmm128 => unpacks!(1, true),
        Punpckhwd_mm_mmm64 | Punpckhwd_xmm_xmmm128 => unpacks!(2, true),
        Punpckhdq_mm_mmm64 | Punpckhdq_xmm_xmmm128 | Unpckhps_xmm_xmmm128 => unpacks!(4, true),
        Punpckhqdq_xmm_xmmm128 | Unpckhpd_xmm_xmmm128 => unpacks!(8, true),
        Packsswb_mm_mmm64 | Packsswb_xmm_xmmm128 => packs!(2, sat_s),
        Packssdw_mm_mmm64 | Packssdw_xmm_xmmm128 => packs!(4, sat_s),
        Packuswb_mm_mmm64 | Packuswb_xmm_xmmm128 => packs!(2, sat_u),
        Pshufd_xmm_xmmm128_imm8 => pshufd,
        Pshuflw_xmm_xmmm128_imm8 => pshuflw,
        Pshufhw_xmm_xmmm128_imm8 => pshufhw,
        Pshufw_mm_mmm64_imm8 => pshufw,
        Shufps_xmm_xmmm128_imm8 => shufps,
        Shufpd_xmm_xmmm128_imm8 => shufpd,
        Pslldq_xmm_imm8 => pslldq,
        Psrldq_xmm_imm8 => psrldq,
        Pextrw_r32_mm_imm8 | Pextrw_r64_mm_imm8 | Pextrw_r32_xmm_imm8 | Pextrw_r64_xmm_imm8 => {
            pextrw
        }
        Pinsrw_mm_r32m16_imm8
        | Pinsrw_mm_r64m16_imm8
        | Pinsrw_xmm_r32m16_imm8
        | Pinsrw_xmm_r64m16_imm8 => pinsrw,
        _ => return None,
    };
    Some(h)
}

/// `OP dst, src, imm8`: dst = f(dst, src, imm).
fn with_imm(cpu: &mut Cpu, i: &Instruction, f: fn(u128, u128, u8) -> u128) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let b = src(cpu, i, 1)?;
    let a = reg_value(cpu, d);
    set_reg_value(cpu, d, f(a, b, imm8(i)));
    mmx::commit(cpu, m);
    Ok(())
}

/// Selects lanes `first..first+4` of `b` by the four 2-bit fields of `imm`.
#[inline(always)]
fn shuf4(b: u128, s: usize, first: usize, imm: u8) -> u128 {
    let mut r = 0u128;
    for k in 0..4 {
        let sel = (imm >> (2 * k)) as usize & 3;
        put(&mut r, s, first + k, lane(b, s, first + sel));
    }
    r
}

fn pshufd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |_, b, imm| shuf4(b, 4, 0, imm))
}

fn pshufw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |_, b, imm| shuf4(b, 2, 0, imm))
}

fn pshuflw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |_, b, imm| {
        (b & !(u64::MAX as u128)) | shuf4(b, 2, 0, imm)
    })
}

fn pshufhw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |_, b, imm| {
        (b & u64::MAX as u128) | shuf4(b, 2, 4, imm)
    })
}

fn shufps(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |a, b, imm| {
        let sel = |k: usize| (imm >> (2 * k)) as usize & 3;
        let mut r = 0u128;
        put(&mut r, 4, 0, lane(a, 4, sel(0)));
        put(&mut r, 4, 1, lane(a, 4, sel(1)));
        put(&mut r, 4, 2, lane(b, 4, sel(2)));
        put(&mut r, 4, 3, lane(b, 4, sel(3)));
        r
    })
}

fn shufpd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    with_imm(cpu, i, |a, b, imm| {
        let lo = lane(a, 8, imm as usize & 1);
        let hi = lane(b, 8, (imm >> 1) as usize & 1);
        (lo as u128) | ((hi as u128) << 64)
    })
}

fn pslldq(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let d = i.op0_register();
    let n = imm8(i) as u32;
    let v = cpu.xmm(d);
    cpu.set_xmm(d, if n > 15 { 0 } else { v << (n * 8) });
    Ok(())
}

fn psrldq(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let d = i.op0_register();
    let n = imm8(i) as u32;
    let v = cpu.xmm(d);
    cpu.set_xmm(d, if n > 15 { 0 } else { v >> (n * 8) });
    Ok(())
}

fn pextrw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let v = reg_value(cpu, i.op1_register());
    let words = if m { 4 } else { 8 };
    let w = lane(v, 2, imm8(i) as usize & (words - 1));
    cpu.set_reg(i.op0_register(), w);
    mmx::commit(cpu, m);
    Ok(())
}

fn pinsrw(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let w = src(cpu, i, 1)? as u64 & 0xffff;
    let words = if m { 4 } else { 8 };
    let k = imm8(i) as usize & (words - 1);
    let old = reg_value(cpu, d);
    let v = (old & !(0xffffu128 << (16 * k))) | ((w as u128) << (16 * k));
    set_reg_value(cpu, d, v);
    mmx::commit(cpu, m);
    Ok(())
}
