//! Which guest instructions the translator handles today, and how.
//!
//! Integer instructions whose operands are registers and immediates, LEA (an address
//! computation without access), and the same integer instructions with one explicit memory
//! operand, which `memop` checks against the page table inline before the access. Everything
//! else ends the block and runs in the interpreter.

use cetbox_cpu::level::{level_needed, level_of, CpuLevel};
use cetbox_cpu::operand::is_immediate;
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
    /// A direct Jcc inside a block (`translate::decode`): a side exit to the target when taken,
    /// the block going on at the next instruction when not.
    SideExit(iced_x86::ConditionCode, u64),
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
    /// The alignment the operand needs (0: none; 16 or 32 for vector operands that #GP
    /// otherwise, which the interpreter raises).
    pub align: u8,
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

/// How to translate `insn`, or None if the interpreter must run it. `sse`: vector
/// instructions may run natively (the guest masks every SIMD exception, so the host MXCSR
/// holds its control bits in live mode and nothing can trap; `Cpu::fp_enter`). `level`: the
/// guest's CPU level; an instruction above it is left to the interpreter, which raises #UD.
pub fn select(insn: &Instruction, sse: bool, level: CpuLevel) -> Option<Kind> {
    if let Some(needed) = vector_level(insn) {
        return if sse && needed <= level {
            vector_form(insn)
        } else {
            None
        };
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
        m if read_modify_write_alu(m) => true,
        Mnemonic::Mov
        | Mnemonic::Cmp
        | Mnemonic::Test
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
        // Shifts and rotates: by CL the count may be zero, which leaves the flags untouched;
        // the flag liveness treats those as not writing flags (`writes_flags_always`).
        m if is_shift(m) => shift_count_ok(insn),
        // MUL (its undefined flags follow the host, crates/cpu/src/undef.rs), the sign
        // extensions of RAX, BSWAP.
        Mnemonic::Mul
        | Mnemonic::Cbw
        | Mnemonic::Cwde
        | Mnemonic::Cdqe
        | Mnemonic::Cwd
        | Mnemonic::Cdq
        | Mnemonic::Cqo
        | Mnemonic::Bswap => true,
        // Bit tests on a register (a memory bit string may reach past the operand).
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc => {
            insn.op0_kind() == OpKind::Register
        }
        _ => false,
    }
}

/// The arithmetic and logic instructions that read and write their destination (ADD OR ADC
/// SBB AND SUB XOR, INC DEC NEG NOT): translated, and all may carry LOCK.
fn read_modify_write_alu(m: Mnemonic) -> bool {
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
    )
}

/// The instructions that may carry LOCK (always with a memory destination): natively atomic
/// (those of the Intel SDM Vol. 2A LOCK list that are translated: bit tests only on registers).
fn lockable(m: Mnemonic) -> bool {
    read_modify_write_alu(m) || matches!(m, Mnemonic::Xchg | Mnemonic::Xadd | Mnemonic::Cmpxchg)
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
    memop_for(insn, size, 0)
}

/// The alignment a vector instruction's memory operand of `size` bytes needs, or 0 for none.
/// Legacy SSE m128 operands fault unless 16-byte aligned, except the unaligned loads and
/// stores and the string compares (Intel SDM Vol. 1 §11.6.6; Vol. 2B, PCMPESTRI: "no
/// alignment"); VEX forms need alignment only for the aligned moves (Vol. 2, VMOVAPS...). An
/// operand the rule is stricter about than the CPU just takes the interpreter's path.
fn alignment(insn: &Instruction, size: usize) -> u8 {
    use Mnemonic as M;
    let m = insn.mnemonic();
    if insn.encoding() == EncodingKind::VEX {
        let aligned = matches!(
            m,
            M::Vmovaps
                | M::Vmovapd
                | M::Vmovdqa
                | M::Vmovntps
                | M::Vmovntpd
                | M::Vmovntdq
                | M::Vmovntdqa
        );
        return if aligned { size as u8 } else { 0 };
    }
    let unaligned_ok = matches!(
        m,
        M::Movups
            | M::Movupd
            | M::Movdqu
            | M::Lddqu
            | M::Pcmpestri
            | M::Pcmpestrm
            | M::Pcmpistri
            | M::Pcmpistrm
    );
    if size == 16 && !unaligned_ok {
        16
    } else {
        0
    }
}

