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

use crate::block::{Op, OpFn, NOREG};
use crate::exception::Result;
use crate::exec::alu::{calc, record, ADC, ADD, AND, CMP, OR, SBB, SUB, TEST, XOR};
use crate::exec::shift::{compute as shift_compute, SAR, SHIFT_AF, SHL, SHR};
use crate::flags::{parity, FlagOp};
use crate::operand::sign_extend;
use crate::{is_canonical, Cpu, Exception};
use iced_x86::{Code, ConditionCode, Mnemonic, OpKind, Register};

/// Marks AH, CH, DH and BH in a register field: bits 8..15 of GPR (n & 15).
pub const HI: u8 = 16;

// ---------------------------------------------------------------- operand access

/// Reads a register operand of `S` bytes, zero-extended.
#[inline(always)]
pub(crate) fn rd<const S: u8>(cpu: &Cpu, r: u8) -> u64 {
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
pub(crate) fn wr<const S: u8>(cpu: &mut Cpu, r: u8, v: u64) {
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
pub(crate) fn ea(cpu: &Cpu, op: &Op) -> u64 {
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
fn ld<const S: u8>(cpu: &Cpu, a: u64) -> Result<u64> {
    Ok(cpu.mem.read_sized(a, S as u32)?)
}

/// The load of a read-modify-write: a fault is reported as a write (`Exception::as_rmw`).
#[inline(always)]
fn ld_rmw<const S: u8>(cpu: &Cpu, a: u64) -> Result<u64> {
    ld::<S>(cpu, a).map_err(crate::Exception::as_rmw)
}

#[inline(always)]
fn st<const S: u8>(cpu: &Cpu, a: u64, v: u64) -> Result<()> {
    Ok(cpu.mem.write_sized(a, S as u32, v)?)
}

#[inline(always)]
const fn mask(s: u8) -> u64 {
    if s >= 8 {
        u64::MAX
    } else {
        (1u64 << (s as u32 * 8)) - 1
    }
}

// ---------------------------------------------------------------- MOV, MOVZX/MOVSX, LEA

fn mov_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = rd::<S>(cpu, op.r1);
    wr::<S>(cpu, op.r0, v);
    Ok(())
}

fn mov_rm<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld::<S>(cpu, ea(cpu, op))?;
    wr::<S>(cpu, op.r0, v);
    Ok(())
}

fn mov_mr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    st::<S>(cpu, ea(cpu, op), rd::<S>(cpu, op.r1))
}

fn mov_ri<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    wr::<S>(cpu, op.r0, op.imm);
    Ok(())
}

fn mov_mi<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    st::<S>(cpu, ea(cpu, op), op.imm)
}

#[inline(always)]
fn extend<const SS: u8, const SIGNED: bool>(v: u64) -> u64 {
    if SIGNED {
        sign_extend(v, SS as u32)
    } else {
        v
    }
}

fn movx_r<const SS: u8, const DS: u8, const SIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = extend::<SS, SIGNED>(rd::<SS>(cpu, op.r1));
    wr::<DS>(cpu, op.r0, v);
    Ok(())
}

fn movx_m<const SS: u8, const DS: u8, const SIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = extend::<SS, SIGNED>(ld::<SS>(cpu, ea(cpu, op))?);
    wr::<DS>(cpu, op.r0, v);
    Ok(())
}

fn lea<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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
fn carry_in<const OP: u8>(cpu: &Cpu) -> bool {
    if OP == ADC || OP == SBB {
        cpu.flags.cf()
    } else {
        false
    }
}

/// Register destination: `a` is its value, `b` the source.
#[inline(always)]
fn alu_reg<const OP: u8, const S: u8>(cpu: &mut Cpu, r0: u8, a: u64, b: u64) {
    let carry = carry_in::<OP>(cpu);
    let r = calc::<OP>(a, b, carry);
    if OP != CMP && OP != TEST {
        wr::<S>(cpu, r0, r);
    }
    record::<OP>(cpu, S as u32, a, b, r, carry);
}

fn alu_rr<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let (a, b) = (rd::<S>(cpu, op.r0), rd::<S>(cpu, op.r1));
    alu_reg::<OP, S>(cpu, op.r0, a, b);
    Ok(())
}

