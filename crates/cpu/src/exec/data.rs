//! Data movement and flag-register instructions: MOV (all forms), MOVZX MOVSX MOVSXD, LEA, XCHG,
//! CMOVcc, SETcc, PUSH/POP, PUSHF/POPF, LAHF/SAHF, the sign extensions (CBW ... CQO), the flag
//! bit instructions (CLC STC CMC CLD STD), ENTER, LEAVE and XLAT.

use super::Handler;
use crate::exception::Result;
use crate::flags::{CF, DF, USER_WRITABLE};
use crate::operand::{sign_extend, size_mask};
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction, OpKind, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    Some(match code {
        Mov_rm8_r8 | Mov_rm16_r16 | Mov_rm32_r32 | Mov_rm64_r64 | Mov_r8_rm8 | Mov_r16_rm16
        | Mov_r32_rm32 | Mov_r64_rm64 | Mov_AL_moffs8 | Mov_AX_moffs16 | Mov_EAX_moffs32
        | Mov_RAX_moffs64 | Mov_moffs8_AL | Mov_moffs16_AX | Mov_moffs32_EAX | Mov_moffs64_RAX
        | Mov_r8_imm8 | Mov_r16_imm16 | Mov_r32_imm32 | Mov_r64_imm64 | Mov_rm8_imm8
        | Mov_rm16_imm16 | Mov_rm32_imm32 | Mov_rm64_imm32 => mov,
        Mov_rm16_Sreg | Mov_r32m16_Sreg | Mov_r64m16_Sreg => mov_from_sreg,
        Mov_Sreg_rm16 | Mov_Sreg_r32m16 | Mov_Sreg_r64m16 => mov_to_sreg,
        Movzx_r16_rm8 | Movzx_r32_rm8 | Movzx_r64_rm8 | Movzx_r16_rm16 | Movzx_r32_rm16
        | Movzx_r64_rm16 => movzx,
        Movsx_r16_rm8 | Movsx_r32_rm8 | Movsx_r64_rm8 | Movsx_r16_rm16 | Movsx_r32_rm16
        | Movsx_r64_rm16 | Movsxd_r64_rm32 => movsx,
        // Without REX.W, MOVSXD is an ordinary move of the operand size.
        Movsxd_r16_rm16 | Movsxd_r32_rm32 => movzx,
        Lea_r16_m | Lea_r32_m | Lea_r64_m => lea,
        Xchg_rm8_r8 | Xchg_rm16_r16 | Xchg_rm32_r32 | Xchg_rm64_r64 | Xchg_r16_AX
        | Xchg_r32_EAX | Xchg_r64_RAX => xchg,
        Push_r64 | Push_rm64 | Pushq_imm32 | Pushq_imm8 => push64,
        Push_r16 | Push_rm16 | Push_imm16 | Pushw_imm8 => push16,
        Pushq_FS | Pushq_GS => push_sreg,
        Pop_r64 | Pop_rm64 => pop64,
        Pop_r16 | Pop_rm16 => pop16,
        Popq_FS | Popq_GS => pop_sreg,
        Pushfq => pushfq,
        Pushfw => pushfw,
        Popfq => popfq,
        Popfw => popfw,
        Lahf => lahf,
        Sahf => sahf,
        Cbw => cbw,
        Cwde => cwde,
        Cdqe => cdqe,
        Cwd => cwd,
        Cdq => cdq,
        Cqo => cqo,
        Clc => clc,
        Stc => stc,
        Cmc => cmc,
        Cld => cld,
        Std => std_,
        Enterq_imm16_imm8 => enter,
        Leaveq => leave,
        Leavew => leavew,
        Xlat_m8 => xlat,
        c if is_setcc(c) => setcc,
        c if is_cmovcc(c) => cmovcc,
        _ => return None,
    })
}

fn is_setcc(c: Code) -> bool {
    (Code::Seto_rm8 as u32..=Code::Setg_rm8 as u32).contains(&(c as u32))
}

fn is_cmovcc(c: Code) -> bool {
    (Code::Cmovo_r16_rm16 as u32..=Code::Cmovg_r64_rm64 as u32).contains(&(c as u32))
}

fn mov(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if i.op0_kind() == OpKind::Register {
        let r = i.op0_register();
        let v = match i.op1_kind() {
            OpKind::Register => cpu.get_reg(i.op1_register()),
            OpKind::Memory => cpu.mem.read_sized(cpu.ea(i), crate::operand::reg_size(r))?,
            _ => i.immediate(1),
        };
        cpu.set_reg(r, v);
        return Ok(());
    }
    let size = cpu.op_size(i, 0);
    let v = cpu.read_op(i, 1, size)?;
    cpu.mem.write_sized(cpu.ea(i), size, v)?;
    Ok(())
}

