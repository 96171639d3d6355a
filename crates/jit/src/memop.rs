//! Memory operands in translated code: the page-table check inline, the access native.
//!
//! The software page table (crates/mem/src/pagetable.rs) stays the authority for every access
//! translated code makes. Before an instruction with a memory operand runs, inserted code
//! computes the operand's address into RAX (saved first), loads the page's table byte and
//! compares it with what the access needs — the same fast-path rule as `AddressSpace`'s typed
//! accesses: readable (and for a write, writable, not a shadow-stack page, holding no decoded
//! code), not past the end of its file, already populated (both pages for an access that
//! crosses into the next). RAX back, the instruction then runs natively on its own operand,
//! since guest addresses are host addresses (`emit_direct`); a RIP-relative operand becomes
//! its absolute address. Operands with an FS/GS base, and RIP-relative ones whose target a
//! 32-bit displacement cannot reach, have their address computed into a spare register
//! instead (`MemOp::addr_reg`, one the instruction does not use) and are rewritten to
//! `[addr_reg]` (`emit`).
//!
//! Anything else leaves translated code *before* the instruction, with every guest register
//! and flag as after the previous one, and asks the run loop to run that one instruction in
//! the interpreter (`exit_reason::STEP`), which takes the slow path: it raises the precise
//! fault (signal, si_code, si_addr, error code) as it always does, populates the page, or
//! invalidates the decoded code a write hits. So a fault in translated code is exactly the
//! interpreter's fault, by construction.
//!
//! The check needs flags (CMP, AND): the guest's arithmetic flags are saved around it with
//! LAHF and SETO (AH gets SF ZF AF PF CF, AL gets OF) and restored with ADD AL, 0x7F (sets OF
//! exactly when AL was 1) and SAHF (Intel SDM Vol. 2A, LAHF; Vol. 2B, SAHF). The fast path
//! restores them only when a later instruction can read them; the slow path always does.
//! Everything is spilled to the context (`gs:`), never to the guest's stack.

use crate::context::{exit_reason, off};
use crate::select::MemOp;
use crate::trampoline::GPRS;
use cetbox_mem::page;
use iced_x86::code_asm::*;
use iced_x86::{Code, IcedError, Instruction, MemoryOperand, Register};

/// The same registers as 32-bit operands.
const GPRS32: [AsmRegister32; 16] = [
    eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d,
];

fn index(r: Register) -> usize {
    r.number()
}

/// What an access needs of its page, as `AddressSpace`'s fast path decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// An ordinary read.
    Read,
    /// An ordinary write (or read-modify-write).
    Write,
    /// A shadow-stack load (RET).
    ShadowRead,
    /// A shadow-stack store (CALL).
    ShadowWrite,
}

/// The table bits that must match, and their wanted value, for the fast path of an access.
pub(crate) fn mask_want(need: Need) -> (u32, u32) {
    const P: u8 = page::POPULATED;
    let (mask, want) = match need {
        Need::Read => (page::READ_MASK | P, page::READ | P),
        Need::Write => (
            page::READ | page::WRITE | page::SHADOW | page::CODE | page::BEYOND_EOF | P,
            page::READ | page::WRITE | P,
        ),
        Need::ShadowRead => (page::SHADOW_MASK | P, page::SHADOW | page::WRITE | P),
        Need::ShadowWrite => (
            page::SHADOW_MASK | page::CODE | P,
            page::SHADOW | page::WRITE | P,
        ),
    };
    (u32::from(mask), u32::from(want))
}

