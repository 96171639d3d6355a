//! Translation of one guest block into host code.
//!
//! A block is the longest run of supported instructions at a guest RIP (`select`), ended by
//! the first unsupported instruction (the exit continues there, in the interpreter), a direct
//! JMP or Jcc (exits with the taken and not-taken RIPs), or the size cap. Supported
//! instructions are re-encoded from iced's decoded form, never copied as bytes.
//!
//! Undefined flags: the host leaves architecturally undefined flags (SHL's AF, IMUL's SF ZF AF
//! PF, ...) as this host CPU model does, which need not be what the interpreter defines. An
//! instruction is therefore only translated when every flag it leaves undefined is dead (a
//! later instruction of the block writes it before anything reads it); all flags are live at
//! the end of a block.

use crate::context::off;
use crate::memop;
use crate::select::{select, Kind};
use cetbox_mem::AddressSpace;
use iced_x86::code_asm::*;
use iced_x86::{Code, ConditionCode, Decoder, DecoderOptions, IcedError, Instruction, RflagsBits};

/// At most this many guest instructions per block (the engine contract polls `stop` at least
/// once per 64 instructions).
pub const MAX_BLOCK: usize = 64;

/// All arithmetic flags, as iced's `RflagsBits` spell them.
const ARITH: u32 = RflagsBits::OF
    | RflagsBits::SF
    | RflagsBits::ZF
    | RflagsBits::AF
    | RflagsBits::CF
    | RflagsBits::PF;

/// How a block ends.
enum End {
    /// Falls through to (or stops before an unsupported instruction at) this RIP.
    Next(u64),
    /// A direct JMP.
    Jmp(u64),
    /// A direct Jcc: condition, taken target, fall-through RIP.
    Jcc(ConditionCode, u64, u64),
}

/// A decoded block ready to emit.
pub struct Block {
    insns: Vec<(Instruction, Kind)>,
    end: End,
}

impl Block {
    /// Whether translating pays (each entry into translated code costs a trampoline round
    /// trip): a block that branches back to its own start (a loop that then runs inside the
    /// cache) always, others only with at least `min` instructions.
    pub fn worth_it(&self, start: u64, min: usize) -> bool {
        let self_loop = match self.end {
            End::Next(_) => false,
            End::Jmp(t) => t == start,
            End::Jcc(_, t, f) => t == start || f == start,
        };
        self_loop || self.insns.len() >= min
    }

    /// Guest instructions the block retires on each exit path (the terminator included).
    fn retired(&self) -> u64 {
        self.insns.len() as u64 + u64::from(!matches!(self.end, End::Next(_)))
    }
}

/// Decodes the block at `rip`; None if not even its first instruction can be translated.
/// Marks the bytes it reads as code, as the interpreter does, so writes to them bump the
/// code epoch.
pub fn decode(rip: u64, mem: &AddressSpace) -> Option<Block> {
    let mut insns: Vec<(Instruction, Kind)> = Vec::new();
    let mut ip = rip;
    let mut buf = [0u8; 16];
    let mut end = None;
    while insns.len() < MAX_BLOCK {
        let Ok(n) = mem.fetch(ip, &mut buf) else {
            break;
        };
        let mut dec = Decoder::with_ip(64, &buf[..n], ip, DecoderOptions::NONE);
        let insn = dec.decode();
        if insn.is_invalid() {
            break;
        }
        let branch = insn.is_jmp_short_or_near()
            || (insn.is_jcc_short_or_near() && insn.condition_code() != ConditionCode::None);
        if branch {
            mem.mark_code(ip);
            mem.mark_code(insn.next_ip() - 1);
            let target = insn.near_branch_target();
            end = Some(if insn.is_jmp_short_or_near() {
                End::Jmp(target)
            } else {
                End::Jcc(insn.condition_code(), target, insn.next_ip())
            });
            break;
        }
        let Some(kind) = select(&insn) else {
            break;
        };
        mem.mark_code(ip);
        mem.mark_code(insn.next_ip() - 1);
        insns.push((insn, kind));
        ip = insn.next_ip();
    }
    // Keep only the prefix whose undefined flags are all dead; truncating moves the block end
    // (where all flags are live) earlier, so repeat until nothing changes.
    while let Some(i) = first_live_undefined(&insns) {
        let next = insns[i].0.ip();
        insns.truncate(i);
        end = Some(End::Next(next));
    }
    let end = end.unwrap_or(End::Next(ip));
    if insns.is_empty() && matches!(end, End::Next(_)) {
        return None;
    }
    Some(Block { insns, end })
}

