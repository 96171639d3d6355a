//! execve and execveat: replace the guest image inside the same cetbox process.
//!
//! The program a guest execs keeps running under cetbox with the same options (the --shstk
//! policy applies again to the new image). Everything Linux checks before the point of no
//! return is checked first, so ENOENT, EACCES, ENOEXEC, E2BIG, EFAULT, ELOOP... return to the
//! caller with its image intact. Then, as the kernel's begin_new_exec does: a vfork parent is
//! released, close-on-exec descriptors are closed, caught signals are reset to SIG_DFL
//! (ignored ones stay ignored; the blocked mask and pending signals stay), the alternate signal
//! stack and the shadow-stack state are dropped, every guest mapping is unmapped, and the
//! loader builds the new image in the same address space. A failure after that point kills
//! the process with SIGSEGV, as Linux does.

use super::fs::{dirfd_arg, guest_path_arg, AT_FDCWD};
use crate::errno::{Errno, SysResult};
use crate::loader;
use crate::process::{ExitRequest, Thread};
use crate::signals::{self, SigAction};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;

/// Linux's MAX_ARG_STRINGS.
const MAX_ARG_STRINGS: u64 = 0x7fff_ffff;
/// Linux's MAX_ARG_STRLEN (32 pages), NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;

pub(crate) fn sys_execve(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path_arg(t, a[0])?;
    let host_path = host_path(t, path.as_bytes(), true);
    exec_common(t, host_path, path.as_bytes().to_vec(), a[1], a[2])
}

pub(crate) fn sys_execveat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let flags = a[4];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = guest_path_arg(t, a[1])?;
    let p = path.as_bytes();
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let dfd = dirfd_arg(a[0], p)?;
    // The name the kernel gives the program (bprm->filename, AT_EXECFN): the path itself,
    // or /dev/fd/N[/path] when it is relative to a descriptor.
    let (host, shown) = if p.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dfd == AT_FDCWD {
            // The current directory is no executable file.
            return Err(Errno::EACCES);
        }
        (
            format!("/proc/self/fd/{dfd}").into_bytes(),
            format!("/dev/fd/{dfd}").into_bytes(),
        )
    } else if p[0] == b'/' || dfd == AT_FDCWD {
        (host_path(t, p, follow), p.to_vec())
    } else {
        let mut h = format!("/proc/self/fd/{dfd}/").into_bytes();
        h.extend_from_slice(p);
        let mut s = format!("/dev/fd/{dfd}/").into_bytes();
        s.extend_from_slice(p);
        (h, s)
    };
    if !p.is_empty() && dfd != AT_FDCWD && p[0] != b'/' {
        // A descriptor that is not a directory.
        let mut st: libc::stat = unsafe_zeroed_stat();
        // SAFETY: fstat writes into the struct we own.
        if unsafe { libc::fstat(dfd, &mut st) } != 0 {
            return Err(Errno::last());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
    }
    if flags & AT_SYMLINK_NOFOLLOW != 0 && !p.is_empty() {
        let hp = std::path::Path::new(std::ffi::OsStr::from_bytes(&host));
        if std::fs::symlink_metadata(hp).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Errno::ELOOP);
        }
    }
    exec_common(t, host, shown, a[2], a[3])
}

