//! Changes of mappings: map, adopting host shared mappings, merging, growing and moving,
//! unmap (with the holes the host keeps), mprotect, stack growth and madvise. Each runs under
//! the mapping lock and keeps the page table equal to the VMAs; changes that take something
//! away bump the code epoch.

use super::*;

impl AddressSpace {
    /// Creates a mapping and returns its address.
    pub fn map(&self, req: &MapRequest) -> Result<u64, MapError> {
        match self.map_once(req) {
            Err(MapError::NoMemory) if !req.fixed && !req.noreplace && req.addr != 0 => {
                // The hint was free for the guest but not on the host: search instead.
                let mut r = req.clone();
                r.addr = 0;
                self.map_once(&r)
            }
            r => r,
        }
    }

    fn map_once(&self, req: &MapRequest) -> Result<u64, MapError> {
        let len = page_ceil(req.len);
        if len == 0 {
            return Err(MapError::NoMemory);
        }
        // The search and the mapping under one hold of the mapping lock: a range found free
        // and then taken by another thread's mmap before this one maps it would otherwise fail
        // a placed mmap with EEXIST (glibc's pthread_create returned it for its stack).
        let mut m = self.maps_changing();
        let addr = if req.fixed || req.noreplace {
            req.addr
        } else {
            let guard = if req.kind == VmaKind::ShadowStack {
                PAGE_SIZE
            } else {
                0
            };
            match self.find_free_locked(&m, req.addr, len, req.low_2g, guard) {
                Some(a) => a,
                None => return Err(MapError::NoMemory),
            }
        };
        let end = addr.checked_add(len).ok_or(MapError::NoMemory)?;
        if end > self.pt.limit() || addr < PAGE_SIZE {
            return Err(MapError::NoMemory);
        }
        // A MAP_FIXED replacement of ordinary accessible memory by ordinary accessible memory
        // inside the reservation is one step for other processes' accessors, as Linux's mmap
        // is under its mmap_lock: the new entries are recorded for the whole replacement
        // (xlock: the unmap's and the map's own entry changes nest inside it), so an accessor
        // reads the old or the new memory and is never refused in between. Only there: the
        // host memory of the range stays guest memory throughout (the old mapping until the
        // host's MAP_FIXED replaces it at once), and no published VMA record changes (which
        // would replace the recorded change).
        let _one_step = (req.fixed
            && !req.noreplace
            && !Self::free_in(&m, addr, end)
            && in_reserve(addr, end)
            && Self::plain(req.prot, req.kind, req.shared)
            && Self::plain_accessible(&m, addr, end))
        .then(|| {
            crate::xlock::Hold::take(crate::xlock::Change::Fill {
                start: addr,
                end,
                value: prot_bits(req.prot, req.kind),
            })
        });
        if !Self::free_in(&m, addr, end) {
            if req.noreplace || !req.fixed {
                return Err(MapError::Exists);
            }
            self.unmap_locked(&mut m, addr, end)?;
        }
        // The host side. Inside the reservation we own everything; outside, NOREPLACE makes
        // sure we never clobber cetbox's own memory (holes the guest left are ours to reuse).
        let mut replace = in_reserve(addr, end);
        if !replace {
            replace = Self::claim_holes(&mut m, addr, end);
        }
        let mut host_prot = libc::PROT_READ | libc::PROT_WRITE;
        let mut flags = libc::MAP_PRIVATE;
        let (fd, offset) = match req.fd {
            Some(fd) => (fd, req.offset),
            None => {
                flags |= libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
                (-1, 0)
            }
        };
        if req.shared {
            flags = (flags & !libc::MAP_PRIVATE) | libc::MAP_SHARED;
            if req.fd.is_some() && req.prot & libc::PROT_WRITE as u32 == 0 {
                host_prot = libc::PROT_READ;
            }
        }
        if let Err(e) = host::map_at(addr, len, host_prot, flags, fd, offset, replace) {
            let errno = e.raw_os_error().unwrap_or(libc::ENOMEM);
            return Err(if errno == libc::EEXIST {
                MapError::NoMemory
            } else {
                MapError::Host(errno)
            });
        }
        let vma = Vma {
            start: addr,
            end,
            prot: req.prot,
            shared: req.shared,
            growsdown: req.growsdown,
            kind: req.kind,
            backing: req.backing.clone(),
        };
        m.vmas.insert(addr, vma);
        m.watches.note(addr, end);
        m.sync_published();
        self.fill_prot(addr, end, req.prot, req.kind);
        if req.fd.is_some() && prot_bits(req.prot, req.kind) != 0 {
            self.mark_eof(addr, end, req.offset, req.file_size);
        }
        Self::merge_around(&mut m, addr, end);
        // No code epoch change: a new mapping takes nothing away (one it replaced was
        // unmapped above, which changed the epoch), so no thread needs to wait for others.
        Ok(addr)
    }

