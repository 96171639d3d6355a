//! The guest's view of /proc/self: maps, smaps, status, exe, auxv, cmdline, ...

use crate::errno::SysResult;
use crate::process::Thread;

/// Opens `path` (an absolute path under /proc/) as the guest sees it, if the /proc view owns it:
/// /proc/self, /proc/thread-self and /proc/<guest pid>. None lets the host open the path.
pub fn open(t: &mut Thread, path: &[u8], flags: i32) -> Option<SysResult> {
    let _ = (t, path, flags);
    None
}

/// The target of a /proc link (exe, cwd, fd/N...) as the guest sees it; None lets the host
/// answer.
pub fn readlink(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    let _ = (t, path);
    None
}
