//! What a guest path names, decided the way the kernel resolves it.
//!
//! The /proc view (procfs.rs) must answer for every spelling of a /proc file of this process:
//! `/proc//self/maps`, `/proc/./self/maps`, `//proc/self/maps`, a path relative to a /proc or
//! /proc/self descriptor or to a cwd inside /proc, a symlink to /proc/self. Matching strings
//! cannot know all of them, so cetbox lets the host kernel do the walk (dirfd, `.`, `..`,
//! repeated slashes, symlinks, the cwd: guest paths are host paths) and looks at what it
//! reached: an `O_PATH` descriptor whose file system is procfs (`fstatfs`) is named by its
//! canonical path (`readlink /proc/self/fd/N`, which is `/proc/<pid>/...`, the pid being the
//! guest's, since guest pids are host pids). The last component is not followed when it is a
//! symlink, so a magic link such as `/proc/<pid>/exe` is recognised as itself rather than as
//! the host file it points to (cetbox's own binary); ordinary symlinks on the way are followed
//! one at a time, as the kernel's `trailing_symlink` does, up to its limit of 40.
//!
//! Every path-taking call that the /proc view answers (open*, readlink*, stat of a magic
//! link, execve) uses [`proc_name`]; the `--sysroot` work can extend the same walk.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;

/// Linux's PROC_SUPER_MAGIC (include/uapi/linux/magic.h).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// Linux's MAXSYMLINKS (include/linux/namei.h).
const MAXSYMLINKS: usize = 40;

/// An O_PATH descriptor cetbox holds for the duration of one resolution.
struct PathFd(i32);

impl Drop for PathFd {
    fn drop(&mut self) {
        // SAFETY: closing a descriptor this module opened and nobody else knows.
        unsafe { libc::close(self.0) };
    }
}

fn open_path(dfd: i32, path: &CString) -> Option<PathFd> {
    // SAFETY: a valid C string; O_PATH opens no file contents and has no side effects.
    let fd = unsafe {
        libc::openat(
            dfd,
            path.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    (fd >= 0).then_some(PathFd(fd))
}

/// Whether host descriptor `fd` lies on a procfs mount.
pub fn on_procfs(fd: i32) -> bool {
    // SAFETY: statfs is plain data; fstatfs fills it for a valid descriptor or fails.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer.
    let r = unsafe { libc::fstatfs(fd, &mut st) };
    r == 0 && st.f_type as i64 == PROC_SUPER_MAGIC
}

/// The path the host kernel reports for descriptor `fd`.
fn fd_path(fd: i32) -> Option<Vec<u8>> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

fn is_symlink(fd: i32) -> Option<Vec<u8>> {
    // SAFETY: stat is plain data; fstat fills it for a valid descriptor or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return None;
    }
    let mut buf = vec![0u8; super::PATH_MAX];
    // SAFETY: readlinkat with an empty path reads the link `fd` (an O_PATH|O_NOFOLLOW
    // descriptor of a symlink) into our buffer of buf.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            fd,
            c"".as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// If the guest path (relative to `dfd`) names a file on procfs, its canonical name
/// (`/proc/<pid>/...`). `follow` says whether a symlink in the last component is followed
/// (open without O_NOFOLLOW, stat, execve); procfs's own links (`/proc/self`, `exe`, `cwd`,
/// `fd/N`) are never followed at the end, so the /proc view sees them as links.
pub fn proc_name(dfd: i32, path: &[u8], follow: bool) -> Option<Vec<u8>> {
    // The O_PATH descriptors are cetbox's own for a moment (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    let mut path = CString::new(path).ok()?;
    let mut dfd_owned: Option<PathFd> = None;
    for _ in 0..=MAXSYMLINKS {
        let dir = dfd_owned.as_ref().map_or(dfd, |f| f.0);
        let fd = open_path(dir, &path)?;
        if on_procfs(fd.0) {
            return fd_path(fd.0);
        }
        if !follow {
            return None;
        }
        // An ordinary symlink: resolve its target relative to the directory holding it.
        let target = is_symlink(fd.0)?;
        let parent = {
            let mut p = fd_path(fd.0)?;
            let cut = p.iter().rposition(|&c| c == b'/')?;
            p.truncate(cut.max(1));
            p
        };
        let pc = CString::new(parent).ok()?;
        // SAFETY: a valid C string; an O_PATH descriptor of a directory.
        let pfd = unsafe {
            libc::open(
                pc.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if pfd < 0 {
            return None;
        }
        dfd_owned = Some(PathFd(pfd));
        path = CString::new(OsStr::from_bytes(&target).as_bytes()).ok()?;
    }
    None
}