    /// Whether a mapping of `prot`, `kind` and sharing has page-table entries and no published
    /// VMA record (published.rs: PROT_NONE, or shared without PROT_WRITE).
    fn plain(prot: u32, kind: VmaKind, shared: bool) -> bool {
        prot_bits(prot, kind) != 0 && !(shared && prot & libc::PROT_WRITE as u32 == 0)
    }

    /// Whether [start, end) is covered, without a gap, by mappings that are all `plain` and
    /// hold no page registered with a userfaultfd.
    fn plain_accessible(m: &Maps, start: u64, end: u64) -> bool {
        let mut at = start;
        for k in Self::overlapping(m, start, end) {
            let v = &m.vmas[&k];
            if v.start > at || !Self::plain(v.prot, v.kind, v.shared) {
                return false;
            }
            at = v.end;
        }
        at >= end
            && m.uffd
                .range(..end)
                .next_back()
                .is_none_or(|(_, e)| *e <= start)
    }

    /// Records as guest memory a shared mapping that `attach` creates on the host at exactly
    /// [addr, addr + len) (a System V shared-memory attach, which only the host kernel can
    /// make), at the place `at` chooses, and returns `addr`. `attach` is given the address and
    /// told whether it may replace what the host has there (the guest reservation or memory
    /// the guest gave up, always cetbox's), and runs under the mapping lock. The search, or
    /// the unmap of what `AdoptAt::Replace` replaces, and the attach are made under one hold of
    /// that lock, as ipc/shm.c do_shmat maps under one mmap_lock: another thread's mapping
    /// cannot take the range in between.
    pub fn adopt_shared(
        &self,
        at: AdoptAt,
        len: u64,
        prot: u32,
        attach: impl FnOnce(u64, bool) -> std::io::Result<()>,
    ) -> Result<u64, MapError> {
        let len = page_ceil(len);
        if len == 0 {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps_changing();
        let addr = match at {
            AdoptAt::Search => self
                .find_free_locked(&m, 0, len, false, 0)
                .ok_or(MapError::NoMemory)?,
            AdoptAt::Exactly(a) | AdoptAt::Replace(a) => a,
        };
        let end = addr.checked_add(len).ok_or(MapError::NoMemory)?;
        if end > self.pt.limit() || addr < MMAP_MIN_ADDR {
            return Err(MapError::NoMemory);
        }
        if !Self::free_in(&m, addr, end) {
            if !matches!(at, AdoptAt::Replace(_)) {
                return Err(MapError::Exists);
            }
            self.unmap_locked(&mut m, addr, end)?;
        }
        let replace = in_reserve(addr, end) || Self::claim_holes(&mut m, addr, end);
        attach(addr, replace)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
        m.vmas.insert(
            addr,
            Vma {
                start: addr,
                end,
                prot,
                shared: true,
                growsdown: false,
                kind: VmaKind::Normal,
                backing: Backing::Anonymous,
            },
        );
        m.watches.note(addr, end);
        m.sync_published();
        self.fill_prot(addr, end, prot, VmaKind::Normal);
        Ok(addr)
    }

    /// The file `(dev, inode)` now holds `size` bytes (the guest truncated, extended or
    /// allocated it): re-derives the past-end-of-file marks of every mapping of it, since Linux
    /// decides SIGBUS at fault time from the file's current size (mm/filemap.c,
    /// filemap_fault), not at mmap time. Pages now inside the file become accessible; pages
    /// past its new end give SIGBUS.
    pub fn file_resized(&self, dev: u64, inode: u64, size: u64) {
        let m = self.maps_changing();
        for v in m.vmas.values() {
            let Backing::File {
                dev: d,
                inode: i,
                offset,
                ..
            } = &v.backing
            else {
                continue;
            };
            if *d != dev || *i != inode || prot_bits(v.prot, v.kind) == 0 {
                continue;
            }
            let first_beyond = v
                .start
                .saturating_add(page_ceil(size).saturating_sub(*offset))
                .min(v.end);
            self.pt
                .update(v.start, first_beyond, !page::BEYOND_EOF, 0, |_| {});
            if first_beyond < v.end {
                self.pt
                    .update(first_beyond, v.end, !0, page::BEYOND_EOF, |_| {});
                // Access taken away (SIGBUS from now on): translated code must not go on
                // using a page it remembered (`removals`).
                self.removals.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Marks the pages of [start, end) that map file offsets at or past the end of a file of
    /// `file_size` bytes, starting at file offset `offset`.
    fn mark_eof(&self, start: u64, end: u64, offset: u64, file_size: u64) {
        let eof_page = page_ceil(file_size);
        let first_beyond = start
            .saturating_add(eof_page.saturating_sub(offset))
            .min(end);
        if first_beyond < end {
            self.pt
                .update(first_beyond, end, !0, page::BEYOND_EOF, |_| {});
        }
    }

    /// Whether `b` directly continues `a` with identical attributes (Linux's vma_merge test).
    fn mergeable(a: &Vma, b: &Vma) -> bool {
        if a.end != b.start
            || a.prot != b.prot
            || a.shared != b.shared
            || a.growsdown != b.growsdown
            || a.kind != b.kind
            || matches!(a.kind, VmaKind::Vdso | VmaKind::Vvar)
        {
            return false;
        }
        match (&a.backing, &b.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::File {
                    path: p1,
                    dev: d1,
                    inode: i1,
                    offset: o1,
                },
                Backing::File {
                    path: p2,
                    dev: d2,
                    inode: i2,
                    offset: o2,
                },
            ) => p1 == p2 && d1 == d2 && i1 == i2 && o1 + a.len() == *o2,
            _ => false,
        }
    }

    /// Merges the VMAs touching [start, end) with their neighbours where Linux would.
    fn merge_around(m: &mut Maps, start: u64, end: u64) {
        let first = m
            .vmas
            .range(..start)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(start);
        let keys: Vec<u64> = m.vmas.range(first..=end).map(|(k, _)| *k).collect();
        let mut cur: Option<u64> = None;
        for k in keys {
            if let Some(c) = cur {
                let (a, b) = (&m.vmas[&c], &m.vmas[&k]);
                if Self::mergeable(a, b) {
                    let b = m.vmas.remove(&k).expect("key from the map");
                    m.vmas.set_end(c, b.end);
                    continue;
                }
            }
            cur = Some(k);
        }
    }

    /// Grows the mapping that ends at `addr + old_len` in place to `addr + new_len`
    /// (mremap without moving). The VMA holding `addr` must end exactly at `addr + old_len`
    /// and the space after it must be free.
    pub fn grow_in_place(&self, addr: u64, old_len: u64, new_len: u64) -> Result<(), MapError> {
        let old_end = addr.checked_add(old_len).ok_or(MapError::NoMemory)?;
        let new_end = addr.checked_add(new_len).ok_or(MapError::NoMemory)?;
        if new_end <= old_end {
            return Ok(());
        }
        let mut m = self.maps_changing();
        let v = m
            .vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end == old_end && v.start <= addr)
            .ok_or(MapError::NoMemory)?;
        if new_end > (USER_LIMIT - PAGE_SIZE).min(self.pt.limit())
            || !Self::free_in(&m, old_end, new_end)
        {
            return Err(MapError::NoMemory);
        }
        if let Some((_, next)) = m.vmas.range(old_end..).next() {
            if new_end > next.start.saturating_sub(Self::start_gap(next)) {
                return Err(MapError::NoMemory);
            }
        }
        // The host mapping is grown with mremap, which keeps file and shared-memory
        // semantics; inside the reservation the reserved pages are dropped first.
        let reserved = in_reserve(old_end, new_end);
        if reserved {
            host::release(old_end, new_end).map_err(|_| MapError::NoMemory)?;
        } else {
            Self::release_holes(&mut m, old_end, new_end);
        }
        if let Err(e) = host::remap(v.start, v.len(), new_end - v.start, None) {
            if reserved {
                let _ = host::reserve(old_end, new_end);
            }
            return Err(MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)));
        }
        self.fill_prot(old_end, new_end, v.prot, v.kind);
        if let (Backing::File { path, offset, .. }, true) =
            (&v.backing, prot_bits(v.prot, v.kind) != 0)
        {
            let size = file_size_of(path, &v.backing);
            self.mark_eof(v.start, new_end, *offset, size);
        }
        m.vmas.set_end(v.start, new_end);
        m.watches.note(old_end, new_end);
        Self::merge_around(&mut m, v.start, new_end);
        Ok(())
    }

