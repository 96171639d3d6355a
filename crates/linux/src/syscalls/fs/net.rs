//! Sockets. Addresses and option values are checked (or bounced through cetbox buffers when the
//! kernel writes a length-limited result), message headers are rebuilt on the host side with
//! checked iovecs and control buffers, and descriptors passed with SCM_RIGHTS must be the
//! guest's.

use super::io::{iovecs, read_segments};
use super::{buf, fd_arg, host, is_private, opt_buf, unread};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use crate::waitcall::{host_wait_on, Waiter};
use cetbox_mem::Access;
use libc::*;

/// sizeof(struct sockaddr_storage).
const SS: usize = 128;
/// sizeof(struct msghdr) and struct mmsghdr on x86-64.
const MSGHDR: u64 = 56;
const MMSGHDR: u64 = 64;
const UIO_MAXIOV: u64 = 1024;

pub(crate) fn sys_socket(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(
        SYS_socket,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_socketpair(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let sv = buf(t, a[3], 8, Access::Write)?;
    host!(
        SYS_socketpair,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64,
        sv
    )
}

/// An input socket address of `len` bytes (bind, connect, sendto).
fn addr_in(t: &Thread, addr: u64, len: u64) -> Result<HostPtr<'static>, Errno> {
    let len = len as u32 as i32;
    if len < 0 || len as usize > SS {
        return Err(Errno::EINVAL);
    }
    opt_buf(t, addr, len as u64, Access::Read)
}

pub(crate) fn sys_bind(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let sa = addr_in(t, a[1], a[2])?;
    host!(SYS_bind, fd as u64, sa, a[2] as u32 as u64)
}

/// connect sleeps until the connection is made (net/ipv4/af_inet.c __inet_stream_connect
/// after sending the SYN; net/unix/af_unix.c unix_stream_connect while the listener's backlog
/// is full), so it goes through `waitcall`. When a signal was recorded before it began, Linux
/// would find it only where it sleeps: the call is made with the thread poked while it runs
/// (`waitcall::poke`), so a connect that sleeps ends with EINTR, restarted per SA_RESTART as
/// Linux's -ERESTARTSYS (a TCP connection goes on meanwhile, and a restarted connect meets
/// EALREADY, as on Linux). The socket's flags are never changed: another thread's F_GETFL sees
/// only what the guest set.
pub(crate) fn sys_connect(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let sa = addr_in(t, a[1], a[2])?;
    let len = a[2] as u32 as u64;
    let args = crate::hostcall::args([(fd as u64).into(), sa.into(), len.into()]);
    Waiter::of(t)
        .call_or_skip(SYS_connect, args)
        .unwrap_or_else(|| crate::waitcall::poke::call(SYS_connect, args))
}

pub(crate) fn sys_listen(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_listen, fd as u64, a[1] as u32 as u64)
}

pub(crate) fn sys_shutdown(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_shutdown, fd as u64, a[1] as u32 as u64)
}

/// Calls that return an address through (addr, *addrlen): the host writes into a cetbox buffer
/// and the guest gets min(its length, the address length) bytes plus the full length, as Linux
/// copies. `call` receives the host (addr, lenp) pair, both null when the guest passed none.
fn addr_out(
    t: &Thread,
    addr: u64,
    lenp: u64,
    call: impl FnOnce(HostPtr<'_>, HostPtr<'_>) -> SysResult,
) -> SysResult {
    if addr == 0 {
        return call(HostPtr::NULL, HostPtr::NULL);
    }
    let ulen = t.mem().read_u32(lenp).map_err(|_| Errno::EFAULT)? as i32;
    if ulen < 0 {
        return Err(Errno::EINVAL);
    }
    buf(t, lenp, 4, Access::Write)?;
    let mut ss = [0u8; SS];
    let mut len: socklen_t = SS as socklen_t;
    let r = call(HostPtr::of_mut(&mut ss), HostPtr::of_mut(&mut len))?;
    let n = (len as usize).min(ulen as usize).min(SS);
    t.mem().write_bytes(addr, &ss[..n])?;
    t.mem().write_u32(lenp, len)?;
    Ok(r)
}

pub(crate) fn sys_accept4(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let flags = a[3] as u32 as u64;
    let w = Waiter::of(t);
    addr_out(t, a[1], a[2], |sa, lp| {
        host_wait_on!(w, fd, POLLIN, false, SYS_accept4, fd as u64, sa, lp, flags)
    })
}

