//! Memory syscalls: mmap, munmap, mprotect, mremap, brk, madvise, msync, mincore, the mlock
//! family and membarrier, with Linux 6.6's argument checks in Linux's order. (Stack growth on page
//! faults is in `stack_growth.rs`.)
//!
//! Known differences: fixed mappings that collide with cetbox's own memory (outside the
//! guest area) fail with ENOMEM; mprotect/madvise over a range with a hole change nothing
//! (Linux changes the VMAs before the hole); mlock is accepted but not enforced.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::{
    page_ceil, Backing, MapRequest, MoveTarget, VmaKind, MMAP_MIN_ADDR, PAGE_SIZE, STACK_GUARD_GAP,
};

pub use crate::abi::TASK_SIZE;
use crate::abi::{
    MAP_32BIT, MAP_ANONYMOUS, MAP_DENYWRITE, MAP_EXECUTABLE, MAP_FIXED, MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN, MAP_HUGETLB, MAP_HUGE_MASK, MAP_HUGE_SHIFT, MAP_LOCKED, MAP_NONBLOCK,
    MAP_NORESERVE, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, MAP_STACK, MAP_TYPE,
    MAP_UNINITIALIZED, PROT_GROWSDOWN, PROT_GROWSUP, PROT_RWX, PROT_SEM,
};
/// Flags a plain MAP_SHARED mapping accepts (unknown ones are ignored; MAP_SHARED_VALIDATE
/// rejects them with EOPNOTSUPP).
const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

/// Linux's default overcommit heuristic (OVERCOMMIT_GUESS): one accounted allocation may not
/// exceed total RAM plus swap.
pub fn enough_memory(len: u64) -> bool {
    // SAFETY: sysinfo fills the zeroed struct.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: sysinfo writes only into `si`.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return true;
    }
    let unit = si.mem_unit.max(1) as u64;
    let total = (si.totalram as u64)
        .saturating_add(si.totalswap as u64)
        .saturating_mul(unit);
    len <= total
}

fn offset_in_page(x: u64) -> bool {
    x & (PAGE_SIZE - 1) != 0
}

/// What a host fd is, for mmap.
struct FdInfo {
    mode: libc::mode_t,
    size: u64,
    dev: u64,
    ino: u64,
    readable: bool,
    writable: bool,
    path: String,
}

fn fd_info(fd: i32) -> Result<FdInfo, Errno> {
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: fstat writes into the zeroed struct we pass; an invalid fd gives EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes only into `st`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: F_GETFL has no memory arguments.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(Errno::EBADF);
    }
    let acc = fl & libc::O_ACCMODE;
    if fl & libc::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(FdInfo {
        mode: st.st_mode,
        size: st.st_size as u64,
        dev: st.st_dev,
        ino: st.st_ino,
        readable: acc == libc::O_RDONLY || acc == libc::O_RDWR,
        writable: acc == libc::O_WRONLY || acc == libc::O_RDWR,
        path,
    })
}

