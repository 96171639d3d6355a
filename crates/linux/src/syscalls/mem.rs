use super::SyscallFn;

pub fn lookup(nr: u64) -> Option<SyscallFn> {
    let _ = nr;
    None
}

/// Grows the main thread's stack (a MAP_GROWSDOWN / [stack] VMA) to cover `addr` if Linux
/// would, up to RLIMIT_STACK. Returns whether the faulting access should be retried.
pub fn try_grow_stack(t: &mut crate::process::Thread, addr: u64) -> bool {
    let _ = (t, addr);
    false
}
