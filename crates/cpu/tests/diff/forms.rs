//! The forms table: each form is one encoded instruction plus what the generator randomizes
//! (operand registers and their width, a memory operand, XMM operands, x87 stack entries, an
//! immediate), fixed-up registers (pointers, counts, branch targets), and the flags the manuals
//! leave undefined. Add a form by pushing one more entry; names come from the disassembly.

use super::enc::*;
use super::gen::{self, Ctx, Rng};
use super::{Case, AF, ARITH, CF, OF, PF, SF, ZF};
use rand::Rng as _;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lane {
    Int,
    F32,
    F64,
}

/// The instruction's memory operand: `[base + disp]`, `width` bytes, the base register pointed
/// into the data page at an offset aligned to `align` (0 = any alignment).
#[derive(Clone, Copy, Debug)]
pub struct MemOp {
    pub base: u8,
    pub disp: i32,
    pub width: u8,
    pub align: u64,
}

/// A register fix-up applied after random generation.
#[derive(Clone, Copy)]
pub enum Fix {
    /// A value in lo..=hi (endpoints favoured).
    Range(u8, i64, i64),
    /// A shift count in the low byte (edge counts favoured), random above.
    Count(u8),
    /// data page + lo..hi.
    Ptr(u8, u64, u64),
    /// The address of landing pad k.
    Pad(u8, usize),
    /// A constant.
    Set(u8, u64),
    /// Exact input flags.
    Flags(u64),
    Custom(fn(&mut Rng, &mut Case, &Ctx)),
}

#[derive(Clone)]
pub struct Form {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Operand width in bytes for the generated GPR operand values.
    pub width: u8,
    /// GPR operands: given edge values, sometimes equal to each other or to the memory operand.
    pub gprs: Vec<u8>,
    pub mem: Option<MemOp>,
    pub xmms: Vec<u8>,
    pub lane: Lane,
    /// Randomize MXCSR rounding, sticky flags, FTZ and DAZ (exceptions stay masked).
    pub fp: bool,
    /// Also unmask random MXCSR exceptions, so the instruction may raise #XM (SIGFPE).
    pub unmasked: bool,
    /// Number of valid x87 stack entries (ST0..); 0 = x87 not used.
    pub x87: u8,
    /// Also unmask random x87 exceptions in FCW and start from random pending exception flags
    /// in FSW (ES and B consistent with them), so the instruction may set a pending exception
    /// or raise the one pending (#MF, SIGFPE, at the next waiting x87 instruction).
    pub x87_unmasked: bool,
    /// A randomized immediate: (offset in bytes, size).
    pub imm: Option<(usize, u8)>,
    /// Extra landing pads (branch targets), relative to the next instruction.
    pub exits: Vec<i64>,
    pub fixes: Vec<Fix>,
    /// Architecturally undefined flags (still compared unless CETBOX_DIFF_IGNORE_UNDEF=1).
    pub undef: u64,
    /// Flags never compared: the host itself is inconsistent for them.
    pub skip: u64,
    /// Relative number of cases (1.0 = the default count).
    pub weight: f32,
    /// Place the memory operand at and across the data page's ends (see `gen::place_at_edge`).
    pub edge: bool,
    /// The segment override prefix (0x64 FS, 0x65 GS): the generator gives FS and GS random
    /// bases and moves the base register so the operand still lands in the data page.
    pub seg: Option<u8>,
    pub note: &'static str,
}

impl Form {
    pub fn new(bytes: Vec<u8>) -> Form {
        let name = super::disasm(&bytes, 0);
        assert!(
            name != "(invalid)",
            "invalid encoding {}",
            super::hex(&bytes)
        );
        let mut d = iced_x86::Decoder::with_ip(64, &bytes, 0, iced_x86::DecoderOptions::NONE);
        let i = d.decode();
        assert_eq!(
            i.len(),
            bytes.len(),
            "trailing bytes in {}",
            super::hex(&bytes)
        );
        Form {
            name,
            bytes,
            width: 8,
            gprs: vec![],
            mem: None,
            xmms: vec![],
            lane: Lane::Int,
            fp: false,
            unmasked: false,
            x87: 0,
            x87_unmasked: false,
            imm: None,
            exits: vec![],
            fixes: vec![],
            undef: 0,
            skip: 0,
            weight: 1.0,
            edge: false,
            seg: None,
            note: "",
        }
    }
    pub fn w(mut self, width: u8) -> Self {
        self.width = width;
        self
    }
    pub fn regs(mut self, r: &[u8]) -> Self {
        self.gprs.extend_from_slice(r);
        self
    }
    pub fn mem(mut self, base: u8, disp: i32, width: u8, align: u64) -> Self {
        self.mem = Some(MemOp {
            base,
            disp,
            width,
            align,
        });
        self
    }
    /// Takes the memory operand from an `Rm` (no-op for a register).
    pub fn rm(self, rm: Rm, width: u8, align: u64) -> Self {
        match rm {
            Rm::M(b, d) => self.mem(b, d, width, align),
            Rm::R(r) => self.regs(&[r]),
            _ => self,
        }
    }
    pub fn xmm(mut self, x: &[u8], lane: Lane) -> Self {
        self.xmms.extend_from_slice(x);
        self.lane = lane;
        self
    }
    pub fn fp(mut self) -> Self {
        self.fp = true;
        self
    }
    /// `fp` with random exceptions unmasked (named "unmasked exceptions": may fault).
    pub fn unmasked(mut self) -> Self {
        self.fp = true;
        self.unmasked = true;
        self.tag("unmasked exceptions")
    }
    pub fn x87(mut self, n: u8) -> Self {
        self.x87 = n;
        self
    }
    /// The last `size` bytes are an immediate to randomize.
    pub fn imm(mut self, size: u8) -> Self {
        self.imm = Some((self.bytes.len() - size as usize, size));
        self.name.push_str(" [imm random]");
        self
    }
    pub fn exit(mut self, rel: i64) -> Self {
        self.exits.push(rel);
        self
    }
    pub fn fix(mut self, f: Fix) -> Self {
        self.fixes.push(f);
        self
    }
    pub fn undef(mut self, m: u64) -> Self {
        self.undef |= m;
        self
    }
    pub fn skip(mut self, m: u64, note: &'static str) -> Self {
        self.skip |= m;
        self.note = note;
        self
    }
    pub fn tag(mut self, t: &str) -> Self {
        self.name.push_str(" [");
        self.name.push_str(t);
        self.name.push(']');
        self
    }
    pub fn note(mut self, n: &'static str) -> Self {
        self.note = n;
        self
    }
    pub fn weight(mut self, w: f32) -> Self {
        self.weight = w;
        self
    }
}

const SIZES: [u8; 4] = [1, 2, 4, 8];
const MEMB: u8 = R14;

fn imm_for(size: u8) -> u8 {
    if size == 2 {
        2
    } else if size == 1 {
        1
    } else {
        4
    }
}

/// `op8` for byte operands, `op` otherwise, with the operand-size prefix and REX.W.
fn sz(size: u8, pfx_extra: &[u8], op8: &[u8], op: &[u8]) -> (Vec<u8>, bool, Vec<u8>) {
    let (p, w) = osz(size);
    let mut pf = pfx_extra.to_vec();
    pf.extend_from_slice(p);
    (pf, w, if size == 1 { op8.to_vec() } else { op.to_vec() })
}

/// ADD OR ADC SBB AND SUB XOR CMP, every encoding family, every size.
fn alu(v: &mut Vec<Form>) {
    let names = [0u8, 1, 2, 3, 4, 5, 6, 7];
    for &op in &names {
        let base = op * 8;
        for &s in &SIZES {
            let (p, w, o) = sz(s, &[], &[base], &[base + 1]);
            // r/m, r: bl/dh style (no REX) and a REX pair.
            v.push(
                Form::new(modrm(&p, w, false, &o, RSI, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX, RSI]),
            );
            v.push(
                Form::new(modrm(&p, w, true, &o, R9, Rm::R(RDI), &[]))
                    .w(s)
                    .regs(&[RDI, R9]),
            );
            // r, r/m
            let (p2, w2, o2) = sz(s, &[], &[base + 2], &[base + 3]);
            v.push(
                Form::new(modrm(&p2, w2, false, &o2, RDX, Rm::R(RBP), &[]))
                    .w(s)
                    .regs(&[RDX, RBP]),
            );
            // memory both ways
            let m = Rm::M(MEMB, 0x10);
            v.push(
                Form::new(modrm(&p, w, false, &o, RSI, m, &[]))
                    .w(s)
                    .regs(&[RSI])
                    .rm(m, s, 0),
            );
            let m2 = Rm::M(MEMB, -8);
            v.push(
                Form::new(modrm(&p2, w2, false, &o2, RSI, m2, &[]))
                    .w(s)
                    .regs(&[RSI])
                    .rm(m2, s, 0),
            );
            // LOCK r/m, r
            if op != 7 && (s == 4 || s == 8 || s == 1) {
                let (pl, wl, ol) = sz(s, &[0xf0], &[base], &[base + 1]);
                v.push(
                    Form::new(modrm(&pl, wl, false, &ol, RSI, m, &[]))
                        .w(s)
                        .regs(&[RSI])
                        .rm(m, s, 0),
                );
            }
            // 80/81 /op imm
            let is = imm_for(s);
            let (p3, w3, o3) = sz(s, &[], &[0x80], &[0x81]);
            let imm0 = vec![0u8; is as usize];
            v.push(
                Form::new(modrm(&p3, w3, false, &o3, op, Rm::R(RBX), &imm0))
                    .w(s)
                    .regs(&[RBX])
                    .imm(is),
            );
            v.push(
                Form::new(modrm(&p3, w3, false, &o3, op, m, &imm0))
                    .w(s)
                    .rm(m, s, 0)
                    .imm(is),
            );
            if s != 1 {
                // 83 /op imm8 (sign-extended)
                v.push(
                    Form::new(modrm(&p3, w3, false, &[0x83], op, Rm::R(R10), &[0]))
                        .w(s)
                        .regs(&[R10])
                        .imm(1),
                );
                v.push(
                    Form::new(modrm(&p3, w3, false, &[0x83], op, m, &[0]))
                        .w(s)
                        .rm(m, s, 0)
                        .imm(1),
                );
            }
            // accumulator, imm
            let mut b = p3.clone();
            if w3 {
                b.push(0x48);
            }
            b.push(if s == 1 { base + 4 } else { base + 5 });
            b.extend(&imm0);
            v.push(Form::new(b).w(s).regs(&[RAX]).imm(is));
        }
    }
}

