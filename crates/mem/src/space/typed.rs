//! Typed guest access: reads and writes of 1 to 16 bytes with a one-load fast path, and the
//! shadow-stack accesses (which need a writable shadow-stack page).

use super::*;

impl AddressSpace {
    /// Whether an access of `N` bytes at `addr` passes the fast check: inside one page whose
    /// entry allows it outright (a write also needs the page free of decoded code).
    #[inline(always)]
    fn fast_ok<const N: u64>(&self, addr: u64, access: Access) -> bool {
        if addr & (PAGE_SIZE - 1) > PAGE_SIZE - N {
            return false;
        }
        let bits = self.pt.get(addr);
        Self::allowed_fast(bits, access)
    }

    /// `allowed`, but writes to pages holding decoded code fail too (the slow path handles
    /// them: it must invalidate the code).
    #[inline(always)]
    pub(super) fn allowed_fast(bits: u8, access: Access) -> bool {
        // Unpopulated pages fail too: the slow path populates them (the P bit of later
        // fault error codes).
        const P: u8 = page::POPULATED;
        match access {
            Access::Read => bits & (page::READ_MASK | P) == page::READ | P,
            Access::Write => bits & (page::WRITE_MASK | P) == page::WRITE | P,
            Access::Fetch => bits & (page::FETCH_MASK | P) == page::EXEC | P,
            Access::ShadowRead => bits & (page::SHADOW_MASK | P) == page::SHADOW | page::WRITE | P,
            Access::ShadowWrite => {
                bits & (page::SHADOW_MASK | page::CODE | P) == page::SHADOW | page::WRITE | P
            }
        }
    }

    /// Checks an access of `N` bytes at `addr` on the fast path (one page) or the slow path.
    #[inline(always)]
    fn check_small<const N: u64>(&self, addr: u64, access: Access) -> Result<(), Fault> {
        if self.fast_ok::<N>(addr, access) {
            return Ok(());
        }
        self.check(addr, N, access)
    }

    /// The out-of-line part of the typed reads: full check, then the load.
    #[cold]
    #[inline(never)]
    fn read_slow<const N: u64>(&self, addr: u64) -> Result<u64, Fault> {
        self.check(addr, N, Access::Read)?;
        // SAFETY: checked readable above.
        Ok(unsafe {
            match N {
                1 => std::ptr::read_volatile(addr as *const u8) as u64,
                2 => std::ptr::read_unaligned(addr as *const u16) as u64,
                4 => std::ptr::read_unaligned(addr as *const u32) as u64,
                _ => std::ptr::read_unaligned(addr as *const u64),
            }
        })
    }

    /// The out-of-line part of the typed writes: full check (which also invalidates decoded
    /// code), then the store.
    #[cold]
    #[inline(never)]
    fn write_slow<const N: u64>(&self, addr: u64, v: u64) -> Result<(), Fault> {
        self.check(addr, N, Access::Write)?;
        // SAFETY: checked writable above.
        unsafe {
            match N {
                1 => std::ptr::write_volatile(addr as *mut u8, v as u8),
                2 => std::ptr::write_unaligned(addr as *mut u16, v as u16),
                4 => std::ptr::write_unaligned(addr as *mut u32, v as u32),
                _ => std::ptr::write_unaligned(addr as *mut u64, v),
            }
        }
        Ok(())
    }

    #[inline(always)]
    pub fn read_u8(&self, addr: u64) -> Result<u8, Fault> {
        if self.fast_ok::<1>(addr, Access::Read) {
            // SAFETY: the page table says the guest mapped this byte readable, so it is host
            // memory.
            return Ok(unsafe { std::ptr::read_volatile(addr as *const u8) });
        }
        self.read_slow::<1>(addr).map(|v| v as u8)
    }

