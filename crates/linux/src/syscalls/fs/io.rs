//! Data transfer: read/write and their vectored and positioned forms, lseek, sendfile,
//! copy_file_range, splice/tee, sync and allocation calls.

use super::{
    access_ok, buf, fd_arg, host, io_len, io_prefix, opt_buf, unread, valid_prefix, MAX_RW_COUNT,
};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use crate::waitcall::{host_wait_on, Waiter};
use cetbox_mem::Access;
use libc::*;

/// Linux's UIO_MAXIOV.
const UIO_MAXIOV: u64 = 1024;

/// Reads a guest iovec array and turns it into host iovecs covering only the usable prefix of
/// the data (Linux stops at the first bad page and returns a short count; EFAULT when nothing
/// could be transferred).
pub(crate) fn iovecs(t: &Thread, addr: u64, cnt: u64, access: Access) -> Result<Vec<iovec>, Errno> {
    let segs = guest_segments(t, addr, cnt, access)?;
    let mut out = Vec::with_capacity(segs.len());
    for (base, n) in segs {
        // The host writes a data bounce buffer, never guest memory (see usermem).
        let host_base = if access == Access::Write && crate::usermem::needed(t) {
            crate::usermem::data_out(base, n)?
        } else {
            // Checked readable (or writable) for n bytes by valid_prefix.
            HostPtr::checked(base as *mut u8)
        };
        out.push(iovec {
            iov_base: host_base.as_ptr().cast::<c_void>(),
            iov_len: n as usize,
        });
    }
    Ok(out)
}

