//! Host thunks: one guest instruction executed by the host CPU on guest register state.
//!
//! A thunk is a small function generated for one instruction encoding:
//!
//! ```text
//! save the host's callee-saved GPRs; keep the context pointer on the stack
//! load the vector registers (YMM, or XMM on a host without AVX), the arithmetic flags and the
//! GPRs (RSP excepted) the instruction uses from the context
//! <the guest instruction, re-encoded>
//! store them back into the context; restore the host's registers
//! ```
//!
//! The thunk runs under the host MXCSR as the caller set it (`hostop::run_prepared`): the
//! guest's rounding, FTZ and DAZ with every exception masked, so nothing can trap.
//!
//! ```text
//! ```
//!
//! Safety story:
//! - The only guest-derived bytes executed are those iced-x86's encoder produces for the one
//!   decoded instruction, after `rewrite` has replaced its memory operand by `[B]` (B a GPR the
//!   instruction does not otherwise use, pointing at the context's 64-byte-aligned buffer) and
//!   any use of RSP as a register by another free GPR. The instruction therefore touches no
//!   memory but the buffer and never the host stack. Only instructions of the families
//!   `hostop::lookup` admits (SIMD arithmetic and data movement, BMI, POPCNT, LZCNT, CRC32,
//!   MOVBE: no control flow, no stack, no system state) are compiled.
//! - The guest flags are loaded masked to the six arithmetic flags, so AC, TF and DF are clear
//!   while the thunk runs; MXCSR has every exception masked, so nothing can trap.
//! - W^X: each thunk is written into a fresh page mapped read-write and not executable, which
//!   is then made read-execute and never written again, so a thunk pointer, once handed out, stays
//!   valid and unchanged for the life of the process (decoded blocks keep them). At most
//!   `MAX_PAGES` such pages exist; beyond that (a guest generating endless distinct encodings)
//!   thunks are compiled into a per-thread scratch page, made read-write, written, made
//!   read-execute and run, each time.
//! - Only the registers the instruction uses (iced's used-register list, which includes implicit
//!   operands) are loaded and stored, and the flags only if it reads or writes them.

use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

/// The state a thunk reads and writes (layout fixed: the generated code uses these offsets).
#[repr(C, align(64))]
pub struct Ctx {
    /// GPRs in encoding order (RAX, RCX, ... R15).
    pub gpr: [u64; 16],
    /// RFLAGS (only CF PF AF ZF SF OF are loaded; the host's after the instruction come back).
    pub rflags: u64,
    pub pad0: u64,
    /// The host address of `buf`, loaded into the memory-operand base register.
    pub mem: u64,
    pub pad1: [u64; 5],
    /// YMM0-15: (low 128 bits, high 128 bits).
    pub ymm: [[u128; 2]; 16],
    /// The memory operand's bytes.
    pub buf: [u8; 64],
}

const OFF_GPR: i64 = 0;
const OFF_RFLAGS: i64 = 128;
const OFF_MEM: i64 = 144;
const OFF_YMM: i64 = 192;

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            gpr: [0; 16],
            rflags: 0,
            pad0: 0,
            mem: 0,
            pad1: [0; 5],
            ymm: [[0; 2]; 16],
            buf: [0; 64],
        }
    }
}

/// A compiled thunk.
pub type ThunkFn = unsafe extern "sysv64" fn(*mut Ctx);

fn gpr64(n: usize) -> Register {
    // RAX..R15 are consecutive in iced's Register enum.
    Register::values()
        .nth(Register::RAX as usize + n)
        .unwrap_or(Register::RAX)
}

/// The GPR number (0..15) of a general-purpose register of any width, if it is one.
pub fn gpr_number(r: Register) -> Option<usize> {
    if !r.is_gpr() {
        return Option::None;
    }
    let f = r.full_register();
    Some(f as usize - Register::RAX as usize)
}

/// The register of the same width as `like` with GPR number `n`.
fn same_width(like: Register, n: usize) -> Register {
    let base = if like.is_gpr64() {
        Register::RAX
    } else if like.is_gpr32() {
        Register::EAX
    } else if like.is_gpr16() {
        Register::AX
    } else {
        // 8-bit: AL..BL are 0..3; SPL..R15L follow AH..BH (REX encodings).
        return if n < 4 {
            Register::values().nth(Register::AL as usize + n).unwrap()
        } else {
            Register::values()
                .nth(Register::SPL as usize + (n - 4))
                .unwrap()
        };
    };
    Register::values().nth(base as usize + n).unwrap()
}

