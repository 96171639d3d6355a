//! SSSE3's MMX-register forms (PSHUFB, PHADDW/D/SW, PHSUBW/D/SW, PMADDUBSW, PMULHRSW,
//! PSIGNB/W/D, PABSB/W/D and PALIGNR on 64-bit MM operands), in Rust: their XMM forms run on
//! the host (`hostop`), but these read and write the MMX registers, which live in the x87
//! unit and perform the x87-to-MMX transition (`mmx`). Semantics: Intel SDM Vol. 2B, each
//! instruction's "Operation" section for its 64-bit form. The memory operand (m64) needs no
//! alignment. Above the configured CPU level they are #UD, as every SSSE3 form.

use super::int::{lane, put, sat_s, sx};
use super::{mmx, reg_value, set_reg_value, src, Handler};
use crate::exception::Result;
use crate::Cpu;
use iced_x86::{Code, Instruction};

/// `OP mm, mm/m64`: mm = f(mm, source), after the level check and the MMX transition rules.
fn mmx_op(cpu: &mut Cpu, i: &Instruction, f: impl Fn(u64, u64) -> u64) -> Result<()> {
    if let Some(e) = crate::exec::hostop::above_level(cpu, i) {
        return Err(e);
    }
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let b = src(cpu, i, 1)? as u64;
    let a = reg_value(cpu, d) as u64;
    set_reg_value(cpu, d, f(a, b) as u128);
    mmx::commit(cpu, m);
    Ok(())
}

/// Horizontal pairs: the destination's pairs fill the low half, the source's the high half.
fn horizontal(a: u64, b: u64, s: usize, f: impl Fn(u64, u64) -> u64) -> u64 {
    let n = 8 / s; // lanes per operand
    let mut r = 0u128;
    for k in 0..n / 2 {
        put(
            &mut r,
            s,
            k,
            f(lane(a as u128, s, 2 * k), lane(a as u128, s, 2 * k + 1)),
        );
        put(
            &mut r,
            s,
            n / 2 + k,
            f(lane(b as u128, s, 2 * k), lane(b as u128, s, 2 * k + 1)),
        );
    }
    r as u64
}

/// Lane by lane.
fn lanes(a: u64, b: u64, s: usize, f: impl Fn(u64, u64) -> u64) -> u64 {
    let mut r = 0u128;
    for k in 0..8 / s {
        put(
            &mut r,
            s,
            k,
            f(lane(a as u128, s, k), lane(b as u128, s, k)),
        );
    }
    r as u64
}

/// PSIGN: the destination lane negated, zeroed or kept as the source lane is <0, 0, >0.
fn sign(x: u64, y: u64, s: usize) -> u64 {
    match sx(y, s) {
        v if v < 0 => (sx(x, s).wrapping_neg()) as u64,
        0 => 0,
        _ => x,
    }
}

fn pshufb(a: u64, b: u64) -> u64 {
    let mut r = 0u64;
    for k in 0..8 {
        let sel = (b >> (8 * k)) as u8;
        if sel & 0x80 == 0 {
            r |= ((a >> (8 * (sel & 7) as u64)) & 0xff) << (8 * k);
        }
    }
    r
}

fn pmaddubsw(a: u64, b: u64) -> u64 {
    let mut r = 0u128;
    for k in 0..4 {
        let (a0, a1) = (
            lane(a as u128, 1, 2 * k) as i64,
            lane(a as u128, 1, 2 * k + 1) as i64,
        );
        let (b0, b1) = (
            sx(lane(b as u128, 1, 2 * k), 1),
            sx(lane(b as u128, 1, 2 * k + 1), 1),
        );
        put(&mut r, 2, k, sat_s(a0 * b0 + a1 * b1, 2));
    }
    r as u64
}

/// PALIGNR mm1, mm2/m64, imm8: (mm1:mm2) shifted right by imm8 bytes, low 64 bits (zero from
/// a count of 16 on).
fn palignr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let n = super::imm8(i) as u32;
    mmx_op(cpu, i, |a, b| {
        let cat = ((a as u128) << 64) | b as u128;
        if n >= 16 {
            0
        } else {
            (cat >> (8 * n)) as u64
        }
    })
}

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    let h: Handler = match code {
        Pshufb_mm_mmm64 => |c, i| mmx_op(c, i, pshufb),
        Phaddw_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| horizontal(a, b, 2, |x, y| x + y)),
        Phaddd_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| horizontal(a, b, 4, |x, y| x + y)),
        Phaddsw_mm_mmm64 => |c, i| {
            mmx_op(c, i, |a, b| {
                horizontal(a, b, 2, |x, y| sat_s(sx(x, 2) + sx(y, 2), 2))
            })
        },
        Phsubw_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| horizontal(a, b, 2, u64::wrapping_sub)),
        Phsubd_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| horizontal(a, b, 4, u64::wrapping_sub)),
        Phsubsw_mm_mmm64 => |c, i| {
            mmx_op(c, i, |a, b| {
                horizontal(a, b, 2, |x, y| sat_s(sx(x, 2) - sx(y, 2), 2))
            })
        },
        Pmaddubsw_mm_mmm64 => |c, i| mmx_op(c, i, pmaddubsw),
        Pmulhrsw_mm_mmm64 => |c, i| {
            mmx_op(c, i, |a, b| {
                lanes(a, b, 2, |x, y| {
                    ((((sx(x, 2) * sx(y, 2)) >> 14) + 1) >> 1) as u64
                })
            })
        },
        Psignb_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| lanes(a, b, 1, |x, y| sign(x, y, 1))),
        Psignw_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| lanes(a, b, 2, |x, y| sign(x, y, 2))),
        Psignd_mm_mmm64 => |c, i| mmx_op(c, i, |a, b| lanes(a, b, 4, |x, y| sign(x, y, 4))),
        Pabsb_mm_mmm64 => {
            |c, i| mmx_op(c, i, |_, b| lanes(0, b, 1, |_, y| sx(y, 1).unsigned_abs()))
        }
        Pabsw_mm_mmm64 => {
            |c, i| mmx_op(c, i, |_, b| lanes(0, b, 2, |_, y| sx(y, 2).unsigned_abs()))
        }
        Pabsd_mm_mmm64 => {
            |c, i| mmx_op(c, i, |_, b| lanes(0, b, 4, |_, y| sx(y, 4).unsigned_abs()))
        }
        Palignr_mm_mmm64_imm8 => palignr,
        _ => return None,
    };
    Some(h)
}
