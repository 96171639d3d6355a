//! Faulting guest pages in on the host before cetbox touches them, with the semantics of the
//! access Linux would make there.
//!
//! A guest page may be missing on the host (never touched, or dropped by MADV_DONTNEED) and
//! registered with a guest userfaultfd: the first host access then blocks in the host kernel
//! until a guest thread resolves the fault. Two things follow:
//!
//! - cetbox must not hold the mapping lock while such an access blocks (the guest resolver's
//!   own mapping calls and UFFDIO_COPY need it), so accesses made under the lock fault their
//!   pages in first, outside it;
//! - an access Linux makes *in the kernel* (copy_to_user and copy_from_user in a syscall
//!   cetbox answers itself: rt_sigprocmask's old set, uname, clock_gettime, ...) must fail
//!   with EFAULT instead of blocking when the descriptor was created with
//!   UFFD_USER_MODE_ONLY (fs/userfaultfd.c handle_userfault: a fault without
//!   FAULT_FLAG_USER is refused). MADV_POPULATE_READ/WRITE fault pages in exactly as the
//!   kernel's own accesses do (through get_user_pages, not as a user fault), so they block or
//!   fail just as copy_to_user would. While a thread runs a syscall handler it is in
//!   [`KernelAccess`] mode, and the checked accessors of `AddressSpace` fault missing pages in
//!   that way first.

use crate::pagetable::{page, PageTable, PAGE_SIZE, USER_LIMIT};
use crate::{page_ceil, page_floor};
use std::cell::Cell;

thread_local! {
    static KERNEL: Cell<bool> = const { Cell::new(false) };
}

/// While alive, this thread's guest-memory accesses are the kernel's (a syscall handler's).
pub struct KernelAccess {
    was: bool,
}

impl KernelAccess {
    pub fn enter() -> KernelAccess {
        KernelAccess {
            was: KERNEL.with(|k| k.replace(true)),
        }
    }
}

impl Drop for KernelAccess {
    fn drop(&mut self) {
        let was = self.was;
        KERNEL.with(|k| k.set(was));
    }
}

/// Whether this thread's accesses are currently the kernel's.
pub fn in_kernel() -> bool {
    KERNEL.with(|k| k.get())
}

/// Which fault the kernel's access would take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Prefault {
    Read,
    Write,
}

/// Faults in, as the kernel's access would and outside the mapping lock, the pages of
/// [addr, addr + len) the host has not populated yet: a page of a guest's userfaultfd range
/// then blocks until a guest thread resolves it, or fails under UFFD_USER_MODE_ONLY. Returns
/// how many bytes from `addr` may be accessed: all of them, or up to the first page that
/// could not be faulted in. One mincore call finds the pages to fault in (usually none).
pub fn prefault(pt: &PageTable, addr: u64, len: usize, kind: Prefault) -> usize {
    if len == 0 || addr.checked_add(len as u64).is_none_or(|e| e > USER_LIMIT) {
        return len; // the page-table check refuses it
    }
    let first = page_floor(addr);
    let pages = (page_ceil(addr + len as u64) - first) / PAGE_SIZE;
    let mut resident = vec![0u8; pages as usize];
    // SAFETY: mincore writes one byte per page of the range into `resident`, which has one per
    // page; a range with unmapped pages fails with ENOMEM and then the page-table check
    // decides.
    let r = unsafe {
        libc::mincore(
            first as *mut libc::c_void,
            (pages * PAGE_SIZE) as usize,
            resident.as_mut_ptr(),
        )
    };
    if r != 0 {
        return len;
    }
    // MADV_POPULATE_READ (22) / MADV_POPULATE_WRITE (23), Linux 5.14: the fault the kernel's
    // copy would take, without the access itself (so nothing lands before a locked check).
    let advice = match kind {
        Prefault::Read => 22,
        Prefault::Write => 23,
    };
    for (i, _) in resident.iter().enumerate().filter(|(_, r)| *r & 1 == 0) {
        let pg = first + i as u64 * PAGE_SIZE;
        // SAFETY: populating page tables of one page of our own address space changes no
        // memory contents.
        let w = unsafe { libc::madvise(pg as *mut libc::c_void, PAGE_SIZE as usize, advice) };
        // EINVAL is also what a kernel without MADV_POPULATE_* says, but it is what a page
        // made inaccessible meanwhile gets too (a guest unmap of a userfaultfd range while the
        // fault was pending, see `AddressSpace::unmap`): the page table tells them apart.
        let err = std::io::Error::last_os_error().raw_os_error();
        if w != 0 && (err != Some(libc::EINVAL) || pt.get(pg) & page::MAPPED == 0) {
            return pg.saturating_sub(addr) as usize;
        }
    }
    len
}

