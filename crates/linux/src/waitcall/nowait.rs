//! The non-waiting form of a descriptor call, for a call that found a signal recorded before
//! it began ([`super::Waiter::call_on`]).
//!
//! Linux looks for a pending signal only when the call is about to sleep: a read of a pipe
//! that holds data returns it, one of an empty pipe ends with EINTR (fs/pipe.c pipe_read;
//! net/unix/af_unix.c unix_stream_data_wait). cetbox cannot see that moment inside the host
//! call, so it asks the call's non-waiting form instead: what it transfers is what Linux's
//! call transfers before it would sleep, and its EAGAIN is where Linux would have found the
//! signal. Testing readiness first and then making the waiting call is not the same: another
//! thread can take the data (or the room) in between, and the waiting call then sleeps with
//! the signal recorded and nothing left to interrupt it; a stream socket with SO_RCVLOWAT
//! above what it holds is ready and still sleeps after copying (unix_stream_read_generic), as
//! does a pipe write larger than the room it has (pipe_write).
//!
//! The forms: MSG_DONTWAIT for the socket calls (net/socket.c), RWF_NOWAIT for read, write and
//! their vectored forms (preadv2/pwritev2 at the current position; fs/read_write.c
//! kiocb_set_rw_flags), which pipes and sockets accept; a FIFO refuses RWF_NOWAIT
//! (EOPNOTSUPP: fifo_open does not set FMODE_NOWAIT), so the call is made on a second open
//! file description of the same FIFO with O_NONBLOCK (fs/pipe.c fifo_open), which reads and
//! writes the same pipe buffer. accept has no non-waiting form (SOCK_NONBLOCK is the new
//! socket's flag), nor do ttys and other character devices (no FMODE_NOWAIT, and a second
//! open of a pty master is a new pty): for those the waiting call is made with the thread
//! poked while it runs (`super::poke`).

// libc spells the syscall numbers in lower case (SYS_read), matched here as constants.
#![allow(non_upper_case_globals)]

use crate::errno::{Errno, SysResult};
use crate::hostcall::{call, Arg, HostPtr};
use libc::{
    c_void, iovec, SYS_preadv, SYS_preadv2, SYS_pwritev, SYS_pwritev2, SYS_read, SYS_readv,
    SYS_recvfrom, SYS_recvmmsg, SYS_recvmsg, SYS_sendmmsg, SYS_sendmsg, SYS_sendto, SYS_write,
    SYS_writev, MSG_DONTWAIT, RWF_NOWAIT,
};

/// The call `nr` on `fd` (whose arguments are `a`) in its non-waiting form, or `None` when it
/// has none: then the caller makes the call itself.
pub(super) fn call_nowait(fd: i32, nr: i64, a: [Arg<'_>; 6]) -> Option<SysResult> {
    let v = |i: usize| a[i].value();
    let with = |i: usize, bits: u64| {
        let mut b = a;
        b[i] = Arg::from(v(i) | bits);
        Some(call(nr, b))
    };
    match nr {
        SYS_recvfrom | SYS_sendto | SYS_recvmmsg | SYS_sendmmsg => with(3, MSG_DONTWAIT as u64),
        SYS_recvmsg | SYS_sendmsg => with(2, MSG_DONTWAIT as u64),
        SYS_read | SYS_write | SYS_readv | SYS_writev | SYS_preadv | SYS_pwritev | SYS_preadv2
        | SYS_pwritev2 => {
            if !may_wait(fd) {
                // Regular files and block devices never sleep for data or room, and
                // RWF_NOWAIT would refuse them when the page cache lacks the data.
                return None;
            }
            let r = rw_nowait(nr, a);
            if r != Err(Errno::EOPNOTSUPP) {
                return Some(r);
            }
            fifo_nonblocking(fd, nr, a)
        }
        _ => None,
    }
}

/// read/write/readv/writev and the positioned vectored forms as preadv2/pwritev2 with
/// RWF_NOWAIT (offset -1: the current position, as read and write use).
fn rw_nowait(nr: i64, a: [Arg<'_>; 6]) -> SysResult {
    let v = |i: usize| a[i].value();
    let nowait = RWF_NOWAIT as u64;
    let reads = matches!(nr, SYS_read | SYS_readv | SYS_preadv | SYS_preadv2);
    let nr2 = if reads { SYS_preadv2 } else { SYS_pwritev2 };
    match nr {
        SYS_read | SYS_write => {
            // The buffer `a[1]` is valid for `a[2]` bytes for as long as `a` is borrowed.
            let iov = [iovec {
                iov_base: v(1) as *mut c_void,
                iov_len: v(2) as usize,
            }];
            call(
                nr2,
                [
                    a[0],
                    HostPtr::of(&iov[..]).into(),
                    1u64.into(),
                    u64::MAX.into(),
                    0u64.into(),
                    nowait.into(),
                ],
            )
        }
        SYS_readv | SYS_writev => call(
            nr2,
            [
                a[0],
                a[1],
                a[2],
                u64::MAX.into(),
                0u64.into(),
                nowait.into(),
            ],
        ),
        SYS_preadv | SYS_pwritev => call(nr2, [a[0], a[1], a[2], a[3], a[4], nowait.into()]),
        _ => {
            let mut b = a;
            b[5] = Arg::from(v(5) | nowait);
            call(nr2, b)
        }
    }
}

/// Whether a read or write of `fd` can sleep waiting for data or room (not a regular file,
/// directory or block device).
fn may_wait(fd: i32) -> bool {
    // SAFETY: a zeroed stat is a valid out-parameter; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is ours.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return true;
    }
    !matches!(
        st.st_mode & libc::S_IFMT,
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK
    )
}

/// The call on a second, non-blocking open file description of the FIFO `fd` (None if `fd` is
/// not a FIFO or cannot be opened again so). The extra reader or writer lives only for the
/// call, while `fd` itself keeps the FIFO's reader or writer count above zero, so no other
/// party sees an end of file or a broken pipe from it.
fn fifo_nonblocking(fd: i32, nr: i64, a: [Arg<'_>; 6]) -> Option<SysResult> {
    use libc::{close, fcntl, fstat, open, F_GETFL, O_ACCMODE, O_CLOEXEC, O_NONBLOCK};
    use libc::{S_IFIFO, S_IFMT};
    // SAFETY: a zeroed stat is a valid out-parameter; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is ours.
    if unsafe { fstat(fd, &mut st) } != 0 || st.st_mode & S_IFMT != S_IFIFO {
        return None;
    }
    if !matches!(nr, SYS_read | SYS_write | SYS_readv | SYS_writev) {
        // The positioned forms fail with ESPIPE on a FIFO before anything waits.
        return None;
    }
    // SAFETY: F_GETFL takes no pointer.
    let fl = unsafe { fcntl(fd, F_GETFL) };
    if fl < 0 {
        return None;
    }
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    // SAFETY: a NUL-terminated path of ours; the flags ask for no creation.
    let nfd = unsafe { open(path.as_ptr(), fl & O_ACCMODE | O_NONBLOCK | O_CLOEXEC) };
    if nfd < 0 {
        return None;
    }
    let mut b = a;
    b[0] = Arg::from(nfd as u64);
    let r = call(nr, b);
    // SAFETY: `nfd` is ours, opened above.
    unsafe { close(nfd) };
    Some(r)
}
