//! Which mapping changes take something away from other threads (they count as removals,
//! which make the Linux personality wait for them, crates/linux/src/thread_group.rs
//! `shootdown`), and which of those invalidate decoded code (they change the code epoch,
//! which makes every engine drop its decoded blocks and translations).

use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};

const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;
const RX: u32 = (libc::PROT_READ | libc::PROT_EXEC) as u32;
const R: u32 = libc::PROT_READ as u32;

fn map(mem: &AddressSpace, len: u64, prot: u32) -> u64 {
    map_kind(mem, len, prot, VmaKind::Normal)
}

fn map_kind(mem: &AddressSpace, len: u64, prot: u32, kind: VmaKind) -> u64 {
    mem.map(&MapRequest::anonymous(0, len, prot, kind))
        .expect("map")
}

/// Decodes (as the interpreter and the translator do: fetch, then mark) the byte at `addr`.
fn decode_at(mem: &AddressSpace, addr: u64) {
    let mut b = [0u8; 1];
    mem.fetch(addr, &mut b).expect("fetch");
    mem.mark_code(addr);
}

fn only_changes_that_take_access_away_count_as_removals(mem: &AddressSpace) {
    // Unmapping PROT_NONE pages (glibc trimming a new thread's arena) takes nothing away.
    let none = map(mem, 16 * PAGE_SIZE, 0);
    let e = mem.removals();
    mem.unmap(none, 8 * PAGE_SIZE).expect("unmap");
    assert_eq!(mem.removals(), e, "unmapping PROT_NONE pages counted");
    // Adding access takes nothing away either.
    mem.protect(none + 8 * PAGE_SIZE, 4 * PAGE_SIZE, RW)
        .expect("mprotect");
    assert_eq!(mem.removals(), e, "adding access counted");
    // Unmapping a range that holds accessible pages among PROT_NONE ones does.
    mem.unmap(none + 8 * PAGE_SIZE, 8 * PAGE_SIZE)
        .expect("unmap");
    assert_ne!(
        mem.removals(),
        e,
        "unmapping accessible pages did not count"
    );
    let rw = map(mem, 4 * PAGE_SIZE, RW);
    let e = mem.removals();
    mem.protect(rw, PAGE_SIZE, R).expect("mprotect");
    assert_ne!(mem.removals(), e, "removing write access did not count");
    let e = mem.removals();
    mem.unmap(rw, 4 * PAGE_SIZE).expect("unmap");
    assert_ne!(
        mem.removals(),
        e,
        "unmapping accessible pages did not count"
    );
}

/// Removals of pages nothing was decoded from keep the code epoch (decoded code and
/// translations stay); removals of pages holding decoded code or a shadow stack change it.
fn the_code_epoch_changes_only_for_pages_holding_decoded_code(mem: &AddressSpace) {
    let code = map(mem, 4 * PAGE_SIZE, RX);
    let data = map(mem, 4 * PAGE_SIZE, RW);
    decode_at(mem, code + PAGE_SIZE + 100);
    let e = mem.code_epoch();
    mem.protect(data, PAGE_SIZE, R).expect("mprotect");
    mem.unmap(data + PAGE_SIZE, PAGE_SIZE).expect("unmap");
    mem.protect(data + 2 * PAGE_SIZE, PAGE_SIZE, 0)
        .expect("mprotect");
    // Code pages nothing was decoded from, too.
    mem.protect(code, PAGE_SIZE, R).expect("mprotect");
    mem.unmap(code + 3 * PAGE_SIZE, PAGE_SIZE).expect("unmap");
    assert_eq!(mem.code_epoch(), e, "a removal without decoded code");
    // The page code was decoded from: losing write access keeps it executable, but any
    // removal there changes the epoch, as do PROT_NONE and an unmap.
    mem.protect(code + PAGE_SIZE, PAGE_SIZE, R)
        .expect("mprotect");
    assert_ne!(
        mem.code_epoch(),
        e,
        "mprotect of a page holding decoded code"
    );
    let e = mem.code_epoch();
    mem.protect(code + PAGE_SIZE, PAGE_SIZE, RX)
        .expect("mprotect");
    decode_at(mem, code + PAGE_SIZE);
    assert_eq!(mem.code_epoch(), e, "decoding an executable page");
    mem.protect(code + PAGE_SIZE, PAGE_SIZE, 0)
        .expect("mprotect");
    assert_ne!(
        mem.code_epoch(),
        e,
        "PROT_NONE on a page holding decoded code"
    );
    let e = mem.code_epoch();
    mem.protect(code + PAGE_SIZE, PAGE_SIZE, RX)
        .expect("mprotect");
    decode_at(mem, code + 2 * PAGE_SIZE + 7);
    mem.unmap(code + PAGE_SIZE, 2 * PAGE_SIZE).expect("unmap");
    assert_ne!(mem.code_epoch(), e, "unmapping a page holding decoded code");
    // A shadow stack: translated code remembers its pages (crates/jit memop::check_shadow).
    let ss = map_kind(mem, 2 * PAGE_SIZE, R, VmaKind::ShadowStack);
    let e = mem.code_epoch();
    mem.unmap(ss, 2 * PAGE_SIZE).expect("unmap");
    assert_ne!(mem.code_epoch(), e, "unmapping a shadow stack");
}

