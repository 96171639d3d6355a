//! Which guest instructions the translator handles today, and how.
//!
//! Integer instructions whose operands are registers and immediates, LEA (an address
//! computation without access), and the same integer instructions with one explicit memory
//! operand, which `memop` checks against the page table inline before the access. Everything
//! else ends the block and runs in the interpreter.

use iced_x86::{
    Code, CpuidFeature, EncodingKind, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Re-encoded as decoded.
    Native,
    /// Emits nothing (NOP, ENDBR64: no architectural effect beyond RIP).
    Skip,
    /// LEA r, [rip + disp]: becomes MOV r, absolute address.
    LeaRipRel,
    /// One explicit memory operand, checked inline and rewritten to address [addr_reg].
    Mem(MemOp),
    /// PUSH r64 / PUSH imm: the slot below RSP checked as a write (address in the register).
    Push(Register),
    /// POP r64 (not RSP): the slot at RSP checked as a read (address in the register).
    Pop(Register),
}

/// How an instruction's memory operand is checked and rewritten (`memop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemOp {
    /// Bytes accessed (1, 2, 4 or 8).
    pub size: u8,
    /// The instruction may write the operand (checked as a write to a readable page).
    pub write: bool,
    /// The register the address is computed in: one the instruction does not use.
    pub addr_reg: Register,
    /// FS or GS when the operand is relative to that segment's base, else None (the other
    /// segments have base 0 in 64-bit mode).
    pub seg: Register,
    /// The operand must be 16-byte aligned (a legacy SSE m128 operand: #GP otherwise, which
    /// the interpreter raises).
    pub align16: bool,
}

/// Registers that may hold a computed address, in order of preference (never RAX, which the
/// check itself uses, nor RSP, the guest's stack pointer).
const ADDR_REGS: [Register; 13] = [
    Register::RBX,
    Register::RBP,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
    Register::RDX,
];

/// How to translate `insn`, or None if the interpreter must run it. `sse`: SSE/SSE2
/// instructions may run natively (the guest masks every SIMD exception, so the host MXCSR
/// holds its control bits in live mode and nothing can trap; `Cpu::fp_enter`).
pub fn select(insn: &Instruction, sse: bool) -> Option<Kind> {
    if insn.encoding() == EncodingKind::Legacy && is_sse(insn) {
        return if sse { sse_form(insn) } else { None };
    }
    let m = insn.mnemonic();
    // LOCK is only valid on a few memory forms (`memory` admits those); elsewhere it is #UD,
    // which the interpreter raises.
    if insn.has_lock_prefix() && insn.op0_kind() != OpKind::Memory {
        return None;
    }
    if matches!(m, Mnemonic::Nop | Mnemonic::Endbr64) && !insn.has_lock_prefix() {
        // Padding NOPs often carry a CS override; it has no effect on a NOP.
        return Some(Kind::Skip);
    }
    match insn.code() {
        Code::Push_r64 | Code::Pushq_imm32 | Code::Pushq_imm8 => {
            return Some(Kind::Push(spare_for(insn)));
        }
        Code::Pop_r64 if insn.op0_register() != Register::RSP => {
            return Some(Kind::Pop(spare_for(insn)));
        }
        _ => {}
    }
    if m == Mnemonic::Lea {
        if insn.segment_prefix() != Register::None {
            return None;
        }
        return lea(insn);
    }
    let mems = (0..insn.op_count())
        .filter(|&i| insn.op_kind(i) == OpKind::Memory)
        .count();
    if mems == 1 {
        return memory(insn);
    }
    if mems != 0 || insn.segment_prefix() != Register::None || !regs_and_imms(insn) {
        return None;
    }
    integer(m, insn).then_some(Kind::Native)
}