fn alu_ri<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let a = rd::<S>(cpu, op.r0);
    alu_reg::<OP, S>(cpu, op.r0, a, op.imm);
    Ok(())
}

fn alu_rm<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = ld::<S>(cpu, ea(cpu, op))?;
    let a = rd::<S>(cpu, op.r0);
    alu_reg::<OP, S>(cpu, op.r0, a, b);
    Ok(())
}

/// Memory destination (no LOCK): load, store the result, then record the flags.
#[inline(always)]
fn alu_mem<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op, b: u64) -> Result<()> {
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

fn alu_mr<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = rd::<S>(cpu, op.r1);
    alu_mem::<OP, S>(cpu, op, b)
}

fn alu_mi<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    alu_mem::<OP, S>(cpu, op, op.imm)
}

const INC: u8 = 0;
const DEC: u8 = 1;
const NEG: u8 = 2;
const NOT: u8 = 3;

#[inline(always)]
fn unop_calc<const OP: u8>(v: u64) -> u64 {
    match OP {
        INC => v.wrapping_add(1),
        DEC => v.wrapping_sub(1),
        NEG => v.wrapping_neg(),
        _ => !v,
    }
}

#[inline(always)]
fn unop_flags<const OP: u8, const S: u8>(cpu: &mut Cpu, old: u64, new: u64) {
    match OP {
        INC => cpu.flags.set_incdec(true, S as u32, old, new),
        DEC => cpu.flags.set_incdec(false, S as u32, old, new),
        NEG => cpu.flags.set_lazy(FlagOp::Sub, S as u32, 0, old, new),
        _ => {}
    }
}

fn unop_r<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let old = rd::<S>(cpu, op.r0);
    let new = unop_calc::<OP>(old);
    wr::<S>(cpu, op.r0, new);
    unop_flags::<OP, S>(cpu, old, new);
    Ok(())
}

fn unop_m<const OP: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let addr = ea(cpu, op);
    let old = ld_rmw::<S>(cpu, addr)?;
    let new = unop_calc::<OP>(old);
    st::<S>(cpu, addr, new)?;
    unop_flags::<OP, S>(cpu, old, new);
    Ok(())
}

// ---------------------------------------------------------------- shifts, IMUL

/// SHL/SHR/SAR of a register by an immediate (`op.imm`, already masked) or by CL.
fn shift_r<const OP: u8, const S: u8, const CL: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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
fn imul_commit<const S: u8>(cpu: &mut Cpu, r0: u8, x: u64, y: u64) {
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

fn imul_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let (x, y) = (rd::<S>(cpu, op.r0), rd::<S>(cpu, op.r1));
    imul_commit::<S>(cpu, op.r0, x, y);
    Ok(())
}

fn imul_rm<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let y = ld::<S>(cpu, ea(cpu, op))?;
    let x = rd::<S>(cpu, op.r0);
    imul_commit::<S>(cpu, op.r0, x, y);
    Ok(())
}

fn imul_rri<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let x = rd::<S>(cpu, op.r1);
    imul_commit::<S>(cpu, op.r0, x, op.imm);
    Ok(())
}

fn imul_rmi<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let x = ld::<S>(cpu, ea(cpu, op))?;
    imul_commit::<S>(cpu, op.r0, x, op.imm);
    Ok(())
}

// ---------------------------------------------------------------- conditions

fn setcc_r<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.flags.cond_n::<CC>() as u64;
    wr::<1>(cpu, op.r0, v);
    Ok(())
}

fn setcc_m<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.flags.cond_n::<CC>() as u64;
    st::<1>(cpu, ea(cpu, op), v)
}

#[inline(always)]
fn cmov_commit<const CC: u8, const S: u8>(cpu: &mut Cpu, r0: u8, v: u64) {
    if cpu.flags.cond_n::<CC>() {
        wr::<S>(cpu, r0, v);
    } else if S == 4 {
        // A 32-bit destination is written (zero-extended) even when the condition is false.
        let old = rd::<S>(cpu, r0);
        wr::<S>(cpu, r0, old);
    }
}

fn cmov_r<const CC: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = rd::<S>(cpu, op.r1);
    cmov_commit::<CC, S>(cpu, op.r0, v);
    Ok(())
}

