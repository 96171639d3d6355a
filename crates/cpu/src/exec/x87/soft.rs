//! Exact software arithmetic on x87 80-bit values.
//!
//! `rustc_apfloat` rounds correctly but does not report what the x87 must expose: whether
//! rounding went up (C1), precision control (a 24/53-bit significand with the 15-bit exponent
//! range), x87 NaN selection, and the unsupported encodings (unnormals, pseudo-NaNs). So the
//! core here computes every result with enough extra bits plus a sticky bit, and one rounding
//! routine (`round`) applies RC, PC, denormalization, overflow and underflow for every
//! destination format.

/// FSW exception bits and C1, as results report them.
pub const IE: u16 = 0x01;
pub const DE: u16 = 0x02;
pub const ZE: u16 = 0x04;
pub const OE: u16 = 0x08;
pub const UE: u16 = 0x10;
pub const PE: u16 = 0x20;
pub const SF: u16 = 0x40;
pub const C0: u16 = 0x100;
pub const C1: u16 = 0x200;
pub const C2: u16 = 0x400;
pub const C3: u16 = 0x4000;

/// The real indefinite: the QNaN every masked invalid operation produces.
pub const INDEFINITE: u128 = 0xffff_c000_0000_0000_0000;
const EXP_MAX: u16 = 0x7fff;
const BIAS: i32 = 16383;
/// The exponent adjustment applied to results when OE or UE is unmasked.
const BIAS_ADJUST: i32 = 24576;

/// Rounding control (FCW bits 10-11).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rc {
    Nearest,
    Down,
    Up,
    Zero,
}

/// The environment an operation runs under: FCW's rounding, precision and masks.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub rc: Rc,
    /// Significand bits of results of the PC-controlled operations (24, 53 or 64).
    pub prec: u32,
    /// FCW exception masks (bits 0-5).
    pub mask: u16,
}

impl Env {
    pub fn from_fcw(fcw: u16) -> Env {
        Env {
            rc: match (fcw >> 10) & 3 {
                0 => Rc::Nearest,
                1 => Rc::Down,
                2 => Rc::Up,
                _ => Rc::Zero,
            },
            prec: match (fcw >> 8) & 3 {
                0 => 24,
                2 => 53,
                _ => 64,
            },
            mask: fcw & 0x3f,
        }
    }

    /// The same environment with full 64-bit precision (operations PC does not affect).
    pub fn full(self) -> Env {
        Env { prec: 64, ..self }
    }

    fn masked(&self, flag: u16) -> bool {
        self.mask & flag != 0
    }
}

/// The outcome of an operation: the value to store (None when an unmasked exception
/// suppresses the store) and the FSW bits it raises (exceptions, and C1 when rounded up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Out {
    pub val: Option<u128>,
    pub flags: u16,
}

impl Out {
    pub fn val(v: u128, flags: u16) -> Out {
        Out {
            val: Some(v),
            flags,
        }
    }
}

/// What an 80-bit encoding is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Zero,
    /// Finite and non-zero; denormals and pseudo-denormals included (normalized here).
    Finite,
    Inf,
    QNan,
    SNan,
    /// Unnormals, pseudo-infinities and pseudo-NaNs: invalid operands on every x87 since
    /// the 387.
    Unsupported,
}

/// An unpacked operand: value = sig * 2^(exp - 63) with sig's top bit set when finite.
#[derive(Clone, Copy, Debug)]
pub struct Unp {
    pub sign: bool,
    pub exp: i32,
    pub sig: u64,
    pub kind: Kind,
    /// A denormal (or pseudo-denormal) operand: DE.
    pub denormal: bool,
}

pub fn sign_of(v: u128) -> bool {
    (v >> 79) & 1 != 0
}

pub fn unpack(v: u128) -> Unp {
    let sign = sign_of(v);
    let e = ((v >> 64) & 0x7fff) as u16;
    let m = v as u64;
    let mut u = Unp {
        sign,
        exp: 0,
        sig: m,
        kind: Kind::Finite,
        denormal: false,
    };
    if e == 0 {
        if m == 0 {
            u.kind = Kind::Zero;
        } else {
            let lz = m.leading_zeros();
            u.sig = m << lz;
            u.exp = 1 - BIAS - lz as i32;
            u.denormal = true;
        }
    } else if m >> 63 == 0 {
        u.kind = Kind::Unsupported;
    } else if e == EXP_MAX {
        u.kind = if m << 1 == 0 {
            Kind::Inf
        } else if m & (1 << 62) != 0 {
            Kind::QNan
        } else {
            Kind::SNan
        };
    } else {
        u.exp = e as i32 - BIAS;
    }
    u
}

pub fn is_nan_kind(k: Kind) -> bool {
    matches!(k, Kind::QNan | Kind::SNan)
}

