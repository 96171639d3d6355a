//! Set-up shared by the CPU semantics tests (`mod common;` in each): one guest address space
//! with a code page and data pages, built once per test binary.

use cetbox_mem::{AddressSpace, MapRequest, VmaKind};
use std::sync::Arc;

pub struct Env {
    pub mem: Arc<AddressSpace>,
    /// One read-write-execute page.
    pub code: u64,
    /// `data_pages` read-write pages.
    pub data: u64,
}

impl Env {
    pub fn new(data_pages: u64) -> Env {
        let mem = Arc::new(AddressSpace::new().expect("address space"));
        let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
        let code = mem
            .map(&MapRequest::anonymous(0, 4096, rwx, VmaKind::Normal))
            .expect("code");
        let data = mem
            .map(&MapRequest::anonymous(
                0,
                data_pages * 4096,
                rw,
                VmaKind::Normal,
            ))
            .expect("data");
        Env { mem, code, data }
    }
}