fn cmov_m<const CC: u8, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    // The source is read (and may fault) whatever the condition.
    let v = ld::<S>(cpu, ea(cpu, op))?;
    cmov_commit::<CC, S>(cpu, op.r0, v);
    Ok(())
}

// ---------------------------------------------------------------- stack and branches

fn push_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = cpu.gpr[(op.r0 & 15) as usize];
    cpu.push64(v)
}

fn push_i(cpu: &mut Cpu, op: &Op) -> Result<()> {
    cpu.push64(op.imm)
}

fn push_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld::<8>(cpu, ea(cpu, op))?;
    cpu.push64(v)
}

fn pop_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let sp = cpu.gpr[4];
    let v = cpu.mem.read_u64(sp)?;
    cpu.gpr[4] = sp.wrapping_add(8);
    cpu.gpr[(op.r0 & 15) as usize] = v;
    Ok(())
}

fn jmp_rel(cpu: &mut Cpu, op: &Op) -> Result<()> {
    cpu.rip = op.imm;
    Ok(())
}

fn jcc<const CC: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    if cpu.flags.cond_n::<CC>() {
        cpu.rip = op.imm;
    }
    Ok(())
}

#[inline(always)]
fn jmp_to(cpu: &mut Cpu, target: u64) -> Result<()> {
    if !is_canonical(target) {
        return Err(Exception::GeneralProtection);
    }
    cpu.rip = target;
    Ok(())
}

fn jmp_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = cpu.gpr[(op.r0 & 15) as usize];
    jmp_to(cpu, t)
}

fn jmp_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = ld::<8>(cpu, ea(cpu, op))?;
    jmp_to(cpu, t)
}

fn call_rel(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_call(cpu, op.imm, true)
}

/// `call 1f; 1:` (displacement 0) never touches the shadow stack (cpu.md §5.1 step 3).
fn call_rel0(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_call(cpu, op.imm, false)
}

fn call_r(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = cpu.gpr[(op.r0 & 15) as usize];
    crate::exec::control::do_call(cpu, t, true)
}

fn call_m(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let t = ld::<8>(cpu, ea(cpu, op))?;
    crate::exec::control::do_call(cpu, t, true)
}

fn ret(cpu: &mut Cpu, op: &Op) -> Result<()> {
    crate::exec::control::do_ret(cpu, op.imm)
}

fn nop(_: &mut Cpu, _: &Op) -> Result<()> {
    Ok(())
}

// ---------------------------------------------------------------- selection

/// A GPR operand as (field value, size in bytes).
pub(crate) fn gpr(r: Register) -> Option<(u8, u8)> {
    let n = r as u32;
    let at = |first: Register, last: Register| {
        (first as u32..=last as u32)
            .contains(&n)
            .then(|| (n - first as u32) as u8)
    };
    if let Some(i) = at(Register::RAX, Register::R15) {
        return Some((i, 8));
    }
    if let Some(i) = at(Register::EAX, Register::R15D) {
        return Some((i, 4));
    }
    if let Some(i) = at(Register::AX, Register::R15W) {
        return Some((i, 2));
    }
    // AL CL DL BL, AH CH DH BH, SPL BPL SIL DIL, R8L..R15L.
    let i = at(Register::AL, Register::R15L)?;
    Some(match i {
        0..=3 => (i, 1),
        4..=7 => ((i - 4) | HI, 1),
        _ => (i - 4, 1),
    })
}

/// Resolves the memory operand into `op` (64-bit addressing only).
pub(crate) fn mem_operand(op: &mut Op) -> bool {
    let i = &op.insn;
    let reg64 = |r: Register| match gpr(r) {
        Some((n, 8)) => Some(n),
        _ => None,
    };
    let base = match i.memory_base() {
        Register::None | Register::RIP => NOREG,
        r => match reg64(r) {
            Some(n) => n,
            None => return false,
        },
    };
    let index = match i.memory_index() {
        Register::None => NOREG,
        r => match reg64(r) {
            Some(n) => n,
            None => return false,
        },
    };
    let seg = match i.memory_segment() {
        Register::FS => 1,
        Register::GS => 2,
        Register::DS | Register::SS | Register::ES | Register::CS | Register::None => 0,
        _ => return false,
    };
    let scale = i.memory_index_scale().trailing_zeros() as u8;
    op.disp = i.memory_displacement64();
    op.base = base;
    op.index = index;
    op.scale = scale;
    op.seg = seg;
    true
}

