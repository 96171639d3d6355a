//! The core-dumped bit (WCOREDUMP) for a parent that is not cetbox.
//!
//! Linux sets it when the core was written (fs/coredump.c: `core_dumped` after the binfmt's
//! core_dump succeeded), and it is the host kernel that reports cetbox's own death to a native
//! parent (a shell, make, a CI runner). cetbox writes the guest's core itself, so the host
//! must not dump cetbox where the guest's core is (it would unlink and replace it), and a huge
//! dump of cetbox's own memory is of no use. When cetbox may change its mounts (root, or
//! CAP_SYS_ADMIN), it gives the host kernel a harmless place to dump a small core of cetbox
//! instead: a mount namespace of its own (unshare(2) CLONE_NEWNS, mounts made private) in
//! which a fresh tmpfs covers the directory the core_pattern names (the working directory for
//! a pattern without a slash), with /proc/self/coredump_filter 0 (no memory contents, only the
//! headers and notes: Documentation/filesystems/proc.rst, coredump_filter). The namespace and
//! its tmpfs vanish with the process, and the host's wait status carries the bit, as the
//! guest's run natively would. Anything that cannot be arranged leaves the old behaviour: no
//! host dump (RLIMIT_CORE 0), no bit (a cetbox parent still adds it, see `dumped`).

use std::ffi::CString;

/// Prepares the host dump of the dying cetbox process; true if the host may dump it now.
/// Called by the one thread left running, just before it dies of the signal.
pub fn prepare() -> bool {
    let Ok(pattern) = std::fs::read("/proc/sys/kernel/core_pattern") else {
        return false;
    };
    let pattern = pattern.trim_ascii_end();
    if pattern.is_empty() || pattern[0] == b'|' {
        return false;
    }
    // The directory the host kernel writes into, and whether to enter it (relative pattern).
    let (dir, enter) = match pattern.iter().rposition(|&c| c == b'/') {
        None => match std::env::current_dir() {
            Ok(d) if d.as_os_str() != "/" => (d.into_os_string().into_encoded_bytes(), true),
            _ => return false,
        },
        // A directory part with specifiers or a relative one: not known for certain.
        Some(i) if pattern[0] == b'/' && i > 0 && !pattern[..i].contains(&b'%') => {
            (pattern[..i].to_vec(), false)
        }
        Some(_) => return false,
    };
    let Ok(dir) = CString::new(dir) else {
        return false;
    };
    // SAFETY: unshare and mount take no guest pointers; the strings are NUL-terminated and
    // live across the calls. A failure changes nothing the caller relies on.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return false;
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return false;
        }
        let tmpfs = c"tmpfs";
        let opts = c"size=64m,mode=0700";
        if libc::mount(
            tmpfs.as_ptr(),
            dir.as_ptr(),
            tmpfs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            opts.as_ptr().cast(),
        ) != 0
        {
            return false;
        }
        // The working directory still refers to the directory under the new mount: walk to
        // it again by its path to land on top.
        if enter && libc::chdir(dir.as_ptr()) != 0 {
            return false;
        }
    }
    std::fs::write("/proc/self/coredump_filter", b"0").is_ok()
}