/// The iovec array at `addr` (`cnt` entries) as Linux's __import_iovec takes it: EINVAL for
/// more than UIO_MAXIOV entries or a negative length, EFAULT unless every segment passes
/// access_ok with its full length.
fn iovec_entries(t: &Thread, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let cnt = cnt as usize;
    let mut raw = vec![0u8; cnt * 16];
    if cnt > 0 {
        let p = buf(t, addr, raw.len() as u64, Access::Read)?;
        // SAFETY: `p` is checked readable guest memory of raw.len() bytes.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), raw.as_mut_ptr(), raw.len()) };
    }
    let mut entries = Vec::with_capacity(cnt);
    for i in 0..cnt {
        let base = u64::from_le_bytes(raw[i * 16..i * 16 + 8].try_into().unwrap_or([0; 8]));
        let len = u64::from_le_bytes(raw[i * 16 + 8..i * 16 + 16].try_into().unwrap_or([0; 8]));
        if (len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        entries.push((base, len));
    }
    if entries.iter().any(|&(b, l)| l != 0 && !access_ok(b, l)) {
        return Err(Errno::EFAULT);
    }
    Ok(entries)
}

/// Non-empty segments with the total clamped to MAX_RW_COUNT.
fn clamp(entries: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut total = 0u64;
    let mut out = Vec::with_capacity(entries.len());
    for (base, len) in entries {
        let len = len.min(MAX_RW_COUNT - total);
        if len > 0 {
            out.push((base, len));
            total += len;
        }
    }
    out
}

/// The segments of a read that goes through `unread::read`, whole (access_ok'd and clamped,
/// not cut at the first unwritable page: `unread` lets the host fault there as Linux does).
pub(crate) fn read_segments(t: &Thread, addr: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    Ok(clamp(iovec_entries(t, addr, cnt)?))
}

/// The guest (address, length) segments of an iovec array that a transfer may use, with
/// Linux's checks: UIO_MAXIOV, negative lengths, every segment through access_ok with its full
/// length (__import_iovec), the total clamped to MAX_RW_COUNT, and the data cut at the first
/// page that does not allow `access` (EFAULT when nothing is usable).
pub(crate) fn guest_segments(
    t: &Thread,
    addr: u64,
    cnt: u64,
    access: Access,
) -> Result<Vec<(u64, u64)>, Errno> {
    // Linux's __import_iovec: every segment passes access_ok with its full length before
    // anything is transferred.
    let entries = iovec_entries(t, addr, cnt)?;
    let mut out = Vec::with_capacity(entries.len());
    let mut total: u64 = 0;
    let mut wanted = false;
    for (base, len) in clamp(entries) {
        wanted = true;
        let n = valid_prefix(t, base, len, access);
        if n > 0 {
            out.push((base, n));
            total += n;
        }
        if n < len || total >= MAX_RW_COUNT {
            break;
        }
    }
    if wanted && total == 0 {
        return Err(Errno::EFAULT);
    }
    Ok(out)
}

/// /proc/self/mem descriptors transfer guest memory with the kernel's forced-access rules
/// (procfs::mem_access) instead of going through the host file, which would bypass the guest
/// page table (shadow-stack page types, decoded-code invalidation). `pos` is None for
/// read/write, which use and advance the file position.
fn proc_mem(
    t: &Thread,
    fd: i32,
    addr: u64,
    len: u64,
    pos: Option<u64>,
    write: bool,
) -> Option<SysResult> {
    if !crate::procfs::is_mem_fd(t, fd) {
        return None;
    }
    let transfer = || -> SysResult {
        let off = match pos {
            Some(o) => o,
            None => host!(SYS_lseek, fd as u64, 0, SEEK_CUR as u64)?,
        };
        let done = proc_mem_at(t, fd, addr, len, off, write)?;
        if pos.is_none() {
            host!(SYS_lseek, fd as u64, off + done, SEEK_SET as u64)?;
        }
        Ok(done)
    };
    Some(transfer())
}

/// One transfer between guest buffer `addr` and the memory a /proc/PID/mem descriptor shows,
/// at `off`.
fn proc_mem_at(t: &Thread, fd: i32, addr: u64, len: u64, off: u64, write: bool) -> SysResult {
    // The descriptor's access mode (the placeholder has the guest's): EBADF as vfs_read and
    // vfs_write answer for the wrong one.
    let mode = host!(SYS_fcntl, fd as u64, F_GETFL as u64)? as i32 & O_ACCMODE;
    if mode == if write { O_RDONLY } else { O_WRONLY } {
        return Err(Errno::EBADF);
    }
    let n = io_len(
        t,
        addr,
        len.min(1 << 20),
        if write { Access::Read } else { Access::Write },
    )?;
    let mut tmp = vec![0u8; n as usize];
    if write {
        t.mem().read_bytes(addr, &mut tmp)?;
        crate::procfs::mem_access_fd(t, fd, off, &mut tmp, true)
    } else {
        let done = crate::procfs::mem_access_fd(t, fd, off, &mut tmp, false)?;
        t.mem().write_bytes(addr, &tmp[..done as usize])?;
        Ok(done)
    }
}

/// readv/writev/preadv/pwritev(2) of a /proc/PID/mem descriptor: Linux's file has no
/// read_iter, so the kernel calls its read or write once per segment and stops at the first
/// short one (fs/read_write.c, do_loop_readv_writev).
fn proc_mem_vectored(t: &Thread, fd: i32, a: [u64; 6], pos: Option<u64>, write: bool) -> SysResult {
    let segs = read_segments(t, a[1], a[2])?;
    let start = match pos {
        Some(o) => o,
        None => host!(SYS_lseek, fd as u64, 0, SEEK_CUR as u64)?,
    };
    let mut done = 0u64;
    for (base, len) in segs {
        match proc_mem_at(t, fd, base, len, start + done, write) {
            Ok(n) => {
                done += n;
                if n < len {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if pos.is_none() {
        host!(SYS_lseek, fd as u64, start + done, SEEK_SET as u64)?;
    }
    Ok(done)
}

pub(crate) fn sys_read(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    crate::proc_refresh::before_read(t, fd, None);
    if let Some(r) = proc_mem(t, fd, a[1], a[2], None, false) {
        return r;
    }
    let w = Waiter::of(t);
    if unread::applies(t, fd) && a[2] > 0 {
        // vfs_read's access_ok on the whole count; the count then as rw_verify_area clamps
        // it, not cut at the first unwritable page (`unread` lets the host fault there).
        if !super::access_ok(a[1], a[2]) {
            return Err(Errno::EFAULT);
        }
        let n = a[2].min(super::MAX_RW_COUNT);
        return unread::read(
            t,
            &[(a[1], n)],
            false,
            |p, len| host_wait_on!(w, fd, POLLIN, false, SYS_read, fd as u64, p, len),
            |iov| unread::take_at_position(fd, iov, 0),
        );
    }
    let (p, n) = super::io_prefix_from(t, fd, a[1], a[2])?;
    host_wait_on!(w, fd, POLLIN, false, SYS_read, fd as u64, p, n)
}

pub(crate) fn sys_write(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    if let Some(r) = proc_mem(t, fd, a[1], a[2], None, true) {
        return r;
    }
    let (p, n) = io_prefix(t, a[1], a[2], Access::Read)?;
    host_wait_on!(
        Waiter::of(t),
        fd,
        POLLOUT,
        false,
        SYS_write,
        fd as u64,
        p,
        n
    )
}

pub(crate) fn sys_pread64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(r) = proc_mem(t, fd, a[1], a[2], Some(a[3]), false) {
        return r;
    }
    crate::proc_refresh::before_read(t, fd, Some(a[3]));
    let (p, n) = io_prefix(t, a[1], a[2], Access::Write)?;
    host!(SYS_pread64, fd as u64, p, n, a[3])
}

pub(crate) fn sys_pwrite64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(r) = proc_mem(t, fd, a[1], a[2], Some(a[3]), true) {
        return r;
    }
    let (p, n) = io_prefix(t, a[1], a[2], Access::Read)?;
    host!(SYS_pwrite64, fd as u64, p, n, a[3])
}

/// readv/writev/preadv/pwritev/preadv2/pwritev2: the iovec array is rebuilt on the host side.
fn vectored(t: &mut Thread, nr: i64, a: [u64; 6], access: Access) -> SysResult {
    let fd = fd_arg(a[0])?;
    // Reads at the current position (readv; preadv2 with offset -1) of a pipe or stream
    // socket wait and take separately (`unread`); positioned reads of them fail with ESPIPE.
    let at_position = nr == SYS_readv || (nr == SYS_preadv2 && a[3] == u64::MAX);
    // Reads and writes at a position never wait (pipes and sockets refuse them: ESPIPE).
    let w = Waiter::of(t);
    let events = if access == Access::Write {
        POLLIN
    } else {
        POLLOUT
    };
    let nowait = matches!(nr, SYS_preadv2 | SYS_pwritev2) && a[5] & RWF_NOWAIT as u64 != 0;
    if crate::procfs::is_mem_fd(t, fd) {
        let pos = match nr {
            SYS_preadv | SYS_pwritev => Some(a[3]),
            SYS_preadv2 | SYS_pwritev2 if a[3] != u64::MAX => Some(a[3]),
            _ => None,
        };
        return proc_mem_vectored(t, fd, a, pos, access == Access::Read);
    }
    if access == Access::Write {
        let pos = match nr {
            SYS_preadv => Some(a[3]),
            SYS_preadv2 if a[3] != u64::MAX => Some(a[3]),
            _ => None,
        };
        crate::proc_refresh::before_read(t, fd, pos);
    }
    if access == Access::Write && at_position && unread::applies(t, fd) {
        let segs = read_segments(t, a[1], a[2])?;
        if segs.iter().any(|s| s.1 > 0) {
            let rwf = if nr == SYS_preadv2 { a[5] } else { 0 };
            return unread::read(
                t,
                &segs,
                false,
                |p, len| {
                    let v = [iovec {
                        iov_base: p.as_ptr().cast::<c_void>(),
                        iov_len: len as usize,
                    }];
                    let v = HostPtr::of(&v[..]);
                    host_wait_on!(w, fd, events, nowait, nr, fd as u64, v, 1u64, a[3], a[4], a[5])
                },
                |iov| unread::take_at_position(fd, iov, rwf),
            );
        }
    }
    let v = iovecs(t, a[1], a[2], access)?;
    host_wait_on!(
        w,
        fd,
        events,
        nowait,
        nr,
        fd as u64,
        HostPtr::of(&v[..]),
        v.len() as u64,
        a[3],
        a[4],
        a[5]
    )
}

pub(crate) fn sys_readv(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_readv, a, Access::Write)
}
pub(crate) fn sys_writev(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_writev, a, Access::Read)
}
pub(crate) fn sys_preadv(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_preadv, a, Access::Write)
}
pub(crate) fn sys_pwritev(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_pwritev, a, Access::Read)
}
pub(crate) fn sys_preadv2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_preadv2, a, Access::Write)
}
pub(crate) fn sys_pwritev2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    vectored(t, SYS_pwritev2, a, Access::Read)
}