fn is_imm(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// Operand shapes of two-operand forms.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    RR,
    RM,
    RI,
    MR,
    MI,
}

macro_rules! sized {
    ($f:ident, $s:expr $(, $c:expr)*) => {
        match $s {
            1 => $f::<$($c,)* 1> as OpFn,
            2 => $f::<$($c,)* 2> as OpFn,
            4 => $f::<$($c,)* 4> as OpFn,
            _ => $f::<$($c,)* 8> as OpFn,
        }
    };
}

macro_rules! by_cc {
    ($cc:expr, $m:ident $(, $arg:tt)*) => {
        match $cc {
            1 => $m!(1 $(, $arg)*),
            2 => $m!(2 $(, $arg)*),
            3 => $m!(3 $(, $arg)*),
            4 => $m!(4 $(, $arg)*),
            5 => $m!(5 $(, $arg)*),
            6 => $m!(6 $(, $arg)*),
            7 => $m!(7 $(, $arg)*),
            8 => $m!(8 $(, $arg)*),
            9 => $m!(9 $(, $arg)*),
            10 => $m!(10 $(, $arg)*),
            11 => $m!(11 $(, $arg)*),
            12 => $m!(12 $(, $arg)*),
            13 => $m!(13 $(, $arg)*),
            14 => $m!(14 $(, $arg)*),
            15 => $m!(15 $(, $arg)*),
            _ => $m!(16 $(, $arg)*),
        }
    };
}

fn alu_for<const OP: u8>(shape: Shape, s: u8) -> OpFn {
    match shape {
        Shape::RR => sized!(alu_rr, s, OP),
        Shape::RM => sized!(alu_rm, s, OP),
        Shape::RI => sized!(alu_ri, s, OP),
        Shape::MR => sized!(alu_mr, s, OP),
        Shape::MI => sized!(alu_mi, s, OP),
    }
}

/// Resolves a two-operand (r/m, r/m/imm) form into `op`: its shape and operand size.
fn two_operands(op: &mut Op) -> Option<(Shape, u8)> {
    let i = op.insn;
    if i.op_count() != 2 {
        return None;
    }
    let (k0, k1) = (i.op0_kind(), i.op1_kind());
    let (shape, size) = match (k0, k1) {
        (OpKind::Register, OpKind::Register) => {
            let (r0, s0) = gpr(i.op0_register())?;
            let (r1, s1) = gpr(i.op1_register())?;
            if s0 != s1 {
                return None;
            }
            op.r0 = r0;
            op.r1 = r1;
            (Shape::RR, s0)
        }
        (OpKind::Register, OpKind::Memory) => {
            let (r0, s0) = gpr(i.op0_register())?;
            if !mem_operand(op) || i.memory_size().size() != s0 as usize {
                return None;
            }
            op.r0 = r0;
            (Shape::RM, s0)
        }
        (OpKind::Register, k) if is_imm(k) => {
            let (r0, s0) = gpr(i.op0_register())?;
            op.r0 = r0;
            op.imm = i.immediate(1) & mask(s0);
            (Shape::RI, s0)
        }
        (OpKind::Memory, OpKind::Register) => {
            let (r1, s1) = gpr(i.op1_register())?;
            if !mem_operand(op) || i.memory_size().size() != s1 as usize {
                return None;
            }
            op.r1 = r1;
            (Shape::MR, s1)
        }
        (OpKind::Memory, k) if is_imm(k) => {
            let s = i.memory_size().size();
            if !matches!(s, 1 | 2 | 4 | 8) || !mem_operand(op) {
                return None;
            }
            op.imm = i.immediate(1) & mask(s as u8);
            (Shape::MI, s as u8)
        }
        _ => return None,
    };
    if (shape == Shape::MR || shape == Shape::MI) && i.has_lock_prefix() {
        return None;
    }
    Some((shape, size))
}