    #[inline(always)]
    pub fn read_u16(&self, addr: u64) -> Result<u16, Fault> {
        if self.fast_ok::<2>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u16) });
        }
        self.read_slow::<2>(addr).map(|v| v as u16)
    }

    #[inline(always)]
    pub fn read_u32(&self, addr: u64) -> Result<u32, Fault> {
        if self.fast_ok::<4>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u32) });
        }
        self.read_slow::<4>(addr).map(|v| v as u32)
    }

    #[inline(always)]
    pub fn read_u64(&self, addr: u64) -> Result<u64, Fault> {
        if self.fast_ok::<8>(addr, Access::Read) {
            // SAFETY: checked readable above.
            return Ok(unsafe { std::ptr::read_unaligned(addr as *const u64) });
        }
        self.read_slow::<8>(addr)
    }

    #[inline(always)]
    pub fn read_u128(&self, addr: u64) -> Result<u128, Fault> {
        self.check_small::<16>(addr, Access::Read)?;
        // SAFETY: checked readable above.
        Ok(unsafe { std::ptr::read_unaligned(addr as *const u128) })
    }

    /// Reads `size` (1, 2, 4 or 8) bytes zero-extended.
    #[inline(always)]
    pub fn read_sized(&self, addr: u64, size: u32) -> Result<u64, Fault> {
        match size {
            1 => self.read_u8(addr).map(u64::from),
            2 => self.read_u16(addr).map(u64::from),
            4 => self.read_u32(addr).map(u64::from),
            _ => self.read_u64(addr),
        }
    }

    #[inline(always)]
    pub fn write_u8(&self, addr: u64, v: u8) -> Result<(), Fault> {
        if self.fast_ok::<1>(addr, Access::Write) {
            // SAFETY: the page table says the guest mapped this byte writable.
            unsafe { std::ptr::write_volatile(addr as *mut u8, v) };
            return Ok(());
        }
        self.write_slow::<1>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u16(&self, addr: u64, v: u16) -> Result<(), Fault> {
        if self.fast_ok::<2>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u16, v) };
            return Ok(());
        }
        self.write_slow::<2>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), Fault> {
        if self.fast_ok::<4>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u32, v) };
            return Ok(());
        }
        self.write_slow::<4>(addr, v as u64)
    }

    #[inline(always)]
    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), Fault> {
        if self.fast_ok::<8>(addr, Access::Write) {
            // SAFETY: checked writable above.
            unsafe { std::ptr::write_unaligned(addr as *mut u64, v) };
            return Ok(());
        }
        self.write_slow::<8>(addr, v)
    }

    #[inline(always)]
    pub fn write_u128(&self, addr: u64, v: u128) -> Result<(), Fault> {
        self.check_small::<16>(addr, Access::Write)?;
        // SAFETY: checked writable above.
        unsafe { std::ptr::write_unaligned(addr as *mut u128, v) };
        Ok(())
    }

    /// Writes the low `size` (1, 2, 4 or 8) bytes of `v`.
    #[inline(always)]
    pub fn write_sized(&self, addr: u64, size: u32, v: u64) -> Result<(), Fault> {
        match size {
            1 => self.write_u8(addr, v as u8),
            2 => self.write_u16(addr, v as u16),
            4 => self.write_u32(addr, v as u32),
            _ => self.write_u64(addr, v),
        }
    }

    /// Whether a `len`-byte shadow-stack access at `addr` passes the fast check (one page);
    /// `check` decides otherwise.
    #[inline(always)]
    fn shadow_fast(&self, addr: u64, size: u32, access: Access) -> bool {
        match size {
            8 => self.fast_ok::<8>(addr, access),
            4 => self.fast_ok::<4>(addr, access),
            _ => false,
        }
    }

    /// A shadow-stack load of 8 bytes (or 4 with `size` 4).
    #[inline(always)]
    pub fn shadow_read(&self, addr: u64, size: u32) -> Result<u64, Fault> {
        // Any width but 4 accesses 8 bytes below; check what is touched.
        let size = if size == 4 { 4 } else { 8 };
        if !self.shadow_fast(addr, size, Access::ShadowRead) {
            self.check(addr, size as u64, Access::ShadowRead)?;
        }
        // SAFETY: checked: a writable shadow-stack page, which is host memory.
        Ok(unsafe {
            if size == 4 {
                std::ptr::read_unaligned(addr as *const u32) as u64
            } else {
                std::ptr::read_unaligned(addr as *const u64)
            }
        })
    }

    /// A shadow-stack store of 8 bytes (or 4 with `size` 4).
    #[inline(always)]
    pub fn shadow_write(&self, addr: u64, size: u32, v: u64) -> Result<(), Fault> {
        // Any width but 4 accesses 8 bytes below; check what is touched.
        let size = if size == 4 { 4 } else { 8 };
        if !self.shadow_fast(addr, size, Access::ShadowWrite) {
            self.check(addr, size as u64, Access::ShadowWrite)?;
        }
        // SAFETY: checked: a writable shadow-stack page.
        unsafe {
            if size == 4 {
                std::ptr::write_unaligned(addr as *mut u32, v as u32)
            } else {
                std::ptr::write_unaligned(addr as *mut u64, v)
            }
        }
        Ok(())
    }

    /// Atomically compares the 8-byte shadow-stack slot at `addr` (8-aligned) with `expect`
    /// and replaces it with `new` if equal; returns the old value (RSTORSSP's locked RMW).
    pub fn shadow_cmpxchg(&self, addr: u64, f: impl Fn(u64) -> u64) -> Result<u64, Fault> {
        self.check(addr, 8, Access::ShadowWrite)?;
        if !addr.is_multiple_of(8) {
            // Callers align the slot; should one not, serialise rather than make a misaligned
            // atomic reference.
            static SPLIT: Mutex<()> = Mutex::new(());
            let _g = SPLIT.lock().unwrap_or_else(|e| e.into_inner());
            let old = self.shadow_read(addr, 8)?;
            self.shadow_write(addr, 8, f(old))?;
            return Ok(old);
        }
        // SAFETY: checked: a writable shadow-stack page (host memory mapped read-write) holding
        // all 8 bytes, and 8-aligned as AtomicU64 requires.
        let cell = unsafe { &*(addr as *const AtomicU64) };
        let mut old = cell.load(Ordering::SeqCst);
        loop {
            match cell.compare_exchange(old, f(old), Ordering::SeqCst, Ordering::SeqCst) {
                Ok(v) => return Ok(v),
                Err(v) => old = v,
            }
        }
    }
}
