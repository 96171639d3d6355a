//! Near branches: JMP, Jcc, LOOP/JRCXZ, CALL, RET, and the far returns user code can reach.
//! CALL and RET drive the shadow stack when it is enabled (Intel SDM Vol. 2A CALL, Vol. 2B RET).

use super::Handler;
use crate::exception::Result;
use crate::{is_canonical, CpCode, Cpu, Exception};
use cetbox_mem::Access;
use iced_x86::{Code, Instruction};

pub fn lookup(code: Code) -> Option<Handler> {
    Some(match code {
        Code::Jmp_rel8_64 | Code::Jmp_rel32_64 => jmp_rel,
        Code::Jmp_rm64 => jmp_indirect,
        Code::Call_rel32_64 => call_rel,
        Code::Call_rm64 => call_indirect,
        Code::Retnq => ret,
        Code::Retnq_imm16 => ret,
        Code::Loop_rel8_64_RCX | Code::Loop_rel8_64_ECX => loop_,
        Code::Loope_rel8_64_RCX | Code::Loope_rel8_64_ECX => loop_,
        Code::Loopne_rel8_64_RCX | Code::Loopne_rel8_64_ECX => loop_,
        Code::Jrcxz_rel8_64 | Code::Jecxz_rel8_64 => jrcxz,
        Code::Iretq | Code::Iretd => iret,
        Code::Retfq | Code::Retfq_imm16 | Code::Retfd | Code::Retfd_imm16 => retf,
        c if c.is_jcc_short_or_near() => jcc,
        _ => return None,
    })
}

fn jmp_rel(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    cpu.rip = i.near_branch64();
    Ok(())
}

fn jcc(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if cpu.flags.cond(i.condition_code()) {
        cpu.rip = i.near_branch64();
    }
    Ok(())
}

fn jmp_indirect(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let target = cpu.read_op(i, 0, 8)?;
    if !is_canonical(target) {
        return Err(Exception::GeneralProtection);
    }
    cpu.rip = target;
    Ok(())
}

/// The common part of CALL (Intel SDM Vol. 2A, CALL): checks everything, then commits.
#[inline(always)]
pub(crate) fn do_call(cpu: &mut Cpu, target: u64, shadow: bool) -> Result<()> {
    let ret = cpu.rip;
    let sp = cpu.gpr[4].wrapping_sub(8);
    let shadow = shadow && cpu.cet.shstk_enabled();
    if !shadow {
        if !is_canonical(target) {
            return Err(Exception::GeneralProtection);
        }
        cpu.mem.write_u64(sp, ret)?;
        cpu.gpr[4] = sp;
        cpu.rip = target;
        return Ok(());
    }
    // Fault priority: normal push, canonical target, shadow push; nothing is written unless
    // every check passes.
    cpu.mem.check(sp, 8, Access::Write)?;
    if !is_canonical(target) {
        return Err(Exception::GeneralProtection);
    }
    let ssp = cpu.cet.ssp.wrapping_sub(8);
    if !is_canonical(ssp) {
        return Err(Exception::GeneralProtection);
    }
    cpu.mem.check(ssp, 8, Access::ShadowWrite)?;
    cpu.mem.write_u64(sp, ret)?;
    cpu.mem.shadow_write(ssp, 8, ret)?;
    cpu.gpr[4] = sp;
    cpu.cet.ssp = ssp;
    cpu.rip = target;
    Ok(())
}

fn call_rel(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let target = i.near_branch64();
    // `call 1f; 1: pop reg` (displacement 0) never touches the shadow stack (Intel SDM Vol. 2A,
    // CALL).
    do_call(cpu, target, target != i.next_ip())
}

fn call_indirect(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let target = cpu.read_op(i, 0, 8)?;
    do_call(cpu, target, true)
}

fn ret(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let imm = if i.code() == Code::Retnq_imm16 {
        i.immediate16() as u64
    } else {
        0
    };
    do_ret(cpu, imm)
}

/// Near RET, releasing `imm` more bytes of stack (Intel SDM Vol. 2B, RET).
#[inline(always)]
pub(crate) fn do_ret(cpu: &mut Cpu, imm: u64) -> Result<()> {
    let sp = cpu.gpr[4];
    let target = cpu.mem.read_u64(sp)?;
    let shadow = cpu.cet.shstk_enabled();
    if shadow {
        let ssp = cpu.cet.ssp;
        if !is_canonical(ssp) {
            return Err(Exception::GeneralProtection);
        }
        let expected = cpu.mem.shadow_read(ssp, 8)?;
        if expected != target {
            return Err(Exception::ControlProtection(CpCode::NearRet));
        }
    }
    if !is_canonical(target) {
        return Err(Exception::GeneralProtection);
    }
    cpu.gpr[4] = sp.wrapping_add(8).wrapping_add(imm);
    if shadow {
        cpu.cet.ssp = cpu.cet.ssp.wrapping_add(8);
    }
    cpu.rip = target;
    Ok(())
}

