//! Events the front end observes: shadow-stack violations, for reports. The Linux personality
//! detects them and decides what happens (the signal Linux sends, or resynchronization in audit
//! mode); the front end only reports.

/// A shadow-stack violation.
#[derive(Clone, Debug)]
pub struct Violation {
    pub pid: i32,
    pub tid: i32,
    pub kind: ViolationKind,
    /// Address of the faulting instruction.
    pub rip: u64,
    pub rsp: u64,
    pub ssp: u64,
    /// For a RET: the return address on the normal stack and the one on the shadow stack.
    pub ret_addr: Option<u64>,
    pub shadow_addr: Option<u64>,
    /// The faulting data address (page faults) or the token address (RSTORSSP).
    pub addr: Option<u64>,
    /// The value found at `addr` (RSTORSSP's rejected token).
    pub token: Option<u64>,
    /// Entries of the shadow stack from SSP upward (innermost first): return addresses, and
    /// signal tokens (bit 63 set).
    pub shadow_stack: Vec<u64>,
    /// The last shadow-stack switch before the violation.
    pub last_switch: Option<Switch>,
    /// How shadow stacks were enabled ("arch_prctl(ARCH_SHSTK_ENABLE)", "--shstk=on", ...).
    pub enabled_by: &'static str,
    pub locked: bool,
    pub wrss: bool,
    pub outcome: Outcome,
    /// File-backed mappings, for symbolization.
    pub mappings: Vec<Mapping>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// #CP(1): RET address differs from the shadow stack.
    RetMismatch,
    /// #CP(4): RSTORSSP with a bad restore token.
    BadRestoreToken,
    /// #CP(2): far RET/IRET frame mismatch.
    FarReturn,
    /// A shadow-stack access (CALL, RET, INCSSP, WRSS...) to memory that is not a writable
    /// shadow stack (SEGV_ACCERR), or to unmapped memory such as the guard gap (SEGV_MAPERR).
    ShadowAccess,
    /// An ordinary write to a shadow-stack page.
    WriteToShadowStack,
    /// rt_sigreturn found no valid shadow-stack signal token.
    BadSigreturn,
    /// Signal delivery could not push the shadow-stack signal frame.
    SignalDeliveryFailed,
}

impl ViolationKind {
    /// A stable identifier for JSON.
    pub fn id(self) -> &'static str {
        match self {
            ViolationKind::RetMismatch => "ret-mismatch",
            ViolationKind::BadRestoreToken => "bad-restore-token",
            ViolationKind::FarReturn => "far-return-mismatch",
            ViolationKind::ShadowAccess => "shadow-access-fault",
            ViolationKind::WriteToShadowStack => "write-to-shadow-stack",
            ViolationKind::BadSigreturn => "bad-sigreturn-token",
            ViolationKind::SignalDeliveryFailed => "signal-delivery-failed",
        }
    }
}

/// What happened to the guest after the violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// SIGSEGV was delivered to the guest's handler.
    DeliveredToHandler,
    /// The guest has no handler and dies of SIGSEGV, as on Linux.
    Killed,
    /// Audit mode: the shadow stack was resynchronized and the guest continues.
    Resynchronized,
}

/// A file mapped into the guest, for symbolization.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

impl Mapping {
    /// The file-backed mappings of `mem`, in address order (anonymous ones cannot be
    /// symbolized).
    pub fn of_files(mem: &cetbox_mem::AddressSpace) -> Vec<Mapping> {
        mem.vmas()
            .into_iter()
            .filter_map(|v| match v.backing {
                cetbox_mem::Backing::File { path, offset, .. } => Some(Mapping {
                    start: v.start,
                    end: v.end,
                    offset,
                    path,
                }),
                cetbox_mem::Backing::Anonymous => None,
            })
            .collect()
    }
}

/// A change of shadow stack: enable, RSTORSSP, signal delivery, sigreturn.
#[derive(Clone, Debug)]
pub struct Switch {
    pub what: &'static str,
    pub rip: u64,
    pub from_ssp: u64,
    pub to_ssp: u64,
}

/// Receives events. The front end implements it for reports.
pub trait Observer: Send + Sync {
    /// Counts another violation at a site already reported and returns true, so the caller
    /// skips building a full `Violation`; false for a new site.
    fn repeat(&self, rip: u64, kind: ViolationKind) -> bool {
        let _ = (rip, kind);
        false
    }
    fn violation(&self, v: &Violation);
    /// Called once before the guest process exits (summaries).
    fn finish(&self) {}
    /// The exit status cetbox ends with when the guest exits with `status` (after `finish`);
    /// `--error-exitcode` replaces it when violations were reported.
    fn exit_status(&self, status: i32) -> i32 {
        status
    }
    /// Called in a new child process right after fork: what was reported belongs to the parent.
    fn forked(&self) {}
    /// Called before cetbox re-executes itself for a guest's execve (`crate::reexec`): returns
    /// what the front end needs to rebuild its observer in the new image (opaque to the
    /// personality) and keeps the descriptors that state refers to open across the exec.
    fn before_reexec(&self) -> String {
        String::new()
    }
    /// The host execve after `before_reexec` failed: the observer goes on in this image.
    fn reexec_failed(&self) {}
}

/// An observer that reports nothing.
pub struct Silent;

impl Observer for Silent {
    fn violation(&self, _: &Violation) {}
}
