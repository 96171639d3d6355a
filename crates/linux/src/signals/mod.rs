//! Signals: dispositions, masks and pending sets, the mapping from CPU exceptions to signals,
//! delivery with Linux's x86-64 frames, and forwarding of host signals to the guest.

pub mod deliver;
pub mod fault;
pub mod frame;
pub mod host;
pub mod info;

pub use info::SigInfo;

use std::sync::Mutex;

pub const NSIG: usize = 64;

/// A guest sigaction (the kernel's `struct sigaction` for x86-64 rt_sigaction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// SIG_DFL (0), SIG_IGN (1) or a handler address.
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Process-wide signal state.
pub struct ProcessSignals {
    pub actions: Mutex<[SigAction; NSIG]>,
    /// Process-directed pending signals.
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
        a.get((sig - 1) as usize).copied().unwrap_or_default()
    }

    pub fn set_action(&self, sig: i32, act: SigAction) {
        let mut a = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = a.get_mut((sig - 1) as usize) {
            *slot = act;
        }
    }
}

/// sigaltstack state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

/// Per-thread signal state.
#[derive(Clone, Debug, Default)]
pub struct ThreadSignals {
    /// Blocked signals: bit (sig - 1).
    pub mask: u64,
    /// Thread-directed pending signals.
    pub pending: Vec<SigInfo>,
    pub altstack: AltStack,
    /// The mask to restore after rt_sigsuspend / ppoll / pselect once a handler has run.
    pub saved_mask: Option<u64>,
}

/// Bit for signal `sig` in a mask.
pub fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) & 63)
}
