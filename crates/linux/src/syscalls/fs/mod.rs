//! File-system, descriptor, I/O, polling and socket syscalls.
//!
//! Guest file descriptors are host file descriptors and guest paths are host paths, and the
//! guest address space is identity-mapped, so most calls check every guest pointer and length
//! against the guest page table and then hand the same pointers to the host kernel. The work
//! here is in those checks, in the few places where the guest must see its own view instead of
//! cetbox's (/proc/self), and in keeping the guest away from descriptors cetbox opens for itself
//! (see [`register_private_fd`]).

#![allow(non_upper_case_globals)]

use crate::errno::Errno;
pub(crate) use crate::hostcall::host;
use crate::hostcall::HostPtr;
use crate::process::Thread;
use cetbox_mem::{page_floor, Access, PAGE_SIZE};
use std::ffi::CString;

pub(crate) mod dir;
pub(crate) mod fd;
mod fifo_open;
pub(crate) mod io;
pub(crate) mod ioctl;
pub(crate) mod net;
pub(crate) mod path;
pub(crate) mod poll;
mod resolve;
pub(crate) mod stat;
pub(crate) mod unread;

pub use crate::abi::TASK_SIZE as TASK_SIZE_MAX;
/// Linux clamps one read/write to this many bytes.
pub const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Longest path Linux accepts, NUL included.
pub const PATH_MAX: usize = 4096;
pub const AT_FDCWD: i32 = -100;

pub use crate::private_fds::{
    is_private, make_private_fd, private_fds, register_private_fd, unregister_private_fd,
};

/// A descriptor argument: Linux takes `int`/`unsigned int`, so the upper 32 bits are ignored.
pub fn fd_arg(raw: u64) -> Result<i32, Errno> {
    let fd = raw as u32 as i32;
    if is_private(fd) {
        return Err(Errno::EBADF);
    }
    Ok(fd)
}

/// A `dirfd` argument of an *at() call: only consulted for relative paths.
pub fn dirfd_arg(raw: u64, path: &[u8]) -> Result<i32, Errno> {
    let fd = raw as u32 as i32;
    if fd != AT_FDCWD && path.first() != Some(&b'/') && is_private(fd) {
        return Err(Errno::EBADF);
    }
    Ok(fd)
}

// ---------------------------------------------------------------- guest memory

pub use crate::usermem::{access_ok, buf};

/// Checks a guest range like [`buf`] and returns its guest address, for the few host calls
/// that need the guest memory itself (a futex word is identified by its address).
pub fn guest_range(
    t: &Thread,
    addr: u64,
    len: u64,
    access: Access,
) -> Result<HostPtr<'static>, Errno> {
    if len != 0 {
        if !access_ok(addr, len) {
            return Err(Errno::EFAULT);
        }
        t.mem().check(addr, len, access)?;
    }
    Ok(HostPtr::checked(addr as *mut u8))
}

/// Like [`buf`] but a null pointer is allowed (returns null).
pub fn opt_buf(t: &Thread, addr: u64, len: u64, access: Access) -> Result<HostPtr<'static>, Errno> {
    if addr == 0 {
        Ok(HostPtr::NULL)
    } else {
        buf(t, addr, len, access)
    }
}

/// The length of the longest prefix of [addr, addr + len) that allows `access`. Linux copies
/// data until the first bad page and reports a short count, so reads and writes into partly
/// bad buffers pass only this prefix to the host.
pub fn valid_prefix(t: &Thread, addr: u64, len: u64, access: Access) -> u64 {
    if len == 0 || !access_ok(addr, 1) {
        return 0;
    }
    let len = len.min(TASK_SIZE_MAX - addr);
    let mut p = addr;
    let end = addr + len;
    while p < end {
        let page_end = (page_floor(p) + PAGE_SIZE).min(end);
        if t.mem().check(p, page_end - p, access).is_err() {
            break;
        }
        p = page_end;
    }
    p - addr
}

/// The length of the usable prefix of a data buffer for a read/write-like call. As Linux's
/// vfs_read/vfs_write, the *whole* requested range must pass `access_ok` first (EFAULT, nothing
/// transferred: `read(fd, buf, SIZE_MAX)` must not become a short read); then the count is
/// clamped to MAX_RW_COUNT and cut at the first bad page; EFAULT if not even the first byte
/// is usable.
pub fn io_len(t: &Thread, addr: u64, len: u64, access: Access) -> Result<u64, Errno> {
    if len == 0 {
        return Ok(0);
    }
    if !access_ok(addr, len) {
        return Err(Errno::EFAULT);
    }
    let n = valid_prefix(t, addr, len.min(MAX_RW_COUNT), access);
    if n == 0 {
        return Err(Errno::EFAULT);
    }
    Ok(n)
}

/// [`io_len`] plus the pointer to hand to the host: the guest buffer for a host read of
/// guest memory, a data bounce buffer (see `usermem`) for a host write into it.
pub fn io_prefix(
    t: &Thread,
    addr: u64,
    len: u64,
    access: Access,
) -> Result<(HostPtr<'static>, u64), Errno> {
    let n = io_len(t, addr, len, access)?;
    if access == Access::Write && n != 0 && crate::usermem::needed(t) {
        return Ok((crate::usermem::data_out(addr, n)?, n));
    }
    Ok((HostPtr::checked(addr as *mut u8), n))
}