pub(crate) fn sys_accept(t: &mut Thread, a: [u64; 6]) -> SysResult {
    sys_accept4(t, [a[0], a[1], a[2], 0, 0, 0])
}

pub(crate) fn sys_getsockname(t: &mut Thread, a: [u64; 6]) -> SysResult {
    socket_name(t, a, SYS_getsockname)
}

pub(crate) fn sys_getpeername(t: &mut Thread, a: [u64; 6]) -> SysResult {
    socket_name(t, a, SYS_getpeername)
}

/// getsockname and getpeername (host call `nr`): unlike accept, the address is not optional.
fn socket_name(t: &mut Thread, a: [u64; 6], nr: libc::c_long) -> SysResult {
    let fd = fd_arg(a[0])?;
    if a[1] == 0 {
        return Err(Errno::EFAULT);
    }
    addr_out(t, a[1], a[2], |sa, lp| host!(nr, fd as u64, sa, lp))
}

pub(crate) fn sys_sendto(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let (p, n) = super::io_prefix(t, a[1], a[2].min(super::MAX_RW_COUNT), Access::Read)?;
    let sa = addr_in(t, a[4], a[5])?;
    host_wait_on!(
        Waiter::of(t),
        fd,
        POLLOUT,
        dontwait(a[3]),
        SYS_sendto,
        fd as u64,
        p,
        n,
        a[3] as u32 as u64,
        sa,
        a[5] as u32 as u64
    )
}

/// The flags of the waiting call of a socket read (`unread`): a peek that only waits for the
/// first data, so it never consumes, and whether the takes go on until the request is full.
fn unread_flags(flags: u64) -> (u64, bool) {
    let all = flags & (MSG_WAITALL | MSG_DONTWAIT | MSG_PEEK) as u64 == MSG_WAITALL as u64;
    ((flags | MSG_PEEK as u64) & !(MSG_WAITALL as u64), all)
}

/// The flags of the non-blocking take of a socket read (`unread`).
fn take_flags(flags: u64) -> u64 {
    (flags | MSG_DONTWAIT as u64) & !(MSG_WAITALL as u64)
}

/// Whether a socket call with `flags` never waits (MSG_DONTWAIT; error-queue reads).
fn dontwait(flags: u64) -> bool {
    flags as u32 as i32 & (MSG_DONTWAIT | MSG_ERRQUEUE) != 0
}

/// Whether a socket read with `flags` reads the data stream (not the error queue or
/// out-of-band data).
fn reads_stream(flags: u64) -> bool {
    flags & (MSG_ERRQUEUE | MSG_OOB) as u64 == 0
}

pub(crate) fn sys_recvfrom(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let flags = a[3] as u32 as u64;
    if reads_stream(flags) && unread::applies(t, fd) {
        // import_ubuf: the count clamped to MAX_RW_COUNT, then access_ok; not cut at the
        // first unwritable page (`unread` lets the host fault there).
        let n = a[2].min(super::MAX_RW_COUNT);
        if n > 0 && !super::access_ok(a[1], n) {
            return Err(Errno::EFAULT);
        }
        if n > 0 {
            let (wait_flags, all) = unread_flags(flags);
            let t: &Thread = t;
            let w = Waiter::of(t);
            return addr_out(t, a[4], a[5], |sa, lp| {
                unread::read(
                    t,
                    &[(a[1], n)],
                    all,
                    |p, len| {
                        host_wait_on!(
                            w,
                            fd,
                            POLLIN,
                            dontwait(flags),
                            SYS_recvfrom,
                            fd as u64,
                            p,
                            len,
                            wait_flags,
                            0u64,
                            0u64
                        )
                    },
                    |iov| {
                        if let [one] = iov {
                            let (b, l) = (one.iov_base.cast::<u8>(), one.iov_len as u64);
                            // Checked writable under the mapping lock by `unread::read`.
                            let b = HostPtr::checked(b);
                            return host!(SYS_recvfrom, fd as u64, b, l, take_flags(flags), sa, lp);
                        }
                        // The writable part and the inaccessible page: recvmsg's iovecs.
                        // SAFETY: msghdr is plain data; all-zero is a valid value.
                        let mut h: msghdr = unsafe { std::mem::zeroed() };
                        h.msg_iov = iov.as_ptr() as *mut iovec;
                        h.msg_iovlen = iov.len();
                        if !sa.is_null() {
                            h.msg_name = sa.as_ptr().cast::<c_void>();
                            h.msg_namelen = SS as socklen_t;
                        }
                        let r = host!(
                            SYS_recvmsg,
                            fd as u64,
                            HostPtr::of_mut(&mut h),
                            take_flags(flags)
                        );
                        if r.is_ok() && !lp.is_null() {
                            // SAFETY: `lp` is `addr_out`'s own socklen_t, live for this call.
                            unsafe { *lp.as_ptr().cast::<socklen_t>() = h.msg_namelen };
                        }
                        r
                    },
                )
            });
        }
    }
    let (p, n) = super::io_prefix_from(t, fd, a[1], a[2].min(super::MAX_RW_COUNT))?;
    let flags = a[3] as u32 as u64;
    let w = Waiter::of(t);
    addr_out(t, a[4], a[5], |sa, lp| {
        host_wait_on!(
            w,
            fd,
            POLLIN,
            dontwait(flags),
            SYS_recvfrom,
            fd as u64,
            p,
            n,
            flags,
            sa,
            lp
        )
    })
}

