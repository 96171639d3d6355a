//! What the host knows of guest pages (msync, mincore) and which of them hold decoded code
//! (the CODE bit and the code epoch engines compare before running decoded code).

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

    /// Records that instructions were decoded from the page holding `addr`.
    pub fn mark_code(&self, addr: u64) {
        self.pt.set_bits(addr, page::CODE);
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