/// Faults in, as a user-mode write of a guest instruction would, the writable pages of
/// [addr, addr + len), outside the mapping lock (a guest store that follows under the lock
/// then cannot block there). The touch adds 0 to one byte per page atomically, so it changes
/// nothing, whoever writes the page meanwhile.
pub fn touch_for_write(pt: &PageTable, addr: u64, len: usize) {
    if len == 0 || addr.checked_add(len as u64).is_none_or(|e| e > USER_LIMIT) {
        return;
    }
    let mut p = addr;
    while p < addr + len as u64 {
        let bits = pt.get(p);
        if bits & (page::WRITE | page::BEYOND_EOF | page::MAPPED) == page::WRITE | page::MAPPED {
            // SAFETY: the page is writable guest memory, which the host maps read-write (a
            // racing unmap leaves scrubbed read-write or recoverable pages, see
            // `AddressSpace::unmap`); adding 0 atomically leaves the byte's value unchanged.
            unsafe {
                (*(p as *const std::sync::atomic::AtomicU8))
                    .fetch_add(0, std::sync::atomic::Ordering::Relaxed);
            }
        }
        p = page_floor(p) + PAGE_SIZE;
    }
}

// A guest access's first touch of a page of a userfaultfd range, made as a probe that may
// fail instead of as the access itself. The probe blocks in the host kernel like the access
// would (a user-mode fault: the resolver sees a read or write fault at the page); if another
// guest thread unmaps the page meanwhile, the retried fault hits the inaccessible host page
// `AddressSpace::unmap` left there, and the host SIGSEGV handler moves the probe to its
// failure exit (`probe_fixup`), so the access then faults in the page-table check, before the
// instruction changed anything: Linux's retried fault finds no VMA and raises SIGSEGV with
// RIP at the instruction (arch/x86/mm/fault.c), which a returning handler re-executes.
std::arch::global_asm!(
    ".pushsection .text.cetbox_probe,\"ax\",@progbits",
    ".globl cetbox_probe_read",
    ".type cetbox_probe_read,@function",
    "cetbox_probe_read:",
    ".globl cetbox_probe_read_insn",
    "cetbox_probe_read_insn:",
    "mov al, byte ptr [rdi]",
    "xor eax, eax",
    "ret",
    ".globl cetbox_probe_write",
    ".type cetbox_probe_write,@function",
    "cetbox_probe_write:",
    ".globl cetbox_probe_write_insn",
    "cetbox_probe_write_insn:",
    "lock add byte ptr [rdi], 0",
    "xor eax, eax",
    "ret",
    ".globl cetbox_probe_fail",
    "cetbox_probe_fail:",
    "mov eax, 1",
    "ret",
    ".popsection",
);

extern "C" {
    fn cetbox_probe_read(addr: u64) -> u32;
    fn cetbox_probe_write(addr: u64) -> u32;
    static cetbox_probe_read_insn: u8;
    static cetbox_probe_write_insn: u8;
    static cetbox_probe_fail: u8;
}

/// Touches the byte at `addr` as a user-mode read or write (adding 0 atomically) would;
/// false if the host fault handler found the page gone (see above).
///
/// # Safety
///
/// `addr` must be guest memory the page table allows the access to (the host maps it
/// read-write, see `AddressSpace::map`), or such memory that another guest thread may be
/// unmapping meanwhile (which leaves the host page inaccessible and marked).
pub(crate) unsafe fn probe(addr: u64, write: bool) -> bool {
    // SAFETY: per the caller; the stubs touch one byte and clobber only rax.
    unsafe {
        if write {
            cetbox_probe_write(addr) == 0
        } else {
            cetbox_probe_read(addr) == 0
        }
    }
}

/// For the host SIGSEGV handler: if `rip` is a probe's access, where it resumes instead
/// (the probe then reports failure).
pub fn probe_fixup(rip: u64) -> Option<u64> {
    let read = std::ptr::addr_of!(cetbox_probe_read_insn) as u64;
    let write = std::ptr::addr_of!(cetbox_probe_write_insn) as u64;
    (rip == read || rip == write).then_some(std::ptr::addr_of!(cetbox_probe_fail) as u64)
}
