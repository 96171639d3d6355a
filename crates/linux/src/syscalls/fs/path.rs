//! Calls that take path names: open, create, remove, rename, link, permissions, ownership,
//! times, cwd, statfs, extended attributes. /proc/self paths are offered to the /proc view
//! first.

use super::{
    buf, cstr_arg, dirfd_arg, fd_arg, guest_path_arg, host, opt_buf, path_arg, path_arg_follow,
    proc_name, sysroot_path, AT_FDCWD,
};
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::Thread;
use cetbox_mem::Access;
use libc::*;
use std::ffi::CString;

/// A path the host reads.
fn p(c: &CString) -> HostPtr<'_> {
    HostPtr::of(c.as_bytes_with_nul())
}

/// Host files describing kernel features the guest's kernel does not have. cetbox has no
/// uprobes, so their perf PMU must look absent (the upstream shadow-stack selftest skips its
/// uretprobe test on ENOENT: docs/acceptance.md, Linux behaviour 13.14).
const HIDDEN: &[&[u8]] = &[
    b"/sys/bus/event_source/devices/uprobe",
    b"/sys/devices/uprobe",
];

fn hidden(path: &[u8]) -> bool {
    HIDDEN
        .iter()
        .any(|h| path.starts_with(h) && matches!(path.get(h.len()), None | Some(b'/')))
}

/// Whether an open with these flags follows a symbolic link in the last component (Linux's
/// do_last: not with O_NOFOLLOW, nor with O_CREAT|O_EXCL).
fn open_follows(flags: u64) -> bool {
    let f = flags as i32;
    f & O_NOFOLLOW == 0 && f & (O_CREAT | O_EXCL) != O_CREAT | O_EXCL
}

/// The common tail of open/openat/openat2/creat, given the host path (already looked up under
/// --sysroot, so a sysroot link into /proc reaches /proc): the /proc view answers first, for
/// every spelling of a path that reaches one of this process's /proc files (see `resolve`).
fn open_common(t: &mut Thread, dfd: i32, path: &CString, flags: u64) -> Option<SysResult> {
    let bytes = path.as_bytes();
    if hidden(bytes) {
        return Some(Err(Errno::ENOENT));
    }
    let follow = flags as i32 & O_NOFOLLOW == 0;
    let name = proc_name(dfd, bytes, follow)?;
    crate::procfs::open(t, &name, flags as i32)
}

pub(crate) fn sys_open(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[0], open_follows(a[1]))?;
    if let Some(r) = open_common(t, AT_FDCWD, &path, a[1]) {
        return r;
    }
    let (flags, mode) = (a[1] as u32 as u64, a[2] as u32 as u64);
    let args = crate::hostcall::args([p(&path).into(), flags.into(), mode.into()]);
    let nonblocking = || host!(SYS_open, p(&path), flags | O_NONBLOCK as u64, mode);
    super::fifo_open::open(t, AT_FDCWD, &path, flags, SYS_open, args, nonblocking)
}

pub(crate) fn sys_creat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let flags = (O_CREAT | O_WRONLY | O_TRUNC) as u64;
    sys_open(t, [a[0], flags, a[1], 0, 0, 0])
}

pub(crate) fn sys_openat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[1], open_follows(a[2]))?;
    let dfd = dirfd_arg(a[0], path.as_bytes())?;
    if let Some(r) = open_common(t, dfd, &path, a[2]) {
        return r;
    }
    let (flags, mode) = (a[2] as u32 as u64, a[3] as u32 as u64);
    let args = crate::hostcall::args([
        (dfd as u64).into(),
        p(&path).into(),
        flags.into(),
        mode.into(),
    ]);
    let nonblocking = || {
        host!(
            SYS_openat,
            dfd as u64,
            p(&path),
            flags | O_NONBLOCK as u64,
            mode
        )
    };
    super::fifo_open::open(t, dfd, &path, flags, SYS_openat, args, nonblocking)
}

/// struct open_how { u64 flags; u64 mode; u64 resolve; }: larger (future) versions are passed
/// to the host, which rejects unknown non-zero fields with E2BIG as Linux does.
pub(crate) fn sys_openat2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = guest_path_arg(t, a[1])?;
    let dfd = dirfd_arg(a[0], path.as_bytes())?;
    let size = a[3];
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let how = buf(t, a[2], size, Access::Read)?;
    // SAFETY: at least 24 readable guest bytes at `how`.
    let flags = unsafe { std::ptr::read_unaligned(how.as_ptr() as *const u64) };
    let path = sysroot_path(t, path, open_follows(flags));
    if let Some(r) = open_common(t, dfd, &path, flags) {
        return r;
    }
    let args = crate::hostcall::args([
        (dfd as u64).into(),
        p(&path).into(),
        how.into(),
        size.into(),
    ]);
    let nonblocking = || {
        // The guest's open_how with O_NONBLOCK added to its flags (the first field).
        // SAFETY: `how` is `size` readable guest bytes (checked above).
        let mut copy = unsafe { std::slice::from_raw_parts(how.as_ptr(), size as usize) }.to_vec();
        copy[..8].copy_from_slice(&(flags | O_NONBLOCK as u64).to_le_bytes());
        host!(
            SYS_openat2,
            dfd as u64,
            p(&path),
            HostPtr::of(&copy[..]),
            size
        )
    };
    super::fifo_open::open(t, dfd, &path, flags, SYS_openat2, args, nonblocking)
}

