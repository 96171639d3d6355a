//! CMPXCHG, CMPXCHG8B and XADD, with and without LOCK. (CMPXCHG16B is outside the CPU model:
//! no CX16.)

use super::Handler;
use crate::exception::Result;
use crate::flags::{FlagOp, ZF};
use crate::operand::size_mask;
use crate::Cpu;
use iced_x86::{Code, Instruction, OpKind, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Cmpxchg_rm8_r8
        | Code::Cmpxchg_rm16_r16
        | Code::Cmpxchg_rm32_r32
        | Code::Cmpxchg_rm64_r64 => cmpxchg,
        Code::Cmpxchg8b_m64 => cmpxchg8b,
        Code::Xadd_rm8_r8 | Code::Xadd_rm16_r16 | Code::Xadd_rm32_r32 | Code::Xadd_rm64_r64 => xadd,
        _ => return None,
    })
}

/// The accumulator of the operand size.
fn accumulator(size: u32) -> Register {
    match size {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    }
}

/// CMPXCHG r/m, r: compares the accumulator with the destination (flags as CMP). Equal: the
/// destination gets the source. Not equal: the accumulator gets the destination, and the
/// destination is written back with its own value (memory, unlocked; see below for registers).
fn cmpxchg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let acc_reg = accumulator(size);
    let acc = cpu.get_reg(acc_reg);
    let src = cpu.get_reg(i.op1_register());
    let old;
    if i.op0_kind() == OpKind::Register {
        let r = i.op0_register();
        old = cpu.get_reg(r);
        if old == acc {
            cpu.set_reg(r, src);
        } else {
            // The SDM writes the destination back on failure, which would zero-extend a
            // 32-bit register; the host leaves a register destination untouched.
            cpu.set_reg(acc_reg, old);
        }
    } else {
        let addr = cpu.ea(i);
        if i.has_lock_prefix() {
            old = cpu
                .mem
                .atomic_rmw(addr, size, &mut |o| (o == acc).then_some(src))?;
        } else {
            old = cpu.read_rmw(addr, size)?;
            let new = if old == acc { src } else { old };
            cpu.mem.write_sized(addr, size, new)?;
        }
        if old != acc {
            cpu.set_reg(acc_reg, old);
        }
    }
    cpu.flags.set_lazy(
        FlagOp::Sub,
        size,
        acc,
        old,
        acc.wrapping_sub(old) & size_mask(size),
    );
    Ok(())
}

/// CMPXCHG8B m64: compares EDX:EAX with the memory quadword; equal stores ECX:EBX, otherwise
/// loads it into EDX:EAX. Only ZF changes.
fn cmpxchg8b(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let expect = ((cpu.gpr[2] & 0xffff_ffff) << 32) | (cpu.gpr[0] & 0xffff_ffff);
    let new = ((cpu.gpr[1] & 0xffff_ffff) << 32) | (cpu.gpr[3] & 0xffff_ffff);
    let addr = cpu.ea(i);
    let old = if i.has_lock_prefix() {
        cpu.mem
            .atomic_rmw(addr, 8, &mut |o| (o == expect).then_some(new))?
    } else {
        let old = cpu.read_rmw(addr, 8)?;
        cpu.mem
            .write_u64(addr, if old == expect { new } else { old })?;
        old
    };
    let eq = old == expect;
    if !eq {
        cpu.gpr[0] = old & 0xffff_ffff;
        cpu.gpr[2] = old >> 32;
    }
    cpu.flags.set_bits(ZF, eq);
    Ok(())
}

/// XADD r/m, r: the register gets the old destination, the destination the sum (flags as ADD).
fn xadd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    let r1 = i.op1_register();
    let src = cpu.get_reg(r1);
    let old;
    if i.op0_kind() == OpKind::Register {
        let r0 = i.op0_register();
        old = cpu.get_reg(r0);
        cpu.set_reg(r1, old);
        cpu.set_reg(r0, old.wrapping_add(src));
    } else {
        let addr = cpu.ea(i);
        if i.has_lock_prefix() {
            old = cpu
                .mem
                .atomic_rmw(addr, size, &mut |o| Some(o.wrapping_add(src)))?;
        } else {
            old = cpu.read_rmw(addr, size)?;
            cpu.mem.write_sized(addr, size, old.wrapping_add(src))?;
        }
        cpu.set_reg(r1, old);
    }
    let res = old.wrapping_add(src) & size_mask(size);
    cpu.flags.set_lazy(FlagOp::Add, size, old, src, res);
    Ok(())
}