/// The start of every checked sequence: saves `r` and RAX, computes the operand's address of
/// `insn` into `r` (before any register it depends on changes) and saves the guest's flags
/// (unless `FLAGS_SAVE` holds them already: `save_flags` false, see `translate::FlagsPlan`).
/// After it the flags, RAX and `r` are free until `release`.
pub fn acquire(
    a: &mut CodeAssembler,
    r: Register,
    addr: Addr,
    seg: Register,
    save_flags: bool,
) -> Result<(), IcedError> {
    let rr = GPRS[index(r)];
    a.mov(qword_ptr(off::ADDR_SAVE).gs(), rr)?;
    match addr {
        Addr::None => {}
        Addr::Absolute(v) => a.mov(rr, v)?,
        Addr::Operand(insn) => {
            let base = insn.memory_base();
            let disp = insn.memory_displacement64() as i64;
            a.add_instruction(lea(
                r,
                base,
                insn.memory_index(),
                insn.memory_index_scale(),
                disp,
            )?)?
        }
    }
    ctx_mov(a, Code::Mov_rm64_r64, off::RAX_SAVE, Register::RAX)?;
    if save_flags {
        a.seto(al)?;
        a.lahf()?;
        ctx_mov(a, Code::Mov_rm16_r16, off::FLAGS_SAVE, Register::AX)?;
    }
    match seg {
        Register::FS => a.add(rr, qword_ptr(off::FS_BASE).gs())?,
        Register::GS => a.add(rr, qword_ptr(off::GS_BASE).gs())?,
        _ => {}
    }
    Ok(())
}

/// Where `acquire` takes the address from.
#[derive(Clone, Copy)]
pub enum Addr<'a> {
    /// A constant (a RIP-relative operand's target).
    Absolute(u64),
    /// The memory operand of an instruction (base, index, scale, displacement).
    Operand(&'a Instruction),
    /// No address: only the registers and flags are saved.
    None,
}

fn lea(
    r: Register,
    base: Register,
    index: Register,
    scale: u32,
    disp: i64,
) -> Result<Instruction, IcedError> {
    let displ_size = if base == Register::None {
        4
    } else if disp == 0 {
        0
    } else {
        1
    };
    Instruction::with2(
        Code::Lea_r64_m,
        r,
        MemoryOperand::new(base, index, scale, disp, displ_size, false, Register::None),
    )
}

/// Checks that `size` bytes (1 to 4096) at the address in `r` allow `need` on the fast path;
/// jumps to `slow` otherwise. Uses RAX and the flags (both saved by `acquire`). The rare
/// second-page check of an access that crosses into the next page is emitted out of line,
/// into `cold` (`emit_cold`), so the common path stays short.
pub fn check(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    r: Register,
    size: u32,
    need: Need,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    debug_assert!((1..=4096).contains(&size));
    let rr = GPRS[index(r)];
    let (mask, want) = mask_want(need);
    a.mov(rax, rr)?;
    page_entry_allows(a, mask, want, slow)?;
    if size > 1 {
        // An access that runs into the next page needs that page's entry to allow it too
        // (unaligned vector loads in string functions cross pages often).
        let mut inside = a.create_label();
        let cross = a.create_label();
        a.mov(eax, GPRS32[index(r)])?;
        a.and(eax, 0xfff)?;
        a.cmp(eax, 4096 - size)?;
        a.ja(cross)?;
        // Bound to the caller's next instruction (every caller emits one).
        a.set_label(&mut inside)?;
        cold.0.push(Cross {
            at: cross,
            back: inside,
            r,
            size,
            mask,
            want,
            slow,
        });
    }
    Ok(())
}

/// Out-of-line code of the checks of one block (`check`, `check_shadow`), emitted after its
/// main path by `emit_cold`.
#[derive(Default)]
pub struct Cold(Vec<Cross>, Vec<ShadowFull>, Vec<BothPages>, Vec<Remember>);

/// The full check of an access whose remembered page (`check_place`) did not match: both
/// pages of its range checked in the table, then the page of its first byte remembered.
struct Remember {
    at: CodeLabel,
    back: CodeLabel,
    place: Place,
    size: u32,
    need: Need,
    slot: usize,
    slow: CodeLabel,
}

/// The out-of-line check of both pages of an access `check_place` could not prove to stay in
/// one page.
struct BothPages {
    at: CodeLabel,
    back: CodeLabel,
    place: Place,
    size: u32,
    mask: u32,
    want: u32,
    slow: CodeLabel,
}

/// The second-page check of an access crossing into the next page.
struct Cross {
    at: CodeLabel,
    back: CodeLabel,
    r: Register,
    size: u32,
    mask: u32,
    want: u32,
    slow: CodeLabel,
}

/// The full check of a shadow-stack access outside the known page (`check_shadow`).
struct ShadowFull {
    at: CodeLabel,
    back: CodeLabel,
    r: Register,
    disp: i32,
    need: Need,
    slow: CodeLabel,
}

