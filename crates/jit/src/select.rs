//! Which guest instructions the translator handles today, and how.
//!
//! Integer instructions whose operands are registers and immediates only (no memory access,
//! so nothing can fault and the page table is never bypassed), plus LEA (an address
//! computation without access). Everything else ends the block and runs in the interpreter.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Re-encoded as decoded.
    Native,
    /// Emits nothing (NOP, ENDBR64: no architectural effect beyond RIP).
    Skip,
    /// LEA r, [rip + disp]: becomes MOV r, absolute address.
    LeaRipRel,
}

/// How to translate `insn`, or None if the interpreter must run it.
pub fn select(insn: &Instruction) -> Option<Kind> {
    // Prefixes that change meaning (LOCK: #UD on these forms) or segment overrides (the guest's
    // FS/GS bases are not the host's) are left to the interpreter.
    if insn.has_lock_prefix() {
        return None;
    }
    let m = insn.mnemonic();
    if matches!(m, Mnemonic::Nop | Mnemonic::Endbr64) {
        // Padding NOPs often carry a CS override; it has no effect on a NOP.
        return Some(Kind::Skip);
    }
    if insn.segment_prefix() != Register::None {
        return None;
    }
    if m == Mnemonic::Lea {
        return lea(insn);
    }
    if !regs_and_imms(insn) {
        return None;
    }
    let ok = match m {
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
    };
    ok.then_some(Kind::Native)
}

/// Every operand is a general-purpose register or an immediate.
fn regs_and_imms(insn: &Instruction) -> bool {
    (0..insn.op_count()).all(|i| match insn.op_kind(i) {
        OpKind::Register => insn.op_register(i).is_gpr(),
        OpKind::Immediate8
        | OpKind::Immediate8_2nd
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate32to64 => true,
        _ => false,
    })
}

/// SHL/SHR/SAR/ROL/ROR r, imm8 (or the by-1 forms) with a count that is not zero after the
/// CPU's masking (Intel SDM Vol. 2B, SAL/SAR/SHL/SHR: the count is masked to 5 bits, 6 with
/// REX.W).
fn shift_imm_nonzero(insn: &Instruction) -> bool {
    if insn.op_count() != 2 || insn.op_kind(0) != OpKind::Register {
        return false;
    }
    let count = match insn.op_kind(1) {
        OpKind::Immediate8 => insn.immediate8() as u32,
        _ => return false, // by CL (by-1 forms decode with an Immediate8 of 1)
    };
    let mask = if insn.op0_register().size() == 8 {
        63
    } else {
        31
    };
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