/// Calls of the form f(path, int...) with no other pointers; `follow`: the call follows a
/// symbolic link in the last component.
fn path1(t: &mut Thread, nr: i64, follow: bool, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[0], follow)?;
    host!(nr, p(&path), a[1], a[2], a[3])
}

/// Calls of the form f(dirfd, path, int...) with no other pointers; `follow`: the call
/// follows a symbolic link in the last component unless its flags argument (at that index)
/// holds AT_SYMLINK_NOFOLLOW.
fn at1(t: &mut Thread, nr: i64, follow: Follow, a: [u64; 6]) -> SysResult {
    let f = match follow {
        Follow::Never => false,
        Follow::Always => true,
        Follow::Unless(i) => a[i] as i32 & AT_SYMLINK_NOFOLLOW == 0,
    };
    let path = path_arg_follow(t, a[1], f)?;
    let dfd = dirfd_arg(a[0], path.as_bytes())?;
    host!(nr, dfd as u64, p(&path), a[2], a[3], a[4])
}

/// Whether an *at() call follows a symbolic link in its last component.
#[derive(Clone, Copy)]
enum Follow {
    Never,
    Always,
    /// Unless the flags argument at this index has AT_SYMLINK_NOFOLLOW.
    Unless(usize),
}

/// Calls of the form f(path, path).
fn path2(t: &mut Thread, nr: i64, a: [u64; 6]) -> SysResult {
    let x = path_arg(t, a[0])?;
    let y = path_arg(t, a[1])?;
    host!(nr, p(&x), p(&y))
}

/// Calls of the form f(dirfd, path, dirfd, path, int).
fn at2(t: &mut Thread, nr: i64, a: [u64; 6]) -> SysResult {
    let x = path_arg(t, a[1])?;
    let y = path_arg(t, a[3])?;
    let dx = dirfd_arg(a[0], x.as_bytes())?;
    let dy = dirfd_arg(a[2], y.as_bytes())?;
    host!(nr, dx as u64, p(&x), dy as u64, p(&y), a[4])
}

macro_rules! path_calls {
    ($($name:ident => $f:ident($($arg:expr),*);)*) => {
        $(pub(crate) fn $name(t: &mut Thread, a: [u64; 6]) -> SysResult { $f(t, $($arg,)* a) })*
    };
}

path_calls! {
    sys_unlink => path1(SYS_unlink, false);
    sys_rmdir => path1(SYS_rmdir, false);
    sys_mkdir => path1(SYS_mkdir, false);
    sys_chdir => path1(SYS_chdir, true);
    sys_access => path1(SYS_access, true);
    sys_chmod => path1(SYS_chmod, true);
    sys_chown => path1(SYS_chown, true);
    sys_lchown => path1(SYS_lchown, false);
    sys_truncate => path1(SYS_truncate, true);
    sys_mknod => path1(SYS_mknod, false);
    sys_unlinkat => at1(SYS_unlinkat, Follow::Never);
    sys_mkdirat => at1(SYS_mkdirat, Follow::Never);
    sys_faccessat => at1(SYS_faccessat, Follow::Always);
    sys_faccessat2 => at1(SYS_faccessat2, Follow::Unless(3));
    sys_fchmodat => at1(SYS_fchmodat, Follow::Always);
    sys_fchmodat2 => at1(452, Follow::Unless(3));
    sys_fchownat => at1(SYS_fchownat, Follow::Unless(4));
    sys_mknodat => at1(SYS_mknodat, Follow::Never);
    sys_rename => path2(SYS_rename);
    sys_link => path2(SYS_link);
    sys_renameat => at2(SYS_renameat);
    sys_renameat2 => at2(SYS_renameat2);
    sys_linkat => at2(SYS_linkat);
}

/// symlink(target, linkpath): the target is the link's content, stored as the guest wrote it.
pub(crate) fn sys_symlink(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let target = guest_path_arg(t, a[0])?;
    let link = path_arg(t, a[1])?;
    host!(SYS_symlink, p(&target), p(&link))
}

pub(crate) fn sys_symlinkat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let target = guest_path_arg(t, a[0])?;
    let link = path_arg(t, a[2])?;
    let dfd = dirfd_arg(a[1], link.as_bytes())?;
    host!(SYS_symlinkat, p(&target), dfd as u64, p(&link))
}