/// One-operand register or memory form: resolves it and returns (is memory, size).
fn one_operand(op: &mut Op) -> Option<(bool, u8)> {
    let i = op.insn;
    match i.op0_kind() {
        OpKind::Register => {
            let (r0, s0) = gpr(i.op0_register())?;
            op.r0 = r0;
            Some((false, s0))
        }
        OpKind::Memory => {
            let s = i.memory_size().size();
            if !matches!(s, 1 | 2 | 4 | 8) || i.has_lock_prefix() || !mem_operand(op) {
                return None;
            }
            Some((true, s as u8))
        }
        _ => None,
    }
}

/// Picks the specialized function for `op`'s instruction, filling its operand fields, or
/// None to keep the family handler.
pub fn select(op: &mut Op) -> Option<OpFn> {
    let i = op.insn;
    let code = i.code();
    // Any prefix that changes the meaning of these forms (LOCK is checked per shape; REP on
    // them is ignored by the CPU and by the family handlers alike).
    match code {
        Code::Jmp_rel8_64 | Code::Jmp_rel32_64 => {
            op.imm = i.near_branch64();
            return Some(jmp_rel);
        }
        Code::Call_rel32_64 => {
            op.imm = i.near_branch64();
            return Some(if op.imm != i.next_ip() {
                call_rel
            } else {
                call_rel0
            });
        }
        Code::Retnq => {
            op.imm = 0;
            return Some(ret);
        }
        Code::Retnq_imm16 => {
            op.imm = i.immediate16() as u64;
            return Some(ret);
        }
        Code::Push_r64 => {
            op.r0 = gpr(i.op0_register())?.0;
            return Some(push_r);
        }
        Code::Pop_r64 => {
            op.r0 = gpr(i.op0_register())?.0;
            return Some(pop_r);
        }
        Code::Pushq_imm32 | Code::Pushq_imm8 => {
            op.imm = i.immediate(0);
            return Some(push_i);
        }
        Code::Push_rm64 => {
            return match one_operand(op)? {
                (false, 8) => Some(push_r),
                (true, 8) => Some(push_m),
                _ => None,
            };
        }
        Code::Jmp_rm64 => {
            return match one_operand(op)? {
                (false, 8) => Some(jmp_r),
                (true, 8) => Some(jmp_m),
                _ => None,
            };
        }
        Code::Call_rm64 => {
            return match one_operand(op)? {
                (false, 8) => Some(call_r),
                (true, 8) => Some(call_m),
                _ => None,
            };
        }
        Code::Nopw | Code::Nopd | Code::Nopq | Code::Nop_rm16 | Code::Nop_rm32 | Code::Nop_rm64 => {
            return Some(nop);
        }
        Code::Lea_r32_m | Code::Lea_r64_m => {
            let (r0, s0) = gpr(i.op0_register())?;
            if !mem_operand(op) {
                return None;
            }
            op.r0 = r0;
            return Some(if s0 == 8 { lea::<8> } else { lea::<4> });
        }
        _ => {}
    }
    if code.is_jcc_short_or_near() {
        op.imm = i.near_branch64();
        let cc = i.condition_code() as u8;
        macro_rules! j {
            ($c:literal) => {
                jcc::<$c> as OpFn
            };
        }
        return Some(by_cc!(cc, j));
    }
    match code.mnemonic() {
        Mnemonic::Mov => {
            let (shape, s) = two_operands(op)?;
            Some(match shape {
                Shape::RR => sized!(mov_rr, s),
                Shape::RM => sized!(mov_rm, s),
                Shape::RI => sized!(mov_ri, s),
                Shape::MR => sized!(mov_mr, s),
                Shape::MI => sized!(mov_mi, s),
            })
        }
        Mnemonic::Add => alu_shape::<ADD>(op),
        Mnemonic::Or => alu_shape::<OR>(op),
        Mnemonic::Adc => alu_shape::<ADC>(op),
        Mnemonic::Sbb => alu_shape::<SBB>(op),
        Mnemonic::And => alu_shape::<AND>(op),
        Mnemonic::Sub => alu_shape::<SUB>(op),
        Mnemonic::Xor => alu_shape::<XOR>(op),
        Mnemonic::Cmp => alu_shape::<CMP>(op),
        Mnemonic::Test => alu_shape::<TEST>(op),
        Mnemonic::Inc => unop_shape::<INC>(op),
        Mnemonic::Dec => unop_shape::<DEC>(op),
        Mnemonic::Neg => unop_shape::<NEG>(op),
        Mnemonic::Not => unop_shape::<NOT>(op),
        Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd => movx_shape(op),
        Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar => shift_shape(op),
        Mnemonic::Imul => imul_shape(op),
        _ if is_setcc(code) => {
            let cc = i.condition_code() as u8;
            let (mem, s) = one_operand(op)?;
            if s != 1 {
                return None;
            }
            macro_rules! sr {
                ($c:literal) => {
                    setcc_r::<$c> as OpFn
                };
            }
            macro_rules! sm {
                ($c:literal) => {
                    setcc_m::<$c> as OpFn
                };
            }
            Some(if mem { by_cc!(cc, sm) } else { by_cc!(cc, sr) })
        }
        _ if is_cmovcc(code) => {
            let cc = i.condition_code() as u8;
            let (shape, s) = two_operands(op)?;
            macro_rules! cr {
                ($c:literal, $s:literal) => {
                    cmov_r::<$c, $s> as OpFn
                };
            }
            macro_rules! cm {
                ($c:literal, $s:literal) => {
                    cmov_m::<$c, $s> as OpFn
                };
            }
            Some(match (shape, s) {
                (Shape::RR, 8) => by_cc!(cc, cr, 8),
                (Shape::RR, 4) => by_cc!(cc, cr, 4),
                (Shape::RM, 8) => by_cc!(cc, cm, 8),
                (Shape::RM, 4) => by_cc!(cc, cm, 4),
                _ => return None,
            })
        }
        _ => crate::fastsse::select(op),
    }
}

