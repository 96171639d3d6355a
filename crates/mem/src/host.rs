//! The host side of guest mappings: every guest page is backed by host memory at the same
//! address. All host mapping calls live here.

use std::io;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The region reserved at start-up for guest mmap placement (see `AddressSpace::new`). It lies
/// below the host's own mmap area and above the host's executable and heap.
pub const RESERVE_START: u64 = 0x6000_0000_0000;
pub const RESERVE_END: u64 = 0x7e00_0000_0000;

/// The guest placement window in use: [RESERVE_START, RESERVE_END), reserved on the host, or
/// under an address-space limit too small for that reservation a smaller window below the
/// page table's coverage that is not reserved (see `AddressSpace::new`).
static WINDOW_START: AtomicU64 = AtomicU64::new(RESERVE_START);
static WINDOW_END: AtomicU64 = AtomicU64::new(RESERVE_END);
static RESERVED: AtomicBool = AtomicBool::new(true);

pub fn set_window(start: u64, end: u64, reserved: bool) {
    WINDOW_START.store(start, Ordering::Relaxed);
    WINDOW_END.store(end, Ordering::Relaxed);
    RESERVED.store(reserved, Ordering::Relaxed);
}

pub fn window_start() -> u64 {
    WINDOW_START.load(Ordering::Relaxed)
}

pub fn window_end() -> u64 {
    WINDOW_END.load(Ordering::Relaxed)
}

/// Whether the window is reserved on the host (cetbox owns everything in it).
pub fn window_reserved() -> bool {
    RESERVED.load(Ordering::Relaxed)
}

fn check(p: *mut libc::c_void) -> io::Result<u64> {
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p as u64)
    }
}

/// Reserves [start, end) as inaccessible, uncommitted host memory, failing if anything is there.
pub fn reserve(start: u64, end: u64) -> io::Result<()> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it fails instead.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            (end - start) as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    let got = check(p)?;
    if got != start {
        // Old kernels treat NOREPLACE as a hint.
        // SAFETY: we just created this mapping and nobody else knows of it.
        unsafe { libc::munmap(p, (end - start) as usize) };
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(())
}

/// Puts back the reservation over [start, end) (which must lie inside the guest reservation and
/// hold only guest memory), dropping the guest pages that were there.
pub fn rereserve(start: u64, end: u64) -> io::Result<()> {
    // SAFETY: the caller guarantees the range holds only guest memory cetbox owns.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            (end - start) as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    check(p).map(|_| ())
}

/// Replaces guest memory the guest just unmapped, [start, end), with fresh zero pages that stay
/// readable and writable on the host. The page table already says "unmapped", so every later
/// guest access faults as it should; but another guest thread that passed its page-table check
/// just before the unmap may still touch the range, and it must land on harmless memory rather
/// than crash cetbox with a host SIGSEGV.
pub fn scrub(start: u64, end: u64) -> io::Result<()> {
    // SAFETY: the caller guarantees the range holds only guest memory cetbox owns.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            (end - start) as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    check(p).map(|_| ())
}

/// Releases guest memory outside the reservation.
pub fn release(start: u64, end: u64) -> io::Result<()> {
    // SAFETY: the caller guarantees the range holds only guest memory cetbox owns.
    let r = unsafe { libc::munmap(start as *mut libc::c_void, (end - start) as usize) };
    zero_or_errno(r)
}

/// Maps guest memory at exactly `start`. `replace` allows replacing what is there (only ever
/// guest memory or the guest reservation); otherwise the host must have nothing there.
pub fn map_at(
    start: u64,
    len: u64,
    prot: i32,
    flags: i32,
    fd: i32,
    offset: u64,
    replace: bool,
) -> io::Result<()> {
    let fixed = if replace {
        libc::MAP_FIXED
    } else {
        libc::MAP_FIXED_NOREPLACE
    };
    // SAFETY: with `replace` the caller guarantees the range holds only guest memory or the
    // guest reservation; otherwise NOREPLACE leaves existing mappings alone.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len as usize,
            prot,
            flags | fixed,
            fd,
            offset as i64,
        )
    };
    let got = check(p)?;
    if got != start {
        // SAFETY: the mapping was just created at a place the kernel chose; nobody uses it.
        unsafe { libc::munmap(p, len as usize) };
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(())
}

/// Changes the host protection of guest memory.
pub fn protect(start: u64, len: u64, prot: i32) -> io::Result<()> {
    // SAFETY: the caller guarantees the range holds only guest memory.
    let r = unsafe { libc::mprotect(start as *mut libc::c_void, len as usize, prot) };
    zero_or_errno(r)
}

/// Forwards madvise for guest memory (MADV_DONTNEED and friends).
pub fn advise(start: u64, len: u64, advice: i32) -> io::Result<()> {
    // SAFETY: the caller guarantees the range holds only guest memory.
    let r = unsafe { libc::madvise(start as *mut libc::c_void, len as usize, advice) };
    zero_or_errno(r)
}

/// Grows or moves a guest host mapping with mremap. `to` = Some((addr, dontunmap)) moves it to
/// exactly `addr` (which the caller owns); None resizes in place only.
pub fn remap(old: u64, old_len: u64, new_len: u64, to: Option<(u64, bool)>) -> io::Result<()> {
    let (flags, target) = match to {
        Some((a, dontunmap)) => (
            libc::MREMAP_MAYMOVE
                | libc::MREMAP_FIXED
                | if dontunmap { libc::MREMAP_DONTUNMAP } else { 0 },
            a,
        ),
        None => (0, 0),
    };
    // SAFETY: the caller guarantees [old, old + old_len) is guest memory and that the target
    // (when moving) holds only guest memory or a placeholder it owns; without MAYMOVE the host
    // grows in place only into free address space.
    let p = unsafe {
        libc::mremap(
            old as *mut libc::c_void,
            old_len as usize,
            new_len as usize,
            flags,
            target as *mut libc::c_void,
        )
    };
    let got = check(p)?;
    if to.is_some_and(|(a, _)| a != got) || (to.is_none() && got != old) {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    Ok(())
}

/// msync for guest memory.
pub fn msync(start: u64, len: u64, flags: i32) -> io::Result<()> {
    // SAFETY: msync only writes back or invalidates page caches of the caller's guest range.
    let r = unsafe { libc::msync(start as *mut libc::c_void, len as usize, flags) };
    zero_or_errno(r)
}

/// mincore for guest memory; `out` must hold one byte per page.
pub fn mincore(start: u64, len: u64, out: &mut [u8]) -> io::Result<()> {
    if (out.len() as u64) < len.div_ceil(4096) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `out` is large enough for one byte per page of the range.
    let r = unsafe {
        libc::mincore(
            start as *mut libc::c_void,
            len as usize,
            out.as_mut_ptr().cast::<libc::c_uchar>(),
        )
    };
    zero_or_errno(r)
}

/// The result of a host call that returns 0 on success and -1 with errno on failure.
fn zero_or_errno(r: libc::c_int) -> io::Result<()> {
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