/// Emits the out-of-line code `check` and `check_shadow` deferred: each checks the next page's
/// entry (a shadow-stack access: its page's entry in full) and jumps back after its check, or
/// to its `slow` path.
///
/// The full checks of remembered pages (`check_remembered`) go to the stubs shared by every
/// site, `checks` (`trampoline::check_stub`, reads and writes): four instructions and a
/// jump there instead of about 25 per site; the stub returns through `CHECK_RET` with ZF
/// set when the access is allowed, else the site takes its slow path.
pub fn emit_cold(a: &mut CodeAssembler, cold: Cold, checks: &[u64; 2]) -> Result<(), IcedError> {
    for mut c in cold.3 {
        let mut ret = a.create_label();
        a.set_label(&mut c.at)?;
        a.lea(rax, ptr(ret))?;
        ctx_mov(a, Code::Mov_rm64_r64, off::CHECK_RET, Register::RAX)?;
        debug_assert!(c.slot < 1 << 16 && c.size <= 4096);
        a.mov(
            dword_ptr(off::CHECK_ARG).gs(),
            (c.slot as u32 | (c.size - 1) << 16) as i32,
        )?;
        place_into_rax(a, c.place, true)?;
        a.jmp(checks[usize::from(c.need == Need::Write)])?;
        a.set_label(&mut ret)?;
        a.jne(c.slow)?;
        a.jmp(c.back)?;
    }
    for mut c in cold.2 {
        // The page of the first byte and the page of the last (the same page when the access
        // only looked as if it could cross).
        a.set_label(&mut c.at)?;
        place_into_rax(a, c.place, true)?;
        page_entry_allows(a, c.mask, c.want, c.slow)?;
        place_into_rax(a, c.place, true)?;
        a.add(rax, c.size as i32 - 1)?;
        page_entry_allows(a, c.mask, c.want, c.slow)?;
        a.jmp(c.back)?;
    }
    for mut c in cold.0 {
        a.set_label(&mut c.at)?;
        a.lea(rax, qword_ptr(GPRS[index(c.r)] + (c.size as i32 - 1)))?;
        page_entry_allows(a, c.mask, c.want, c.slow)?;
        a.jmp(c.back)?;
    }
    for mut c in cold.1 {
        let slot = GPRS[index(c.r)] + c.disp;
        a.set_label(&mut c.at)?;
        // A misaligned slot (8 bytes that may cross a page): the interpreter decides.
        a.lea(rax, qword_ptr(slot))?;
        a.test(eax, 7)?;
        a.jnz(c.slow)?;
        // The page becomes the known one only if a shadow-stack write may use it, which
        // implies every shadow-stack read may (`mask_want`: the same wanted bits, a mask
        // with CODE added).
        let (mask, want) = mask_want(Need::ShadowWrite);
        let mut read_only = a.create_label();
        let no = if c.need == Need::ShadowWrite {
            c.slow
        } else {
            read_only
        };
        page_entry_allows(a, mask, want, no)?;
        a.lea(rax, qword_ptr(slot))?;
        a.and(rax, -4096)?;
        a.mov(qword_ptr(off::SS_PAGE).gs(), rax)?;
        a.jmp(c.back)?;
        if c.need != Need::ShadowWrite {
            // A page a read may use but a write may not (decoded code on it): checked every
            // time.
            a.set_label(&mut read_only)?;
            let (mask, want) = mask_want(c.need);
            a.lea(rax, qword_ptr(slot))?;
            page_entry_allows(a, mask, want, c.slow)?;
            a.jmp(c.back)?;
        }
    }
    Ok(())
}

