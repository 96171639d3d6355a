//! Data movement: full and partial register moves, non-temporal stores, masked stores, sign
//! masks, and MXCSR load/store.

use super::{load, mmx, reg_value, src, store, ud, Handler};
use crate::exception::Result;
use crate::fpstate::MXCSR_MASK;
use crate::{Cpu, Exception};
use cetbox_mem::Access;
use iced_x86::{Code, Instruction, OpKind};

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    Some(match code {
        // Whole-operand copies; destinations wider than the source are zero-extended.
        Movaps_xmm_xmmm128 | Movapd_xmm_xmmm128 | Movdqa_xmm_xmmm128 | Movaps_xmmm128_xmm
        | Movapd_xmmm128_xmm | Movdqa_xmmm128_xmm | Movntps_m128_xmm | Movntpd_m128_xmm
        | Movntdq_m128_xmm => mov_aligned,
        Movups_xmm_xmmm128 | Movupd_xmm_xmmm128 | Movdqu_xmm_xmmm128 | Movups_xmmm128_xmm
        | Movupd_xmmm128_xmm | Movdqu_xmmm128_xmm => mov_unaligned,
        Movd_xmm_rm32 | Movq_xmm_rm64 | Movd_rm32_xmm | Movq_rm64_xmm | Movd_mm_rm32
        | Movq_mm_rm64 | Movd_rm32_mm | Movq_rm64_mm | Movq_mm_mmm64 | Movq_mmm64_mm
        | Movntq_m64_mm | Movnti_m32_r32 | Movnti_m64_r64 | Movq2dq_xmm_mm | Movdq2q_mm_xmm
        | Movlps_m64_xmm | Movlpd_m64_xmm => mov_aligned,
        Movq_xmm_xmmm64 | Movq_xmmm64_xmm => movq_zx,
        Movss_xmm_xmmm32 | Movss_xmmm32_xmm => movss,
        Movsd_xmm_xmmm64 | Movsd_xmmm64_xmm => movsd,
        Movlps_xmm_m64 | Movlpd_xmm_m64 => movlp_load,
        Movhps_xmm_m64 | Movhpd_xmm_m64 => movhp_load,
        Movhps_m64_xmm | Movhpd_m64_xmm => movhp_store,
        Movhlps_xmm_xmm => movhlps,
        Movlhps_xmm_xmm => movlhps,
        Movmskps_r32_xmm | Movmskps_r64_xmm => movmskps,
        Movmskpd_r32_xmm | Movmskpd_r64_xmm => movmskpd,
        Pmovmskb_r32_mm | Pmovmskb_r64_mm | Pmovmskb_r32_xmm | Pmovmskb_r64_xmm => pmovmskb,
        Maskmovdqu_rDI_xmm_xmm | Maskmovq_rDI_mm_mm => maskmov,
        Ldmxcsr_m32 => ldmxcsr,
        Stmxcsr_m32 => stmxcsr,
        _ => return None,
    })
}

fn mov(cpu: &mut Cpu, i: &Instruction, aligned: bool) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let v = load(cpu, i, 1, aligned)?;
    store(cpu, i, 0, v, aligned)?;
    mmx::commit(cpu, m);
    Ok(())
}

fn mov_aligned(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    mov(cpu, i, true)
}

fn mov_unaligned(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    mov(cpu, i, false)
}

/// MOVQ xmm, xmm/m64 and MOVQ xmm/m64, xmm: the low quadword, zero-extended in a register.
fn movq_zx(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = load(cpu, i, 1, true)? & u64::MAX as u128;
    store(cpu, i, 0, v, true)
}

/// MOVSS/MOVSD: a register-to-register move replaces only the low lane; a load zeroes the
/// rest; a store writes only the lane.
fn mov_scalar(cpu: &mut Cpu, i: &Instruction, mask: u128) -> Result<()> {
    let v = load(cpu, i, 1, true)? & mask;
    if i.op0_kind() == OpKind::Register && i.op1_kind() == OpKind::Register {
        let d = i.op0_register();
        let old = cpu.xmm(d);
        cpu.set_xmm(d, (old & !mask) | v);
        return Ok(());
    }
    store(cpu, i, 0, v, true)
}

