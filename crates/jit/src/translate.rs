//! Translation of one guest block into host code.
//!
//! A block is the longest run of supported instructions at a guest RIP (`select`), ended by
//! the first unsupported instruction (the exit continues there, in the interpreter), a direct
//! JMP or Jcc (exits with the taken and not-taken RIPs), or the size cap. Supported
//! instructions are re-encoded from iced's decoded form, never copied as bytes.
//!
//! Undefined flags: the host leaves architecturally undefined flags (SHL's AF, IMUL's SF ZF AF
//! PF, TEST's AF...) as this host CPU does, and so does the interpreter: cetbox's CPU takes
//! its undefined results from the host vendor (crates/cpu/src/undef.rs). The differential
//! tests hold both engines to the host on every form, undefined bits included, so translated
//! instructions run natively whatever flags they leave undefined.

use crate::cache;
use crate::context::off;
use crate::group;
use crate::memop::{self, Addr, Need, Place};
use crate::select::{select, Kind};
use cetbox_cpu::level::CpuLevel;
use cetbox_mem::AddressSpace;
use iced_x86::code_asm::*;
use iced_x86::{
    Code, ConditionCode, Decoder, DecoderOptions, IcedError, Instruction, Register, RflagsBits,
};

/// At most this many guest instructions per block (the engine contract polls `stop` at least
/// once per 64 instructions).
pub const MAX_BLOCK: usize = 64;

/// At most this many direct Jcc a block goes on past (`Kind::SideExit`) before one ends it.
const MAX_SIDE_EXITS: usize = 4;

/// A trace stopped by an instruction left to the interpreter keeps the instructions after its
/// last side exit only when there are at least this many (`decode`).
const TAIL_MIN: usize = 4;

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
    /// Reached `MAX_BLOCK` instructions: goes on at this RIP like a jump there (chained), with
    /// no terminator of its own.
    Full(u64),
    /// A direct JMP.
    Jmp(u64),
    /// A direct Jcc: condition, taken target, fall-through RIP.
    Jcc(ConditionCode, u64, u64),
    /// A direct near CALL (CALL rel32): its RIP, target and return address.
    Call { ip: u64, target: u64, ret: u64 },
    /// A near RET without an immediate, at this RIP.
    Ret(u64),
    /// An indirect near JMP (register or memory operand).
    JmpIndirect(Instruction),
    /// An indirect near CALL (register or memory operand).
    CallIndirect(Instruction),
}

/// A decoded block ready to emit.
pub struct Block {
    insns: Vec<(Instruction, Kind)>,
    end: End,
}

impl Block {
    /// Whether translating pays (each entry into translated code from the run loop costs a
    /// trampoline round trip): a block that ends in a branch, CALL or RET always (it can be
    /// reached and left by chaining, inside the cache), one that stops before an instruction
    /// the translator leaves to the interpreter only with at least `min` instructions.
    pub fn worth_it(&self, min: usize) -> bool {
        !matches!(self.end, End::Next(_)) || self.insns.len() >= min
    }

    /// Guest instructions the block retires on each exit path (the terminator included).
    fn retired(&self) -> u64 {
        self.insns.len() as u64 + u64::from(!matches!(self.end, End::Next(_) | End::Full(_)))
    }
}