pub(crate) fn sys_setsockopt(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let len = a[4] as u32 as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let val = opt_buf(t, a[3], len as u64, Access::Read)?;
    host!(
        SYS_setsockopt,
        fd as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64,
        val,
        len as u64
    )
}

pub(crate) fn sys_getsockopt(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let lenp = buf(t, a[4], 4, Access::Write)?;
    let len = t.mem().read_u32(a[4])? as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let val = opt_buf(t, a[3], len as u64, Access::Write)?;
    host!(
        SYS_getsockopt,
        fd as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64,
        val,
        lenp
    )
}

/// A guest msghdr turned into a host one whose pointers are all checked (the iovec array is
/// owned here).
struct Msg {
    hdr: msghdr,
    _iov: Vec<iovec>,
    /// With `direct`: the checked guest data segments, for `unread::read` (the header then
    /// has no iovecs).
    segs: Vec<(u64, u64)>,
}

fn msg_in(t: &Thread, addr: u64, send: bool) -> Result<Msg, Errno> {
    msg_in_as(t, addr, send, false)
}

/// [`msg_in`]; with `direct`, the data segments are left in guest memory for
/// `unread::read` instead of being bounced.
fn msg_in_as(t: &Thread, addr: u64, send: bool, direct: bool) -> Result<Msg, Errno> {
    let data = if send { Access::Read } else { Access::Write };
    buf(
        t,
        addr,
        MSGHDR,
        if send { Access::Read } else { Access::Write },
    )?;
    let m = t.mem();
    let name = m.read_u64(addr)?;
    let namelen = m.read_u32(addr + 8)? as i32;
    let iov = m.read_u64(addr + 16)?;
    let iovlen = m.read_u64(addr + 24)?;
    let control = m.read_u64(addr + 32)?;
    let controllen = m.read_u64(addr + 40)?;
    let flags = m.read_u32(addr + 48)?;
    if namelen < 0 || iovlen > UIO_MAXIOV || controllen > i32::MAX as u64 {
        return Err(if iovlen > UIO_MAXIOV {
            Errno(EMSGSIZE)
        } else {
            Errno::EINVAL
        });
    }
    let namelen = (namelen as usize).min(SS) as u64;
    let name = if name == 0 {
        HostPtr::NULL
    } else {
        buf(t, name, namelen, data)?
    };
    let (v, segs) = if direct {
        (Vec::new(), read_segments(t, iov, iovlen)?)
    } else {
        (iovecs(t, iov, iovlen, data)?, Vec::new())
    };
    let control = if controllen == 0 {
        HostPtr::NULL
    } else {
        buf(t, control, controllen, data)?
    };
    if send && !control.is_null() {
        check_rights(t, control.addr(), controllen)?;
    }
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut hdr: msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = name.as_ptr().cast::<c_void>();
    hdr.msg_namelen = namelen as u32;
    hdr.msg_iov = v.as_ptr() as *mut iovec;
    hdr.msg_iovlen = v.len();
    hdr.msg_control = control.as_ptr().cast::<c_void>();
    hdr.msg_controllen = controllen as usize;
    hdr.msg_flags = flags as i32;
    Ok(Msg { hdr, _iov: v, segs })
}

