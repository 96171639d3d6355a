//! Specialized handlers for the instruction forms compiled code executes most.
//!
//! `select` runs once per instruction when a block is decoded: it resolves the operands into
//! `Op`'s fields (GPR numbers, an effective-address recipe, the immediate) and picks a
//! function monomorphized for the operation, operand size and operand kinds, so executing it
//! involves no decoding and no matching on operand kinds. Forms it does not cover (and any
//! operand shape it does not recognize: 32-bit addressing, LOCK, segment registers, ...) keep
//! the family handler. Every function here computes exactly what the family handler computes,
//! reusing its arithmetic and flag helpers, and keeps the precise-fault order (loads and
//! checks, then the memory write, then registers and flags).

use super::block::{Op, NOREG};
use crate::exception::Result;
use crate::exec::alu::{calc, record, ADC, CMP, SBB, TEST};
use crate::exec::shift::{compute as shift_compute, SHIFT_AF};
use crate::flags::{parity, FlagOp};
use crate::operand::sign_extend;
use crate::{is_canonical, Cpu, Exception};

/// Marks AH, CH, DH and BH in a register field: bits 8..15 of GPR (n & 15).
pub const HI: u8 = 16;

// ---------------------------------------------------------------- operand access

/// Reads a register operand of `S` bytes, zero-extended.
#[inline(always)]
pub(super) fn rd<const S: u8>(cpu: &Cpu, r: u8) -> u64 {
    let g = cpu.gpr[(r & 15) as usize];
    match S {
        1 => (g >> ((r & HI) >> 1)) & 0xff,
        2 => g & 0xffff,
        4 => g & 0xffff_ffff,
        _ => g,
    }
}

/// Writes a register operand of `S` bytes: 32-bit writes zero-extend, 8/16-bit writes merge.
#[inline(always)]
pub(super) fn wr<const S: u8>(cpu: &mut Cpu, r: u8, v: u64) {
    let g = &mut cpu.gpr[(r & 15) as usize];
    match S {
        1 => {
            let sh = (r & HI) >> 1;
            *g = (*g & !(0xff << sh)) | ((v & 0xff) << sh);
        }
        2 => *g = (*g & !0xffff) | (v & 0xffff),
        4 => *g = v & 0xffff_ffff,
        _ => *g = v,
    }
}

/// The linear address of the memory operand (64-bit addressing; segment base included).
#[inline(always)]
pub(super) fn ea(cpu: &Cpu, op: &Op) -> u64 {
    let mut a = op.disp;
    if op.base != NOREG {
        a = a.wrapping_add(cpu.gpr[(op.base & 15) as usize]);
    }
    if op.index != NOREG {
        a = a.wrapping_add(cpu.gpr[(op.index & 15) as usize] << (op.scale & 3));
    }
    if op.seg != 0 {
        a = a.wrapping_add(if op.seg == 1 {
            cpu.fs_base
        } else {
            cpu.gs_base
        });
    }
    a
}

#[inline(always)]
pub(super) fn ld<const S: u8>(cpu: &Cpu, a: u64) -> Result<u64> {
    Ok(cpu.mem.read_sized(a, S as u32)?)
}

/// The load of a read-modify-write: a fault is reported as the write's
/// (`Exception::rmw_fault`).
#[inline(always)]
pub(super) fn ld_rmw<const S: u8>(cpu: &Cpu, a: u64) -> Result<u64> {
    ld::<S>(cpu, a).map_err(|e| e.rmw_fault(&cpu.mem, a, S as u64))
}

#[inline(always)]
pub(super) fn st<const S: u8>(cpu: &Cpu, a: u64, v: u64) -> Result<()> {
    Ok(cpu.mem.write_sized(a, S as u32, v)?)
}

#[inline(always)]
pub(super) const fn mask(s: u8) -> u64 {
    if s >= 8 {
        u64::MAX
    } else {
        (1u64 << (s as u32 * 8)) - 1
    }
}