/// Checks that the 8 bytes at the address `r` + `disp` allow the shadow-stack access `need`
/// (`ShadowRead` for RET at SSP, `ShadowWrite` for CALL at SSP - 8) on the fast path; jumps
/// to `slow` otherwise. Uses RAX and the flags (both saved by `acquire`).
///
/// A shadow stack moves 8 bytes at a time through the same page for hundreds of calls, so
/// the page a full check let a shadow-stack write use is remembered in the context
/// (`off::SS_PAGE`, forgotten at every entry into translated code): an aligned access inside
/// it needs no table lookup. Exactness: the remembered page allows every shadow-stack access
/// for as long as this entry lasts. The table changes only in Rust: this thread's own
/// changes happen outside translated code (the next entry forgets the page); another
/// thread's can only add permissions or populate pages, or take something away (munmap,
/// mprotect, mremap, and madvise discarding a shadow-stack page) with a code-epoch change,
/// which every block exit checks before going on (`translate::chained_exit`, `dispatch`), and
/// a wait (`thread_group::shootdown`) until this thread has left, as for the accesses a
/// block's range checks cover (`group`).
pub fn check_shadow(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    r: Register,
    disp: i32,
    need: Need,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    debug_assert!(matches!(need, Need::ShadowRead | Need::ShadowWrite));
    let at = a.create_label();
    let mut back = a.create_label();
    // The address with its bits 3-11 cleared equals the known page's address exactly when it
    // is 8-byte aligned (so the 8 bytes stay in its page) and in that page.
    if disp == 0 {
        a.mov(rax, GPRS[index(r)])?;
    } else {
        a.lea(rax, qword_ptr(GPRS[index(r)] + disp))?;
    }
    a.and(rax, !0xff8)?;
    a.cmp(rax, qword_ptr(off::SS_PAGE).gs())?;
    a.jne(at)?;
    // Bound to the caller's next instruction (every caller emits one).
    a.set_label(&mut back)?;
    cold.1.push(ShadowFull {
        at,
        back,
        r,
        disp,
        need,
        slow,
    });
    Ok(())
}

/// An address inserted code computes into RAX from guest registers that are as they were
/// before the instruction: a memory operand without FS/GS base, or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// base + index * scale + disp (64-bit registers or None; never RIP).
    Mem {
        base: Register,
        index: Register,
        scale: u32,
        disp: i64,
    },
    /// A constant address (a RIP-relative operand's target).
    Abs(u64),
}

impl Place {
    /// The place of `insn`'s memory operand when it can run unchanged at its own address
    /// after a check (`direct`), else None.
    pub fn of(insn: &Instruction) -> Option<Place> {
        if insn.is_ip_rel_memory_operand() {
            return Some(Place::Abs(insn.ip_rel_memory_address()));
        }
        let base = insn.memory_base();
        let index = insn.memory_index();
        let ok = |r: Register| r == Register::None || r.is_gpr64();
        (ok(base) && ok(index)).then_some(Place::Mem {
            base,
            index,
            scale: insn.memory_index_scale(),
            disp: insn.memory_displacement64() as i64,
        })
    }

    /// The place `d` bytes further on.
    fn plus(self, d: i64) -> Place {
        match self {
            Place::Mem {
                base,
                index,
                scale,
                disp,
            } => Place::Mem {
                base,
                index,
                scale,
                disp: disp.wrapping_add(d),
            },
            Place::Abs(v) => Place::Abs(v.wrapping_add(d as u64)),
        }
    }

    fn uses_rax(&self) -> bool {
        matches!(self, Place::Mem { base, index, .. }
            if *base == Register::RAX || *index == Register::RAX)
    }
}

/// Computes `p` into RAX. `clobbered`: RAX no longer holds the guest's RAX (a place that uses
/// it then reads the guest's value back from `RAX_SAVE`).
fn place_into_rax(a: &mut CodeAssembler, p: Place, clobbered: bool) -> Result<(), IcedError> {
    match p {
        Place::Abs(v) => a.mov(rax, v),
        Place::Mem {
            base,
            index,
            scale,
            disp,
        } => {
            if clobbered && p.uses_rax() {
                ctx_mov(a, Code::Mov_r64_rm64, off::RAX_SAVE, Register::RAX)?;
            }
            if base == Register::RAX && index == Register::None && disp == 0 {
                // `[rax]`: RAX is the address already.
                return Ok(());
            }
            a.add_instruction(lea(Register::RAX, base, index, scale, disp)?)
        }
    }
}

