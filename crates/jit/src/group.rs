//! One page-table check for the accesses a run of instructions makes through one base register.
//!
//! Compiled code reaches its stack frame through PUSH, POP, CALL, RET and `[rsp + disp]`
//! operands, and a structure or buffer through `[reg + disp]` operands, several times per
//! block (a prologue pushes five registers; a printf loop stores a dozen locals; memcpy loads
//! four vectors from `[rsi]` to `[rsi + 0x60]`). Each of them checked alone costs a full inline
//! check (`memop`). Within a block a base register keeps its value until an instruction writes
//! it (RSP moves only by amounts known at translation time through PUSH, POP and ADD/SUB of
//! an immediate), so every access of such a run is a known offset from the register's value
//! at the run's first access: one check of the range they span, before that first access,
//! covers them all.
//!
//! Exactness: the range check is at least as strict as each access's own (a write anywhere in
//! the run makes the whole range need write permission, which implies read permission), and
//! it only checks pages the run does access (the range is at most a page long, so its first and
//! last pages hold its lowest and highest accesses). When it passes, every access's own check
//! would have passed. The page table cannot change between it and the accesses it covers: it
//! changes only in Rust (syscalls, the interpreter's slow path), and a thread leaves translated
//! code only at block exits; another thread's munmap or mprotect waits for this one to reach
//! its run loop (`thread::shootdown`). When the range check fails the block leaves before the
//! run's first instruction (`exit_reason::STEP`); the interpreter runs that one instruction,
//! whose own access then decides (fault, population, or nothing), and execution continues
//! after it, where the next check covers what is left. So the fault a guest sees is the
//! interpreter's, at the instruction that makes it, with the registers and flags as before it.

use crate::memop::Need;
use crate::select::{Kind, MemOp};
use iced_x86::{Code, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register};

/// The widest range one check covers: at most two pages, which `memop::check` handles.
const MAX_SPAN: i64 = 4096;

/// A range check emitted before instruction `at` (an index into the block's instructions):
/// `len` bytes from `base` + `lo`, the register's value as it is before that instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub at: usize,
    pub base: Register,
    pub lo: i64,
    pub len: u32,
    pub need: Need,
}

/// The checks of a block and which accesses they cover.
pub struct Plan {
    pub groups: Vec<Group>,
    /// Per instruction, and one more entry for the block's terminator: whether its access (its
    /// stack slot for the terminator) is covered by a group's check (it then needs no check
    /// of its own).
    pub covered: Vec<bool>,
}

/// An access at a constant offset from a base register: the register, the offset from its
/// value before the instruction, size, write.
#[derive(Clone, Copy)]
pub struct Slot {
    pub base: Register,
    pub off: i64,
    pub size: u32,
    pub write: bool,
}

/// The stack slot of a CALL (the return address pushed).
pub const CALL_SLOT: Slot = Slot {
    base: Register::RSP,
    off: -8,
    size: 8,
    write: true,
};

/// The stack slot of a RET (the return address popped).
pub const RET_SLOT: Slot = Slot {
    base: Register::RSP,
    off: 0,
    size: 8,
    write: false,
};

/// The access `insn` makes at a constant offset from a base register, if any.
fn slot_of(insn: &Instruction, kind: &Kind) -> Option<Slot> {
    match kind {
        Kind::Push(_) => Some(CALL_SLOT),
        Kind::Pop(_) => Some(RET_SLOT),
        Kind::Mem(m) if base_relative(insn, m) => Some(Slot {
            base: insn.memory_base(),
            off: insn.memory_displacement64() as i64,
            size: u32::from(m.size),
            write: m.write,
        }),
        _ => None,
    }
}

/// `[reg + disp]` with a 64-bit base register, no index, no FS/GS base and no alignment
/// rule: the instruction runs unchanged once its access is known to be allowed.
pub fn base_relative(insn: &Instruction, m: &MemOp) -> bool {
    insn.memory_base().is_gpr64()
        && insn.memory_index() == Register::None
        && m.seg == Register::None
        && m.align <= 1
}

