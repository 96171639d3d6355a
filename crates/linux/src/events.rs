//! Events the front end observes: shadow-stack violations and switches, for reports.

/// A shadow-stack event the front end may report.
#[derive(Clone, Debug)]
pub enum Event {
    /// A shadow-stack violation about to be delivered (or, in audit mode, resynchronized).
    Violation(Violation),
}

#[derive(Clone, Debug)]
pub struct Violation {
    pub tid: i32,
    /// What happened, e.g. "near RET mismatch (#CP 1)".
    pub kind: ViolationKind,
    /// Address of the faulting instruction.
    pub rip: u64,
    pub rsp: u64,
    pub ssp: u64,
    /// For a RET: the return address on the normal stack and the one on the shadow stack.
    pub ret_addr: Option<u64>,
    pub shadow_addr: Option<u64>,
    /// The faulting data address for page faults.
    pub addr: Option<u64>,
    /// Return addresses on the shadow stack, innermost first.
    pub shadow_backtrace: Vec<u64>,
    /// The last shadow-stack switch before the violation.
    pub last_switch: Option<Switch>,
    /// How shadow stacks were enabled ("arch_prctl", "--shstk=on", ...), and whether locked.
    pub enabled_by: &'static str,
    pub locked: bool,
    /// Whether the guest has a SIGSEGV handler that will receive the signal.
    pub handled_by_guest: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// #CP(1): RET address differs from the shadow stack.
    RetMismatch,
    /// #CP(4): RSTORSSP with a bad restore token.
    BadRestoreToken,
    /// #CP(2): far RET/IRET frame mismatch.
    FarReturn,
    /// A shadow-stack access (CALL, RET, INCSSP...) to memory that is not a writable shadow stack.
    ShadowAccessToNormalPage,
    /// An ordinary write to a shadow-stack page.
    WriteToShadowPage,
    /// rt_sigreturn found no valid shadow-stack signal token.
    BadSigreturnToken,
    /// Signal delivery could not push the shadow-stack signal frame.
    SignalDeliveryFailed,
}

/// A change of shadow stack: enable, RSTORSSP, signal delivery, sigreturn.
#[derive(Clone, Debug)]
pub struct Switch {
    pub what: &'static str,
    pub rip: u64,
    pub from_ssp: u64,
    pub to_ssp: u64,
}

/// What the front end wants done after a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Deliver the signal Linux would.
    Deliver,
    /// Resynchronize the shadow stack and continue (audit mode).
    Resync,
}

/// Receives events. The front end implements it for reports.
pub trait Observer: Send + Sync {
    fn event(&self, e: &Event) -> Decision;
    /// Called once before the guest process exits (summaries).
    fn finish(&self) {}
}

/// An observer that reports nothing and always delivers.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) -> Decision {
        Decision::Deliver
    }
}
