//! Which mapping changes take something away from other threads (and so change the code epoch,
//! which makes the Linux personality wait for them, crates/linux/src/thread.rs `shootdown`).

use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};

const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;

fn map(mem: &AddressSpace, len: u64, prot: u32) -> u64 {
    mem.map(&MapRequest::anonymous(0, len, prot, VmaKind::Normal))
        .expect("map")
}

#[test]
fn only_changes_that_take_access_away_change_the_epoch() {
    let mem = AddressSpace::new().expect("address space");
    // Unmapping PROT_NONE pages (glibc trimming a new thread's arena) takes nothing away.
    let none = map(&mem, 16 * PAGE_SIZE, 0);
    let e = mem.code_epoch();
    mem.unmap(none, 8 * PAGE_SIZE).expect("unmap");
    assert_eq!(
        mem.code_epoch(),
        e,
        "unmapping PROT_NONE pages changed the epoch"
    );
    // Adding access takes nothing away either.
    mem.protect(none + 8 * PAGE_SIZE, 4 * PAGE_SIZE, RW)
        .expect("mprotect");
    assert_eq!(mem.code_epoch(), e, "adding access changed the epoch");
    // Unmapping a range that holds accessible pages among PROT_NONE ones does.
    mem.unmap(none + 8 * PAGE_SIZE, 8 * PAGE_SIZE)
        .expect("unmap");
    assert_ne!(
        mem.code_epoch(),
        e,
        "unmapping accessible pages kept the epoch"
    );
    let rw = map(&mem, 4 * PAGE_SIZE, RW);
    let e = mem.code_epoch();
    mem.protect(rw, PAGE_SIZE, libc::PROT_READ as u32)
        .expect("mprotect");
    assert_ne!(mem.code_epoch(), e, "removing write access kept the epoch");
    let e = mem.code_epoch();
    mem.unmap(rw, 4 * PAGE_SIZE).expect("unmap");
    assert_ne!(
        mem.code_epoch(),
        e,
        "unmapping accessible pages kept the epoch"
    );
}
