//! Reads that leave unread what the guest cannot take.
//!
//! On Linux a pipe or stream-socket read copies data to the reader and only then consumes it:
//! fs/pipe.c `pipe_read` advances a pipe buffer after `copy_page_to_iter` copied it, and
//! net/unix/af_unix.c `unix_stream_read_generic` and net/ipv4/tcp.c `tcp_recvmsg` stop with
//! EFAULT before consuming a chunk they could not copy. So when another thread unmaps the
//! destination, makes it read-only or puts a shadow stack there while the reader waits, the
//! read fails with EFAULT and the data stays for the next read.
//!
//! Through a bounce buffer (`usermem`) the host would consume the data first and cetbox would
//! only then find the destination gone. So, while other guest threads exist, these reads go
//! in two steps:
//!
//! 1. *take*: under the mapping lock (`AddressSpace::with_writable_prefix`), the part of the
//!    destination the guest can write at this moment receives the data straight from the
//!    host, with a non-blocking call (RWF_NOWAIT, MSG_DONTWAIT). When data is there, which is
//!    the common case of a busy pipe or socket, that is the whole read: one host call. The
//!    part of the destination the guest cannot write is given to the host as an
//!    inaccessible page, so the host's copy fails where Linux's would: a chunk that reaches
//!    it fails whole and stays unread (EFAULT, or the count of the chunks before it);
//! 2. *wait*, when the take would block (EAGAIN): the guest's own call (same system call,
//!    same descriptor and flags, so /proc/PID/task/TID/syscall shows what Linux shows, and
//!    signals interrupt and restart it as they would) with an inaccessible host page as its buffer (`usermem::inaccessible`).
//!    It blocks until data is there and then fails with EFAULT without consuming anything
//!    (socket calls add MSG_PEEK as well); any other answer (end of file, EAGAIN, EINTR, a
//!    timeout) is the call's answer. Then the take again (EAGAIN there: another reader took
//!    the data first, wait again).
//!
//! The host writes guest memory only during a take, with the mapping lock held and the pages
//! checked writable under it, so no page can become read-only or a shadow stack meanwhile.
//!
//! Descriptors whose read consumes before it copies on Linux as well (datagram and seqpacket
//! sockets: `unix_dgram_recvmsg` and `udp_recvmsg` dequeue first and drop the datagram when
//! the copy fails; eventfd, timerfd, signalfd and inotify reads reset or dequeue first; tty
//! reads copy from a kernel buffer) keep the bounce buffer, which behaves as Linux does for
//! them; so do regular files, whose reads do not wait. `MSG_WAITALL` keeps taking until the
//! whole request is there, as Linux does. recvmmsg on a stream socket reads each message this
//! way (`net.rs`).

use super::host;
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use libc::{c_void, iovec};

/// Whether a failed copy leaves `fd`'s data unread on Linux (see the module documentation):
/// pipes, FIFOs and stream sockets.
pub(crate) fn keeps_unread(fd: i32) -> bool {
    // SAFETY: a zeroed stat is a valid out-parameter; fstat fills it or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is ours.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFSOCK => {
            let mut ty: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_TYPE writes one int into `ty` and its length into `len`.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&mut ty as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            r == 0 && ty == libc::SOCK_STREAM
        }
        _ => false,
    }
}

/// Whether a read of `fd` by `t` must go through [`read`]: another guest thread may change
/// the mappings while it waits (`usermem::needed`), and the descriptor keeps what a failed
/// copy did not take.
pub(crate) fn applies(t: &Thread, fd: i32) -> bool {
    crate::usermem::needed(t) && keeps_unread(fd)
}

/// Reads into the guest segments `segs` (checked at entry, in order) in the two steps of the
/// module documentation. `wait(buf, len)` makes the guest's call with the inaccessible buffer;
/// `take(iov)` makes the non-blocking call into the host iovecs given (guest memory, checked
/// writable under the mapping lock, which is held while it runs). With `all` (MSG_WAITALL),
/// takes until every segment is full, end of file or an error, and returns what it took if it
/// took anything.
pub(crate) fn read(
    t: &Thread,
    segs: &[(u64, u64)],
    all: bool,
    mut wait: impl FnMut(HostPtr<'static>, u64) -> SysResult,
    mut take: impl FnMut(&[iovec]) -> SysResult,
) -> SysResult {
    let probe = crate::usermem::inaccessible()?;
    let mut segs: Vec<(u64, u64)> = segs.iter().copied().filter(|s| s.1 > 0).collect();
    let mut got = 0u64;
    loop {
        let left: u64 = segs.iter().map(|s| s.1).sum();
        if left == 0 {
            return Ok(got);
        }
        // The take first: when data is there (the common case of a busy pipe or socket) the
        // read costs one host call.
        let r = t.mem().with_writable_prefix(&segs, |n| {
            let mut iov = Vec::with_capacity(segs.len() + 1);
            let mut rest = n;
            for &(base, len) in &segs {
                if rest == 0 {
                    break;
                }
                let l = len.min(rest);
                iov.push(iovec {
                    iov_base: base as *mut c_void,
                    iov_len: l as usize,
                });
                rest -= l;
            }
            if n < left {
                // The part the guest cannot write stands as the inaccessible page: the host's
                // copy faults where Linux's would, so a chunk (a pipe buffer, a socket
                // buffer's run) that reaches it fails whole and stays unread, after the
                // chunks before it, exactly as Linux's copy into the guest's own pages. With
                // nothing writable the call still waits for data first (EAGAIN below) and
                // then fails with EFAULT; at end of file it answers 0.
                iov.push(iovec {
                    iov_base: probe.as_ptr().cast::<c_void>(),
                    iov_len: (left - n).min(4096) as usize,
                });
            }
            take(&iov)
        });
        match r {
            // Nothing there yet (or another reader took it first): wait, below.
            Err(Errno::EAGAIN) => {}
            Err(e) if got == 0 => return Err(e),
            Err(_) | Ok(0) => return Ok(got),
            Ok(n) => {
                got += n;
                if !all {
                    return Ok(got);
                }
                advance(&mut segs, n);
                continue;
            }
        }
        // One page at most: the wait needs one byte it cannot copy, and a longer range could
        // run past TASK_SIZE from the guard page (the host's access_ok would then answer
        // EFAULT at once, as if data were there).
        match wait(probe, left.min(4096)) {
            Err(Errno::EFAULT) => {}
            Err(e) if got == 0 => return Err(e),
            Err(_) | Ok(0) => return Ok(got),
            // The inaccessible buffer took data: cannot happen (nothing can be copied there),
            // but a transfer that did happen must not be hidden.
            Ok(n) => return Ok(got + n),
        }
    }
}

/// Drops the first `n` bytes of `segs`.
fn advance(segs: &mut Vec<(u64, u64)>, mut n: u64) {
    while n > 0 && !segs.is_empty() {
        if segs[0].1 <= n {
            n -= segs[0].1;
            segs.remove(0);
        } else {
            segs[0].0 += n;
            segs[0].1 -= n;
            n = 0;
        }
    }
}

/// The non-blocking take of a read, readv or preadv2 at the current file position.
pub(crate) fn take_at_position(fd: i32, iov: &[iovec], flags: u64) -> SysResult {
    host!(
        libc::SYS_preadv2,
        fd as u64,
        HostPtr::of(iov),
        iov.len() as u64,
        u64::MAX,
        0u64,
        flags | libc::RWF_NOWAIT as u64
    )
}