/// mmap(2).
pub fn sys_mmap(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (addr, len, prot, mut flags, fd, off) = (a[0], a[1], a[2], a[3], a[4] as i32, a[5]);
    // x86-64 sys_mmap: the byte offset must be page-aligned.
    if offset_in_page(off) {
        return Err(Errno::EINVAL);
    }
    let pgoff = off >> 12;
    let anon = flags & MAP_ANONYMOUS != 0;
    let mut info = None;
    if !anon {
        let fi = fd_info(fd)?;
        if flags & MAP_HUGETLB != 0 {
            return Err(Errno::EINVAL);
        }
        info = Some(fi);
    } else if flags & MAP_HUGETLB != 0 {
        // Only the default, 2 MiB and 1 GiB sizes exist; none has pages reserved.
        let log = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
        if !matches!(log, 0 | 21 | 30) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        return Err(Errno::ENOMEM);
    }
    // do_mmap.
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MAP_FIXED_NOREPLACE != 0 {
        flags |= MAP_FIXED;
    }
    let fixed = flags & MAP_FIXED != 0;
    let hint = if fixed {
        addr
    } else if addr != 0 {
        page_ceil(addr.max(MMAP_MIN_ADDR))
    } else {
        0
    };
    let len = page_ceil(len);
    if len == 0 || len > TASK_SIZE {
        return Err(Errno::ENOMEM);
    }
    if pgoff.checked_add(len >> 12).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    // get_unmapped_area's checks for a fixed address.
    if fixed {
        if addr > TASK_SIZE - len {
            return Err(Errno::ENOMEM);
        }
        if offset_in_page(addr) {
            return Err(Errno::EINVAL);
        }
        if addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && !t.mem().is_free(addr, addr + len) {
            return Err(Errno::EEXIST);
        }
    }
    let growsdown = flags & MAP_GROWSDOWN != 0;
    let mut shared = false;
    let mut req_fd = None;
    let mut file_size = 0;
    let mut backing = Backing::Anonymous;
    match &info {
        Some(fi) => {
            let ty = flags & MAP_TYPE;
            match ty {
                MAP_SHARED | MAP_SHARED_VALIDATE => {
                    if ty == MAP_SHARED_VALIDATE
                        && flags & !LEGACY_MAP_MASK & !MAP_FIXED_NOREPLACE != 0
                    {
                        return Err(Errno::EOPNOTSUPP);
                    }
                    if prot & libc::PROT_WRITE as u64 != 0 && !fi.writable {
                        return Err(Errno::EACCES);
                    }
                    shared = true;
                }
                MAP_PRIVATE => {}
                _ => return Err(Errno::EINVAL),
            }
            if !fi.readable {
                return Err(Errno::EACCES);
            }
            let fmt = fi.mode & libc::S_IFMT;
            if fmt == libc::S_IFDIR || fmt == libc::S_IFIFO || fmt == libc::S_IFSOCK {
                return Err(Errno::ENODEV);
            }
            if growsdown {
                return Err(Errno::EINVAL);
            }
            // Regular files are limited to MAX_LFS_FILESIZE.
            if fmt == libc::S_IFREG && off.checked_add(len).is_none_or(|e| e > i64::MAX as u64) {
                return Err(Errno::EOVERFLOW);
            }
            req_fd = Some(fd);
            file_size = if fmt == libc::S_IFREG {
                fi.size
            } else {
                u64::MAX / 2
            };
            backing = Backing::File {
                path: fi.path.clone(),
                dev: fi.dev,
                inode: fi.ino,
                offset: off,
            };
        }
        None => match flags & MAP_TYPE {
            MAP_SHARED => {
                if growsdown {
                    return Err(Errno::EINVAL);
                }
                shared = true;
            }
            MAP_PRIVATE => {}
            _ => return Err(Errno::EINVAL),
        },
    }
    // VM_ACCOUNT mappings (private writable, not MAP_NORESERVE) face the overcommit check.
    if !shared
        && prot & libc::PROT_WRITE as u64 != 0
        && flags & MAP_NORESERVE == 0
        && !enough_memory(len)
    {
        return Err(Errno::ENOMEM);
    }
    // RLIMIT_AS / RLIMIT_DATA (may_expand_vm); a MAP_FIXED mapping replaces what it covers.
    let replaced = if fixed {
        crate::rlimit::overlap(t.mem(), hint, hint.saturating_add(len))
    } else {
        (0, 0)
    };
    let data = crate::rlimit::is_data((prot & PROT_RWX) as u32, shared, growsdown);
    if !crate::rlimit::may_expand(t.mem(), len, data, replaced) {
        return Err(Errno::ENOMEM);
    }
    let req = MapRequest {
        addr: hint,
        len,
        prot: (prot & PROT_RWX) as u32,
        fixed,
        noreplace: flags & MAP_FIXED_NOREPLACE != 0,
        shared,
        growsdown,
        low_2g: flags & MAP_32BIT != 0 && !fixed,
        fd: req_fd,
        offset: if req_fd.is_some() { off } else { 0 },
        file_size,
        kind: VmaKind::Normal,
        backing,
    };
    t.mem().map(&req).map_err(Errno::from)
}

/// munmap(2).
pub fn sys_munmap(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (start, len) = (a[0], a[1]);
    if offset_in_page(start) || start > TASK_SIZE || len > TASK_SIZE - start {
        return Err(Errno::EINVAL);
    }
    let len = page_ceil(len);
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    t.mem().unmap(start, len).map_err(Errno::from)?;
    Ok(0)
}

