//! Choosing which pending signal to act on, default actions, and running handlers.

use super::fault::FaultSignal;
use crate::process::{ExitRequest, Thread};

/// Delivers a synchronous fault signal now. Like the kernel's force_sig, a blocked or ignored
/// signal is unblocked / reset to the default action first.
pub fn force(t: &mut Thread, fs: FaultSignal) {
    // Placeholder until full delivery exists: default action.
    t.exit = Some(ExitRequest::Signal(fs.info.signo));
}

/// Acts on pending signals that are not blocked (called between runs of guest code).
pub fn deliver_pending(t: &mut Thread) {
    let _ = t;
}