/// TEST INC DEC NOT NEG.
fn unary(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x20);
    for &s in &SIZES {
        let (p, w, o) = sz(s, &[], &[0x84], &[0x85]);
        v.push(
            Form::new(modrm(&p, w, false, &o, RDX, Rm::R(RBX), &[]))
                .w(s)
                .regs(&[RBX, RDX]),
        );
        v.push(
            Form::new(modrm(&p, w, false, &o, RDX, m, &[]))
                .w(s)
                .regs(&[RDX])
                .rm(m, s, 0),
        );
        let is = imm_for(s);
        let imm0 = vec![0u8; is as usize];
        let (p1, w1, o1) = sz(s, &[], &[0xf6], &[0xf7]);
        v.push(
            Form::new(modrm(&p1, w1, false, &o1, 0, Rm::R(RSI), &imm0))
                .w(s)
                .regs(&[RSI])
                .imm(is),
        );
        v.push(
            Form::new(modrm(&p1, w1, false, &o1, 0, m, &imm0))
                .w(s)
                .rm(m, s, 0)
                .imm(is),
        );
        let mut b = p1.clone();
        if w1 {
            b.push(0x48);
        }
        b.push(if s == 1 { 0xa8 } else { 0xa9 });
        b.extend(&imm0);
        v.push(Form::new(b).w(s).regs(&[RAX]).imm(is));
        for ext in [2u8, 3] {
            // NOT, NEG
            v.push(
                Form::new(modrm(&p1, w1, false, &o1, ext, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX]),
            );
            v.push(
                Form::new(modrm(&p1, w1, false, &o1, ext, m, &[]))
                    .w(s)
                    .rm(m, s, 0),
            );
        }
        let (p2, w2, o2) = sz(s, &[], &[0xfe], &[0xff]);
        for ext in [0u8, 1] {
            // INC, DEC
            v.push(
                Form::new(modrm(&p2, w2, false, &o2, ext, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX]),
            );
            v.push(
                Form::new(modrm(&p2, w2, false, &o2, ext, m, &[]))
                    .w(s)
                    .rm(m, s, 0),
            );
            if s == 1 {
                // AH (register 4 without REX)
                v.push(
                    Form::new(modrm(&p2, w2, false, &o2, ext, Rm::R(RSP), &[]))
                        .w(2)
                        .regs(&[RAX]),
                );
            }
        }
    }
    // LOCK INC/DEC/NOT/NEG on memory.
    for (o, ext) in [(0xffu8, 0u8), (0xff, 1), (0xf7, 2), (0xf7, 3)] {
        v.push(
            Form::new(modrm(&[0xf0], false, false, &[o], ext, m, &[]))
                .w(4)
                .rm(m, 4, 0),
        );
    }
}

/// ROL ROR RCL RCR SHL SHR SAR by 1, CL and imm8; SHLD/SHRD.
fn shifts(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 8);
    for ext in [0u8, 1, 2, 3, 4, 5, 7] {
        let undef = if ext >= 4 { OF | AF } else { OF };
        for &s in &SIZES {
            let (p, w, _) = sz(s, &[], &[], &[]);
            let (o1, ocl, oi) = if s == 1 {
                (0xd0, 0xd2, 0xc0)
            } else {
                (0xd1, 0xd3, 0xc1)
            };
            v.push(
                Form::new(modrm(&p, w, false, &[o1], ext, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX])
                    .undef(undef),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[ocl], ext, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX])
                    .fix(Fix::Count(RCX))
                    .undef(undef),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[oi], ext, Rm::R(R11), &[0]))
                    .w(s)
                    .regs(&[R11])
                    .imm(1)
                    .undef(undef),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[ocl], ext, m, &[]))
                    .w(s)
                    .rm(m, s, 0)
                    .fix(Fix::Count(RCX))
                    .undef(undef),
            );
            if s == 4 || s == 8 {
                v.push(
                    Form::new(modrm(&p, w, false, &[o1], ext, m, &[]))
                        .w(s)
                        .rm(m, s, 0)
                        .undef(undef),
                );
                v.push(
                    Form::new(modrm(&p, w, false, &[oi], ext, m, &[0]))
                        .w(s)
                        .rm(m, s, 0)
                        .imm(1)
                        .undef(undef),
                );
            }
        }
    }
    for &s in &[2u8, 4, 8] {
        let (p, w, _) = sz(s, &[], &[], &[]);
        let u = OF | AF | CF;
        for (oi, ocl) in [(0xa4u8, 0xa5u8), (0xac, 0xad)] {
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, oi], RSI, Rm::R(RBX), &[0]))
                    .w(s)
                    .regs(&[RBX, RSI])
                    .imm(1)
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, ocl], RSI, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX, RSI])
                    .fix(Fix::Count(RCX))
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, ocl], RSI, m, &[]))
                    .w(s)
                    .regs(&[RSI])
                    .rm(m, s, 0)
                    .fix(Fix::Count(RCX))
                    .undef(u),
            );
        }
    }
}

/// Dividend and divisor that do not fault: unsigned hi < divisor; signed built from a quotient
/// that fits and a remainder of the dividend's sign.
fn div_fix<const W: u8, const SIGNED: bool, const MEM: bool>(
    rng: &mut Rng,
    c: &mut Case,
    ctx: &Ctx,
) {
    let bits = W as u32 * 8;
    let m = gen::mask(W);
    let (lo, hi): (u64, u64);
    let d: u64;
    if !SIGNED {
        let mut dd = gen::operand(rng, W) & m;
        if rng.gen_bool(0.3) {
            dd = rng.gen_range(1..=10);
        }
        if dd == 0 {
            dd = 1;
        }
        d = dd;
        hi = if rng.gen_bool(0.2) {
            0
        } else {
            rng.gen::<u64>() % d
        };
        lo = gen::operand(rng, W) & m;
    } else {
        let sx = |x: u64| -> i128 { ((x << (64 - bits)) as i64 >> (64 - bits)) as i128 };
        let mut dd = sx(gen::operand(rng, W));
        if rng.gen_bool(0.3) {
            dd = rng.gen_range(-10..=10);
        }
        if dd == 0 {
            dd = -1;
        }
        let q = sx(gen::operand(rng, W));
        let n = q * dd;
        let amax = dd.abs() - 1;
        let r = if amax == 0 {
            0
        } else if n > 0 || (n == 0 && rng.gen()) {
            rng.gen_range(0..=amax)
        } else {
            -rng.gen_range(0..=amax)
        };
        let dv = n + r;
        d = dd as u64 & m;
        lo = dv as u64 & m;
        hi = (dv >> bits) as u64 & m;
    }
    let s = &mut c.input;
    if W == 1 {
        s.gpr[0] = (s.gpr[0] & !0xffff) | (hi << 8) | lo;
    } else {
        s.gpr[0] = (s.gpr[0] & !m) | lo;
        s.gpr[2] = (s.gpr[2] & !m) | hi;
    }
    if MEM {
        let a = s.gpr[MEMB as usize] + 0x10;
        gen::poke(c, ctx, a, d, W as usize);
    } else {
        s.gpr[RBX as usize] = (s.gpr[RBX as usize] & !m) | d;
    }
}

fn div_zero<const W: u8>(_: &mut Rng, c: &mut Case, _: &Ctx) {
    let m = gen::mask(W);
    c.input.gpr[RBX as usize] &= !m;
}

fn idiv_overflow<const W: u8>(_: &mut Rng, c: &mut Case, _: &Ctx) {
    let m = gen::mask(W);
    let min = (m >> 1) + 1;
    let s = &mut c.input;
    s.gpr[RBX as usize] |= m; // -1
    if W == 1 {
        s.gpr[0] = (s.gpr[0] & !0xffff) | 0x8000;
    } else {
        s.gpr[0] &= !m;
        s.gpr[2] = (s.gpr[2] & !m) | min;
    }
}