/// Rewrites `insn` for the thunk: the memory operand (if any) becomes `[base]`, and every
/// register operand naming RSP (at any width) names GPR `rsp_as` instead.
pub fn rewrite(insn: &Instruction, base: Option<usize>, rsp_as: Option<usize>) -> Instruction {
    let mut i = *insn;
    if let Some(b) = base {
        i.set_memory_base(gpr64(b));
        i.set_memory_index(Register::None);
        i.set_memory_index_scale(1);
        i.set_memory_displacement64(0);
        i.set_memory_displ_size(0);
        i.set_segment_prefix(Register::None);
    }
    if let Some(c) = rsp_as {
        for n in 0..i.op_count() {
            if i.op_kind(n) == iced_x86::OpKind::Register {
                let r = i.op_register(n);
                if r.is_gpr() && r.full_register() == Register::RSP {
                    i.set_op_register(n, same_width(r, c));
                }
            }
        }
    }
    i
}

struct Asm {
    enc: Encoder,
    ok: bool,
}

impl Asm {
    fn put(&mut self, i: Result<Instruction, iced_x86::IcedError>) {
        match i {
            Ok(i) => {
                if self.enc.encode(&i, 0).is_err() {
                    self.ok = false;
                }
            }
            Err(_) => self.ok = false,
        }
    }
}

fn m(base: Register, d: i64) -> MemoryOperand {
    MemoryOperand::with_base_displ(base, d)
}

/// What a thunk loads and stores besides the instruction's memory buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The GPR holding the buffer address (memory forms).
    pub base: Option<usize>,
    /// The GPR standing in for RSP.
    pub rsp_as: Option<usize>,
    /// Vector registers used (bit n: XMMn/YMMn).
    pub vecs: u16,
    /// GPRs used (bit n), RSP excluded (it is `rsp_as`).
    pub gprs: u16,
    /// The instruction reads or writes RFLAGS.
    pub flags: bool,
}

/// Generates the thunk's code for the rewritten instruction `insn`. None if iced cannot
/// encode it.
pub fn generate(insn: &Instruction, plan: &Plan, avx: bool) -> Option<Vec<u8>> {
    use Register::*;
    let (base, rsp_as) = (plan.base, plan.rsp_as);
    let mut a = Asm {
        enc: Encoder::new(64),
        ok: true,
    };
    let callee = [RBX, RBP, R12, R13, R14, R15];
    for r in callee {
        a.put(Instruction::with1(Code::Push_r64, r));
    }
    a.put(Instruction::with1(Code::Push_r64, RDI));
    let vec = |n: usize| plan.vecs & (1 << n) != 0;
    for n in (0..16).filter(|&n| vec(n)) {
        let r = Register::values().nth(YMM0 as usize + n).unwrap();
        let x = Register::values().nth(XMM0 as usize + n).unwrap();
        let mo = m(RDI, OFF_YMM + 32 * n as i64);
        if avx {
            a.put(Instruction::with2(Code::VEX_Vmovdqu_ymm_ymmm256, r, mo));
        } else {
            a.put(Instruction::with2(Code::Movdqu_xmm_xmmm128, x, mo));
        }
    }
    if plan.flags {
        a.put(Instruction::with1(Code::Push_rm64, m(RDI, OFF_RFLAGS)));
        a.put(Ok(Instruction::with(Code::Popfq)));
    }
    // GPRs the thunk moves: the used ones, never RSP; RDI is loaded last (it holds the context).
    let moved =
        |n: usize| n != 4 && plan.gprs & (1 << n) != 0 && Some(n) != base && Some(n) != rsp_as;
    for n in (0..16).filter(|&n| n != 7 && moved(n)) {
        a.put(Instruction::with2(
            Code::Mov_r64_rm64,
            gpr64(n),
            m(RDI, OFF_GPR + 8 * n as i64),
        ));
    }
    if let Some(b) = base {
        a.put(Instruction::with2(
            Code::Mov_r64_rm64,
            gpr64(b),
            m(RDI, OFF_MEM),
        ));
    }
    if let Some(c) = rsp_as {
        a.put(Instruction::with2(
            Code::Mov_r64_rm64,
            gpr64(c),
            m(RDI, OFF_GPR + 32),
        ));
    }
    if moved(7) {
        a.put(Instruction::with2(
            Code::Mov_r64_rm64,
            RDI,
            m(RDI, OFF_GPR + 56),
        ));
    }
    // The guest instruction.
    a.put(Ok(*insn));
    a.put(Ok(Instruction::with(Code::Pushfq)));
    a.put(Instruction::with1(Code::Push_r64, RAX));
    a.put(Instruction::with2(Code::Mov_r64_rm64, RAX, m(RSP, 16)));
    for n in (1..16).filter(|&n| moved(n)) {
        a.put(Instruction::with2(
            Code::Mov_rm64_r64,
            m(RAX, OFF_GPR + 8 * n as i64),
            gpr64(n),
        ));
    }
    if let Some(c) = rsp_as {
        a.put(Instruction::with2(
            Code::Mov_rm64_r64,
            m(RAX, OFF_GPR + 32),
            gpr64(c),
        ));
    }
    if moved(0) {
        a.put(Instruction::with1(Code::Pop_rm64, m(RAX, OFF_GPR)));
    } else {
        a.put(Instruction::with2(Code::Add_rm64_imm8, RSP, 8u32));
    }
    if plan.flags {
        a.put(Instruction::with1(Code::Pop_rm64, m(RAX, OFF_RFLAGS)));
    } else {
        a.put(Instruction::with2(Code::Add_rm64_imm8, RSP, 8u32));
    }
    for n in (0..16).filter(|&n| vec(n)) {
        let r = Register::values().nth(YMM0 as usize + n).unwrap();
        let x = Register::values().nth(XMM0 as usize + n).unwrap();
        let mo = m(RAX, OFF_YMM + 32 * n as i64);
        if avx {
            a.put(Instruction::with2(Code::VEX_Vmovdqu_ymmm256_ymm, mo, r));
        } else {
            a.put(Instruction::with2(Code::Movdqu_xmmm128_xmm, mo, x));
        }
    }
    a.put(Instruction::with2(Code::Add_rm64_imm8, RSP, 8u32));
    for r in callee.iter().rev() {
        a.put(Instruction::with1(Code::Pop_r64, *r));
    }
    if avx {
        a.put(Ok(Instruction::with(Code::VEX_Vzeroupper)));
    }
    a.put(Ok(Instruction::with(Code::Retnq)));
    if !a.ok {
        return Option::None;
    }
    Some(a.enc.take_buffer())
}