fn count_reg(cpu: &Cpu, i: &Instruction) -> (u64, u64) {
    let ecx = matches!(
        i.code(),
        Code::Loop_rel8_64_ECX
            | Code::Loope_rel8_64_ECX
            | Code::Loopne_rel8_64_ECX
            | Code::Jecxz_rel8_64
    );
    let mask = if ecx { 0xffff_ffff } else { u64::MAX };
    (cpu.gpr[1] & mask, mask)
}

fn loop_(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let (c, mask) = count_reg(cpu, i);
    let c = c.wrapping_sub(1) & mask;
    cpu.gpr[1] = c; // masked above: a 32-bit count zero-extends RCX
    let take = c != 0
        && match i.code() {
            Code::Loope_rel8_64_RCX | Code::Loope_rel8_64_ECX => cpu.flags.zf(),
            Code::Loopne_rel8_64_RCX | Code::Loopne_rel8_64_ECX => !cpu.flags.zf(),
            _ => true,
        };
    if take {
        cpu.rip = i.near_branch64();
    }
    Ok(())
}

fn jrcxz(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if count_reg(cpu, i).0 == 0 {
        cpu.rip = i.near_branch64();
    }
    Ok(())
}

const USER_CS: u64 = 0x33;

/// IRETQ to the same privilege level. With shadow stacks enabled the CPU also pops and checks a
/// CS/LIP/SSP frame (Intel SDM Vol. 2A, IRET), which no near CALL ever pushed: #CP(2) unless
/// it matches.
fn iret(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if i.code() != Code::Iretq {
        return Err(Exception::GeneralProtection);
    }
    let sp = cpu.gpr[4];
    let rip = cpu.mem.read_u64(sp)?;
    let cs = cpu.mem.read_u64(sp.wrapping_add(8))? & 0xffff;
    let rflags = cpu.mem.read_u64(sp.wrapping_add(16))?;
    let rsp = cpu.mem.read_u64(sp.wrapping_add(24))?;
    let _ss = cpu.mem.read_u64(sp.wrapping_add(32))?;
    let new_ssp = far_return_checks(cpu, cs, rip)?;
    let keep = cpu.rflags() & !crate::flags::USER_WRITABLE;
    cpu.set_rflags((rflags & crate::flags::USER_WRITABLE) | keep);
    cpu.gpr[4] = rsp;
    cpu.rip = rip;
    if let Some(s) = new_ssp {
        cpu.cet.ssp = s;
    }
    Ok(())
}

/// Far RET to the same privilege level (64-bit operand size only).
fn retf(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if !matches!(i.code(), Code::Retfq | Code::Retfq_imm16) {
        return Err(Exception::GeneralProtection);
    }
    let sp = cpu.gpr[4];
    let rip = cpu.mem.read_u64(sp)?;
    let cs = cpu.mem.read_u64(sp.wrapping_add(8))? & 0xffff;
    let new_ssp = far_return_checks(cpu, cs, rip)?;
    let imm = if i.code() == Code::Retfq_imm16 {
        i.immediate16() as u64
    } else {
        0
    };
    cpu.gpr[4] = sp.wrapping_add(16).wrapping_add(imm);
    cpu.rip = rip;
    if let Some(s) = new_ssp {
        cpu.cet.ssp = s;
    }
    Ok(())
}

/// The checks of a same-privilege far return (IRETQ, RETFQ) once its frame is loaded: the
/// code selector, the shadow-stack frame when shadow stacks are on, and the target. Returns
/// the SSP to restore, if any.
fn far_return_checks(cpu: &Cpu, cs: u64, rip: u64) -> Result<Option<u64>> {
    if cs != USER_CS {
        return Err(Exception::GeneralProtection);
    }
    let new_ssp = if cpu.cet.shstk_enabled() {
        Some(shadow_far_return(cpu, cs, rip)?)
    } else {
        None
    };
    if !is_canonical(rip) {
        return Err(Exception::GeneralProtection);
    }
    Ok(new_ssp)
}

/// The shadow-stack half of a same-privilege far return (Intel SDM Vol. 2B RET, Vol. 2A IRET):
/// returns the SSP to restore.
fn shadow_far_return(cpu: &Cpu, cs: u64, rip: u64) -> Result<u64> {
    // SSP is guest-influenced (INCSSP moves it up to 2040 bytes past the last check): the
    // frame addresses wrap, as the hardware's do, and the loads fault.
    let ssp = cpu.cet.ssp;
    if ssp & 7 != 0 {
        return Err(Exception::ControlProtection(CpCode::FarRetIret));
    }
    let saved_cs = cpu.mem.shadow_read(ssp.wrapping_add(16), 8)?;
    let saved_lip = cpu.mem.shadow_read(ssp.wrapping_add(8), 8)?;
    let prev = cpu.mem.shadow_read(ssp, 8)?;
    if saved_cs != cs || saved_lip != rip || prev & 3 != 0 {
        return Err(Exception::ControlProtection(CpCode::FarRetIret));
    }
    if !is_canonical(prev) {
        return Err(Exception::GeneralProtection);
    }
    Ok(prev)
}
