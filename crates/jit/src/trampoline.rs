//! The entry and exit trampolines between Rust and translated code.
//!
//! Entry (called as `extern "sysv64" fn(block, ctx)`): saves the host's callee-saved
//! registers on the host stack and the host RSP in the context, loads the guest's XMM
//! registers (the SysV ABI makes every XMM register caller-saved, so the Rust caller keeps
//! nothing in them across the call), the guest's arithmetic flags and its 16 GPRs (RSP included: host RSP is the guest's while translated code runs),
//! and jumps to the block. Exit (jumped to by every block exit after it stored the next RIP
//! and the retired count): stores the 16 GPRs, the XMM registers and RFLAGS, restores the host
//! stack and registers, and returns to Rust. Everything is addressed through `gs:` (the
//! context, `context.rs`), so no host register is needed.

use crate::context::off;
use crate::memop::{mask_want, page_entry_allows, Need};
use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, IcedError};

/// GPRs in encoding order (guest register n lives in host register n).
pub const GPRS: [AsmRegister64; 16] = [
    rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
];

/// The same registers as iced `Register`s.
pub const GPRS_REG: [iced_x86::Register; 16] = {
    use iced_x86::Register as R;
    [
        R::RAX,
        R::RCX,
        R::RDX,
        R::RBX,
        R::RSP,
        R::RBP,
        R::RSI,
        R::RDI,
        R::R8,
        R::R9,
        R::R10,
        R::R11,
        R::R12,
        R::R13,
        R::R14,
        R::R15,
    ]
};

const XMMS: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
    xmm15,
];

const YMMS: [AsmRegisterYmm; 16] = [
    ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13, ymm14,
    ymm15,
];

const CALLEE_SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];

fn ctx(offset: i64) -> AsmMemoryOperand {
    qword_ptr(offset).gs()
}

/// The trampolines at the start of the code cache: offsets of each in the assembled code.
pub struct Offsets {
    /// The shared tails of the failed memory checks (`step_stub`): index n restores guest
    /// register n from `ADDR_SAVE`, index `NO_ADDR_REG` none.
    pub steps: [usize; STEP_STUBS],
    /// The shared full checks of remembered pages (`check_stub`): index 0 for reads, 1 for
    /// writes.
    pub checks: [usize; 2],
    /// The shared tail of direct exits (`exit_rcx_stub`).
    pub exit_rcx: usize,
    /// The shared tail of indirect exits that miss (`leave_stub`).
    pub leave: usize,
}

/// The host addresses of the shared stubs (`Offsets` placed in the cache).
#[derive(Clone, Copy, Debug)]
pub struct Stubs {
    pub steps: [u64; STEP_STUBS],
    pub checks: [u64; 2],
    pub exit_rcx: u64,
    pub leave: u64,
}

impl Offsets {
    /// The stubs' host addresses when the trampolines start at `entry`.
    pub fn at(&self, entry: u64) -> Stubs {
        Stubs {
            steps: self.steps.map(|o| entry + o as u64),
            checks: self.checks.map(|o| entry + o as u64),
            exit_rcx: entry + self.exit_rcx as u64,
            leave: entry + self.leave as u64,
        }
    }
}

/// `Offsets::steps`: one per address register, and one for checks that used none.
pub const STEP_STUBS: usize = 17;
/// The index of `Offsets::steps` for a check that used no address register.
pub const NO_ADDR_REG: usize = 16;

