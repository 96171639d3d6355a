//! One page-table check for the stack slots of a run of instructions.
//!
//! Compiled code reaches its stack frame through PUSH, POP, CALL, RET and `[rsp + disp]`
//! operands, several times per block (a prologue pushes five registers; a printf loop stores
//! a dozen locals). Each of them checked alone costs a full inline check (`memop`). Within a
//! block, RSP changes only by amounts known at translation time until an instruction writes it
//! otherwise, so every slot of such a run is a known offset from RSP at the run's first
//! access: one check of the range they span, before that first access, covers them all.
//!
//! Exactness: the range check is at least as strict as each slot's own (a write anywhere in the
//! run makes the whole range need write permission, which implies read permission), so when it
//! passes every slot's check would have passed. The page table cannot change between it and the
//! accesses it covers: it changes only in Rust (syscalls, the interpreter's slow path), and a
//! thread leaves translated code only at block exits; another thread's munmap or mprotect waits
//! for this one to reach its run loop (`thread::shootdown`). When the range check fails the
//! block leaves before the run's first instruction (`exit_reason::STEP`); the interpreter runs
//! that one instruction, whose own access then decides (fault, population, or nothing), and
//! execution continues after it, where the next check covers what is left. So the fault a
//! guest sees is the interpreter's, at the instruction that makes it, as before.

use crate::memop::Need;
use crate::select::{Kind, MemOp};
use iced_x86::{Code, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register};

/// The widest range one check covers: at most two pages, which `memop::check` handles.
const MAX_SPAN: i64 = 4096;

/// A range check emitted before instruction `at` (an index into the block's instructions):
/// `len` bytes from RSP + `lo`, RSP as it is before that instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub at: usize,
    pub lo: i64,
    pub len: u32,
    pub need: Need,
}

/// The checks of a block and which accesses they cover.
pub struct Plan {
    pub groups: Vec<Group>,
    /// Per instruction, and one more entry for the block's terminator: whether its stack slot
    /// is covered by a group's check (it then needs no check of its own).
    pub covered: Vec<bool>,
}

/// A stack slot an access touches: offset from RSP before the instruction, size, write.
#[derive(Clone, Copy)]
pub struct Slot {
    pub off: i64,
    pub size: u32,
    pub write: bool,
}

/// The stack slot `insn` accesses, when it is at a constant offset from RSP.
fn slot_of(insn: &Instruction, kind: &Kind) -> Option<Slot> {
    match kind {
        Kind::Push(_) => Some(Slot {
            off: -8,
            size: 8,
            write: true,
        }),
        Kind::Pop(_) => Some(Slot {
            off: 0,
            size: 8,
            write: false,
        }),
        Kind::Mem(m) if rsp_relative(insn, m) => Some(Slot {
            off: insn.memory_displacement64() as i64,
            size: u32::from(m.size),
            write: m.write,
        }),
        _ => None,
    }
}

/// `[rsp + disp]` with 64-bit addressing, no index, no FS/GS base and no alignment rule: the
/// instruction runs unchanged once its slot is known to be accessible.
pub fn rsp_relative(insn: &Instruction, m: &MemOp) -> bool {
    insn.memory_base() == Register::RSP
        && insn.memory_index() == Register::None
        && m.seg == Register::None
        && m.align <= 1
}

/// How `insn` changes RSP: by a known amount, or None when it writes RSP otherwise.
fn rsp_change(insn: &Instruction, kind: &Kind, info: &mut InstructionInfoFactory) -> Option<i64> {
    match kind {
        Kind::Push(_) => return Some(-8),
        Kind::Pop(_) => return Some(8),
        Kind::Skip => return Some(0),
        _ => {}
    }
    let writes = info.info(insn).used_registers().iter().any(|u| {
        u.register().full_register() == Register::RSP
            && matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
    });
    if !writes {
        return Some(0);
    }
    let imm_to_rsp = insn.op_count() == 2
        && insn.op0_kind() == OpKind::Register
        && insn.op0_register() == Register::RSP
        && !insn.has_lock_prefix();
    match insn.code() {
        Code::Add_rm64_imm8 | Code::Add_rm64_imm32 if imm_to_rsp => Some(insn.immediate64() as i64),
        Code::Sub_rm64_imm8 | Code::Sub_rm64_imm32 if imm_to_rsp => {
            Some((insn.immediate64() as i64).wrapping_neg())
        }
        _ => None,
    }
}

/// Groups the stack slots of `insns` (and of the terminator's `end` slot, which joins a group
/// already open but never opens one) into range checks.
pub fn plan(insns: &[(Instruction, Kind)], end: Option<Slot>) -> Plan {
    let n = insns.len();
    let mut covered = vec![false; n + 1];
    let mut groups = Vec::new();
    let mut info = InstructionInfoFactory::new();
    // The open group: first instruction, range [lo, hi) and whether it writes, relative to RSP
    // before the first instruction; `delta` is RSP now minus RSP then.
    let mut open: Option<(usize, i64, i64, bool)> = None;
    let mut delta = 0i64;
    let close = |open: &mut Option<(usize, i64, i64, bool)>, groups: &mut Vec<Group>| {
        if let Some((at, lo, hi, write)) = open.take() {
            groups.push(Group {
                at,
                lo,
                len: (hi - lo) as u32,
                need: if write { Need::Write } else { Need::Read },
            });
        }
    };
    for i in 0..=n {
        let slot = if i < n {
            slot_of(&insns[i].0, &insns[i].1)
        } else {
            end.filter(|_| open.is_some())
        };
        if let Some(s) = slot {
            let lo = delta.saturating_add(s.off);
            let hi = lo.saturating_add(i64::from(s.size));
            match open.as_mut() {
                Some(g) if g.2.max(hi) - g.1.min(lo) <= MAX_SPAN => {
                    g.1 = g.1.min(lo);
                    g.2 = g.2.max(hi);
                    g.3 |= s.write;
                    covered[i] = true;
                }
                _ if i < n => {
                    close(&mut open, &mut groups);
                    delta = 0;
                    open = Some((i, s.off, s.off + i64::from(s.size), s.write));
                    covered[i] = true;
                }
                _ => {}
            }
        }
        if i < n {
            match rsp_change(&insns[i].0, &insns[i].1, &mut info) {
                Some(d) => delta = delta.saturating_add(d),
                None => close(&mut open, &mut groups),
            }
        }
    }
    close(&mut open, &mut groups);
    Plan { groups, covered }
}