/// MUL IMUL (all forms) DIV IDIV.
fn muldiv(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x10);
    let mu = SF | ZF | AF | PF;
    for &s in &SIZES {
        let (p, w, o) = sz(s, &[], &[0xf6], &[0xf7]);
        for ext in [4u8, 5] {
            v.push(
                Form::new(modrm(&p, w, false, &o, ext, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RAX, RBX])
                    .undef(mu),
            );
            v.push(
                Form::new(modrm(&p, w, false, &o, ext, m, &[]))
                    .w(s)
                    .regs(&[RAX])
                    .rm(m, s, 0)
                    .undef(mu),
            );
        }
        let (reg, mem, regz, ovf): (Fix, Fix, Fix, Fix) = match s {
            1 => (
                Fix::Custom(div_fix::<1, false, false>),
                Fix::Custom(div_fix::<1, false, true>),
                Fix::Custom(div_zero::<1>),
                Fix::Custom(idiv_overflow::<1>),
            ),
            2 => (
                Fix::Custom(div_fix::<2, false, false>),
                Fix::Custom(div_fix::<2, false, true>),
                Fix::Custom(div_zero::<2>),
                Fix::Custom(idiv_overflow::<2>),
            ),
            4 => (
                Fix::Custom(div_fix::<4, false, false>),
                Fix::Custom(div_fix::<4, false, true>),
                Fix::Custom(div_zero::<4>),
                Fix::Custom(idiv_overflow::<4>),
            ),
            _ => (
                Fix::Custom(div_fix::<8, false, false>),
                Fix::Custom(div_fix::<8, false, true>),
                Fix::Custom(div_zero::<8>),
                Fix::Custom(idiv_overflow::<8>),
            ),
        };
        let (sreg, smem): (Fix, Fix) = match s {
            1 => (
                Fix::Custom(div_fix::<1, true, false>),
                Fix::Custom(div_fix::<1, true, true>),
            ),
            2 => (
                Fix::Custom(div_fix::<2, true, false>),
                Fix::Custom(div_fix::<2, true, true>),
            ),
            4 => (
                Fix::Custom(div_fix::<4, true, false>),
                Fix::Custom(div_fix::<4, true, true>),
            ),
            _ => (
                Fix::Custom(div_fix::<8, true, false>),
                Fix::Custom(div_fix::<8, true, true>),
            ),
        };
        let div = modrm(&p, w, false, &o, 6, Rm::R(RBX), &[]);
        let idiv = modrm(&p, w, false, &o, 7, Rm::R(RBX), &[]);
        v.push(Form::new(div.clone()).w(s).fix(reg).undef(ARITH));
        v.push(
            Form::new(modrm(&p, w, false, &o, 6, m, &[]))
                .w(s)
                .mem(MEMB, 0x10, s, 0)
                .fix(mem)
                .undef(ARITH),
        );
        v.push(Form::new(idiv.clone()).w(s).fix(sreg).undef(ARITH));
        v.push(
            Form::new(modrm(&p, w, false, &o, 7, m, &[]))
                .w(s)
                .mem(MEMB, 0x10, s, 0)
                .fix(smem)
                .undef(ARITH),
        );
        v.push(
            Form::new(div)
                .w(s)
                .fix(regz)
                .tag("divide by zero")
                .weight(0.1),
        );
        v.push(
            Form::new(idiv)
                .w(s)
                .fix(ovf)
                .tag("quotient overflow")
                .weight(0.1),
        );
        if s != 1 {
            let (p2, w2, _) = sz(s, &[], &[], &[]);
            v.push(
                Form::new(modrm(&p2, w2, false, &[0x0f, 0xaf], RSI, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RSI, RBX])
                    .undef(mu),
            );
            v.push(
                Form::new(modrm(&p2, w2, false, &[0x0f, 0xaf], RSI, m, &[]))
                    .w(s)
                    .regs(&[RSI])
                    .rm(m, s, 0)
                    .undef(mu),
            );
            v.push(
                Form::new(modrm(&p2, w2, false, &[0x6b], RSI, Rm::R(RBX), &[0]))
                    .w(s)
                    .regs(&[RBX])
                    .imm(1)
                    .undef(mu),
            );
            let is = imm_for(s);
            v.push(
                Form::new(modrm(
                    &p2,
                    w2,
                    false,
                    &[0x69],
                    R8,
                    Rm::R(R12),
                    &vec![0; is as usize],
                ))
                .w(s)
                .regs(&[R12])
                .imm(is)
                .undef(mu),
            );
            v.push(
                Form::new(modrm(
                    &p2,
                    w2,
                    false,
                    &[0x69],
                    RSI,
                    m,
                    &vec![0; is as usize],
                ))
                .w(s)
                .rm(m, s, 0)
                .imm(is)
                .undef(mu),
            );
        }
    }
}

/// BT BTS BTR BTC, BSF BSR, BSWAP.
fn bits(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x40);
    for &s in &[2u8, 4, 8] {
        let (p, w, _) = sz(s, &[], &[], &[]);
        let u = OF | SF | AF | PF;
        for (o, ext) in [(0xa3u8, 4u8), (0xab, 5), (0xb3, 6), (0xbb, 7)] {
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o], RSI, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX, RSI])
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o], RSI, m, &[]))
                    .w(s)
                    .rm(m, s, 0)
                    .fix(Fix::Range(RSI, -1000, 1000))
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, 0xba], ext, Rm::R(RDX), &[0]))
                    .w(s)
                    .regs(&[RDX])
                    .imm(1)
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, 0xba], ext, m, &[0]))
                    .w(s)
                    .rm(m, s, 0)
                    .imm(1)
                    .undef(u),
            );
            if s == 4 {
                let lk = modrm(&[0xf0], w, false, &[0x0f, o], RSI, m, &[]);
                if o != 0xa3 {
                    v.push(
                        Form::new(lk)
                            .w(s)
                            .rm(m, s, 0)
                            .fix(Fix::Range(RSI, -1000, 1000))
                            .undef(u),
                    );
                }
            }
        }
        for o in [0xbcu8, 0xbd] {
            let u = CF | OF | SF | AF | PF;
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o], RSI, Rm::R(RBX), &[]))
                    .w(s)
                    .regs(&[RBX, RSI])
                    .undef(u),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o], RSI, m, &[]))
                    .w(s)
                    .regs(&[RSI])
                    .rm(m, s, 0)
                    .undef(u),
            );
        }
    }
    v.push(
        Form::new(opreg(&[], false, &[0x0f, 0xc8], RBX, &[]))
            .w(4)
            .regs(&[RBX]),
    );
    v.push(
        Form::new(opreg(&[], true, &[0x0f, 0xc8], R13, &[]))
            .w(8)
            .regs(&[R13]),
    );
}

fn ret_target(_: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let sp = c.input.gpr[4];
    gen::poke(c, ctx, sp, ctx.pads[1], 8);
}

fn jmp_mem_target(_: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x10;
    gen::poke(c, ctx, a, ctx.pads[1], 8);
}

fn popf_value(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let sp = c.input.gpr[4];
    let v = (rng.gen::<u64>() & (ARITH | super::DF)) | 0x202;
    gen::poke(c, ctx, sp, v, 8);
}