fn is_setcc(c: Code) -> bool {
    (Code::Seto_rm8 as u32..=Code::Setg_rm8 as u32).contains(&(c as u32))
}

fn is_cmovcc(c: Code) -> bool {
    (Code::Cmovo_r16_rm16 as u32..=Code::Cmovg_r64_rm64 as u32).contains(&(c as u32))
}

fn alu_shape<const OP: u8>(op: &mut Op) -> Option<OpFn> {
    let (shape, s) = two_operands(op)?;
    Some(alu_for::<OP>(shape, s))
}

fn unop_shape<const OP: u8>(op: &mut Op) -> Option<OpFn> {
    let (mem, s) = one_operand(op)?;
    Some(if mem {
        sized!(unop_m, s, OP)
    } else {
        sized!(unop_r, s, OP)
    })
}

fn movx_shape(op: &mut Op) -> Option<OpFn> {
    use Code::*;
    let i = op.insn;
    // (source size, destination size, signed)
    let (ss, ds, signed) = match i.code() {
        Movzx_r16_rm8 => (1, 2, false),
        Movzx_r32_rm8 => (1, 4, false),
        Movzx_r64_rm8 => (1, 8, false),
        Movzx_r32_rm16 => (2, 4, false),
        Movzx_r64_rm16 => (2, 8, false),
        Movsx_r16_rm8 => (1, 2, true),
        Movsx_r32_rm8 => (1, 4, true),
        Movsx_r64_rm8 => (1, 8, true),
        Movsx_r32_rm16 => (2, 4, true),
        Movsx_r64_rm16 => (2, 8, true),
        Movsxd_r64_rm32 => (4, 8, true),
        _ => return None,
    };
    let (r0, s0) = gpr(i.op0_register())?;
    if s0 != ds {
        return None;
    }
    op.r0 = r0;
    let mem = match i.op1_kind() {
        OpKind::Register => {
            let (r1, s1) = gpr(i.op1_register())?;
            if s1 != ss {
                return None;
            }
            op.r1 = r1;
            false
        }
        OpKind::Memory => {
            if i.memory_size().size() != ss as usize || !mem_operand(op) {
                return None;
            }
            true
        }
        _ => return None,
    };
    macro_rules! pick {
        ($($ss:literal $ds:literal $sg:literal),*) => {
            match (ss, ds, signed, mem) {
                $(
                    ($ss, $ds, $sg, false) => movx_r::<$ss, $ds, $sg> as OpFn,
                    ($ss, $ds, $sg, true) => movx_m::<$ss, $ds, $sg> as OpFn,
                )*
                _ => return None,
            }
        };
    }
    Some(pick!(
        1 2 false, 1 4 false, 1 8 false, 2 4 false, 2 8 false,
        1 2 true, 1 4 true, 1 8 true, 2 4 true, 2 8 true, 4 8 true
    ))
}