/// The index of the first instruction that leaves a flag undefined which is live after it.
fn first_live_undefined(insns: &[(Instruction, Kind)]) -> Option<usize> {
    let mut live = ARITH;
    let mut first = None;
    for (i, (insn, kind)) in insns.iter().enumerate().rev() {
        if *kind == Kind::Skip {
            continue;
        }
        if insn.rflags_undefined() & live != 0 {
            first = Some(i);
        }
        live = (live & !insn.rflags_modified()) | insn.rflags_read();
    }
    first
}

/// Where a block exit may go without returning to the run loop.
pub struct Chain<'a> {
    /// The guest RIP of the block being emitted (a branch back to it is a self-loop).
    pub start: u64,
    /// The code epoch the translation is made under; chaining needs it to fit a displacement.
    pub epoch: u64,
    /// Existing translations of other guest RIPs.
    pub lookup: &'a dyn Fn(u64) -> Option<u64>,
}

/// Assembles `b` for the host address `ip`; `exit` is the exit trampoline.
pub fn emit(b: &Block, ip: u64, exit: u64, chain: &Chain) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut top = a.create_label();
    // A label needs an instruction to attach to; a zero-length block body gets a NOP.
    a.set_label(&mut top)?;
    a.nop()?;
    let live = flags_live_before(&b.insns);
    // Out-of-line paths of memory checks: (label, operand, index of the instruction).
    let mut slow = Vec::new();
    for (i, (insn, kind)) in b.insns.iter().enumerate() {
        match kind {
            Kind::Skip => {}
            Kind::Native => a.add_instruction(*insn)?,
            Kind::Mem(m) => {
                let l = a.create_label();
                memop::emit(&mut a, insn, m, live[i], l)?;
                slow.push((l, *m, i));
            }
            Kind::LeaRipRel => {
                let addr = insn.memory_displacement64();
                let r = insn.op0_register();
                let mov = if r.size() == 8 {
                    Instruction::with2(Code::Mov_r64_imm64, r, addr)?
                } else {
                    Instruction::with2(Code::Mov_r32_imm32, r, addr as u32)?
                };
                a.add_instruction(mov)?;
            }
        }
    }
    let n = b.retired();
    let out = |a: &mut CodeAssembler, rip: u64| -> Result<(), IcedError> {
        let target = if rip == chain.start {
            Some(Target::Label(top))
        } else {
            (chain.lookup)(rip).map(Target::Host)
        };
        match target {
            Some(t) if chain.epoch <= i32::MAX as u64 => {
                chained_exit(a, rip, n, chain.epoch, t, exit)
            }
            _ => exit_stub(a, rip, n, exit),
        }
    };
    match b.end {
        End::Next(rip) => exit_stub(&mut a, rip, n, exit)?,
        End::Jmp(rip) => out(&mut a, rip)?,
        End::Jcc(cc, taken, fall) => {
            let mut t = a.create_label();
            jcc(&mut a, cc, t)?;
            out(&mut a, fall)?;
            a.set_label(&mut t)?;
            out(&mut a, taken)?;
        }
    }
    for (mut l, m, i) in slow {
        a.set_label(&mut l)?;
        memop::slow_path(&mut a, &m)?;
        exit_stub(&mut a, b.insns[i].0.ip(), i as u64, exit)?;
    }
    a.assemble(ip)
}

/// For each instruction, whether a guest arithmetic flag is read before being written from
/// the point just before it (the block's end and its Jcc read them all).
fn flags_live_before(insns: &[(Instruction, Kind)]) -> Vec<bool> {
    let mut live = ARITH;
    let mut out = vec![true; insns.len()];
    for (i, (insn, kind)) in insns.iter().enumerate().rev() {
        if *kind != Kind::Skip {
            live = (live & !insn.rflags_modified()) | insn.rflags_read();
        }
        out[i] = live != 0;
    }
    out
}