/// The `MemOp` of an instruction with one explicit memory operand of `size` bytes; None for
/// 32-bit addressing (0x67 truncates the address; left to the interpreter).
fn memop_for(insn: &Instruction, size: usize, align: u8) -> Option<Kind> {
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
        align,
    }))
}

/// The CPU level a vector or bit-manipulation instruction needs, when it belongs to the
/// extensions translated natively (SSE to SSE4.2, POPCNT, AVX, AVX2, FMA, F16C, BMI1/2, LZCNT,
/// MOVBE) in the legacy or VEX encoding; None for every other instruction.
fn vector_level(insn: &Instruction) -> Option<CpuLevel> {
    use CpuidFeature as F;
    if !matches!(insn.encoding(), EncodingKind::Legacy | EncodingKind::VEX) {
        return None;
    }
    let f = insn.cpuid_features();
    // SSE and SSE2, and every feature the v2/v3 levels add except the state instructions
    // (XSAVE*) and CMPXCHG16B, which the interpreter keeps.
    let ours = !f.is_empty()
        && f.iter().all(|&c| {
            matches!(c, F::SSE | F::SSE2)
                || (level_of(c).is_some_and(|l| l > CpuLevel::X86_64)
                    && !matches!(c, F::XSAVE | F::XSAVEOPT | F::XSAVEC | F::CMPXCHG16B))
        });
    if ours {
        level_needed(f)
    } else {
        None
    }
}

/// A vector instruction on XMM/YMM registers, GPRs, immediates and at most one memory operand
/// (VSIB gathers are left out by `memop_for`: their index is a vector). MXCSR and state
/// instructions, MMX-register forms (their registers are the x87 state, kept in software) and
/// the masked stores through an implicit RDI are left out.
fn vector_form(insn: &Instruction) -> Option<Kind> {
    if insn.has_lock_prefix() {
        return None;
    }
    if matches!(
        insn.mnemonic(),
        Mnemonic::Ldmxcsr
            | Mnemonic::Stmxcsr
            | Mnemonic::Vldmxcsr
            | Mnemonic::Vstmxcsr
            | Mnemonic::Fxsave
            | Mnemonic::Fxrstor
            | Mnemonic::Fxsave64
            | Mnemonic::Fxrstor64
            | Mnemonic::Maskmovdqu
            | Mnemonic::Vmaskmovdqu
            | Mnemonic::Clflush
    ) {
        return None;
    }
    let mut mems = 0;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Register => {
                let r = insn.op_register(i);
                if !(r.is_xmm() || r.is_ymm() || r.is_gpr()) {
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
            if !matches!(size, 1 | 2 | 4 | 8 | 16 | 32) || is_moffs(insn.code()) {
                return None;
            }
            memop_for(insn, size, alignment(insn, size))
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

/// Whether every flag `insn` may write is certainly written: false for shifts and rotates by
/// CL, which leave the flags alone when the count is zero (Intel SDM Vol. 2B, SAL/SAR/SHL/SHR).
pub fn writes_flags_always(insn: &Instruction) -> bool {
    let last = insn.op_count().saturating_sub(1);
    !(insn.op_count() >= 2
        && insn.op_kind(last) == OpKind::Register
        && insn.op_register(last) == Register::CL
        && is_shift(insn.mnemonic()))
}

/// The shifts and rotates, whose count (CL or an immediate) is masked and may be zero.
pub fn is_shift(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::Shl
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror
            | Mnemonic::Rcl
            | Mnemonic::Rcr
            | Mnemonic::Shld
            | Mnemonic::Shrd
    )
}

/// Shifts and rotates by CL, or by an immediate that is not zero after the CPU's masking (a
/// zero immediate count is left to the interpreter) (Intel SDM Vol. 2B, SAL/SAR/SHL/SHR: the count is masked to 5 bits, 6 with
/// REX.W).
fn shift_count_ok(insn: &Instruction) -> bool {
    let Some(last) = insn.op_count().checked_sub(1) else {
        return false;
    };
    let count = match insn.op_kind(last) {
        OpKind::Immediate8 => insn.immediate8() as u32,
        OpKind::Register => return insn.op_register(last) == Register::CL,
        _ => return false,
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
