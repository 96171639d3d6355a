//! Random inputs, mixed with edge values, seeded deterministically.

use super::forms::{Fix, Form, Lane};
use super::{Case, State, ARITH, DATA_LEN, DF, STACK_OFF};
use rand::rngs::StdRng;
use rand::{Rng as _, RngCore, SeedableRng};

pub type Rng = StdRng;

/// Where things are for this form: the data page and the landing pads.
pub struct Ctx {
    pub data: u64,
    pub pads: Vec<u64>,
}

/// A generator per form, so filtering or reordering forms does not change a form's cases.
pub fn form_rng(seed: u64, name: &str) -> Rng {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    StdRng::seed_from_u64(h)
}

pub fn mask(width: u8) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (width as u32 * 8)) - 1
    }
}

/// An edge value of `width` bytes in the low bits.
pub fn edge(rng: &mut Rng, width: u8) -> u64 {
    let bits = width as u32 * 8;
    let m = mask(width);
    let smax = m >> 1;
    let smin = smax + 1;
    let v = match rng.gen_range(0..16) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => m,
        4 => m - 1,
        5 => smax,
        6 => smin,
        7 => smax - 1,
        8 => smin + 1,
        9 => 0x5555_5555_5555_5555,
        10 => 0xaaaa_aaaa_aaaa_aaaa,
        11 => rng.gen_range(0..=bits as u64 + 2),
        12 => 1u64 << rng.gen_range(0..bits),
        13 => (1u64 << rng.gen_range(0..bits)).wrapping_neg(),
        14 => 0x80 | (0x7f << (rng.gen_range(0..2) * 8)),
        _ => (1u64 << rng.gen_range(0..bits)) - 1,
    };
    v & m
}

/// A value for an operand of `width` bytes: the low bits random or edge, the bits above random
/// (so merges into wider registers and zero extension are checked).
pub fn operand(rng: &mut Rng, width: u8) -> u64 {
    let m = mask(width);
    let low = match rng.gen_range(0..8) {
        0..=2 => edge(rng, width),
        3 => rng.gen_range(0..64),
        _ => rng.gen::<u64>(),
    };
    (rng.gen::<u64>() & !m) | (low & m)
}

/// A shift or rotate count: the interesting ones for every width, sometimes any byte.
pub fn shift_count(rng: &mut Rng) -> u8 {
    const C: [u8; 20] = [
        0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 0x7f, 0x80, 0xff, 0xe1,
    ];
    if rng.gen_bool(0.6) {
        C[rng.gen_range(0..C.len())]
    } else if rng.gen_bool(0.5) {
        rng.gen_range(0..70)
    } else {
        rng.gen()
    }
}

pub fn f32_bits(rng: &mut Rng) -> u32 {
    const S: [u32; 22] = [
        0x0000_0000,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0xffc0_0000,
        0x7f80_0001,
        0x7fa0_0000,
        0x0000_0001,
        0x007f_ffff,
        0x0080_0000,
        0x7f7f_ffff,
        0x3f80_0000,
        0xbf80_0000,
        0x3f00_0000,
        0x4f00_0000,
        0xcf00_0000,
        0x5f00_0000,
        0xdf00_0000,
        0x4eff_ffff,
        0x8000_0001,
        0x3fc0_0000,
    ];
    match rng.gen_range(0..10) {
        0..=1 => S[rng.gen_range(0..S.len())],
        2..=3 => {
            let n =
                rng.gen_range(-1000i32..=1000) as f32 / [1.0, 2.0, 4.0, 3.0][rng.gen_range(0..4)];
            n.to_bits()
        }
        4..=7 => {
            let e: u32 = rng.gen_range(127 - 40..=127 + 40);
            (rng.gen::<u32>() & 0x807f_ffff) | (e << 23)
        }
        _ => rng.gen(),
    }
}

pub fn f64_bits(rng: &mut Rng) -> u64 {
    const S: [u64; 22] = [
        0,
        0x8000_0000_0000_0000,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0xfff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0x7ff4_0000_0000_0000,
        1,
        0x000f_ffff_ffff_ffff,
        0x0010_0000_0000_0000,
        0x7fef_ffff_ffff_ffff,
        0x3ff0_0000_0000_0000,
        0xbff0_0000_0000_0000,
        0x3fe0_0000_0000_0000,
        0x41e0_0000_0000_0000,
        0xc1e0_0000_0000_0000,
        0x43e0_0000_0000_0000,
        0xc3e0_0000_0000_0000,
        0x41df_ffff_ffc0_0000,
        0x3810_0000_0000_0000,
        0x47ef_ffff_e000_0000,
    ];
    match rng.gen_range(0..10) {
        0..=1 => S[rng.gen_range(0..S.len())],
        2..=3 => {
            let n = rng.gen_range(-100000i64..=100000) as f64
                / [1.0, 2.0, 4.0, 3.0][rng.gen_range(0..4)];
            n.to_bits()
        }
        4..=7 => {
            let e: u64 = rng.gen_range(1023 - 70..=1023 + 70);
            (rng.gen::<u64>() & 0x800f_ffff_ffff_ffff) | (e << 52)
        }
        _ => rng.gen(),
    }
}