/// SCM_RIGHTS messages may not carry cetbox's own descriptors.
fn check_rights(t: &Thread, control: u64, len: u64) -> Result<(), Errno> {
    let m = t.mem();
    let mut off = 0u64;
    while off + 16 <= len {
        let clen = m.read_u64(control + off)?;
        let level = m.read_u32(control + off + 8)? as i32;
        let ty = m.read_u32(control + off + 12)? as i32;
        if clen < 16 || off + clen > len {
            break;
        }
        if level == SOL_SOCKET && ty == SCM_RIGHTS {
            let mut p = 16;
            while p + 4 <= clen {
                if is_private(m.read_u32(control + off + p)? as i32) {
                    return Err(Errno::EBADF);
                }
                p += 4;
            }
        }
        off += (clen + 7) & !7;
    }
    Ok(())
}

/// recvmsg writes back the lengths and flags the kernel updates.
fn msg_out(t: &Thread, addr: u64, hdr: &msghdr) -> Result<(), Errno> {
    let m = t.mem();
    if m.read_u64(addr)? != 0 {
        m.write_u32(addr + 8, hdr.msg_namelen)?;
    }
    m.write_u64(addr + 40, hdr.msg_controllen as u64)?;
    m.write_u32(addr + 48, hdr.msg_flags as u32)?;
    Ok(())
}

