//! userfaultfd(2) and its ioctls (Documentation/admin-guide/mm/userfaultfd.rst,
//! fs/userfaultfd.c).
//!
//! A guest's userfaultfd is a host userfaultfd registered on the same range: guest memory is
//! host memory at the same addresses, and every guest access to it — ordinary loads and stores,
//! the shadow-stack unit's pushes and pops (CALL/RET), WRSS, INCSSP's reads, the kernel side's
//! signal tokens — is cetbox reading or writing that host memory. So a missing page faults in
//! the host kernel, which blocks the cetbox thread doing the access and queues the event on
//! the guest's descriptor, until a guest thread resolves it with UFFDIO_COPY or
//! UFFDIO_ZEROPAGE; then the access completes, exactly where the guest instruction was. Host
//! syscalls made for the guest fault the same way inside the host kernel (or fail EFAULT under
//! UFFD_USER_MODE_ONLY, as for the guest on Linux). The event's address is the guest address
//! and its thread id (UFFD_FEATURE_THREAD_ID) the guest tid, since both are the host's.
//!
//! What cetbox checks: ranges a request names (registered, unregistered, filled, woken) must
//! lie entirely in guest mappings, so a guest can never make cetbox's own memory fault; the
//! copy source must be readable guest memory; each request's struct is checked for the bytes
//! the kernel reads and writes. UFFD_FEATURE_SIGBUS is refused (EINVAL): it would send SIGBUS
//! to cetbox itself rather than fault the guest access. UFFDIO_MOVE is refused too (it moves
//! pages out of ranges cetbox tracks). Permissions: the host kernel decides, as for a native
//! process of the same user (root, CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1, or
//! UFFD_USER_MODE_ONLY).
//!
//! Pages filled by UFFDIO_COPY or UFFDIO_ZEROPAGE need nothing in cetbox's page table: a page
//! keeps its type (a shadow-stack page stays one, as Linux installs a shadow-stack PTE in a
//! shadow-stack VMA), and the POPULATED bit is set by the first guest access, as before.
//! cetbox never touches guest pages ahead of the guest (mappings are not pre-faulted;
//! MADV_DONTNEED drops the host pages), so missing-page faults happen exactly where Linux has
//! them.

use super::fs::{buf, fd_arg, host};
use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::{Access, PAGE_SIZE, USER_LIMIT};

const UFFD_USER_MODE_ONLY: u64 = 1;
const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;

/// ioctl numbers: _IOC(dir, 0xAA, nr, size).
const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | (0xAA << 8) | nr
}
const RW: u32 = 3;
const R: u32 = 2;
const UFFDIO_API: u32 = ioc(RW, 0x3F, 24);
const UFFDIO_REGISTER: u32 = ioc(RW, 0x00, 32);
const UFFDIO_UNREGISTER: u32 = ioc(R, 0x01, 16);
const UFFDIO_WAKE: u32 = ioc(R, 0x02, 16);
const UFFDIO_COPY: u32 = ioc(RW, 0x03, 40);
const UFFDIO_ZEROPAGE: u32 = ioc(RW, 0x04, 32);
const UFFDIO_MOVE: u32 = ioc(RW, 0x05, 48);
const UFFDIO_WRITEPROTECT: u32 = ioc(RW, 0x06, 24);
const UFFDIO_CONTINUE: u32 = ioc(RW, 0x07, 32);
const UFFDIO_POISON: u32 = ioc(RW, 0x08, 32);

pub(crate) fn sys_userfaultfd(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    let flags = a[0] & 0xffff_ffff;
    let allowed = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64 | UFFD_USER_MODE_ONLY;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    host!(libc::SYS_userfaultfd, flags)
}

/// Whether `fd` is a userfaultfd (its anon inode's name).
fn is_uffd(fd: i32) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|p| p.as_os_str() == "anon_inode:[userfaultfd]")
}

/// Whether [start, start + len) lies entirely in guest mappings.
fn guest_range(t: &Thread, start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    if len == 0 || end > USER_LIMIT {
        return false;
    }
    let mut at = start;
    for v in t.mem().vmas() {
        if v.end <= at {
            continue;
        }
        if v.start > at {
            return false;
        }
        at = v.end;
        if at >= end {
            return true;
        }
    }
    false
}

/// The kernel's validate_range: page-aligned start and length, nothing past TASK_SIZE.
fn aligned(start: u64, len: u64) -> Result<(), Errno> {
    if !start.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    if start.checked_add(len).is_none_or(|e| e > USER_LIMIT) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A userfaultfd ioctl on `fd`, or None when `fd` is not a userfaultfd or `req` not one of
/// its requests (the generic ioctl path handles those).
pub fn ioctl(t: &mut Thread, fd: i32, req: u32, arg: u64) -> Option<SysResult> {
    if (req >> 8) & 0xff != 0xAA || !is_uffd(fd) {
        return None;
    }
    Some(uffd_ioctl(t, fd, req, arg))
}

fn uffd_ioctl(t: &mut Thread, fd: i32, req: u32, arg: u64) -> SysResult {
    let size = ((req >> 16) & 0x3fff) as u64;
    let q = |t: &Thread, i: u64| t.mem().read_u64(arg + 8 * i).map_err(|_| Errno::EFAULT);
    match req {
        UFFDIO_API => {
            buf(t, arg, size, Access::Write)?;
            if q(t, 1)? & UFFD_FEATURE_SIGBUS != 0 {
                return Err(Errno::EINVAL);
            }
        }
        UFFDIO_REGISTER | UFFDIO_UNREGISTER | UFFDIO_WAKE => {
            let access = if req == UFFDIO_REGISTER {
                Access::Write
            } else {
                Access::Read
            };
            buf(t, arg, size, access)?;
            let (start, len) = (q(t, 0)?, q(t, 1)?);
            aligned(start, len)?;
            if !guest_range(t, start, len) {
                return Err(Errno::EINVAL);
            }
        }
        UFFDIO_COPY => {
            buf(t, arg, size, Access::Write)?;
            let (dst, src, len) = (q(t, 0)?, q(t, 1)?, q(t, 2)?);
            aligned(dst, len)?;
            if !guest_range(t, dst, len) {
                return Err(Errno::ENOENT);
            }
            // The kernel reads the source with copy_from_user.
            buf(t, src, len, Access::Read)?;
        }
        UFFDIO_ZEROPAGE | UFFDIO_CONTINUE | UFFDIO_POISON | UFFDIO_WRITEPROTECT => {
            buf(t, arg, size, Access::Write)?;
            let (start, len) = (q(t, 0)?, q(t, 1)?);
            aligned(start, len)?;
            if !guest_range(t, start, len) {
                return Err(Errno::ENOENT);
            }
        }
        UFFDIO_MOVE => return Err(Errno::EINVAL),
        _ => return Err(Errno::EINVAL),
    }
    let fd = fd_arg(fd as u64)?;
    // `arg` was checked above for the access each request makes; the host reads the request
    // there and writes its results (`ioctls`, `copy`, `zeropage`, ...) into it directly.
    host!(libc::SYS_ioctl, fd as u64, req as u64, arg)
}
