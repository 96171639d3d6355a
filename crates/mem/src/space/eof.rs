//! Pages of file mappings past the end of their file. Linux decides SIGBUS at fault time from
//! the file's size at that moment (mm/filemap.c, filemap_fault: an index at or past
//! DIV_ROUND_UP(i_size, PAGE_SIZE) is VM_FAULT_SIGBUS), so a page marked past the end of its
//! file when it was mapped may lie inside the file by the time the guest touches it: grown by
//! truncate(2), write(2) past the end, or another process. A refused access to such a page
//! asks the file again before it becomes SIGBUS.
//!
//! The handle to the file is the host mapping itself: guest file pages are the host's own
//! mapping of the same file at the same address (`map`), and the host kernel answers a
//! populate request there exactly as Linux answers the guest's fault. Pages whose host memory
//! the host fault handler replaced with zeros (`pagetable::recover_host_fault`, a file shrunk
//! under a mapping) no longer show the file; for those the file is opened again by its path
//! and accepted only if it is the same file (device and inode).

use super::*;
use crate::pagetable::{forget_replaced, was_replaced};

impl AddressSpace {
    /// The page of `addr` is marked past the end of its file: whether it now lies inside the
    /// file. If so its mark is cleared (the caller retries the access).
    #[cold]
    pub(super) fn eof_recheck(&self, addr: u64) -> bool {
        let m = self.maps();
        self.eof_recheck_in(&m, addr)
    }

    /// `eof_recheck` for callers holding the mapping lock.
    #[cold]
    pub(super) fn eof_recheck_in(&self, m: &Maps, addr: u64) -> bool {
        let pg = page_floor(addr);
        let marked = page::MAPPED | page::BEYOND_EOF;
        if self.pt.get(pg) & marked != marked {
            return false;
        }
        let inside = if was_replaced(pg) {
            self.remap_file_page(m, pg)
        } else {
            // MADV_POPULATE_READ (22, Linux 5.14) faults the page in as a read would, and
            // fails with EFAULT where that fault is VM_FAULT_SIGBUS.
            // SAFETY: populating one page of a guest file mapping changes no memory contents.
            unsafe { libc::madvise(pg as *mut libc::c_void, PAGE_SIZE as usize, 22) == 0 }
        };
        if inside {
            self.pt.clear_bits(pg, page::BEYOND_EOF);
        }
        inside
    }

    /// Maps the file page of the VMA at `pg` again over the zeros `recover_host_fault` left,
    /// if the file (opened by its path, the same device and inode) now reaches that page.
    fn remap_file_page(&self, m: &Maps, pg: u64) -> bool {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::io::AsRawFd;
        let Some(v) = Self::covering(m, pg) else {
            return false;
        };
        let Backing::File {
            path,
            dev,
            inode,
            offset,
        } = &v.backing
        else {
            return false;
        };
        let writable = v.shared && v.prot & libc::PROT_WRITE as u32 != 0;
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
        else {
            return false;
        };
        let Ok(md) = file.metadata() else {
            return false;
        };
        let file_off = offset + (pg - v.start);
        if md.dev() != *dev || md.ino() != *inode || file_off >= page_ceil(md.size()) {
            return false;
        }
        let (prot, flags) = if v.shared {
            let prot = if writable {
                libc::PROT_READ | libc::PROT_WRITE
            } else {
                libc::PROT_READ
            };
            (prot, libc::MAP_SHARED)
        } else {
            (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE)
        };
        if host::map_at(pg, PAGE_SIZE, prot, flags, file.as_raw_fd(), file_off, true).is_err() {
            return false;
        }
        forget_replaced(pg, pg + PAGE_SIZE);
        true
    }
}