/// Whether every byte of [start, end) is covered by VMAs.
fn covered(t: &Thread, start: u64, end: u64) -> bool {
    let mut c = start;
    while c < end {
        match t.mem().find_vma(c) {
            Some(v) => c = v.end,
            None => return false,
        }
    }
    true
}

/// mprotect(2).
pub fn sys_mprotect(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (mut start, len, prot) = (a[0], a[1], a[2] as u32 as u64);
    let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
    let prot = prot & !grows;
    if grows == PROT_GROWSDOWN | PROT_GROWSUP {
        return Err(Errno::EINVAL);
    }
    if offset_in_page(start) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_ceil(len);
    let end = start.wrapping_add(len);
    if len == 0 || end <= start {
        return Err(Errno::ENOMEM);
    }
    if prot & !(PROT_RWX | PROT_SEM) != 0 {
        return Err(Errno::EINVAL);
    }
    let mem = t.mem();
    // The first VMA ending above start.
    let vma = match mem.find_vma(start) {
        Some(v) => Some(v),
        None => mem.vmas().into_iter().find(|v| v.end > start),
    };
    let Some(vma) = vma else {
        return Err(Errno::ENOMEM);
    };
    if grows & PROT_GROWSDOWN != 0 {
        if vma.start >= end {
            return Err(Errno::ENOMEM);
        }
        start = vma.start;
        if !vma.growsdown {
            return Err(Errno::EINVAL);
        }
    } else {
        if vma.start > start {
            return Err(Errno::ENOMEM);
        }
        if grows & PROT_GROWSUP != 0 {
            return Err(Errno::EINVAL);
        }
    }
    if !covered(t, start, end) {
        return Err(Errno::ENOMEM);
    }
    t.mem()
        .protect(start, end - start, (prot & PROT_RWX) as u32)
        .map_err(Errno::from)?;
    Ok(0)
}

/// brk(2): returns the new break, or the current one when the request cannot be met.
pub fn sys_brk(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let want = a[0];
    let (start, cur) = {
        let img = t.proc.image();
        (img.brk_start, img.brk)
    };
    if want < start || start == 0 {
        return Ok(cur);
    }
    let new_end = page_ceil(want);
    let old_end = page_ceil(cur);
    if new_end == old_end {
        t.proc.image().brk = want;
        return Ok(want);
    }
    if new_end < old_end {
        if t.mem().unmap(new_end, old_end - new_end).is_err() {
            return Ok(cur);
        }
        t.proc.image().brk = want;
        return Ok(want);
    }
    // The guest's RLIMIT_DATA bounds the heap (as Linux's check_data_rlimit, ignoring other
    // data), and the new part must fit RLIMIT_AS / RLIMIT_DATA (do_brk_flags' may_expand_vm).
    let data_lim = crate::rlimit::soft(libc::RLIMIT_DATA as i32);
    if data_lim != crate::rlimit::INFINITY && want - start > data_lim {
        return Ok(cur);
    }
    if !crate::rlimit::may_expand(t.mem(), new_end - old_end, true, (0, 0)) {
        return Ok(cur);
    }
    if new_end > TASK_SIZE || !enough_memory(new_end - old_end) {
        return Ok(cur);
    }
    // The new part must be free, with a page to spare below the next mapping's start gap.
    let mem = t.mem();
    let next = mem.vmas().into_iter().find(|v| v.end > old_end);
    if let Some(n) = next {
        let gap = if n.kind == VmaKind::ShadowStack {
            PAGE_SIZE
        } else if n.growsdown {
            STACK_GUARD_GAP
        } else {
            0
        };
        if new_end + PAGE_SIZE > n.start.saturating_sub(gap) {
            return Ok(cur);
        }
    }
    let mut req = MapRequest::anonymous(
        old_end,
        new_end - old_end,
        (libc::PROT_READ | libc::PROT_WRITE) as u32,
        VmaKind::Heap,
    );
    req.noreplace = true;
    if mem.map(&req).is_err() {
        return Ok(cur);
    }
    t.proc.image().brk = want;
    Ok(want)
}