fn mov_from_sreg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.segment_selector(i.op1_register());
    if i.op0_kind() == OpKind::Memory {
        cpu.mem.write_u16(cpu.ea(i), v as u16)?;
    } else {
        // A register destination gets the selector zero-extended to the operand size.
        let r = i.op0_register();
        cpu.set_reg(r, v);
    }
    Ok(())
}

/// Loading a segment register: cetbox has no descriptor tables, so only reloading the
/// selector already there succeeds; anything else is #GP, as for a bad selector.
fn mov_to_sreg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let s = i.op0_register();
    if s == Register::CS {
        return Err(Exception::InvalidOpcode(UdReason::Architectural));
    }
    let v = cpu.read_op(i, 1, 2)? & 0xffff;
    load_sreg(cpu, s, v)
}

fn load_sreg(cpu: &Cpu, s: Register, v: u64) -> Result<()> {
    if v != cpu.segment_selector(s) {
        return Err(Exception::GeneralProtection);
    }
    Ok(())
}

fn movzx(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 1);
    let v = cpu.read_op(i, 1, size)?;
    cpu.set_reg(i.op0_register(), v);
    Ok(())
}

fn movsx(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 1);
    let v = sign_extend(cpu.read_op(i, 1, size)?, size);
    cpu.set_reg(i.op0_register(), v);
    Ok(())
}

fn lea(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let a = cpu.offset(i);
    cpu.set_reg(i.op0_register(), a);
    Ok(())
}

fn xchg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let size = cpu.op_size(i, 0);
    if i.op0_kind() == OpKind::Register {
        let (r0, r1) = (i.op0_register(), i.op1_register());
        let (a, b) = (cpu.get_reg(r0), cpu.get_reg(r1));
        cpu.set_reg(r0, b);
        cpu.set_reg(r1, a);
        return Ok(());
    }
    // XCHG with memory is always locked.
    let r = i.op1_register();
    let v = cpu.get_reg(r);
    let addr = cpu.ea(i);
    let old = cpu.mem.atomic_rmw(addr, size, &mut |_| Some(v))?;
    cpu.set_reg(r, old);
    Ok(())
}

fn cmovcc(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let r = i.op0_register();
    let size = crate::operand::reg_size(r);
    // The source is read (and may fault) whatever the condition.
    let v = cpu.read_op(i, 1, size)?;
    if cpu.flags.cond(i.condition_code()) {
        cpu.set_reg(r, v);
    } else if size == 4 {
        // A 32-bit destination is written (zero-extended) even when the condition is false.
        let old = cpu.get_reg(r);
        cpu.set_reg(r, old);
    }
    Ok(())
}

fn setcc(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.flags.cond(i.condition_code()) as u64;
    cpu.write_op(i, 0, 1, v)
}

fn push64(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.read_op(i, 0, 8)?;
    cpu.push64(v)
}

fn push16(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.read_op(i, 0, 2)?;
    let sp = cpu.gpr[4].wrapping_sub(2);
    cpu.mem.write_u16(sp, v as u16)?;
    cpu.gpr[4] = sp;
    Ok(())
}

fn push_sreg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.segment_selector(i.op0_register());
    cpu.push64(v)
}

fn pop_sreg(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.mem.read_u64(cpu.gpr[4])?;
    load_sreg(cpu, i.op0_register(), v & 0xffff)?;
    cpu.gpr[4] = cpu.gpr[4].wrapping_add(8);
    Ok(())
}

/// POP into a register or memory. With a memory destination, an RSP-based address is computed
/// after RSP is incremented.
fn pop_n(cpu: &mut Cpu, i: &Instruction, size: u32) -> Result<()> {
    let sp = cpu.gpr[4];
    let v = cpu.mem.read_sized(sp, size)?;
    let new_sp = sp.wrapping_add(size as u64);
    if i.op0_kind() == OpKind::Register {
        cpu.gpr[4] = new_sp;
        cpu.set_reg(i.op0_register(), v);
        return Ok(());
    }
    cpu.gpr[4] = new_sp;
    let addr = cpu.ea(i);
    if let Err(e) = cpu.mem.write_sized(addr, size, v) {
        cpu.gpr[4] = sp;
        return Err(e.into());
    }
    Ok(())
}

fn pop64(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    pop_n(cpu, i, 8)
}

fn pop16(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    pop_n(cpu, i, 2)
}

/// The flags POPF may change at CPL 3 with IOPL 0: not IF, IOPL, VM, VIF or VIP.
const POPF_MASK: u64 = USER_WRITABLE & !((1 << 19) | (1 << 20));

fn pushfq(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    // RF and VM read as 0 in the pushed image.
    let f = cpu.rflags() & !((1 << 16) | (1 << 17));
    cpu.push64(f)
}

