//! MUL, IMUL (one-, two- and three-operand forms), DIV and IDIV.

use super::Handler;
use crate::exception::Result;
use crate::flags::{CF, OF};
use crate::operand::{sign_extend, size_mask};
use crate::{undef, Cpu, Exception};
use iced_x86::{Code, Instruction, Mnemonic};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Mul_rm8 | Code::Mul_rm16 | Code::Mul_rm32 | Code::Mul_rm64 => mul,
        Code::Imul_rm8 | Code::Imul_rm16 | Code::Imul_rm32 | Code::Imul_rm64 => imul1,
        Code::Div_rm8 | Code::Div_rm16 | Code::Div_rm32 | Code::Div_rm64 => div,
        Code::Idiv_rm8 | Code::Idiv_rm16 | Code::Idiv_rm32 | Code::Idiv_rm64 => idiv,
        c if c.mnemonic() == Mnemonic::Imul => imul_n,
        _ => return None,
    })
}

/// Flags after a multiply of `a` by `b`: CF = OF = `overflow`. SF, ZF, AF and PF are
/// undefined in the SDM and follow the host (`crate::undef`): an AMD host leaves them
/// unchanged; on others they are the host's own.
#[inline(always)]
pub(crate) fn mul_flags(
    cpu: &mut Cpu,
    overflow: bool,
    kind: undef::Mul,
    size: u32,
    a: u64,
    b: u64,
) {
    cpu.flags.materialize();
    let fin = cpu.flags.bits;
    let bits = &mut cpu.flags.bits;
    *bits = (*bits & !(CF | OF)) | (overflow as u64 * (CF | OF));
    if !undef::host_is_amd() {
        let host = undef::mul(kind, size, a, b, fin);
        *bits = undef::take(*bits, undef::MUL_UNDEFINED, host);
    }
}

/// Writes the double-width result of a one-operand multiply or divide: AX for bytes,
/// rDX:rAX otherwise.
#[inline(always)]
fn write_pair(cpu: &mut Cpu, size: u32, lo: u64, hi: u64) {
    match size {
        1 => cpu.gpr[0] = (cpu.gpr[0] & !0xffff) | (lo & 0xff) | ((hi & 0xff) << 8),
        2 => {
            cpu.gpr[0] = (cpu.gpr[0] & !0xffff) | (lo & 0xffff);
            cpu.gpr[2] = (cpu.gpr[2] & !0xffff) | (hi & 0xffff);
        }
        4 => {
            cpu.gpr[0] = lo & 0xffff_ffff;
            cpu.gpr[2] = hi & 0xffff_ffff;
        }
        _ => {
            cpu.gpr[0] = lo;
            cpu.gpr[2] = hi;
        }
    }
}

fn mul(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let b = cpu.read_op(i, 0, size)? as u128;
    let a = (cpu.gpr[0] & size_mask(size)) as u128;
    let p = a * b;
    let w = size * 8;
    let lo = p as u64 & size_mask(size);
    let hi = (p >> w) as u64 & size_mask(size);
    write_pair(cpu, size, lo, hi);
    mul_flags(cpu, hi != 0, undef::Mul::Unsigned, size, a as u64, b as u64);
    Ok(())
}

fn imul1(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let b = sign_extend(cpu.read_op(i, 0, size)?, size) as i64 as i128;
    let a = sign_extend(cpu.gpr[0], size) as i64 as i128;
    let p = a * b;
    let w = size * 8;
    let lo = p as u64 & size_mask(size);
    let hi = (p >> w) as u64 & size_mask(size);
    let overflow = sign_extend(lo, size) as i64 as i128 != p;
    write_pair(cpu, size, lo, hi);
    mul_flags(cpu, overflow, undef::Mul::Signed, size, a as u64, b as u64);
    Ok(())
}

/// IMUL r, r/m and IMUL r, r/m, imm: the truncated signed product.
fn imul_n(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let (x, y) = if i.op_count() == 3 {
        (cpu.read_op(i, 1, size)?, cpu.read_op(i, 2, size)?)
    } else {
        (cpu.get_reg(i.op0_register()), cpu.read_op(i, 1, size)?)
    };
    let p = sign_extend(x, size) as i64 as i128 * sign_extend(y, size) as i64 as i128;
    let lo = p as u64 & size_mask(size);
    let overflow = sign_extend(lo, size) as i64 as i128 != p;
    cpu.set_reg(i.op0_register(), lo);
    mul_flags(cpu, overflow, undef::Mul::SignedTruncated, size, x, y);
    Ok(())
}

