//! `struct user_regs_struct` and `struct user` as Linux's x86-64 ptrace shows them
//! (arch/x86/include/asm/user_64.h; arch/x86/kernel/ptrace.c getreg(), putreg(),
//! ptrace_get_debugreg(), ptrace_set_debugreg()).

use crate::errno::Errno;
use crate::process::Thread;
use crate::shstk::TASK_SIZE_MAX;

/// Words in user_regs_struct.
pub const NREGS: usize = 27;
pub const REGS_LEN: usize = NREGS * 8;
/// sizeof(struct user) (the kernel's, arch/x86/include/asm/user_64.h, which ends with
/// error_code and fault_address after the debug registers) and offsetof(u_debugreg).
pub const USER_LEN: u64 = 928;
pub const DEBUGREG_OFF: u64 = 848;

// Word indexes in user_regs_struct.
pub const ORIG_RAX: usize = 15;
const RIP: usize = 16;
const CS: usize = 17;
const EFLAGS: usize = 18;
const SS: usize = 20;
const FS_BASE: usize = 21;
const GS_BASE: usize = 22;
const DS: usize = 23;
const ES: usize = 24;
const FS: usize = 25;
const GS: usize = 26;

/// The index into `Cpu::gpr` (rax rcx rdx rbx rsp rbp rsi rdi r8..r15) of each
/// user_regs_struct word that is a general register (r15 r14 r13 r12 rbp rbx r11 r10 r9 r8
/// rax rcx rdx rsi rdi, then rsp at word 19).
fn gpr_index(word: usize) -> Option<usize> {
    const ORDER: [usize; 15] = [15, 14, 13, 12, 5, 3, 11, 10, 9, 8, 0, 1, 2, 6, 7];
    match word {
        0..=14 => Some(ORDER[word]),
        19 => Some(4),
        _ => None,
    }
}

/// The selectors of a 64-bit user thread (arch/x86/include/asm/segment.h: __USER_CS,
/// __USER_DS; ds, es, fs and gs are null in a 64-bit process that never loaded them).
const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;
/// IF: always set in user mode; Linux shows it in eflags.
const EFLAGS_IF: u64 = 0x200;
/// The flags a tracer may change (arch/x86/kernel/ptrace.c FLAG_MASK: CF PF AF ZF SF TF DF OF
/// RF AC).
const FLAG_MASK: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;

/// The thread's user_regs_struct, with `orig_rax` given by the stop.
pub fn image(t: &Thread, orig_rax: u64) -> [u64; NREGS] {
    let c = &t.cpu;
    let mut r = [0u64; NREGS];
    for (w, v) in r.iter_mut().enumerate() {
        if let Some(g) = gpr_index(w) {
            *v = c.gpr[g];
        }
    }
    r[ORIG_RAX] = orig_rax;
    r[RIP] = c.rip;
    r[CS] = USER_CS;
    r[EFLAGS] = c.rflags() | EFLAGS_IF | 0x2;
    r[SS] = USER_DS;
    r[FS_BASE] = c.fs_base;
    r[GS_BASE] = c.gs_base;
    r
}

/// Loads an image (already checked word by word by `put`) into the thread.
pub fn apply(t: &mut Thread, r: &[u64; NREGS]) {
    let c = &mut t.cpu;
    for (w, v) in r.iter().enumerate() {
        if let Some(g) = gpr_index(w) {
            c.gpr[g] = *v;
        }
    }
    c.rip = r[RIP];
    let old = c.rflags();
    c.set_rflags((old & !FLAG_MASK) | (r[EFLAGS] & FLAG_MASK));
    c.fs_base = r[FS_BASE];
    c.gs_base = r[GS_BASE];
}

/// Writes `value` into word `w` of `r` as putreg() does, with its checks: EIO for a selector
/// that is not null and not RPL 3 (invalid_selector), a null cs or ss, and a base at or above
/// TASK_SIZE_MAX; eflags keeps the bits outside FLAG_MASK. cetbox runs 64-bit code with the
/// fixed selectors only, so a selector change it cannot model is EIO as well.
pub fn put(r: &mut [u64; NREGS], w: usize, value: u64) -> Result<(), Errno> {
    match w {
        CS | SS | DS | ES | FS | GS => {
            let invalid = value != 0 && value & 3 != 3;
            if invalid || ((w == CS || w == SS) && value == 0) {
                return Err(Errno::EIO);
            }
            if value != r[w] {
                return Err(Errno::EIO);
            }
        }
        FS_BASE | GS_BASE => {
            if value >= TASK_SIZE_MAX {
                return Err(Errno::EIO);
            }
            r[w] = value;
        }
        EFLAGS => r[w] = (r[w] & !FLAG_MASK) | (value & FLAG_MASK),
        _ => r[w] = value,
    }
    Ok(())
}

/// Loads a whole image written by the tracer (SETREGS, SETREGSET) into `r`, word by word in
/// order as genregs_set() does: the first failing word ends it with the earlier ones stored.
pub fn put_all(r: &mut [u64; NREGS], new: &[u64]) -> Result<(), Errno> {
    for (w, v) in new.iter().enumerate().take(NREGS) {
        put(r, w, *v)?;
    }
    Ok(())
}

pub fn to_bytes(r: &[u64; NREGS]) -> [u8; REGS_LEN] {
    let mut b = [0u8; REGS_LEN];
    for (i, v) in r.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

pub fn from_bytes(b: &[u8; REGS_LEN]) -> [u64; NREGS] {
    let mut r = [0u64; NREGS];
    for (i, v) in r.iter_mut().enumerate() {
        *v = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    }
    r
}
