//! Watchpoints without help from the memory layer: before a watched thread executes an
//! instruction, iced-x86's instruction information lists the memory the instruction will read
//! and write (explicit operands and implicit ones such as the stack slots of PUSH, CALL and
//! RET); after it, the watched ranges' values are compared too, which also catches the later
//! iterations of a REP string instruction. Both are traps, as x86 data breakpoints are (Intel
//! SDM Vol. 3B, 18.2.4): the stop is reported with RIP after the accessing instruction.

use crate::process::Thread;
use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, OpAccess};

/// What a watchpoint watches for (gdb's Z2, Z3 and Z4 packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Write,
    Read,
    Access,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub addr: u64,
    pub len: u64,
    pub kind: WatchKind,
}

impl Watch {
    fn overlaps(&self, a: u64, n: u64) -> bool {
        a < self.addr.saturating_add(self.len) && self.addr < a.saturating_add(n)
    }
}

/// A hit: which watchpoint and the address gdb is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub kind: WatchKind,
    pub addr: u64,
}

/// The memory accesses of the instruction at RIP: (address, size, reads, writes).
pub fn accesses(t: &Thread) -> Vec<(u64, u64, bool, bool)> {
    let mut buf = [0u8; 16];
    let Ok(n) = t.mem().fetch(t.cpu.rip, &mut buf) else {
        return Vec::new();
    };
    let mut dec = Decoder::with_ip(64, &buf[..n], t.cpu.rip, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() {
        return Vec::new();
    }
    let mut f = InstructionInfoFactory::new();
    let info = f.info(&insn);
    let cpu = &t.cpu;
    let mut out = Vec::new();
    for m in info.used_memory() {
        let addr = cpu.used_memory_address(m);
        let Some(addr) = addr else { continue };
        let size = m.memory_size().size().max(1) as u64;
        let (r, w) = match m.access() {
            OpAccess::Read | OpAccess::CondRead => (true, false),
            OpAccess::Write | OpAccess::CondWrite => (false, true),
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
            _ => (false, false),
        };
        if r || w {
            out.push((addr, size, r, w));
        }
    }
    out
}

/// The watched values before an instruction runs, to compare after it.
pub fn snapshot(t: &Thread, watches: &[Watch]) -> Vec<Option<Vec<u8>>> {
    watches
        .iter()
        .map(|w| {
            let mut b = vec![0u8; w.len.min(64) as usize];
            t.mem().read_bytes(w.addr, &mut b).ok().map(|_| b)
        })
        .collect()
}

/// Whether the instruction about to run at RIP (whose accesses are `acc`) or the values it
/// changed (`before` against memory now) trigger one of `watches`.
pub fn check(
    t: &Thread,
    watches: &[Watch],
    acc: &[(u64, u64, bool, bool)],
    before: &[Option<Vec<u8>>],
) -> Option<Hit> {
    for (i, w) in watches.iter().enumerate() {
        for &(a, n, r, wr) in acc {
            if !w.overlaps(a, n) {
                continue;
            }
            let hit = match w.kind {
                WatchKind::Write => wr,
                WatchKind::Read => r,
                WatchKind::Access => r || wr,
            };
            if hit {
                return Some(Hit {
                    kind: w.kind,
                    addr: w.addr,
                });
            }
        }
        if w.kind != WatchKind::Read {
            if let Some(Some(old)) = before.get(i) {
                let mut now = vec![0u8; old.len()];
                if t.mem().read_bytes(w.addr, &mut now).is_ok() && now != *old {
                    return Some(Hit {
                        kind: w.kind,
                        addr: w.addr,
                    });
                }
            }
        }
    }
    None
}