#[derive(Clone, Copy)]
enum Target {
    Label(CodeLabel),
    Host(u64),
}

/// Adds `n` to the retired count without touching a flag (LEA) or the guest stack; RCX must
/// be free (spilled).
fn add_retired(a: &mut CodeAssembler, n: u64) -> Result<(), IcedError> {
    a.mov(rcx, qword_ptr(off::RETIRED).gs())?;
    a.lea(rcx, qword_ptr(rcx + n as i32))?;
    a.mov(qword_ptr(off::RETIRED).gs(), rcx)
}

/// Leaves the block: records the next guest RIP and the retired count without touching a
/// flag or the guest stack, then jumps to the exit trampoline.
fn exit_stub(a: &mut CodeAssembler, rip: u64, retired: u64, exit: u64) -> Result<(), IcedError> {
    a.mov(qword_ptr(off::SCRATCH).gs(), rcx)?;
    add_retired(a, retired)?;
    a.mov(rcx, rip)?;
    a.mov(qword_ptr(off::NEXT_RIP).gs(), rcx)?;
    a.mov(rcx, qword_ptr(off::SCRATCH).gs())?;
    a.jmp(exit)
}

/// Continues directly into the translation of `rip` when the stop flag is clear and the code
/// epoch is still the one both blocks were translated under (the run loop's checks, done
/// inline and flag-free: (epoch - E) + stop is zero exactly when both hold, since the epoch
/// only grows; JRCXZ branches on it without reading or writing RFLAGS); otherwise leaves to
/// the run loop with RIP = `rip`.
fn chained_exit(
    a: &mut CodeAssembler,
    rip: u64,
    retired: u64,
    epoch: u64,
    target: Target,
    exit: u64,
) -> Result<(), IcedError> {
    a.mov(qword_ptr(off::SCRATCH).gs(), rcx)?;
    a.mov(qword_ptr(off::SCRATCH2).gs(), rdx)?;
    add_retired(a, retired)?;
    a.mov(rcx, qword_ptr(off::EPOCH_PTR).gs())?;
    a.mov(rcx, qword_ptr(rcx))?;
    a.lea(rcx, qword_ptr(rcx - epoch as i32))?;
    a.mov(rdx, qword_ptr(off::STOP_PTR).gs())?;
    a.movzx(edx, byte_ptr(rdx))?;
    a.lea(rcx, qword_ptr(rcx + rdx))?;
    let mut go = a.create_label();
    a.jrcxz(go)?;
    a.mov(rcx, rip)?;
    a.mov(qword_ptr(off::NEXT_RIP).gs(), rcx)?;
    a.mov(rcx, qword_ptr(off::SCRATCH).gs())?;
    a.mov(rdx, qword_ptr(off::SCRATCH2).gs())?;
    a.jmp(exit)?;
    a.set_label(&mut go)?;
    a.mov(rcx, qword_ptr(off::SCRATCH).gs())?;
    a.mov(rdx, qword_ptr(off::SCRATCH2).gs())?;
    match target {
        Target::Label(l) => a.jmp(l),
        Target::Host(h) => a.jmp(h),
    }
}

fn jcc(a: &mut CodeAssembler, cc: ConditionCode, t: CodeLabel) -> Result<(), IcedError> {
    match cc {
        ConditionCode::o => a.jo(t),
        ConditionCode::no => a.jno(t),
        ConditionCode::b => a.jb(t),
        ConditionCode::ae => a.jae(t),
        ConditionCode::e => a.je(t),
        ConditionCode::ne => a.jne(t),
        ConditionCode::be => a.jbe(t),
        ConditionCode::a => a.ja(t),
        ConditionCode::s => a.js(t),
        ConditionCode::ns => a.jns(t),
        ConditionCode::p => a.jp(t),
        ConditionCode::np => a.jnp(t),
        ConditionCode::l => a.jl(t),
        ConditionCode::ge => a.jge(t),
        ConditionCode::le => a.jle(t),
        ConditionCode::g => a.jg(t),
        // `decode` only ends blocks in Jcc forms, which always have a condition.
        ConditionCode::None => unreachable!("Jcc without a condition"),
    }
}
