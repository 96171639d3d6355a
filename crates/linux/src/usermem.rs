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
}

thread_local! {
    static PENDING: RefCell<Vec<Region>> = const { RefCell::new(Vec::new()) };
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Whether host writes into guest memory must go through bounce buffers: only while another
/// guest thread may exist. A process cannot gain a thread while its only thread is in a host
/// call, and other processes never change this process's mappings.
pub fn needed() -> bool {
    crate::thread::multithreaded()
}

/// A host buffer of at least `len` bytes (contents unspecified), from the thread's spares.
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
    PENDING.with(|r| {
        r.borrow_mut().push(Region {
            guest: addr,
            len,
            bounce,
            before: None,
        })
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
    if t.mem().check(addr, len as u64, Access::Write).is_err() {
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
    PENDING.with(|r| {
        r.borrow_mut().push(Region {
            guest: addr,
            len,
            bounce,
            before: Some(before),
        })
    });
    Ok(HostPtr::checked(p))
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
    for reg in regions {
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
