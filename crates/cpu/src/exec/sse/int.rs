//! Packed integer arithmetic, comparison, logic and shifts, for both MMX (64-bit) and XMM
//! (128-bit) operands. The same lane functions serve both widths: MMX values travel
//! zero-extended in a u128 and `w` (operand width in bytes) says how many lanes count.

use super::{mmx, reg_value, set_reg_value, src, Handler};
use crate::exception::Result;
use crate::Cpu;
use iced_x86::{Code, Instruction};

/// Lane operation on a whole operand: (destination, source, width in bytes) -> result.
pub(crate) type Lanes = fn(u128, u128, usize) -> u128;

#[inline(always)]
pub(crate) fn mask(s: usize) -> u64 {
    if s >= 8 {
        u64::MAX
    } else {
        (1u64 << (s * 8)) - 1
    }
}

/// Lane `k` of `s` bytes, zero-extended.
#[inline(always)]
pub(crate) fn lane(v: u128, s: usize, k: usize) -> u64 {
    (v >> (k * s * 8)) as u64 & mask(s)
}

/// Lane value sign-extended from `s` bytes.
#[inline(always)]
pub(crate) fn sx(v: u64, s: usize) -> i64 {
    let sh = 64 - s * 8;
    ((v << sh) as i64) >> sh
}

#[inline(always)]
pub(crate) fn put(r: &mut u128, s: usize, k: usize, v: u64) {
    *r |= ((v & mask(s)) as u128) << (k * s * 8);
}

/// Applies `f` lane by lane to `a` and `b`.
#[inline(always)]
pub(crate) fn map2(a: u128, b: u128, w: usize, s: usize, f: impl Fn(u64, u64) -> u64) -> u128 {
    let mut r = 0u128;
    for k in 0..w / s {
        put(&mut r, s, k, f(lane(a, s, k), lane(b, s, k)));
    }
    r
}

/// Signed saturation of `v` to `s` bytes.
#[inline(always)]
pub(crate) fn sat_s(v: i64, s: usize) -> u64 {
    let bits = s as u32 * 8;
    let max = (1i64 << (bits - 1)) - 1;
    (v.clamp(-max - 1, max) as u64) & mask(s)
}

/// Unsigned saturation of `v` to `s` bytes.
#[inline(always)]
pub(crate) fn sat_u(v: i64, s: usize) -> u64 {
    v.clamp(0, mask(s) as i64) as u64
}

/// `OP dst, src`: dst = f(dst, src). The source may be a register, memory (aligned if 16
/// bytes) or an immediate (the shift-by-immediate forms).
pub(crate) fn binop(cpu: &mut Cpu, i: &Instruction, f: Lanes) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let d = i.op0_register();
    let b = src(cpu, i, 1)?;
    let a = reg_value(cpu, d);
    let w = if m { 8 } else { 16 };
    set_reg_value(cpu, d, f(a, b, w));
    mmx::commit(cpu, m);
    Ok(())
}

/// Shift every `s`-byte lane of `a` by the count in the low quadword of `b`.
#[inline(always)]
fn shift(a: u128, b: u128, w: usize, s: usize, kind: u8) -> u128 {
    let count = b as u64;
    let bits = s as u64 * 8;
    let mut r = 0u128;
    for k in 0..w / s {
        let x = lane(a, s, k);
        let v = match kind {
            0 if count >= bits => 0,
            0 => x << count,
            1 if count >= bits => 0,
            1 => x >> count,
            _ => (sx(x, s) >> count.min(bits - 1)) as u64,
        };
        put(&mut r, s, k, v);
    }
    r
}

const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;

macro_rules! lanes {
    ($s:expr, |$x:ident, $y:ident| $e:expr) => {
        |c: &mut Cpu, i: &Instruction| {
            binop(c, i, |a, b, w| {
                const S: usize = $s;
                map2(a, b, w, S, |$x: u64, $y: u64| $e)
            })
        }
    };
}

