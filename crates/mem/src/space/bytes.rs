//! Byte-range access: forced access (FOLL_FORCE), atomic read-modify-write, copies in and
//! out of guest memory (`copy_out` under the mapping lock, faulting pages in first), fills,
//! C strings and instruction fetch.

use super::*;

impl AddressSpace {
    /// The first page of [addr, end) a forced access (FOLL_FORCE) may not touch: unmapped, or
    /// past the end of its file. PROT_NONE pages (entry 0) are fine if a VMA covers them, as
    /// Linux's check_vma_flags allows forced access to VM_MAYREAD/VM_MAYWRITE mappings.
    pub(super) fn forced_bad(&self, m: &Maps, addr: u64, end: u64) -> Option<(u64, u8)> {
        let mut p = addr;
        while p < end {
            let bits = self.pt.get(p);
            let ok = if bits & page::MAPPED == 0 {
                Self::covering(m, p).is_some()
            } else {
                bits & page::BEYOND_EOF == 0
            };
            if !ok {
                return Some((p, bits));
            }
            p = page_floor(p) + PAGE_SIZE;
        }
        None
    }

    /// Whether every page of [addr, addr + len) may be read by a forced access (/proc/self/mem,
    /// ptrace): mapped, whatever its protection, and not past the end of its file.
    pub fn forced_readable(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        end <= USER_LIMIT && self.forced_bad(&self.maps(), addr, end).is_none()
    }

    /// A forced write that ignores page permissions, like the kernel's FOLL_FORCE (ptrace,
    /// /proc/self/mem, and WRUSS for signal frames). The range must be mapped.
    pub fn force_write(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let len = data.len() as u64;
        let end = addr.checked_add(len).ok_or(Fault {
            present: false,
            addr: USER_LIMIT.max(addr),
            access: Access::Write,
            kind: FaultKind::NotMapped,
        })?;
        // Held until the copy is done: the range cannot be unmapped or replaced meanwhile.
        let m = self.maps();
        if let Some((p, bits)) = self.forced_bad(&m, addr, end) {
            return Err(self.fault_in(&m, p, bits, Access::Write));
        }
        // A shared mapping without PROT_WRITE may be read-only on the host (a shared file
        // mapping is); Linux refuses forced writes to any shared non-writable mapping.
        if len != 0 {
            for k in Self::overlapping(&m, addr, end) {
                let v = &m.vmas[&k];
                if v.shared && v.prot & libc::PROT_WRITE as u32 == 0 {
                    let at = v.start.max(addr);
                    return Err(self.fault_in(&m, at, self.pt.get(at), Access::Write));
                }
            }
        }
        self.code_written(addr, len);
        // SAFETY: every page in the range is mapped guest memory, and not part of a shared
        // mapping without PROT_WRITE, so the host maps it read-write (private, anonymous and
        // shadow-stack memory always is; shared file memory is when the guest may write it).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    /// Performs an atomic read-modify-write of `size` bytes for a LOCK-prefixed instruction:
    /// `f` maps the old value to the new one (or None to leave memory unchanged, as a failed
    /// CMPXCHG does, though it still counts as a write access). Returns the old value.
    pub fn atomic_rmw(
        &self,
        addr: u64,
        size: u32,
        f: &mut dyn FnMut(u64) -> Option<u64>,
    ) -> Result<u64, Fault> {
        // Any other width is treated as 8 bytes, as `read_sized` does, so the check always
        // covers every byte the access below touches.
        let size = match size {
            1 | 2 | 4 => size,
            _ => 8,
        };
        self.check(addr, size as u64, Access::Write)?;
        use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU8};
        macro_rules! cas {
            ($t:ty, $a:ty) => {{
                if addr % size as u64 == 0 {
                    // SAFETY: all `size` bytes were checked writable (so the host maps them
                    // read-write), and the address is aligned for this width.
                    let cell = unsafe { &*(addr as *const $a) };
                    let mut old = cell.load(Ordering::SeqCst);
                    loop {
                        let Some(new) = f(old as u64) else {
                            return Ok(old as u64);
                        };
                        match cell.compare_exchange_weak(
                            old,
                            new as $t,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        ) {
                            Ok(_) => return Ok(old as u64),
                            Err(v) => old = v,
                        }
                    }
                }
            }};
        }
        match size {
            1 => cas!(u8, AtomicU8),
            2 => cas!(u16, AtomicU16),
            4 => cas!(u32, AtomicU32),
            _ => cas!(u64, AtomicU64),
        }
        // A split or misaligned lock: serialise through one global lock.
        static SPLIT: Mutex<()> = Mutex::new(());
        let _g = SPLIT.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.read_sized(addr, size)?;
        if let Some(new) = f(old) {
            self.write_sized(addr, size, new)?;
        }
        Ok(old)
    }