/// mremap(2).
pub fn sys_mremap(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (addr, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len) {
        return Err(Errno::EINVAL);
    }
    if offset_in_page(addr) {
        return Err(Errno::EINVAL);
    }
    let old_len = page_ceil(old_len);
    let new_len = page_ceil(new_len);
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let mem = t.mem();
    let Some(vma) = mem.find_vma(addr) else {
        return Err(Errno::EFAULT);
    };
    if old_len == 0 {
        // Duplicating a shared mapping is not supported by the address space.
        return Err(if vma.shared {
            Errno::ENOMEM
        } else {
            Errno::EINVAL
        });
    }
    if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        // mremap_to.
        if offset_in_page(new_addr) {
            return Err(Errno::EINVAL);
        }
        if new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
            return Err(Errno::EINVAL);
        }
        // Unsigned long arithmetic, wrapping as in mm/mremap.c (mremap_to).
        if addr.wrapping_add(old_len) > new_addr && new_addr + new_len > addr {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && new_addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        // With MREMAP_FIXED, `move_mapping` unmaps the target and cuts a longer source to
        // `new_len` under the hold of the mapping lock it moves under: another thread's mmap
        // must not take the cleared target in between (mm/mremap.c mremap_to, one
        // mmap_lock). Without it, old_len == new_len (MREMAP_DONTUNMAP).
        let target = if flags & MREMAP_FIXED != 0 {
            MoveTarget::Fixed(new_addr)
        } else {
            MoveTarget::Search { hint: new_addr }
        };
        return mem
            .move_mapping(
                addr,
                old_len,
                target,
                new_len,
                flags & MREMAP_DONTUNMAP != 0,
            )
            .map_err(Errno::from);
    }
    if old_len >= new_len {
        if old_len > new_len {
            mem.unmap(addr + new_len, old_len - new_len)
                .map_err(Errno::from)?;
        }
        return Ok(addr);
    }
    if old_len > vma.end - addr {
        return Err(Errno::EFAULT);
    }
    if !vma.shared && vma.prot & libc::PROT_WRITE as u32 != 0 && !enough_memory(new_len - old_len) {
        return Err(Errno::ENOMEM);
    }
    let data = crate::rlimit::is_data(vma.prot, vma.shared, vma.growsdown);
    if !crate::rlimit::may_expand(mem, new_len - old_len, data, (0, 0)) {
        return Err(Errno::ENOMEM);
    }
    if old_len == vma.end - addr && mem.grow_in_place(addr, old_len, new_len).is_ok() {
        return Ok(addr);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    mem.move_mapping(
        addr,
        old_len,
        MoveTarget::Search { hint: 0 },
        new_len,
        false,
    )
    .map_err(Errno::from)
}

const MADV_NORMAL: i32 = 0;
const MADV_HWPOISON: i32 = 100;
const MADV_SOFT_OFFLINE: i32 = 101;