macro_rules! shifts {
    ($s:expr, $kind:expr) => {
        |c: &mut Cpu, i: &Instruction| binop(c, i, |a, b, w| shift(a, b, w, $s, $kind))
    };
}

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    let h: Handler = match code {
        Paddb_mm_mmm64 | Paddb_xmm_xmmm128 => lanes!(1, |x, y| x.wrapping_add(y)),
        Paddw_mm_mmm64 | Paddw_xmm_xmmm128 => lanes!(2, |x, y| x.wrapping_add(y)),
        Paddd_mm_mmm64 | Paddd_xmm_xmmm128 => lanes!(4, |x, y| x.wrapping_add(y)),
        Paddq_mm_mmm64 | Paddq_xmm_xmmm128 => lanes!(8, |x, y| x.wrapping_add(y)),
        Psubb_mm_mmm64 | Psubb_xmm_xmmm128 => lanes!(1, |x, y| x.wrapping_sub(y)),
        Psubw_mm_mmm64 | Psubw_xmm_xmmm128 => lanes!(2, |x, y| x.wrapping_sub(y)),
        Psubd_mm_mmm64 | Psubd_xmm_xmmm128 => lanes!(4, |x, y| x.wrapping_sub(y)),
        Psubq_mm_mmm64 | Psubq_xmm_xmmm128 => lanes!(8, |x, y| x.wrapping_sub(y)),
        Paddsb_mm_mmm64 | Paddsb_xmm_xmmm128 => lanes!(1, |x, y| sat_s(sx(x, S) + sx(y, S), S)),
        Paddsw_mm_mmm64 | Paddsw_xmm_xmmm128 => lanes!(2, |x, y| sat_s(sx(x, S) + sx(y, S), S)),
        Psubsb_mm_mmm64 | Psubsb_xmm_xmmm128 => lanes!(1, |x, y| sat_s(sx(x, S) - sx(y, S), S)),
        Psubsw_mm_mmm64 | Psubsw_xmm_xmmm128 => lanes!(2, |x, y| sat_s(sx(x, S) - sx(y, S), S)),
        Paddusb_mm_mmm64 | Paddusb_xmm_xmmm128 => lanes!(1, |x, y| sat_u((x + y) as i64, S)),
        Paddusw_mm_mmm64 | Paddusw_xmm_xmmm128 => lanes!(2, |x, y| sat_u((x + y) as i64, S)),
        Psubusb_mm_mmm64 | Psubusb_xmm_xmmm128 => lanes!(1, |x, y| x.saturating_sub(y)),
        Psubusw_mm_mmm64 | Psubusw_xmm_xmmm128 => lanes!(2, |x, y| x.saturating_sub(y)),
        Pmullw_mm_mmm64 | Pmullw_xmm_xmmm128 => lanes!(2, |x, y| x.wrapping_mul(y)),
        Pmulhw_mm_mmm64 | Pmulhw_xmm_xmmm128 => {
            lanes!(2, |x, y| ((sx(x, S) * sx(y, S)) >> 16) as u64)
        }
        Pmulhuw_mm_mmm64 | Pmulhuw_xmm_xmmm128 => lanes!(2, |x, y| (x * y) >> 16),
        Pmuludq_mm_mmm64 | Pmuludq_xmm_xmmm128 => {
            lanes!(8, |x, y| (x & 0xffff_ffff) * (y & 0xffff_ffff))
        }
        Pmaddwd_mm_mmm64 | Pmaddwd_xmm_xmmm128 => lanes!(4, |x, y| {
            let lo = sx(x & 0xffff, 2) * sx(y & 0xffff, 2);
            let hi = sx(x >> 16, 2) * sx(y >> 16, 2);
            lo.wrapping_add(hi) as u64
        }),
        Pavgb_mm_mmm64 | Pavgb_xmm_xmmm128 => lanes!(1, |x, y| (x + y + 1) >> 1),
        Pavgw_mm_mmm64 | Pavgw_xmm_xmmm128 => lanes!(2, |x, y| (x + y + 1) >> 1),
        Pminub_mm_mmm64 | Pminub_xmm_xmmm128 => lanes!(1, |x, y| x.min(y)),
        Pmaxub_mm_mmm64 | Pmaxub_xmm_xmmm128 => lanes!(1, |x, y| x.max(y)),
        Pminsw_mm_mmm64 | Pminsw_xmm_xmmm128 => lanes!(2, |x, y| sx(x, S).min(sx(y, S)) as u64),
        Pmaxsw_mm_mmm64 | Pmaxsw_xmm_xmmm128 => lanes!(2, |x, y| sx(x, S).max(sx(y, S)) as u64),
        Psadbw_mm_mmm64 | Psadbw_xmm_xmmm128 => lanes!(8, |x, y| {
            (0..8)
                .map(|k| lane(x as u128, 1, k).abs_diff(lane(y as u128, 1, k)))
                .sum()
        }),
        // The float logic operations are the same bitwise operations on 128 bits.
        Pand_mm_mmm64 | Pand_xmm_xmmm128 | Andps_xmm_xmmm128 | Andpd_xmm_xmmm128 => {
            lanes!(8, |x, y| x & y)
        }
        Pandn_mm_mmm64 | Pandn_xmm_xmmm128 | Andnps_xmm_xmmm128 | Andnpd_xmm_xmmm128 => {
            lanes!(8, |x, y| !x & y)
        }
        Por_mm_mmm64 | Por_xmm_xmmm128 | Orps_xmm_xmmm128 | Orpd_xmm_xmmm128 => {
            lanes!(8, |x, y| x | y)
        }
        Pxor_mm_mmm64 | Pxor_xmm_xmmm128 | Xorps_xmm_xmmm128 | Xorpd_xmm_xmmm128 => {
            lanes!(8, |x, y| x ^ y)
        }
        Pcmpeqb_mm_mmm64 | Pcmpeqb_xmm_xmmm128 => lanes!(1, |x, y| if x == y { !0 } else { 0 }),
        Pcmpeqw_mm_mmm64 | Pcmpeqw_xmm_xmmm128 => lanes!(2, |x, y| if x == y { !0 } else { 0 }),
        Pcmpeqd_mm_mmm64 | Pcmpeqd_xmm_xmmm128 => lanes!(4, |x, y| if x == y { !0 } else { 0 }),
        Pcmpgtb_mm_mmm64 | Pcmpgtb_xmm_xmmm128 => {
            lanes!(1, |x, y| if sx(x, S) > sx(y, S) { !0 } else { 0 })
        }
        Pcmpgtw_mm_mmm64 | Pcmpgtw_xmm_xmmm128 => {
            lanes!(2, |x, y| if sx(x, S) > sx(y, S) { !0 } else { 0 })
        }
        Pcmpgtd_mm_mmm64 | Pcmpgtd_xmm_xmmm128 => {
            lanes!(4, |x, y| if sx(x, S) > sx(y, S) { !0 } else { 0 })
        }
        Psllw_mm_mmm64 | Psllw_xmm_xmmm128 | Psllw_mm_imm8 | Psllw_xmm_imm8 => shifts!(2, SHL),
        Pslld_mm_mmm64 | Pslld_xmm_xmmm128 | Pslld_mm_imm8 | Pslld_xmm_imm8 => shifts!(4, SHL),
        Psllq_mm_mmm64 | Psllq_xmm_xmmm128 | Psllq_mm_imm8 | Psllq_xmm_imm8 => shifts!(8, SHL),
        Psrlw_mm_mmm64 | Psrlw_xmm_xmmm128 | Psrlw_mm_imm8 | Psrlw_xmm_imm8 => shifts!(2, SHR),
        Psrld_mm_mmm64 | Psrld_xmm_xmmm128 | Psrld_mm_imm8 | Psrld_xmm_imm8 => shifts!(4, SHR),
        Psrlq_mm_mmm64 | Psrlq_xmm_xmmm128 | Psrlq_mm_imm8 | Psrlq_xmm_imm8 => shifts!(8, SHR),
        Psraw_mm_mmm64 | Psraw_xmm_xmmm128 | Psraw_mm_imm8 | Psraw_xmm_imm8 => shifts!(2, SAR),
        Psrad_mm_mmm64 | Psrad_xmm_xmmm128 | Psrad_mm_imm8 | Psrad_xmm_imm8 => shifts!(4, SAR),
        _ => return None,
    };
    Some(h)
}