/// Decodes the block at `rip`; None if not even its first instruction can be translated.
/// Marks the bytes it reads as code, as the interpreter does, so writes to them bump the
/// code epoch.
pub fn decode(rip: u64, mem: &AddressSpace, sse: bool, level: CpuLevel) -> Option<Block> {
    let mut insns: Vec<(Instruction, Kind)> = Vec::new();
    let mut ip = rip;
    let mut buf = [0u8; 16];
    let mut end = None;
    let mut side_exits = 0;
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
            if !insn.is_jmp_short_or_near()
                && side_exits < MAX_SIDE_EXITS
                && insns.len() + 1 < MAX_BLOCK
            {
                // A trace: the not-taken path goes on in this block, so it costs no exit
                // (no retired-count update, epoch poll and jump); the taken path leaves
                // through a side exit as a block's last Jcc would.
                side_exits += 1;
                insns.push((insn, Kind::SideExit(insn.condition_code(), target)));
                ip = insn.next_ip();
                continue;
            }
            end = Some(if insn.is_jmp_short_or_near() {
                End::Jmp(target)
            } else {
                End::Jcc(insn.condition_code(), target, insn.next_ip())
            });
            break;
        }
        if matches!(insn.code(), Code::Jmp_rm64 | Code::Call_rm64) && indirect_ok(&insn) {
            mem.mark_code(ip);
            mem.mark_code(insn.next_ip() - 1);
            end = Some(if insn.code() == Code::Jmp_rm64 {
                End::JmpIndirect(insn)
            } else {
                End::CallIndirect(insn)
            });
            break;
        }
        if insn.code() == Code::Call_rel32_64 || insn.code() == Code::Retnq {
            mem.mark_code(ip);
            mem.mark_code(insn.next_ip() - 1);
            end = Some(if insn.code() == Code::Retnq {
                End::Ret(ip)
            } else {
                End::Call {
                    ip,
                    target: insn.near_branch_target(),
                    ret: insn.next_ip(),
                }
            });
            break;
        }
        let Some(kind) = select(&insn, sse, level) else {
            break;
        };
        mem.mark_code(ip);
        mem.mark_code(insn.next_ip() - 1);
        insns.push((insn, kind));
        ip = insn.next_ip();
    }
    let mut end = end.unwrap_or(if insns.len() == MAX_BLOCK {
        End::Full(ip)
    } else {
        End::Next(ip)
    });
    // A trace that runs into an instruction left to the interpreter a few instructions after
    // its last side exit ends at that Jcc instead, so both its paths chain (a short loop body
    // followed by such an instruction would otherwise not be worth translating, `worth_it`).
    if matches!(end, End::Next(_)) {
        if let Some(last) = insns
            .iter()
            .rposition(|(_, k)| matches!(k, Kind::SideExit(..)))
        {
            if insns.len() - last - 1 < TAIL_MIN {
                let (jcc, kind) = insns[last];
                if let Kind::SideExit(cc, target) = kind {
                    insns.truncate(last);
                    end = End::Jcc(cc, target, jcc.next_ip());
                }
            }
        }
    }
    if insns.is_empty() && matches!(end, End::Next(_)) {
        return None;
    }
    Some(Block { insns, end })
}

/// Where a block exit may go without returning to the run loop.
pub struct Chain<'a> {
    /// The guest RIP of the block being emitted (a branch back to it is a self-loop).
    pub start: u64,
    /// The code epoch the translation is made under; chaining needs it to fit a displacement.
    pub epoch: u64,
    /// The host addresses of the code epoch (`AddressSpace::code_epoch_cell`) and of the stop
    /// flag, which exits poll as immediates (one load fewer each than through the context);
    /// the run loop flushes the cache when either changes.
    pub epoch_at: u64,
    pub stop_at: u64,
    /// Existing translations of other guest RIPs.
    pub lookup: &'a dyn Fn(u64) -> Option<u64>,
    /// Whether the guest's shadow stack is enabled (CALL and RET then drive it); the cache
    /// is flushed when that changes.
    pub shstk: bool,
    /// The next remembered-page slots to give a read and a write site
    /// (`memop::check_place`), counted across translations (modulo half of
    /// `context::PAGE_SLOTS` each).
    pub slots: &'a std::cell::Cell<(usize, usize)>,
    /// The shared stubs: the tails of failed checks (`trampoline::step_stub`), by address
    /// register, the full checks of remembered pages and the exits' tails.
    pub stubs: &'a crate::trampoline::Stubs,
}

impl Chain<'_> {
    /// A remembered-page slot for an access site with `need`: reads in the first half of the
    /// slots, writes in the second (a write site's page allows more than a read site's, so
    /// they never share a slot).
    fn slot_for(&self, need: Need) -> Option<usize> {
        const HALF: usize = crate::context::PAGE_SLOTS / 2;
        let (r, w) = self.slots.get();
        match need {
            Need::Read => {
                self.slots.set(((r + 1) % HALF, w));
                Some(r)
            }
            Need::Write => {
                self.slots.set((r, (w + 1) % HALF));
                Some(HALF + w)
            }
            Need::ShadowRead | Need::ShadowWrite => None,
        }
    }
}