fn pushfw(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let f = cpu.rflags() & 0xffff;
    let sp = cpu.gpr[4].wrapping_sub(2);
    cpu.mem.write_u16(sp, f as u16)?;
    cpu.gpr[4] = sp;
    Ok(())
}

fn popfq(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let v = cpu.pop64()?;
    let old = cpu.rflags();
    cpu.set_rflags((old & !POPF_MASK) | (v & POPF_MASK));
    Ok(())
}

fn popfw(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let v = cpu.mem.read_u16(cpu.gpr[4])? as u64;
    cpu.gpr[4] = cpu.gpr[4].wrapping_add(2);
    let m = POPF_MASK & 0xffff;
    let old = cpu.rflags();
    cpu.set_rflags((old & !m) | (v & m));
    Ok(())
}

/// SF ZF AF PF CF: the flags LAHF/SAHF transfer.
const AH_FLAGS: u64 = 0xd5;

fn lahf(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let f = (cpu.rflags() & AH_FLAGS) | 2;
    cpu.gpr[0] = (cpu.gpr[0] & !0xff00) | (f << 8);
    Ok(())
}

fn sahf(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let ah = (cpu.gpr[0] >> 8) & 0xff;
    let old = cpu.rflags();
    cpu.set_rflags((old & !AH_FLAGS) | (ah & AH_FLAGS));
    Ok(())
}

fn cbw(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let v = sign_extend(cpu.gpr[0], 1) & 0xffff;
    cpu.gpr[0] = (cpu.gpr[0] & !0xffff) | v;
    Ok(())
}

fn cwde(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.gpr[0] = sign_extend(cpu.gpr[0], 2) & 0xffff_ffff;
    Ok(())
}

fn cdqe(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.gpr[0] = sign_extend(cpu.gpr[0], 4);
    Ok(())
}

fn cwd(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let hi = if cpu.gpr[0] & 0x8000 != 0 { 0xffff } else { 0 };
    cpu.gpr[2] = (cpu.gpr[2] & !0xffff) | hi;
    Ok(())
}

fn cdq(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.gpr[2] = if cpu.gpr[0] & 0x8000_0000 != 0 {
        0xffff_ffff
    } else {
        0
    };
    Ok(())
}

fn cqo(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.gpr[2] = ((cpu.gpr[0] as i64) >> 63) as u64;
    Ok(())
}

fn clc(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.flags.set_bits(CF, false);
    Ok(())
}

fn stc(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.flags.set_bits(CF, true);
    Ok(())
}

fn cmc(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let c = cpu.flags.cf();
    cpu.flags.set_bits(CF, !c);
    Ok(())
}

fn cld(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.flags.bits &= !DF;
    Ok(())
}

fn std_(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    cpu.flags.bits |= DF;
    Ok(())
}

/// ENTER imm16, imm8 with a 64-bit operand size: every load is done before any store.
fn enter(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let alloc = i.immediate16() as u64;
    let level = (i.immediate8_2nd() & 31) as u64;
    let rbp = cpu.gpr[5];
    let mut vals = Vec::with_capacity(level as usize + 1);
    vals.push(rbp);
    let frame = cpu.gpr[4].wrapping_sub(8);
    if level > 0 {
        for k in 1..level {
            vals.push(cpu.mem.read_u64(rbp.wrapping_sub(8 * k))?);
        }
        vals.push(frame);
    }
    let bottom = frame.wrapping_sub(8 * (vals.len() as u64 - 1));
    for (k, _) in vals.iter().enumerate() {
        cpu.mem.check(
            frame.wrapping_sub(8 * k as u64),
            8,
            cetbox_mem::Access::Write,
        )?;
    }
    for (k, v) in vals.iter().enumerate() {
        cpu.mem.write_u64(frame.wrapping_sub(8 * k as u64), *v)?;
    }
    cpu.gpr[5] = frame;
    cpu.gpr[4] = bottom.wrapping_sub(alloc);
    Ok(())
}

fn leave(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let rbp = cpu.gpr[5];
    let v = cpu.mem.read_u64(rbp)?;
    cpu.gpr[4] = rbp.wrapping_add(8);
    cpu.gpr[5] = v;
    Ok(())
}

fn leavew(cpu: &mut Cpu, _: &Instruction) -> Result<()> {
    let rbp = cpu.gpr[5];
    let v = cpu.mem.read_u16(rbp)? as u64;
    cpu.gpr[4] = rbp.wrapping_add(2);
    cpu.gpr[5] = (cpu.gpr[5] & !0xffff) | v;
    Ok(())
}

fn xlat(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.mem.read_u8(cpu.ea(i))? as u64;
    cpu.gpr[0] = (cpu.gpr[0] & !0xff) | v;
    let _ = size_mask;
    Ok(())
}