pub fn lanes(rng: &mut Rng, lane: Lane) -> u128 {
    match lane {
        Lane::Int => {
            let mut v = 0u128;
            for k in 0..8 {
                let w = if rng.gen_bool(0.3) {
                    edge(rng, 2)
                } else {
                    rng.gen::<u16>() as u64
                };
                v |= (w as u128) << (16 * k);
            }
            if rng.gen_bool(0.5) {
                v = rng.gen();
            }
            v
        }
        Lane::F32 => {
            let mut v = 0u128;
            for k in 0..4 {
                v |= (f32_bits(rng) as u128) << (32 * k);
            }
            v
        }
        Lane::F64 => (f64_bits(rng) as u128) | ((f64_bits(rng) as u128) << 64),
    }
}

/// A float whose exponent is near the ends of the range (or a denormal, zero, infinity, NaN)
/// half the time, so sums, products, quotients and conversions overflow and underflow.
pub fn f32_extreme(rng: &mut Rng) -> u32 {
    if rng.gen_bool(0.5) {
        return f32_bits(rng);
    }
    let e: u32 = match rng.gen_range(0..5) {
        0 => 0,
        1 => 0xff,
        2 => rng.gen_range(1..24),
        3 => rng.gen_range(0xfe - 24..=0xfe),
        _ => rng.gen_range(0x7f - 70..0x7f + 70),
    };
    (rng.gen::<u32>() & 0x807f_ffff) | (e << 23)
}

pub fn f64_extreme(rng: &mut Rng) -> u64 {
    if rng.gen_bool(0.5) {
        return f64_bits(rng);
    }
    let e: u64 = match rng.gen_range(0..6) {
        0 => 0,
        1 => 0x7ff,
        2 => rng.gen_range(1..54),
        3 => rng.gen_range(0x7fe - 54..=0x7fe),
        // Around the single-precision range (double-to-single conversions).
        4 => rng.gen_range(0x3ff - 160..0x3ff + 140),
        _ => rng.gen_range(0x3ff - 70..0x3ff + 70),
    };
    (rng.gen::<u64>() & 0x800f_ffff_ffff_ffff) | (e << 52)
}

/// Lane values for `form`: for forms with unmasked exceptions, floats near the ends of the
/// exponent range as well.
pub fn lanes_for(rng: &mut Rng, form: &Form) -> u128 {
    if !form.unmasked {
        return lanes(rng, form.lane);
    }
    match form.lane {
        Lane::F32 => (0..4).fold(0u128, |v, k| v | (f32_extreme(rng) as u128) << (32 * k)),
        Lane::F64 => (f64_extreme(rng) as u128) | ((f64_extreme(rng) as u128) << 64),
        Lane::Int => lanes(rng, Lane::Int),
    }
}

/// An 80-bit extended value: mostly exact extensions of doubles, some with full 64-bit
/// mantissas, some special.
pub fn f80(rng: &mut Rng) -> u128 {
    let sign = (rng.gen::<bool>() as u128) << 79;
    match rng.gen_range(0..12) {
        0 => sign,                                          // zero
        1 => sign | (0x7fffu128 << 64) | (1u128 << 63),     // infinity
        2 => sign | (0x7fffu128 << 64) | (3u128 << 62),     // quiet NaN
        3 => sign | (0x7fffu128 << 64) | (1u128 << 63) | 1, // signaling NaN
        4 => sign | (rng.gen::<u64>() >> 1) as u128,        // denormal
        5 => sign | (0x3fffu128 << 64) | (1u128 << 63),     // 1.0
        6..=8 => {
            let e: u128 = rng.gen_range(0x3fff - 70..=0x3fff + 70);
            sign | (e << 64) | (rng.gen::<u64>() | (1 << 63)) as u128
        }
        _ => {
            let d = f64::from_bits(f64_bits(rng));
            if !d.is_normal() {
                return sign | (0x3ffeu128 << 64) | (1u128 << 63);
            }
            let b = d.to_bits();
            let s = ((b >> 63) as u128) << 79;
            let e = ((b >> 52) & 0x7ff) as u128 + 0x3fff - 0x3ff;
            let m = (1u128 << 63) | (((b & 0xf_ffff_ffff_ffff) as u128) << 11);
            s | (e << 64) | m
        }
    }
}