/// MOVZX MOVSX MOVSXD LEA MOV CMOVcc SETcc XCHG XADD CMPXCHG, CBW..CQO, flag instructions,
/// PUSH/POP.
fn data(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x18);
    // MOVZX / MOVSX
    for (o8, o16) in [(0xb6u8, 0xb7u8), (0xbe, 0xbf)] {
        for &s in &[2u8, 4, 8] {
            let (p, w, _) = sz(s, &[], &[], &[]);
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o8], RSI, Rm::R(RBX), &[]))
                    .w(1)
                    .regs(&[RBX]),
            );
            if !w {
                v.push(
                    Form::new(modrm(&p, w, false, &[0x0f, o8], RSI, Rm::R(RSP), &[]))
                        .w(2)
                        .regs(&[RSI, RAX]),
                );
            }
            v.push(
                Form::new(modrm(&p, w, true, &[0x0f, o8], R9, Rm::R(RDI), &[]))
                    .w(1)
                    .regs(&[RDI]),
            );
            v.push(
                Form::new(modrm(&p, w, false, &[0x0f, o8], RSI, m, &[]))
                    .w(1)
                    .rm(m, 1, 0),
            );
            if s != 2 {
                v.push(
                    Form::new(modrm(&p, w, false, &[0x0f, o16], RSI, Rm::R(RBX), &[]))
                        .w(2)
                        .regs(&[RBX]),
                );
                v.push(
                    Form::new(modrm(&p, w, false, &[0x0f, o16], RSI, m, &[]))
                        .w(2)
                        .rm(m, 2, 0),
                );
            }
        }
    }
    v.push(
        Form::new(modrm(&[], true, false, &[0x63], RSI, Rm::R(RBX), &[]))
            .w(4)
            .regs(&[RBX]),
    );
    v.push(
        Form::new(modrm(&[], true, false, &[0x63], RSI, m, &[]))
            .w(4)
            .rm(m, 4, 0),
    );
    // LEA
    for &s in &[2u8, 4, 8] {
        let (p, w, _) = sz(s, &[], &[], &[]);
        v.push(Form::new(modrm(&p, w, false, &[0x8d], RSI, Rm::M(RBX, 0x12), &[])).regs(&[RBX]));
        v.push(
            Form::new(modrm(
                &p,
                w,
                false,
                &[0x8d],
                RSI,
                Rm::Sib(RBX, RDI, 3, -0x1234),
                &[],
            ))
            .regs(&[RBX, RDI]),
        );
        v.push(
            Form::new(modrm(
                &p,
                w,
                false,
                &[0x8d],
                R11,
                Rm::Sib(R13, R12, 1, 0x7fff_fff0),
                &[],
            ))
            .regs(&[R13, R12]),
        );
        v.push(Form::new(modrm(
            &p,
            w,
            false,
            &[0x8d],
            RAX,
            Rm::Rip(0x40),
            &[],
        )));
        let mut b = vec![0x67];
        b.extend(modrm(
            &p,
            w,
            false,
            &[0x8d],
            RSI,
            Rm::Sib(RBX, RCX, 2, 0x80),
            &[],
        ));
        v.push(Form::new(b).regs(&[RBX, RCX]));
    }
    // MOV
    for &s in &SIZES {
        let (p, w, o) = sz(s, &[], &[0x88], &[0x89]);
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, Rm::R(RBX), &[]))
                .w(s)
                .regs(&[RBX, RSI]),
        );
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, m, &[]))
                .w(s)
                .regs(&[RSI])
                .rm(m, s, 0),
        );
        let (p2, w2, o2) = sz(s, &[], &[0x8a], &[0x8b]);
        v.push(
            Form::new(modrm(&p2, w2, false, &o2, RSI, m, &[]))
                .w(s)
                .rm(m, s, 0),
        );
        let is = imm_for(s);
        let (p3, w3, o3) = sz(s, &[], &[0xc6], &[0xc7]);
        v.push(
            Form::new(modrm(&p3, w3, false, &o3, 0, m, &vec![0; is as usize]))
                .w(s)
                .rm(m, s, 0)
                .imm(is),
        );
        v.push(
            Form::new(modrm(
                &p3,
                w3,
                false,
                &o3,
                0,
                Rm::R(RBX),
                &vec![0; is as usize],
            ))
            .w(s)
            .regs(&[RBX])
            .imm(is),
        );
    }
    v.push(Form::new(opreg(&[], true, &[0xb8], R10, &[0; 8])).imm(4));
    v.push(Form::new(opreg(&[], false, &[0xb8], RDX, &[0; 4])).imm(4));
    v.push(Form::new(opreg(&[], false, &[0xb0], RSP, &[0])).imm(1));
    // CMOVcc, SETcc
    for cc in 0..16u8 {
        v.push(
            Form::new(modrm(
                &[],
                false,
                false,
                &[0x0f, 0x40 + cc],
                RSI,
                Rm::R(RBX),
                &[],
            ))
            .w(4)
            .regs(&[RSI, RBX]),
        );
        v.push(
            Form::new(modrm(
                &[],
                true,
                false,
                &[0x0f, 0x40 + cc],
                RSI,
                Rm::R(RBX),
                &[],
            ))
            .w(8)
            .regs(&[RSI, RBX]),
        );
        v.push(
            Form::new(modrm(
                &[],
                false,
                false,
                &[0x0f, 0x90 + cc],
                0,
                Rm::R(RBX),
                &[],
            ))
            .w(1)
            .regs(&[RBX]),
        );
    }
    for cc in [0x2u8, 0x5, 0xc] {
        v.push(
            Form::new(modrm(
                &[0x66],
                false,
                false,
                &[0x0f, 0x40 + cc],
                RSI,
                Rm::R(RBX),
                &[],
            ))
            .w(2)
            .regs(&[RSI, RBX]),
        );
        v.push(
            Form::new(modrm(&[], false, false, &[0x0f, 0x40 + cc], RSI, m, &[]))
                .w(4)
                .rm(m, 4, 0),
        );
        v.push(Form::new(modrm(&[], false, false, &[0x0f, 0x90 + cc], 0, m, &[])).rm(m, 1, 0));
        v.push(
            Form::new(modrm(
                &[],
                false,
                true,
                &[0x0f, 0x90 + cc],
                0,
                Rm::R(RSI),
                &[],
            ))
            .w(1)
            .regs(&[RSI]),
        );
        v.push(
            Form::new(modrm(
                &[],
                false,
                false,
                &[0x0f, 0x90 + cc],
                0,
                Rm::R(RSP),
                &[],
            ))
            .w(1)
            .tag("ah"),
        );
    }
    // XCHG XADD CMPXCHG
    for &s in &SIZES {
        let (p, w, o) = sz(s, &[], &[0x86], &[0x87]);
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, Rm::R(RBX), &[]))
                .w(s)
                .regs(&[RBX, RSI]),
        );
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, m, &[]))
                .w(s)
                .regs(&[RSI])
                .rm(m, s, 0),
        );
        let (p, w, o) = sz(s, &[], &[0x0f, 0xc0], &[0x0f, 0xc1]);
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, Rm::R(RBX), &[]))
                .w(s)
                .regs(&[RBX, RSI]),
        );
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, m, &[]))
                .w(s)
                .regs(&[RSI])
                .rm(m, s, 0),
        );
        let (pl, wl, ol) = sz(s, &[0xf0], &[0x0f, 0xc0], &[0x0f, 0xc1]);
        v.push(
            Form::new(modrm(&pl, wl, false, &ol, RSI, m, &[]))
                .w(s)
                .regs(&[RSI])
                .rm(m, s, 0),
        );
        let (p, w, o) = sz(s, &[], &[0x0f, 0xb0], &[0x0f, 0xb1]);
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, Rm::R(RBX), &[]))
                .w(s)
                .regs(&[RAX, RBX, RSI]),
        );
        v.push(
            Form::new(modrm(&p, w, false, &o, RSI, m, &[]))
                .w(s)
                .regs(&[RAX, RSI])
                .rm(m, s, 0),
        );
        let (pl, wl, ol) = sz(s, &[0xf0], &[0x0f, 0xb0], &[0x0f, 0xb1]);
        v.push(
            Form::new(modrm(&pl, wl, false, &ol, RSI, m, &[]))
                .w(s)
                .regs(&[RAX, RSI])
                .rm(m, s, 0),
        );
        if s != 1 {
            let (p, w, _) = sz(s, &[], &[], &[]);
            v.push(
                Form::new(opreg(&p, w, &[0x90], RBX, &[]))
                    .w(s)
                    .regs(&[RAX, RBX]),
            );
        }
    }
    v.push(
        Form::new(vec![0x87, 0xc0])
            .w(4)
            .regs(&[RAX])
            .tag("xchg eax,eax zero-extends"),
    );
    // CBW CWDE CDQE CWD CDQ CQO
    for b in [
        &[0x66u8, 0x98][..],
        &[0x98],
        &[0x48, 0x98],
        &[0x66, 0x99],
        &[0x99],
        &[0x48, 0x99],
    ] {
        v.push(Form::new(b.to_vec()).w(8).regs(&[RAX, RDX]));
    }
    // LAHF SAHF CLC STC CMC CLD STD
    for b in [0x9fu8, 0x9e, 0xf8, 0xf9, 0xf5, 0xfc, 0xfd] {
        v.push(Form::new(vec![b]).regs(&[RAX]));
    }
    // PUSH / POP
    v.push(Form::new(opreg(&[], false, &[0x50], RBX, &[])).regs(&[RBX]));
    v.push(Form::new(opreg(&[], false, &[0x50], R12, &[])).regs(&[R12]));
    v.push(Form::new(opreg(&[], false, &[0x50], RSP, &[])));
    v.push(Form::new(opreg(&[0x66], false, &[0x50], RBX, &[])).regs(&[RBX]));
    v.push(Form::new(opreg(&[], false, &[0x58], RBX, &[])));
    v.push(Form::new(opreg(&[], false, &[0x58], R15, &[])));
    v.push(Form::new(opreg(&[], false, &[0x58], RSP, &[])));
    v.push(Form::new(opreg(&[0x66], false, &[0x58], RBX, &[])).regs(&[RBX]));
    v.push(Form::new(vec![0x6a, 0]).imm(1));
    v.push(Form::new(vec![0x68, 0, 0, 0, 0]).imm(4));
    v.push(Form::new(modrm(&[], false, false, &[0xff], 6, m, &[])).rm(m, 8, 0));
    v.push(Form::new(modrm(&[], false, false, &[0x8f], 0, m, &[])).rm(m, 8, 0));
    v.push(Form::new(vec![0x9c]));
    v.push(Form::new(vec![0x9d]).fix(Fix::Custom(popf_value)));
    v.push(Form::new(vec![0xc9]).fix(Fix::Ptr(RBP, 0x900, 0xe00)));
}

/// `str_setup` with a longer REP count, 10 to 60 elements: at most 480 bytes, so the whole
/// run stays in the data page whichever way DF points (RSI and RDI start at least 0x200 from
/// either end of it).
fn str_setup_long(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    str_setup(rng, c, ctx);
    c.input.gpr[RCX as usize] = rng.gen_range(10..=60);
}

fn str_setup(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let s = &mut c.input;
    s.gpr[RSI as usize] = ctx.data + rng.gen_range(0x200..0x400);
    s.gpr[RDI as usize] = ctx.data + rng.gen_range(0x500..0x700);
    s.gpr[RCX as usize] = if rng.gen_bool(0.1) {
        0
    } else {
        rng.gen_range(0..=9)
    };
    let (si, di) = (
        (s.gpr[RSI as usize] - ctx.data) as usize,
        (s.gpr[RDI as usize] - ctx.data) as usize,
    );
    let rax = s.gpr[0];
    match rng.gen_range(0..4) {
        // Equal runs, so REPE/REPNE do not stop at once.
        0 => {
            let n = rng.gen_range(0..=80);
            let (a, b) = if rng.gen() {
                (si, di)
            } else {
                (si - 80, di - 80)
            };
            let src: Vec<u8> = c.mem[a..a + n].to_vec();
            c.mem[b..b + n].copy_from_slice(&src);
        }
        1 => {
            let n = rng.gen_range(0..=10);
            for k in 0..n {
                for j in 0..8 {
                    let o = if rng.gen() {
                        di + 8 * k + j
                    } else {
                        di - 8 * k - 8 + j
                    };
                    c.mem[o] = (rax >> (8 * j)) as u8;
                }
            }
        }
        _ => {}
    }
}