/// [`io_prefix`] for a call that reads from `fd` into guest memory and consumes what it reads
/// (read, recv). Through a bounce buffer the host consumes the data before cetbox copies it
/// to the guest; if the copy then failed, the data would be lost, where Linux faults inside
/// its copy and leaves what it did not copy unread (a pipe read that copies nothing returns
/// EFAULT and the data stays in the pipe). So when `fd` has data already, the destination is
/// faulted in first, as the kernel's copy would fault it (a userfaultfd missing page blocks
/// here until resolved): the count is cut to the pages that could be faulted in, and EFAULT
/// comes before anything is consumed if none could. Pipes and stream sockets, whose data a
/// failed copy leaves unread on Linux, do not come here while other threads exist: they wait
/// and then take under the mapping lock (`unread`), so a destination unmapped while they wait
/// leaves the data in place. Only a userfaultfd makes a page fail to fault in while the page
/// table allows it, so processes without one skip this (no extra syscalls).
pub fn io_prefix_from(
    t: &Thread,
    fd: i32,
    addr: u64,
    len: u64,
) -> Result<(HostPtr<'static>, u64), Errno> {
    let n = io_len(t, addr, len, Access::Write)?;
    if n == 0 || !crate::usermem::needed(t) {
        return Ok((HostPtr::checked(addr as *mut u8), n));
    }
    if !t.mem().uffd_in_use() {
        return Ok((crate::usermem::data_out(addr, n)?, n));
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // One pollfd of our own, no timeout: is there data to consume already?
    let ready = host!(libc::SYS_poll, HostPtr::of_mut(&mut pfd), 1u64, 0u64) == Ok(1)
        && pfd.revents & libc::POLLIN != 0;
    let n = if ready {
        let ok = t.mem().fault_in_for_write(addr, n as usize) as u64;
        if ok == 0 {
            return Err(Errno::EFAULT);
        }
        ok
    } else {
        n
    };
    Ok((crate::usermem::data_out(addr, n)?, n))
}

/// Reads a guest path as the guest wrote it (EFAULT, ENAMETOOLONG as Linux's getname).
pub fn guest_path_arg(t: &Thread, addr: u64) -> Result<CString, Errno> {
    if !access_ok(addr, 1) {
        return Err(Errno::EFAULT);
    }
    match t.mem().read_cstr(addr, PATH_MAX)? {
        Some(v) => CString::new(v).map_err(|_| Errno::EINVAL),
        None => Err(Errno::ENAMETOOLONG),
    }
}

/// Reads a guest path and turns it into the host path to use: under `--sysroot`, an
/// absolute path is looked up in the sysroot first (crate::sysroot). The last component is
/// not followed if it is a symbolic link (calls that follow it use [`path_arg_follow`]).
pub fn path_arg(t: &Thread, addr: u64) -> Result<CString, Errno> {
    path_arg_follow(t, addr, false)
}

/// [`path_arg`] for a call that follows a symbolic link in the last component when `follow`.
pub fn path_arg_follow(t: &Thread, addr: u64, follow: bool) -> Result<CString, Errno> {
    let guest = guest_path_arg(t, addr)?;
    Ok(sysroot_path(t, guest, follow))
}

/// The host path for an already-read guest path (see [`path_arg`]).
pub fn sysroot_path(t: &Thread, guest: CString, follow: bool) -> CString {
    let Some(root) = t.proc.opts.sysroot.as_deref() else {
        return guest;
    };
    match crate::sysroot::map(root, guest.as_bytes(), follow) {
        Some(p) => {
            CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).unwrap_or(guest)
        }
        None => guest,
    }
}

/// Reads a guest NUL-terminated string of at most `max` bytes (xattr names, memfd names).
pub fn cstr_arg(t: &Thread, addr: u64, max: usize, too_long: Errno) -> Result<CString, Errno> {
    if !access_ok(addr, 1) {
        return Err(Errno::EFAULT);
    }
    match t.mem().read_cstr(addr, max)? {
        Some(v) => CString::new(v).map_err(|_| Errno::EINVAL),
        None => Err(too_long),
    }
}

/// Reads a plain-data value of type T from guest memory.
pub fn read_val<T: Copy>(t: &Thread, addr: u64) -> Result<T, Errno> {
    let p = buf(t, addr, std::mem::size_of::<T>() as u64, Access::Read)?;
    // SAFETY: the bytes are readable guest memory; read_unaligned copes with any alignment and
    // T is a plain-data kernel struct for which every bit pattern is valid.
    Ok(unsafe { std::ptr::read_unaligned(p.as_ptr() as *const T) })
}

/// The canonical `/proc/<pid>/...` name of what the guest path (relative to `dfd`) reaches,
/// when it is on procfs, however it is spelled (see `resolve`).
pub fn proc_name(dfd: i32, path: &[u8], follow: bool) -> Option<Vec<u8>> {
    resolve::proc_name(dfd, path, follow)
}

/// The target the guest sees for a /proc link the path reaches (its last component not
/// followed): `/proc/self`, `/proc/thread-self`, `/proc/<pid>/exe`.
pub fn proc_link(t: &Thread, dfd: i32, path: &[u8]) -> Option<Vec<u8>> {
    let name = proc_name(dfd, path, true)?;
    crate::procfs::readlink(t, &name)
}

// ---------------------------------------------------------------- dispatch