/// Checks that `size` bytes (1 to 4096) at `p` allow `need` on the fast path, jumping to
/// `slow` otherwise, with only RAX and the flags as scratch (saved by the caller: `RAX_SAVE`,
/// and the guest's flags unless dead or saved). No address register is needed: the address is
/// computed into RAX from the guest registers, which are still as before the instruction, so
/// the instruction then runs on its own operand. `rax_guest`: RAX still holds the guest's
/// value. `align`: the alignment the operand needs (0 or 1 for none), else `slow`.
///
/// An access of 2, 4 or 8 bytes at an address aligned to its size stays in one page, which
/// one TEST decides; other sizes compare the page offset (4096 - size at most). An access that
/// may cross into the next page checks both pages out of line (`emit_cold`).
///
/// A read or write with a `slot` (an index into `off::PAGE_SLOTS`) first compares its page
/// with the page that slot remembers, and checks the table only when they differ
/// (`emit_cold`), remembering the page then: a loop reading or writing through an array, a
/// list or its stack frame checks the table once per page.
/// Exactness: a slot only ever holds a page a full check allowed the site's access to since
/// the last change that took access away (an entry into translated code empties the slots
/// when the address space counted a removal since the last one, or a host fault handler
/// forgot pages: `Translator::enter`, `Context::forget_pages`), and no change that takes that
/// access away can land in the middle of an entry: this thread's own changes happen in Rust,
/// outside translated code, and are counted (`AddressSpace::removals`); another
/// thread's (munmap, mprotect, mremap, MAP_FIXED, brk, shmdt, madvise discarding populated
/// pages) make the syscall layer wait until this thread has left translated code
/// (`thread_group::shootdown`, which stops it at its next loop edge or indirect branch, as for
/// `check_shadow` and the block range checks of `group`); and the host's (a file shrunk under
/// a mapping, a userfaultfd page unmapped) fault on the access itself, whose handler forgets
/// every slot (`cetbox_mem::remembered`). A write must also see a CODE mark, which other
/// threads' decoders set without any wait: a write site remembers only pages without EXEC,
/// which no decoder reads, and which gain EXEC only through an mprotect that makes this thread
/// leave first (`AddressSpace::protect` counts adding EXEC to a writable page as a removal).
/// The compared value keeps the access's misaligned low bits, so a misaligned access never
/// matches and is checked in full.
#[allow(clippy::too_many_arguments)]
pub fn check_place(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    p: Place,
    size: u32,
    align: u8,
    need: Need,
    rax_guest: bool,
    slow: CodeLabel,
    slot: Option<usize>,
) -> Result<(), IcedError> {
    debug_assert!((1..=4096).contains(&size));
    let (at, mut back) = place_start(a, p, align, rax_guest, slow)?;
    if let (Some(slot), Need::Read | Need::Write) = (slot, need) {
        return check_remembered(a, cold, (at, back), p, size, align, need, slow, slot);
    }
    let (mask, want) = mask_want(need);
    if matches!(size, 1 | 2 | 4 | 8) && align <= 1 {
        if size > 1 {
            a.test(eax, size - 1)?;
            a.jnz(at)?;
        }
    } else {
        a.and(eax, 0xfff)?;
        a.cmp(eax, 4096 - size)?;
        a.ja(at)?;
        place_into_rax(a, p, true)?;
    }
    page_entry_allows(a, mask, want, slow)?;
    // Bound to the caller's next instruction (every caller emits one).
    a.set_label(&mut back)?;
    if size > 1 {
        cold.2.push(BothPages {
            at,
            back,
            place: p,
            size,
            mask,
            want,
            slow,
        });
    }
    Ok(())
}

/// The start shared by `check_place` and `check_remembered`: the labels of the out-of-line
/// check (`at`) and of the way back from it (`back`, bound by the caller after its inline
/// check), and the address of `p` in RAX, an address misaligned for `align` sent to `slow`.
fn place_start(
    a: &mut CodeAssembler,
    p: Place,
    align: u8,
    rax_guest: bool,
    slow: CodeLabel,
) -> Result<(CodeLabel, CodeLabel), IcedError> {
    let at = a.create_label();
    let back = a.create_label();
    place_into_rax(a, p, !rax_guest)?;
    if align > 1 {
        a.test(eax, u32::from(align) - 1)?;
        a.jnz(slow)?;
    }
    Ok((at, back))
}