/// MOVS STOS LODS CMPS SCAS, plain and with REP/REPE/REPNE and small counts, both directions.
fn strings(v: &mut Vec<Form>) {
    for (o8, o, rep) in [
        (0xa4u8, 0xa5u8, &[0xf3u8][..]),
        (0xaa, 0xab, &[0xf3]),
        (0xac, 0xad, &[0xf3]),
        (0xa6, 0xa7, &[0xf3, 0xf2]),
        (0xae, 0xaf, &[0xf3, 0xf2]),
    ] {
        for &s in &SIZES {
            let (p, w, op) = sz(s, &[], &[o8], &[o]);
            let mk = |pre: &[u8]| {
                let mut b = pre.to_vec();
                b.extend(&p);
                if w {
                    b.push(0x48);
                }
                b.extend(&op);
                b
            };
            v.push(Form::new(mk(&[])).w(s).fix(Fix::Custom(str_setup)));
            for &r in rep {
                v.push(Form::new(mk(&[r])).w(s).fix(Fix::Custom(str_setup)));
                v.push(
                    Form::new(mk(&[r]))
                        .w(s)
                        .fix(Fix::Custom(str_setup_long))
                        .tag("long count")
                        .weight(0.25),
                );
            }
        }
    }
}

/// SSE/SSE2 integer: (prefix, opcode, name-free) xmm, xmm/m128.
fn sse_int(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x20);
    let ops: &[u8] = &[
        0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xec, 0xed, 0xdc, 0xdd, 0xe8, 0xe9, 0xd8,
        0xd9, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0x60, 0x61, 0x62, 0x6c, 0x68, 0x69, 0x6a, 0x6d,
        0xdb, 0xdf, 0xeb, 0xef, 0xd5, 0xe5, 0xe4, 0xf4, 0xf5, 0xda, 0xde, 0xea, 0xee, 0xe0, 0xe3,
        0xf6, 0x63, 0x67, 0x6b, 0xf1, 0xf2, 0xf3, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2,
    ];
    for &o in ops {
        let mut f = vec![
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::Int),
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 9, Rm::R(14), &[]))
                .xmm(&[9, 14], Lane::Int)
                .weight(0.3),
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 3, m, &[]))
                .xmm(&[3], Lane::Int)
                .mem(MEMB, 0x20, 16, 16),
        ];
        if [0xf1, 0xf2, 0xf3, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2].contains(&o) {
            f = f
                .into_iter()
                .map(|x| x.fix(Fix::Custom(xmm_count)))
                .collect();
        }
        v.extend(f);
    }
    // shifts by immediate: 71/72/73 /2 /4 /6, 73 /3 /7
    for (o, ext) in [
        (0x71u8, 2u8),
        (0x71, 4),
        (0x71, 6),
        (0x72, 2),
        (0x72, 4),
        (0x72, 6),
        (0x73, 2),
        (0x73, 6),
        (0x73, 3),
        (0x73, 7),
    ] {
        v.push(
            Form::new(modrm(
                &[0x66],
                false,
                false,
                &[0x0f, o],
                ext,
                Rm::R(5),
                &[0],
            ))
            .xmm(&[5], Lane::Int)
            .imm(1),
        );
    }
    // PSHUFD/PSHUFLW/PSHUFHW
    for p in [0x66u8, 0xf2, 0xf3] {
        v.push(
            Form::new(modrm(&[p], false, false, &[0x0f, 0x70], 1, Rm::R(2), &[0]))
                .xmm(&[1, 2], Lane::Int)
                .imm(1),
        );
    }
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0x70], 1, m, &[0]))
            .xmm(&[1], Lane::Int)
            .mem(MEMB, 0x20, 16, 16)
            .imm(1),
    );
    // PMOVMSKB, PEXTRW, PINSRW
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0xd7],
            RSI,
            Rm::R(3),
            &[],
        ))
        .xmm(&[3], Lane::Int),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            true,
            false,
            &[0x0f, 0xd7],
            R10,
            Rm::R(11),
            &[],
        ))
        .xmm(&[11], Lane::Int),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0xc5],
            RSI,
            Rm::R(3),
            &[0],
        ))
        .xmm(&[3], Lane::Int)
        .imm(1),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0xc4],
            3,
            Rm::R(RBX),
            &[0],
        ))
        .xmm(&[3], Lane::Int)
        .regs(&[RBX])
        .imm(1),
    );
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0xc4], 3, m, &[0]))
            .xmm(&[3], Lane::Int)
            .mem(MEMB, 0x20, 2, 0)
            .imm(1),
    );
    // MOVD/MOVQ
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0x6e],
            1,
            Rm::R(RBX),
            &[],
        ))
        .xmm(&[1], Lane::Int)
        .regs(&[RBX]),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            true,
            false,
            &[0x0f, 0x6e],
            1,
            Rm::R(RBX),
            &[],
        ))
        .xmm(&[1], Lane::Int)
        .regs(&[RBX]),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0x7e],
            1,
            Rm::R(RBX),
            &[],
        ))
        .xmm(&[1], Lane::Int),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            true,
            false,
            &[0x0f, 0x7e],
            1,
            Rm::R(RBX),
            &[],
        ))
        .xmm(&[1], Lane::Int),
    );
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0x6e], 1, m, &[]))
            .xmm(&[1], Lane::Int)
            .mem(MEMB, 0x20, 4, 0),
    );
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0x7e], 1, m, &[]))
            .xmm(&[1], Lane::Int)
            .mem(MEMB, 0x20, 4, 0),
    );
    v.push(
        Form::new(modrm(
            &[0xf3],
            false,
            false,
            &[0x0f, 0x7e],
            1,
            Rm::R(2),
            &[],
        ))
        .xmm(&[1, 2], Lane::Int),
    );
    v.push(
        Form::new(modrm(&[0xf3], false, false, &[0x0f, 0x7e], 1, m, &[]))
            .xmm(&[1], Lane::Int)
            .mem(MEMB, 0x20, 8, 0),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0xd6],
            1,
            Rm::R(2),
            &[],
        ))
        .xmm(&[1, 2], Lane::Int),
    );
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0xd6], 1, m, &[]))
            .xmm(&[1], Lane::Int)
            .mem(MEMB, 0x20, 8, 0),
    );
    // MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD loads and stores, MOVNTDQ
    for (p, lo, st, al) in [
        (&[0x66u8][..], 0x6fu8, 0x7fu8, 16u64),
        (&[0xf3], 0x6f, 0x7f, 0),
        (&[], 0x28, 0x29, 16),
        (&[], 0x10, 0x11, 0),
        (&[0x66], 0x28, 0x29, 16),
        (&[0x66], 0x10, 0x11, 0),
    ] {
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, lo], 4, m, &[]))
                .xmm(&[4], Lane::Int)
                .mem(MEMB, 0x20, 16, al),
        );
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, st], 4, m, &[]))
                .xmm(&[4], Lane::Int)
                .mem(MEMB, 0x20, 16, al),
        );
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, lo], 4, Rm::R(12), &[]))
                .xmm(&[4, 12], Lane::Int),
        );
    }
    v.push(
        Form::new(modrm(&[0x66], false, false, &[0x0f, 0xe7], 4, m, &[]))
            .xmm(&[4], Lane::Int)
            .mem(MEMB, 0x20, 16, 16),
    );
    // Misaligned MOVDQA must fault as on the host.
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0x6f],
            4,
            Rm::M(MEMB, 0x21),
            &[],
        ))
        .xmm(&[4], Lane::Int)
        .mem(MEMB, 0x21, 16, 16)
        .tag("misaligned")
        .weight(0.1),
    );
}

/// Shift counts from an XMM register or memory: mostly small, so results are not all zero.
fn xmm_count(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    if rng.gen_bool(0.3) {
        return;
    }
    let n = rng.gen_range(0..70u64);
    for x in [2usize, 14] {
        let v = c.input.xmm(x);
        c.input.set_xmm(x, (v & !(u64::MAX as u128)) | n as u128);
    }
    let a = c.input.gpr[MEMB as usize].wrapping_add(0x20);
    if a >= ctx.data && a + 8 <= ctx.data + super::DATA_LEN as u64 {
        gen::poke(c, ctx, a, n, 8);
    }
}

