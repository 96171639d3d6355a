//! Whether an SSE result rounded to its precision with an unbounded exponent range is inexact.
//!
//! An SSE operation whose numeric overflow or underflow is unmasked delivers no result, but it
//! still reports PE exactly when the result, rounded to the destination's significand width
//! with an unbounded exponent (the "biased" result of Intel SDM Vol. 1 §4.9.1.6, §8.5.4,
//! §8.5.5), differs from the infinitely precise one; measured on the host: DBL_MAX / 0.5
//! (exact) reports OE alone, -4.7e7 * FLT_MAX rounded up reports OE and PE. The host's SSE
//! unit, run with every exception masked, rounds to a bounded exponent instead (infinity,
//! MAX, a denormal or zero), whose inexactness is a different question.
//!
//! The host's x87 unit answers it: its 15-bit exponent holds every sum, product and quotient
//! of single or double operands without overflow or underflow, and its precision control
//! rounds the significand once to 24 or 53 bits (SDM Vol. 1 §8.1.5.2) under the same rounding
//! control encoding as MXCSR.RC (§8.1.5.3, §10.2.3.3), setting its own PE (§8.5.6).

/// The operation of one lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `b` alone rounded to the precision (CVTSD2SS, CVTPD2PS).
    Round,
}

/// `a OP b` (values widened exactly to f64) rounded to 24 (`double` false) or 53 bits under
/// rounding control `rc` (0-3): whether that rounding is inexact. None without an x86 host.
#[cfg(target_arch = "x86_64")]
pub(crate) fn inexact(op: Op, double: bool, rc: u32, a: f64, b: f64) -> Option<bool> {
    use core::arch::asm;
    // All x87 exceptions masked (bits 0-5), bit 6 reserved as FNINIT leaves it, precision
    // control 00 (24 bits) or 10 (53 bits), rounding control.
    let cw: u16 = 0x7f | if double { 0b10 << 8 } else { 0 } | ((rc as u16 & 3) << 10);
    let one = 1.0f64;
    let (first, second) = match op {
        Op::Round => (&b, &one),
        _ => (&a, &b),
    };
    let mut save: u16 = 0;
    let sw: u16;
    macro_rules! x87 {
        ($ins:literal) => {
            // SAFETY: reads and writes only through pointers to locals (the control words and
            // the two operands); the x87 stack is left as found (one push, one pop) and the
            // host's control word is restored; every x87 exception is masked while it runs, so
            // nothing traps; the x87 registers are declared clobbered. Status flags are cleared
            // before and after, so nothing of this computation leaks into later x87 code.
            unsafe {
                asm!(
                    "fnstcw word ptr [{save}]",
                    "fldcw word ptr [{cw}]",
                    "fnclex",
                    "fld qword ptr [{x}]",
                    concat!($ins, " qword ptr [{y}]"),
                    "fnstsw ax",
                    "fstp st(0)",
                    "fnclex",
                    "fldcw word ptr [{save}]",
                    save = in(reg) core::ptr::addr_of_mut!(save),
                    cw = in(reg) core::ptr::addr_of!(cw),
                    x = in(reg) first as *const f64,
                    y = in(reg) second as *const f64,
                    out("ax") sw,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
        };
    }
    match op {
        Op::Add => x87!("fadd"),
        Op::Sub => x87!("fsub"),
        Op::Mul | Op::Round => x87!("fmul"),
        Op::Div => x87!("fdiv"),
    }
    // FSW.PE is bit 5.
    Some(sw & 0x20 != 0)
}

/// Without an x86 host there is no x87 unit to ask.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn inexact(_: Op, _: bool, _: u32, _: f64, _: f64) -> Option<bool> {
    None
}

/// `a * b + c` (finite values, widened exactly to f64) rounded to 24 (`double` false) or 53
/// bits with an unbounded exponent: whether that rounding is inexact, i.e. whether the exact
/// value has more significant bits than the precision (the rounding direction does not change
/// that). The x87 unit cannot answer it (a product of doubles has up to 106 bits), so it is
/// computed exactly in integers: the product's significand is at most 106 bits, the addend's
/// 53, and when their exponents are more than 200 apart (both non-zero) the exact sum spans
/// more bits than either precision (its lowest set bit is the lower operand's, its highest at
/// least the higher operand's exponent less one), so it is inexact without computing it.
pub(crate) fn fma_inexact(double: bool, a: f64, b: f64, c: f64) -> bool {
    let p = if double { 53 } else { 24 };
    let (Some(x), Some(y), Some(z)) = (parts(a), parts(b), parts(c)) else {
        return false; // infinities and NaNs are never inexact
    };
    let (px, pe) = match (x, y) {
        (Some((sx, mx, ex)), Some((sy, my, ey))) => {
            (Some((sx != sy, mx as u128 * my as u128)), ex + ey)
        }
        _ => (None, 0),
    };
    let Some((ps, pm)) = px else {
        return false; // a zero product: the result is the addend, exact
    };
    let Some((cs, cm, ce)) = z else {
        return span(&[pm as u64, (pm >> 64) as u64, 0, 0, 0, 0, 0, 0]) > p;
    };
    if pe - ce > 200 || ce - pe > 200 {
        return true;
    }
    // Both aligned to the lower exponent: at most 106 + 200 bits, in eight 64-bit limbs.
    let lo = pe.min(ce);
    let mut big_p = [0u64; 8];
    let mut big_c = [0u64; 8];
    shl_into(&mut big_p, pm, (pe - lo) as u32);
    shl_into(&mut big_c, cm as u128, (ce - lo) as u32);
    let sum = if ps == cs {
        add(&big_p, &big_c)
    } else if ge(&big_p, &big_c) {
        sub(&big_p, &big_c)
    } else {
        sub(&big_c, &big_p)
    };
    span(&sum) > p
}

/// A finite f64 as (sign, significand, exponent) with value significand * 2^exponent; Some(None)
/// for a zero, None for an infinity or NaN.
#[allow(clippy::type_complexity)]
fn parts(v: f64) -> Option<Option<(bool, u64, i32)>> {
    if !v.is_finite() {
        return None;
    }
    if v == 0.0 {
        return Some(None);
    }
    let b = v.to_bits();
    let e = ((b >> 52) & 0x7ff) as i32;
    let f = b & 0x000f_ffff_ffff_ffff;
    let (m, e) = if e == 0 {
        (f, -1074)
    } else {
        (f | 1 << 52, e - 1075)
    };
    Some(Some((b >> 63 != 0, m, e)))
}

fn shl_into(dst: &mut [u64; 8], v: u128, by: u32) {
    let (limb, bit) = ((by / 64) as usize, by % 64);
    let words = [v as u64, (v >> 64) as u64, 0];
    for (k, &w) in words.iter().enumerate() {
        if limb + k < 8 {
            dst[limb + k] |= w << bit;
        }
        if bit != 0 && limb + k + 1 < 8 {
            dst[limb + k + 1] |= w >> (64 - bit);
        }
    }
}

fn add(a: &[u64; 8], b: &[u64; 8]) -> [u64; 8] {
    let mut r = [0u64; 8];
    let mut carry = false;
    for k in 0..8 {
        let (s, c1) = a[k].overflowing_add(b[k]);
        let (s, c2) = s.overflowing_add(carry as u64);
        r[k] = s;
        carry = c1 || c2;
    }
    r
}

fn sub(a: &[u64; 8], b: &[u64; 8]) -> [u64; 8] {
    let mut r = [0u64; 8];
    let mut borrow = false;
    for k in 0..8 {
        let (s, b1) = a[k].overflowing_sub(b[k]);
        let (s, b2) = s.overflowing_sub(borrow as u64);
        r[k] = s;
        borrow = b1 || b2;
    }
    r
}

fn ge(a: &[u64; 8], b: &[u64; 8]) -> bool {
    for k in (0..8).rev() {
        if a[k] != b[k] {
            return a[k] > b[k];
        }
    }
    true
}

/// Number of bits from the highest set bit to the lowest, inclusive (0 for zero).
fn span(v: &[u64; 8]) -> u32 {
    let Some(hi) = (0..8).rev().find(|&k| v[k] != 0) else {
        return 0;
    };
    let lo = (0..8).find(|&k| v[k] != 0).unwrap_or(0);
    let top = 64 * hi as u32 + (64 - v[hi].leading_zeros());
    let bottom = 64 * lo as u32 + v[lo].trailing_zeros();
    top - bottom
}

#[cfg(test)]
mod tests {
    use super::fma_inexact;

    #[test]
    fn fma_exactness() {
        // 3 * 5 + 1 = 16: exact at any precision.
        assert!(!fma_inexact(false, 3.0, 5.0, 1.0));
        // (1 + 2^-23)^2 = 1 + 2^-22 + 2^-46: 47 bits, inexact in single, exact in double.
        let x = 1.0 + f32::EPSILON as f64;
        assert!(fma_inexact(false, x, x, 0.0));
        assert!(!fma_inexact(true, x, x, 0.0));
        // ... minus its low part: exact again in single.
        assert!(!fma_inexact(false, x, x, -(2f64.powi(-46))));
        // Far apart: 2^1000 * 1 + 2^-1000.
        assert!(fma_inexact(true, 2f64.powi(1000), 1.0, 2f64.powi(-1000)));
        // Cancellation to an exact small value: 2^60 * 1 - (2^60 - 256) = 256.
        assert!(!fma_inexact(
            true,
            2f64.powi(60),
            1.0,
            -(2f64.powi(60) - 256.0)
        ));
        // A zero product: the addend, exact.
        assert!(!fma_inexact(true, 0.0, 7.0, 0.1));
    }
}