pub(crate) fn sys_sendmsg(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let msg = msg_in(t, a[1], true)?;
    host_wait_on!(
        Waiter::of(t),
        fd,
        POLLOUT,
        dontwait(a[2]),
        SYS_sendmsg,
        fd as u64,
        HostPtr::of(&msg.hdr),
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_recvmsg(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    recvmsg_one(t, fd, a[1], a[2] as u32 as u64, SYS_recvmsg)
}

/// One recvmsg of the message header at `addr` (also each message of recvmmsg). `nr` is the
/// guest's call (recvmsg or recvmmsg), which a stream read's wait makes as the guest did.
/// Whether a received header's control data holds descriptors (SCM_RIGHTS), or had to drop
/// some (MSG_CTRUNC: Linux closes the ones that did not fit).
fn carries_rights(h: &msghdr) -> bool {
    if h.msg_flags & MSG_CTRUNC != 0 {
        return true;
    }
    let (base, len) = (h.msg_control as *const u8, h.msg_controllen);
    let mut off = 0usize;
    while !base.is_null() && off + 16 <= len {
        let mut c = [0u8; 16];
        // SAFETY: `msg_control` is the call's control buffer (a bounce buffer, or checked
        // guest memory of a single-threaded process) of at least `len` bytes, as the host
        // reported them.
        unsafe { std::ptr::copy_nonoverlapping(base.add(off), c.as_mut_ptr(), 16) };
        let clen = u64::from_le_bytes(c[0..8].try_into().unwrap_or([0; 8])) as usize;
        let level = i32::from_le_bytes(c[8..12].try_into().unwrap_or([0; 4]));
        let kind = i32::from_le_bytes(c[12..16].try_into().unwrap_or([0; 4]));
        if level == SOL_SOCKET && kind == SCM_RIGHTS {
            return true;
        }
        if clen < 16 {
            break;
        }
        off += clen.div_ceil(8) * 8;
    }
    false
}

fn recvmsg_one(t: &Thread, fd: i32, addr: u64, flags: u64, nr: c_long) -> SysResult {
    let a = [fd as u64, addr, flags];
    if reads_stream(flags) && unread::applies(t, fd) {
        let mut msg = msg_in_as(t, a[1], false, true)?;
        if msg.segs.iter().any(|s| s.1 > 0) {
            let (wait_flags, all) = unread_flags(flags);
            let segs = std::mem::take(&mut msg.segs);
            let name = msg.hdr.msg_name;
            let controllen = msg.hdr.msg_controllen;
            let mut stop = false;
            let hdr = &mut msg.hdr;
            let w = Waiter::of(t);
            let r = unread::read(
                t,
                &segs,
                all,
                |p, len| {
                    let mut v = [iovec {
                        iov_base: p.as_ptr().cast::<c_void>(),
                        iov_len: len as usize,
                    }];
                    // SAFETY: msghdr is plain data; all-zero is a valid value.
                    let mut h: msghdr = unsafe { std::mem::zeroed() };
                    h.msg_iov = v.as_mut_ptr();
                    h.msg_iovlen = 1;
                    if nr == SYS_recvmmsg {
                        let mut m = [mmsghdr {
                            msg_hdr: h,
                            msg_len: 0,
                        }];
                        let m = HostPtr::of_mut(&mut m);
                        return host_wait_on!(
                            w,
                            fd,
                            POLLIN,
                            dontwait(flags),
                            SYS_recvmmsg,
                            fd as u64,
                            m,
                            1u64,
                            wait_flags,
                            0u64
                        );
                    }
                    let h = HostPtr::of_mut(&mut h);
                    host_wait_on!(
                        w,
                        fd,
                        POLLIN,
                        dontwait(flags),
                        SYS_recvmsg,
                        fd as u64,
                        h,
                        wait_flags
                    )
                },
                |iov| {
                    // Linux stops a stream read after a message that carried descriptors
                    // (net/unix/af_unix.c unix_stream_read_generic, "if (scm.fp) break"),
                    // MSG_WAITALL or not: the take after one such ends the read here (0: no
                    // more), so its SCM_RIGHTS reach the guest instead of being replaced.
                    if stop {
                        return Ok(0);
                    }
                    hdr.msg_iov = iov.as_ptr() as *mut iovec;
                    hdr.msg_iovlen = iov.len();
                    // Each take gets the guest's whole control space (the host shrank the
                    // length to what the previous take used).
                    hdr.msg_controllen = controllen;
                    let r = host!(
                        SYS_recvmsg,
                        fd as u64,
                        HostPtr::of_mut(&mut *hdr),
                        take_flags(flags)
                    )?;
                    if r > 0 {
                        stop = carries_rights(hdr);
                        // The sender's address comes from the first message read (Linux
                        // copies it once); later takes leave it alone.
                        hdr.msg_name = std::ptr::null_mut();
                    }
                    Ok(r)
                },
            )?;
            msg.hdr.msg_iov = std::ptr::null_mut();
            msg.hdr.msg_iovlen = 0;
            msg.hdr.msg_name = name;
            msg_out(t, a[1], &msg.hdr)?;
            return Ok(r);
        }
        // Nothing to read into: the call as it is (the header has no iovecs either way).
        let h = HostPtr::of_mut(&mut msg.hdr);
        let r = host_wait_on!(
            Waiter::of(t),
            fd,
            POLLIN,
            dontwait(flags),
            SYS_recvmsg,
            fd as u64,
            h,
            flags
        )?;
        msg_out(t, a[1], &msg.hdr)?;
        return Ok(r);
    }
    let mut msg = msg_in(t, a[1], false)?;
    let r = host_wait_on!(
        Waiter::of(t),
        fd,
        POLLIN,
        dontwait(flags),
        SYS_recvmsg,
        fd as u64,
        HostPtr::of_mut(&mut msg.hdr),
        flags
    )?;
    msg_out(t, a[1], &msg.hdr)?;
    Ok(r)
}

pub(crate) fn sys_sendmmsg(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let vlen = (a[2] as u32 as u64).min(UIO_MAXIOV);
    let mut msgs = Vec::with_capacity(vlen as usize);
    for i in 0..vlen {
        msgs.push(msg_in(t, a[1] + i * MMSGHDR, true)?);
    }
    let mut hv: Vec<mmsghdr> = msgs
        .iter()
        .map(|m| mmsghdr {
            msg_hdr: m.hdr,
            msg_len: 0,
        })
        .collect();
    let r = host_wait_on!(
        Waiter::of(t),
        fd,
        POLLOUT,
        dontwait(a[3]),
        SYS_sendmmsg,
        fd as u64,
        HostPtr::of_mut(&mut hv[..]),
        vlen,
        a[3] as u32 as u64
    )?;
    for (i, h) in hv.iter().enumerate().take(r as usize) {
        t.mem()
            .write_u32(a[1] + i as u64 * MMSGHDR + 56, h.msg_len)?;
    }
    Ok(r)
}

const MSG_WAITFORONE_: u64 = 0x10000;

/// recvmmsg as net/socket.c `do_recvmmsg`: one recvmsg per message (`recvmsg_one`, so a
/// stream socket's messages leave unread what the guest cannot take, and each message's data
/// reaches the guest counted by its own length), MSG_DONTWAIT after the first message with
/// MSG_WAITFORONE, a stop after out-of-band data, and the timeout checked after each message
/// (it never bounds the wait for the first, as on Linux) and written back with what is left.
/// An error after at least one message ends the call with the messages received; Linux also
/// keeps that error (other than EAGAIN) in the socket for its next call (sk_err), which cetbox
/// cannot set on the host socket.
pub(crate) fn sys_recvmmsg(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    let vlen = (a[2] as u32 as u64).min(UIO_MAXIOV);
    let mut flags = a[3] as u32 as u64;
    let ts_addr = a[4];
    // __sys_recvmmsg: the timeout is read first (EFAULT), then validated (EINVAL).
    let mut left = None;
    if ts_addr != 0 {
        let sec = t.mem().read_u64(ts_addr).map_err(|_| Errno::EFAULT)? as i64;
        let nsec = t.mem().read_u64(ts_addr + 8).map_err(|_| Errno::EFAULT)? as i64;
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        let end = monotonic_ns().saturating_add((sec as i128) * 1_000_000_000 + nsec as i128);
        left = Some((end, sec, nsec));
    }
    let mut datagrams = 0u64;
    let mut err = None;
    while datagrams < vlen {
        let entry = a[1] + datagrams * MMSGHDR;
        let r = recvmsg_one(t, fd, entry, flags & !MSG_WAITFORONE_, SYS_recvmmsg);
        // This message's data reaches the guest now, counted by its own length.
        let r = crate::usermem::finish(t, r);
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                err = Some(e);
                break;
            }
        };
        if let Err(e) = t.mem().write_u32(entry + 56, n as u32) {
            err = Some(Errno::from(e));
            break;
        }
        datagrams += 1;
        if flags & MSG_WAITFORONE_ != 0 {
            flags |= MSG_DONTWAIT as u64;
        }
        if let Some((end, sec, nsec)) = left.as_mut() {
            let rest = *end - monotonic_ns();
            let rest = rest.max(0);
            *sec = (rest / 1_000_000_000) as i64;
            *nsec = (rest % 1_000_000_000) as i64;
            if rest == 0 {
                break;
            }
        }
        if t.mem().read_u32(entry + 48).unwrap_or(0) & MSG_OOB as u32 != 0 {
            break;
        }
    }
    if datagrams == 0 {
        if let Some(e) = err {
            return Err(e);
        }
    }
    if let (Some((_, sec, nsec)), true) = (left, datagrams > 0) {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&sec.to_le_bytes());
        b[8..].copy_from_slice(&nsec.to_le_bytes());
        t.mem()
            .write_bytes(ts_addr, &b)
            .map_err(|_| Errno::EFAULT)?;
    }
    Ok(datagrams)
}