const PAGE: usize = 4096;
/// Thunk pages kept for the life of the process (64 MiB of address space at most).
const MAX_PAGES: usize = 16384;

/// Maps a fresh read-write page and copies `code` into it; None if the host refuses.
fn fill_page(code: &[u8]) -> Option<*mut u8> {
    if code.len() > PAGE {
        return None;
    }
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: `p` is a PAGE-sized read-write mapping we own and code.len() <= PAGE.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
    Some(p.cast::<u8>())
}

/// Makes `page` read-execute and returns its start as a thunk.
fn seal(page: *mut u8) -> Option<ThunkFn> {
    // SAFETY: `page` is a page `fill_page` mapped; from now on it is not writable.
    if unsafe { libc::mprotect(page.cast(), PAGE, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return None;
    }
    // SAFETY: the page starts with a complete function generated by `generate`, with the
    // sysv64 calling convention and one pointer argument.
    Some(unsafe { std::mem::transmute::<*mut u8, ThunkFn>(page) })
}

struct Global {
    map: HashMap<Instruction, Option<ThunkFn>>,
    pages: usize,
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);

/// The thunk for `key` (the normalized instruction), compiling it with `make` on first use.
/// Err(code) when the page budget is spent: the caller runs `code` through `run_scratch`.
/// Ok(None): the instruction cannot be compiled.
pub fn get(
    key: &Instruction,
    make: &dyn Fn() -> Option<Vec<u8>>,
) -> Result<Option<ThunkFn>, Vec<u8>> {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let g = g.get_or_insert_with(|| Global {
        map: HashMap::new(),
        pages: 0,
    });
    if let Some(f) = g.map.get(key) {
        return Ok(*f);
    }
    let Some(code) = make() else {
        g.map.insert(*key, None);
        return Ok(None);
    };
    if g.pages >= MAX_PAGES {
        return Err(code);
    }
    let f = fill_page(&code).and_then(seal);
    if f.is_some() {
        g.pages += 1;
    }
    g.map.insert(*key, f);
    Ok(f)
}

thread_local! {
    static SCRATCH: RefCell<Option<*mut u8>> = const { RefCell::new(None) };
}

/// Runs `code` from this thread's scratch page: made read-write, written, made read-execute,
/// run. Only this thread ever executes its scratch page, and never while writing it.
pub fn run_scratch(code: &[u8], ctx: &mut Ctx) -> bool {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let page = match *s {
            Some(p) => {
                // SAFETY: this thread's scratch page; no thunk runs from it now.
                if unsafe { libc::mprotect(p.cast(), PAGE, libc::PROT_READ | libc::PROT_WRITE) }
                    != 0
                    || code.len() > PAGE
                {
                    return false;
                }
                // SAFETY: a writable PAGE-sized mapping we own; code.len() <= PAGE.
                unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p, code.len()) };
                p
            }
            None => match fill_page(code) {
                Some(p) => {
                    *s = Some(p);
                    p
                }
                None => return false,
            },
        };
        match seal(page) {
            Some(f) => {
                call(f, ctx);
                true
            }
            None => false,
        }
    })
}

/// Runs a thunk on `ctx`.
#[inline]
pub fn call(f: ThunkFn, ctx: &mut Ctx) {
    ctx.mem = ctx.buf.as_mut_ptr() as u64;
    // SAFETY: see the module comment: the thunk reads and writes only `ctx` (its buffer
    // included) and the registers it saves and restores.
    unsafe { f(ctx) };
}
