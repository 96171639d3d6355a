use crate::Access;

/// Why a guest access failed, in the terms Linux uses for the resulting signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// No mapping at the address: SIGSEGV / SEGV_MAPERR.
    NotMapped,
    /// A mapping exists but forbids this access: SIGSEGV / SEGV_ACCERR.
    Protection,
    /// The page lies beyond the end of the file it maps: SIGBUS / BUS_ADRERR.
    BeyondEof,
}

/// A failed guest memory access: the page-fault the hardware would raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The first faulting byte (what Linux puts in si_addr and cr2).
    pub addr: u64,
    pub access: Access,
    pub kind: FaultKind,
    /// Whether the page had a present page-table entry (it was accessed before and is not
    /// PROT_NONE): the P bit of the error code.
    pub present: bool,
}

impl Fault {
    /// The x86 page-fault error code Linux copies into `uc_mcontext.err`
    /// (P = 0x1, W = 0x2, U = 0x4, I/D = 0x10, SS = 0x40); see Intel SDM Vol. 3A §4.7.
    pub fn error_code(&self) -> u64 {
        let mut e = 0x4; // user mode
                         // Pages past the end of a file are not present (Linux reports error code 4 for SIGBUS).
        if self.kind == FaultKind::Protection && self.present {
            e |= 0x1;
        }
        // An address at or above TASK_SIZE_MAX (the last user page's start) gets P set, as if
        // a kernel page were present (arch/x86/mm/fault.c, sanitize_error_code).
        if self.addr >= crate::USER_LIMIT - crate::PAGE_SIZE {
            e |= 0x1;
        }
        if self.access.is_write() {
            e |= 0x2;
        }
        if self.access == Access::Fetch {
            e |= 0x10;
        }
        if self.access.is_shadow() {
            e |= 0x40;
        }
        e
    }
}
