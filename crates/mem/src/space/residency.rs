//! What the host knows of guest pages (msync, mincore; faulting in pages a guest
//! userfaultfd may hold back, see `faultin`) and which of them hold decoded code (the CODE
//! bit and the code epoch engines compare before running decoded code).

use super::*;

impl AddressSpace {
    /// msync for guest memory (the caller checked the range is mapped).
    pub fn sync(&self, addr: u64, len: u64, flags: i32) -> Result<(), MapError> {
        host::msync(addr, page_ceil(len), flags)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))
    }

    /// mincore for guest memory into a host buffer of one byte per page (the caller checked
    /// the range is mapped).
    pub fn residency(&self, addr: u64, len: u64, out: &mut [u8]) -> Result<(), MapError> {
        host::mincore(addr, page_ceil(len), out)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)))
    }

    /// For an access a syscall handler makes (see `faultin`): faults the untouched pages of
    /// the range in as the kernel's own access would, failing (EFAULT for the syscall) where
    /// it would, instead of letting cetbox's access block as a user-mode fault.
    #[inline]
    pub(super) fn kernel_fault_in(
        &self,
        addr: u64,
        len: usize,
        access: Access,
    ) -> Result<(), Fault> {
        // The POPULATED bit cannot tell: a check of a buffer handed to a host syscall sets it
        // without the host page being there. So the host is asked (one mincore).
        if !self.uffd_used.load(Ordering::Relaxed) || !in_kernel() || access == Access::Fetch {
            return Ok(());
        }
        let kind = if access.is_write() {
            Prefault::Write
        } else {
            Prefault::Read
        };
        let ok = prefault(&self.pt, addr, len, kind);
        if ok < len {
            return Err(Fault {
                addr: addr + ok as u64,
                access,
                kind: FaultKind::NotMapped,
                present: false,
            });
        }
        Ok(())
    }

    /// Whether the guest ever registered a userfaultfd range (only then can a guest page be
    /// missing on the host in a way that blocks or fails an access).
    pub fn uffd_in_use(&self) -> bool {
        self.uffd_used.load(Ordering::Relaxed)
    }

    /// Faults in the host pages of [addr, addr + len) as a kernel write (copy_to_user) would,
    /// outside the mapping lock; returns how many bytes from `addr` could be (see `prefault`).
    pub fn fault_in_for_write(&self, addr: u64, len: usize) -> usize {
        prefault(&self.pt, addr, len, Prefault::Write)
    }

    /// The current code epoch; a change means decoded blocks may be stale.
    #[inline(always)]
    pub fn code_epoch(&self) -> u64 {
        self.code_epoch.load(Ordering::Acquire)
    }

    /// The code epoch's own cell, for translated code that checks it inline between blocks
    /// (crates/jit); valid as long as this address space lives.
    pub fn code_epoch_cell(&self) -> &AtomicU64 {
        &self.code_epoch
    }

    /// Records that instructions were decoded from the page holding `addr` (which the decoder
    /// fetched from, so it was executable then). If it is not executable any more, another
    /// thread unmapped it or took PROT_EXEC away after the fetch, and may have looked for
    /// CODE before this mark landed (`unmap_locked` and `protect` change the code epoch only
    /// for ranges holding decoded code or shadow stacks): the epoch changes here instead, so
    /// the decoded instructions are dropped before they run again.
    pub fn mark_code(&self, addr: u64) {
        let old = self.pt.set_bits(addr, page::CODE);
        if !Self::allowed(old, crate::Access::Fetch) {
            self.code_epoch.fetch_add(1, Ordering::Release);
        }
    }

    /// How many changes so far took access away from guest memory (an unmap of accessible
    /// pages, an mprotect removing a permission, a move, a discard of decoded code or of a
    /// populated shadow-stack page, a file shrunk under a mapping of it), counted from a base
    /// of this address space's own (no two address spaces give the same value): a change tells
    /// the syscall layer to wait for the other threads (`thread_group::shootdown` in
    /// crates/linux) before the call returns, and the translator to forget the pages its
    /// translated code remembers (crates/jit/src/lib.rs, `Translator::enter`). The code epoch
    /// changes only with those that may invalidate decoded code or what translated code knows
    /// about shadow-stack pages.
    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::Acquire)
    }

    pub(super) fn code_written(&self, addr: u64, len: u64) {
        let mut any = false;
        let mut p = page_floor(addr);
        while p < addr + len {
            any |= self.pt.clear_bits(p, page::CODE);
            p += PAGE_SIZE;
        }
        if any {
            self.code_epoch.fetch_add(1, Ordering::Release);
        }
    }
}
