//! Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR (by 1, CL, imm8) and SHLD SHRD.
//!
//! The count is masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes no
//! flags. Results the SDM leaves undefined follow the host CPU (see `crate::undef`): the rules
//! below are the AMD host's; on other hosts the undefined bits come from the host itself.

use super::alu::rmw;
use super::Handler;
use crate::exception::Result;
use crate::flags::{parity, AF, CF, OF};
use crate::operand::size_mask;
use crate::Cpu;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

pub(crate) const SHL: u8 = 0;
pub(crate) const SHR: u8 = 1;
pub(crate) const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;
const RCL: u8 = 5;
const RCR: u8 = 6;

pub fn lookup(code: Code) -> Option<Handler> {
    if code == Code::Salc {
        return None;
    }
    Some(match code.mnemonic() {
        Mnemonic::Shl | Mnemonic::Sal => shift::<SHL>,
        Mnemonic::Shr => shift::<SHR>,
        Mnemonic::Sar => shift::<SAR>,
        Mnemonic::Rol => shift::<ROL>,
        Mnemonic::Ror => shift::<ROR>,
        Mnemonic::Rcl => shift::<RCL>,
        Mnemonic::Rcr => shift::<RCR>,
        Mnemonic::Shld => double::<true>,
        Mnemonic::Shrd => double::<false>,
        _ => return None,
    })
}

#[inline(always)]
fn count_mask(size: u32) -> u64 {
    if size == 8 {
        63
    } else {
        31
    }
}

/// The shift count operand (CL or an immediate), masked.
#[inline(always)]
fn count(cpu: &Cpu, i: &Instruction, n: u32, size: u32) -> u32 {
    let c = match i.op_kind(n) {
        OpKind::Register => cpu.gpr[1] & 0xff,
        _ => i.immediate8() as u64,
    };
    (c & count_mask(size)) as u32
}

/// Result of a shift or rotate: the value and CF/OF (other flags follow from the kind).
#[inline(always)]
pub(crate) fn compute<const OP: u8>(a: u64, c: u32, size: u32, cf_in: bool) -> (u64, bool, bool) {
    let w = size * 8;
    let m = size_mask(size);
    let msb = |v: u64| (v >> (w - 1)) & 1 != 0;
    let a = a & m;
    if c == 0 {
        return (a, false, false);
    }
    match OP {
        SHL => {
            let r = if c < w { (a << c) & m } else { 0 };
            let cf = c <= w && (a >> (w - c)) & 1 != 0;
            (r, cf, msb(r) ^ cf)
        }
        SHR => {
            let r = if c < w { a >> c } else { 0 };
            let cf = c <= w && (a >> (c - 1)) & 1 != 0;
            // OF is MSB(original) for a count of 1; the host clears it for other counts.
            (r, cf, msb(a) && c == 1)
        }
        SAR => {
            let s = crate::operand::sign_extend(a, size) as i64;
            let r = (s >> c.min(w - 1)) as u64 & m;
            let cf = (s >> (c - 1).min(w - 1)) & 1 != 0;
            (r, cf, false)
        }
        ROL => {
            let t = c % w;
            let r = if t == 0 {
                a
            } else {
                ((a << t) | (a >> (w - t))) & m
            };
            let cf = r & 1 != 0;
            (r, cf, msb(r) ^ cf)
        }
        ROR => {
            let t = c % w;
            let r = if t == 0 {
                a
            } else {
                ((a >> t) | (a << (w - t))) & m
            };
            let cf = msb(r);
            (r, cf, cf ^ ((r >> (w - 2)) & 1 != 0))
        }
        RCL | RCR => {
            let t = if w < 32 { c % (w + 1) } else { c };
            let v = ((cf_in as u128) << w) | a as u128;
            let wm: u128 = (1u128 << (w + 1)) - 1;
            let r = if t == 0 {
                v
            } else if OP == RCL {
                ((v << t) | (v >> (w + 1 - t))) & wm
            } else {
                ((v >> t) | (v << (w + 1 - t))) & wm
            };
            let res = r as u64 & m;
            let cf = (r >> w) & 1 != 0;
            let of = if OP == RCL {
                msb(res) ^ cf
            } else {
                msb(res) ^ ((res >> (w - 2)) & 1 != 0)
            };
            (res, cf, of)
        }
        _ => unreachable!(),
    }
}

fn shift<const OP: u8>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let c = count(cpu, i, 1, size);
    let cf_in = if OP == RCL || OP == RCR {
        cpu.flags.cf()
    } else {
        false
    };
    let fin = host_flags_in(cpu, c);
    let (old, _) = rmw(cpu, i, size, |a| compute::<OP>(a, c, size, cf_in).0)?;
    if c == 0 {
        return Ok(());
    }
    let (r, cf, of) = compute::<OP>(old, c, size, cf_in);
    if OP <= SAR {
        let w = size * 8;
        cpu.flags
            .set_arith(cf, parity(r), SHIFT_AF, r == 0, (r >> (w - 1)) & 1 != 0, of);
    } else {
        cpu.flags.materialize();
        let b = &mut cpu.flags.bits;
        *b = (*b & !(CF | OF)) | (cf as u64 * CF) | (of as u64 * OF);
    }
    if let Some(fin) = fin {
        let imm = i.op_kind(1) != OpKind::Register;
        let mem = i.op0_kind() != OpKind::Register;
        host_undefined(cpu, OP, size, old, c, fin, imm.then_some(mem));
    }
    Ok(())
}