/// Builds one case for `form`.
pub fn make_case(rng: &mut Rng, form: &Form, ctx: &Ctx) -> Case {
    let mut s = State::default();
    for r in s.gpr.iter_mut() {
        *r = if rng.gen_bool(0.2) {
            operand(rng, 8)
        } else {
            rng.gen()
        };
    }
    for &r in &form.gprs {
        s.gpr[r as usize] = operand(rng, form.width);
    }
    s.rflags = (rng.gen::<u64>() & (ARITH | DF)) | 0x202;
    for i in 0..16 {
        s.set_xmm(i, rng.gen());
    }
    for &x in &form.xmms {
        s.set_xmm(x as usize, lanes_for(rng, form));
    }
    if form.xmms.len() >= 2 && rng.gen_bool(0.1) {
        // Equal operands: compare results, x - x, min/max ties.
        let v = s.xmm(form.xmms[1] as usize);
        s.set_xmm(form.xmms[0] as usize, v);
    }
    if form.fp {
        // Random rounding, random sticky flags, all exceptions masked; FTZ and DAZ sometimes.
        let mut m = 0x1f80 | (rng.gen_range(0..4u32) << 13) | (rng.gen::<u32>() & 0x3f);
        if rng.gen_bool(0.1) {
            m |= 1 << 15;
        }
        if rng.gen_bool(0.1) {
            m |= 1 << 6;
        }
        if form.unmasked {
            // Unmask each exception alone, all of them, all but PE (what feenableexcept
            // programs do), or a random subset (#XM when an unmasked one occurs).
            let unmask = match rng.gen_range(0..4) {
                0 => 1 << rng.gen_range(0..6),
                1 => 0x3f,
                2 => 0x1f,
                _ => rng.gen::<u32>() & 0x3f,
            };
            m &= !(unmask << 7);
        }
        s.set_mxcsr(m);
    }
    let mut mem = vec![0u8; DATA_LEN];
    rng.fill_bytes(&mut mem);
    if let Some(m) = &form.mem {
        let lo = 0x100u64;
        let hi = 0x700u64;
        let mut off = rng.gen_range(lo..hi);
        off &= !(m.align.max(1) - 1);
        if m.align == 0 && rng.gen_bool(0.5) {
            off = (off & !0xf) + rng.gen_range(0..16);
        }
        s.gpr[m.base as usize] = ctx.data + off;
        let at = (off as i64 + m.disp as i64) as usize;
        if form.xmms.is_empty() || form.lane == Lane::Int && m.width <= 8 {
            let v = operand(rng, m.width.min(8));
            let w = m.width.min(8) as usize;
            mem[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
            // Equal to a register operand sometimes (CMP, CMPXCHG, SCAS...).
            if let Some(&r) = form.gprs.first() {
                if rng.gen_bool(0.15) {
                    mem[at..at + w].copy_from_slice(&s.gpr[r as usize].to_le_bytes()[..w]);
                }
            }
        } else {
            for half in 0..(m.width as usize).div_ceil(16) {
                let v = lanes_for(rng, form);
                let w = (m.width as usize - 16 * half).min(16);
                let at = at + 16 * half;
                mem[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
        }
    }
    if form.gprs.len() >= 2 && rng.gen_bool(0.12) {
        let (a, b) = (form.gprs[0] as usize, form.gprs[1] as usize);
        let m = super::gen::mask(form.width);
        s.gpr[b] = (s.gpr[b] & !m) | (s.gpr[a] & m);
    }
    if form.x87 > 0 {
        let top = rng.gen_range(0..8u16);
        let pc = [0u16, 2, 3][rng.gen_range(0..3)];
        let rc = rng.gen_range(0..4u16);
        s.set_fcw(0x007f | (pc << 8) | (rc << 10));
        s.set_fsw(
            (top << 11) | (rng.gen::<u16>() & 0x4700 & if rng.gen_bool(0.5) { 0 } else { 0xffff }),
        );
        if form.x87_unmasked {
            // Exceptions unmasked alone, all, all but PE, or at random; the pending flags
            // clear, or random with ES and B set exactly when one of them is unmasked.
            let unmask = match rng.gen_range(0..4) {
                0 => 1u16 << rng.gen_range(0..6),
                1 => 0x3f,
                2 => 0x1f,
                _ => rng.gen::<u16>() & 0x3f,
            };
            s.set_fcw(s.fcw() & !unmask);
            if rng.gen_bool(0.5) {
                let flags = rng.gen::<u16>() & 0x7f;
                let es = if flags & 0x3f & unmask != 0 {
                    0x8080
                } else {
                    0
                };
                s.set_fsw(s.fsw() | flags | es);
            }
        }
        let mut tags = 0u8;
        for i in 0..8usize {
            let v = f80(rng);
            s.set_st(i, v);
            if i < form.x87 as usize {
                tags |= 1 << ((top as usize + i) & 7);
            }
        }
        s.set_ftag(tags);
    }
    s.gpr[4] = ctx.data + STACK_OFF;
    let mut bytes = form.bytes.clone();
    if let Some((at, size)) = form.imm {
        let v = if size == 1 && rng.gen_bool(0.5) {
            shift_count(rng) as u64
        } else {
            operand(rng, size)
        };
        bytes[at..at + size as usize].copy_from_slice(&v.to_le_bytes()[..size as usize]);
    }
    let mut case = Case {
        input: s,
        mem,
        bytes,
    };
    for f in &form.fixes {
        apply(rng, f, &mut case, ctx);
    }
    if form.edge {
        place_at_edge(rng, form, &mut case, ctx);
    }
    if form.seg.is_some() {
        segment_bases(rng, form, &mut case);
    }
    case
}

/// Moves the memory operand to the ends of the data page: its last bytes, across into the
/// read-only page above it, from the read-only page across into the PROT_NONE page above that,
/// from the unmapped page below across into the data page, or inside the read-only page
/// (`Harness`: unmapped | data | read-only | PROT_NONE).
fn place_at_edge(rng: &mut Rng, form: &Form, case: &mut Case, ctx: &Ctx) {
    let Some(m) = form.mem else { return };
    let w = m.width.max(1) as i64;
    let page = DATA_LEN as i64;
    // How many bytes stay on the first page of a straddling access.
    let k = if w > 1 { rng.gen_range(1..w) } else { 1 };
    let at = match rng.gen_range(0..6) {
        0 => page - w,
        1 if w > 1 => page - k,
        2 => 2 * page - k,
        3 => -k,
        4 => page + rng.gen_range(0..page - w),
        _ => 0,
    };
    case.input.gpr[m.base as usize] = (ctx.data as i64 + at - m.disp as i64) as u64;
}

/// Random canonical FS and GS bases; the prefixed segment's base is taken out of the memory
/// operand's base register, so the operand lands where the generator put it.
fn segment_bases(rng: &mut Rng, form: &Form, case: &mut Case) {
    let s = &mut case.input;
    let mut base = || match rng.gen_range(0..4) {
        0 => 0,
        1 => rng.gen_range(1..0x1_0000),
        _ => rng.gen::<u64>() & 0x0000_7fff_ffff_fff0,
    };
    s.fs_base = base();
    s.gs_base = base();
    let (Some(m), Some(seg)) = (form.mem, form.seg) else {
        return;
    };
    let b = if seg == 0x64 { s.fs_base } else { s.gs_base };
    s.gpr[m.base as usize] = s.gpr[m.base as usize].wrapping_sub(b);
}

fn apply(rng: &mut Rng, f: &Fix, case: &mut Case, ctx: &Ctx) {
    let s = &mut case.input;
    match *f {
        Fix::Range(r, lo, hi) => {
            let v = match rng.gen_range(0..8) {
                0 => lo,
                1 => hi,
                _ => rng.gen_range(lo..=hi),
            };
            s.gpr[r as usize] = v as u64;
        }
        Fix::Count(r) => {
            s.gpr[r as usize] = (rng.gen::<u64>() & !0xff) | shift_count(rng) as u64;
        }
        Fix::Ptr(r, lo, hi) => s.gpr[r as usize] = ctx.data + rng.gen_range(lo..hi),
        Fix::Pad(r, k) => s.gpr[r as usize] = ctx.pads[k],
        Fix::Set(r, v) => s.gpr[r as usize] = v,
        Fix::Flags(m) => s.rflags = (s.rflags & !ARITH & !DF) | (m & (ARITH | DF)) | 0x202,
        Fix::Custom(f) => f(rng, case, ctx),
    }
}

/// Writes `v` (little-endian, `w` bytes) at data-page address `addr`.
pub fn poke(case: &mut Case, ctx: &Ctx, addr: u64, v: u64, w: usize) {
    let off = (addr - ctx.data) as usize;
    case.mem[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
}
