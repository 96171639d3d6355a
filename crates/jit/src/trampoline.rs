//! The entry and exit trampolines between Rust and translated code.
//!
//! Entry (called as `extern "sysv64" fn(block, ctx)`): saves the host's callee-saved
//! registers on the host stack and the host RSP in the context, loads the guest's arithmetic
//! flags and its 16 GPRs (RSP included: host RSP is the guest's while translated code runs),
//! and jumps to the block. Exit (jumped to by every block exit after it stored the next RIP
//! and the retired count): stores the 16 GPRs and RFLAGS in the context, restores the host
//! stack and registers, and returns to Rust. Everything is addressed through `gs:` (the
//! context, `context.rs`), so no host register is needed.

use crate::context::off;
use iced_x86::code_asm::*;
use iced_x86::IcedError;

/// GPRs in encoding order (guest register n lives in host register n).
pub const GPRS: [AsmRegister64; 16] = [
    rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
];

const CALLEE_SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];

fn ctx(offset: i64) -> AsmMemoryOperand {
    qword_ptr(offset).gs()
}

/// Assembles both trampolines for the address `ip`; returns the code and the offset of the
/// exit trampoline in it.
pub fn assemble(ip: u64) -> Result<(Vec<u8>, usize), IcedError> {
    let mut a = CodeAssembler::new(64)?;
    for r in CALLEE_SAVED {
        a.push(r)?;
    }
    a.mov(ctx(off::HOST_RSP), rsp)?;
    a.mov(ctx(off::TARGET), rdi)?;
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
    Ok((code, entry_len))
}