pub(crate) fn sys_lseek(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    host!(SYS_lseek, fd as u64, a[1], a[2] as u32 as u64)
}

/// An in/out `loff_t *` argument (sendfile, splice, copy_file_range).
fn off_ptr(t: &Thread, addr: u64) -> Result<HostPtr<'static>, Errno> {
    opt_buf(t, addr, 8, Access::Write)
}

/// A transfer between two descriptors that sleeps while `fin` has nothing to read or `fout`
/// no room (splice, tee, sendfile on pipes and sockets), through `waitcall`: when a signal was
/// recorded before it began, it is still made if it would not sleep (SPLICE_F_NONBLOCK or a
/// non-blocking descriptor), and otherwise, when both ends are ready now, made in its
/// non-waiting form (`nowait`), whose EAGAIN becomes EINTR, as Linux looks for signals only
/// before it sleeps (fs/splice.c splice_pipe_to_pipe / wait_for_space, fs/pipe.c): making the
/// waiting call after the readiness test would sleep with the signal recorded if another
/// thread took the data or the room in between.
fn transfer_wait(
    t: &Thread,
    fin: i32,
    fout: i32,
    nonblocking: bool,
    nr: i64,
    args: [crate::hostcall::Arg<'_>; 6],
    nowait: impl FnOnce() -> Option<SysResult>,
) -> SysResult {
    use crate::waitcall::{fd_nonblocking, fd_ready};
    Waiter::of(t).call_or_skip(nr, args).unwrap_or_else(|| {
        if nonblocking || fd_nonblocking(fin) || fd_nonblocking(fout) {
            return crate::hostcall::call(nr, args);
        }
        if !(fd_ready(fin, POLLIN) && fd_ready(fout, POLLOUT)) {
            return Err(Errno::EINTR);
        }
        match nowait() {
            Some(Err(Errno::EAGAIN)) => Err(Errno::EINTR),
            Some(r) => r,
            None => crate::waitcall::poke::call(nr, args),
        }
    })
}

/// Whether `fd` is a pipe or FIFO.
fn is_pipe(fd: i32) -> bool {
    // SAFETY: a zeroed stat is a valid out-parameter; fstat fills it or fails.
    let mut st: stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is ours.
    unsafe { fstat(fd, &mut st) == 0 && st.st_mode & S_IFMT == S_IFIFO }
}

/// /proc/PID/mem descriptors have no splice_read or splice_write (fs/proc/base.c,
/// proc_mem_operations), so sendfile, splice and copy_file_range refuse them with EINVAL
/// (fs/splice.c); the host's file would reach cetbox's own memory.
fn no_proc_mem(t: &Thread, fds: &[i32]) -> Result<(), Errno> {
    if fds.iter().any(|&fd| crate::procfs::is_mem_fd(t, fd)) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub(crate) fn sys_sendfile(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let out = fd_arg(a[0])?;
    let inp = fd_arg(a[1])?;
    no_proc_mem(t, &[out, inp])?;
    let off = off_ptr(t, a[2])?;
    let args = crate::hostcall::args([
        (out as u64).into(),
        (inp as u64).into(),
        off.into(),
        a[3].into(),
    ]);
    // Into a pipe, sendfile is splice from the file into the pipe (fs/read_write.c
    // do_sendfile calls splice_file_to_pipe), whose non-waiting form is SPLICE_F_NONBLOCK.
    // Into a socket it has none (do_splice_direct takes no flags from the caller).
    let nowait = || {
        is_pipe(out).then(|| {
            let b = crate::hostcall::args([
                (inp as u64).into(),
                off.into(),
                (out as u64).into(),
                0u64.into(),
                a[3].into(),
                (SPLICE_F_NONBLOCK as u64).into(),
            ]);
            // The input's own wait (a socket's) ignores SPLICE_F_NONBLOCK: poked.
            crate::waitcall::poke::call(SYS_splice, b)
        })
    };
    transfer_wait(t, inp, out, false, SYS_sendfile, args, nowait)
}

pub(crate) fn sys_copy_file_range(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fin = fd_arg(a[0])?;
    let fout = fd_arg(a[2])?;
    no_proc_mem(t, &[fin, fout])?;
    let oin = off_ptr(t, a[1])?;
    let oout = off_ptr(t, a[3])?;
    host!(
        SYS_copy_file_range,
        fin as u64,
        oin,
        fout as u64,
        oout,
        a[4],
        a[5]
    )
}

pub(crate) fn sys_splice(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fin = fd_arg(a[0])?;
    let fout = fd_arg(a[2])?;
    no_proc_mem(t, &[fin, fout])?;
    let oin = off_ptr(t, a[1])?;
    let oout = off_ptr(t, a[3])?;
    let args = crate::hostcall::args([
        (fin as u64).into(),
        oin.into(),
        (fout as u64).into(),
        oout.into(),
        a[4].into(),
        a[5].into(),
    ]);
    let nonblocking = a[5] as u32 & SPLICE_F_NONBLOCK != 0;
    let nowait = || {
        let mut b = args;
        b[5] = (a[5] | SPLICE_F_NONBLOCK as u64).into();
        // SPLICE_F_NONBLOCK covers the pipe ends only: a socket end waits by its own file's
        // O_NONBLOCK (net/ipv4/tcp.c tcp_splice_read, fs/splice.c splice_to_socket), so the
        // call is poked (waitcall/poke.rs).
        Some(crate::waitcall::poke::call(SYS_splice, b))
    };
    transfer_wait(t, fin, fout, nonblocking, SYS_splice, args, nowait)
}

pub(crate) fn sys_tee(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fin = fd_arg(a[0])?;
    let fout = fd_arg(a[1])?;
    let args = crate::hostcall::args([
        (fin as u64).into(),
        (fout as u64).into(),
        a[2].into(),
        a[3].into(),
    ]);
    let nonblocking = a[3] as u32 & SPLICE_F_NONBLOCK != 0;
    let nowait = || {
        let mut b = args;
        b[3] = (a[3] | SPLICE_F_NONBLOCK as u64).into();
        Some(crate::hostcall::call(SYS_tee, b))
    };
    transfer_wait(t, fin, fout, nonblocking, SYS_tee, args, nowait)
}

/// vmsplice: the pages are copied into the pipe by the host (SPLICE_F_GIFT is only a hint), so
/// checking the iovecs is enough.
pub(crate) fn sys_vmsplice(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])?;
    // The direction depends on the pipe end: into a pipe the host reads guest memory, out of
    // one it writes guest memory.
    let fl = host!(SYS_fcntl, fd as u64, F_GETFL as u64)?;
    let access = if fl as i32 & O_ACCMODE == O_WRONLY {
        Access::Read
    } else {
        Access::Write
    };
    let v = iovecs(t, a[1], a[2], access)?;
    host!(
        SYS_vmsplice,
        fd as u64,
        HostPtr::of(&v[..]),
        v.len() as u64,
        a[3]
    )
}