pub fn pack(sign: bool, biased: u16, mant: u64) -> u128 {
    ((sign as u128) << 79) | ((biased as u128) << 64) | mant as u128
}

pub fn inf(sign: bool) -> u128 {
    pack(sign, EXP_MAX, 1 << 63)
}

pub fn zero(sign: bool) -> u128 {
    pack(sign, 0, 0)
}

fn quiet(v: u128) -> u128 {
    v | (1u128 << 62)
}

/// A destination format for rounding.
#[derive(Clone, Copy)]
pub struct Fmt {
    pub prec: u32,
    pub emin: i32,
    pub emax: i32,
}

pub const EXT: Fmt = Fmt {
    prec: 64,
    emin: 1 - BIAS,
    emax: BIAS,
};
pub const F64: Fmt = Fmt {
    prec: 53,
    emin: -1022,
    emax: 1023,
};
pub const F32: Fmt = Fmt {
    prec: 24,
    emin: -126,
    emax: 127,
};

/// A rounded finite result: value = mant * 2^(exp - (prec - 1)); `mant` has its top bit
/// (prec - 1) set unless the result is denormal (then exp == emin) or zero.
#[derive(Clone, Copy, Debug)]
pub enum Rounded {
    Finite { exp: i32, mant: u64 },
    Inf,
}

/// Shifts right by `n` and folds the lost bits into a sticky flag.
fn shr_sticky(v: u128, n: u32) -> (u128, bool) {
    if n == 0 {
        (v, false)
    } else if n >= 128 {
        (0, v != 0)
    } else {
        (v >> n, v << (128 - n) != 0)
    }
}

/// Rounds sig (top bit at 127, value = sig * 2^(exp - 127), more lost bits in `sticky`) to
/// `fmt` with precision `prec` (<= fmt.prec). Returns the result and the flags (PE, UE, OE,
/// C1). When OE/UE are unmasked the result gets the x87 exponent bias adjustment and `adj`
/// says so.
pub fn round(
    sign: bool,
    exp: i32,
    sig: u128,
    sticky: bool,
    fmt: Fmt,
    prec: u32,
    env: &Env,
) -> (Rounded, u16) {
    debug_assert!(sig >> 127 == 1);
    let mut flags = 0u16;
    let tiny = is_tiny(sign, exp, sig, sticky, fmt, prec, env.rc);
    let mut e = exp;
    let mut s = sig;
    let mut st = sticky;
    // The bias adjustment only applies when it brings the exponent into range; beyond that
    // the masked response is delivered (with the flag still unmasked).
    if tiny && !env.masked(UE) && exp + BIAS_ADJUST < fmt.emin {
        // Too small even for the bias adjustment (only FSCALE gets here): a zero, whatever
        // the rounding mode.
        return (
            Rounded::Finite {
                exp: fmt.emin,
                mant: 0,
            },
            UE | PE,
        );
    }
    let unmasked_ue = tiny && !env.masked(UE);
    if unmasked_ue {
        e += BIAS_ADJUST;
    } else if exp < fmt.emin {
        let (v, lost) = shr_sticky(sig, (fmt.emin - exp) as u32);
        s = v;
        st |= lost;
        e = fmt.emin;
    }
    let (mut m, inc, inexact) = round_bits(s, st, prec, sign, env.rc);
    // `m` has `prec` bits; a carry out renormalizes.
    let full = if prec == 64 { 0 } else { 1u64 << prec };
    if inc && m == full {
        // Carry out of the significand (for prec 64 the increment wrapped to 0).
        m = 1u64 << (prec - 1);
        e += 1;
    }
    if inc {
        flags |= C1;
    }
    if inexact {
        flags |= PE;
    }
    if tiny && (inexact || unmasked_ue) {
        flags |= UE;
    }
    if m == 0 {
        return (
            Rounded::Finite {
                exp: fmt.emin,
                mant: 0,
            },
            flags,
        );
    }
    if e > fmt.emax {
        flags |= OE;
        if !env.masked(OE) && e - BIAS_ADJUST > fmt.emax {
            // Too large even for the bias adjustment (only FSCALE gets here): infinity,
            // whatever the rounding mode.
            return (Rounded::Inf, flags | PE | C1);
        }
        if !env.masked(OE) {
            return (
                Rounded::Finite {
                    exp: e - BIAS_ADJUST,
                    mant: m,
                },
                flags,
            );
        }
        flags |= PE;
        let to_inf = match env.rc {
            Rc::Nearest => true,
            Rc::Up => !sign,
            Rc::Down => sign,
            Rc::Zero => false,
        };
        flags &= !C1;
        if to_inf {
            flags |= C1;
            return (Rounded::Inf, flags);
        }
        let max = if prec == 64 {
            u64::MAX
        } else {
            (1u64 << prec) - 1
        };
        return (
            Rounded::Finite {
                exp: fmt.emax,
                mant: max,
            },
            flags,
        );
    }
    (Rounded::Finite { exp: e, mant: m }, flags)
}

