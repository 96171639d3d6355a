//! MUL, IMUL (one-, two- and three-operand forms), DIV and IDIV.

use super::Handler;
use crate::exception::Result;
use crate::flags::{CF, OF};
use crate::operand::{sign_extend, size_mask};
use crate::{Cpu, Exception};
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

/// Flags after a multiply: CF = OF = `overflow`. SF, ZF, AF and PF are undefined in the SDM;
/// the host leaves them unchanged.
#[inline(always)]
pub(crate) fn mul_flags(cpu: &mut Cpu, overflow: bool) {
    cpu.flags.materialize();
    let b = &mut cpu.flags.bits;
    *b = (*b & !(CF | OF)) | (overflow as u64 * (CF | OF));
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
    mul_flags(cpu, hi != 0);
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
    mul_flags(cpu, overflow);
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
    mul_flags(cpu, overflow);
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
    write_pair(cpu, size, q as u64, r as u64);
    div_flags(cpu);
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
    write_pair(
        cpu,
        size,
        q as u64 & size_mask(size),
        r as u64 & size_mask(size),
    );
    div_flags(cpu);
    Ok(())
}

/// Flags after DIV/IDIV: all six are undefined in the SDM. The host keeps CF and OF, sets AF
/// and clears SF, ZF and PF.
#[inline(always)]
fn div_flags(cpu: &mut Cpu) {
    let (cf, of) = (cpu.flags.cf(), cpu.flags.of());
    cpu.flags.set_arith(cf, false, true, false, false, of);
}
