use cetbox_mem::Fault;

/// Why an instruction raised #UD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdReason {
    /// The architecture says #UD (UD2, an invalid encoding, a disabled CET instruction...).
    Architectural,
    /// A valid instruction cetbox's CPU model does not implement; the text names it.
    Unimplemented(String),
}

/// The error code of a control-protection exception (#CP) in user mode: Intel SDM Vol. 1
/// §18.2 and Vol. 3A §6.15 ("Interrupt 21—Control Protection Exception"), table of #CP
/// error codes. Only the shadow-stack causes can occur here (no user IBT: ENDBRANCH is absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum CpCode {
    /// NEAR-RET: a near RET's return address differs from the shadow stack's.
    NearRet = 1,
    /// FAR-RET/IRET: a far return's CS:LIP or SSP token check failed.
    FarRetIret = 2,
    /// RSTORSSP: the restore token at the new SSP is invalid.
    Rstorssp = 4,
}

/// An exception raised by a guest instruction. All are faults (RIP = the instruction, nothing
/// committed) except the traps `Breakpoint` and `SystemCallGate`, reported with RIP after the
/// instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exception {
    /// #DE: divide error.
    DivideError,
    /// #BP: INT3.
    Breakpoint,
    /// `INT 0x80`: the legacy 32-bit system-call gate, the only software interrupt a Linux user
    /// may use (any other vector is #GP). A trap: RIP is after the instruction.
    SystemCallGate,
    /// #UD.
    InvalidOpcode(UdReason),
    /// #GP(0), including non-canonical addresses and privileged instructions.
    GeneralProtection,
    /// #PF: a memory access the page table refused.
    PageFault(Fault),
    /// #CP with its error code.
    ControlProtection(CpCode),
    /// #MF: unmasked x87 exception.
    X87Fault,
    /// #XM: unmasked SIMD floating-point exception; the value is MXCSR's flags.
    SimdFault(u32),
    /// An explicitly aligned SSE access to a misaligned address (#GP in fact).
    Alignment,
    /// #AC: a misaligned data access while EFLAGS.AC is set (CR0.AM is set in user mode
    /// under Linux); see `interp::align`.
    AlignmentCheck,
    /// #DB after a single-stepped instruction (TF).
    Debug,
}

impl From<Fault> for Exception {
    /// A refused access is a page fault, except that an access reaching a non-canonical
    /// address never gets as far as paging: the CPU raises #GP(0) instead.
    fn from(f: Fault) -> Exception {
        if crate::is_canonical(f.addr) {
            Exception::PageFault(f)
        } else {
            Exception::GeneralProtection
        }
    }
}

impl Exception {
    /// The fault of the load of a read-modify-write instruction: the processor checks the
    /// access as a write, so a page fault there has W set in its error code (SDM Vol. 3A,
    /// 4.7 "Page-Fault Exceptions"; what the host reports for `add $1,(unmapped)`).
    pub fn as_rmw(self) -> Exception {
        match self {
            Exception::PageFault(mut f) if f.access == cetbox_mem::Access::Read => {
                f.access = cetbox_mem::Access::Write;
                Exception::PageFault(f)
            }
            e => e,
        }
    }

    /// The fault of the load of a read-modify-write of `size` bytes at `addr`, which the
    /// processor checks as a write page by page: for an access crossing into a second page the
    /// first page that does not allow the write is the one reported (a read-only page before
    /// an unmapped one gives the protection fault at the first byte, as the host reports it),
    /// not the first page the load could not read.
    pub fn rmw_fault(self, mem: &cetbox_mem::AddressSpace, addr: u64, size: u64) -> Exception {
        match self {
            Exception::PageFault(_) => match mem.check(addr, size, cetbox_mem::Access::Write) {
                Err(f) => Exception::from(f),
                Ok(()) => self.as_rmw(),
            },
            e => e,
        }
    }

    /// Traps report RIP after the instruction; everything else is a fault with RIP at it.
    pub fn is_trap(&self) -> bool {
        matches!(
            self,
            Exception::Breakpoint | Exception::SystemCallGate | Exception::Debug
        )
    }

    /// The x86 vector number (Linux's `trapno`).
    pub fn vector(&self) -> u64 {
        match self {
            Exception::DivideError => 0,
            Exception::Debug => 1,
            Exception::Breakpoint => 3,
            Exception::SystemCallGate => 0x80,
            Exception::InvalidOpcode(_) => 6,
            Exception::GeneralProtection | Exception::Alignment => 13,
            Exception::PageFault(_) => 14,
            Exception::AlignmentCheck => 17,
            Exception::X87Fault => 16,
            Exception::SimdFault(_) => 19,
            Exception::ControlProtection(_) => 21,
        }
    }

    /// The hardware error code (Linux's `err`).
    pub fn error_code(&self) -> u64 {
        match self {
            Exception::PageFault(f) => f.error_code(),
            Exception::ControlProtection(c) => *c as u64,
            _ => 0,
        }
    }
}

pub type Result<T> = std::result::Result<T, Exception>;
