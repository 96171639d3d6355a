//! The guest address space.
//!
//! Guest memory lives at the same virtual addresses in the cetbox process (identity mapping), so
//! syscalls can hand guest buffers to the host kernel without copying. Every guest access is
//! checked first against a software page table holding one byte per guest page: its permissions
//! and its type (normal or shadow stack). Only pages the guest mapped are ever marked, so the
//! guest can never reach cetbox's own memory.

mod access;
mod fault;
mod faultin;
mod host;
mod pagetable;
pub mod remembered;
mod space;
pub mod transient;
mod vma;
pub mod xlock;

pub use access::Access;
pub use fault::{Fault, FaultKind};
pub use faultin::{probe_fixup, KernelAccess};
pub use pagetable::{
    page, recover_host_fault, recover_unmapped_fault, PageTable, PAGE_SIZE, USER_LIMIT,
};
pub use space::{
    directory_addr, AddressSpace, AdoptAt, ForkHold, MapError, MapRequest, MoveTarget, Record,
    FLAG_SHADOW, FLAG_SHARED, MMAP_MIN_ADDR, STACK_GUARD_GAP,
};
pub use vma::{Backing, Vma, VmaKind};

/// Round `x` down to a page boundary.
pub const fn page_floor(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Round `x` up to a page boundary (saturating at the top of the address space).
pub const fn page_ceil(x: u64) -> u64 {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => v & !(PAGE_SIZE - 1),
        None => !(PAGE_SIZE - 1),
    }
}
