//! MMX register file and the x87/MMX state transition.
//!
//! MMn is the low 64 bits of physical x87 register n. Every MMX instruction (EMMS excepted),
//! and every SSE instruction with an MMX register operand, first raises #MF if an unmasked
//! x87 exception is pending, and on completion sets TOP to 0 and tags all registers valid.
//! A write to MMn also sets bits 79:64 of the x87 register to ones.

use super::Handler;
use crate::exception::Result;
use crate::{Cpu, Exception};
use iced_x86::{Code, Instruction, OpKind, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Emms => emms,
        _ => return None,
    })
}

#[inline(always)]
pub(crate) fn is_mm(r: Register) -> bool {
    let n = r as u32;
    n >= Register::MM0 as u32 && n <= Register::MM7 as u32
}

#[inline(always)]
fn index(r: Register) -> usize {
    (r as u32).wrapping_sub(Register::MM0 as u32) as usize & 7
}

#[inline(always)]
pub(crate) fn read(cpu: &Cpu, r: Register) -> u64 {
    cpu.x87.st[index(r)] as u64
}

#[inline(always)]
pub(crate) fn write(cpu: &mut Cpu, r: Register, v: u64) {
    cpu.x87.st[index(r)] = (0xffffu128 << 64) | v as u128;
}

/// Whether an unmasked x87 exception is pending (FSW flags not covered by FCW masks).
#[inline(always)]
fn x87_pending(cpu: &Cpu) -> bool {
    cpu.x87.fsw & !cpu.x87.fcw & 0x3f != 0
}

/// Whether the instruction names an MMX register (so it performs the MMX transition); raises
/// #MF first if an x87 exception is pending.
#[inline(always)]
pub(crate) fn check(cpu: &Cpu, i: &Instruction) -> Result<bool> {
    let uses =
        (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Register && is_mm(i.op_register(n)));
    if uses && x87_pending(cpu) {
        return Err(Exception::X87Fault);
    }
    Ok(uses)
}

/// Completes the x87-to-MMX transition once the instruction can no longer fault.
#[inline(always)]
pub(crate) fn commit(cpu: &mut Cpu, mmx: bool) {
    if mmx {
        cpu.x87.top = 0;
        cpu.x87.ftw = 0;
    }
}

/// EMMS: marks every x87 register empty so x87 code can follow MMX code.
fn emms(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    if x87_pending(cpu) {
        return Err(Exception::X87Fault);
    }
    cpu.x87.ftw = 0xffff;
    // The reference host (AMD) also resets TOP, as every MMX instruction does; the differential
    // test holds us to it.
    cpu.x87.top = 0;
    Ok(())
}