pub(crate) fn sys_fchdir(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_fchdir, fd as u64)
}

pub(crate) fn sys_fchmod(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_fchmod, fd as u64, a[1] as u32 as u64)
}

pub(crate) fn sys_fchown(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(
        SYS_fchown,
        fd as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64
    )
}

/// readlink/readlinkat: the host fills a private buffer so only the bytes Linux would copy
/// reach the guest; /proc/self links come from the /proc view.
fn readlink_common(t: &mut Thread, dfd: i32, path: &CString, ubuf: u64, size: u64) -> SysResult {
    let size = size as u32 as i32;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let name = proc_name(dfd, path.as_bytes(), false);
    // A link naming one of cetbox's own descriptors (in this process or another guest) is not
    // there for the guest, as that descriptor is closed for it.
    if name
        .as_deref()
        .is_some_and(crate::procview::names_private_fd)
    {
        return Err(Errno::ENOENT);
    }
    let target = match name.and_then(|name| crate::procfs::readlink(t, &name)) {
        Some(v) => v,
        None => {
            let mut tmp = vec![0u8; super::PATH_MAX];
            let len = tmp.len() as u64;
            let n = host!(
                SYS_readlinkat,
                dfd as u64,
                p(path),
                HostPtr::of_mut(&mut tmp[..]),
                len
            )?;
            tmp.truncate(n as usize);
            tmp
        }
    };
    let n = target.len().min(size as usize);
    t.mem().write_bytes(ubuf, &target[..n])?;
    Ok(n as u64)
}

pub(crate) fn sys_readlink(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg(t, a[0])?;
    readlink_common(t, AT_FDCWD, &path, a[1], a[2])
}

pub(crate) fn sys_readlinkat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg(t, a[1])?;
    let dfd = dirfd_arg(a[0], path.as_bytes())?;
    readlink_common(t, dfd, &path, a[2], a[3])
}

pub(crate) fn sys_getcwd(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let mut tmp = vec![0u8; super::PATH_MAX + 1];
    let len = tmp.len() as u64;
    let n = host!(SYS_getcwd, HostPtr::of_mut(&mut tmp[..]), len)? as usize;
    if n > a[1] as usize {
        return Err(Errno::ERANGE);
    }
    t.mem().write_bytes(a[0], &tmp[..n])?;
    Ok(n as u64)
}

// ---------------------------------------------------------------- times

/// utimensat: the path may be NULL (then the call works on dirfd); times is NULL or
/// struct timespec[2].
pub(crate) fn sys_utimensat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let follow = a[3] as i32 & AT_SYMLINK_NOFOLLOW == 0;
    let (dfd, path, times) = times_args(t, a, follow)?;
    let pp = path.as_ref().map_or(HostPtr::NULL, p);
    host!(SYS_utimensat, dfd, pp, times, a[3] as u32 as u64)
}

pub(crate) fn sys_futimesat(t: &mut Thread, a: [u64; 6]) -> SysResult {
    // futimesat follows a symbolic link in the last component (fs/utimes.c: do_futimesat).
    let (dfd, path, times) = times_args(t, a, true)?;
    let pp = path.as_ref().map_or(HostPtr::NULL, p);
    host!(SYS_futimesat, dfd, pp, times)
}

/// The (dirfd, path, times) of utimensat and futimesat: without a path the call works on
/// dirfd itself; times (two timespecs or timevals, 32 bytes at most) may be NULL. The caller
/// keeps the path alive across the host call. `follow`: the call follows a symbolic link in
/// the last component (for the --sysroot lookup).
fn times_args(
    t: &Thread,
    a: [u64; 6],
    follow: bool,
) -> Result<(u64, Option<CString>, HostPtr<'static>), Errno> {
    let path = if a[1] == 0 {
        None
    } else {
        Some(path_arg_follow(t, a[1], follow)?)
    };
    let dfd = match &path {
        Some(pa) => dirfd_arg(a[0], pa.as_bytes())?,
        None => fd_arg(a[0])?,
    };
    let times = opt_buf(t, a[2], 32, Access::Read)?;
    Ok((dfd as u64, path, times))
}

pub(crate) fn sys_utimes(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[0], true)?;
    let times = opt_buf(t, a[1], 32, Access::Read)?;
    host!(SYS_utimes, p(&path), times)
}

pub(crate) fn sys_utime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[0], true)?;
    let times = opt_buf(t, a[1], 16, Access::Read)?;
    host!(SYS_utime, p(&path), times)
}

// ---------------------------------------------------------------- statfs

const STATFS_SIZE: u64 = std::mem::size_of::<statfs>() as u64;