/// Tininess is judged after rounding with an unbounded exponent.
fn is_tiny(sign: bool, exp: i32, sig: u128, sticky: bool, fmt: Fmt, prec: u32, rc: Rc) -> bool {
    exp < fmt.emin
        && !(exp == fmt.emin - 1 && {
            let (m, inc, _) = round_bits(sig, sticky, prec, sign, rc);
            inc && (m == 1u64.checked_shl(prec).unwrap_or(0))
        })
}

/// Keeps the top `prec` bits of `sig` and decides the increment. Returns (kept bits after
/// the increment, whether incremented, whether inexact). For prec 64 a carry wraps to 0.
fn round_bits(sig: u128, sticky: bool, prec: u32, sign: bool, rc: Rc) -> (u64, bool, bool) {
    let keep = (sig >> (128 - prec)) as u64;
    let rest = sig << prec;
    let half = rest >> 127 != 0;
    let below = rest << 1 != 0 || sticky;
    let inexact = half || below;
    let inc = match rc {
        Rc::Nearest => half && (below || keep & 1 != 0),
        Rc::Down => inexact && sign,
        Rc::Up => inexact && !sign,
        Rc::Zero => false,
    };
    (keep.wrapping_add(inc as u64), inc, inexact)
}

/// Packs a rounded result as an 80-bit value.
pub fn pack_ext(sign: bool, r: Rounded, prec: u32) -> u128 {
    match r {
        Rounded::Inf => inf(sign),
        Rounded::Finite { exp, mant } => {
            let m = mant << (64 - prec);
            if m >> 63 == 0 {
                pack(sign, 0, m)
            } else {
                pack(sign, (exp + BIAS) as u16 & 0x7fff, m)
            }
        }
    }
}

/// Rounds to the 80-bit format with precision `prec`, applying the unmasked-exception rules:
/// nothing is stored for unmasked IE/DE/ZE (callers check those before).
fn round_ext(sign: bool, exp: i32, sig: u128, sticky: bool, env: &Env, flags: u16) -> Out {
    let (r, f) = round(sign, exp, sig, sticky, EXT, env.prec, env);
    Out::val(pack_ext(sign, r, env.prec), flags | f)
}

// ------------------------------------------------------------------ NaNs and operands

/// The x87 choice between two NaN operands (at least one is a NaN): SNaNs are quieted, and
/// with two NaNs the larger significand wins.
fn nan_result(a: u128, ua: &Unp, b: u128, ub: &Unp) -> u128 {
    let an = is_nan_kind(ua.kind);
    let bn = is_nan_kind(ub.kind);
    if an && bn {
        // Comparing the raw significands makes a QNaN beat an SNaN (bit 62), and otherwise
        // picks the larger significand.
        let (ma, mb) = (a as u64, b as u64);
        if ma > mb {
            quiet(a)
        } else if mb > ma {
            quiet(b)
        } else if !sign_of(a) {
            quiet(a)
        } else {
            quiet(b)
        }
    } else if an {
        quiet(a)
    } else {
        quiet(b)
    }
}

/// Handles the operand checks common to two-operand arithmetic. Returns Some(result) when
/// the operation is decided by them (invalid operands, NaNs), and the DE flag otherwise.
fn check2(a: u128, ua: &Unp, b: u128, ub: &Unp, env: &Env) -> Result<u16, Out> {
    if ua.kind == Kind::Unsupported || ub.kind == Kind::Unsupported {
        return Err(invalid(env));
    }
    if is_nan_kind(ua.kind) || is_nan_kind(ub.kind) {
        let snan = ua.kind == Kind::SNan || ub.kind == Kind::SNan;
        let flags = if snan { IE } else { 0 };
        if snan && !env.masked(IE) {
            return Err(Out { val: None, flags });
        }
        return Err(Out::val(nan_result(a, ua, b, ub), flags));
    }
    let de = if ua.denormal || ub.denormal { DE } else { 0 };
    if de != 0 && !env.masked(DE) {
        return Err(Out {
            val: None,
            flags: de,
        });
    }
    Ok(de)
}

/// A masked invalid operation yields the indefinite; an unmasked one stores nothing.
/// A signalling-NaN operand of a one-operand operation: IE, and the quieted NaN if masked.
fn snan_operand(v: u128, env: &Env) -> Out {
    Out {
        val: env.masked(IE).then(|| quiet(v)),
        flags: IE,
    }
}

pub fn invalid(env: &Env) -> Out {
    Out {
        val: if env.masked(IE) {
            Some(INDEFINITE)
        } else {
            None
        },
        flags: IE,
    }
}

// ------------------------------------------------------------------ arithmetic

pub fn add(a: u128, b: u128, env: &Env) -> Out {
    addsub(a, b, false, env)
}