/// `check_place` of a read or write through the remembered page of `slot`, after
/// `place_start` (its labels in `labels`, the address in RAX).
#[allow(clippy::too_many_arguments)]
fn check_remembered(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    labels: (CodeLabel, CodeLabel),
    p: Place,
    size: u32,
    align: u8,
    need: Need,
    slow: CodeLabel,
    slot: usize,
) -> Result<(), IcedError> {
    debug_assert!(slot < crate::context::PAGE_SLOTS);
    let (at, mut back) = labels;
    let cell = qword_ptr(off::PAGE_SLOTS + 8 * slot as i64).gs();
    if matches!(size, 1 | 2 | 4 | 8) && align <= 1 {
        // The page, with the bits below the size kept: equal to a remembered page (bits 0-11
        // clear) only when the access is aligned to its size, so it stays in that page.
        a.and(rax, -4096 | (size as i32 - 1))?;
        a.cmp(rax, cell)?;
        a.jne(at)?;
    } else {
        // The pages of the first and the last byte.
        a.and(rax, -4096)?;
        a.cmp(rax, cell)?;
        a.jne(at)?;
        place_into_rax(a, p.plus(i64::from(size) - 1), true)?;
        a.and(rax, -4096)?;
        a.cmp(rax, cell)?;
        a.jne(at)?;
    }
    // Bound to the caller's next instruction (every caller emits one).
    a.set_label(&mut back)?;
    cold.3.push(Remember {
        at,
        back,
        place: p,
        size,
        need,
        slot,
        slow,
    });
    Ok(())
}

/// Saves RAX and (`save_flags`) the guest's flags for `check_place`.
pub fn acquire_rax(a: &mut CodeAssembler, save_flags: bool) -> Result<(), IcedError> {
    ctx_mov(a, Code::Mov_rm64_r64, off::RAX_SAVE, Register::RAX)?;
    if save_flags {
        a.seto(al)?;
        a.lahf()?;
        ctx_mov(a, Code::Mov_rm16_r16, off::FLAGS_SAVE, Register::AX)?;
    }
    Ok(())
}

/// Emits the check and the access for `insn` when its operand has a `Place` (no FS/GS base):
/// the check through RAX alone (`check_place`), then the instruction itself, unchanged except
/// that a RIP-relative operand becomes its absolute address (which must fit a sign-extended
/// 32-bit displacement: `direct_ok`). Flags as in `emit`.
#[allow(clippy::too_many_arguments)]
pub fn emit_direct(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    insn: &Instruction,
    m: &MemOp,
    p: Place,
    save_flags: bool,
    restore_flags: bool,
    slow: CodeLabel,
    slot: Option<usize>,
) -> Result<(), IcedError> {
    acquire_rax(a, save_flags)?;
    let need = if m.write { Need::Write } else { Need::Read };
    check_place(
        a,
        cold,
        p,
        u32::from(m.size),
        m.align,
        need,
        !save_flags,
        slow,
        slot,
    )?;
    release(a, restore_flags)?;
    let mut x = *insn;
    if let Place::Abs(v) = p {
        x.set_memory_base(Register::None);
        x.set_memory_index(Register::None);
        x.set_memory_index_scale(1);
        x.set_memory_displacement64(v);
        // 64-bit addressing with no base: the [disp32] form, sign-extended.
        x.set_memory_displ_size(8);
    }
    a.add_instruction(x)
}

/// Whether `emit_direct` handles `insn`'s operand: no FS/GS base, and a RIP-relative target
/// that a sign-extended 32-bit displacement reaches (non-PIE programs).
pub fn direct_ok(insn: &Instruction, m: &MemOp) -> Option<Place> {
    if m.seg != Register::None {
        return None;
    }
    let p = Place::of(insn)?;
    match p {
        Place::Abs(v) if i32::try_from(v as i64).is_err() => None,
        _ => Some(p),
    }
}

/// Jumps to `slow` unless the table entry of the page holding the address in RAX, masked with
/// `mask`, equals `want` (an address past the table is never guest memory). Clobbers RAX and
/// the flags.
pub(crate) fn page_entry_allows(
    a: &mut CodeAssembler,
    mask: u32,
    want: u32,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    a.shr(rax, 12)?;
    a.cmp(rax, qword_ptr(off::PT_PAGES).gs())?;
    a.jae(slow)?;
    a.add(rax, qword_ptr(off::PT_BASE).gs())?;
    a.movzx(eax, byte_ptr(rax))?;
    a.and(eax, mask)?;
    a.cmp(eax, want)?;
    a.jne(slow)
}

