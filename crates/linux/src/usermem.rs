//! Guest memory that the host kernel writes on the guest's behalf goes through bounce buffers.
//!
//! Guest memory is host memory at the same address, so handing a checked guest pointer to a
//! host syscall would let the host kernel write wherever the pointer leads *when it writes*,
//! not when cetbox checked it. Another guest thread can meanwhile unmap the buffer and put a
//! shadow stack there (map_shadow_stack), or make it read-only; Linux's own copy_to_user then
//! faults (EFAULT), but a host write would land, forging shadow-stack contents. So a host
//! call never receives a pointer to guest memory it may write:
//!
//! - every output buffer is a *region* here: host memory the host call writes, registered
//!   in a per-thread list with the guest address it stands for;
//! - when the syscall returns, [`finish`] copies the regions into guest memory with
//!   [`AddressSpace::copy_out`], which checks each page again *under the mapping lock* (so
//!   no mapping can change between that check and the copy), exactly as the kernel's
//!   copy_to_user respects the page type at the moment of the write.
//!
//! Two kinds of region exist. A *data* region (read, recv, readv, getdents64, getrandom)
//! receives a byte stream: the syscall's result says how many bytes, spread over the data
//! regions in the order they were registered; if the guest cannot take them all, the result
//! becomes the count copied, or EFAULT if none was (Linux: a short count, or EFAULT when
//! nothing was transferred). A *struct* region (stat buffers, timespecs, poll arrays, ...)
//! starts as a snapshot of the guest bytes (the host may read them as input); afterwards only
//! the bytes the host changed are copied back, so an output the host did not produce (a
//! failed call) writes nothing. Host *reads* of guest memory (write, send) need no bounce:
//! every guest mapping is readable host memory, so a racing unmap cannot harm cetbox.
//!
//! Buffers are reused per thread (up to [`KEEP`] bytes) so a pipe or socket transfer costs
//! one extra memcpy per call and no allocation. A process with a single guest thread needs
//! none of this (no other thread can change its mappings while it is in a host call: see
//! [`needed`]), so its transfers stay zero-copy.
//!
//! [`AddressSpace::copy_out`]: cetbox_mem::AddressSpace::copy_out

use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use cetbox_mem::Access;
use std::cell::RefCell;

/// Buffers up to this size are kept for reuse by the thread.
pub const KEEP: usize = 1 << 20;

struct Region {
    guest: u64,
    len: usize,
    bounce: Vec<u8>,
    /// The guest bytes before the call (struct regions); None for data regions.
    before: Option<Vec<u8>>,
    /// Where the host wrote instead of `bounce` (the guarded window of `window_out`).
    host: Option<*mut u8>,
}

// Thread-locals, not process-wide state: each guest thread runs on its own host thread, and
// the bounce buffers of a call belong to the thread making it.
thread_local! {
    /// This thread's guarded window page (see `window_out`), created on first use.
    static WINDOW: std::cell::Cell<*mut u8> = const { std::cell::Cell::new(std::ptr::null_mut()) };
    static PENDING: RefCell<Vec<Region>> = const { RefCell::new(Vec::new()) };
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Linux's `access_ok`: the range must lie below TASK_SIZE (arch/x86/include/asm/
/// uaccess_64.h, `__access_ok`).
pub fn access_ok(addr: u64, len: u64) -> bool {
    match addr.checked_add(len) {
        Some(end) => end <= crate::abi::TASK_SIZE,
        None => false,
    }
}

/// Checks a whole guest buffer (EFAULT on any bad byte) and returns the pointer to hand to
/// the host: the guest memory itself for `Access::Read`, a bounce buffer holding the same
/// bytes for `Access::Write`, whose changes reach the guest when the syscall returns
/// (`usermem::finish`, under the mapping lock, with a fresh check).
pub fn buf(t: &Thread, addr: u64, len: u64, access: Access) -> Result<HostPtr<'static>, Errno> {
    if len == 0 {
        // The host accesses no byte of an empty buffer.
        return Ok(HostPtr::checked(addr as *mut u8));
    }
    if !access_ok(addr, len) {
        return Err(Errno::EFAULT);
    }
    t.mem().check(addr, len, access)?;
    if access == Access::Write && needed(t) {
        return struct_out(t, addr, len);
    }
    Ok(HostPtr::checked(addr as *mut u8))
}

/// Whether host writes into guest memory must go through bounce buffers: only while another
/// guest thread may exist. A process cannot gain a thread while its only thread is in a host
/// call, and other processes never change this process's mappings.
pub fn needed(t: &Thread) -> bool {
    t.proc.threads.multithreaded()
}

