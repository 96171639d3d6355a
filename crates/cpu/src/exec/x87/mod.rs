//! The x87 FPU with true 80-bit precision.
//!
//! Exceptions follow the hardware's deferred model: an unmasked exception sets its flag plus
//! ES and B in FSW, and the *next waiting* x87 instruction (or FWAIT) raises #MF
//! (`Exception::X87Fault`) before doing anything, with RIP at that instruction. The
//! control instructions with no wait (FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE) and
//! FLDENV/FRSTOR/FXSAVE/FXRSTOR never fault on a pending exception.
//!
//! Masked exceptions produce the IEEE/x87 default results. With an unmasked IE, DE or ZE the
//! destination is not written; with an unmasked OE/UE the result is stored with the x87
//! exponent bias adjustment (except stores to memory, which are suppressed).
//!
//! FOP is not tracked (always 0); FIP/FDP hold the address of the last non-control x87
//! instruction and of its memory operand; FCS/FDS are stored as 0.

mod env;
mod host;
mod ops;
pub mod soft;

use super::Handler;
use crate::exception::Result;
use crate::fpstate::classify;
use crate::{Cpu, Exception};
use iced_x86::{Code, Instruction, Register};
use soft::{Env, C1, IE, SF};

pub fn lookup(code: Code) -> Option<Handler> {
    ops::lookup(code).or_else(|| env::lookup(code))
}

const ES: u16 = 0x80;
const BUSY: u16 = 0x8000;
/// FSW bits an instruction's outcome may carry: exceptions, SF and the condition codes.
const CC_MASK: u16 = soft::C0 | soft::C1 | soft::C2 | soft::C3;

/// The physical register holding ST(i).
#[inline(always)]
fn phys(cpu: &Cpu, i: usize) -> usize {
    (cpu.x87.top as usize + i) & 7
}

#[inline(always)]
fn is_empty(cpu: &Cpu, i: usize) -> bool {
    (cpu.x87.ftw >> (2 * phys(cpu, i))) & 3 == 3
}

#[inline(always)]
fn st(cpu: &Cpu, i: usize) -> u128 {
    cpu.x87.st[phys(cpu, i)] & ((1u128 << 80) - 1)
}

#[inline(always)]
fn set_st(cpu: &mut Cpu, i: usize, v: u128) {
    let p = phys(cpu, i);
    cpu.x87.st[p] = v & ((1u128 << 80) - 1);
    let tag = classify(v) as u16;
    cpu.x87.ftw = (cpu.x87.ftw & !(3 << (2 * p))) | (tag << (2 * p));
}

#[inline(always)]
fn free(cpu: &mut Cpu, i: usize) {
    let p = phys(cpu, i);
    cpu.x87.ftw |= 3 << (2 * p);
}

#[inline(always)]
fn pop(cpu: &mut Cpu) {
    free(cpu, 0);
    cpu.x87.top = cpu.x87.top.wrapping_add(1) & 7;
}

#[inline(always)]
fn push(cpu: &mut Cpu, v: u128) {
    cpu.x87.top = cpu.x87.top.wrapping_sub(1) & 7;
    set_st(cpu, 0, v);
}

#[inline(always)]
fn fenv(cpu: &Cpu) -> Env {
    Env::from_fcw(cpu.x87.fcw)
}

#[inline(always)]
fn masked(cpu: &Cpu, flag: u16) -> bool {
    cpu.x87.fcw & flag != 0
}

/// Raises a pending unmasked exception at a waiting instruction.
#[inline(always)]
fn wait_check(cpu: &Cpu) -> Result<()> {
    if cpu.x87.fsw & !cpu.x87.fcw & 0x3f != 0 {
        return Err(Exception::X87Fault);
    }
    Ok(())
}

/// Records the instruction (and memory operand) pointers as a non-control instruction does.
#[inline(always)]
fn note(cpu: &mut Cpu, i: &Instruction, mem: bool) {
    cpu.x87.fip = i.ip();
    if mem {
        cpu.x87.fdp = cpu.ea(i);
    }
}

/// Accumulates an outcome into FSW: exception flags are sticky, the condition codes in
/// `cc_mask` are replaced by those in `flags`, and ES/B follow the unmasked exceptions.
#[inline(always)]
fn report(cpu: &mut Cpu, flags: u16, cc_mask: u16) {
    let x = &mut cpu.x87;
    x.fsw = (x.fsw & !cc_mask) | (flags & cc_mask) | (flags & 0x7f);
    update_es(cpu);
}

fn update_es(cpu: &mut Cpu) {
    let x = &mut cpu.x87;
    if x.fsw & !x.fcw & 0x3f != 0 {
        x.fsw |= ES | BUSY;
    } else {
        x.fsw &= !(ES | BUSY);
    }
}

/// Stack underflow (reading an empty register): IE and SF with C1 = 0. Returns whether the
/// masked response (store the indefinite) applies.
fn underflow(cpu: &mut Cpu) -> bool {
    report(cpu, IE | SF, C1);
    masked(cpu, IE)
}

/// Stack overflow (pushing onto a full stack): IE and SF with C1 = 1.
fn overflow(cpu: &mut Cpu) -> bool {
    report(cpu, IE | SF | C1, C1);
    masked(cpu, IE)
}

/// Pushes with the overflow check: a full stack gets the indefinite (when IE is masked).
fn push_checked(cpu: &mut Cpu, v: u128, flags: u16) {
    if !is_empty(cpu, 7) {
        if overflow(cpu) {
            push(cpu, soft::INDEFINITE);
        }
        return;
    }
    // An unmasked DE does not stop the load on the reference host; an unmasked IE does.
    if flags & !cpu.x87.fcw & IE != 0 {
        report(cpu, flags, C1);
        return;
    }
    push(cpu, v);
    report(cpu, flags, C1);
}

/// ST(i) index of a register operand.
#[inline(always)]
fn sti(i: &Instruction, n: u32) -> usize {
    (i.op_register(n) as u32).wrapping_sub(Register::ST0 as u32) as usize & 7
}

/// Reads an 80-bit value from memory.
fn read80(cpu: &Cpu, addr: u64) -> Result<u128> {
    let mut b = [0u8; 16];
    cpu.mem.read_bytes(addr, &mut b[..10])?;
    Ok(u128::from_le_bytes(b))
}

fn write80(cpu: &Cpu, addr: u64, v: u128) -> Result<()> {
    let b = v.to_le_bytes();
    cpu.mem.write_bytes(addr, &b[..10])?;
    Ok(())
}
