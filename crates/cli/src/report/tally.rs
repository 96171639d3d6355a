//! The process-tree tally behind `--error-exitcode`: how many violations every cetbox process
//! of a run reported, and at how many distinct sites.
//!
//! Every guest process of a run is a cetbox process descended from the top-level one: fork
//! makes host children that keep running cetbox, and execve replaces the guest image inside
//! the same cetbox process (or re-executes cetbox itself, passing this tally's descriptor on).
//! So the top-level cetbox creates one page of shared memory (a memfd mapped MAP_SHARED)
//! before the guest starts, every descendant inherits the mapping, and each process adds to
//! it with atomic operations when it reports a violation. When the top-level guest exits, the
//! top-level cetbox reads the totals: no messages, pipes or waiting on children are needed.
//!
//! Distinct sites across processes: a site is (kind, the object file holding the instruction,
//! the file offset of the instruction), so the same faulty function reached in several
//! processes (a test suite running one program many times) counts once. Each site's 64-bit
//! hash is inserted into an open-addressing set in the same shared memory with
//! compare-and-swap; if the set ever fills up, further sites are counted without dedup.

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots of the shared site set.
const SLOTS: usize = 8192;

#[repr(C)]
struct Shared {
    violations: AtomicU64,
    sites: AtomicU64,
    set: [AtomicU64; SLOTS],
}

/// A handle on the shared tally (valid in every process of the tree).
pub struct Tally {
    shared: &'static Shared,
    /// The memfd behind the mapping (kept open so a re-executed cetbox can map it again).
    pub fd: i32,
}

impl Tally {
    /// Creates the tally of a new run (the top-level cetbox).
    pub fn create() -> std::io::Result<Tally> {
        // SAFETY: memfd_create with a static NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"cetbox-tally".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let size = std::mem::size_of::<Shared>() as libc::off_t;
        // SAFETY: resizing the memfd we just created.
        if unsafe { libc::ftruncate(fd, size) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: closing our own descriptor.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        Self::map(fd)
    }

    /// Maps the tally behind an inherited descriptor (a cetbox re-executed by a guest execve).
    pub fn map(fd: i32) -> std::io::Result<Tally> {
        let size = std::mem::size_of::<Shared>();
        // SAFETY: a fresh shared mapping of the memfd, placed by the kernel where it likes
        // (outside the guest's range, which the address space reserves for itself).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        cetbox_linux::private_fds::register_private_fd(fd);
        // SAFETY: the mapping is `size` bytes of zero-initialised (or previously initialised)
        // shared memory, suitably aligned, and is never unmapped; Shared is only atomics, valid
        // for any bit pattern.
        let shared: &'static Shared = unsafe { &*(p as *const Shared) };
        Ok(Tally { shared, fd })
    }

    /// Counts one violation; `site` is the hash of a site this process reports for the first
    /// time (None for a repeat at a known site).
    pub fn add(&self, site: Option<u64>) {
        self.shared.violations.fetch_add(1, Ordering::SeqCst);
        let Some(h) = site else { return };
        // 0 marks an empty slot.
        let h = h.max(1);
        let start = (h as usize) % SLOTS;
        for i in 0..SLOTS {
            let slot = &self.shared.set[(start + i) % SLOTS];
            match slot.compare_exchange(0, h, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.shared.sites.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(cur) if cur == h => return,
                Err(_) => {}
            }
        }
        self.shared.sites.fetch_add(1, Ordering::SeqCst);
    }

    /// (violations, distinct sites) over the whole process tree so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.shared.violations.load(Ordering::SeqCst),
            self.shared.sites.load(Ordering::SeqCst),
        )
    }
}

/// FNV-1a over the parts of a site key.
pub fn site_hash(kind: &str, object: &str, offset: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind
        .bytes()
        .chain([0])
        .chain(object.bytes())
        .chain([0])
        .chain(offset.to_le_bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
