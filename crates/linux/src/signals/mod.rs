//! Signals: dispositions, masks and pending sets, the mapping from CPU exceptions to signals,
//! delivery with Linux's x86-64 frames, and forwarding of host signals to the guest.
//!
//! Division of labour with the host kernel: cetbox's guest process *is* one host process and
//! every guest thread one host thread, with the same pid and tids. Asynchronous signals
//! (kill, tgkill, alarm, timers, terminals, SIGPIPE, SIGCHLD...) are therefore left to the host
//! kernel: the guest's blocked mask is mirrored onto the host thread mask, guest SIG_IGN (and
//! SIG_DFL of the default-ignore and stop signals) onto the host disposition, and every other
//! signal is caught by a host handler (`host.rs`) that records its siginfo for the receiving
//! thread. The host kernel thus does the queueing, coalescing, thread choice, blocked-pending
//! bookkeeping and siginfo filling exactly as it does natively. Synchronous faults of guest
//! instructions are raised by cetbox itself (`deliver::force`).

pub mod deliver;
pub mod fault;
pub mod frame;
pub mod host;
pub mod info;

pub use info::SigInfo;

use crate::errno::Errno;
use std::sync::Mutex;

pub const NSIG: usize = 64;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_NOCLDWAIT: u64 = 0x2;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_UNSUPPORTED: u64 = 0x400;
pub const SA_EXPOSE_TAGBITS: u64 = 0x800;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// Kernel-internal: the action was installed through a 32-bit (int 0x80) syscall, so its handler
/// is 32-bit code and gets an ia32 frame.
pub const SA_IA32_ABI: u64 = 0x0200_0000;
/// The flag bits rt_sigaction keeps; the others are silently cleared (so user space can probe
/// for support, e.g. SA_UNSUPPORTED).
pub const SA_KNOWN: u64 = SA_NOCLDSTOP
    | SA_NOCLDWAIT
    | SA_SIGINFO
    | SA_ONSTACK
    | SA_RESTART
    | SA_NODEFER
    | SA_RESETHAND
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER;

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const SS_AUTODISARM: i32 = 1 << 31;
/// MINSIGSTKSZ on x86-64.
pub const MINSIGSTKSZ: u64 = 2048;

/// Kernel-internal restart codes. A syscall returns one of these; the signal code turns it into
/// EINTR or a restart before the guest can see it (they never reach guest RAX).
pub const ERESTARTSYS: Errno = Errno(512);
pub const ERESTARTNOINTR: Errno = Errno(513);
pub const ERESTARTNOHAND: Errno = Errno(514);
pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);

/// SIGKILL and SIGSTOP can be neither blocked, caught nor ignored.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
/// Signals the kernel picks first when several are pending (next_signal's synchronous set).
pub const SYNCHRONOUS: u64 = (1 << (SIGSEGV - 1))
    | (1 << (SIGBUS - 1))
    | (1 << (SIGILL - 1))
    | (1 << (SIGTRAP - 1))
    | (1 << (SIGFPE - 1))
    | (1 << (SIGSYS - 1));

/// A guest sigaction (the kernel's `struct sigaction` for x86-64 rt_sigaction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// SIG_DFL (0), SIG_IGN (1) or a handler address.
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// What SIG_DFL does for a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate with a core dump.
    Core,
    Ignore,
    Stop,
    Continue,
}

/// The default action of `sig` (signal(7)).
pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// Whether a signal with action `a` is thrown away when generated (the kernel's
/// sig_handler_ignored): SIG_IGN, or SIG_DFL of a signal whose default is to ignore.
pub fn ignored_by(a: &SigAction, sig: i32) -> bool {
    a.handler == SIG_IGN
        || (a.handler == SIG_DFL
            && matches!(
                default_action(sig),
                DefaultAction::Ignore | DefaultAction::Continue
            ))
}

fn ignored_and_caught(a: &[SigAction; NSIG]) -> (u64, u64) {
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, act) in a.iter().enumerate() {
        match act.handler {
            SIG_DFL => {}
            SIG_IGN => ign |= bit(i as i32 + 1),
            _ => cgt |= bit(i as i32 + 1),
        }
    }
    (ign, cgt)
}

