use crate::flags::Flags;
use crate::fpstate::{Sse, X87};
use crate::level::CpuLevel;
use cetbox_mem::AddressSpace;
use std::sync::Arc;

/// General-purpose register numbers (the x86 encoding order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Reg {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

/// The CET state of one thread (Intel SDM Vol. 1 ch. 18).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CetState {
    /// The shadow-stack pointer.
    pub ssp: u64,
    /// IA32_U_CET (MSR 0x6A0) with its architectural layout (bit names: Linux
    /// arch/x86/include/asm/msr-index.h).
    pub u_cet: u64,
}

pub const U_CET_SH_STK_EN: u64 = 1 << 0;
pub const U_CET_WR_SHSTK_EN: u64 = 1 << 1;

impl CetState {
    #[inline(always)]
    pub fn shstk_enabled(&self) -> bool {
        self.u_cet & U_CET_SH_STK_EN != 0
    }
    #[inline(always)]
    pub fn wrss_enabled(&self) -> bool {
        self.u_cet & (U_CET_SH_STK_EN | U_CET_WR_SHSTK_EN) == U_CET_SH_STK_EN | U_CET_WR_SHSTK_EN
    }
}

/// The most recent RSTORSSP, kept for violation reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsSwitch {
    pub rip: u64,
    pub from_ssp: u64,
    pub to_ssp: u64,
    /// `Cpu::icount` when it happened, to order it against the kernel's switches.
    pub at: u64,
}

/// The CPU model presented to the guest; process-wide.
#[derive(Clone, Debug)]
pub struct CpuConfig {
    /// CR4.CET and CPUID CET_SS (the "CET" profile); false is the "no-CET" profile: a kernel with
    /// shadow-stack support on a CPU without CET, where the ABI answers EOPNOTSUPP.
    pub cet: bool,
    /// The microarchitecture level (`level.rs`): which CPUID features exist and which
    /// instructions execute rather than raise #UD.
    pub level: CpuLevel,
}

impl Default for CpuConfig {
    /// The CET profile of the most capable level (the host CPU of the differential test has
    /// it); the command line picks its own default from what the host supports.
    fn default() -> Self {
        CpuConfig {
            cet: true,
            level: CpuLevel::V3,
        }
    }
}

impl CpuConfig {
    /// XCR0 as the operating system sets it: every state component the level has (x87, SSE,
    /// and AVX from x86-64-v3). 0 when the CPU has no XSAVE.
    pub fn xcr0(&self) -> u64 {
        if self.level >= CpuLevel::V3 {
            XCR0_X87 | XCR0_SSE | XCR0_AVX
        } else {
            0
        }
    }
}

/// XCR0 / XSAVE state-component bits (Intel SDM Vol. 1 §13.1).
pub const XCR0_X87: u64 = 1;
pub const XCR0_SSE: u64 = 2;
pub const XCR0_AVX: u64 = 4;

/// One guest thread's CPU.
pub struct Cpu {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub flags: Flags,
    pub fs_base: u64,
    pub gs_base: u64,
    pub x87: X87,
    pub sse: Sse,
    pub cet: CetState,
    pub config: Arc<CpuConfig>,
    pub mem: Arc<AddressSpace>,
    /// Instructions retired (approximate: counted per block).
    pub icount: u64,
    /// The last shadow-stack switch made by an instruction (RSTORSSP).
    pub last_rstorssp: Option<SsSwitch>,
    /// Held by an engine only while it runs this CPU on the current host thread (engines
    /// clear it before returning, `Cpu::fp_sync`): the host MXCSR holds the guest's SIMD
    /// control bits and accumulates its flags (`interp::fast_sse`); `fp_host_csr` is the
    /// host's own value to restore.
    pub(crate) fp_live: bool,
    pub(crate) fp_host_csr: u32,
}

impl Cpu {
    pub fn new(mem: Arc<AddressSpace>, config: Arc<CpuConfig>) -> Cpu {
        Cpu {
            gpr: [0; 16],
            rip: 0,
            flags: Flags::default(),
            fs_base: 0,
            gs_base: 0,
            x87: X87::default(),
            sse: Sse::default(),
            cet: CetState::default(),
            config,
            mem,
            icount: 0,
            last_rstorssp: None,
            fp_live: false,
            fp_host_csr: 0,
        }
    }

    /// A copy of the architectural state for a new thread or process sharing or copying `mem`;
    /// the rest (instruction count, engine-held state) starts as in a new CPU.
    pub fn fork(&self, mem: Arc<AddressSpace>) -> Cpu {
        Cpu {
            gpr: self.gpr,
            rip: self.rip,
            flags: self.flags,
            fs_base: self.fs_base,
            gs_base: self.gs_base,
            x87: self.x87.clone(),
            sse: self.sse.clone(),
            cet: self.cet,
            ..Cpu::new(mem, self.config.clone())
        }
    }

    #[inline(always)]
    pub fn reg(&self, r: Reg) -> u64 {
        self.gpr[r as usize]
    }

    #[inline(always)]
    pub fn set(&mut self, r: Reg, v: u64) {
        self.gpr[r as usize] = v;
    }

    pub fn rflags(&self) -> u64 {
        self.flags.get()
    }

    pub fn set_rflags(&mut self, v: u64) {
        self.flags.set(v);
    }
}