    /// Moves [old, old + old_len) (inside one VMA) to `to` with length `new_len` (mremap with
    /// MREMAP_MAYMOVE or MREMAP_FIXED). The target must be free of guest mappings; `dontunmap`
    /// leaves the old range mapped with empty pages (MREMAP_DONTUNMAP).
    pub fn move_mapping(
        &self,
        old: u64,
        old_len: u64,
        to: MoveTarget,
        new_len: u64,
        dontunmap: bool,
    ) -> Result<u64, MapError> {
        let mut m = self.maps_changing();
        // A searched target is found, and a fixed one cleared, under the same hold of the
        // mapping lock as the move, so no other thread's mapping can take it in between
        // (mm/mremap.c mremap_to and move_vma run under one mmap_lock).
        let mut old_len = old_len;
        let new = match to {
            MoveTarget::Fixed(a) => {
                // mremap_to: the target is unmapped, then a source longer than the new length
                // is cut to it, before the source is looked at.
                let a_end = a.checked_add(new_len).ok_or(MapError::NoMemory)?;
                self.unmap_locked(&mut m, a, a_end)?;
                if old_len > new_len {
                    let cut = old.checked_add(new_len).ok_or(MapError::NoMemory)?;
                    self.unmap_locked(&mut m, cut, cut.saturating_add(old_len - new_len))?;
                    old_len = new_len;
                }
                a
            }
            MoveTarget::Search { hint } => self
                .find_free_locked(&m, hint, new_len, false, 0)
                .ok_or(MapError::NoMemory)?,
        };
        let old_end = old.checked_add(old_len).ok_or(MapError::NoMemory)?;
        let new_end = new.checked_add(new_len).ok_or(MapError::NoMemory)?;
        if new_end > (USER_LIMIT - PAGE_SIZE).min(self.pt.limit()) || new < MMAP_MIN_ADDR {
            return Err(MapError::NoMemory);
        }
        // The host move comes before the table follows it: another process's access to this
        // guest's memory must not see the old entries over memory the move took away.
        let _remote = crate::xlock::Hold::take(crate::xlock::Change::Move {
            from: (old, old.saturating_add(old_len)),
            to: (new, new.saturating_add(new_len)),
        });
        let v = m
            .vmas
            .range(..=old)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end >= old_end)
            // No mapping covers the source (vma_to_resize: EFAULT).
            .ok_or(MapError::Host(libc::EFAULT))?;
        if !Self::free_in(&m, new, new_end) {
            return Err(MapError::Exists);
        }
        // Outside the reservation, claim the target first so the host move cannot clobber
        // cetbox's own memory.
        if !in_reserve(new, new_end) {
            Self::release_holes(&mut m, new, new_end);
            host::map_at(
                new,
                new_end - new,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
                false,
            )
            .map_err(|_| MapError::NoMemory)?;
        }
        let r = host::remap(old, old_len, new_len, Some((new, dontunmap)));
        if let Err(e) = r {
            if in_reserve(new, new_end) {
                let _ = host::rereserve(new, new_end);
            } else {
                let _ = host::release(new, new_end);
            }
            return Err(MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)));
        }
        // Page entries travel with the pages (decoded code does not).
        let copy_len = old_len.min(new_len);
        // PROT_NONE entries are 0 on both sides already.
        let mut p = if prot_bits(v.prot, v.kind) == 0 {
            copy_len
        } else {
            0
        };
        while p < copy_len {
            let b = self.pt.get(old + p) & !page::CODE;
            self.pt.fill(new + p, new + p + PAGE_SIZE, b);
            p += PAGE_SIZE;
        }
        let moved = v.slice(old, old_end);
        if new_len > copy_len {
            self.fill_prot(new + copy_len, new_end, v.prot, v.kind);
            if let (Backing::File { path, offset, .. }, true) =
                (&moved.backing, prot_bits(v.prot, v.kind) != 0)
            {
                let size = file_size_of(path, &moved.backing);
                self.mark_eof(new, new_end, *offset, size);
            }
        }
        if !dontunmap {
            m.vmas.remove(&v.start);
            if v.start < old {
                m.vmas.insert(v.start, v.slice(v.start, old));
            }
            if v.end > old_end {
                m.vmas.insert(old_end, v.slice(old_end, v.end));
            }
            self.pt.clear(old, old_end);
            if in_reserve(old, old_end) {
                let _ = host::scrub(old, old_end);
            } else if host::map_at(
                old,
                old_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
                false,
            )
            .is_ok()
            {
                Self::note_hole(&mut m, old, old_end);
            }
        } else {
            // The old range keeps its VMA but its pages are gone: drop decoded code.
            self.pt.update(old, old_end, !page::CODE, 0, |_| {});
        }
        m.vmas.insert(
            new,
            Vma {
                start: new,
                end: new_end,
                ..moved
            },
        );
        // The old range lost its pages (moved, or left empty by MREMAP_DONTUNMAP).
        m.watches.note(old, old_end);
        m.watches.note(new, new_end);
        Self::merge_around(&mut m, new, new_end);
        // Published while the move still refuses both ranges to accessors (a nested
        // directory change is recorded all the same: xlock `Hold::take`).
        m.sync_published();
        self.removals.fetch_add(1, Ordering::Release);
        self.code_epoch.fetch_add(1, Ordering::Release);
        Ok(new)
    }

    /// Records the parts of [start, end) outside the reservation as holes (host memory kept
    /// after a guest unmap).
    fn note_hole(m: &mut Maps, start: u64, end: u64) {
        if !host::window_reserved() {
            m.holes.insert(start, end);
            return;
        }
        for (s, e) in [
            (start, end.min(window_start())),
            (start.max(window_end()), end),
        ] {
            if s < e {
                m.holes.insert(s, e);
            }
        }
    }

    /// Removes [start, end) from the hole list, returning the pieces that were holes.
    fn cut_holes(m: &mut Maps, start: u64, end: u64) -> Vec<(u64, u64)> {
        cut_ranges(&mut m.holes, start, end)
    }

    /// Gives the host memory of holes in [start, end) back to the host, so a NOREPLACE
    /// mapping or an in-place mremap can take the range.
    fn release_holes(m: &mut Maps, start: u64, end: u64) {
        for (s, e) in Self::cut_holes(m, start, end) {
            let _ = host::release(s, e);
        }
    }

    /// Prepares [start, end) (outside the reservation) for a new host mapping. If holes cover
    /// all of it, they are taken over in place (true: map with MAP_FIXED, no window in which
    /// the range is unmapped on the host); otherwise they are released (false: NOREPLACE).
    fn claim_holes(m: &mut Maps, start: u64, end: u64) -> bool {
        let mut cursor = start;
        for (s, e) in m.holes.range(..end) {
            if *e <= cursor {
                continue;
            }
            if *s > cursor {
                break;
            }
            cursor = *e;
            if cursor >= end {
                break;
            }
        }
        if cursor >= end {
            Self::cut_holes(m, start, end);
            true
        } else {
            Self::release_holes(m, start, end);
            false
        }
    }

    /// Records that the guest registered (`on`) or unregistered [start, end) with a
    /// userfaultfd; only the parts inside guest mappings are kept.
    pub fn uffd_registered(&self, start: u64, end: u64, on: bool) {
        let mut m = self.maps_changing();
        cut_ranges(&mut m.uffd, start, end);
        if on {
            self.uffd_used.store(true, Ordering::Relaxed);
            let keys = Self::overlapping(&m, start, end);
            for k in keys {
                let v = &m.vmas[&k];
                let (s, e) = (v.start.max(start), v.end.min(end));
                m.uffd.insert(s, e);
            }
        }
    }

    /// Removes every mapping in [addr, addr + len).
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), MapError> {
        let end = addr.checked_add(page_ceil(len)).ok_or(MapError::NoMemory)?;
        let mut m = self.maps_changing();
        self.unmap_locked(&mut m, addr, end)
    }

    pub(super) fn overlapping(m: &Maps, start: u64, end: u64) -> Vec<u64> {
        let mut keys: Vec<u64> = Vec::new();
        if let Some((k, v)) = m.vmas.range(..start).next_back() {
            if v.end > start {
                keys.push(*k);
            }
        }
        keys.extend(m.vmas.range(start..end).map(|(k, _)| *k));
        keys
    }

    fn unmap_locked(&self, m: &mut Maps, start: u64, end: u64) -> Result<(), MapError> {
        let keys = Self::overlapping(m, start, end);
        if keys.is_empty() {
            // Nothing was there: nothing taken away, no code to drop.
            return Ok(());
        }
        // Whether any page removed was accessible: pages of PROT_NONE mappings have no
        // page-table entry (see `prot_bits`), so no other thread can have an access to them in
        // flight or decoded code from them, and removing only those takes nothing away (glibc
        // trims every new thread's malloc arena that way, from a PROT_NONE reservation).
        let mut takes = false;
        // The OR of the page-table entries removed (CODE: decoded code; SHADOW).
        let mut had = 0u8;
        for k in keys {
            let v = m.vmas.remove(&k).expect("key from the map");
            m.watches.note(v.start.max(start), v.end.min(end));
            takes |= prot_bits(v.prot, v.kind) != 0;
            if v.start < start {
                m.vmas.insert(v.start, v.slice(v.start, start));
            }
            if v.end > end {
                m.vmas.insert(end, v.slice(end, v.end));
            }
            m.sync_published();
            let (s, e) = (v.start.max(start), v.end.min(end));
            // Page table first: from here on new accesses fault. Accesses of other threads
            // that passed their check before still find the old memory: accessible pages are
            // scrubbed only after those threads passed an instruction boundary (`scrub.rs`);
            // pages without an entry (PROT_NONE) can have no access in flight.
            if prot_bits(v.prot, v.kind) != 0 {
                had |= self.pt.take(s, e);
            } else {
                self.pt.clear(s, e);
            }
            crate::pagetable::forget_replaced(s, e);
            let accessible = prot_bits(v.prot, v.kind) != 0;
            if !accessible {
                host::scrub(s, e)
                    .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)))?;
            }
            let mut unscrubbed = vec![(s, e)];
            // Parts registered with a guest userfaultfd: another guest thread may be blocked
            // in the host kernel on a missing page there. Linux retries such a fault after
            // the wake-up and, the VMA being gone, raises SIGSEGV (SEGV_MAPERR) or fails the
            // kernel's copy with EFAULT (fs/userfaultfd.c handle_userfault returns
            // VM_FAULT_RETRY; arch/x86/mm/fault.c then finds no VMA). So these host pages
            // become inaccessible, marked for the host fault handler
            // (`pagetable::recover_unmapped_fault`), which turns a cetbox access that lands
            // there into that guest signal, and a host syscall's copy fails with EFAULT.
            for (us, ue) in cut_ranges(&mut m.uffd, s, e) {
                // Marked first: the host fault handler must know the page once it faults.
                self.pt.fill(us, ue, page::UNMAPPED_UFFD);
                host::rereserve(us, ue)
                    .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::ENOMEM)))?;
                unscrubbed = super::scrub::subtract(unscrubbed, std::iter::once((us, ue)));
            }
            if accessible {
                for (us, ue) in unscrubbed {
                    self.defer_scrub(m, us, ue);
                }
            }
            Self::note_hole(m, s, e);
        }
        if takes {
            self.removals.fetch_add(1, Ordering::Release);
            // Decoded code and translations survive the unmap of pages nothing was decoded
            // from (a program's start-up unmaps data many times: python3's cost 26,000
            // decoded blocks decoded again). A decoder that marks a page CODE after `take`
            // cleared it changes the epoch itself (`mark_code`).
            if had & (page::CODE | page::SHADOW) != 0 {
                self.code_epoch.fetch_add(1, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Changes the protection of [addr, addr + len); fails with NoMemory if any page in the
    /// range is unmapped (Linux's ENOMEM), changing nothing.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) -> Result<(), MapError> {
        let end = addr.checked_add(page_ceil(len)).ok_or(MapError::NoMemory)?;
        let mut m = self.maps_changing();
        // Every byte must be covered.
        let keys = Self::overlapping(&m, addr, end);
        // Whether any page loses a permission: only then may other threads hold accesses or
        // decoded code the change invalidates (the code epoch changes, and the syscall layer
        // waits for them); adding permissions, as pthread_create does for a new stack, needs
        // neither.
        // Adding EXEC to pages that stay writable counts too: translated code may keep
        // knowing such a page writable and free of decoded code for the rest of its entry
        // when it was not executable (crates/jit/src/memop.rs, `check_place`), and must not
        // once another thread can decode code from it.
        let wx = (libc::PROT_WRITE | libc::PROT_EXEC) as u32;
        let removes = keys.iter().any(|k| {
            let old = m.vmas[k].prot;
            old & !prot != 0 || (old & libc::PROT_EXEC as u32 == 0 && prot & wx == wx)
        });
        let mut cursor = addr;
        for k in &keys {
            let v = &m.vmas[k];
            if v.start > cursor {
                return Err(MapError::NoMemory);
            }
            cursor = v.end;
        }
        if cursor < end {
            return Err(MapError::NoMemory);
        }
        // The OR of the entries changed, as they were (CODE: decoded code; SHADOW).
        let had = std::cell::Cell::new(0u8);
        for k in keys {
            // Its record stays published beside the new one until the change is done.
            let v = m.vmas.remove_keeping(&k).expect("key from the map");
            if v.start < addr {
                m.vmas.insert(v.start, v.slice(v.start, addr));
            }
            if v.end > end {
                m.vmas.insert(end, v.slice(end, v.end));
            }
            let mut mid = v.slice(addr, end);
            // Shared file mappings are made writable on the host only when the guest asks for
            // write access (the host then checks the file's open mode, giving EACCES). They
            // are never made read-only again: the page table already refuses guest writes,
            // and another guest thread whose write passed its check must not crash cetbox.
            if v.shared
                && matches!(v.backing, Backing::File { .. })
                && prot & libc::PROT_WRITE as u32 != 0
            {
                let hp = libc::PROT_READ | libc::PROT_WRITE;
                host::protect(mid.start, mid.len(), hp)
                    .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EACCES)))?;
            }
            let was_none = prot_bits(mid.prot, mid.kind) == 0;
            mid.prot = prot;
            // The new VMA is published before its entries change (`sync_published`).
            m.vmas.insert(mid.start, mid.clone());
            m.sync_published();
            let keep = page::CODE | page::BEYOND_EOF | page::POPULATED;
            let bits = prot_bits(prot, mid.kind);
            if bits == 0 {
                had.set(had.get() | self.pt.take(mid.start, mid.end));
            } else {
                // Every value the exchange saw counts (a CODE mark racing with it included;
                // one landing after it finds the new permissions, `mark_code`).
                self.pt.update(mid.start, mid.end, keep, bits, |b| {
                    had.set(had.get() | b);
                });
                // PROT_NONE pages kept no entries: mark those past EOF again.
                if let (true, Backing::File { path, offset, .. }) = (was_none, &mid.backing) {
                    let size = file_size_of(path, &mid.backing);
                    self.mark_eof(mid.start, mid.end, *offset, size);
                }
            }
        }
        Self::merge_around(&mut m, addr, end);
        if removes {
            self.removals.fetch_add(1, Ordering::Release);
            // As for unmaps: only pages holding decoded code (or shadow stacks) invalidate
            // decoded code and translations (ld.so's RELRO mprotect of data pages does not).
            if had.get() & (page::CODE | page::SHADOW) != 0 {
                self.code_epoch.fetch_add(1, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Extends the VMA starting at `start` downward to `new_start` (stack growth).
    pub fn grow_down(&self, start: u64, new_start: u64) -> Result<(), MapError> {
        if new_start >= start {
            return Err(MapError::NoMemory);
        }
        let mut m = self.maps_changing();
        let v = m.vmas.get(&start).cloned().ok_or(MapError::NoMemory)?;
        if !Self::free_in(&m, new_start, start) {
            return Err(MapError::NoMemory);
        }
        if !in_reserve(new_start, start) {
            Self::release_holes(&mut m, new_start, start);
        }
        host::map_at(
            new_start,
            start - new_start,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
            in_reserve(new_start, start),
        )
        .map_err(|_| MapError::NoMemory)?;
        m.vmas.remove(&start);
        m.watches.note(new_start, start);
        let (prot, kind) = (v.prot, v.kind);
        m.vmas.insert(
            new_start,
            Vma {
                start: new_start,
                ..v
            },
        );
        m.sync_published();
        self.fill_prot(new_start, start, prot, kind);
        Ok(())
    }

    /// Forwards madvise advice for guest memory. Advice that may discard pages
    /// (MADV_DONTNEED, MADV_FREE, MADV_REMOVE) also drops decoded code.
    pub fn advise(&self, addr: u64, len: u64, advice: i32) -> Result<(), MapError> {
        host::advise(addr, page_ceil(len), advice)
            .map_err(|e| MapError::Host(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
        if matches!(
            advice,
            libc::MADV_DONTNEED | libc::MADV_FREE | libc::MADV_REMOVE
        ) {
            // Discarded pages lose their page-table entries (and any decoded code). Only
            // dropping decoded code, or discarding a populated shadow-stack page, changes the
            // epoch and counts as a removal (which makes the syscall layer wait for other
            // threads); discarding data
            // races with other threads' accesses on Linux too. A shadow-stack page is the
            // exception because translated code may keep knowing it populated for a while
            // (crates/jit/src/memop.rs, `check_shadow`) and must stop doing so. Discarding
            // any populated page counts as a removal (without an epoch change): translated
            // code may keep knowing a readable page populated for the rest of its entry
            // (`cetbox_mem::remembered`), and a read that skips the table would not mark it
            // populated again (the P bit of a later fault's error code), so other threads
            // must leave translated code first, as Linux's TLB flush reaches other CPUs.
            let shadow = std::cell::Cell::new(false);
            let populated = std::cell::Cell::new(false);
            let and = !(page::CODE | page::POPULATED);
            let changed = self.pt.update(addr, addr + page_ceil(len), and, 0, |b| {
                if b & (page::SHADOW | page::POPULATED) == page::SHADOW | page::POPULATED {
                    shadow.set(true);
                }
                if b & page::POPULATED != 0 {
                    populated.set(true);
                }
            });
            if changed & page::CODE != 0 || shadow.get() {
                self.removals.fetch_add(1, Ordering::Release);
                self.code_epoch.fetch_add(1, Ordering::Release);
            } else if populated.get() {
                self.removals.fetch_add(1, Ordering::Release);
            }
        }
        Ok(())
    }
}