/// A host buffer of at least `len` bytes (contents unspecified), from the thread's spares.
/// Records a region whose bounce buffer the host is about to use, for `finish`.
fn pend(r: Region) {
    PENDING.with(|p| p.borrow_mut().push(r));
}

fn take(len: usize) -> Result<Vec<u8>, Errno> {
    if len <= KEEP {
        if let Some(v) = SPARE.with(|s| {
            let mut s = s.borrow_mut();
            let i = s.iter().position(|b| b.len() >= len)?;
            Some(s.swap_remove(i))
        }) {
            return Ok(v);
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    // Zeroed allocation: large ones come straight from the host as untouched zero pages.
    v.resize(len, 0);
    Ok(v)
}

fn give_back(v: Vec<u8>) {
    if v.len() <= KEEP {
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < 4 {
                s.push(v);
            }
        });
    }
}

/// A host buffer standing for `len` bytes of guest output at `addr` whose first bytes are a
/// byte stream counted by the syscall's result. The caller has checked the range writable.
pub fn data_out(addr: u64, len: u64) -> Result<HostPtr<'static>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::ENOMEM)?;
    let mut bounce = take(len)?;
    let p = bounce.as_mut_ptr();
    pend(Region {
        guest: addr,
        len,
        bounce,
        before: None,
        host: None,
    });
    Ok(HostPtr::checked(p))
}

/// A host buffer standing for the `len`-byte guest structure at `addr` (checked writable by
/// the caller), holding its current contents; the bytes the host changes are copied back.
pub fn struct_out(t: &Thread, addr: u64, len: u64) -> Result<HostPtr<'static>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::ENOMEM)?;
    let mut bounce = take(len)?;
    let mut before = take(len)?;
    // Writable guest pages may lack PROT_READ (x86 has no write-only pages, Linux lets the
    // kernel read them), so read what a forced access sees.
    // The snapshot read below is cetbox's own access; the kernel would take a write fault on
    // these pages (copy_to_user), so that is the fault taken first (a userfaultfd missing page
    // blocks here until resolved, or fails under UFFD_USER_MODE_ONLY: EFAULT).
    if t.mem().check(addr, len as u64, Access::Write).is_err()
        || t.mem().fault_in_for_write(addr, len) < len
    {
        give_back(bounce);
        give_back(before);
        return Err(Errno::EFAULT);
    }
    // SAFETY: [addr, addr + len) was just checked writable guest memory, which the host maps
    // readable; a racing unmap leaves readable zero pages there (see cetbox_mem's scrub), so
    // the copy cannot fault. The destination is our own buffer of at least len bytes.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, bounce.as_mut_ptr(), len) };
    before[..len].copy_from_slice(&bounce[..len]);
    let p = bounce.as_mut_ptr();
    pend(Region {
        guest: addr,
        len,
        bounce,
        before: Some(before),
        host: None,
    });
    Ok(HostPtr::checked(p))
}

/// A host buffer standing for the `len` readable guest bytes at `addr` (checked readable by
/// the caller) that a host call may read or write without saying how many (an ioctl whose
/// request does not encode its argument's size): a snapshot of them, of which only the bytes
/// the host changes are copied back, with the usual check of each page at that moment (a
/// read-only or shadow-stack page makes the call EFAULT and stays unchanged, as the kernel's
/// copy_to_user).
///
/// The window is a page of its own followed by an inaccessible one, the guest bytes at its
/// end: a host access beyond them fails (EFAULT) instead of reaching cetbox's own memory.
/// At most one window per syscall; `len` is at most one page.
pub fn window_out(addr: u64, len: u64) -> Result<HostPtr<'static>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::ENOMEM)?.min(PAGE);
    let page = window_page()?;
    // SAFETY: the window page is ours (one per thread, used by one syscall at a time); len
    // is at most a page, so `at` .. `at + len` is its end.
    let at = unsafe { page.add(PAGE - len) };
    let mut before = take(len)?;
    // SAFETY: [addr, addr + len) was checked readable guest memory, which the host maps
    // readable; a racing unmap leaves readable zero pages (see cetbox_mem's scrub) or pages the
    // host fault handler recovers. The destination is the window, len bytes before its end.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, at, len) };
    // SAFETY: `at` holds the len bytes just copied.
    before[..len].copy_from_slice(unsafe { std::slice::from_raw_parts(at, len) });
    let bounce = take(len)?;
    pend(Region {
        guest: addr,
        len,
        bounce,
        before: Some(before),
        host: Some(at),
    });
    Ok(HostPtr::checked(at))
}