fn unsafe_zeroed_stat() -> libc::stat {
    // SAFETY: struct stat is plain data; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The host path to open for a guest path: absolute paths are looked up under --sysroot
/// (crate::sysroot), then a /proc link the path reaches (/proc/self/exe and friends) is the
/// guest's view, whose target is again a guest path to look up under --sysroot.
fn host_path(t: &Thread, path: &[u8], follow: bool) -> Vec<u8> {
    let root = t.proc.opts.sysroot.as_deref();
    let mapped = crate::sysroot::host_path(root, path, follow);
    if follow {
        if let Some(target) = super::fs::proc_link(t, libc::AT_FDCWD, &mapped) {
            if target.first() == Some(&b'/') {
                return crate::sysroot::host_path(root, &target, follow);
            }
        }
    }
    mapped
}

/// Reads a NULL-terminated array of string pointers (argv or envp) with Linux's limits.
fn read_strings(t: &Thread, addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut n = 0u64;
    loop {
        let p = addr
            .checked_add(n * 8)
            .filter(|&x| x < super::fs::TASK_SIZE_MAX)
            .ok_or(Errno::EFAULT)?;
        let sp = t.mem().read_u64(p).map_err(|_| Errno::EFAULT)?;
        if sp == 0 {
            break;
        }
        n += 1;
        if n > MAX_ARG_STRINGS {
            return Err(Errno::E2BIG);
        }
        if sp >= super::fs::TASK_SIZE_MAX {
            return Err(Errno::EFAULT);
        }
        match t.mem().read_cstr(sp, MAX_ARG_STRLEN) {
            Ok(Some(s)) => out.push(s),
            Ok(None) => return Err(Errno::E2BIG),
            Err(_) => return Err(Errno::EFAULT),
        }
    }
    Ok(out)
}

fn exec_common(
    t: &mut Thread,
    host: Vec<u8>,
    shown: Vec<u8>,
    argv_addr: u64,
    envp_addr: u64,
) -> SysResult {
    let host_str = String::from_utf8_lossy(&host).into_owned();
    let hp = std::path::Path::new(std::ffi::OsStr::from_bytes(&host));
    // do_open_execat comes before the argument strings are looked at.
    loader::open_exec(hp).map_err(|e| Errno(e.errno))?;
    let argv = read_strings(t, argv_addr)?;
    let envp = read_strings(t, envp_addr)?;
    loader::stack::check_exec_size(&shown, &argv, &envp, loader::stack_rlimit()).map_err(Errno)?;
    let sysroot = t.proc.opts.sysroot.clone();
    let mut prep = if host_str.as_bytes() == host.as_slice() {
        loader::prepare(&host_str, &argv, sysroot.as_deref())
    } else {
        // Not UTF-8: the loader takes &str paths; such names cannot be executed here.
        return Err(Errno::ENOENT);
    }
    .map_err(|e| Errno(e.errno))?;
    // #! rewriting may have grown argv.
    loader::stack::check_arg_size(&prep.argv, &envp, loader::stack_rlimit()).map_err(Errno)?;
    prep.execfn = shown;

    if crate::reexec::needed(t) {
        // Other threads to kill, or the leader's tid to take over: the host kernel does both
        // when cetbox execs itself from this thread.
        let execfn = std::mem::take(&mut prep.execfn);
        drop(prep);
        return crate::reexec::exec(
            t,
            crate::reexec::Handover {
                opts: (*t.proc.opts).clone(),
                path: host,
                execfn,
                argv,
                envp,
                ..Default::default()
            },
        );
    }

    // ---------------- the point of no return
    let mut keep = vec![prep.elf.file.as_raw_fd()];
    keep.extend(prep.interp.as_ref().map(|i| i.file.as_raw_fd()));
    point_of_no_return(t, &keep);
    match loader::load_prepared(t, prep, &envp) {
        Ok(()) => {
            let exe = t.proc.image().exe.clone();
            crate::syscalls::process::comm_reset(t, &exe);
        }
        Err(e) => {
            crate::diag::diag(&format!("execve: {}; killing the process", e.message));
            t.exit = Some(ExitRequest::Signal(signals::SIGSEGV));
        }
    }
    // The registers now describe the new program.
    t.keep_rax = true;
    t.signals.in_syscall = None;
    crate::syscalls::ptrace::stop::after_exec(t);
    Ok(0)
}

/// Everything execve does to the old process once it is committed.
fn point_of_no_return(t: &mut Thread, keep: &[i32]) {
    crate::fork::release_vfork_parent(&t.proc);
    close_on_exec(t, keep);
    // flush_signal_handlers: caught signals go back to SIG_DFL; flags, masks and restorers
    // are cleared for every signal.
    for sig in 1..=signals::NSIG as i32 {
        let a = t.proc.signals.action(sig);
        let handler = if a.handler == signals::SIG_IGN {
            signals::SIG_IGN
        } else {
            signals::SIG_DFL
        };
        let n = SigAction {
            handler,
            ..SigAction::default()
        };
        if n != a {
            let before = crate::signals::host::host_action(&t.proc, sig);
            t.proc.signals.set_action(sig, n);
            // The host is told only when its disposition changes: setting SIG_IGN (or an
            // ignoring SIG_DFL) again would discard pending instances, which execve keeps.
            if crate::signals::host::host_action(&t.proc, sig) != before {
                crate::signals::host::sync_action(&t.proc, sig);
            }
        }
    }
    t.signals.altstack = Default::default();
    t.signals.saved_mask = None;
    crate::shstk::on_exec(t);
    t.clear_child_tid = 0;
    t.robust_list = (0, 0);
    // execve drops the rseq registration (kernel/rseq.c rseq_execve).
    crate::rseq::leave(t);
    t.rseq = None;
    super::process::set_host_robust_list(0);
    let mem = t.proc.mem.clone();
    for v in mem.vmas() {
        let _ = mem.unmap(v.start, v.len());
    }
    t.engine.invalidate();
    // Ended threads' engines hold translations of the old program.
    t.proc.engines.clear();
}

/// Closes every guest descriptor marked FD_CLOEXEC (cetbox's own, and the loader's open files
/// in `keep`, are left alone).
fn close_on_exec(t: &Thread, keep: &[i32]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    for fd in fds {
        if super::fs::is_private(fd) || keep.contains(&fd) {
            continue;
        }
        // SAFETY: F_GETFD on a descriptor number; a stale one (the directory's) fails EBADF.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if fl >= 0 && fl & libc::FD_CLOEXEC != 0 {
            crate::procfs::forget_fd(t, fd);
            // SAFETY: closing a guest descriptor, as the kernel does at exec.
            unsafe { libc::close(fd) };
        }
    }
}