fn movss(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    mov_scalar(cpu, i, u32::MAX as u128)
}

fn movsd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    mov_scalar(cpu, i, u64::MAX as u128)
}

const LO: u128 = u64::MAX as u128;
const HI: u128 = !LO;

fn movlp_load(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = src(cpu, i, 1)?;
    let d = i.op0_register();
    cpu.set_xmm(d, (cpu.xmm(d) & HI) | (v & LO));
    Ok(())
}

fn movhp_load(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = src(cpu, i, 1)?;
    let d = i.op0_register();
    cpu.set_xmm(d, (cpu.xmm(d) & LO) | (v << 64));
    Ok(())
}

fn movhp_store(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.xmm(i.op1_register()) >> 64;
    store(cpu, i, 0, v, true)
}

fn movhlps(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let s = cpu.xmm(i.op1_register());
    let d = i.op0_register();
    cpu.set_xmm(d, (cpu.xmm(d) & HI) | (s >> 64));
    Ok(())
}

fn movlhps(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let s = cpu.xmm(i.op1_register());
    let d = i.op0_register();
    cpu.set_xmm(d, (cpu.xmm(d) & LO) | (s << 64));
    Ok(())
}

/// Gathers the top bit of each `lane`-byte lane of `v` (`width` bytes) into an integer.
pub(crate) fn sign_mask(v: u128, width: usize, lane: usize) -> u64 {
    let mut m = 0u64;
    for k in 0..width / lane {
        let bit = (v >> ((k + 1) * lane * 8 - 1)) & 1;
        m |= (bit as u64) << k;
    }
    m
}

fn movmskps(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.xmm(i.op1_register());
    cpu.set_reg(i.op0_register(), sign_mask(v, 16, 4));
    Ok(())
}

fn movmskpd(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.xmm(i.op1_register());
    cpu.set_reg(i.op0_register(), sign_mask(v, 16, 8));
    Ok(())
}

fn pmovmskb(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let s = i.op1_register();
    let width = if m { 8 } else { 16 };
    let v = reg_value(cpu, s);
    cpu.set_reg(i.op0_register(), sign_mask(v, width, 1));
    mmx::commit(cpu, m);
    Ok(())
}

/// MASKMOVDQU/MASKMOVQ: stores the bytes of the first source whose mask byte has its top bit
/// set, at DS:rDI. Every selected byte is checked before any is written, so a fault leaves
/// memory untouched; with an all-zero mask nothing is accessed.
fn maskmov(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let m = mmx::check(cpu, i)?;
    let width = if m { 8 } else { 16 };
    let data = reg_value(cpu, i.op1_register());
    let mask = reg_value(cpu, i.op2_register());
    let mut addr = match i.op0_kind() {
        OpKind::MemorySegRDI => cpu.gpr[7],
        OpKind::MemorySegEDI => cpu.gpr[7] & 0xffff_ffff,
        _ => return Err(ud()),
    };
    addr = match i.memory_segment() {
        iced_x86::Register::FS => addr.wrapping_add(cpu.fs_base),
        iced_x86::Register::GS => addr.wrapping_add(cpu.gs_base),
        _ => addr,
    };
    let selected = |k: usize| (mask >> (k * 8 + 7)) & 1 != 0;
    for k in (0..width).filter(|&k| selected(k)) {
        cpu.mem
            .check(addr.wrapping_add(k as u64), 1, Access::Write)?;
    }
    for k in (0..width).filter(|&k| selected(k)) {
        cpu.mem
            .write_u8(addr.wrapping_add(k as u64), (data >> (k * 8)) as u8)?;
    }
    mmx::commit(cpu, m);
    Ok(())
}

fn ldmxcsr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let v = cpu.mem.read_u32(cpu.ea(i))?;
    if v & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection);
    }
    cpu.sse.mxcsr = v;
    Ok(())
}

fn stmxcsr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    cpu.mem.write_u32(cpu.ea(i), cpu.sse.mxcsr)?;
    Ok(())
}