pub fn sub(a: u128, b: u128, env: &Env) -> Out {
    addsub(a, b, true, env)
}

fn addsub(a: u128, b: u128, negate_b: bool, env: &Env) -> Out {
    let ua = unpack(a);
    let mut ub = unpack(b);
    let de = match check2(a, &ua, b, &ub, env) {
        Ok(d) => d,
        Err(o) => return o,
    };
    ub.sign ^= negate_b;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) => {
            if ua.sign != ub.sign {
                return invalid(env);
            }
            return Out::val(inf(ua.sign), de);
        }
        (Kind::Inf, _) => return Out::val(inf(ua.sign), de),
        (_, Kind::Inf) => return Out::val(inf(ub.sign), de),
        (Kind::Zero, Kind::Zero) => {
            let s = if ua.sign == ub.sign {
                ua.sign
            } else {
                env.rc == Rc::Down
            };
            return Out::val(zero(s), de);
        }
        (Kind::Zero, _) => {
            return round_ext(ub.sign, ub.exp, (ub.sig as u128) << 64, false, env, de);
        }
        (_, Kind::Zero) => {
            return round_ext(ua.sign, ua.exp, (ua.sig as u128) << 64, false, env, de);
        }
        _ => {}
    }
    // Both finite and non-zero. Order by magnitude exponent.
    let (x, y) = if ua.exp >= ub.exp { (ua, ub) } else { (ub, ua) };
    let d = (x.exp - y.exp) as u32;
    let xs = (x.sig as u128) << 63;
    let (ys, lost) = shr_sticky((y.sig as u128) << 63, d);
    let ys = ys | lost as u128; // jam the lost bits below every rounding position
    if x.sign == y.sign {
        let sum = xs + ys;
        let lz = sum.leading_zeros();
        round_ext(x.sign, x.exp + 1 - lz as i32, sum << lz, false, env, de)
    } else {
        let (big, small, sign) = if xs >= ys {
            (xs, ys, x.sign)
        } else {
            (ys, xs, y.sign)
        };
        let diff = big - small;
        if diff == 0 {
            return Out::val(zero(env.rc == Rc::Down), de);
        }
        let lz = diff.leading_zeros();
        round_ext(sign, x.exp + 1 - lz as i32, diff << lz, false, env, de)
    }
}

pub fn mul(a: u128, b: u128, env: &Env) -> Out {
    let ua = unpack(a);
    let ub = unpack(b);
    let de = match check2(a, &ua, b, &ub, env) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => return invalid(env),
        (Kind::Inf, _) | (_, Kind::Inf) => return Out::val(inf(sign), de),
        (Kind::Zero, _) | (_, Kind::Zero) => return Out::val(zero(sign), de),
        _ => {}
    }
    let p = ua.sig as u128 * ub.sig as u128;
    let lz = p.leading_zeros();
    round_ext(
        sign,
        ua.exp + ub.exp + 1 - lz as i32,
        p << lz,
        false,
        env,
        de,
    )
}

pub fn div(a: u128, b: u128, env: &Env) -> Out {
    let ua = unpack(a);
    let ub = unpack(b);
    if ub.kind == Kind::Zero && ua.kind == Kind::Finite {
        // Division by zero is detected before (and instead of) a denormal dividend.
        let sign = ua.sign ^ ub.sign;
        return Out {
            val: env.masked(ZE).then_some(inf(sign)),
            flags: ZE,
        };
    }
    let de = match check2(a, &ua, b, &ub, env) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => return invalid(env),
        (Kind::Inf, _) => return Out::val(inf(sign), de),
        (_, Kind::Inf) => return Out::val(zero(sign), de),
        (_, Kind::Zero) => {
            // A denormal dividend is not reported when dividing by zero.
            if !env.masked(ZE) {
                return Out {
                    val: None,
                    flags: ZE,
                };
            }
            return Out::val(inf(sign), ZE);
        }
        (Kind::Zero, _) => return Out::val(zero(sign), de),
        _ => {}
    }
    let (sa, sb) = (ua.sig as u128, ub.sig as u128);
    let n1 = sa << 63;
    let (q1, r1) = (n1 / sb, n1 % sb);
    let n2 = r1 << 64;
    let (q2, r2) = (n2 / sb, n2 % sb);
    let q = (q1 << 64) | q2;
    let lz = q.leading_zeros();
    round_ext(sign, ua.exp - ub.exp - lz as i32, q << lz, r2 != 0, env, de)
}

