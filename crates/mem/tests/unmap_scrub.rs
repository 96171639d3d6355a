//! Unmapped memory keeps its old contents until the scrub the syscall layer runs after its
//! shootdown (crates/mem/src/space/scrub.rs): an access another thread checked before the unmap
//! must read the old bytes, never the zero pages that replace them (Linux: old contents or a
//! fault). And the scrub must not wipe memory mapped again in between.

use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};

const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;

/// The host byte at `addr`, bypassing the page table as a racing access that already passed
/// its check does.
fn host_byte(addr: u64) -> u8 {
    // SAFETY: `addr` lies in guest memory cetbox keeps mapped readable on the host (an old
    // mapping not yet scrubbed, its zero-page replacement, or a new mapping).
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

#[test]
fn unmapped_memory_keeps_its_contents_until_the_scrub() {
    let mem = AddressSpace::new().expect("address space");
    let a = mem
        .map(&MapRequest::anonymous(
            0,
            4 * PAGE_SIZE,
            RW,
            VmaKind::Normal,
        ))
        .expect("map");
    mem.write_bytes(a, &[0xab; 4 * PAGE_SIZE as usize])
        .expect("write");
    assert_eq!(mem.unscrubbed_mark(), None, "nothing unmapped yet");

    mem.unmap(a, 4 * PAGE_SIZE).expect("unmap");
    assert!(
        mem.read_u8(a).is_err(),
        "the guest still reaches unmapped memory"
    );
    let mark = mem
        .unscrubbed_mark()
        .expect("an unmapped range waits for its scrub");
    for off in [0, PAGE_SIZE, 4 * PAGE_SIZE - 1] {
        assert_eq!(
            host_byte(a + off),
            0xab,
            "unmapped memory was replaced before the other threads passed a boundary"
        );
    }

    // Page 1 is mapped again (fresh memory, new contents) before the scrub.
    let b = mem
        .map(&MapRequest {
            fixed: true,
            ..MapRequest::anonymous(a + PAGE_SIZE, PAGE_SIZE, RW, VmaKind::Normal)
        })
        .expect("map again");
    assert_eq!(b, a + PAGE_SIZE);
    assert_eq!(
        mem.read_u8(b).expect("read"),
        0,
        "a new mapping showed old contents"
    );
    mem.write_bytes(b, &[0x5c; 16]).expect("write");

    mem.scrub_through(mark);
    assert_eq!(
        mem.unscrubbed_mark(),
        None,
        "the scrub left its range recorded"
    );
    assert_eq!(host_byte(a), 0, "the old contents survived the scrub");
    assert_eq!(
        host_byte(a + 3 * PAGE_SIZE),
        0,
        "the old contents survived the scrub"
    );
    assert_eq!(
        mem.read_u8(b).expect("read"),
        0x5c,
        "the scrub wiped memory mapped again after the unmap"
    );

    // A range unmapped after the mark is left for the scrub that follows its own wait.
    mem.unmap(b, PAGE_SIZE).expect("unmap");
    let later = mem.unscrubbed_mark().expect("the second unmap is recorded");
    assert!(later > mark);
    mem.scrub_through(mark);
    assert_eq!(
        host_byte(b),
        0x5c,
        "a scrub covered an unmap made after its mark"
    );
    mem.scrub_through(later);
    assert_eq!(host_byte(b), 0, "the second scrub did not run");
    assert_eq!(mem.unscrubbed_mark(), None);

    // PROT_NONE pages have no access in flight: scrubbed at once, nothing recorded.
    let n = mem
        .map(&MapRequest::anonymous(0, PAGE_SIZE, 0, VmaKind::Normal))
        .expect("map");
    mem.unmap(n, PAGE_SIZE).expect("unmap");
    assert_eq!(
        mem.unscrubbed_mark(),
        None,
        "a PROT_NONE unmap waits for a scrub"
    );
}
