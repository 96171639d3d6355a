//! The register state a debugger sees of a stopped thread: a copy taken when the thread stops
//! and written back, if the debugger changed it, when it resumes.

use crate::process::Thread;
use cetbox_cpu::fpstate::{Sse, X87};

/// One thread's architectural state, as `struct user_regs_struct` plus the FXSAVE area and the
/// shadow-stack pointer (NT_X86_SHSTK) give it to a Linux debugger.
#[derive(Clone, Debug, Default)]
pub struct Regs {
    /// rax rcx rdx rbx rsp rbp rsi rdi r8..r15 (x86 encoding order, as `Cpu::gpr`).
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    /// The syscall number while the thread is inside a syscall, else -1 (`orig_rax`).
    pub orig_rax: u64,
    pub x87: X87,
    pub sse: Sse,
    /// The shadow-stack pointer (the MSR IA32_PL3_SSP).
    pub ssp: u64,
    /// Whether shadow stacks are enabled for the thread (the NT_X86_SHSTK regset exists).
    pub shstk_enabled: bool,
    /// The kernel side of the thread's shadow stack, for `monitor shstk-status`.
    pub shstk: crate::process::ShstkState,
    pub u_cet: u64,
}

impl Regs {
    pub fn of(t: &Thread, orig_rax: u64) -> Regs {
        let c = &t.cpu;
        Regs {
            gpr: c.gpr,
            rip: c.rip,
            rflags: c.rflags(),
            fs_base: c.fs_base,
            gs_base: c.gs_base,
            orig_rax,
            x87: c.x87.clone(),
            sse: c.sse.clone(),
            ssp: c.cet.ssp,
            shstk_enabled: t.shstk.features & crate::shstk::SHSTK != 0,
            shstk: t.shstk,
            u_cet: c.cet.u_cet,
        }
    }

    /// Writes the state back into the thread's CPU.
    pub fn apply(&self, t: &mut Thread) {
        let c = &mut t.cpu;
        c.gpr = self.gpr;
        c.rip = self.rip;
        c.set_rflags(self.rflags);
        c.fs_base = self.fs_base;
        c.gs_base = self.gs_base;
        c.x87 = self.x87.clone();
        c.sse = self.sse.clone();
        c.cet.ssp = self.ssp;
    }

    /// Sets the shadow-stack pointer with the checks of Linux's NT_X86_SHSTK regset
    /// (arch/x86/kernel/fpu/regset.c, ssp_set): ENODEV without shadow stacks, EINVAL for an
    /// address that is not 8-byte aligned or not below TASK_SIZE_MAX.
    pub fn set_ssp(&mut self, ssp: u64) -> Result<(), crate::Errno> {
        if !self.shstk_enabled {
            return Err(crate::Errno::ENODEV);
        }
        if ssp >= crate::shstk::TASK_SIZE_MAX || !ssp.is_multiple_of(8) {
            return Err(crate::Errno::EINVAL);
        }
        self.ssp = ssp;
        Ok(())
    }
}