// ---------------------------------------------------------------- MOV, MOVZX/MOVSX, LEA

pub(super) fn mov_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = rd::<S>(cpu, op.r1);
    wr::<S>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn mov_rm<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld::<S>(cpu, ea(cpu, op))?;
    wr::<S>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn mov_mr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    st::<S>(cpu, ea(cpu, op), rd::<S>(cpu, op.r1))
}

pub(super) fn mov_ri<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    wr::<S>(cpu, op.r0, op.imm);
    Ok(())
}

pub(super) fn mov_mi<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    st::<S>(cpu, ea(cpu, op), op.imm)
}

#[inline(always)]
pub(super) fn extend<const SS: u8, const SIGNED: bool>(v: u64) -> u64 {
    if SIGNED {
        sign_extend(v, SS as u32)
    } else {
        v
    }
}

pub(super) fn movx_r<const SS: u8, const DS: u8, const SIGNED: bool>(
    cpu: &mut Cpu,
    op: &Op,
) -> Result<()> {
    let v = extend::<SS, SIGNED>(rd::<SS>(cpu, op.r1));
    wr::<DS>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn movx_m<const SS: u8, const DS: u8, const SIGNED: bool>(
    cpu: &mut Cpu,
    op: &Op,
) -> Result<()> {
    let v = extend::<SS, SIGNED>(ld::<SS>(cpu, ea(cpu, op))?);
    wr::<DS>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn lea<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let mut a = op.disp;
    if op.base != NOREG {
        a = a.wrapping_add(cpu.gpr[(op.base & 15) as usize]);
    }
    if op.index != NOREG {
        a = a.wrapping_add(cpu.gpr[(op.index & 15) as usize] << (op.scale & 3));
    }
    wr::<S>(cpu, op.r0, a);
    Ok(())
}

// ---------------------------------------------------------------- ALU

#[inline(always)]
pub(super) fn carry_in<const OP: u8>(cpu: &Cpu) -> bool {
    if OP == ADC || OP == SBB {
        cpu.flags.cf()
    } else {
        false
    }
}

/// Register destination: `a` is its value, `b` the source.
#[inline(always)]
pub(super) fn alu_reg<const OP: u8, const S: u8>(cpu: &mut Cpu, r0: u8, a: u64, b: u64) {
    let carry = carry_in::<OP>(cpu);
    let r = calc::<OP>(a, b, carry);
    if OP != CMP && OP != TEST {
        wr::<S>(cpu, r0, r);
    }
    record::<OP>(cpu, S as u32, a, b, r, carry);
}

pub(super) fn alu_rr<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let (a, b) = (rd::<S>(cpu, op.r0), rd::<S>(cpu, op.r1));
    alu_reg::<OP, S>(cpu, op.r0, a, b);
    Ok(())
}

pub(super) fn alu_ri<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let a = rd::<S>(cpu, op.r0);
    alu_reg::<OP, S>(cpu, op.r0, a, op.imm);
    Ok(())
}

pub(super) fn alu_rm<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = ld::<S>(cpu, ea(cpu, op))?;
    let a = rd::<S>(cpu, op.r0);
    alu_reg::<OP, S>(cpu, op.r0, a, b);
    Ok(())
}

/// Memory destination (no LOCK): load, store the result, then record the flags.
#[inline(always)]
pub(super) fn alu_mem<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op, b: u64) -> Result<()> {
    let carry = carry_in::<OP>(cpu);
    let addr = ea(cpu, op);
    let a = if OP != CMP && OP != TEST {
        ld_rmw::<S>(cpu, addr)?
    } else {
        ld::<S>(cpu, addr)?
    };
    let r = calc::<OP>(a, b, carry);
    if OP != CMP && OP != TEST {
        st::<S>(cpu, addr, r)?;
    }
    record::<OP>(cpu, S as u32, a, b, r, carry);
    Ok(())
}