/// Assembles the trampolines for the address `ip`; returns the code and the offsets of the
/// exit trampoline and the step stubs in it. `avx`: the host has AVX, so the guest's YMM upper
/// halves are loaded and stored too (translated VEX instructions use them).
pub fn assemble(ip: u64, avx: bool) -> Result<(Vec<u8>, Offsets), IcedError> {
    let mut a = CodeAssembler::new(64)?;
    for r in CALLEE_SAVED {
        a.push(r)?;
    }
    a.mov(ctx(off::HOST_RSP), rsp)?;
    a.mov(ctx(off::TARGET), rdi)?;
    // The guest's vector registers: the low halves from `Sse::xmm`, and with AVX the upper
    // halves from `Sse::ymm_hi` (without AVX no translated instruction can reach them).
    a.mov(rax, ctx(off::XMM_PTR))?;
    a.mov(rcx, ctx(off::YMM_HI_PTR))?;
    for (i, x) in XMMS.iter().enumerate() {
        if avx {
            a.vmovdqu(*x, xmmword_ptr(rax + 16 * i as i32))?;
            a.vinsertf128(YMMS[i], YMMS[i], xmmword_ptr(rcx + 16 * i as i32), 1)?;
        } else {
            a.movdqu(*x, xmmword_ptr(rax + 16 * i as i32))?;
        }
    }
    // The retired count lives in MM0 while translated code runs: the MMX registers are the
    // x87 state, which translated code never touches (x87 and MMX instructions are left to
    // the interpreter, which keeps that state in software, `select::vector_form`), and adding
    // to a register spares every block exit a load and a store of the count that the next
    // exit's load would wait for.
    a.movq(mm0, ctx(off::RETIRED))?;
    // The guest's SSP lives in MM1 (`translate::SSP_REG`) for the same reason: CALL and RET
    // move it by 8 with one flag-free PSUBQ/PADDQ instead of a load and a store through the
    // context that the next CALL's or RET's load would wait for.
    a.movq(crate::translate::SSP_REG, ctx(off::SSP))?;
    a.push(ctx(off::RFLAGS))?;
    a.popfq()?;
    for (i, r) in GPRS.iter().enumerate() {
        a.mov(*r, ctx(off::GPR + 8 * i as i64))?;
    }
    a.jmp(ctx(off::TARGET))?;
    let entry_len = a.assemble(ip)?.len();
    // The exit trampoline, assembled separately so its offset is known exactly.
    let mut x = CodeAssembler::new(64)?;
    for (i, r) in GPRS.iter().enumerate() {
        x.mov(ctx(off::GPR + 8 * i as i64), *r)?;
    }
    x.movq(ctx(off::RETIRED), mm0)?;
    x.movq(ctx(off::SSP), crate::translate::SSP_REG)?;
    // The x87 tag word back to empty for Rust code (Intel SDM Vol. 1 §9.5.1, EMMS).
    x.emms()?;
    x.mov(rax, ctx(off::XMM_PTR))?;
    x.mov(rcx, ctx(off::YMM_HI_PTR))?;
    for (i, r) in XMMS.iter().enumerate() {
        if avx {
            x.vmovdqu(xmmword_ptr(rax + 16 * i as i32), *r)?;
            x.vextractf128(xmmword_ptr(rcx + 16 * i as i32), YMMS[i], 1)?;
        } else {
            x.movdqu(xmmword_ptr(rax + 16 * i as i32), *r)?;
        }
    }
    if avx {
        // Rust code is built without AVX: clean upper halves spare it the SSE/AVX
        // transition cost (Intel 64 and IA-32 Architectures Optimization Reference Manual,
        // "Mixing AVX code with SSE code").
        x.vzeroupper()?;
    }
    x.mov(rsp, ctx(off::HOST_RSP))?;
    x.pushfq()?;
    x.pop(rax)?;
    x.mov(ctx(off::RFLAGS), rax)?;
    for r in CALLEE_SAVED.iter().rev() {
        x.pop(*r)?;
    }
    x.ret()?;
    let mut code = a.assemble(ip)?;
    code.extend(x.assemble(ip + entry_len as u64)?);
    let exit = ip + entry_len as u64;
    // The step stubs in one list (one assembly at start-up, not one per stub), each starting
    // at the offset the encoder reports for its first instruction.
    let mut s = CodeAssembler::new(64)?;
    let mut first = [0; STEP_STUBS];
    for (i, f) in first.iter_mut().enumerate() {
        *f = s.instructions().len();
        step_stub(&mut s, (i < 16).then(|| GPRS[i]), exit)?;
    }
    let mut check_first = [0; 2];
    for (f, need) in check_first.iter_mut().zip([Need::Read, Need::Write]) {
        *f = s.instructions().len();
        check_stub(&mut s, need)?;
    }
    let exit_rcx_first = s.instructions().len();
    exit_rcx_stub(&mut s, exit)?;
    let leave_first = s.instructions().len();
    leave_stub(&mut s, exit)?;
    let at = ip + code.len() as u64;
    let r = s.assemble_options(at, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let offsets = &r.inner.new_instruction_offsets;
    let at_stub = |f: usize| code.len() + offsets[f] as usize;
    let steps = first.map(at_stub);
    let checks = check_first.map(at_stub);
    let exit_rcx = at_stub(exit_rcx_first);
    let leave = at_stub(leave_first);
    code.extend(r.inner.code_buffer);
    Ok((
        code,
        Offsets {
            steps,
            checks,
            exit_rcx,
            leave,
        },
    ))
}

/// The shared tail of every failed memory check of translated code (`memop::slow_path`):
/// jumped to with the guest's RAX in `RAX_SAVE`, its flags in `FLAGS_SAVE`, `r`'s value (when
/// the check used an address register) in `ADDR_SAVE`, and in RAX the guest RIP of the
/// instruction whose check failed with, in bits 48-63, the instructions the block retired
/// before it (guest RIPs are user-space addresses, below 2^47). Records both and the STEP
/// exit reason, puts the guest's flags, RAX and `r` back and leaves through the exit
/// trampoline, so the run loop has the interpreter run that instruction. Each failed check
/// of a block then costs a 10-byte MOV and a jump instead of eleven instructions of its own
/// (python3's start-up translated 9,000 of them).
fn step_stub(a: &mut CodeAssembler, r: Option<AsmRegister64>, exit: u64) -> Result<(), IcedError> {
    a.mov(ctx(off::NEXT_RIP), rax)?;
    a.shr(rax, 48)?;
    a.paddq(mm0, qword_ptr(rax * 8 + off::COUNTS).gs())?;
    // The retired count out of the recorded RIP.
    a.mov(word_ptr(off::NEXT_RIP + 6).gs(), 0)?;
    a.mov(
        ctx(off::EXIT_REASON),
        crate::context::exit_reason::STEP as i32,
    )?;
    // The guest's flags back (`memop::restore_flags`), then RAX and the address register.
    a.mov(ax, word_ptr(off::FLAGS_SAVE).gs())?;
    a.add(al, 0x7f)?;
    a.sahf()?;
    a.mov(rax, ctx(off::RAX_SAVE))?;
    if let Some(r) = r {
        a.mov(r, ctx(off::ADDR_SAVE))?;
    }
    a.jmp(exit)
}

/// The full check of a remembered page (`memop::check_place`), shared by every read site
/// (`need` Read) or every write site (Write) of translated code instead of about 25
/// instructions of each site's own (python3's start-up emitted 8,400 of them).
///
/// Jumped to with the site's guest RAX in `RAX_SAVE` and its flags saved (or dead), the
/// address of the access's first byte in RAX, the site's slot and the access's size minus 1
/// in `CHECK_ARG` (bits 0-15 and 16-31) and the address to return to in `CHECK_RET`. Checks
/// the page table's entries of the first and the last byte's pages (the rule of `mask_want`)
/// and, when both allow the access, remembers the first byte's page in the slot as the
/// site's own code did (not while a userfaultfd is in use, nor for a write to a page that
/// is executable: `memop::check_place`). Returns with ZF set when the access is allowed,
/// clear when not (the site then takes its slow path); every guest register is as on entry
/// except RAX, and only the flags and RAX are clobbered (RCX is used in between and put back).
///
/// The return is an indirect jump, which costs a possibly mispredicted branch on a full
/// check; full checks are a site's first visit and each change of its page, not the path a
/// loop takes.
fn check_stub(a: &mut CodeAssembler, need: Need) -> Result<(), IcedError> {
    let (mask, want) = mask_want(need);
    let mut fail = a.create_label();
    let mut ok = a.create_label();
    a.mov(ctx(off::CHECK_ADDR), rax)?;
    page_entry_allows(a, mask, want, fail)?;
    // The last byte's page (the same page unless the access crosses into the next).
    a.movzx(eax, word_ptr(off::CHECK_ARG + 2).gs())?;
    a.add(rax, ctx(off::CHECK_ADDR))?;
    page_entry_allows(a, mask, want, fail)?;
    // Remembered only while no userfaultfd is in use (`cetbox_mem::remembered`).
    a.cmp(byte_ptr(off::REMEMBER).gs(), 0)?;
    a.je(ok)?;
    if need == Need::Write {
        // Nor for writes a page that is executable (`memop::check_place`).
        a.mov(rax, ctx(off::CHECK_ADDR))?;
        page_entry_allows(a, mask | u32::from(cetbox_mem::page::EXEC), want, ok)?;
    }
    a.mov(rax, ctx(off::CHECK_ADDR))?;
    a.and(rax, -4096)?;
    a.mov(ctx(off::CHECK_RCX), rcx)?;
    a.movzx(ecx, word_ptr(off::CHECK_ARG).gs())?;
    a.mov(qword_ptr(rcx * 8 + off::PAGE_SLOTS).gs(), rax)?;
    // The slot's dirty bit, bit (slot mod 64) of word slot / 64 (SHL masks its count to 6
    // bits; cheaper than BTS with a register bit offset into memory, a microcoded form).
    a.mov(eax, 1)?;
    a.shl(rax, cl)?;
    a.shr(ecx, 6)?;
    a.or(qword_ptr(rcx * 8 + off::SLOTS_DIRTY).gs(), rax)?;
    a.mov(rcx, ctx(off::CHECK_RCX))?;
    a.set_label(&mut ok)?;
    // ZF set: allowed.
    a.xor(eax, eax)?;
    a.jmp(ctx(off::CHECK_RET))?;
    a.set_label(&mut fail)?;
    // ZF clear: not allowed.
    a.or(eax, 1)?;
    a.jmp(ctx(off::CHECK_RET))
}

/// The shared tail of a direct exit (`translate::exit_stub`, `chained_exit`, `link_exit`):
/// jumped to with the next guest RIP in RCX and the guest's RCX in `SCRATCH`, the retired
/// count already added; records the RIP, puts RCX back and leaves through the exit
/// trampoline (three instructions fewer at each of python3's 15,000 exit sites).
fn exit_rcx_stub(a: &mut CodeAssembler, exit: u64) -> Result<(), IcedError> {
    a.mov(ctx(off::NEXT_RIP), rcx)?;
    a.mov(rcx, ctx(off::SCRATCH))?;
    a.jmp(exit)
}

/// The shared tail of an indirect branch or RET whose target is not entered from translated
/// code (`translate::leave`): jumped to with the guest RIP in RAX, the retired count added,
/// and the guest's flags, RAX and RBX saved by `memop::acquire`; records the RIP, puts them
/// back and leaves through the exit trampoline.
fn leave_stub(a: &mut CodeAssembler, exit: u64) -> Result<(), IcedError> {
    a.mov(ctx(off::NEXT_RIP), rax)?;
    a.mov(ax, word_ptr(off::FLAGS_SAVE).gs())?;
    a.add(al, 0x7f)?;
    a.sahf()?;
    a.mov(rax, ctx(off::RAX_SAVE))?;
    a.mov(rbx, ctx(off::ADDR_SAVE))?;
    a.jmp(exit)
}