/// The dividend of a one-operand divide: AX for bytes, rDX:rAX otherwise.
#[inline(always)]
fn dividend(cpu: &Cpu, size: u32) -> u128 {
    let m = size_mask(size) as u128;
    if size == 1 {
        (cpu.gpr[0] & 0xffff) as u128
    } else {
        ((cpu.gpr[2] as u128 & m) << (size * 8)) | (cpu.gpr[0] as u128 & m)
    }
}

fn div(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let d = cpu.read_op(i, 0, size)? as u128;
    if d == 0 {
        return Err(Exception::DivideError);
    }
    let n = dividend(cpu, size);
    let q = n / d;
    if q > size_mask(size) as u128 {
        return Err(Exception::DivideError);
    }
    let r = n % d;
    let fin = host_div_flags_in(cpu);
    write_pair(cpu, size, q as u64, r as u64);
    div_flags(cpu);
    if let Some(fin) = fin {
        host_div_flags(cpu, false, size, raw_parts(n, size), d as u64, fin);
    }
    Ok(())
}

fn idiv(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let d = sign_extend(cpu.read_op(i, 0, size)?, size) as i64 as i128;
    if d == 0 {
        return Err(Exception::DivideError);
    }
    let w = size * 8;
    let raw = dividend(cpu, size);
    // Sign-extend the 2w-bit dividend to 128 bits.
    let n = ((raw << (128 - 2 * w)) as i128) >> (128 - 2 * w);
    // |n| < 2^127 for every width, so neither the division nor the check can overflow
    // (the 128-bit dividend of a 64-bit IDIV is only 2w = 128 bits when w = 64, where
    // i128::MIN / -1 must be caught first).
    if n == i128::MIN && d == -1 {
        return Err(Exception::DivideError);
    }
    let q = n / d;
    let r = n % d;
    let max = (1i128 << (w - 1)) - 1;
    let min = -(1i128 << (w - 1));
    if q > max || q < min {
        return Err(Exception::DivideError);
    }
    let fin = host_div_flags_in(cpu);
    write_pair(
        cpu,
        size,
        q as u64 & size_mask(size),
        r as u64 & size_mask(size),
    );
    div_flags(cpu);
    if let Some(fin) = fin {
        host_div_flags(cpu, true, size, raw_parts(raw, size), d as u64, fin);
    }
    Ok(())
}

/// The guest's flags before a divide, when the host's undefined results are to be taken (not
/// on AMD, whose rules `div_flags` encodes).
#[inline(always)]
fn host_div_flags_in(cpu: &mut Cpu) -> Option<u64> {
    if undef::host_is_amd() {
        return None;
    }
    cpu.flags.materialize();
    Some(cpu.flags.bits)
}

/// The (high, low) halves of a raw double-width dividend (for bytes: 0 and AX).
#[inline(always)]
fn raw_parts(raw: u128, size: u32) -> (u64, u64) {
    if size == 1 {
        (0, raw as u64 & 0xffff)
    } else {
        ((raw >> (size * 8)) as u64, raw as u64 & size_mask(size))
    }
}

/// All six flags of a divide that did not fault, taken from the same divide on the host.
fn host_div_flags(cpu: &mut Cpu, signed: bool, size: u32, (hi, lo): (u64, u64), d: u64, fin: u64) {
    let host = undef::div(signed, size, hi, lo, d, fin);
    cpu.flags.materialize();
    cpu.flags.bits = undef::take(cpu.flags.bits, undef::DIV_UNDEFINED, host);
}

/// Flags after DIV/IDIV: all six are undefined in the SDM. An AMD host keeps CF and OF, sets
/// AF and clears SF, ZF and PF (other hosts: `host_div_flags`).
#[inline(always)]
fn div_flags(cpu: &mut Cpu) {
    let (cf, of) = (cpu.flags.cf(), cpu.flags.of());
    cpu.flags.set_arith(cf, false, true, false, false, of);
}