pub(super) fn alu_mr<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = rd::<S>(cpu, op.r1);
    alu_mem::<OP, S>(cpu, op, b)
}

pub(super) fn alu_mi<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    alu_mem::<OP, S>(cpu, op, op.imm)
}

pub(super) const INC: u8 = 0;
pub(super) const DEC: u8 = 1;
pub(super) const NEG: u8 = 2;
pub(super) const NOT: u8 = 3;

#[inline(always)]
pub(super) fn unop_calc<const OP: u8>(v: u64) -> u64 {
    match OP {
        INC => v.wrapping_add(1),
        DEC => v.wrapping_sub(1),
        NEG => v.wrapping_neg(),
        _ => !v,
    }
}

#[inline(always)]
pub(super) fn unop_flags<const OP: u8, const S: u8>(cpu: &mut Cpu, old: u64, new: u64) {
    match OP {
        INC => cpu.flags.set_incdec(true, S as u32, old, new),
        DEC => cpu.flags.set_incdec(false, S as u32, old, new),
        NEG => cpu.flags.set_lazy(FlagOp::Sub, S as u32, 0, old, new),
        _ => {}
    }
}

pub(super) fn unop_r<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let old = rd::<S>(cpu, op.r0);
    let new = unop_calc::<OP>(old);
    wr::<S>(cpu, op.r0, new);
    unop_flags::<OP, S>(cpu, old, new);
    Ok(())
}

pub(super) fn unop_m<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let addr = ea(cpu, op);
    let old = ld_rmw::<S>(cpu, addr)?;
    let new = unop_calc::<OP>(old);
    st::<S>(cpu, addr, new)?;
    unop_flags::<OP, S>(cpu, old, new);
    Ok(())
}

// ---------------------------------------------------------------- shifts, IMUL

/// SHL/SHR/SAR of a register by an immediate (`op.imm`, already masked) or by CL.
pub(super) fn shift_r<const OP: u8, const S: u8, const CL: bool>(
    cpu: &mut Cpu,
    op: &Op,
) -> Result<()> {
    let c = if CL {
        let m = if S == 8 { 63 } else { 31 };
        (cpu.gpr[1] & m) as u32
    } else {
        op.imm as u32
    };
    let old = rd::<S>(cpu, op.r0);
    let fin = crate::exec::shift::host_flags_in(cpu, c);
    let (r, cf, of) = shift_compute::<OP>(old, c, S as u32, false);
    wr::<S>(cpu, op.r0, r);
    if c != 0 {
        let w = S as u32 * 8;
        cpu.flags
            .set_arith(cf, parity(r), SHIFT_AF, r == 0, (r >> (w - 1)) & 1 != 0, of);
    }
    if let Some(fin) = fin {
        crate::exec::shift::host_undefined(cpu, OP, S as u32, old, c, fin, (!CL).then_some(false));
    }
    Ok(())
}

#[inline(always)]
pub(super) fn imul_commit<const S: u8>(cpu: &mut Cpu, r0: u8, x: u64, y: u64) {
    let p = sign_extend(x, S as u32) as i64 as i128 * sign_extend(y, S as u32) as i64 as i128;
    let lo = p as u64 & mask(S);
    let overflow = sign_extend(lo, S as u32) as i64 as i128 != p;
    wr::<S>(cpu, r0, lo);
    crate::exec::muldiv::mul_flags(
        cpu,
        overflow,
        crate::undef::Mul::SignedTruncated,
        S as u32,
        x,
        y,
    );
}

pub(super) fn imul_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let (x, y) = (rd::<S>(cpu, op.r0), rd::<S>(cpu, op.r1));
    imul_commit::<S>(cpu, op.r0, x, y);
    Ok(())
}

pub(super) fn imul_rm<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let y = ld::<S>(cpu, ea(cpu, op))?;
    let x = rd::<S>(cpu, op.r0);
    imul_commit::<S>(cpu, op.r0, x, y);
    Ok(())
}