/// Whether `m` is one of the integer instructions translated (the operands are checked by the
/// caller; shifts also need a nonzero immediate count).
fn integer(m: Mnemonic, insn: &Instruction) -> bool {
    match m {
        Mnemonic::Mov
        | Mnemonic::Add
        | Mnemonic::Or
        | Mnemonic::Adc
        | Mnemonic::Sbb
        | Mnemonic::And
        | Mnemonic::Sub
        | Mnemonic::Xor
        | Mnemonic::Cmp
        | Mnemonic::Test
        | Mnemonic::Inc
        | Mnemonic::Dec
        | Mnemonic::Neg
        | Mnemonic::Not
        | Mnemonic::Movzx
        | Mnemonic::Movsx
        | Mnemonic::Movsxd
        | Mnemonic::Imul
        | Mnemonic::Xchg
        | Mnemonic::Cmovo
        | Mnemonic::Cmovno
        | Mnemonic::Cmovb
        | Mnemonic::Cmovae
        | Mnemonic::Cmove
        | Mnemonic::Cmovne
        | Mnemonic::Cmovbe
        | Mnemonic::Cmova
        | Mnemonic::Cmovs
        | Mnemonic::Cmovns
        | Mnemonic::Cmovp
        | Mnemonic::Cmovnp
        | Mnemonic::Cmovl
        | Mnemonic::Cmovge
        | Mnemonic::Cmovle
        | Mnemonic::Cmovg
        | Mnemonic::Seto
        | Mnemonic::Setno
        | Mnemonic::Setb
        | Mnemonic::Setae
        | Mnemonic::Sete
        | Mnemonic::Setne
        | Mnemonic::Setbe
        | Mnemonic::Seta
        | Mnemonic::Sets
        | Mnemonic::Setns
        | Mnemonic::Setp
        | Mnemonic::Setnp
        | Mnemonic::Setl
        | Mnemonic::Setge
        | Mnemonic::Setle
        | Mnemonic::Setg => true,
        // Shifts and rotates by an immediate only: a count of zero leaves the flags untouched,
        // which the flag liveness does not model, so those fall back too.
        Mnemonic::Shl | Mnemonic::Shr | Mnemonic::Sar | Mnemonic::Rol | Mnemonic::Ror => {
            shift_imm_nonzero(insn)
        }
        _ => false,
    }
}

/// The instructions that may carry LOCK (always with a memory destination): natively atomic.
fn lockable(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::Add
            | Mnemonic::Or
            | Mnemonic::Adc
            | Mnemonic::Sbb
            | Mnemonic::And
            | Mnemonic::Sub
            | Mnemonic::Xor
            | Mnemonic::Inc
            | Mnemonic::Dec
            | Mnemonic::Neg
            | Mnemonic::Not
            | Mnemonic::Xchg
            | Mnemonic::Xadd
            | Mnemonic::Cmpxchg
    )
}

/// An integer instruction with exactly one explicit memory operand (the caller counted it).
fn memory(insn: &Instruction) -> Option<Kind> {
    let m = insn.mnemonic();
    let known = integer(m, insn) || matches!(m, Mnemonic::Xadd | Mnemonic::Cmpxchg);
    if !known || (insn.has_lock_prefix() && !(lockable(m) && insn.op0_kind() == OpKind::Memory)) {
        return None;
    }
    if insn.has_xacquire_prefix() || insn.has_xrelease_prefix() {
        return None;
    }
    // The other operands: registers and immediates.
    let others_ok = (0..insn.op_count()).all(|i| match insn.op_kind(i) {
        OpKind::Memory => true,
        OpKind::Register => insn.op_register(i).is_gpr(),
        k => is_immediate(k),
    });
    if !others_ok || is_moffs(insn.code()) {
        return None;
    }
    let size = insn.memory_size().size();
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    memop_for(insn, size, false)
}

