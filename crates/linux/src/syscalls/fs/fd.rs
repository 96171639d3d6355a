//! Descriptor management: close, dup, pipes, fcntl, and descriptor-creating calls (eventfd,
//! memfd, timerfd, inotify).

use super::{buf, cstr_arg, fd_arg, host, is_private, opt_buf, path_arg_follow, private_fds};
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::Thread;
use crate::waitcall::Waiter;
use cetbox_mem::Access;
use libc::*;

pub(crate) fn sys_close(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    crate::procfs::forget_fd(t, fd);
    host!(SYS_close, fd as u64)
}

/// close_range over the guest's descriptors only: the range is split around cetbox's own.
pub(crate) fn sys_close_range(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2] as u32);
    if first > last {
        return Err(Errno::EINVAL);
    }
    let mut lo = first;
    for p in private_fds() {
        let p = p as u32;
        if p < lo || p > last {
            continue;
        }
        if p > lo {
            host!(SYS_close_range, lo as u64, (p - 1) as u64, flags as u64)?;
        }
        if p == u32::MAX {
            return Ok(0);
        }
        lo = p + 1;
    }
    if lo > last {
        return Ok(0);
    }
    host!(SYS_close_range, lo as u64, last as u64, flags as u64)
}

pub(crate) fn sys_dup(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let r = host!(SYS_dup, fd as u64)?;
    crate::procfs::copied_fd(t, fd, r as i32);
    Ok(r)
}

/// dup2/dup3 onto one of cetbox's descriptors is refused with EBADF (Linux would replace it;
/// cetbox cannot give it up).
pub(crate) fn sys_dup2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let old = fd_arg(a[0])?;
    let new = fd_arg(a[1])?;
    let r = host!(SYS_dup2, old as u64, new as u64)?;
    crate::procfs::copied_fd(t, old, new);
    Ok(r)
}

pub(crate) fn sys_dup3(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let old = fd_arg(a[0])?;
    let new = fd_arg(a[1])?;
    let r = host!(SYS_dup3, old as u64, new as u64, a[2] as u32 as u64)?;
    crate::procfs::copied_fd(t, old, new);
    Ok(r)
}

/// pipe/pipe2: the result array is checked before the pipe exists, so a bad pointer leaks
/// nothing (Linux creates, fails the copy, and closes: same result).
pub(crate) fn sys_pipe2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let p = buf(t, a[0], 8, Access::Write)?;
    host!(SYS_pipe2, p, a[1] as u32 as u64)
}

pub(crate) fn sys_pipe(t: &mut Thread, a: [u64; 6]) -> SysResult {
    sys_pipe2(t, [a[0], 0, 0, 0, 0, 0])
}

