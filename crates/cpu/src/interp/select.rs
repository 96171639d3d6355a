//! Decode-time selection of the specialized integer executors (`super::fast`): runs once per
//! instruction when a block is decoded, resolves the operands into `Op`'s fields and picks the
//! monomorphized function for the form, or keeps the family handler.

use super::block::{Op, OpFn, NOREG};
use super::fast::*;
use crate::exec::alu::{ADC, ADD, AND, CMP, OR, SBB, SUB, TEST, XOR};
use crate::exec::shift::{SAR, SHL, SHR};
use iced_x86::{Code, Mnemonic, OpKind, Register};

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
    k != OpKind::Immediate8_2nd && crate::operand::is_immediate(k)
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

/// The second operand as a source of `size` bytes in a register (put in `op.r1`) or memory;
/// returns whether it is memory, or None for another kind or size.
fn rm_source(op: &mut Op, size: u8) -> Option<bool> {
    let i = op.insn;
    match i.op1_kind() {
        OpKind::Register => {
            let (r1, s1) = gpr(i.op1_register())?;
            if s1 != size {
                return None;
            }
            op.r1 = r1;
            Some(false)
        }
        OpKind::Memory => {
            if i.memory_size().size() != size as usize || !mem_operand(op) {
                return None;
            }
            Some(true)
        }
        _ => None,
    }
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
        _ => super::select_sse::select(op),
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
    let mem = rm_source(op, ss)?;
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
            let mem = rm_source(op, s)?;
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