/// The `MemOp` of an instruction with one explicit memory operand of `size` bytes; None for
/// 32-bit addressing (0x67 truncates the address; left to the interpreter).
fn memop_for(insn: &Instruction, size: usize, align16: bool) -> Option<Kind> {
    let base = insn.memory_base();
    let index = insn.memory_index();
    let base_ok = base == Register::None || base == Register::RIP || base.is_gpr64();
    let index_ok = index == Register::None || index.is_gpr64();
    if !base_ok || !index_ok {
        return None;
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(insn);
    let [used] = info.used_memory() else {
        return None;
    };
    let write = match used.access() {
        OpAccess::Read | OpAccess::CondRead => false,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite => {
            true
        }
        _ => return None,
    };
    let uses = |r: Register| {
        info.used_registers()
            .iter()
            .any(|u| u.register().is_gpr() && u.register().full_register() == r)
    };
    let addr_reg = *ADDR_REGS.iter().find(|&&r| !uses(r))?;
    let seg = match insn.memory_segment() {
        Register::FS => Register::FS,
        Register::GS => Register::GS,
        _ => Register::None,
    };
    Some(Kind::Mem(MemOp {
        size: size as u8,
        write,
        addr_reg,
        seg,
        align16,
    }))
}

/// Whether `insn` belongs to SSE or SSE2 (the extensions of every x86-64 CPU level, so the
/// level never has to be consulted).
fn is_sse(insn: &Instruction) -> bool {
    let f = insn.cpuid_features();
    !f.is_empty()
        && f.iter()
            .all(|c| matches!(c, CpuidFeature::SSE | CpuidFeature::SSE2))
}

/// A legacy SSE/SSE2 instruction on XMM registers, GPRs, immediates and at most one memory
/// operand. MXCSR and state instructions, MMX-register forms (their registers are the x87
/// state, kept in software) and MASKMOVDQU (an implicit RDI operand) are left out.
fn sse_form(insn: &Instruction) -> Option<Kind> {
    if insn.has_lock_prefix() {
        return None;
    }
    if matches!(
        insn.mnemonic(),
        Mnemonic::Ldmxcsr
            | Mnemonic::Stmxcsr
            | Mnemonic::Fxsave
            | Mnemonic::Fxrstor
            | Mnemonic::Fxsave64
            | Mnemonic::Fxrstor64
            | Mnemonic::Maskmovdqu
            | Mnemonic::Clflush
    ) {
        return None;
    }
    let mut mems = 0;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Register => {
                let r = insn.op_register(i);
                if !(r.is_xmm() || r.is_gpr()) {
                    return None;
                }
            }
            OpKind::Memory => mems += 1,
            k if is_immediate(k) => {}
            _ => return None,
        }
    }
    match mems {
        0 => Some(Kind::Native),
        1 => {
            let size = insn.memory_size().size();
            if !matches!(size, 1 | 2 | 4 | 8 | 16) || is_moffs(insn.code()) {
                return None;
            }
            // Legacy SSE m128 operands fault unless 16-byte aligned, except these (Intel SDM
            // Vol. 1 §11.6.6, "Guidelines for Using SSE/SSE2 ... Data Alignment").
            let unaligned_ok = matches!(
                insn.mnemonic(),
                Mnemonic::Movups | Mnemonic::Movupd | Mnemonic::Movdqu
            );
            memop_for(insn, size, size == 16 && !unaligned_ok)
        }
        _ => None,
    }
}

/// A register for the stack slot's address that a PUSH or POP does not name.
pub fn spare_for(insn: &Instruction) -> Register {
    let named = if insn.op0_kind() == OpKind::Register {
        insn.op0_register().full_register()
    } else {
        Register::None
    };
    if named == Register::RBX {
        Register::RBP
    } else {
        Register::RBX
    }
}

fn is_immediate(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// MOV to or from a 64-bit absolute address (A0-A3): no ModRM, so it cannot be rewritten to
/// address a register.
fn is_moffs(c: Code) -> bool {
    matches!(
        c,
        Code::Mov_AL_moffs8
            | Code::Mov_AX_moffs16
            | Code::Mov_EAX_moffs32
            | Code::Mov_RAX_moffs64
            | Code::Mov_moffs8_AL
            | Code::Mov_moffs16_AX
            | Code::Mov_moffs32_EAX
            | Code::Mov_moffs64_RAX
    )
}

/// Every operand is a general-purpose register or an immediate.
fn regs_and_imms(insn: &Instruction) -> bool {
    (0..insn.op_count()).all(|i| match insn.op_kind(i) {
        OpKind::Register => insn.op_register(i).is_gpr(),
        k => is_immediate(k),
    })
}

/// SHL/SHR/SAR/ROL/ROR r, imm8 (or the by-1 forms) with a count that is not zero after the
/// CPU's masking (Intel SDM Vol. 2B, SAL/SAR/SHL/SHR: the count is masked to 5 bits, 6 with
/// REX.W).
fn shift_imm_nonzero(insn: &Instruction) -> bool {
    if insn.op_count() != 2 {
        return false;
    }
    let count = match insn.op_kind(1) {
        OpKind::Immediate8 => insn.immediate8() as u32,
        _ => return false, // by CL (by-1 forms decode with an Immediate8 of 1)
    };
    let size = if insn.op0_kind() == OpKind::Register {
        insn.op0_register().size()
    } else {
        insn.memory_size().size()
    };
    let mask = if size == 8 { 63 } else { 31 };
    count & mask != 0
}

/// LEA without a segment override and with a 64-bit address size; RIP-relative becomes a MOV.
fn lea(insn: &Instruction) -> Option<Kind> {
    let dst = insn.op0_register();
    if !dst.is_gpr() || dst.size() < 4 || insn.memory_base() == Register::EIP {
        return None;
    }
    if insn.memory_base() == Register::RIP {
        return Some(Kind::LeaRipRel);
    }
    // 32-bit address size (0x67) truncates the address; still exact natively, but keep the
    // subset small.
    let base64 = insn.memory_base() == Register::None || insn.memory_base().size() == 8;
    let index64 = insn.memory_index() == Register::None || insn.memory_index().size() == 8;
    (base64 && index64).then_some(Kind::Native)
}
