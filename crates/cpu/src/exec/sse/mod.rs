//! SSE, SSE2 and MMX: the baseline x86-64 vector instructions.
//!
//! Integer and data-movement instructions are plain Rust; floating-point arithmetic runs on
//! the host under the guest's MXCSR (`hostfp`), so rounding, flags and NaN rules are the
//! hardware's own. MMX registers alias the low 64 bits of the x87 registers (`mmx`).
//!
//! Shared operand rules: a 16-byte memory operand must be 16-byte aligned (#GP, reported as
//! `Exception::Alignment`) except for the explicitly unaligned moves; alignment is checked
//! before the access, as the hardware does; nothing is committed before every load succeeded.

use super::Handler;
use crate::exception::Result;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction, OpKind, Register};

mod convert;
pub(crate) mod float;
pub mod hostfp;
mod int;
mod lanewise;
mod mmx;
mod moves;
mod shuffle;
mod ssse3_mmx;
mod unbounded;

pub fn lookup(code: Code) -> Option<Handler> {
    moves::lookup(code)
        .or_else(|| int::lookup(code))
        .or_else(|| shuffle::lookup(code))
        .or_else(|| float::lookup(code))
        .or_else(|| convert::lookup(code))
        .or_else(|| mmx::lookup(code))
        .or_else(|| ssse3_mmx::lookup(code))
}

pub(crate) fn ud() -> Exception {
    Exception::InvalidOpcode(UdReason::Architectural)
}

#[inline(always)]
pub(crate) fn is_xmm(r: Register) -> bool {
    let n = r as u32;
    n >= Register::XMM0 as u32 && n <= Register::XMM15 as u32
}

/// Reads a register operand of any kind this family uses: XMM, MMX or general-purpose.
#[inline(always)]
pub(crate) fn reg_value(cpu: &Cpu, r: Register) -> u128 {
    if is_xmm(r) {
        cpu.xmm(r)
    } else if mmx::is_mm(r) {
        mmx::read(cpu, r) as u128
    } else {
        cpu.get_reg(r) as u128
    }
}

/// Writes a register operand: XMM in full, MMX (low 64 bits), or a general-purpose register
/// with the usual x86 width rules.
#[inline(always)]
pub(crate) fn set_reg_value(cpu: &mut Cpu, r: Register, v: u128) {
    if is_xmm(r) {
        cpu.set_xmm(r, v)
    } else if mmx::is_mm(r) {
        mmx::write(cpu, r, v as u64)
    } else {
        cpu.set_reg(r, v as u64)
    }
}

/// Reads `size` bytes of guest memory at `addr`, zero-extended.
#[inline(always)]
pub(crate) fn read_mem(cpu: &Cpu, addr: u64, size: usize, aligned: bool) -> Result<u128> {
    Ok(match size {
        16 => {
            if aligned && addr & 15 != 0 {
                return Err(Exception::Alignment);
            }
            cpu.mem.read_u128(addr)?
        }
        8 => cpu.mem.read_u64(addr)? as u128,
        4 => cpu.mem.read_u32(addr)? as u128,
        2 => cpu.mem.read_u16(addr)? as u128,
        1 => cpu.mem.read_u8(addr)? as u128,
        _ => return Err(ud()),
    })
}

/// Writes the low `size` bytes of `v` to guest memory at `addr`.
#[inline(always)]
pub(crate) fn write_mem(cpu: &Cpu, addr: u64, size: usize, v: u128, aligned: bool) -> Result<()> {
    match size {
        16 => {
            if aligned && addr & 15 != 0 {
                return Err(Exception::Alignment);
            }
            cpu.mem.write_u128(addr, v)?
        }
        8 => cpu.mem.write_u64(addr, v as u64)?,
        4 => cpu.mem.write_u32(addr, v as u32)?,
        2 => cpu.mem.write_u16(addr, v as u16)?,
        1 => cpu.mem.write_u8(addr, v as u8)?,
        _ => return Err(ud()),
    }
    Ok(())
}

/// Reads operand `n`: a register, memory of the instruction's memory size (16-byte operands
/// alignment-checked when `aligned`), or an immediate.
#[inline(always)]
pub(crate) fn load(cpu: &Cpu, i: &Instruction, n: u32, aligned: bool) -> Result<u128> {
    match i.op_kind(n) {
        OpKind::Register => Ok(reg_value(cpu, i.op_register(n))),
        OpKind::Memory => read_mem(cpu, cpu.ea(i), i.memory_size().size(), aligned),
        _ => Ok(i.immediate(n) as u128),
    }
}

/// Reads source operand `n` with the default legacy-SSE alignment rule.
#[inline(always)]
pub(crate) fn src(cpu: &Cpu, i: &Instruction, n: u32) -> Result<u128> {
    load(cpu, i, n, true)
}

/// Writes operand `n`: a register, or memory of the instruction's memory size.
#[inline(always)]
pub(crate) fn store(cpu: &mut Cpu, i: &Instruction, n: u32, v: u128, aligned: bool) -> Result<()> {
    match i.op_kind(n) {
        OpKind::Register => {
            set_reg_value(cpu, i.op_register(n), v);
            Ok(())
        }
        OpKind::Memory => write_mem(cpu, cpu.ea(i), i.memory_size().size(), v, aligned),
        _ => Err(ud()),
    }
}

/// The immediate byte of an instruction (its last operand).
#[inline(always)]
pub(crate) fn imm8(i: &Instruction) -> u8 {
    i.immediate8()
}