/// The registers `insn` writes (as full 64-bit registers, by number), and how it changes
/// RSP: by a known amount, or None when it writes RSP otherwise.
fn writes(
    insn: &Instruction,
    kind: &Kind,
    info: &mut InstructionInfoFactory,
) -> (u16, Option<i64>) {
    let mut mask = 0u16;
    match kind {
        Kind::Push(_) => return (0, Some(-8)),
        Kind::Pop(_) => return (1 << insn.op0_register().full_register().number(), Some(8)),
        Kind::Skip => return (0, Some(0)),
        // Accesses after a side exit may not happen: no check before it covers them (a range
        // check must only check pages the run does access), so every open group ends there.
        Kind::SideExit(..) => return (u16::MAX, None),
        _ => {}
    }
    for u in info.info(insn).used_registers() {
        let r = u.register().full_register();
        if r.is_gpr64()
            && matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
        {
            mask |= 1 << r.number();
        }
    }
    // LEA r, [rip + disp] is emitted as a MOV; iced reports the LEA's write all the same.
    let rsp = Register::RSP.number();
    if mask & (1 << rsp) == 0 {
        return (mask, Some(0));
    }
    mask &= !(1 << rsp);
    let imm_to_rsp = insn.op_count() == 2
        && insn.op0_kind() == OpKind::Register
        && insn.op0_register() == Register::RSP
        && !insn.has_lock_prefix();
    let d = match insn.code() {
        Code::Add_rm64_imm8 | Code::Add_rm64_imm32 if imm_to_rsp => Some(insn.immediate64() as i64),
        Code::Sub_rm64_imm8 | Code::Sub_rm64_imm32 if imm_to_rsp => {
            Some((insn.immediate64() as i64).wrapping_neg())
        }
        _ => None,
    };
    (mask, d)
}

/// An open group: first instruction, range [lo, hi) relative to the base register's value
/// before that instruction, whether any access writes; for RSP, `delta` is RSP now minus RSP
/// then.
#[derive(Clone, Copy)]
struct Open {
    at: usize,
    lo: i64,
    hi: i64,
    write: bool,
    delta: i64,
}

/// Groups the base-relative accesses of `insns` (and the terminator's stack slot `end`, which
/// joins an open RSP group but never opens one) into range checks.
pub fn plan(insns: &[(Instruction, Kind)], end: Option<Slot>) -> Plan {
    let n = insns.len();
    let mut covered = vec![false; n + 1];
    let mut groups = Vec::new();
    let mut info = InstructionInfoFactory::new();
    let mut open: [Option<Open>; 16] = [None; 16];
    let close = |o: &mut Option<Open>, base: usize, groups: &mut Vec<Group>| {
        if let Some(g) = o.take() {
            groups.push(Group {
                at: g.at,
                base: crate::trampoline::GPRS_REG[base],
                lo: g.lo,
                len: (g.hi - g.lo) as u32,
                need: if g.write { Need::Write } else { Need::Read },
            });
        }
    };
    for i in 0..=n {
        let slot = if i < n {
            slot_of(&insns[i].0, &insns[i].1)
        } else {
            end.filter(|s| open[s.base.number()].is_some())
        };
        if let Some(s) = slot {
            let b = s.base.number();
            let delta = open[b].map_or(0, |g| g.delta);
            let lo = delta.saturating_add(s.off);
            let hi = lo.saturating_add(i64::from(s.size));
            match open[b].as_mut() {
                Some(g) if g.hi.max(hi).saturating_sub(g.lo.min(lo)) <= MAX_SPAN => {
                    g.lo = g.lo.min(lo);
                    g.hi = g.hi.max(hi);
                    g.write |= s.write;
                    covered[i] = true;
                }
                _ if i < n => {
                    close(&mut open[b], b, &mut groups);
                    open[b] = Some(Open {
                        at: i,
                        lo: s.off,
                        hi: s.off.saturating_add(i64::from(s.size)),
                        write: s.write,
                        delta: 0,
                    });
                    covered[i] = true;
                }
                _ => {}
            }
        }
        if i < n {
            let (mask, rsp) = writes(&insns[i].0, &insns[i].1, &mut info);
            for (b, o) in open.iter_mut().enumerate() {
                if mask & (1 << b) != 0 {
                    close(o, b, &mut groups);
                }
            }
            let r = Register::RSP.number();
            match rsp {
                Some(d) => {
                    if let Some(g) = open[r].as_mut() {
                        g.delta = g.delta.saturating_add(d);
                    }
                }
                None => close(&mut open[r], r, &mut groups),
            }
        }
    }
    for (b, o) in open.iter_mut().enumerate() {
        close(o, b, &mut groups);
    }
    groups.sort_unstable_by_key(|g| g.at);
    Plan { groups, covered }
}