/// SSE/SSE2 floating point, with random rounding modes and masked exceptions.
fn sse_fp(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x20);
    // (prefix, lane, memory width)
    let kinds: [(&[u8], Lane, u8, u64); 4] = [
        (&[], Lane::F32, 16, 16),
        (&[0x66], Lane::F64, 16, 16),
        (&[0xf3], Lane::F32, 4, 0),
        (&[0xf2], Lane::F64, 8, 0),
    ];
    for o in [0x58u8, 0x5c, 0x59, 0x5e, 0x5d, 0x5f, 0x51] {
        for &(p, lane, mw, al) in &kinds {
            v.push(
                Form::new(modrm(p, false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                    .xmm(&[1, 2], lane)
                    .fp(),
            );

            v.push(
                Form::new(modrm(p, false, false, &[0x0f, o], 10, m, &[]))
                    .xmm(&[10], lane)
                    .mem(MEMB, 0x20, mw, al)
                    .fp(),
            );
        }
    }
    // CMPPS/PD/SS/SD with every predicate
    for &(p, lane, mw, al) in &kinds {
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, 0xc2], 1, Rm::R(2), &[0]))
                .xmm(&[1, 2], lane)
                .fp()
                .imm(1)
                .note("imm8 >= 8 is #UD-free on SSE (predicate = imm & 7)"),
        );
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, 0xc2], 1, m, &[0]))
                .xmm(&[1], lane)
                .mem(MEMB, 0x20, mw, al)
                .fp()
                .imm(1),
        );
    }
    // UCOMISS/UCOMISD/COMISS/COMISD
    for o in [0x2eu8, 0x2f] {
        v.push(
            Form::new(modrm(&[], false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::F32)
                .fp(),
        );
        v.push(
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::F64)
                .fp(),
        );
        v.push(
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 1, m, &[]))
                .xmm(&[1], Lane::F64)
                .mem(MEMB, 0x20, 8, 0)
                .fp(),
        );
    }
    // Logic, unpack, shuffle, movmsk
    for o in [0x54u8, 0x55, 0x56, 0x57, 0x14, 0x15] {
        v.push(
            Form::new(modrm(&[], false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::F32),
        );
        v.push(
            Form::new(modrm(&[0x66], false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::F64),
        );
    }
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0xc6], 1, Rm::R(2), &[0]))
            .xmm(&[1, 2], Lane::F32)
            .imm(1),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0xc6],
            1,
            Rm::R(2),
            &[0],
        ))
        .xmm(&[1, 2], Lane::F64)
        .imm(1),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x50], RSI, Rm::R(2), &[])).xmm(&[2], Lane::F32),
    );
    v.push(
        Form::new(modrm(
            &[0x66],
            false,
            false,
            &[0x0f, 0x50],
            RSI,
            Rm::R(2),
            &[],
        ))
        .xmm(&[2], Lane::F64),
    );
    // MOVSS/MOVSD register and memory, MOVLPS/MOVHPS/MOVLPD/MOVHPD, MOVHLPS/MOVLHPS
    for (p, lane, w) in [(0xf3u8, Lane::F32, 4u8), (0xf2, Lane::F64, 8)] {
        v.push(
            Form::new(modrm(&[p], false, false, &[0x0f, 0x10], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], lane),
        );
        v.push(
            Form::new(modrm(&[p], false, false, &[0x0f, 0x10], 1, m, &[]))
                .xmm(&[1], lane)
                .mem(MEMB, 0x20, w, 0),
        );
        v.push(
            Form::new(modrm(&[p], false, false, &[0x0f, 0x11], 1, m, &[]))
                .xmm(&[1], lane)
                .mem(MEMB, 0x20, w, 0),
        );
    }
    for (p, o) in [
        (&[][..], 0x12u8),
        (&[], 0x13),
        (&[], 0x16),
        (&[], 0x17),
        (&[0x66], 0x12),
        (&[0x66], 0x13),
        (&[0x66], 0x16),
        (&[0x66], 0x17),
    ] {
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, o], 1, m, &[]))
                .xmm(&[1], Lane::F64)
                .mem(MEMB, 0x20, 8, 0),
        );
    }
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x12], 1, Rm::R(2), &[]))
            .xmm(&[1, 2], Lane::F32),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x16], 1, Rm::R(2), &[]))
            .xmm(&[1, 2], Lane::F32),
    );
    // Conversions
    let cv: [(&[u8], u8, Lane); 10] = [
        (&[0xf3], 0x5a, Lane::F32), // cvtss2sd
        (&[0xf2], 0x5a, Lane::F64), // cvtsd2ss
        (&[], 0x5a, Lane::F32),     // cvtps2pd
        (&[0x66], 0x5a, Lane::F64), // cvtpd2ps
        (&[], 0x5b, Lane::Int),     // cvtdq2ps
        (&[0x66], 0x5b, Lane::F32), // cvtps2dq
        (&[0xf3], 0x5b, Lane::F32), // cvttps2dq
        (&[0xf3], 0xe6, Lane::Int), // cvtdq2pd
        (&[0xf2], 0xe6, Lane::F64), // cvtpd2dq
        (&[0x66], 0xe6, Lane::F64), // cvttpd2dq
    ];
    for (p, o, lane) in cv {
        v.push(
            Form::new(modrm(p, false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], lane)
                .fp(),
        );
    }
    for (p, lane) in [(0xf3u8, Lane::F32), (0xf2, Lane::F64)] {
        for w in [false, true] {
            // cvtsi2ss/sd from register and memory
            v.push(
                Form::new(modrm(&[p], w, false, &[0x0f, 0x2a], 1, Rm::R(RBX), &[]))
                    .xmm(&[1], lane)
                    .regs(&[RBX])
                    .w(if w { 8 } else { 4 })
                    .fp(),
            );
            v.push(
                Form::new(modrm(&[p], w, false, &[0x0f, 0x2a], 1, m, &[]))
                    .xmm(&[1], lane)
                    .mem(MEMB, 0x20, if w { 8 } else { 4 }, 0)
                    .fp(),
            );
            // cvttss2si / cvtss2si (and sd)
            v.push(
                Form::new(modrm(&[p], w, false, &[0x0f, 0x2c], RSI, Rm::R(2), &[]))
                    .xmm(&[2], lane)
                    .fp(),
            );
            v.push(
                Form::new(modrm(&[p], w, false, &[0x0f, 0x2d], RSI, Rm::R(2), &[]))
                    .xmm(&[2], lane)
                    .fp(),
            );
        }
    }
    // STMXCSR / LDMXCSR
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0xae], 3, m, &[]))
            .mem(MEMB, 0x20, 4, 0)
            .fp(),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0xae], 2, m, &[]))
            .mem(MEMB, 0x20, 4, 0)
            .fp()
            .fix(Fix::Custom(ldmxcsr_value)),
    );
}

fn ldmxcsr_value(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x20;
    let v = (rng.gen::<u32>() & 0xffff) | 0x1f80;
    gen::poke(c, ctx, a, v as u64, 4);
}

/// x87 basic arithmetic on register and memory operands.
fn x87(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x30);
    for ext in 0..8u8 {
        // FADD FMUL FCOM FCOMP FSUB FSUBR FDIV FDIVR: ST0, ST(i); ST(i), ST0 (DC); and pop (DE)
        v.push(Form::new(vec![0xd8, 0xc0 | (ext << 3) | 3]).x87(4));
        if ext != 2 && ext != 3 {
            v.push(Form::new(vec![0xdc, 0xc0 | (ext << 3) | 2]).x87(4));
            v.push(Form::new(vec![0xde, 0xc0 | (ext << 3) | 1]).x87(4));
        }
        v.push(
            Form::new(modrm(&[], false, false, &[0xd8], ext, m, &[]))
                .x87(3)
                .mem(MEMB, 0x30, 4, 0)
                .fix(Fix::Custom(x87_m32)),
        );
        v.push(
            Form::new(modrm(&[], false, false, &[0xdc], ext, m, &[]))
                .x87(3)
                .mem(MEMB, 0x30, 8, 0)
                .fix(Fix::Custom(x87_m64)),
        );
        v.push(
            Form::new(modrm(&[], false, false, &[0xda], ext, m, &[]))
                .x87(3)
                .mem(MEMB, 0x30, 4, 0),
        );
    }
    // Loads and stores
    v.push(
        Form::new(modrm(&[], false, false, &[0xd9], 0, m, &[]))
            .x87(2)
            .mem(MEMB, 0x30, 4, 0)
            .fix(Fix::Custom(x87_m32)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xdd], 0, m, &[]))
            .x87(2)
            .mem(MEMB, 0x30, 8, 0)
            .fix(Fix::Custom(x87_m64)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xdb], 5, m, &[]))
            .x87(2)
            .mem(MEMB, 0x30, 10, 0)
            .fix(Fix::Custom(x87_m80)),
    );
    for (o, ext, w) in [
        (0xd9u8, 2u8, 4u8),
        (0xd9, 3, 4),
        (0xdd, 2, 8),
        (0xdd, 3, 8),
        (0xdb, 7, 10),
    ] {
        v.push(
            Form::new(modrm(&[], false, false, &[o], ext, m, &[]))
                .x87(3)
                .mem(MEMB, 0x30, w, 0),
        );
    }
    for (o, ext, w) in [(0xdfu8, 0u8, 2u8), (0xdb, 0, 4), (0xdf, 5, 8)] {
        v.push(
            Form::new(modrm(&[], false, false, &[o], ext, m, &[]))
                .x87(2)
                .mem(MEMB, 0x30, w, 0),
        );
    }
    for (o, ext, w) in [
        (0xdfu8, 2u8, 2u8),
        (0xdf, 3, 2),
        (0xdb, 2, 4),
        (0xdb, 3, 4),
        (0xdf, 7, 8),
    ] {
        v.push(
            Form::new(modrm(&[], false, false, &[o], ext, m, &[]))
                .x87(3)
                .mem(MEMB, 0x30, w, 0),
        );
    }
    // One-byte-operand instructions: FCHS FABS FTST FXAM FLD1 FLDZ FSQRT FRNDINT FLD ST(i)
    // FXCH FSTP ST(i) FCOMI FUCOMI FCOMIP FUCOMIP FUCOM FNSTSW AX FPREM FSCALE FDECSTP FINCSTP
    for b in [
        [0xd9u8, 0xe0],
        [0xd9, 0xe1],
        [0xd9, 0xe4],
        [0xd9, 0xe5],
        [0xd9, 0xe8],
        [0xd9, 0xee],
        [0xd9, 0xfa],
        [0xd9, 0xfc],
        [0xd9, 0xc2],
        [0xd9, 0xc9],
        [0xdd, 0xd9],
        [0xdd, 0xd1],
        [0xdb, 0xf1],
        [0xdb, 0xe9],
        [0xdf, 0xf1],
        [0xdf, 0xe9],
        [0xdd, 0xe1],
        [0xdf, 0xe0],
        [0xd9, 0xf8],
        [0xd9, 0xfd],
        [0xd9, 0xf6],
        [0xd9, 0xf7],
        [0xdd, 0xc3],
        [0xda, 0xc1],
        [0xdb, 0xd1],
        [0xde, 0xd9],
    ] {
        v.push(Form::new(b.to_vec()).x87(4).regs(&[RAX]));
    }
    v.push(Form::new(vec![0xd9, 0xe8]).x87(0).tag("empty stack"));
    // Constants, FXTRACT, FPREM1, and the transcendentals (results are the host microcode's).
    for b in [
        [0xd9u8, 0xe9],
        [0xd9, 0xea],
        [0xd9, 0xeb],
        [0xd9, 0xec],
        [0xd9, 0xed],
        [0xd9, 0xf4],
        [0xd9, 0xf5],
        [0xd9, 0xf0],
        [0xd9, 0xf1],
        [0xd9, 0xf2],
        [0xd9, 0xf3],
        [0xd9, 0xf9],
        [0xd9, 0xfe],
        [0xd9, 0xff],
        [0xd9, 0xfb],
    ] {
        v.push(
            Form::new(b.to_vec())
                .x87(4)
                .note("x87 constants/transcendentals: bit-exact with the host"),
        );
    }
    // FNSTCW / FLDCW / FNSTSW m16
    v.push(
        Form::new(modrm(&[], false, false, &[0xd9], 7, m, &[]))
            .x87(1)
            .mem(MEMB, 0x30, 2, 0),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xdd], 7, m, &[]))
            .x87(1)
            .mem(MEMB, 0x30, 2, 0),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xd9], 5, m, &[]))
            .x87(1)
            .mem(MEMB, 0x30, 2, 0)
            .fix(Fix::Custom(fldcw_value)),
    );
}