/// CLOCK_MONOTONIC in nanoseconds (recvmmsg's end time, as poll_select_set_timeout's).
fn monotonic_ns() -> i128 {
    // SAFETY: a zeroed timespec is a valid out-parameter.
    let mut ts: timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is ours.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// A socket call on a descriptor that is not a socket fails with ENOTSOCK before any of its
/// pointers is looked at (sockfd_lookup comes first in net/socket.c): when a call fails with
/// EFAULT, the descriptor decides.
fn sock_first(t: &mut Thread, a: [u64; 6], f: crate::syscalls::SyscallFn) -> SysResult {
    let r = f(t, a);
    if r == Err(Errno::EFAULT) {
        let fd = fd_arg(a[0])?;
        // SAFETY: stat is plain data; fstat fills it or fails.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out pointer.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(Errno::EBADF);
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(Errno(libc::ENOTSOCK));
        }
    }
    r
}

/// The socket calls whose pointer errors come after the descriptor check (`sock_first`).
macro_rules! socket_first {
    ($($name:ident => $inner:ident;)*) => {
        $(pub(crate) fn $name(t: &mut Thread, a: [u64; 6]) -> SysResult {
            sock_first(t, a, $inner)
        })*
    };
}

socket_first! {
    sock_bind => sys_bind;
    sock_connect => sys_connect;
    sock_accept => sys_accept;
    sock_accept4 => sys_accept4;
    sock_getsockname => sys_getsockname;
    sock_getpeername => sys_getpeername;
    sock_sendto => sys_sendto;
    sock_recvfrom => sys_recvfrom;
    sock_setsockopt => sys_setsockopt;
    sock_getsockopt => sys_getsockopt;
    sock_sendmsg => sys_sendmsg;
    sock_recvmsg => sys_recvmsg;
    sock_sendmmsg => sys_sendmmsg;
    sock_recvmmsg => sys_recvmmsg;
}