/// Calls whose only descriptor is the first argument and whose other arguments are integers.
fn fd_first(nr: i64) -> impl Fn(&mut Thread, [u64; 6]) -> SysResult {
    move |_t, a| {
        let fd = fd_arg(a[0])?;
        host!(nr, fd as u64, a[1], a[2], a[3], a[4], a[5])
    }
}

pub(crate) fn sys_fsync(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_fsync)(t, a)
}
pub(crate) fn sys_fdatasync(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_fdatasync)(t, a)
}
pub(crate) fn sys_syncfs(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_syncfs)(t, a)
}
pub(crate) fn sys_sync(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    host!(SYS_sync)
}
pub(crate) fn sys_fallocate(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let r = fd_first(SYS_fallocate)(t, a);
    if r.is_ok() {
        file_resized(t, a[0]);
    }
    r
}
pub(crate) fn sys_ftruncate(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let r = fd_first(SYS_ftruncate)(t, a);
    if r.is_ok() {
        file_resized(t, a[0]);
    }
    r
}

/// After the guest changed the size of the file behind `fd`: its mappings' past-end-of-file
/// pages follow the new size (`AddressSpace::file_resized`).
fn file_resized(t: &Thread, fd: u64) {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only `st`; a bad descriptor fails without effect.
    if unsafe { libc::fstat(fd as i32, &mut st) } == 0 {
        t.mem()
            .file_resized(st.st_dev, st.st_ino, st.st_size.max(0) as u64);
    }
}
pub(crate) fn sys_readahead(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_readahead)(t, a)
}
pub(crate) fn sys_fadvise64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_fadvise64)(t, a)
}
pub(crate) fn sys_sync_file_range(t: &mut Thread, a: [u64; 6]) -> SysResult {
    fd_first(SYS_sync_file_range)(t, a)
}
pub(crate) fn sys_flock(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let fd = fd_arg(a[0])? as u64;
    let op = a[1] as u32 as u64;
    if op & LOCK_NB as u64 != 0 {
        return host!(SYS_flock, fd, op);
    }
    // A signal recorded before the call: Linux answers it only if the lock would wait, so
    // the non-blocking form decides (flock_lock_inode_wait).
    Waiter::of(t)
        .call_or_skip(SYS_flock, crate::hostcall::args([fd.into(), op.into()]))
        .unwrap_or_else(|| match host!(SYS_flock, fd, op | LOCK_NB as u64) {
            Err(Errno::EAGAIN) => Err(Errno::EINTR),
            r => r,
        })
}