pub fn sqrt(a: u128, env: &Env) -> Out {
    let ua = unpack(a);
    match ua.kind {
        Kind::Unsupported => return invalid(env),
        Kind::SNan => return snan_operand(a, env),
        Kind::QNan => return Out::val(a, 0),
        Kind::Zero => return Out::val(a, 0),
        _ => {}
    }
    if ua.sign {
        return invalid(env);
    }
    let de = if ua.denormal { DE } else { 0 };
    if de != 0 && !env.masked(DE) {
        return Out {
            val: None,
            flags: DE,
        };
    }
    if ua.kind == Kind::Inf {
        return Out::val(a, de);
    }
    // Radicand sa * 2^s with s making (exp - 63 - s) even; ~67 root bits.
    let e0 = ua.exp - 63;
    let s: u32 = if (e0 - 70).rem_euclid(2) == 0 { 70 } else { 71 };
    let total = 64 + s;
    let total = total + (total & 1);
    let mut rem: u128 = 0;
    let mut root: u128 = 0;
    let bit = |p: u32| -> u128 {
        if p >= s && p - s < 64 {
            ((ua.sig >> (p - s)) & 1) as u128
        } else {
            0
        }
    };
    let mut i = total / 2;
    while i > 0 {
        i -= 1;
        let pair = (bit(2 * i + 1) << 1) | bit(2 * i);
        rem = (rem << 2) | pair;
        let trial = (root << 2) | 1;
        if rem >= trial {
            rem -= trial;
            root = (root << 1) | 1;
        } else {
            root <<= 1;
        }
    }
    let h = (e0 - s as i32) / 2;
    let lz = root.leading_zeros();
    round_ext(false, h - lz as i32 + 127, root << lz, rem != 0, env, de)
}

// ------------------------------------------------------------------ comparisons

/// Compare result as x87 condition codes (C3, C2, C0).
pub fn compare(a: u128, b: u128, quiet_nan: bool) -> (u16, u16) {
    let ua = unpack(a);
    let ub = unpack(b);
    const UNORD: u16 = C3 | C2 | C0;
    if ua.kind == Kind::Unsupported || ub.kind == Kind::Unsupported {
        return (UNORD, IE);
    }
    if is_nan_kind(ua.kind) || is_nan_kind(ub.kind) {
        let snan = ua.kind == Kind::SNan || ub.kind == Kind::SNan;
        return (UNORD, if snan || !quiet_nan { IE } else { 0 });
    }
    let de = if ua.denormal || ub.denormal { DE } else { 0 };
    let ord = cmp_values(&ua, &ub);
    let cc = match ord {
        std::cmp::Ordering::Less => C0,
        std::cmp::Ordering::Equal => C3,
        std::cmp::Ordering::Greater => 0,
    };
    (cc, de)
}

fn cmp_values(a: &Unp, b: &Unp) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    // Map to a magnitude key: zero < finite (exp, sig) < inf.
    let key = |u: &Unp| -> (i32, i32, u64) {
        match u.kind {
            Kind::Zero => (0, 0, 0),
            Kind::Inf => (2, 0, 0),
            _ => (1, u.exp, u.sig),
        }
    };
    let (ka, kb) = (key(a), key(b));
    if ka.0 == 0 && kb.0 == 0 {
        return Ordering::Equal;
    }
    let sa = a.sign && ka.0 != 0;
    let sb = b.sign && kb.0 != 0;
    match (sa, sb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => ka.cmp(&kb),
        (true, true) => kb.cmp(&ka),
    }
}

/// FXAM's class codes (C3, C2, C0), with C1 = sign; `empty` overrides.
pub fn examine(v: u128, empty: bool) -> u16 {
    let c1 = if sign_of(v) { C1 } else { 0 };
    if empty {
        return C3 | C0 | c1;
    }
    let e = ((v >> 64) & 0x7fff) as u16;
    let m = v as u64;
    let class = if e == 0 {
        if m == 0 {
            C3
        } else {
            C3 | C2
        }
    } else if m >> 63 == 0 {
        0 // unsupported
    } else if e == EXP_MAX {
        if m << 1 == 0 {
            C2 | C0
        } else {
            C0
        }
    } else {
        C2
    };
    class | c1
}

// ------------------------------------------------------------------ conversions

/// Loads an f32/f64 bit pattern (`frac_bits` fraction bits, `exp_bits` exponent bits) as an
/// 80-bit value: exact; an SNaN stays signaling (IE is reported; FLD quiets it, arithmetic
/// treats it as the SNaN operand it is), denormals set DE.
pub fn from_ieee(bits: u64, frac_bits: u32, exp_bits: u32) -> (u128, u16) {
    let sign = (bits >> (frac_bits + exp_bits)) & 1 != 0;
    let emax = (1u64 << exp_bits) - 1;
    let e = (bits >> frac_bits) & emax;
    let f = bits & ((1u64 << frac_bits) - 1);
    let bias = (emax >> 1) as i32;
    if e == emax {
        if f == 0 {
            return (inf(sign), 0);
        }
        let m = (1u64 << 63) | (f << (63 - frac_bits));
        let snan = f >> (frac_bits - 1) == 0;
        let v = pack(sign, EXP_MAX, m);
        return (v, if snan { IE } else { 0 });
    }
    if e == 0 {
        if f == 0 {
            return (zero(sign), 0);
        }
        let lz = f.leading_zeros();
        let m = f << lz;
        let exp = (1 - bias) - (lz as i32 - (63 - frac_bits as i32));
        return (pack(sign, (exp + BIAS) as u16, m), DE);
    }
    let m = (1u64 << 63) | (f << (63 - frac_bits));
    (pack(sign, (e as i32 - bias + BIAS) as u16, m), 0)
}