/// The guest's flags before a shift by a non-zero `count`, when the host's undefined results
/// are to be taken (not on AMD, whose rules are encoded here).
#[inline(always)]
pub(crate) fn host_flags_in(cpu: &mut Cpu, count: u32) -> Option<u64> {
    if count == 0 || crate::undef::host_is_amd() {
        return None;
    }
    cpu.flags.materialize();
    Some(cpu.flags.bits)
}

/// Replaces the flags shift/rotate `op` leaves undefined with the host's, for the operand
/// `old`, the non-zero `count` and the incoming flags `fin`. `imm_mem` is Some when the count
/// is an immediate, saying whether the destination is in memory.
pub(crate) fn host_undefined(
    cpu: &mut Cpu,
    op: u8,
    size: u32,
    old: u64,
    count: u32,
    fin: u64,
    imm_mem: Option<bool>,
) {
    let (_, mut host) = crate::undef::shift(op, size, old, count, fin);
    if let Some(mem) = imm_mem {
        host = crate::undef::take(host, crate::undef::imm_keeps(op, mem), fin);
    }
    let which = crate::undef::shift_undefined(op, size * 8, count);
    cpu.flags.materialize();
    cpu.flags.bits = crate::undef::take(cpu.flags.bits, which, host);
}

/// AF after a shift by a non-zero count: undefined in the SDM; the host sets it.
pub(crate) const SHIFT_AF: bool = true;

/// SHLD (`LEFT`) and SHRD: shift operand 0, filling from operand 1.
fn double<const LEFT: bool>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let c = count(cpu, i, 2, size);
    let b = cpu.get_reg(i.op1_register());
    let fin = host_flags_in(cpu, c);
    if let (Some(fin), true) = (fin, size == 2 && c > 16) {
        // The result and every flag are undefined: all the host's.
        let (old, _) = rmw(cpu, i, size, |a| {
            crate::undef::double_shift(LEFT, size, a, b, c, fin).0
        })?;
        let (_, host) = crate::undef::double_shift(LEFT, size, old, b, c, fin);
        cpu.flags.materialize();
        cpu.flags.bits = crate::undef::take(cpu.flags.bits, crate::undef::DIV_UNDEFINED, host);
        return Ok(());
    }
    let (old, _) = rmw(cpu, i, size, |a| dcompute::<LEFT>(a, b, c, size).0)?;
    if c == 0 {
        return Ok(());
    }
    let (r, cf, of) = dcompute::<LEFT>(old, b, c, size);
    let w = size * 8;
    cpu.flags
        .set_arith(cf, parity(r), SHIFT_AF, r == 0, (r >> (w - 1)) & 1 != 0, of);
    if let Some(fin) = fin {
        let (_, host) = crate::undef::double_shift(LEFT, size, old, b, c, fin);
        let which = if c == 1 { AF } else { AF | OF };
        cpu.flags.materialize();
        cpu.flags.bits = crate::undef::take(cpu.flags.bits, which, host);
    }
    Ok(())
}

#[inline(always)]
fn dcompute<const LEFT: bool>(a: u64, b: u64, c: u32, size: u32) -> (u64, bool, bool) {
    let w = size * 8;
    let m = size_mask(size);
    let (a, b) = (a & m, b & m);
    if c == 0 {
        return (a, false, false);
    }
    let msb = |v: u64| (v >> (w - 1)) & 1 != 0;
    // 16-bit counts above 16 are undefined in the SDM; the host keeps filling from the
    // source, as if shifting through dst:src:src (SHLD) or src:src:dst (SHRD).
    let (r, cf) = if w == 16 {
        if LEFT {
            let wide = (a << 32) | (b << 16) | b;
            let r = (wide >> (32 - c)) & 0xffff;
            let cf = c <= 16 && (wide >> (48 - c)) & 1 != 0;
            (r, cf)
        } else {
            let wide = (b << 32) | (b << 16) | a;
            let r = (wide >> c) & 0xffff;
            let cf = c <= 16 && (wide >> (c - 1)) & 1 != 0;
            (r, cf)
        }
    } else if LEFT {
        let r = ((a << c) | (b >> (w - c))) & m;
        (r, (a >> (w - c)) & 1 != 0)
    } else {
        let r = ((a >> c) | (b << (w - c))) & m;
        (r, (a >> (c - 1)) & 1 != 0)
    };
    // OF is defined for a count of 1 (a sign change); the host's rule for every count is
    // CF ^ MSB(result) for SHLD and the top two result bits differing for SHRD.
    let of = if LEFT {
        if w == 16 && c >= 16 {
            cf
        } else {
            cf ^ msb(r)
        }
    } else {
        msb(r) ^ ((r >> (w - 2)) & 1 != 0)
    };
    (r, cf, of)
}