    /// Copies guest memory into `buf`.
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.kernel_fault_in(addr, buf.len(), Access::Read)?;
        self.check(addr, buf.len() as u64, Access::Read)?;
        // SAFETY: checked readable; the host buffer is ours and does not overlap guest memory.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into guest memory, all or nothing. The check and the copy happen under
    /// the mapping lock, so no other guest thread can unmap or write-protect the range, or put
    /// a shadow stack there, between them (the kernel's own copy_to_user sees the page type at
    /// the moment of the write in the same way).
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        // Missing pages are faulted in before the lock is taken (see `faultin`).
        if in_kernel() {
            self.kernel_fault_in(addr, data.len(), Access::Write)?;
        } else if self.uffd_used.load(Ordering::Relaxed) {
            touch_for_write(&self.pt, addr, data.len());
        }
        let m = self.maps();
        self.check_in(&m, addr, data.len() as u64, Access::Write)?;
        // SAFETY: checked writable under the mapping lock, which every change of mappings or
        // protections takes, so the host still maps it read-write; `data` is host memory and
        // does not overlap guest memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    /// Runs `f` with [addr, addr + len) checked for `access` under the mapping lock, so no
    /// other guest thread can unmap or reprotect the range, or put a shadow stack there, until
    /// `f` returns: for the host's own atomic updates of guest words (futex WAKE_OP, the
    /// non-blocking PI operations), which must land only where the guest may write at that
    /// moment, as the kernel's futex_atomic_op_inuser respects the page type. `f` must not
    /// block: the host's futex word updates do not even block on a userfaultfd missing page
    /// (kernel/futex: fault_in_user_writeable's fixup_user_fault without retry fails EFAULT).
    pub fn with_checked<R>(
        &self,
        addr: u64,
        len: u64,
        access: Access,
        f: impl FnOnce() -> R,
    ) -> Result<R, Fault> {
        let m = self.maps();
        self.check_in(&m, addr, len, access)?;
        Ok(f())
    }

    /// Runs `f` under the mapping lock with a checker for any number of ranges: as
    /// [`Self::with_checked`], for an operation that must check several futex words, and
    /// some only on some paths (cetbox's own FUTEX_CMP_REQUEUE_PI, `crates/linux`'s
    /// `syscalls/requeue_pi.rs`), while no mapping or protection can change. `f` must not
    /// block.
    pub fn with_locked<R>(&self, f: impl FnOnce(&dyn Fn(u64, u64, Access) -> bool) -> R) -> R {
        let m = self.maps();
        let check =
            |addr: u64, len: u64, access: Access| self.check_in(&m, addr, len, access).is_ok();
        f(&check)
    }

    /// Copies as much of `data` into guest memory at `addr` as the guest can write at this
    /// moment: page by page under the mapping lock, stopping at the first page that is not
    /// writable (unmapped, read-only, a shadow stack). Returns the number of bytes copied, as
    /// the kernel's copy_to_user reports a partial copy. This is how results of host calls
    /// that wrote into a bounce buffer reach the guest.
    pub fn copy_out(&self, addr: u64, data: &[u8]) -> usize {
        let data = &data[..prefault(&self.pt, addr, data.len(), Prefault::Write)];
        let m = self.maps();
        let mut done = 0usize;
        while done < data.len() {
            let p = addr.wrapping_add(done as u64);
            if p >= USER_LIMIT {
                break;
            }
            let n = ((page_floor(p) + PAGE_SIZE - p) as usize).min(data.len() - done);
            if self.check_in(&m, p, n as u64, Access::Write).is_err() {
                break;
            }
            // SAFETY: the n bytes at p lie in one page checked writable under the mapping
            // lock, so the host maps them read-write until the lock is released.
            unsafe {
                std::ptr::copy_nonoverlapping(data[done..].as_ptr(), p as *mut u8, n);
            }
            done += n;
        }
        done
    }

    /// Runs `f` under the mapping lock with the number of leading bytes of `segs` (guest
    /// address and length pairs, taken in order as one stream) that the guest can write at
    /// this moment, checked as `copy_out` checks them: up to the first page that is unmapped,
    /// read-only or a shadow stack. While `f` runs no mapping can change, so `f` may let the
    /// host write that many bytes at those addresses directly, as long as it does not block
    /// (a non-blocking host read that takes only what it can deliver: the reads of
    /// `cetbox_linux`'s `syscalls::fs::unread`, which must not consume data the guest cannot
    /// take).
    pub fn with_writable_prefix<R>(&self, segs: &[(u64, u64)], f: impl FnOnce(u64) -> R) -> R {
        // Only a userfaultfd page can block the host's write while the lock is held; other
        // missing pages fault in as the host writes them (and only the pages written).
        if self.uffd_used.load(Ordering::Relaxed) {
            for &(addr, len) in segs {
                prefault(&self.pt, addr, len as usize, Prefault::Write);
            }
        }
        let _m = self.maps();
        let mut done = 0u64;
        for &(addr, len) in segs {
            let mut off = 0u64;
            while off < len {
                let p = addr.wrapping_add(off);
                let n = (page_floor(p) + PAGE_SIZE - p).min(len - off);
                if p >= USER_LIMIT || self.scan(p, n, Access::Write).is_err() {
                    break;
                }
                off += n;
            }
            done += off;
            if off < len {
                break;
            }
        }
        f(done)
    }

