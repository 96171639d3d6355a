//! Two-operand arithmetic and logic (ADD ADC SUB SBB AND OR XOR CMP TEST) and the one-operand
//! INC DEC NEG NOT, all sizes and forms. Flags are recorded lazily.

use super::Handler;
use crate::exception::Result;
use crate::flags::FlagOp;
use crate::operand::size_mask;
use crate::{Cpu, Exception};
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

pub(crate) const ADD: u8 = 0;
pub(crate) const OR: u8 = 1;
pub(crate) const ADC: u8 = 2;
pub(crate) const SBB: u8 = 3;
pub(crate) const AND: u8 = 4;
pub(crate) const SUB: u8 = 5;
pub(crate) const XOR: u8 = 6;
pub(crate) const CMP: u8 = 7;
pub(crate) const TEST: u8 = 8;

const INC: u8 = 0;
const DEC: u8 = 1;
const NEG: u8 = 2;
const NOT: u8 = 3;

pub fn lookup(code: Code) -> Option<Handler> {
    // The *_82 forms are invalid in 64-bit mode (the decoder never produces them), and
    // INC/DEC r16/r32 (0x40-0x4F) are REX prefixes there.
    if matches!(
        code,
        Code::Add_rm8_imm8_82
            | Code::Or_rm8_imm8_82
            | Code::Adc_rm8_imm8_82
            | Code::Sbb_rm8_imm8_82
            | Code::And_rm8_imm8_82
            | Code::Sub_rm8_imm8_82
            | Code::Xor_rm8_imm8_82
            | Code::Cmp_rm8_imm8_82
            | Code::Inc_r16
            | Code::Inc_r32
            | Code::Dec_r16
            | Code::Dec_r32
    ) {
        return None;
    }
    Some(match code.mnemonic() {
        Mnemonic::Add => binop::<ADD>,
        Mnemonic::Or => binop::<OR>,
        Mnemonic::Adc => binop::<ADC>,
        Mnemonic::Sbb => binop::<SBB>,
        Mnemonic::And => binop::<AND>,
        Mnemonic::Sub => binop::<SUB>,
        Mnemonic::Xor => binop::<XOR>,
        Mnemonic::Cmp => binop::<CMP>,
        Mnemonic::Test => binop::<TEST>,
        Mnemonic::Inc => unop::<INC>,
        Mnemonic::Dec => unop::<DEC>,
        Mnemonic::Neg => unop::<NEG>,
        Mnemonic::Not => unop::<NOT>,
        _ => return None,
    })
}

/// Applies `f` to operand 0 as a read-modify-write of `size` bytes: atomically with a LOCK
/// prefix, otherwise load then store. Returns (old, new). Nothing is written if it faults.
#[inline(always)]
pub(crate) fn rmw(
    cpu: &mut Cpu,
    i: &Instruction,
    size: u32,
    f: impl Fn(u64) -> u64,
) -> Result<(u64, u64)> {
    if i.op0_kind() == OpKind::Register {
        let r = i.op0_register();
        let old = cpu.get_reg(r);
        let new = f(old);
        cpu.set_reg(r, new);
        return Ok((old, new));
    }
    let addr = cpu.ea(i);
    if i.has_lock_prefix() {
        let old = cpu.mem.atomic_rmw(addr, size, &mut |o| Some(f(o)))?;
        return Ok((old, f(old)));
    }
    let old = cpu
        .mem
        .read_sized(addr, size)
        .map_err(|f| Exception::from(f).rmw_fault(&cpu.mem, addr, size as u64))?;
    let new = f(old);
    cpu.mem.write_sized(addr, size, new)?;
    Ok((old, new))
}

#[inline(always)]
pub(crate) fn calc<const OP: u8>(a: u64, b: u64, carry: bool) -> u64 {
    match OP {
        ADD => a.wrapping_add(b),
        OR => a | b,
        ADC => a.wrapping_add(b).wrapping_add(carry as u64),
        SBB => a.wrapping_sub(b).wrapping_sub(carry as u64),
        AND | TEST => a & b,
        SUB | CMP => a.wrapping_sub(b),
        _ => a ^ b,
    }
}

#[inline(always)]
pub(crate) fn record<const OP: u8>(cpu: &mut Cpu, size: u32, a: u64, b: u64, r: u64, carry: bool) {
    match OP {
        ADD => cpu.flags.set_lazy(FlagOp::Add, size, a, b, r),
        SUB | CMP => cpu.flags.set_lazy(FlagOp::Sub, size, a, b, r),
        ADC => cpu.flags.set_lazy_carry(FlagOp::Adc, size, a, b, r, carry),
        SBB => cpu.flags.set_lazy_carry(FlagOp::Sbb, size, a, b, r, carry),
        _ => cpu.flags.set_lazy(FlagOp::Logic, size, a, b, r),
    }
}

/// The common two-operand shape: operand 0 is a register or memory, operand 1 a register,
/// memory or (sign-extended) immediate.
fn binop<const OP: u8>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let carry = if OP == ADC || OP == SBB {
        cpu.flags.cf()
    } else {
        false
    };
    let writes = OP != CMP && OP != TEST;
    if i.op0_kind() == OpKind::Register {
        let r0 = i.op0_register();
        let a = cpu.get_reg(r0);
        let b = cpu.read_op(i, 1, size)?;
        let r = calc::<OP>(a, b, carry);
        if writes {
            cpu.set_reg(r0, r);
        }
        record::<OP>(cpu, size, a, b, r, carry);
        return Ok(());
    }
    // Operand 0 is memory, so operand 1 is a register or an immediate.
    let b = cpu.read_op(i, 1, size)? & size_mask(size);
    let addr = cpu.ea(i);
    let a = if !writes {
        cpu.mem.read_sized(addr, size)?
    } else if i.has_lock_prefix() {
        cpu.mem
            .atomic_rmw(addr, size, &mut |o| Some(calc::<OP>(o, b, carry)))?
    } else {
        let a = cpu.mem.read_sized(addr, size)?;
        cpu.mem.write_sized(addr, size, calc::<OP>(a, b, carry))?;
        a
    };
    let r = calc::<OP>(a, b, carry);
    record::<OP>(cpu, size, a, b, r, carry);
    Ok(())
}

fn unop<const OP: u8>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let (old, new) = rmw(cpu, i, size, |v| match OP {
        INC => v.wrapping_add(1),
        DEC => v.wrapping_sub(1),
        NEG => v.wrapping_neg(),
        _ => !v,
    })?;
    match OP {
        INC => cpu.flags.set_incdec(true, size, old, new),
        DEC => cpu.flags.set_incdec(false, size, old, new),
        NEG => cpu.flags.set_lazy(FlagOp::Sub, size, 0, old, new),
        _ => {}
    }
    Ok(())
}