fn shift_shape(op: &mut Op) -> Option<OpFn> {
    let i = op.insn;
    if i.op_count() != 2 || i.op0_kind() != OpKind::Register {
        return None;
    }
    let (r0, s) = gpr(i.op0_register())?;
    op.r0 = r0;
    let cl = match i.op1_kind() {
        OpKind::Register => {
            if i.op1_register() != Register::CL {
                return None;
            }
            true
        }
        OpKind::Immediate8 => {
            let m = if s == 8 { 63 } else { 31 };
            op.imm = i.immediate8() as u64 & m;
            false
        }
        _ => return None,
    };
    macro_rules! pick {
        ($op:expr) => {
            match (s, cl) {
                (1, false) => shift_r::<$op, 1, false> as OpFn,
                (2, false) => shift_r::<$op, 2, false> as OpFn,
                (4, false) => shift_r::<$op, 4, false> as OpFn,
                (8, false) => shift_r::<$op, 8, false> as OpFn,
                (1, true) => shift_r::<$op, 1, true> as OpFn,
                (2, true) => shift_r::<$op, 2, true> as OpFn,
                (4, true) => shift_r::<$op, 4, true> as OpFn,
                _ => shift_r::<$op, 8, true> as OpFn,
            }
        };
    }
    Some(match i.mnemonic() {
        Mnemonic::Shl | Mnemonic::Sal => pick!(SHL),
        Mnemonic::Shr => pick!(SHR),
        _ => pick!(SAR),
    })
}

fn imul_shape(op: &mut Op) -> Option<OpFn> {
    let i = op.insn;
    match i.op_count() {
        2 => {
            let (shape, s) = two_operands(op)?;
            Some(match (shape, s) {
                (Shape::RR, 4) => imul_rr::<4>,
                (Shape::RR, 8) => imul_rr::<8>,
                (Shape::RM, 4) => imul_rm::<4>,
                (Shape::RM, 8) => imul_rm::<8>,
                _ => return None,
            })
        }
        3 => {
            if !is_imm(i.op2_kind()) {
                return None;
            }
            let (r0, s) = gpr(i.op0_register())?;
            if s != 4 && s != 8 {
                return None;
            }
            op.r0 = r0;
            op.imm = i.immediate(2) & mask(s);
            let mem = match i.op1_kind() {
                OpKind::Register => {
                    let (r1, s1) = gpr(i.op1_register())?;
                    if s1 != s {
                        return None;
                    }
                    op.r1 = r1;
                    false
                }
                OpKind::Memory => {
                    if i.memory_size().size() != s as usize || !mem_operand(op) {
                        return None;
                    }
                    true
                }
                _ => return None,
            };
            Some(match (mem, s) {
                (false, 4) => imul_rri::<4>,
                (false, _) => imul_rri::<8>,
                (true, 4) => imul_rmi::<4>,
                (true, _) => imul_rmi::<8>,
            })
        }
        _ => None,
    }
}

/// The iced condition code with number `n` (its discriminant).
#[inline(always)]
pub const fn condition(n: u8) -> ConditionCode {
    match n {
        1 => ConditionCode::o,
        2 => ConditionCode::no,
        3 => ConditionCode::b,
        4 => ConditionCode::ae,
        5 => ConditionCode::e,
        6 => ConditionCode::ne,
        7 => ConditionCode::be,
        8 => ConditionCode::a,
        9 => ConditionCode::s,
        10 => ConditionCode::ns,
        11 => ConditionCode::p,
        12 => ConditionCode::np,
        13 => ConditionCode::l,
        14 => ConditionCode::ge,
        15 => ConditionCode::le,
        16 => ConditionCode::g,
        _ => ConditionCode::None,
    }
}