    /// Copies `len` bytes of guest memory from `src` to `dst` with memmove semantics, after
    /// checking the whole source readable and the whole destination writable (REP MOVS).
    /// Nothing is copied if either check fails.
    pub fn copy_within(&self, dst: u64, src: u64, len: u64) -> Result<(), Fault> {
        self.check(src, len, Access::Read)?;
        self.check(dst, len, Access::Write)?;
        // SAFETY: both ranges were just checked to be guest memory with the needed access,
        // which is host memory mapped read-write; `copy` allows overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, len as usize) };
        Ok(())
    }

    /// Fills `count` consecutive `elem`-byte (1, 2, 4 or 8) elements at `dst` with the low
    /// bytes of `pattern`, after checking the whole range writable (REP STOS). Nothing is
    /// written if the check fails.
    pub fn fill(&self, dst: u64, count: u64, elem: u32, pattern: u64) -> Result<(), Fault> {
        let len = count.checked_mul(elem as u64).ok_or(Fault {
            present: false,
            addr: dst,
            access: Access::Write,
            kind: FaultKind::NotMapped,
        })?;
        self.check(dst, len, Access::Write)?;
        // SAFETY: [dst, dst + len) was just checked writable guest memory; unaligned stores.
        unsafe {
            match elem {
                1 => std::ptr::write_bytes(dst as *mut u8, pattern as u8, len as usize),
                2 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 2 * k) as *mut u16, pattern as u16)
                    }
                }
                4 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 4 * k) as *mut u32, pattern as u32)
                    }
                }
                8 => {
                    for k in 0..count {
                        std::ptr::write_unaligned((dst + 8 * k) as *mut u64, pattern)
                    }
                }
                _ => {
                    for k in 0..len {
                        let byte = (pattern >> (8 * ((k % elem as u64) & 7))) as u8;
                        std::ptr::write((dst + k) as *mut u8, byte)
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL). Returns None
    /// (ENAMETOOLONG territory) if no NUL was found within `max` bytes.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Option<Vec<u8>>, Fault> {
        let mut out = Vec::new();
        let mut p = addr;
        while out.len() < max {
            // Checked first: a readable page lies below USER_LIMIT, so `page_end` cannot
            // overflow (a guest pointer near 2^64 would).
            self.check(p, 1, Access::Read)?;
            let page_end = page_floor(p) + PAGE_SIZE;
            let n = ((page_end - p) as usize).min(max - out.len());
            self.kernel_fault_in(p, n, Access::Read)?;
            // SAFETY: the whole page holding p is readable (permissions are per page).
            let chunk = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..z]);
                return Ok(Some(out));
            }
            out.extend_from_slice(chunk);
            p = page_end;
        }
        Ok(None)
    }

    /// Copies up to `buf.len()` executable bytes at `addr` for the decoder; stops at the first
    /// page that is not executable. Returns the count, or the fault if `addr` itself is not.
    pub fn fetch(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Fault> {
        let mut n = 0usize;
        let mut p = addr;
        while n < buf.len() {
            let bits = self.pt.get(p);
            if !Self::allowed(bits, Access::Fetch) {
                if Self::past_eof(bits) && self.eof_recheck(p) {
                    continue;
                }
                if n == 0 {
                    return Err(self.fault(p, bits, Access::Fetch));
                }
                break;
            }
            if bits & page::POPULATED == 0 {
                self.pt.set_bits(p, page::POPULATED);
            }
            let page_end = page_floor(p) + PAGE_SIZE;
            let k = ((page_end - p) as usize).min(buf.len() - n);
            // SAFETY: the page is executable guest memory, hence mapped readable on the host
            // (and an unmap racing with the copy leaves zero pages there, never a hole).
            unsafe { std::ptr::copy_nonoverlapping(p as *const u8, buf[n..].as_mut_ptr(), k) };
            // The page may have been unmapped by another thread between the check and the
            // copy: an unmap clears the entry first and only then replaces the memory with
            // zero pages (`unmap_locked`), so if the entry still allows the fetch after the
            // copy, the copy read the old bytes. Otherwise the bytes may be those zeros, which
            // decode as instructions the guest never had (`add %al,(%rax)`, faulting at an
            // address that has nothing to do with the unmapped page): the fetch faults here as
            // it would have after the unmap.
            std::sync::atomic::fence(Ordering::SeqCst);
            let now = self.pt.get(p);
            if !Self::allowed(now, Access::Fetch) {
                if n == 0 {
                    return Err(self.fault(p, now, Access::Fetch));
                }
                break;
            }
            n += k;
            p = page_end;
        }
        Ok(n)
    }
}