fn x87_m32(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x30;
    gen::poke(c, ctx, a, gen::f32_bits(rng) as u64, 4);
}
fn x87_m64(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x30;
    gen::poke(c, ctx, a, gen::f64_bits(rng), 8);
}
fn x87_m80(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x30;
    let v = gen::f80(rng);
    gen::poke(c, ctx, a, v as u64, 8);
    gen::poke(c, ctx, a + 8, (v >> 64) as u64, 2);
}
fn fldcw_value(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    let a = c.input.gpr[MEMB as usize] + 0x30;
    let v = 0x7f | ((rng.gen::<u64>() & 0xf) << 8);
    gen::poke(c, ctx, a, v, 2);
}

/// Control flow and NOPs: implemented on every branch, so these check the harness itself.
pub fn control(v: &mut Vec<Form>) {
    v.push(Form::new(vec![0xeb, 0x20]).exit(0x20));
    v.push(Form::new(vec![0xeb, 0xa0]).exit(-0x60));
    v.push(Form::new(vec![0xe9, 0x00, 0x01, 0, 0]).exit(0x100));
    for cc in 0..16u8 {
        v.push(Form::new(vec![0x70 + cc, 0x20]).exit(0x20));
        v.push(Form::new(vec![0x0f, 0x80 + cc, 0x40, 0, 0, 0]).exit(0x40));
    }
    v.push(Form::new(vec![0xe8, 0x30, 0, 0, 0]).exit(0x30));
    v.push(
        Form::new(vec![0xc3])
            .exit(0x40)
            .fix(Fix::Custom(ret_target)),
    );
    v.push(
        Form::new(vec![0xc2, 0x18, 0x00])
            .exit(0x40)
            .fix(Fix::Custom(ret_target)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xff], 2, Rm::R(RBX), &[]))
            .exit(0x50)
            .fix(Fix::Pad(RBX, 1)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xff], 4, Rm::R(R11), &[]))
            .exit(-0x100)
            .fix(Fix::Pad(R11, 1)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xff], 4, Rm::M(MEMB, 0x10), &[]))
            .exit(0x70)
            .mem(MEMB, 0x10, 8, 8)
            .fix(Fix::Custom(jmp_mem_target)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0xff], 2, Rm::M(MEMB, 0x10), &[]))
            .exit(0x70)
            .mem(MEMB, 0x10, 8, 8)
            .fix(Fix::Custom(jmp_mem_target)),
    );
    v.push(
        Form::new(vec![0xe2, 0x20])
            .exit(0x20)
            .fix(Fix::Range(RCX, 0, 3)),
    );
    v.push(
        Form::new(vec![0xe1, 0x20])
            .exit(0x20)
            .fix(Fix::Range(RCX, 0, 3)),
    );
    v.push(
        Form::new(vec![0xe0, 0x20])
            .exit(0x20)
            .fix(Fix::Range(RCX, 0, 3)),
    );
    v.push(
        Form::new(vec![0xe3, 0x20])
            .exit(0x20)
            .fix(Fix::Range(RCX, 0, 2)),
    );
    v.push(
        Form::new(vec![0x67, 0xe3, 0x20])
            .exit(0x20)
            .regs(&[RCX])
            .w(4),
    );
    for b in [
        &[0x90u8][..],
        &[0x66, 0x90],
        &[0x0f, 0x1f, 0x00],
        &[0x0f, 0x1f, 0x40, 0x00],
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x0f, 0x1f, 0x80, 0, 0, 0, 0],
        &[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0],
        &[0x0f, 0x1f, 0xc3],
        &[0xf3, 0x90],
        &[0x0f, 0xae, 0xe8],
        &[0x0f, 0xae, 0xf0],
        &[0x0f, 0xae, 0xf8],
        &[0x41, 0x0f, 0x18, 0x0e],
        &[0xf3, 0x0f, 0x1e, 0xfa],
        &[0xf3, 0x48, 0x0f, 0x1e, 0xc8],
    ] {
        v.push(Form::new(b.to_vec()).fix(Fix::Ptr(R14, 0x100, 0x700)));
    }
}

fn cx8_equal(rng: &mut Rng, c: &mut Case, ctx: &Ctx) {
    if rng.gen_bool(0.5) {
        let a = c.input.gpr[MEMB as usize] + 0x18;
        let v = (c.input.gpr[RAX as usize] & 0xffff_ffff) | (c.input.gpr[RDX as usize] << 32);
        gen::poke(c, ctx, a, v, 8);
    }
}

/// CMPXCHG8B, MOVNTI, and MMX (registers alias the x87 stack: tags and TOP change).
/// SSE and AVX arithmetic with random MXCSR exceptions unmasked, so #XM (SIGFPE with its
/// si_code) and the flags it leaves are compared too: the legacy forms and, for the operations
/// that can overflow or underflow, the conversions to single precision and the VEX forms
/// (128- and 256-bit, the upper lanes holding float edge values as well).
pub fn unmasked_sse() -> Vec<Form> {
    let kinds: [(&[u8], Lane); 4] = [
        (&[], Lane::F32),
        (&[0x66], Lane::F64),
        (&[0xf3], Lane::F32),
        (&[0xf2], Lane::F64),
    ];
    let mut v = Vec::new();
    for o in [0x58u8, 0x5c, 0x59, 0x5e, 0x5d, 0x5f, 0x51] {
        for &(p, lane) in &kinds {
            v.push(
                Form::new(modrm(p, false, false, &[0x0f, o], 1, Rm::R(2), &[]))
                    .xmm(&[1, 2], lane)
                    .unmasked(),
            );
        }
    }
    // CVTPD2PS and CVTSD2SS round doubles to single precision.
    for p in [0x66u8, 0xf2] {
        v.push(
            Form::new(modrm(&[p], false, false, &[0x0f, 0x5a], 1, Rm::R(2), &[]))
                .xmm(&[1, 2], Lane::F64)
                .unmasked(),
        );
    }
    // VADD/VSUB/VMUL/VDIV: VEX.128 and VEX.256 packed, scalar (two-byte VEX: R̄=1, vvvv̄ for
    // xmm1, L, pp), xmm1 = xmm1 op xmm2.
    for o in [0x58u8, 0x5c, 0x59, 0x5e] {
        for (pp, lane, scalar) in [
            (0u8, Lane::F32, false),
            (1, Lane::F64, false),
            (2, Lane::F32, true),
            (3, Lane::F64, true),
        ] {
            for l in if scalar { 0..1 } else { 0..2u8 } {
                let vex = 0x80 | (0xe << 3) | (l << 2) | pp;
                v.push(
                    Form::new(vec![0xc5, vex, o, 0xca])
                        .xmm(&[1, 2], lane)
                        .fix(Fix::Custom(float_upper_halves))
                        .unmasked(),
                );
            }
        }
    }
    // Every other floating-point form of every level, register and memory operands.
    let mut more = Vec::new();
    super::forms_v3::unmasked(&mut more);
    let have: Vec<Vec<u8>> = v.iter().map(|f| f.bytes.clone()).collect();
    v.extend(more.into_iter().filter(|f| !have.contains(&f.bytes)));
    v
}

/// YMM1 and YMM2 upper halves taken from the float edge values the generator put in XMM1 and
/// XMM2 (in either order), so 256-bit forms see them in every lane.
fn float_upper_halves(rng: &mut Rng, c: &mut Case, _: &Ctx) {
    for r in [1usize, 2] {
        c.input.ymm_hi[r] = c.input.xmm(rng.gen_range(1..3));
    }
}

/// Accesses that fault on every host: the first page (never mapped) and the kernel half of
/// the canonical address space. Linux's si_code, si_addr and page-fault error code must match
/// the emulator's (diff/fault.rs).
fn page_faults(v: &mut Vec<Form>) {
    const KERNEL: i64 = 0xffff_8000_0000_0000u64 as i64;
    for (bytes, what) in [
        (vec![0x8b, 0x03], "read"),              // mov (%rbx),%eax
        (vec![0x89, 0x03], "write"),             // mov %eax,(%rbx)
        (vec![0x48, 0x8b, 0x03], "read"),        // mov (%rbx),%rax
        (vec![0x48, 0x83, 0x03, 0x01], "write"), // addq $1,(%rbx)
    ] {
        v.push(
            Form::new(bytes.clone())
                .fix(Fix::Range(3, 0, 0xff8))
                .tag(&format!("page fault: {what} in page 0"))
                .weight(0.1),
        );
        v.push(
            Form::new(bytes)
                .fix(Fix::Range(3, KERNEL, KERNEL + 0x10_0000))
                .tag(&format!("page fault: {what} in the kernel half"))
                .weight(0.1),
        );
    }
}

