//! Alignment checking (#AC): Linux runs user mode with CR0.AM set (arch/x86/kernel/cpu/common.c
//! sets X86_CR0_AM in cr4_init/cr0 at boot), so a user program that sets EFLAGS.AC (POPF,
//! a signal frame, ptrace) gets #AC on a misaligned data access, which Linux turns into
//! SIGBUS/BUS_ADRALN with si_addr 0 (arch/x86/kernel/traps.c, `exc_alignment_check` →
//! `do_trap(.., BUS_ADRALN, NULL)`).
//!
//! Which accesses are checked and to what alignment follows Intel SDM Vol. 3A §6.15
//! "Interrupt 17—Alignment Check Exception (#AC)", Table 6-7, as the host CPU shows it
//! (`tests/guest/hostile/alignment_check.c` compares every case with a native run):
//! - words, doublewords and quadwords to their size (loads, stores, read-modify-writes,
//!   stack pushes and pops, string elements, x87 and scalar SSE/AVX operands, MMX m64,
//!   CMPXCHG8B), x87 m80 to 8, FSTENV/FSAVE images to 4 (2 with a 16-bit operand size);
//! - not bytes, not 16- or 32-byte operands (MOVUPS, MOVDQU, LDDQU, VEX m128/m256 arithmetic
//!   do not fault; the explicitly aligned forms, FXSAVE and XSAVE raise #GP on their own),
//!   not gather elements, not LEA/NOP/PREFETCH/CLFLUSH, which access nothing, not the system
//!   stores SGDT/SIDT/SLDT/STR/SMSW; privileged instructions raise #GP first.
//!
//! The check runs before the instruction, so #AC is raised before any page fault of the same
//! access (the host reports #AC for a misaligned load from an unmapped page) and nothing is
//! changed. It is only reached while EFLAGS.AC is set: the run loops step one instruction at
//! a time then, and the common path pays one flag test per block (shared with TF's).

use crate::{Cpu, Exception};
use iced_x86::{Instruction, InstructionInfoFactory, MemorySize, Mnemonic, OpAccess, OpKind};

/// The alignment #AC demands of an access of `size`, or None when it is not checked.
fn required(size: MemorySize) -> Option<u64> {
    match size {
        MemorySize::FpuEnv14 | MemorySize::FpuState94 => Some(2),
        MemorySize::FpuEnv28 | MemorySize::FpuState108 => Some(4),
        s => match s.size() {
            2 | 4 | 8 => Some(s.size() as u64),
            // m80: x87 extended real and packed BCD, and m16:64 far pointers.
            10 => Some(8),
            // m16:32 far pointers.
            6 => Some(4),
            _ => None,
        },
    }
}

/// #AC if the instruction `insn` (about to run on `cpu`) makes a checked access to a
/// misaligned address.
pub(crate) fn check(cpu: &Cpu, insn: &Instruction) -> Result<(), Exception> {
    // Privileged instructions raise #GP before any access; the descriptor-table and system
    // register stores (SGDT, SIDT, SLDT, STR, SMSW) are system accesses the host CPU does not
    // check (it stores them misaligned with AC set), nor gathers' elements.
    if insn.is_vsib()
        || insn.is_privileged()
        || matches!(
            insn.mnemonic(),
            Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Sldt | Mnemonic::Str | Mnemonic::Smsw
        )
    {
        return Ok(());
    }
    // An instruction the presented CPU lacks raises #UD before it accesses anything: a CPU
    // without the feature decodes no memory operand for it (Intel SDM Vol. 3A §6.15, Table
    // 6-2: #UD is a fault of the decode, #AC one of the access; the instruction handlers raise
    // that #UD themselves). TZCNT and LZCNT are the exception: an older CPU runs their
    // encodings as REP BSF/BSR, whose accesses are checked.
    // Instructions of no level cetbox models are #UD unless cetbox implements them anyway.
    let lacking = match crate::level::level_needed(insn.cpuid_features()) {
        Some(l) => l > cpu.config.level,
        None => crate::exec::handler_for(insn.code()).is_none(),
    };
    if lacking && !matches!(insn.mnemonic(), Mnemonic::Tzcnt | Mnemonic::Lzcnt) {
        return Ok(());
    }
    // A REP string instruction with RCX (ECX under a 0x67 prefix) zero accesses nothing.
    if insn.is_string_instruction() && (insn.has_rep_prefix() || insn.has_repne_prefix()) {
        let a32 = (0..insn.op_count()).any(|i| {
            matches!(
                insn.op_kind(i),
                OpKind::MemorySegESI | OpKind::MemorySegEDI | OpKind::MemoryESEDI
            )
        });
        let rcx = if a32 {
            cpu.gpr[1] as u32 as u64
        } else {
            cpu.gpr[1]
        };
        if rcx == 0 {
            return Ok(());
        }
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(insn);
    for m in info.used_memory() {
        if matches!(m.access(), OpAccess::None | OpAccess::NoMemAccess) {
            continue;
        }
        // iced-x86 gives a REP string instruction's accesses no size; each element has the
        // instruction's.
        let size = match m.memory_size() {
            MemorySize::Unknown if insn.is_string_instruction() => insn.memory_size(),
            s => s,
        };
        let Some(align) = required(size) else {
            continue;
        };
        let addr = cpu.used_memory_address(m);
        if let Some(a) = addr {
            if a & (align - 1) != 0 {
                return Err(Exception::AlignmentCheck);
            }
        }
    }
    Ok(())
}