/// The guest's flags (only if `flags` — a later instruction may read them) and RAX back; `r`
/// stays in use (the caller restores it with `release_addr`).
pub fn release(a: &mut CodeAssembler, flags: bool) -> Result<(), IcedError> {
    if flags {
        restore_flags(a)?;
    }
    ctx_mov(a, Code::Mov_r64_rm64, off::RAX_SAVE, Register::RAX)
}

/// A MOV between RAX (or AX) and a context slot, in the ModRM form: the assembler would pick
/// the moffs form (A1/A3, a 64-bit address), two bytes longer, and checks are emitted many
/// times per block.
fn ctx_mov(a: &mut CodeAssembler, code: Code, slot: i64, reg: Register) -> Result<(), IcedError> {
    let mem = MemoryOperand::new(
        Register::None,
        Register::None,
        1,
        slot,
        // 64-bit addressing (a 4 would mean 32-bit addressing: a 0x67 prefix).
        8,
        false,
        Register::GS,
    );
    let insn = match code {
        Code::Mov_r64_rm64 | Code::Mov_r16_rm16 => Instruction::with2(code, reg, mem)?,
        _ => Instruction::with2(code, mem, reg)?,
    };
    a.add_instruction(insn)
}

/// The address register back.
pub fn release_addr(a: &mut CodeAssembler, r: Register) -> Result<(), IcedError> {
    a.mov(GPRS[index(r)], qword_ptr(off::ADDR_SAVE).gs())
}

/// Emits the check and the access for `insn`; on a failed check, jumps to `slow` (emitted
/// later by `slow_path`). `save_flags`: whether the guest's flags are to be saved (they are
/// not in `FLAGS_SAVE` yet); `restore_flags`: whether the fast path restores them before the
/// instruction (see `translate::FlagsPlan`).
pub fn emit(
    a: &mut CodeAssembler,
    cold: &mut Cold,
    insn: &Instruction,
    m: &MemOp,
    save_flags: bool,
    restore_flags: bool,
    slow: CodeLabel,
) -> Result<(), IcedError> {
    let addr = if insn.is_ip_rel_memory_operand() {
        Addr::Absolute(insn.ip_rel_memory_address())
    } else {
        Addr::Operand(insn)
    };
    acquire(a, m.addr_reg, addr, m.seg, save_flags)?;
    let need = if m.write { Need::Write } else { Need::Read };
    if m.align > 1 {
        a.test(GPRS32[index(m.addr_reg)], u32::from(m.align) - 1)?;
        a.jnz(slow)?;
    }
    check(a, cold, m.addr_reg, u32::from(m.size), need, slow)?;
    release(a, restore_flags)?;
    let mut x = *insn;
    x.set_memory_base(m.addr_reg);
    x.set_memory_index(Register::None);
    x.set_memory_index_scale(1);
    x.set_memory_displacement64(0);
    x.set_memory_displ_size(0);
    x.set_segment_prefix(Register::None);
    a.add_instruction(x)?;
    release_addr(a, m.addr_reg)
}

/// The guest's flags back from `FLAGS_SAVE` (clobbers AX).
fn restore_flags(a: &mut CodeAssembler) -> Result<(), IcedError> {
    ctx_mov(a, Code::Mov_r16_rm16, off::FLAGS_SAVE, Register::AX)?;
    a.add(al, 0x7f)?;
    a.sahf()
}

/// The out-of-line path of a failed check: the guest's flags, RAX and the address register
/// back, then (through the exit the caller emits next) a STEP exit before the instruction.
/// Translations jump to a shared copy of it instead (`trampoline::step_stub`) whenever the
/// guest RIP and retired count fit its packed operand, which they always do for user-space
/// code.
pub fn slow_path(a: &mut CodeAssembler, r: Option<Register>) -> Result<(), IcedError> {
    restore_flags(a)?;
    ctx_mov(a, Code::Mov_r64_rm64, off::RAX_SAVE, Register::RAX)?;
    if let Some(r) = r {
        release_addr(a, r)?;
    }
    a.mov(qword_ptr(off::EXIT_REASON).gs(), exit_reason::STEP as i32)
}
