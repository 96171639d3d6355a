//! Writing the ELF core file: header, program headers (PT_NOTE first, then one PT_LOAD per
//! mapping), the notes, and the memory, page-aligned after the notes, as fs/binfmt_elf.c
//! elf_core_dump lays it out. Memory is read through /proc/self/mem (FOLL_FORCE, as the
//! kernel's get_dump_page: no-access mappings are dumped too), all-zero pages are left as holes
//! (the kernel's dump_skip), and writing stops at RLIMIT_CORE (a truncated core, as Linux).

use super::notes::Note;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One PT_LOAD: the mapping's range, protection, and how many of its bytes are dumped.
pub struct Segment {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub dump: u64,
    /// Anonymous memory: a page that is not there is a hole, never faulted in (a
    /// userfaultfd-registered page would block the dump forever; Linux's get_dump_page skips
    /// such pages too).
    pub anon: bool,
}

/// Whether the page at `addr` is present or swapped (/proc/self/pagemap bits 63 and 62).
fn resident(pagemap: &File, addr: u64) -> bool {
    let mut e = [0u8; 8];
    pagemap.read_exact_at(&mut e, addr / PAGE * 8).is_ok() && u64::from_le_bytes(e) & (3 << 62) != 0
}

fn ehdr(phnum: u16) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[0..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // ELFDATA2LSB
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h[56..58].copy_from_slice(&phnum.to_le_bytes());
    h
}

#[allow(clippy::too_many_arguments)]
fn phdr(
    kind: u32,
    flags: u32,
    off: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) -> [u8; 56] {
    let mut p = [0u8; 56];
    p[0..4].copy_from_slice(&kind.to_le_bytes());
    p[4..8].copy_from_slice(&flags.to_le_bytes());
    p[8..16].copy_from_slice(&off.to_le_bytes());
    p[16..24].copy_from_slice(&vaddr.to_le_bytes());
    p[32..40].copy_from_slice(&filesz.to_le_bytes());
    p[40..48].copy_from_slice(&memsz.to_le_bytes());
    p[48..56].copy_from_slice(&align.to_le_bytes());
    p
}

/// Writes the core to `f`, at most `limit` bytes. Errors end the dump (the file keeps what
/// was written, as a kernel dump cut short).
pub fn write(f: &mut File, notes: &[Note], segs: &[Segment], limit: u64) -> std::io::Result<()> {
    let phnum = segs.len() + 1;
    let mut note_bytes = Vec::new();
    for n in notes {
        n.encode(&mut note_bytes);
    }
    let notes_off = 64 + 56 * phnum as u64;
    let mut head = Vec::new();
    head.extend_from_slice(&ehdr(phnum.min(0xffff) as u16));
    head.extend_from_slice(&phdr(
        PT_NOTE,
        0,
        notes_off,
        0,
        note_bytes.len() as u64,
        0,
        4,
    ));
    let mut off = (notes_off + note_bytes.len() as u64).next_multiple_of(PAGE);
    for s in segs {
        let mut flags = 0;
        if s.prot & libc::PROT_READ as u32 != 0 {
            flags |= PF_R;
        }
        if s.prot & libc::PROT_WRITE as u32 != 0 {
            flags |= PF_W;
        }
        if s.prot & libc::PROT_EXEC as u32 != 0 {
            flags |= PF_X;
        }
        head.extend_from_slice(&phdr(
            PT_LOAD,
            flags,
            off,
            s.start,
            s.dump,
            s.end - s.start,
            PAGE,
        ));
        off += s.dump;
    }
    head.extend_from_slice(&note_bytes);
    let mut budget = limit;
    let take = |budget: &mut u64, n: u64| {
        let k = n.min(*budget);
        *budget -= k;
        k
    };
    let k = take(&mut budget, head.len() as u64) as usize;
    f.write_all(&head[..k])?;
    if budget == 0 {
        return Ok(());
    }
    let mem = File::open("/proc/self/mem")?;
    let pagemap = File::open("/proc/self/pagemap")?;
    let mut pos = (notes_off + note_bytes.len() as u64).next_multiple_of(PAGE);
    let mut page = vec![0u8; PAGE as usize];
    let mut end = f.stream_position()?;
    for s in segs {
        let mut a = s.start;
        while a < s.start + s.dump {
            if budget < PAGE {
                budget = 0;
                break;
            }
            budget -= PAGE;
            // A page that cannot be read (or holds only zeros) is a hole, as dump_skip.
            let ok = (!s.anon || resident(&pagemap, a)) && mem.read_exact_at(&mut page, a).is_ok();
            if ok && page.iter().any(|&b| b != 0) {
                f.write_all_at(&page, pos)?;
                end = end.max(pos + PAGE);
            }
            pos += PAGE;
            a += PAGE;
        }
        if budget == 0 {
            break;
        }
    }
    // The file is as long as what was dumped, holes at the end included.
    let len = pos.max(end);
    f.set_len(len)?;
    f.seek(SeekFrom::End(0))?;
    Ok(())
}