pub(super) fn imul_rri<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let x = rd::<S>(cpu, op.r1);
    imul_commit::<S>(cpu, op.r0, x, op.imm);
    Ok(())
}

pub(super) fn imul_rmi<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let x = ld::<S>(cpu, ea(cpu, op))?;
    imul_commit::<S>(cpu, op.r0, x, op.imm);
    Ok(())
}

// ---------------------------------------------------------------- conditions

pub(super) fn setcc_r<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.flags.cond_n::<CC>() as u64;
    wr::<1>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn setcc_m<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.flags.cond_n::<CC>() as u64;
    st::<1>(cpu, ea(cpu, op), v)
}

#[inline(always)]
pub(super) fn cmov_commit<const CC: u8, const S: u8>(cpu: &mut Cpu, r0: u8, v: u64) {
    if cpu.flags.cond_n::<CC>() {
        wr::<S>(cpu, r0, v);
    } else if S == 4 {
        // A 32-bit destination is written (zero-extended) even when the condition is false.
        let old = rd::<S>(cpu, r0);
        wr::<S>(cpu, r0, old);
    }
}

pub(super) fn cmov_r<const CC: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = rd::<S>(cpu, op.r1);
    cmov_commit::<CC, S>(cpu, op.r0, v);
    Ok(())
}

pub(super) fn cmov_m<const CC: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    // The source is read (and may fault) whatever the condition.
    let v = ld::<S>(cpu, ea(cpu, op))?;
    cmov_commit::<CC, S>(cpu, op.r0, v);
    Ok(())
}

// ---------------------------------------------------------------- stack and branches

pub(super) fn push_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.gpr[(op.r0 & 15) as usize];
    cpu.push64(v)
}

pub(super) fn push_i(cpu: &mut Cpu, op: &Op) -> Result<()> {
    cpu.push64(op.imm)
}

pub(super) fn push_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld::<8>(cpu, ea(cpu, op))?;
    cpu.push64(v)
}

pub(super) fn pop_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let sp = cpu.gpr[4];
    let v = cpu.mem.read_u64(sp)?;
    cpu.gpr[4] = sp.wrapping_add(8);
    cpu.gpr[(op.r0 & 15) as usize] = v;
    Ok(())
}

pub(super) fn jmp_rel(cpu: &mut Cpu, op: &Op) -> Result<()> {
    cpu.rip = op.imm;
    Ok(())
}

pub(super) fn jcc<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    if cpu.flags.cond_n::<CC>() {
        cpu.rip = op.imm;
    }
    Ok(())
}

#[inline(always)]
pub(super) fn jmp_to(cpu: &mut Cpu, target: u64) -> Result<()> {
    if !is_canonical(target) {
        return Err(Exception::GeneralProtection);
    }
    cpu.rip = target;
    Ok(())
}

pub(super) fn jmp_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = cpu.gpr[(op.r0 & 15) as usize];
    jmp_to(cpu, t)
}

pub(super) fn jmp_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = ld::<8>(cpu, ea(cpu, op))?;
    jmp_to(cpu, t)
}

pub(super) fn call_rel(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_call(cpu, op.imm, true)
}

/// `call 1f; 1:` (displacement 0) never touches the shadow stack (Intel SDM Vol. 2A, CALL).
pub(super) fn call_rel0(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_call(cpu, op.imm, false)
}

pub(super) fn call_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = cpu.gpr[(op.r0 & 15) as usize];
    crate::exec::control::do_call(cpu, t, true)
}

pub(super) fn call_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = ld::<8>(cpu, ea(cpu, op))?;
    crate::exec::control::do_call(cpu, t, true)
}

pub(super) fn ret(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_ret(cpu, op.imm)
}

pub(super) fn nop(_: &mut Cpu, _: &Op) -> Result<()> {
    Ok(())
}