/// A copy of the `len` readable guest bytes at `addr` (checked readable by the caller) for a
/// host call that only reads them, in the same guarded window as [`window_out`] (at most one
/// window per syscall, `len` at most a page): the host sees the guest's bytes but no guest
/// memory, and an access beyond them fails (EFAULT). Nothing is copied back.
pub fn window_in(addr: u64, len: u64) -> Result<HostPtr<'static>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::ENOMEM)?.min(PAGE);
    let page = window_page()?;
    // SAFETY: the window page is ours (one per thread, used by one syscall at a time); len
    // is at most a page, so `at` .. `at + len` is its end.
    let at = unsafe { page.add(PAGE - len) };
    // SAFETY: [addr, addr + len) was checked readable guest memory, which the host maps
    // readable; a racing unmap leaves readable zero pages (see cetbox_mem's scrub). The
    // destination is the window, len bytes before its end.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, at, len) };
    Ok(HostPtr::checked(at))
}

const PAGE: usize = 4096;

/// This thread's window page, followed by an inaccessible page (created on first use).
fn window_page() -> Result<*mut u8, Errno> {
    let page = WINDOW.with(|w| {
        if w.get().is_null() {
            // SAFETY: a fresh private anonymous mapping of two pages at a kernel-chosen
            // address; the second is then made inaccessible.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p != libc::MAP_FAILED
                    && libc::mprotect(p.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE) == 0
                {
                    w.set(p.cast());
                }
            }
        }
        w.get()
    });
    if page.is_null() {
        return Err(Errno::ENOMEM);
    }
    Ok(page)
}

/// A host address at which no byte is accessible (this thread's guard page), for a host read
/// that must wait for data without taking any: the copy to it fails at the first byte, so the
/// call returns EFAULT once data is there and consumes nothing on the descriptors
/// `syscalls::fs::unread` uses it for. Nothing is ever written there; lengths up to a page
/// stay inside the guard page.
pub fn inaccessible() -> Result<HostPtr<'static>, Errno> {
    let page = window_page()?;
    // SAFETY: the guard page is the second page of the two-page window mapping.
    Ok(HostPtr::checked(unsafe { page.add(PAGE) }))
}

/// Forgets regions a previous syscall left (one that never returned through [`finish`]).
pub fn reset() {
    PENDING.with(|r| {
        for reg in r.borrow_mut().drain(..) {
            give_back(reg.bounce);
            if let Some(b) = reg.before {
                give_back(b);
            }
        }
    });
}

/// Copies every pending region into guest memory (see the module documentation) and returns
/// the syscall result the guest sees.
pub fn finish(t: &Thread, res: SysResult) -> SysResult {
    let regions = PENDING.with(|r| std::mem::take(&mut *r.borrow_mut()));
    if regions.is_empty() {
        return res;
    }
    let mem = t.mem();
    let mut data_left = match res {
        Ok(n) => n as usize,
        Err(_) => 0,
    };
    let (mut data_done, mut data_short, mut had_data) = (0usize, false, false);
    let mut struct_fault = false;
    for mut reg in regions {
        if let Some(h) = reg.host {
            // SAFETY: `h` is the window `window_out` handed the host, len bytes long.
            let now = unsafe { std::slice::from_raw_parts(h, reg.len) };
            reg.bounce[..reg.len].copy_from_slice(now);
        }
        match &reg.before {
            None => {
                had_data = true;
                let want = data_left.min(reg.len);
                data_left -= want;
                if want > 0 && !data_short {
                    let c = mem.copy_out(reg.guest, &reg.bounce[..want]);
                    data_done += c;
                    data_short = c < want;
                }
            }
            Some(before) => {
                let (now, was) = (&reg.bounce[..reg.len], &before[..reg.len]);
                let mut i = 0;
                while i < reg.len {
                    if now[i] == was[i] {
                        i += 1;
                        continue;
                    }
                    let mut j = i + 1;
                    while j < reg.len && now[j] != was[j] {
                        j += 1;
                    }
                    if mem.copy_out(reg.guest + i as u64, &now[i..j]) < j - i {
                        struct_fault = true;
                    }
                    i = j;
                }
            }
        }
        give_back(reg.bounce);
        if let Some(b) = reg.before {
            give_back(b);
        }
    }
    match res {
        Ok(_) if had_data && data_short => {
            if data_done == 0 {
                Err(Errno::EFAULT)
            } else {
                Ok(data_done as u64)
            }
        }
        Ok(_) if struct_fault => Err(Errno::EFAULT),
        r => r,
    }
}