/// Assembles `b` for the host address `ip`; exits leave through the stubs of `chain`.
pub fn emit(b: &Block, ip: u64, chain: &Chain) -> Result<Vec<u8>, IcedError> {
    let mut a = crate::assemble::assembler()?;
    let mut top = a.create_label();
    // Bound to the first instruction emitted (every block emits its exit at least).
    a.set_label(&mut top)?;
    let plan_flags = FlagsPlan::new(&b.insns);
    let end_slot = match b.end {
        End::Call { .. } | End::CallIndirect(_) => Some(group::CALL_SLOT),
        End::Ret(_) => Some(group::RET_SLOT),
        _ => None,
    };
    let plan = group::plan(&b.insns, end_slot);
    let mut groups = plan.groups.iter().peekable();
    // Out-of-line paths of memory checks: (label, operand, index of the instruction).
    let mut slow = Vec::new();
    let mut cold = memop::Cold::default();
    // Whether FLAGS_SAVE holds the guest's flags and the host's may differ (`FlagsPlan`).
    let mut saved = false;
    let checked_at = |i: usize| {
        plan.groups.iter().any(|g| g.at == i)
            || (!plan.covered[i]
                && matches!(b.insns[i].1, Kind::Mem(_) | Kind::Push(_) | Kind::Pop(_)))
    };
    let keep: Vec<bool> = (0..b.insns.len())
        .map(|i| plan_flags.keep_saved(i, &checked_at))
        .collect();
    // Side exits: (label, target, instructions retired when taken).
    let mut sides = Vec::new();
    for (i, (insn, kind)) in b.insns.iter().enumerate() {
        if let Some(g) = groups.next_if(|g| g.at == i) {
            // One check for the accesses through this base register of this and the
            // following instructions (`group`).
            let l = a.create_label();
            let place = Place::Mem {
                base: g.base,
                index: Register::None,
                scale: 1,
                disp: g.lo,
            };
            memop::acquire_rax(&mut a, !saved)?;
            let slot = chain.slot_for(g.need);
            memop::check_place(&mut a, &mut cold, place, g.len, 0, g.need, saved, l, slot)?;
            memop::release(&mut a, !keep[i])?;
            saved = keep[i];
            slow.push((l, None, insn.ip(), i as u64));
        }
        if plan.covered[i] {
            a.add_instruction(*insn)?;
            saved = plan_flags.after(i, saved);
            continue;
        }
        match kind {
            Kind::Skip => {}
            Kind::Native => a.add_instruction(*insn)?,
            Kind::SideExit(cc, target) => {
                let l = a.create_label();
                jcc(&mut a, *cc, l)?;
                sides.push((l, *target, i as u64 + 1));
            }
            Kind::Mem(m) => {
                let l = a.create_label();
                if let Some(p) = memop::direct_ok(insn, m) {
                    let need = if m.write { Need::Write } else { Need::Read };
                    let slot = chain.slot_for(need);
                    memop::emit_direct(&mut a, &mut cold, insn, m, p, !saved, !keep[i], l, slot)?;
                    slow.push((l, None, insn.ip(), i as u64));
                } else {
                    memop::emit(&mut a, &mut cold, insn, m, !saved, !keep[i], l)?;
                    slow.push((l, Some(m.addr_reg), insn.ip(), i as u64));
                }
                saved = keep[i];
            }
            Kind::Push(_) | Kind::Pop(_) => {
                let l = a.create_label();
                let (disp, need) = if matches!(kind, Kind::Push(_)) {
                    (-8, Need::Write)
                } else {
                    (0, Need::Read)
                };
                let place = Place::Mem {
                    base: Register::RSP,
                    index: Register::None,
                    scale: 1,
                    disp,
                };
                memop::acquire_rax(&mut a, !saved)?;
                let slot = chain.slot_for(need);
                memop::check_place(&mut a, &mut cold, place, 8, 0, need, saved, l, slot)?;
                memop::release(&mut a, !keep[i])?;
                a.add_instruction(*insn)?;
                saved = keep[i];
                slow.push((l, None, insn.ip(), i as u64));
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
        saved = plan_flags.after(i, saved);
    }
    // `keep_saved` never keeps the flags saved past the last instruction: the terminator and
    // the next block find them in RFLAGS.
    debug_assert!(!saved, "guest flags left in FLAGS_SAVE at the block's end");
    let n = b.retired();
    let out = |a: &mut CodeAssembler, rip: u64, n: u64| -> Result<(), IcedError> {
        let target = if rip == chain.start {
            Some(Target::Label(top))
        } else {
            (chain.lookup)(rip).map(Target::Host)
        };
        match target {
            Some(t) if chain.epoch <= i32::MAX as u64 => {
                chained_exit(a, rip, chain.start, n, chain, Some(t))
            }
            // Not translated yet: leave to the run loop, which links this exit to the
            // target's translation once there is one (`link_exit`).
            None if chain.epoch <= i32::MAX as u64 => {
                chained_exit(a, rip, chain.start, n, chain, None)
            }
            _ => {
                memop::acquire(a, TERM_REG, Addr::None, Register::None, true)?;
                a.mov(rax, rip)?;
                dispatch(a, n, chain, false)
            }
        }
    };
    match b.end {
        End::Next(rip) => exit_stub(&mut a, rip, n, chain.stubs.exit_rcx)?,
        End::Jmp(rip) | End::Full(rip) => out(&mut a, rip, n)?,
        End::Jcc(cc, taken, fall) => {
            let mut t = a.create_label();
            jcc(&mut a, cc, t)?;
            out(&mut a, fall, n)?;
            a.set_label(&mut t)?;
            out(&mut a, taken, n)?;
        }
        End::Call { ip, target, ret } => {
            let l = a.create_label();
            // `call 1f; 1:` does not touch the shadow stack (Intel SDM Vol. 2A, CALL).
            call(
                &mut a,
                &mut cold,
                target,
                ret,
                chain.shstk && target != ret,
                plan.covered[b.insns.len()],
                l,
                chain.slot_for(Need::Write),
            )?;
            slow.push((l, Some(TERM_REG), ip, b.insns.len() as u64));
            out(&mut a, target, n)?;
        }
        End::Ret(ip) => {
            let l = a.create_label();
            let checked = plan.covered[b.insns.len()];
            ret(&mut a, &mut cold, chain, checked, n, l)?;
            slow.push((l, Some(TERM_REG), ip, b.insns.len() as u64));
        }
        End::JmpIndirect(insn) | End::CallIndirect(insn) => {
            let l = a.create_label();
            indirect_target(&mut a, &mut cold, &insn, l)?;
            if matches!(b.end, End::CallIndirect(_)) {
                a.mov(qword_ptr(off::JUMP).gs(), rax)?;
                let checked = plan.covered[b.insns.len()];
                let slot = chain.slot_for(Need::Write);
                push_return(
                    &mut a,
                    &mut cold,
                    insn.next_ip(),
                    chain.shstk,
                    checked,
                    l,
                    slot,
                )?;
                a.mov(rax, qword_ptr(off::JUMP).gs())?;
            }
            dispatch(&mut a, n, chain, false)?;
            slow.push((l, Some(TERM_REG), insn.ip(), b.insns.len() as u64));
        }
    }
    for (mut l, target, retired) in sides {
        a.set_label(&mut l)?;
        out(&mut a, target, retired)?;
    }
    memop::emit_cold(&mut a, cold, &chain.stubs.checks)?;
    for (mut l, r, rip, retired) in slow {
        a.set_label(&mut l)?;
        // The guest RIP and the count retired before it in one immediate for the shared tail
        // (`trampoline::step_stub`); guest code is below 2^47, so the packed form is the
        // only one translated code ever takes.
        if rip >> 47 == 0 && retired < 1 << 16 {
            let stub = r.map_or(crate::trampoline::NO_ADDR_REG, |r| r.number());
            a.mov(rax, rip | retired << 48)?;
            a.jmp(chain.stubs.steps[stub])?;
        } else {
            memop::slow_path(&mut a, r)?;
            exit_stub(&mut a, rip, retired, chain.stubs.exit_rcx)?;
        }
    }
    crate::assemble::assemble_or_iced(a, ip)
}

/// How each instruction of a block uses the guest's arithmetic flags, for keeping them in the
/// context between checks.
///
/// A check (`memop`) saves the guest's flags in `FLAGS_SAVE` and clobbers the host's; its slow
/// path restores them from there, so a fault shows the flags as after the previous
/// instruction. After a check the flags stay saved (not restored) while the instructions that
/// follow neither read nor write any arithmetic flag, until the next check (which then finds
/// them saved and must not save the host's clobbered ones over them) or an instruction that
/// writes them all without reading any (the saved copy is then dead). Otherwise the fast path
/// restores them before the instruction it guards. So every check's slow path restores the
/// guest's own flags, and every instruction that reads flags finds them in RFLAGS.
pub struct FlagsPlan {
    uses: Vec<FlagsUse>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagsUse {
    /// Neither reads nor writes an arithmetic flag.
    None,
    /// Writes every arithmetic flag, whatever its operands, and reads none.
    WritesAll,
    /// Reads one, or writes only some (or only for some operands).
    Other,
}

impl FlagsPlan {
    fn new(insns: &[(Instruction, Kind)]) -> FlagsPlan {
        let uses = insns
            .iter()
            .map(|(insn, kind)| {
                if matches!(kind, Kind::Skip | Kind::LeaRipRel) {
                    return FlagsUse::None;
                }
                let read = insn.rflags_read() & ARITH;
                let modified = insn.rflags_modified() & ARITH;
                if read == 0 && modified == 0 {
                    FlagsUse::None
                } else if read == 0
                    && modified == ARITH
                    && crate::select::writes_flags_always(insn)
                    // A shift or rotate by a count that masks to zero writes nothing.
                    && !crate::select::is_shift(insn.mnemonic())
                {
                    FlagsUse::WritesAll
                } else {
                    FlagsUse::Other
                }
            })
            .collect();
        FlagsPlan { uses }
    }

    /// Whether the flags a check before instruction `i` saved may stay saved (not restored
    /// before `i`): from `i` on, every instruction up to the next check (`checked_at`) or the
    /// next one writing all flags leaves the flags alone; the block's end needs them restored.
    fn keep_saved(&self, i: usize, checked_at: &dyn Fn(usize) -> bool) -> bool {
        for j in i..self.uses.len() {
            if j > i && checked_at(j) {
                return true;
            }
            match self.uses[j] {
                FlagsUse::None => {}
                FlagsUse::WritesAll => return true,
                FlagsUse::Other => return false,
            }
        }
        false
    }

    /// Whether the flags are still only saved after instruction `i` ran, given `saved`
    /// before it.
    fn after(&self, i: usize, saved: bool) -> bool {
        saved && self.uses[i] == FlagsUse::None
    }
}

/// The address register of the CALL and RET sequences.
const TERM_REG: Register = Register::RBX;

/// The host register that holds the guest's SSP while translated code runs (loaded and
/// stored by the trampolines): CALL and RET move it by 8 with one flag-free PSUBQ/PADDQ, so
/// a RET does not wait for a load of SSP from the context that the CALL before it stored
/// (on a loaded machine a read-modify-write of the context's SSP at every CALL and RET cost
/// a loop of leaf calls about twice what MM1 does; on a quiet one the two measure the same:
/// docs/ARCHITECTURE.md, "Shadow-stack cost, measured").
pub const SSP_REG: AsmRegisterMm = mm1;

/// A direct CALL up to the jump: the return address pushed on the stack (and on the shadow
/// stack when `shadow`) after every check passed, as `do_call` in crates/cpu/src/exec/control.rs
/// commits nothing before all of them pass. A failed check goes to `slow` with nothing changed.
/// `stack_checked`: the block's stack check already covers the return address's slot.
#[allow(clippy::too_many_arguments)]
fn call(
    a: &mut CodeAssembler,
    cold: &mut memop::Cold,
    target: u64,
    ret: u64,
    shadow: bool,
    stack_checked: bool,
    slow: CodeLabel,
    slot: Option<usize>,
) -> Result<(), IcedError> {
    let r = TERM_REG;
    memop::acquire(a, r, Addr::None, Register::None, true)?;
    if !cetbox_cpu::is_canonical(target) {
        a.jmp(slow)?;
    }
    push_return(a, cold, ret, shadow, stack_checked, slow, slot)?;
    memop::release(a, true)?;
    memop::release_addr(a, r)
}

/// The return-address pushes of a CALL (with the scratch registers and flags saved by
/// `memop::acquire`, RBX as the address register): checks the stack slot (and the shadow-stack
/// slot when `shadow`), then writes both; a failed check goes to `slow` with nothing changed.
/// `stack_checked`: the block's stack check already covers the stack slot.
/// `slot`: the remembered-page slot of the stack slot's check (`memop::check_place`).
fn push_return(
    a: &mut CodeAssembler,
    cold: &mut memop::Cold,
    ret: u64,
    shadow: bool,
    stack_checked: bool,
    slow: CodeLabel,
    slot: Option<usize>,
) -> Result<(), IcedError> {
    let r = TERM_REG;
    if !stack_checked {
        let place = Place::Mem {
            base: Register::RSP,
            index: Register::None,
            scale: 1,
            disp: -8,
        };
        memop::check_place(a, cold, place, 8, 0, Need::Write, false, slow, slot)?;
    }
    if shadow {
        // SSP lives in MM1 (`trampoline`); the slot written is SSP - 8.
        a.movq(rbx, SSP_REG)?;
        memop::check_shadow(a, cold, r, -8, Need::ShadowWrite, slow)?;
        a.mov(rax, ret)?;
        a.mov(qword_ptr(rbx - 8), rax)?;
        // SSP -= 8, flag-free (the context's constant 8, `off::COUNTS`).
        a.psubq(SSP_REG, qword_ptr(off::COUNTS + 8 * 8).gs())?;
    } else {
        a.mov(rax, ret)?;
    }
    a.push(rax)
}

/// Whether an indirect JMP/CALL can be translated: a 64-bit register operand, or a memory
/// operand with 64-bit addressing (FS/GS bases are added; 0x67 forms are left out).
fn indirect_ok(insn: &Instruction) -> bool {
    use iced_x86::OpKind;
    match insn.op0_kind() {
        OpKind::Register => insn.op0_register().is_gpr64(),
        OpKind::Memory => {
            let base = insn.memory_base();
            let index = insn.memory_index();
            (base == Register::None || base == Register::RIP || base.is_gpr64())
                && (index == Register::None || index.is_gpr64())
        }
        _ => false,
    }
}

/// Saves the scratch state (`memop::acquire`, RBX as the address register) and loads the
/// target of an indirect JMP/CALL into RAX: a register's value, or the 8 bytes its memory
/// operand names after checking they are readable. A non-canonical target (#GP at the branch)
/// or a failed check goes to `slow`.
fn indirect_target(
    a: &mut CodeAssembler,
    cold: &mut memop::Cold,
    insn: &Instruction,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    use iced_x86::OpKind;
    let r = TERM_REG;
    if insn.op0_kind() == OpKind::Register {
        memop::acquire(a, r, Addr::None, Register::None, true)?;
        match insn.op0_register() {
            // Already saved (and reused) by the sequence: read the guest's value back.
            Register::RAX => a.mov(rax, qword_ptr(off::RAX_SAVE).gs())?,
            Register::RBX => a.mov(rax, qword_ptr(off::ADDR_SAVE).gs())?,
            other => a.mov(rax, crate::trampoline::GPRS[other.number()])?,
        }
    } else {
        let addr = if insn.is_ip_rel_memory_operand() {
            Addr::Absolute(insn.ip_rel_memory_address())
        } else {
            Addr::Operand(insn)
        };
        let seg = match insn.memory_segment() {
            Register::FS | Register::GS => insn.memory_segment(),
            _ => Register::None,
        };
        memop::acquire(a, r, addr, seg, true)?;
        memop::check(a, cold, r, 8, Need::Read, slow)?;
        a.mov(rax, qword_ptr(rbx))?;
    }
    a.mov(rbx, rax)?;
    a.shr(rbx, 47)?;
    a.jnz(slow)
}

/// A near RET: the return address read (and compared with the shadow stack's when the
/// guest's shadow stack is on, `chain.shstk`;
/// a mismatch is left to the interpreter, which raises the #CP), RSP (and SSP) advanced, and
/// the translation of the target looked up (with the shadow stack on, first in the return
/// cache, `context::ReturnCache`, then in the cache's front table); on a miss, or when the
/// stop flag or the code epoch says so, the run loop takes over at the target.
/// `stack_checked`: the block's stack check already covers the return address's slot.
fn ret(
    a: &mut CodeAssembler,
    cold: &mut memop::Cold,
    chain: &Chain,
    stack_checked: bool,
    retired: u64,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    let r = TERM_REG;
    memop::acquire(a, r, Addr::None, Register::None, true)?;
    if !stack_checked {
        let place = Place::Mem {
            base: Register::RSP,
            index: Register::None,
            scale: 1,
            disp: 0,
        };
        let slot = chain.slot_for(Need::Read);
        memop::check_place(a, cold, place, 8, 0, Need::Read, false, slow, slot)?;
    }
    if !chain.shstk {
        a.mov(rax, qword_ptr(rsp))?;
        canonical(a, slow)?;
        a.add(rsp, 8)?;
        return dispatch(a, retired, chain, false);
    }
    a.movq(rbx, SSP_REG)?;
    memop::check_shadow(a, cold, r, 0, Need::ShadowRead, slow)?;
    // RAX, the return address the dispatch below looks up, comes from the stack as with the
    // shadow stack off (its load does not wait for SSP), and must equal the shadow stack's.
    a.mov(rax, qword_ptr(rsp))?;
    a.cmp(rax, qword_ptr(rbx))?;
    a.jne(slow)?;
    let mut probe = a.create_label();
    if chain.epoch <= i32::MAX as u64 {
        // The return cache, indexed by the slot popped: a hit needs neither the front
        // table's hash nor the canonical check (only translated RIPs are entered, and an
        // empty entry's host address 0 is a miss whatever RAX is).
        let mut miss = a.create_label();
        a.and(ebx, crate::context::RETURN_MASK)?;
        a.cmp(rax, qword_ptr(rbx * 2 + off::RETURNS).gs())?;
        a.jne(probe)?;
        a.mov(rbx, qword_ptr(rbx * 2 + off::RETURNS + 8).gs())?;
        a.test(rbx, rbx)?;
        a.jz(probe)?;
        a.paddq(SSP_REG, qword_ptr(off::COUNTS + 8 * 8).gs())?;
        a.add(rsp, 8)?;
        add_retired(a, retired)?;
        a.mov(qword_ptr(off::JUMP).gs(), rbx)?;
        go_if_current(a, chain, miss)?;
        a.set_label(&mut miss)?;
        leave(a, chain.stubs.leave)?;
    }
    a.set_label(&mut probe)?;
    canonical(a, slow)?;
    a.paddq(SSP_REG, qword_ptr(off::COUNTS + 8 * 8).gs())?;
    a.add(rsp, 8)?;
    dispatch(a, retired, chain, true)
}

/// A non-canonical return address in RAX is #GP at the RET (Intel SDM Vol. 2B, RET); the
/// interpreter raises it. Clobbers RBX and the flags.
fn canonical(a: &mut CodeAssembler, slow: CodeLabel) -> Result<(), IcedError> {
    a.mov(rbx, rax)?;
    a.shr(rbx, 47)?;
    a.jnz(slow)
}

/// Continues at the guest RIP in RAX: adds `retired`, records the RIP, and jumps to its
/// translation when the front table has one and the code epoch is still `epoch` and the stop
/// flag is clear, else to the exit trampoline. Entered with the guest's flags, RAX and RBX
/// saved by `memop::acquire` (RBX as the address register); leaves them restored.
/// `fill`: a RET with the shadow stack on, whose popped slot was at SSP - 8: a translation
/// found goes into the slot's return-cache entry (`context::ReturnCache`).
fn dispatch(
    a: &mut CodeAssembler,
    retired: u64,
    chain: &Chain,
    fill: bool,
) -> Result<(), IcedError> {
    let epoch = chain.epoch;
    let mut miss = a.create_label();
    add_retired(a, retired)?;
    if epoch <= i32::MAX as u64 {
        // RAX keeps the guest RIP throughout (the miss path records it); RBX probes.
        a.mov(rbx, rax)?;
        a.shr(rbx, 12)?;
        a.xor(rbx, rax)?;
        a.and(ebx, (cache::FAST_SLOTS - 1) as u32)?;
        a.shl(rbx, 4)?;
        a.add(rbx, qword_ptr(off::LOOKUP).gs())?;
        a.cmp(rax, qword_ptr(rbx))?;
        a.jne(miss)?;
        a.mov(rbx, qword_ptr(rbx + 8))?;
        a.test(rbx, rbx)?;
        a.jz(miss)?;
        a.mov(qword_ptr(off::JUMP).gs(), rbx)?;
        if fill {
            a.movq(rbx, SSP_REG)?;
            a.lea(rbx, qword_ptr(rbx - 8))?;
            a.and(ebx, crate::context::RETURN_MASK)?;
            a.mov(qword_ptr(rbx * 2 + off::RETURNS).gs(), rax)?;
            a.mov(rax, qword_ptr(off::JUMP).gs())?;
            a.mov(qword_ptr(rbx * 2 + off::RETURNS + 8).gs(), rax)?;
            a.mov(rax, qword_ptr(rbx * 2 + off::RETURNS).gs())?;
        }
        go_if_current(a, chain, miss)?;
    }
    a.set_label(&mut miss)?;
    leave(a, chain.stubs.leave)
}

/// Jumps to the host address in `JUMP` when the code epoch is still the block's and the stop
/// flag is clear (restoring the guest's flags, RAX and RBX first), else goes to `miss` with
/// them still saved. Clobbers RBX and the flags.
fn go_if_current(a: &mut CodeAssembler, chain: &Chain, miss: CodeLabel) -> Result<(), IcedError> {
    a.mov(rbx, chain.epoch_at)?;
    a.cmp(qword_ptr(rbx), chain.epoch as i32)?;
    a.jne(miss)?;
    a.mov(rbx, chain.stop_at)?;
    a.cmp(byte_ptr(rbx), 0)?;
    a.jne(miss)?;
    memop::release(a, true)?;
    memop::release_addr(a, TERM_REG)?;
    a.jmp(qword_ptr(off::JUMP).gs())
}

/// Leaves to the run loop at the guest RIP in RAX (the retired count already added), with
/// the guest's flags, RAX and RBX restored from where `memop::acquire` saved them.
/// `tail`: the shared tail that does it (`trampoline::leave_stub`).
fn leave(a: &mut CodeAssembler, tail: u64) -> Result<(), IcedError> {
    a.jmp(tail)
}

#[derive(Clone, Copy)]
enum Target {
    Label(CodeLabel),
    Host(u64),
}

/// Adds `n` to the retired count, which MM0 holds while translated code runs (`trampoline`),
/// without touching a flag, a general register or the guest stack.
fn add_retired(a: &mut CodeAssembler, n: u64) -> Result<(), IcedError> {
    debug_assert!((n as usize) < crate::context::COUNTS_LEN);
    a.paddq(mm0, qword_ptr(off::COUNTS + 8 * n as i64).gs())
}

/// Leaves the block: records the next guest RIP and the retired count without touching a
/// flag or the guest stack, then jumps to the exit trampoline.
/// `tail`: the shared tail (`trampoline::exit_rcx_stub`), which records the RIP in RCX and
/// puts the guest's RCX back from `SCRATCH`.
fn exit_stub(a: &mut CodeAssembler, rip: u64, retired: u64, tail: u64) -> Result<(), IcedError> {
    a.mov(qword_ptr(off::SCRATCH).gs(), rcx)?;
    add_retired(a, retired)?;
    a.mov(rcx, rip)?;
    a.jmp(tail)
}

/// Continues directly into the translation of `rip` when the code epoch is still the one both
/// blocks were translated under and, for a branch that is not forward (`rip` at or below
/// `from`, the start of the block being left), the stop flag is clear; otherwise leaves to the
/// run loop with RIP = `rip`. With no `target` (`rip` not translated yet) the jump is a link
/// site (`link_exit`).
///
/// The checks are the run loop's, done inline and flag-free: RCX = epoch - E is zero exactly
/// when the epoch is still E (it only grows), and the stop byte is zero when clear; JRCXZ
/// branches on each without reading or writing RFLAGS. The epoch is checked on every exit (a
/// thread that sees another thread's flag set after that thread rewrote code must not run the
/// stale translation past this point). The stop flag is polled on every exit that does not
/// go forward, and by every indirect branch and return (`dispatch`): every cycle of blocks
/// has such an edge (block starts cannot all increase around a cycle), so every loop
/// iteration polls it, and a run of forward exits ends within the cache's finite code.
fn chained_exit(
    a: &mut CodeAssembler,
    rip: u64,
    from: u64,
    retired: u64,
    chain: &Chain,
    target: Option<Target>,
) -> Result<(), IcedError> {
    let epoch = chain.epoch;
    let mut out = a.create_label();
    let mut go = a.create_label();
    a.mov(qword_ptr(off::SCRATCH).gs(), rcx)?;
    add_retired(a, retired)?;
    a.mov(rcx, chain.epoch_at)?;
    a.mov(rcx, qword_ptr(rcx))?;
    if epoch != 0 {
        // (An epoch still 0, every program that never unmapped code, is zero as loaded.)
        a.lea(rcx, qword_ptr(rcx - epoch as i32))?;
    }
    if rip > from {
        a.jrcxz(go)?;
    } else {
        let mut current = a.create_label();
        a.jrcxz(current)?;
        a.jmp(out)?;
        a.set_label(&mut current)?;
        a.mov(rcx, chain.stop_at)?;
        a.movzx(ecx, byte_ptr(rcx))?;
        a.jrcxz(go)?;
    }
    a.set_label(&mut out)?;
    a.mov(rcx, rip)?;
    a.jmp(chain.stubs.exit_rcx)?;
    a.set_label(&mut go)?;
    a.mov(rcx, qword_ptr(off::SCRATCH).gs())?;
    match target {
        Some(Target::Label(l)) => a.jmp(l),
        Some(Target::Host(h)) => a.jmp(h),
        None => link_exit(a, rip, chain.stubs.exit_rcx),
    }
}

/// A jump to a block not translated yet, that the run loop patches once it is (as QEMU's TCG
/// and DynamoRIO link direct exits): a `jmp rel32` that first jumps to the instruction after
/// it, which records its own address in `LINK` and RIP = `rip` and leaves to the run loop.
/// After the run loop has translated `rip`, it rewrites the displacement to reach the
/// translation (`CodeCache::link`); from then on the exit costs the chained checks and one
/// jump. The retired count is already added; nothing here touches a flag or the guest stack.
fn link_exit(a: &mut CodeAssembler, rip: u64, tail: u64) -> Result<(), IcedError> {
    let mut site = a.create_label();
    a.set_label(&mut site)?;
    // jmp rel32 with displacement 0: the next instruction.
    a.db(&[0xe9, 0, 0, 0, 0])?;
    a.mov(qword_ptr(off::SCRATCH).gs(), rcx)?;
    a.lea(rcx, ptr(site))?;
    a.mov(qword_ptr(off::LINK).gs(), rcx)?;
    a.mov(rcx, rip)?;
    a.jmp(tail)
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
