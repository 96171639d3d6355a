//! Access checks against the page table: the fast scan, the slow path that asks the VMA tree
//! (PROT_NONE, beyond EOF), and the fault each failure is.

use super::*;

impl AddressSpace {
    /// Classifies a failed access at `addr` (whose page entry is `bits`).
    #[cold]
    pub(super) fn fault(&self, addr: u64, bits: u8, access: Access) -> Fault {
        if bits & page::MAPPED == 0 {
            return self.fault_in(&self.maps(), addr, bits, access);
        }
        self.fault_in_mapped(addr, bits, access)
    }

    /// `fault` for callers holding the mapping lock. An entry without MAPPED is either
    /// unmapped or PROT_NONE (whose entries stay 0): the VMA tree tells.
    #[cold]
    pub(super) fn fault_in(&self, m: &Maps, addr: u64, bits: u8, access: Access) -> Fault {
        if bits & page::MAPPED == 0 && Self::covering(m, addr).is_some() {
            return Fault {
                addr,
                access,
                kind: FaultKind::Protection,
                present: false,
            };
        }
        self.fault_in_mapped(addr, bits, access)
    }

    /// The VMA holding `addr`.
    pub(super) fn covering(m: &Maps, addr: u64) -> Option<&Vma> {
        m.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    fn fault_in_mapped(&self, addr: u64, bits: u8, access: Access) -> Fault {
        let kind = if bits & page::MAPPED == 0 {
            FaultKind::NotMapped
        } else if bits & page::BEYOND_EOF != 0 {
            FaultKind::BeyondEof
        } else {
            FaultKind::Protection
        };
        // PROT_NONE pages have no present page-table entry on x86 Linux.
        let present =
            bits & page::POPULATED != 0 && bits & (page::READ | page::WRITE | page::EXEC) != 0;
        Fault {
            addr,
            access,
            kind,
            present,
        }
    }

    #[inline(always)]
    pub(super) fn allowed(bits: u8, access: Access) -> bool {
        match access {
            Access::Read => bits & page::READ_MASK == page::READ,
            Access::Write => bits & (page::WRITE | page::SHADOW | page::BEYOND_EOF) == page::WRITE,
            Access::Fetch => bits & page::FETCH_MASK == page::EXEC,
            Access::ShadowRead | Access::ShadowWrite => {
                bits & page::SHADOW_MASK == page::SHADOW | page::WRITE
            }
        }
    }

    /// Checks that every byte of [addr, addr + len) allows `access`; the fault names the first
    /// byte that does not. A write also invalidates decoded code in the range.
    #[inline(always)]
    pub fn check(&self, addr: u64, len: u64, access: Access) -> Result<(), Fault> {
        // One page, allowed outright: the common case of CALL's and RET's checks.
        if len.wrapping_sub(1) < PAGE_SIZE
            && addr & (PAGE_SIZE - 1) <= PAGE_SIZE - len
            && Self::allowed_fast(self.pt.get(addr), access)
        {
            return Ok(());
        }
        self.check_slow(addr, len, access)
    }

    #[inline(never)]
    fn check_slow(&self, addr: u64, len: u64, access: Access) -> Result<(), Fault> {
        self.probe_untouched(addr, len, access);
        loop {
            match self.scan(addr, len, access) {
                Ok(()) => return Ok(()),
                // A page past the end of its file when it was mapped may be inside it now.
                Err((p, bits)) if Self::past_eof(bits) && self.eof_recheck(p) => continue,
                Err((p, bits)) => return Err(self.fault(p, bits, access)),
            }
        }
    }

    /// Once the guest uses userfaultfd, a guest access (not a syscall handler's, see
    /// `kernel_fault_in`) touches each page of its range it has not touched since the page
    /// was mapped or discarded with a probe first (`faultin::probe`): if the page is missing
    /// and another thread unmaps it while the probe waits for the resolver, the probe fails
    /// and the page-table check below refuses the access precisely, before the instruction
    /// changed anything.
    fn probe_untouched(&self, addr: u64, len: u64, access: Access) {
        if !self.uffd_used.load(Ordering::Relaxed) || in_kernel() || len == 0 {
            return;
        }
        let Some(last) = addr.checked_add(len - 1) else {
            return;
        };
        let mut p = addr;
        loop {
            let bits = self.pt.get(p);
            if bits & page::POPULATED == 0 && Self::allowed(bits, access) {
                // SAFETY: the page table allows the access, so the host maps the page
                // read-write (or a racing unmap left it inaccessible and marked, which the
                // probe survives).
                unsafe { crate::faultin::probe(p, access.is_write()) };
            }
            let next = page_floor(p) + PAGE_SIZE;
            if next > last {
                break;
            }
            p = next;
        }
    }

    /// Whether an entry marks a mapped page past the end of its file (see `eof`).
    pub(super) fn past_eof(bits: u8) -> bool {
        bits & (page::MAPPED | page::BEYOND_EOF) == page::MAPPED | page::BEYOND_EOF
    }

    /// `check` for callers holding the mapping lock.
    pub(super) fn check_in(
        &self,
        m: &Maps,
        addr: u64,
        len: u64,
        access: Access,
    ) -> Result<(), Fault> {
        loop {
            match self.scan(addr, len, access) {
                Ok(()) => return Ok(()),
                Err((p, bits)) if Self::past_eof(bits) && self.eof_recheck_in(m, p) => continue,
                Err((p, bits)) => return Err(self.fault_in(m, p, bits, access)),
            }
        }
    }

    /// The work of `check_slow`; a refusal names the first bad address and its entry.
    pub(super) fn scan(&self, addr: u64, len: u64, access: Access) -> Result<(), (u64, u8)> {
        if len == 0 {
            return Ok(());
        }
        let last = addr
            .checked_add(len - 1)
            .ok_or((USER_LIMIT.max(addr), 0u8))?;
        let mut p = addr;
        let mut code = false;
        loop {
            let bits = self.pt.get(p);
            if !Self::allowed(bits, access) {
                return Err((p, bits));
            }
            if bits & page::POPULATED == 0 {
                self.pt.set_bits(p, page::POPULATED);
            }
            code |= bits & page::CODE != 0;
            let next = page_floor(p) + PAGE_SIZE;
            if next > last {
                break;
            }
            p = next;
        }
        if code && access.is_write() {
            self.code_written(addr, len);
        }
        Ok(())
    }

    /// Checks an access and returns the host pointer to the guest bytes (the same address).
    /// The pointer is valid until the guest unmaps the range.
    #[inline]
    pub fn host_ptr(&self, addr: u64, len: u64, access: Access) -> Result<*mut u8, Fault> {
        self.check(addr, len, access)?;
        Ok(addr as *mut u8)
    }
}