/// Process-wide signal state.
pub struct ProcessSignals {
    pub actions: Mutex<[SigAction; NSIG]>,
    /// Process-directed pending signals that cetbox holds itself (host signals that arrived on
    /// a thread cetbox does not run guest code on).
    pub pending: Mutex<Vec<SigInfo>>,
}

impl Default for ProcessSignals {
    fn default() -> Self {
        ProcessSignals {
            actions: Mutex::new([SigAction::default(); NSIG]),
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl ProcessSignals {
    /// The action for signal `sig` (1-based).
    pub fn action(&self, sig: i32) -> SigAction {
        let a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if !(1..=NSIG as i32).contains(&sig) {
            return SigAction::default();
        }
        a[(sig - 1) as usize]
    }

    pub fn set_action(&self, sig: i32, act: SigAction) {
        let mut a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if (1..=NSIG as i32).contains(&sig) {
            a[(sig - 1) as usize] = act;
        }
        // Other processes read the dispositions in this one's /proc/PID/status.
        let (ign, cgt) = ignored_and_caught(&a);
        crate::procview::set_dispositions(ign, cgt);
    }

    /// The signals whose handler is SIG_IGN and those with a handler (/proc/PID/status
    /// SigIgn and SigCgt, Linux fs/proc/array.c collect_sigign_sigcatch).
    pub fn ignored_and_caught(&self) -> (u64, u64) {
        ignored_and_caught(&self.actions.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What a forked child inherits: the dispositions, but no pending signals.
    pub fn fork_copy(&self) -> ProcessSignals {
        let a = *self.actions.lock().unwrap_or_else(|e| e.into_inner());
        ProcessSignals {
            actions: Mutex::new(a),
            pending: Mutex::new(Vec::new()),
        }
    }

    pub fn pending(&self) -> std::sync::MutexGuard<'_, Vec<SigInfo>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// sigaltstack state (the kernel's sas_ss_sp, sas_ss_size and sas_ss_flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    /// The flags as the guest last gave them (SS_AUTODISARM included); SS_DISABLE initially.
    pub flags: i32,
    pub size: u64,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack {
            sp: 0,
            flags: SS_DISABLE,
            size: 0,
        }
    }
}

impl AltStack {
    /// Whether `sp` lies on the alternate stack (the stack grows down, so its top is included
    /// and its base is not).
    pub fn contains(&self, sp: u64) -> bool {
        sp > self.sp && sp.wrapping_sub(self.sp) <= self.size
    }

    /// on_sig_stack: with SS_AUTODISARM the thread is never considered on the stack.
    pub fn on_stack(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0 && self.contains(sp)
    }

    /// sas_ss_flags: SS_DISABLE, SS_ONSTACK or 0 for the stack pointer `sp`.
    pub fn state(&self, sp: u64) -> i32 {
        if self.size == 0 {
            SS_DISABLE
        } else if self.on_stack(sp) {
            SS_ONSTACK
        } else {
            0
        }
    }
}

/// Per-thread signal state.
#[derive(Clone, Debug, Default)]
pub struct ThreadSignals {
    /// Blocked signals: bit (sig - 1). Change it through `deliver::set_mask`, which mirrors it
    /// onto the host thread.
    pub mask: u64,
    /// Thread-directed pending signals cetbox holds itself.
    pub pending: Vec<SigInfo>,
    pub altstack: AltStack,
    /// The mask to restore after rt_sigsuspend / ppoll / pselect once a handler has run.
    pub saved_mask: Option<u64>,
    /// The number of the syscall that just returned (orig_rax), set by `syscalls::handle` and
    /// consumed by the next `deliver_pending`, which applies the ERESTART* rules.
    pub in_syscall: Option<u64>,
    /// The trap state Linux keeps per thread and copies into every signal frame: trap number,
    /// error code, last page-fault address.
    pub trapno: u64,
    pub err: u64,
    pub cr2: u64,
    /// Index of this thread's slot in the host-signal registry (`host.rs`).
    pub host_slot: Option<usize>,
}

/// Bit for signal `sig` in a mask.
pub fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) & 63)
}

/// Whether `sig` is a valid signal number.
pub fn valid(sig: i32) -> bool {
    (1..=NSIG as i32).contains(&sig)
}