pub(crate) fn sys_fcntl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let cmd = a[1] as u32 as i32;
    let arg = a[2];
    // Argument size and direction per command.
    let (len, access): (u64, Option<Access>) = match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL | F_SETFL | F_SETOWN | F_GETOWN
        | 10 | 11 | F_SETLEASE | F_GETLEASE | F_NOTIFY | F_SETPIPE_SZ | F_GETPIPE_SZ
        | F_ADD_SEALS | F_GET_SEALS => (0, None),
        // 10, 11: F_SETSIG, F_GETSIG. F_DUPFD_QUERY (6.10) and F_CREATED_QUERY (6.12).
        1027 => {
            if is_private(arg as u32 as i32) {
                return Err(Errno::EBADF);
            }
            (0, None)
        }
        1028 => (0, None),
        F_GETLK | F_OFD_GETLK => (std::mem::size_of::<flock>() as u64, Some(Access::Write)),
        F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            (std::mem::size_of::<flock>() as u64, Some(Access::Read))
        }
        // F_SETOWN_EX / F_GETOWN_EX: struct f_owner_ex { int type; pid_t pid; }.
        15 => (8, Some(Access::Read)),
        16 => (8, Some(Access::Write)),
        // F_GETOWNER_UIDS: uid_t[2].
        17 => (8, Some(Access::Write)),
        // F_GET_RW_HINT / F_GET_FILE_RW_HINT: u64 out; the SET forms read one.
        1035 | 1037 => (8, Some(Access::Write)),
        1036 | 1038 => (8, Some(Access::Read)),
        _ => return Err(Errno::EINVAL),
    };
    let arg: Arg = match access {
        Some(acc) => buf(t, arg, len, acc)?.into(),
        None => arg.into(),
    };
    // The waiting lock requests (F_SETLKW, F_OFD_SETLKW): a signal recorded before the call
    // ends it only if the lock would wait (fs/locks.c fcntl_setlk), which the non-waiting
    // form (F_SETLK, F_OFD_SETLK) decides.
    let nowait = match cmd {
        F_SETLKW => F_SETLK,
        F_OFD_SETLKW => F_OFD_SETLK,
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let r = host!(SYS_fcntl, fd as u64, cmd as u32 as u64, arg)?;
            crate::procfs::copied_fd(t, fd, r as i32);
            return Ok(r);
        }
        _ => return host!(SYS_fcntl, fd as u64, cmd as u32 as u64, arg),
    };
    Waiter::of(t)
        .call_or_skip(
            SYS_fcntl,
            crate::hostcall::args([(fd as u64).into(), (cmd as u32 as u64).into(), arg]),
        )
        .unwrap_or_else(
            || match host!(SYS_fcntl, fd as u64, nowait as u32 as u64, arg) {
                Err(Errno::EAGAIN | Errno::EACCES) => Err(Errno::EINTR),
                r => r,
            },
        )
}

pub(crate) fn sys_umask(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_umask, a[0] & 0o777)
}

pub(crate) fn sys_eventfd(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_eventfd, a[0] as u32 as u64)
}

pub(crate) fn sys_eventfd2(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_eventfd2, a[0] as u32 as u64, a[1] as u32 as u64)
}

pub(crate) fn sys_memfd_create(t: &mut Thread, a: [u64; 6]) -> SysResult {
    // The name is at most 249 bytes plus the NUL (MFD_NAME_MAX_LEN).
    let name = cstr_arg(t, a[0], 250, Errno::EINVAL)?;
    host!(
        SYS_memfd_create,
        HostPtr::of(name.as_bytes_with_nul()),
        a[1] as u32 as u64
    )
}

pub(crate) fn sys_timerfd_create(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_timerfd_create, a[0] as u32 as u64, a[1] as u32 as u64)
}

/// struct itimerspec: two timespecs.
const ITIMERSPEC: u64 = 32;

pub(crate) fn sys_timerfd_settime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let new = buf(t, a[2], ITIMERSPEC, Access::Read)?;
    let old = opt_buf(t, a[3], ITIMERSPEC, Access::Write)?;
    host!(SYS_timerfd_settime, fd as u64, a[1] as u32 as u64, new, old)
}

pub(crate) fn sys_timerfd_gettime(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let cur = buf(t, a[1], ITIMERSPEC, Access::Write)?;
    host!(SYS_timerfd_gettime, fd as u64, cur)
}

pub(crate) fn sys_inotify_init(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    host!(SYS_inotify_init1)
}

pub(crate) fn sys_inotify_init1(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_inotify_init1, a[0] as u32 as u64)
}

pub(crate) fn sys_inotify_add_watch(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    // IN_DONT_FOLLOW (include/uapi/linux/inotify.h): do not follow a trailing symlink.
    let p = path_arg_follow(t, a[1], a[2] as u32 & 0x0200_0000 == 0)?;
    host!(
        SYS_inotify_add_watch,
        fd as u64,
        HostPtr::of(p.as_bytes_with_nul()),
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_inotify_rm_watch(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_inotify_rm_watch, fd as u64, a[1] as u32 as u64)
}
