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
//! What cetbox checks: a register or unregister range needs a guest mapping in it and may
//! have holes (the kernel's rule); the host registers only the guest mappings in it, so a
//! guest can never make cetbox's own memory fault. Ranges to fill must lie entirely in guest
//! mappings; a wake range is only validated, as the kernel does (nothing of cetbox's can wait
//! on a guest descriptor). The copy source must be readable guest memory; each request's
//! struct is checked for the bytes the kernel reads and writes.
//!
//! A page another guest thread unmaps while an access waits on it: Linux retries the fault
//! after the wake-up and finds no mapping (SIGSEGV, or EFAULT in a syscall). cetbox leaves
//! such pages inaccessible on the host (cetbox_mem's `unmap`). A guest access touches a page
//! it has not touched since it was mapped or discarded with a probe first, which the host
//! fault handler fails, so the access faults in the page-table check with RIP at the
//! instruction, as on Linux (cetbox_mem's `faultin::probe`); on a page counted as touched the
//! handler turns the retried access into that SIGSEGV, delivered at the end of the
//! interrupted instruction, which completed on a zero page. Accesses a syscall handler makes itself
//! fault pages in as the kernel would (cetbox_mem's `faultin`): they block until resolved, or
//! fail with EFAULT under UFFD_USER_MODE_ONLY. UFFD_FEATURE_SIGBUS is refused (EINVAL): it would send SIGBUS
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
use crate::hostcall::HostPtr;
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
    let runs = guest_runs(t, start, end);
    runs.len() == 1 && runs[0] == (start, end)
}

