//! The kernel side of user shadow stacks (linux-abi.md): allocation, enabling, the signal
//! frame tokens, and thread/fork/exec rules.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;

/// Pushes the shadow-stack part of a signal frame (linux-abi.md §7.1) if the thread has
/// shadow stacks enabled: the sigframe token and `restorer`. Err means delivery must fail
/// (the caller forces SIGSEGV as Linux does).
pub fn signal_push(t: &mut Thread, restorer: u64) -> Result<(), ()> {
    let _ = (t, restorer);
    Ok(())
}

/// The shadow-stack part of rt_sigreturn (linux-abi.md §7.3), run after the registers were
/// restored from the frame. Err means SIGSEGV (SI_KERNEL).
pub fn signal_restore(t: &mut Thread) -> Result<(), Errno> {
    let _ = t;
    Ok(())
}

/// Applies the start-up policy (--shstk=on/auto) to a freshly loaded program.
pub fn enable_at_start(t: &mut Thread) {
    let _ = t;
}

/// The generic prctl shadow-stack options (PR_GET/SET/LOCK_SHADOW_STACK_STATUS), answered as
/// upstream x86 answers them; None for other options.
pub fn prctl(t: &mut Thread, option: u64, args: [u64; 6]) -> Option<SysResult> {
    let _ = (t, option, args);
    None
}

/// arch_prctl codes in the shadow-stack ranges (0x3001..0x3005 and 0x5001..0x5005);
/// None for other codes.
pub fn arch_prctl(t: &mut Thread, code: u64, arg: u64) -> Option<SysResult> {
    let _ = (t, code, arg);
    None
}