pub(crate) fn sys_statfs(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let path = path_arg_follow(t, a[0], true)?;
    let out = buf(t, a[1], STATFS_SIZE, Access::Write)?;
    host!(SYS_statfs, p(&path), out)
}

pub(crate) fn sys_fstatfs(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let out = buf(t, a[1], STATFS_SIZE, Access::Write)?;
    host!(SYS_fstatfs, fd as u64, out)
}

// ---------------------------------------------------------------- extended attributes

const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: u64 = 65536;
const XATTR_LIST_MAX: u64 = 65536;

/// The object an xattr call names: a path (followed or not) or a descriptor.
enum Obj {
    Path(CString),
    Fd(i32),
}

fn obj(t: &Thread, kind: u8, raw: u64) -> Result<Obj, Errno> {
    if kind == b'f' {
        Ok(Obj::Fd(fd_arg(raw)?))
    } else {
        Ok(Obj::Path(path_arg_follow(t, raw, kind == b'p')?))
    }
}

fn obj_arg(o: &Obj) -> Arg<'_> {
    match o {
        Obj::Path(c) => p(c).into(),
        Obj::Fd(fd) => (*fd as u64).into(),
    }
}

fn xname(t: &Thread, addr: u64) -> Result<CString, Errno> {
    let n = cstr_arg(t, addr, XATTR_NAME_MAX + 1, Errno::ERANGE)?;
    if n.as_bytes().is_empty() {
        return Err(Errno::ERANGE);
    }
    Ok(n)
}

/// Runs `call` with a host buffer of `size` bytes (NULL when `size` is 0: the call then only
/// reports the size it needs) and writes the bytes it returned to the guest at `addr`, so only
/// those bytes are written (the getxattr and listxattr families).
fn through_buffer(
    t: &Thread,
    addr: u64,
    size: u64,
    call: impl FnOnce(HostPtr<'_>) -> SysResult,
) -> SysResult {
    let mut tmp = vec![0u8; size as usize];
    let ptr = if size == 0 {
        HostPtr::NULL
    } else {
        HostPtr::of_mut(&mut tmp[..])
    };
    let n = call(ptr)?;
    if size > 0 {
        t.mem().write_bytes(addr, &tmp[..n as usize])?;
    }
    Ok(n)
}

/// getxattr family.
fn getxattr(t: &mut Thread, nr: i64, kind: u8, a: [u64; 6]) -> SysResult {
    let o = obj(t, kind, a[0])?;
    let name = xname(t, a[1])?;
    let size = a[3].min(XATTR_SIZE_MAX);
    through_buffer(t, a[2], size, |ptr| {
        host!(nr, obj_arg(&o), p(&name), ptr, size)
    })
}

fn setxattr(t: &mut Thread, nr: i64, kind: u8, a: [u64; 6]) -> SysResult {
    let o = obj(t, kind, a[0])?;
    let name = xname(t, a[1])?;
    if a[3] > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let val = opt_buf(t, a[2], a[3], Access::Read)?;
    host!(nr, obj_arg(&o), p(&name), val, a[3], a[4] as u32 as u64)
}

fn listxattr(t: &mut Thread, nr: i64, kind: u8, a: [u64; 6]) -> SysResult {
    let o = obj(t, kind, a[0])?;
    let size = a[2].min(XATTR_LIST_MAX);
    through_buffer(t, a[1], size, |ptr| host!(nr, obj_arg(&o), ptr, size))
}

fn removexattr(t: &mut Thread, nr: i64, kind: u8, a: [u64; 6]) -> SysResult {
    let o = obj(t, kind, a[0])?;
    let name = xname(t, a[1])?;
    host!(nr, obj_arg(&o), p(&name))
}

macro_rules! xattr_calls {
    ($($name:ident => $f:ident($nr:expr, $k:expr);)*) => {
        $(pub(crate) fn $name(t: &mut Thread, a: [u64; 6]) -> SysResult { $f(t, $nr, $k, a) })*
    };
}

xattr_calls! {
    sys_getxattr => getxattr(SYS_getxattr, b'p');
    sys_lgetxattr => getxattr(SYS_lgetxattr, b'l');
    sys_fgetxattr => getxattr(SYS_fgetxattr, b'f');
    sys_setxattr => setxattr(SYS_setxattr, b'p');
    sys_lsetxattr => setxattr(SYS_lsetxattr, b'l');
    sys_fsetxattr => setxattr(SYS_fsetxattr, b'f');
    sys_listxattr => listxattr(SYS_listxattr, b'p');
    sys_llistxattr => listxattr(SYS_llistxattr, b'l');
    sys_flistxattr => listxattr(SYS_flistxattr, b'f');
    sys_removexattr => removexattr(SYS_removexattr, b'p');
    sys_lremovexattr => removexattr(SYS_lremovexattr, b'l');
    sys_fremovexattr => removexattr(SYS_fremovexattr, b'f');
}