fn misc(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x18);
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0xc7], 1, m, &[]))
            .mem(MEMB, 0x18, 8, 0)
            .fix(Fix::Custom(cx8_equal)),
    );
    v.push(
        Form::new(modrm(&[0xf0], false, false, &[0x0f, 0xc7], 1, m, &[]))
            .mem(MEMB, 0x18, 8, 0)
            .fix(Fix::Custom(cx8_equal)),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0xc3], RSI, m, &[]))
            .w(4)
            .mem(MEMB, 0x18, 4, 0)
            .regs(&[RSI]),
    );
    v.push(
        Form::new(modrm(&[], true, false, &[0x0f, 0xc3], RSI, m, &[]))
            .w(8)
            .mem(MEMB, 0x18, 8, 0)
            .regs(&[RSI]),
    );
    for o in [
        0xfcu8, 0xfd, 0xfe, 0xd4, 0xf8, 0xef, 0xdb, 0x60, 0x62, 0x74, 0xf5, 0xd5, 0xe5, 0x63, 0x67,
    ] {
        v.push(Form::new(modrm(&[], false, false, &[0x0f, o], 1, Rm::R(2), &[])).x87(3));
    }
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x6e], 1, Rm::R(RBX), &[]))
            .x87(3)
            .regs(&[RBX]),
    );
    v.push(Form::new(modrm(&[], true, false, &[0x0f, 0x7e], 1, Rm::R(RBX), &[])).x87(3));
    v.push(Form::new(modrm(&[], false, false, &[0x0f, 0xd7], RSI, Rm::R(2), &[])).x87(3));
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x6f], 1, m, &[]))
            .x87(3)
            .mem(MEMB, 0x18, 8, 0),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x7f], 1, m, &[]))
            .x87(3)
            .mem(MEMB, 0x18, 8, 0),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x71], 6, Rm::R(3), &[0]))
            .x87(3)
            .imm(1),
    );
    v.push(
        Form::new(modrm(
            &[0xf3],
            false,
            false,
            &[0x0f, 0xd6],
            1,
            Rm::R(3),
            &[],
        ))
        .x87(3)
        .xmm(&[1], Lane::Int),
    );
    v.push(
        Form::new(modrm(
            &[0xf2],
            false,
            false,
            &[0x0f, 0xd6],
            1,
            Rm::R(3),
            &[],
        ))
        .x87(3)
        .xmm(&[3], Lane::Int),
    );
    v.push(Form::new(vec![0x0f, 0x77]).x87(3));
}

/// Every form, in table order.
pub fn all() -> Vec<Form> {
    let mut v = Vec::new();
    control(&mut v);
    alu(&mut v);
    unary(&mut v);
    shifts(&mut v);
    muldiv(&mut v);
    bits(&mut v);
    data(&mut v);
    strings(&mut v);
    sse_int(&mut v);
    sse_fp(&mut v);
    x87(&mut v);
    misc(&mut v);
    super::forms_v3::all(&mut v);
    super::gather_edge::forms(&mut v);
    super::forms_v3::ssse3_mmx(&mut v);
    page_faults(&mut v);
    let derived = edges_and_segments(&v);
    v.extend(derived);
    x87_unmasked(&mut v);
    // Names must be unique: repro and filtering go by name.
    let mut seen = std::collections::HashMap::new();
    for f in v.iter_mut() {
        let n = seen.entry(f.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            f.name = format!("{} #{}", f.name, n);
        }
    }
    v
}

/// Every form with an explicit memory operand based on a general register again, twice: with
/// the operand at and across the ends of the data page (into the unmapped page below it, the
/// read-only page above it and the PROT_NONE page above that: fault precision, si_addr, the
/// error code, nothing written on a fault), and with an FS or GS override and random segment
/// bases. Gathers (per-element faults) and forms that fault by design are left out.
fn edges_and_segments(v: &[Form]) -> Vec<Form> {
    if !super::native::host_fsgsbase() {
        eprintln!(
            "NOT RUN: the FS/GS-prefixed forms (the host has no FSGSBASE, so the harness \
             cannot give the native run segment bases)"
        );
    }
    let mut out = Vec::new();
    let mut n = 0usize;
    for f in v {
        let Some(m) = f.mem else { continue };
        if m.base == RSP
            || f.name.contains("misaligned")
            || f.name.contains("page fault")
            || f.name.contains("gather")
            || f.fixes
                .iter()
                .any(|x| matches!(x, Fix::Ptr(r, ..) if *r == m.base))
        {
            continue;
        }
        let mut e = f.clone();
        if !edge_compares(f) {
            e.name.clear(); // no page-edge variant: see edge_compares
        }
        e.edge = true;
        e.weight = 0.05;
        if !e.name.is_empty() {
            out.push(e.tag("page edge"));
        }
        let pfx = if n.is_multiple_of(2) { 0x64 } else { 0x65 };
        n += 1;
        if f.bytes.len() < 15 && super::native::host_fsgsbase() {
            let mut bytes = vec![pfx];
            bytes.extend_from_slice(&f.bytes);
            let mut g = Form::new(bytes);
            let old = f.clone();
            g.width = old.width;
            g.gprs = old.gprs;
            g.mem = old.mem;
            g.xmms = old.xmms;
            g.lane = old.lane;
            g.fp = old.fp;
            g.unmasked = old.unmasked;
            g.x87 = old.x87;
            g.imm = old.imm.map(|(at, size)| (at + 1, size));
            g.exits = old.exits;
            g.fixes = old.fixes;
            g.undef = old.undef;
            g.skip = old.skip;
            g.note = old.note;
            g.seg = Some(pfx);
            g.weight = 0.05;
            if old.name.contains("[imm random]") {
                g.name.push_str(" [imm random]");
            }
            out.push(g);
        }
    }
    out
}

/// Every x87 form again with x87 exceptions unmasked (`Form::x87_unmasked`), and FWAIT and
/// FNOP with pending exceptions: an instruction that detects an unmasked exception sets ES and
/// B, and #MF is raised only by the next waiting x87 instruction
/// (Intel SDM Vol. 1 §8.6 "x87 FPU Exception Synchronization"), Linux delivers SIGFPE with the
/// si_code of the unmasked flags (arch/x86/kernel/traps.c math_error, fpu__exception_code).
fn x87_unmasked(v: &mut Vec<Form>) {
    let x: Vec<Form> = v
        .iter()
        .filter(|f| f.x87 > 0 && f.name.starts_with('f') && !f.edge && f.seg.is_none())
        .cloned()
        .collect();
    for mut f in x {
        f.x87_unmasked = true;
        f.weight = 0.1;
        v.push(f.tag("x87 unmasked"));
    }
    for bytes in [vec![0x9b], vec![0xd9, 0xd0]] {
        let mut f = Form::new(bytes).x87(2);
        f.x87_unmasked = true;
        v.push(f.tag("x87 unmasked"));
    }
}

/// Whether a form's page-edge variant can be held to the host. Not: indirect CALL and JMP
/// through memory (a random target is fetched, which single-stepping does not do), and four
/// things this AMD host does on a store that faults across a page end which are not the
/// engine contract's precise fault (nothing changed) and which the emulator does not copy (see
/// the final report of the branch that added them): VMASKMOV/VPMASKMOV report the last byte of
/// the element as si_addr, VCVTPS2PH to memory sets its MXCSR flags, FSTP m80 writes the
/// first 8 bytes, and MMX stores perform the x87-to-MMX transition (TOP 0, all tags valid).
fn edge_compares(f: &Form) -> bool {
    let n = &f.name;
    let dest_mem = n.split(" [").next().unwrap_or("").trim_end().ends_with(')');
    !(n.starts_with("callq *")
        || n.starts_with("jmpq *")
        || n.contains("maskmov")
        || n.contains("vcvtps2ph")
        || n.starts_with("fstpt")
        || (n.contains("%mm") && dest_mem))
}

/// What makes two forms test the same thing: everything but the name and the case count.
pub fn signature(f: &Form) -> String {
    let fixes: Vec<String> = f
        .fixes
        .iter()
        .map(|x| match x {
            Fix::Range(r, lo, hi) => format!("range {r} {lo} {hi}"),
            Fix::Count(r) => format!("count {r}"),
            Fix::Ptr(r, lo, hi) => format!("ptr {r} {lo} {hi}"),
            Fix::Pad(r, k) => format!("pad {r} {k}"),
            Fix::Set(r, v) => format!("set {r} {v}"),
            Fix::Flags(v) => format!("flags {v}"),
            Fix::Custom(c) => format!("custom {:#x}", *c as usize),
        })
        .collect();
    format!(
        "{:02x?} w{} gprs {:?} mem {:?} xmm {:?} {:?} fp {} unmasked {} x87 {} imm {:?} exits {:?} fixes {:?} undef {:#x} skip {:#x} edge {} seg {:?} x87u {}",
        f.bytes, f.width, f.gprs, f.mem, f.xmms, f.lane, f.fp, f.unmasked, f.x87, f.imm, f.exits, fixes, f.undef, f.skip, f.edge, f.seg, f.x87_unmasked
    )
}