/// Stores an 80-bit value as f32 (`F32`) or f64 (`F64`) bits under `env` (RC only).
pub fn to_ieee(v: u128, fmt: Fmt, env: &Env) -> Out {
    let (frac_bits, exp_bits) = if fmt.prec == 24 {
        (23u32, 8u32)
    } else {
        (52, 11)
    };
    let emax_field = (1u64 << exp_bits) - 1;
    let sign_bit = 1u64 << (frac_bits + exp_bits);
    let u = unpack(v);
    let s = if u.sign { sign_bit } else { 0 };
    let indefinite = sign_bit | (emax_field << frac_bits) | (1 << (frac_bits - 1));
    match u.kind {
        Kind::Unsupported => {
            return Out {
                val: env.masked(IE).then_some(indefinite as u128),
                flags: IE,
            }
        }
        Kind::QNan | Kind::SNan => {
            let snan = u.kind == Kind::SNan;
            if snan && !env.masked(IE) {
                return Out {
                    val: None,
                    flags: IE,
                };
            }
            let payload = ((v as u64) << 1) >> (64 - frac_bits);
            let r = s | (emax_field << frac_bits) | payload | (1 << (frac_bits - 1));
            return Out::val(r as u128, if snan { IE } else { 0 });
        }
        Kind::Inf => return Out::val((s | (emax_field << frac_bits)) as u128, 0),
        Kind::Zero => return Out::val(s as u128, 0),
        Kind::Finite => {}
    }
    // The reference host (AMD) reports no DE for a denormal source here.
    let de = 0;
    // The store's rounding ignores PC; unmasked OE/UE suppress the store.
    let env2 = Env {
        mask: env.mask | OE | UE,
        ..*env
    };
    let (r, f) = round(
        u.sign,
        u.exp,
        (u.sig as u128) << 64,
        false,
        fmt,
        fmt.prec,
        &env2,
    );
    // An unmasked UE is raised by tininess alone, exact or not.
    let tiny = is_tiny(
        u.sign,
        u.exp,
        (u.sig as u128) << 64,
        false,
        fmt,
        fmt.prec,
        env.rc,
    );
    let f = if tiny && !env.masked(UE) { f | UE } else { f };
    let unmasked = f & (OE | UE) & !env.mask;
    if unmasked != 0 {
        // Without the store, only the exception itself is reported.
        return Out {
            val: None,
            flags: de | (f & (OE | UE)),
        };
    }
    let bits = match r {
        Rounded::Inf => s | (emax_field << frac_bits),
        Rounded::Finite { exp, mant } => {
            if mant >> (fmt.prec - 1) == 0 {
                s | mant
            } else {
                let be = (exp + (emax_field >> 1) as i32) as u64;
                s | (be << frac_bits) | (mant & ((1u64 << frac_bits) - 1))
            }
        }
    };
    Out::val(bits as u128, de | f)
}

/// A signed integer as an 80-bit value (exact).
pub fn from_int(i: i64) -> u128 {
    if i == 0 {
        return 0;
    }
    let sign = i < 0;
    let m = i.unsigned_abs();
    let lz = m.leading_zeros();
    pack(sign, (63 - lz as i32 + BIAS) as u16, m << lz)
}

/// Rounds to an integer value: (magnitude as u128 integer, or None if >= 2^64 etc., incremented,
/// inexact). `trunc` forces round toward zero.
fn round_to_int(u: &Unp, rc: Rc) -> (Option<u128>, bool, bool) {
    if u.exp >= 63 {
        if u.exp >= 64 + 62 {
            return (None, false, false);
        }
        return (Some((u.sig as u128) << (u.exp - 63)), false, false);
    }
    // Fraction bits below the binary point.
    let fb = (63 - u.exp) as u32;
    let (int, half, below) = if fb >= 65 {
        (0u128, false, true)
    } else if fb == 64 {
        (0u128, u.sig >> 63 != 0, u.sig << 1 != 0)
    } else {
        let int = (u.sig >> fb) as u128;
        let rest = u.sig << (64 - fb);
        (int, rest >> 63 != 0, rest << 1 != 0)
    };
    let inexact = half || below;
    let inc = match rc {
        Rc::Nearest => half && (below || int & 1 != 0),
        Rc::Down => inexact && u.sign,
        Rc::Up => inexact && !u.sign,
        Rc::Zero => false,
    };
    (Some(int + inc as u128), inc, inexact)
}