/// The parts of [start, end) inside guest mappings, adjacent mappings merged into one run.
fn guest_runs(t: &Thread, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for v in t.mem().vmas() {
        if v.end <= start || v.start >= end {
            continue;
        }
        let (s, e) = (v.start.max(start), v.end.min(end));
        match runs.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => runs.push((s, e)),
        }
    }
    runs
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
        UFFDIO_REGISTER | UFFDIO_UNREGISTER => {
            let access = if req == UFFDIO_REGISTER {
                Access::Write
            } else {
                Access::Read
            };
            buf(t, arg, size, access)?;
            let (start, len) = (q(t, 0)?, q(t, 1)?);
            aligned(start, len)?;
            return register(t, fd, req, arg, start, start + len);
        }
        UFFDIO_WAKE => {
            // The kernel only validates the range (userfaultfd_wake): waking where no guest
            // thread waits, or where nothing is mapped, does nothing and succeeds. Only guest
            // ranges are ever registered, so no cetbox access can be waiting on this
            // descriptor outside them.
            buf(t, arg, size, Access::Read)?;
            aligned(q(t, 0)?, q(t, 1)?)?;
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

/// UFFDIO_REGISTER / UFFDIO_UNREGISTER of [start, end), as fs/userfaultfd.c
/// (userfaultfd_register, userfaultfd_unregister) does it: the range needs at least one
/// mapping in it (else EINVAL) and may have holes between mappings; every mapping in it must
/// suit userfaultfd. The host registers each run of guest mappings separately, so the
/// reservation and unmapped (scrubbed) memory in the holes, which are host mappings cetbox
/// owns, are never registered. The `ioctls` the guest reads back are those every run allows
/// (a run of hugetlb pages allows only the basic set, as the kernel reports for the range).
///
/// The kernel checks every mapping of the range before it changes any (userfaultfd_register's
/// first loop: vma_can_userfault, a mapping registered to another descriptor is EBUSY), so a
/// refused request changes nothing, and the parts registered before keep their registration
/// and mode. When a later run is refused here, the runs already registered by this request
/// are put back as they were: unregistered, then the parts that were registered before
/// (the host's own record of them, smaps' `um`/`uw`/`ui` flags, read before the request)
/// registered again with their old modes.
fn register(t: &mut Thread, fd: i32, req: u32, arg: u64, start: u64, end: u64) -> SysResult {
    let runs = guest_runs(t, start, end);
    if runs.is_empty() {
        return Err(Errno::EINVAL);
    }
    let hfd = fd_arg(fd as u64)? as u64;
    // struct uffdio_register { range { start, len }, mode, ioctls } / struct uffdio_range.
    let mode = if req == UFFDIO_REGISTER {
        t.mem().read_u64(arg + 16).map_err(|_| Errno::EFAULT)?
    } else {
        0
    };
    // A single run is registered by one host request, which changes nothing if refused.
    let before = if req == UFFDIO_REGISTER && runs.len() > 1 {
        host_uffd_modes(start, end)
    } else {
        Vec::new()
    };
    // Translated code remembers readable pages for the rest of an entry only while no
    // userfaultfd is in use (a thread blocked in a host fault on a registered page is not
    // waited for by a shootdown: cetbox_mem's `remembered`); the first registration makes
    // the other threads leave translated code, so they enter again without remembering.
    let first_use = req == UFFDIO_REGISTER && !t.mem().uffd_in_use();
    let mut ioctls = u64::MAX;
    let mut done: Vec<(u64, u64)> = Vec::new();
    for &(s, e) in &runs {
        let mut r = [s, e - s, mode, 0u64];
        // `r` is our own struct of the size the request names (its ioctl number encodes 32
        // or 16 bytes); [s, e) is guest memory.
        let res = host!(libc::SYS_ioctl, hfd, req as u64, HostPtr::of_mut(&mut r));
        if let Err(err) = res {
            if req == UFFDIO_REGISTER {
                restore(t, hfd, &done, &before);
            }
            return Err(err);
        }
        ioctls &= r[3];
        done.push((s, e));
        t.mem().uffd_registered(s, e, req == UFFDIO_REGISTER);
    }
    if first_use && t.mem().uffd_in_use() {
        crate::thread_group::shootdown(t);
    }
    if req == UFFDIO_REGISTER {
        t.mem()
            .write_bytes(arg + 24, &ioctls.to_le_bytes())
            .map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}

/// Puts the runs `done` back as `before` describes them: unregistered, then the pieces that
/// were registered registered again with their modes.
fn restore(t: &Thread, hfd: u64, done: &[(u64, u64)], before: &[(u64, u64, u64)]) {
    for &(ds, de) in done {
        let mut u = [ds, de - ds];
        let _ = host!(
            libc::SYS_ioctl,
            hfd,
            UFFDIO_UNREGISTER as u64,
            HostPtr::of_mut(&mut u)
        );
        t.mem().uffd_registered(ds, de, false);
        for &(bs, be, mode) in before {
            let (s, e) = (bs.max(ds), be.min(de));
            if s >= e {
                continue;
            }
            let mut r = [s, e - s, mode, 0u64];
            if host!(
                libc::SYS_ioctl,
                hfd,
                UFFDIO_REGISTER as u64,
                HostPtr::of_mut(&mut r)
            )
            .is_ok()
            {
                t.mem().uffd_registered(s, e, true);
            }
        }
    }
}

/// The userfaultfd registrations of the host mappings in [start, end), as (start, end, mode)
/// with UFFDIO_REGISTER_MODE_* bits, from the VmFlags of /proc/self/smaps (`um` missing, `uw`
/// write-protect, `ui` minor: fs/proc/task_mmu.c, show_smap_vma_flags).
fn host_uffd_modes(start: u64, end: u64) -> Vec<(u64, u64, u64)> {
    let text = {
        let _hold = cetbox_mem::transient::hold();
        std::fs::read_to_string("/proc/self/smaps")
    };
    let Ok(text) = text else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur: Option<(u64, u64)> = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            let Some((s, e)) = cur.take() else { continue };
            let mode = flags.split_whitespace().fold(0u64, |m, f| match f {
                "um" => m | 1,
                "uw" => m | 2,
                "ui" => m | 4,
                _ => m,
            });
            let (s, e) = (s.max(start), e.min(end));
            if mode != 0 && s < e {
                out.push((s, e, mode));
            }
        } else if let Some((range, _)) = line.split_once(' ') {
            // A mapping's first line: "start-end perms offset dev inode path".
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                    cur = Some((a, b));
                }
            }
        }
    }
    out
}