/// The late side of a decode racing with an unmap: the decoder fetched while the page was
/// executable and marks it CODE after the unmap removed the page (which then saw no CODE and
/// kept the epoch). The mark itself changes the epoch, so the decoded block is dropped.
fn a_code_mark_on_a_page_gone_changes_the_epoch(mem: &AddressSpace) {
    let code = map(mem, 2 * PAGE_SIZE, RX);
    let mut b = [0u8; 16];
    mem.fetch(code, &mut b).expect("fetch");
    mem.unmap(code, 2 * PAGE_SIZE).expect("unmap");
    let e = mem.code_epoch();
    mem.mark_code(code);
    assert_ne!(mem.code_epoch(), e, "a mark on an unmapped page");
    // The same with PROT_EXEC taken away in between.
    let code = map(mem, PAGE_SIZE, RX);
    mem.fetch(code, &mut b).expect("fetch");
    mem.protect(code, PAGE_SIZE, R).expect("mprotect");
    let e = mem.code_epoch();
    mem.mark_code(code + 15);
    assert_ne!(mem.code_epoch(), e, "a mark on a page no longer executable");
}

/// What translated code may remember for the rest of an entry (crates/jit/src/memop.rs,
/// `check_place`: a page readable and populated, a page writable and not executable) must not
/// change under it without a removal: discarding populated pages counts (a read that skips
/// the table would not mark the page populated again), discarding pages never touched does
/// not; adding EXEC to pages that stay writable counts, adding it to read-only pages does not.
/// None of them changes the code epoch (no decoded code on them).
fn what_remembered_pages_need_counts_as_removals(mem: &AddressSpace) {
    let rw = map(mem, 4 * PAGE_SIZE, RW);
    let epoch = mem.code_epoch();
    let e = mem.removals();
    mem.advise(rw, PAGE_SIZE, libc::MADV_DONTNEED)
        .expect("madvise");
    assert_eq!(mem.removals(), e, "discarding a page never touched counted");
    mem.read_u64(rw + PAGE_SIZE).expect("read");
    mem.advise(rw + PAGE_SIZE, PAGE_SIZE, libc::MADV_DONTNEED)
        .expect("madvise");
    assert_ne!(
        mem.removals(),
        e,
        "discarding a populated page did not count"
    );
    let e = mem.removals();
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32;
    mem.protect(rw + 2 * PAGE_SIZE, PAGE_SIZE, rwx)
        .expect("mprotect");
    assert_ne!(
        mem.removals(),
        e,
        "making a writable page executable did not count"
    );
    let e = mem.removals();
    let r = map(mem, PAGE_SIZE, R);
    mem.protect(r, PAGE_SIZE, RX).expect("mprotect");
    assert_eq!(
        mem.removals(),
        e,
        "making a read-only page executable counted"
    );
    assert_eq!(mem.code_epoch(), epoch, "the code epoch changed");
    mem.unmap(rw, 4 * PAGE_SIZE).expect("unmap");
    mem.unmap(r, PAGE_SIZE).expect("unmap");
}

/// One address space per process (it reserves a fixed guest range): the cases run in turn.
#[test]
fn removals_and_the_code_epoch() {
    let mem = AddressSpace::new().expect("address space");
    only_changes_that_take_access_away_count_as_removals(&mem);
    the_code_epoch_changes_only_for_pages_holding_decoded_code(&mem);
    a_code_mark_on_a_page_gone_changes_the_epoch(&mem);
    what_remembered_pages_need_counts_as_removals(&mem);
}