/// FIST/FISTP/FISTTP to a `bits`-wide integer. Returns the integer bits to store.
pub fn to_int(v: u128, bits: u32, env: &Env, trunc: bool) -> Out {
    let u = unpack(v);
    let indefinite = 1u128 << (bits - 1);
    let inv = Out {
        val: env.masked(IE).then_some(indefinite),
        flags: IE,
    };
    match u.kind {
        Kind::Zero => return Out::val(0, 0),
        Kind::Finite => {}
        _ => return inv,
    }
    // The reference host reports no DE for a denormal source of an integer store.
    let de = 0;
    let rc = if trunc { Rc::Zero } else { env.rc };
    let (mag, inc, inexact) = round_to_int(&u, rc);
    let Some(mag) = mag else { return inv };
    let limit = 1u128 << (bits - 1);
    if (!u.sign && mag >= limit) || (u.sign && mag > limit) {
        return inv;
    }
    let val = if u.sign {
        (mag as i128).wrapping_neg() as u128
    } else {
        mag
    };
    let mask = if bits == 64 {
        u64::MAX as u128
    } else {
        (1u128 << bits) - 1
    };
    let mut flags = de;
    if inexact {
        flags |= PE;
        if !env.masked(PE) {
            // PE is reported but the store happens anyway.
        }
    }
    if inc {
        flags |= C1;
    }
    Out::val(val & mask, flags)
}

/// FRNDINT.
pub fn rndint(v: u128, env: &Env) -> Out {
    let u = unpack(v);
    match u.kind {
        Kind::Unsupported => return invalid(env),
        Kind::SNan => return snan_operand(v, env),
        Kind::QNan | Kind::Inf | Kind::Zero => return Out::val(v, 0),
        Kind::Finite => {}
    }
    let de = if u.denormal { DE } else { 0 };
    if de != 0 && !env.masked(DE) {
        return Out {
            val: None,
            flags: DE,
        };
    }
    if u.exp >= 63 {
        return Out::val(v, de);
    }
    let (mag, inc, inexact) = round_to_int(&u, env.rc);
    let mag = mag.unwrap_or(0) as u64;
    let mut flags = de;
    if inexact {
        flags |= PE;
    }
    if inc {
        flags |= C1;
    }
    if mag == 0 {
        return Out::val(zero(u.sign), flags);
    }
    let lz = mag.leading_zeros();
    Out::val(
        pack(u.sign, (63 - lz as i32 + BIAS) as u16, mag << lz),
        flags,
    )
}

/// FSCALE: ST0 * 2^trunc(ST1).
pub fn scale(a: u128, b: u128, env: &Env) -> Out {
    let env = env.full();
    let ua = unpack(a);
    let ub = unpack(b);
    let de = match check2(a, &ua, b, &ub, &env) {
        Ok(d) => d,
        Err(o) => return o,
    };
    match (ua.kind, ub.kind) {
        (Kind::Zero, Kind::Inf) => {
            if ub.sign {
                return Out::val(a, de);
            }
            return invalid(&env);
        }
        (Kind::Inf, Kind::Inf) => {
            if ub.sign {
                return invalid(&env);
            }
            return Out::val(a, de);
        }
        (Kind::Inf, _) | (Kind::Zero, _) => return Out::val(a, de),
        (Kind::Finite, Kind::Inf) => {
            return Out::val(if ub.sign { zero(ua.sign) } else { inf(ua.sign) }, de);
        }
        _ => {}
    }
    // ST1 truncated to an integer, clamped far beyond any exponent range.
    let n: i32 = match ub.kind {
        Kind::Zero => 0,
        _ => {
            if ub.exp < 0 {
                0
            } else if ub.exp >= 20 {
                if ub.sign {
                    -(1 << 20)
                } else {
                    1 << 20
                }
            } else {
                let m = (ub.sig >> (63 - ub.exp)) as i32;
                if ub.sign {
                    -m
                } else {
                    m
                }
            }
        }
    };
    round_ext(ua.sign, ua.exp + n, (ua.sig as u128) << 64, false, &env, de)
}

