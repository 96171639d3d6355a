//! Host thunks: one guest instruction executed by the host CPU on guest register state.
//!
//! A thunk is a small function generated for one instruction encoding:
//!
//! ```text
//! save the host's callee-saved GPRs and MXCSR; keep the context pointer on the stack
//! load YMM0-15 (XMM0-15 on a host without AVX), MXCSR, the arithmetic flags and the GPRs
//! (RSP excepted) from the context
//! <the guest instruction, re-encoded>
//! store the GPRs, flags, MXCSR and vector registers back into the context; restore the host's
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
//!   while the thunk runs; MXCSR is loaded with every exception masked (`float::host_csr`), so
//!   nothing can trap.
//! - W^X: code is written into a page mapped read-write and not executable, then the page is
//!   made read-execute before any thunk in it runs; adding a thunk to a page flips it back to
//!   read-write only while no thunk runs (thunks are per host thread and never re-entered).

use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use std::cell::RefCell;
use std::collections::HashMap;

/// The state a thunk reads and writes (layout fixed: the generated code uses these offsets).
#[repr(C, align(64))]
pub struct Ctx {
    /// GPRs in encoding order (RAX, RCX, ... R15).
    pub gpr: [u64; 16],
    /// RFLAGS (only CF PF AF ZF SF OF are loaded; the host's after the instruction come back).
    pub rflags: u64,
    pub mxcsr: u32,
    pub pad0: u32,
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
const OFF_MXCSR: i64 = 136;
const OFF_MEM: i64 = 144;
const OFF_YMM: i64 = 192;

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            gpr: [0; 16],
            rflags: 0,
            mxcsr: 0x1f80,
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

/// Generates the thunk's code for the rewritten instruction `insn`. `base`: the GPR holding
/// the buffer address; `rsp_as`: the GPR standing in for RSP. None if iced cannot encode it.
pub fn generate(
    insn: &Instruction,
    base: Option<usize>,
    rsp_as: Option<usize>,
    avx: bool,
) -> Option<Vec<u8>> {
    use Register::*;
    let mut a = Asm {
        enc: Encoder::new(64),
        ok: true,
    };
    let callee = [RBX, RBP, R12, R13, R14, R15];
    for r in callee {
        a.put(Instruction::with1(Code::Push_r64, r));
    }
    a.put(Instruction::with2(Code::Sub_rm64_imm8, RSP, 8u32));
    a.put(Instruction::with1(Code::Stmxcsr_m32, m(RSP, 0)));
    a.put(Instruction::with1(Code::Push_r64, RDI));
    for n in 0..16 {
        let r = Register::values().nth(YMM0 as usize + n).unwrap();
        let x = Register::values().nth(XMM0 as usize + n).unwrap();
        let mo = m(RDI, OFF_YMM + 32 * n as i64);
        if avx {
            a.put(Instruction::with2(Code::VEX_Vmovdqu_ymm_ymmm256, r, mo));
        } else {
            a.put(Instruction::with2(Code::Movdqu_xmm_xmmm128, x, mo));
        }
    }
    a.put(Instruction::with1(Code::Ldmxcsr_m32, m(RDI, OFF_MXCSR)));
    a.put(Instruction::with1(Code::Push_rm64, m(RDI, OFF_RFLAGS)));
    a.put(Ok(Instruction::with(Code::Popfq)));
    let skip = |n: usize| n == 4 || n == 7 || Some(n) == base || Some(n) == rsp_as;
    for n in 0..16 {
        if !skip(n) {
            a.put(Instruction::with2(
                Code::Mov_r64_rm64,
                gpr64(n),
                m(RDI, OFF_GPR + 8 * n as i64),
            ));
        }
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
    a.put(Instruction::with2(
        Code::Mov_r64_rm64,
        RDI,
        m(RDI, OFF_GPR + 56),
    ));
    // The guest instruction.
    a.put(Ok(*insn));
    a.put(Ok(Instruction::with(Code::Pushfq)));
    a.put(Instruction::with1(Code::Push_r64, RAX));
    a.put(Instruction::with2(Code::Mov_r64_rm64, RAX, m(RSP, 16)));
    for n in 1..16 {
        if n != 4 && Some(n) != base && Some(n) != rsp_as {
            a.put(Instruction::with2(
                Code::Mov_rm64_r64,
                m(RAX, OFF_GPR + 8 * n as i64),
                gpr64(n),
            ));
        }
    }
    if let Some(c) = rsp_as {
        a.put(Instruction::with2(
            Code::Mov_rm64_r64,
            m(RAX, OFF_GPR + 32),
            gpr64(c),
        ));
    }
    if base == Some(0) || rsp_as == Some(0) {
        a.put(Instruction::with2(Code::Add_rm64_imm8, RSP, 8u32));
    } else {
        a.put(Instruction::with1(Code::Pop_rm64, m(RAX, OFF_GPR)));
    }
    a.put(Instruction::with1(Code::Pop_rm64, m(RAX, OFF_RFLAGS)));
    a.put(Instruction::with1(Code::Stmxcsr_m32, m(RAX, OFF_MXCSR)));
    for n in 0..16 {
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
    a.put(Instruction::with1(Code::Ldmxcsr_m32, m(RSP, 0)));
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
/// Thunks kept per host thread before the cache is dropped and its pages unmapped.
const MAX_PAGES: usize = 2048;

/// Executable pages of one host thread.
struct Arena {
    pages: Vec<*mut u8>,
    used: usize,
}

impl Arena {
    /// Copies `code` into executable memory; None if the host refuses memory.
    fn place(&mut self, code: &[u8]) -> Option<ThunkFn> {
        if code.len() > PAGE {
            return None;
        }
        let fresh = self.pages.is_empty() || self.used + code.len() > PAGE;
        let page = if fresh {
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
            self.pages.push(p as *mut u8);
            self.used = 0;
            p as *mut u8
        } else {
            let p = *self.pages.last().unwrap();
            // SAFETY: `p` is a page this arena mapped; no thunk runs while one is compiled
            // (thunks are per thread and not re-entrant), so none of its code executes now.
            if unsafe { libc::mprotect(p as _, PAGE, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
                return None;
            }
            p
        };
        let at = self.used;
        // SAFETY: `page` is a PAGE-sized read-write mapping we own and at + len <= PAGE.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), page.add(at), code.len()) };
        self.used = (at + code.len() + 15) & !15;
        // SAFETY: as above; the page becomes read-execute, no longer writable.
        if unsafe { libc::mprotect(page as _, PAGE, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
            return None;
        }
        // SAFETY: the bytes at page+at are a complete function generated by `generate` with
        // the sysv64 calling convention taking one pointer argument.
        Some(unsafe { std::mem::transmute::<*mut u8, ThunkFn>(page.add(at)) })
    }

    fn clear(&mut self) {
        for &p in &self.pages {
            // SAFETY: pages this arena mapped; the caller has dropped every ThunkFn into them.
            unsafe { libc::munmap(p as _, PAGE) };
        }
        self.pages.clear();
        self.used = 0;
    }
}

/// A compiled instruction: the thunk and the registers it repurposed.
#[derive(Clone, Copy)]
pub struct Compiled {
    pub f: ThunkFn,
}

struct Cache {
    arena: Arena,
    map: HashMap<Instruction, Option<Compiled>>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        arena: Arena { pages: Vec::new(), used: 0 },
        map: HashMap::new(),
    });
}

/// Runs the thunk for `key` (compiling it with `make` on first use) on `ctx`. False if the
/// instruction cannot be compiled.
pub fn run(key: &Instruction, make: &dyn Fn() -> Option<Vec<u8>>, ctx: &mut Ctx) -> bool {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let f = match c.map.get(key) {
            Some(x) => *x,
            None => {
                if c.arena.pages.len() >= MAX_PAGES {
                    c.map.clear();
                    c.arena.clear();
                }
                let compiled = make()
                    .and_then(|code| c.arena.place(&code))
                    .map(|f| Compiled { f });
                c.map.insert(*key, compiled);
                compiled
            }
        };
        let Some(f) = f else { return false };
        ctx.mem = ctx.buf.as_mut_ptr() as u64;
        // SAFETY: see the module comment: the thunk reads and writes only `ctx` (its buffer
        // included) and the registers it saves and restores.
        unsafe { (f.f)(ctx) };
        true
    })
}
