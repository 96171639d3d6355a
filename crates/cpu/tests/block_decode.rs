//! Block decoding at chunk and page boundaries: the interpreter fetches a block's bytes a
//! chunk at a time (crates/cpu/src/interp/block.rs, `decode_block`), so instructions that
//! cross a chunk's end, a page boundary, or run into a page that may not be executed must
//! decode and fault exactly as when each instruction was fetched on its own.
//!
//! Two executable pages hold NOPs of every length from 1 to 15 bytes (Intel SDM Vol. 2B,
//! NOP: the recommended multi-byte forms, lengthened with redundant 66h prefixes), followed
//! by a read-write page. Runs start at many offsets so that chunk ends fall inside every kind
//! of instruction. The expected results follow from the layout: every NOP retires, then
//! either the instruction straddling into the read-write page or the first instruction on it
//! raises #PF for an instruction fetch at the read-write page's first byte (Intel SDM Vol. 3A
//! §4.6: a fetch from a non-executable page), with RIP at that instruction.

use cetbox_cpu::{Cpu, CpuConfig, Engine, Exception, Exit, Interpreter};
use cetbox_mem::{Access, AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A NOP of `len` bytes (1..=15).
fn nop(len: usize) -> Vec<u8> {
    const FORMS: [&[u8]; 9] = [
        &[0x90],
        &[0x66, 0x90],
        &[0x0f, 0x1f, 0x00],
        &[0x0f, 0x1f, 0x40, 0x00],
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ];
    assert!((1..=15).contains(&len));
    if len <= 9 {
        return FORMS[len - 1].to_vec();
    }
    let mut v = vec![0x66; len - 9];
    v.extend_from_slice(FORMS[8]);
    v
}

struct Layout {
    /// Where the run starts (its first instruction).
    start: u64,
    /// NOPs before the faulting instruction.
    nops: u64,
    /// The faulting instruction's address.
    fault_rip: u64,
}

/// Writes NOPs from `code + off` (lengths cycling from `seed`) up to the end of the two
/// executable pages; the last instruction straddles into the third page when `straddle`
/// (a 12-byte NOP with 5 bytes on the second page), else the NOPs end exactly at its start.
fn lay_out(mem: &AddressSpace, code: u64, off: u64, seed: usize, straddle: bool) -> Layout {
    let end = code + 2 * PAGE_SIZE;
    let last = if straddle { end - 5 } else { end };
    let mut bytes = Vec::new();
    let mut at = code + off;
    let mut nops = 0;
    let mut k = seed;
    while at < last {
        let room = (last - at) as usize;
        let mut len = k % 15 + 1;
        k += 7;
        if len > room {
            len = room;
        }
        bytes.extend(nop(len));
        at += len as u64;
        nops += 1;
    }
    if straddle {
        let s = nop(12);
        bytes.extend_from_slice(&s[..5]);
    }
    mem.force_write(code + off, &bytes).expect("code");
    if straddle {
        mem.force_write(end, &nop(12)[5..]).expect("tail");
    }
    Layout {
        start: code + off,
        nops,
        fault_rip: last,
    }
}

#[test]
fn chunked_decoding_matches_the_layout_at_every_boundary() {
    let mem = Arc::new(AddressSpace::new().expect("address space"));
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32;
    let code = mem
        .map(&MapRequest::anonymous(
            0,
            3 * PAGE_SIZE,
            rwx,
            VmaKind::Normal,
        ))
        .expect("pages");
    mem.protect(
        code,
        2 * PAGE_SIZE,
        (libc::PROT_READ | libc::PROT_EXEC) as u32,
    )
    .expect("code pages");
    mem.protect(
        code + 2 * PAGE_SIZE,
        PAGE_SIZE,
        (libc::PROT_READ | libc::PROT_WRITE) as u32,
    )
    .expect("data page");
    let mut offsets: Vec<u64> = (0..300).collect();
    offsets.extend(PAGE_SIZE - 300..PAGE_SIZE + 20);
    offsets.extend(2 * PAGE_SIZE - 40..2 * PAGE_SIZE - 5);
    let stop = AtomicBool::new(false);
    let mut failures = Vec::new();
    for &off in &offsets {
        for straddle in [true, false] {
            for seed in [0usize, 5, 11] {
                mem.force_write(code, &vec![0xcc; 2 * PAGE_SIZE as usize])
                    .expect("fill");
                let l = lay_out(&mem, code, off, seed, straddle);
                // A fresh interpreter: every block is decoded from these bytes.
                let mut cpu = Cpu::new(mem.clone(), Arc::new(CpuConfig::default()));
                cpu.rip = l.start;
                let exit = Interpreter::new().run(&mut cpu, &stop);
                let ok = match &exit {
                    Exit::Exception(Exception::PageFault(f)) => {
                        f.addr == code + 2 * PAGE_SIZE && f.access == Access::Fetch
                    }
                    _ => false,
                };
                if !ok || cpu.rip != l.fault_rip || cpu.icount != l.nops {
                    failures.push(format!(
                        "offset {off:#x} straddle {straddle} seed {seed}: {exit:?} at {:#x} \
                         after {} instructions; expected a fetch fault at {:#x}, RIP {:#x} \
                         after {}",
                        cpu.rip,
                        cpu.icount,
                        code + 2 * PAGE_SIZE,
                        l.fault_rip,
                        l.nops
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs differ:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