/// FXTRACT: returns (significand, exponent) outputs: ST0 gets the first, the exponent is
/// pushed beneath... as Intel orders it: after FXTRACT, ST0 = significand, ST1 = exponent.
pub fn xtract(v: u128, env: &Env) -> (Option<(u128, u128)>, u16) {
    let u = unpack(v);
    match u.kind {
        Kind::Unsupported => {
            return (env.masked(IE).then_some((INDEFINITE, INDEFINITE)), IE);
        }
        Kind::SNan => {
            if !env.masked(IE) {
                return (None, IE);
            }
            return (Some((quiet(v), quiet(v))), IE);
        }
        Kind::QNan => return (Some((v, v)), 0),
        Kind::Inf => return (Some((v, inf(false))), 0),
        Kind::Zero => {
            if !env.masked(ZE) {
                return (None, ZE);
            }
            return (Some((v, inf(true))), ZE);
        }
        Kind::Finite => {}
    }
    let de = if u.denormal { DE } else { 0 };
    if de != 0 && !env.masked(DE) {
        return (None, DE);
    }
    let sig = pack(u.sign, BIAS as u16, u.sig);
    (Some((sig, from_int(u.exp as i64))), de)
}

/// FPREM (`ieee` false) and FPREM1 (`ieee` true). Returns the new ST0 and the flags,
/// including C2 (incomplete) and the quotient bits in C0 (Q2), C3 (Q1), C1 (Q0).
pub fn prem(a: u128, b: u128, ieee: bool, env: &Env) -> Out {
    let env = env.full();
    let ua = unpack(a);
    let ub = unpack(b);
    let ordinary = |k: Kind| !is_nan_kind(k) && k != Kind::Unsupported;
    if ordinary(ua.kind) && ordinary(ub.kind) && (ua.kind == Kind::Inf || ub.kind == Kind::Zero) {
        // Detected before a denormal operand.
        return invalid(&env);
    }
    let de = match check2(a, &ua, b, &ub, &env) {
        Ok(d) => d,
        Err(o) => return o,
    };
    match (ua.kind, ub.kind) {
        (Kind::Inf, _) | (_, Kind::Zero) => return invalid(&env),
        (Kind::Zero, _) => return Out::val(a, de),
        // The dividend comes back through the normalizer (a pseudo-denormal is re-encoded).
        (_, Kind::Inf) => return renorm(&ua, &env, de),
        _ => {}
    }
    let d = ua.exp - ub.exp;
    let qflags = |q: u64| -> u16 {
        (if q & 4 != 0 { C0 } else { 0 })
            | (if q & 2 != 0 { C3 } else { 0 })
            | (if q & 1 != 0 { C1 } else { 0 })
    };
    if d >= 64 {
        // Partial remainder: reduce the exponent difference by N in 32..=63.
        let n = ((d & 31) | 32) as u32;
        let r = ((ua.sig as u128) << n) % ub.sig as u128;
        let o = finish_rem(ua.sign, r, ua.exp - n as i32, &env, de);
        return Out {
            val: o.val,
            flags: o.flags | C2,
        };
    }
    let (a_int, b_int, unit_exp) = if d >= 0 {
        ((ua.sig as u128) << d, ub.sig as u128, ub.exp)
    } else if ieee && d == -1 {
        (ua.sig as u128, (ub.sig as u128) << 1, ua.exp)
    } else {
        return renorm(&ua, &env, de);
    };
    let mut q = (a_int / b_int) as u64;
    let mut r = a_int % b_int;
    let mut sign = ua.sign;
    if ieee && (2 * r > b_int || (2 * r == b_int && q & 1 != 0)) {
        r = b_int - r;
        q = q.wrapping_add(1);
        sign = !sign;
    }
    let o = finish_rem(sign, r, unit_exp, &env, de);
    let o_sign_zero = if r == 0 { ua.sign } else { sign };
    let val = if r == 0 {
        Some(zero(o_sign_zero))
    } else {
        o.val
    };
    Out {
        val,
        flags: o.flags | qflags(q),
    }
}

/// A finite operand re-encoded as the arithmetic would produce it.
fn renorm(u: &Unp, env: &Env, flags: u16) -> Out {
    round_ext(u.sign, u.exp, (u.sig as u128) << 64, false, env, flags)
}

/// A remainder r * 2^(unit_exp - 63) as an 80-bit value (exact unless it underflows).
fn finish_rem(sign: bool, r: u128, unit_exp: i32, env: &Env, flags: u16) -> Out {
    if r == 0 {
        return Out::val(zero(sign), flags);
    }
    let lz = r.leading_zeros();
    // value = r * 2^(unit_exp - 63) = (r << lz) * 2^(unit_exp - 63 - lz); top bit at 127.
    round_ext(
        sign,
        unit_exp - 63 - lz as i32 + 127,
        r << lz,
        false,
        env,
        flags,
    )
}

/// Rounds an internal constant (top 64 bits `hi`, next bits `lo` which are never zero in the
/// constants x87 loads) per RC; the constants are loaded without PE.
pub fn constant(sign_exp: u16, hi: u64, lo_nonzero_half: bool, rc: Rc) -> u128 {
    let up = match rc {
        Rc::Nearest => lo_nonzero_half,
        Rc::Up => true,
        Rc::Down | Rc::Zero => false,
    };
    pack(false, sign_exp, hi.wrapping_add(up as u64))
}
