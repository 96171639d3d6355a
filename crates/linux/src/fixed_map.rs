//! cetbox's own pages at fixed host addresses (outside guest memory), which other cetbox
//! processes find there without being told: the remote-memory header (`remote_mem`), the
//! published /proc view (`procview`) and a traced process's register pages
//! (`syscalls::ptrace::page`).

use crate::errno::Errno;

/// Maps `len` bytes of fresh private read-write memory at host address `addr` only where
/// nothing is mapped yet (mmap(2) MAP_FIXED_NOREPLACE): EEXIST when something lies there
/// (this process's own earlier mapping too, which the caller may know to be its own), ENOMEM
/// when the host put the mapping elsewhere (undone), or the host's error.
pub fn map_fresh(addr: u64, len: usize) -> Result<(), Errno> {
    // SAFETY: a new anonymous mapping at an address no Rust object lives at (cetbox reserves
    // these addresses for the pages): MAP_FIXED_NOREPLACE never replaces an existing mapping,
    // and a mapping the host put elsewhere (a kernel before 4.17 treats the flag as a hint)
    // is ours alone to unmap at once.
    unsafe {
        let p = libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        if p as u64 != addr {
            libc::munmap(p, len);
            return Err(Errno::ENOMEM);
        }
    }
    Ok(())
}