/// madvise(2).
pub fn sys_madvise(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (start, len, advice) = (a[0], a[1], a[2] as i32);
    let valid = matches!(advice, MADV_NORMAL..=4 | 8..=25)
        || advice == MADV_HWPOISON
        || advice == MADV_SOFT_OFFLINE;
    if !valid {
        return Err(Errno::EINVAL);
    }
    if offset_in_page(start) {
        return Err(Errno::EINVAL);
    }
    let len = page_ceil(len);
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(0);
    }
    if advice == MADV_HWPOISON || advice == MADV_SOFT_OFFLINE {
        return Err(Errno::EPERM);
    }
    let mem = t.mem();
    let vmas: Vec<_> = mem
        .vmas()
        .into_iter()
        .filter(|v| v.end > start && v.start < end)
        .collect();
    let mut hole = vmas.first().is_none_or(|v| v.start > start);
    for w in vmas.windows(2) {
        hole |= w[0].end < w[1].start;
    }
    hole |= vmas.last().is_none_or(|v| v.end < end);
    for v in &vmas {
        let private_anon = !v.shared && v.backing == Backing::Anonymous;
        let bad = match advice {
            libc::MADV_FREE | libc::MADV_WIPEONFORK | libc::MADV_KEEPONFORK => !private_anon,
            libc::MADV_REMOVE => !v.shared,
            _ => false,
        };
        if bad {
            return Err(Errno::EINVAL);
        }
    }
    for v in &vmas {
        let (s, e) = (v.start.max(start), v.end.min(end));
        match advice {
            libc::MADV_DONTNEED | 24 | libc::MADV_FREE | libc::MADV_REMOVE => {
                let host = if advice == 24 {
                    libc::MADV_DONTNEED
                } else {
                    advice
                };
                mem.advise(s, e - s, host).map_err(Errno::from)?;
            }
            _ => {}
        }
    }
    if hole {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// msync(2).
pub fn sys_msync(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (start, len, flags) = (a[0], a[1], a[2] as i32);
    if flags & !(libc::MS_ASYNC | libc::MS_INVALIDATE | libc::MS_SYNC) != 0 {
        return Err(Errno::EINVAL);
    }
    if offset_in_page(start) {
        return Err(Errno::EINVAL);
    }
    if flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_ceil(len);
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::ENOMEM);
    }
    if end == start {
        return Ok(0);
    }
    let mem = t.mem();
    let mut hole = false;
    let mut c = start;
    while c < end {
        match mem.find_vma(c) {
            Some(v) => {
                let e = v.end.min(end);
                if v.shared && matches!(v.backing, Backing::File { .. }) {
                    mem.sync(c, e - c, flags).map_err(Errno::from)?;
                }
                c = e;
            }
            None => {
                hole = true;
                match mem.vmas().into_iter().find(|v| v.start > c) {
                    Some(v) => c = v.start,
                    None => break,
                }
            }
        }
    }
    if hole {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// mincore(2).
pub fn sys_mincore(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (start, len, vec) = (a[0], a[1], a[2]);
    if offset_in_page(start) {
        return Err(Errno::EINVAL);
    }
    if start > TASK_SIZE || len > TASK_SIZE - start {
        return Err(Errno::ENOMEM);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    if vec.checked_add(pages).is_none_or(|e| e > TASK_SIZE) {
        return Err(Errno::EFAULT);
    }
    if pages == 0 {
        return Ok(0);
    }
    let end = start + pages * PAGE_SIZE;
    if !covered(t, start, end) {
        return Err(Errno::ENOMEM);
    }
    let mut out = vec![0u8; pages as usize];
    t.mem()
        .residency(start, end - start, &mut out)
        .map_err(Errno::from)?;
    for b in &mut out {
        *b &= 1;
    }
    t.mem().write_bytes(vec, &out)?;
    Ok(0)
}

fn lock_range(t: &Thread, start: u64, len: u64) -> SysResult {
    let s = start & !(PAGE_SIZE - 1);
    let Some(end) = start.checked_add(len).map(page_ceil) else {
        return Err(Errno::EINVAL);
    };
    if len == 0 {
        return Ok(0);
    }
    if !covered(t, s, end) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// mlock(2): accepted (guest memory is never paged out by cetbox) once the range is mapped.
pub fn sys_mlock(t: &mut Thread, a: [u64; 6]) -> SysResult {
    lock_range(t, a[0], a[1])
}

pub fn sys_mlock2(t: &mut Thread, a: [u64; 6]) -> SysResult {
    const MLOCK_ONFAULT: u64 = 1;
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    lock_range(t, a[0], a[1])
}

pub fn sys_munlock(t: &mut Thread, a: [u64; 6]) -> SysResult {
    lock_range(t, a[0], a[1])
}

pub fn sys_mlockall(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    const MCL_CURRENT: u64 = 1;
    const MCL_FUTURE: u64 = 2;
    const MCL_ONFAULT: u64 = 4;
    let f = a[0] as u32 as u64;
    if f == 0 || f & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || f == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_munlockall(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    Ok(0)
}

/// membarrier(2): guest threads are host threads of this process, so the host's membarrier
/// gives exactly the guarantees the guest asks for.
pub fn sys_membarrier(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    // SAFETY: membarrier takes no pointers.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, a[0] as i32, a[1] as u32, a[2] as i32) };
    Errno::check(r)
}
