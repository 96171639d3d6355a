//! Decoded-instruction cache: guest code is decoded once into blocks of pre-decoded
//! instructions (`Op`), kept in an arena and looked up by guest address. Each block remembers
//! the blocks it last continued into, so the run loop follows loops, calls and returns without
//! hashing.

use crate::exception::Result;
use crate::exec::{handler_for, Handler};
use crate::{Cpu, Exception};
use cetbox_mem::{Access, AddressSpace, Fault, FaultKind};
use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Instruction};
use std::collections::HashMap;

/// Executes one pre-decoded instruction: either a form-specialized function that reads the
/// resolved operand fields of `Op`, or `generic`, which calls the family handler with the
/// iced `Instruction`. Same contract as `Handler`.
pub type OpFn = fn(&mut Cpu, &Op) -> Result<()>;

/// "No register" in the resolved operand fields.
pub const NOREG: u8 = 0xff;

/// One decoded instruction with its operands resolved for the specialized handlers.
pub struct Op {
    pub run: OpFn,
    /// The family handler (what `run` calls when the form has no specialized function).
    pub exec: Handler,
    pub next_ip: u64,
    /// The immediate (sign-extended as the form defines, masked to the operand size), a shift
    /// count, or a branch target.
    pub imm: u64,
    /// Memory operand: displacement (the absolute address for RIP-relative operands).
    pub disp: u64,
    /// Register operands: GPR number, plus `fast::HI` for AH..BH.
    pub r0: u8,
    pub r1: u8,
    /// Memory operand: base and index GPR numbers (or NOREG), index shift (log2 scale) and
    /// segment (0 none, 1 FS, 2 GS).
    pub base: u8,
    pub index: u8,
    pub scale: u8,
    pub seg: u8,
    pub insn: Instruction,
}

/// Calls the family handler of an instruction without a specialized form.
pub fn generic(cpu: &mut Cpu, op: &Op) -> Result<()> {
    // Family handlers see the architectural MXCSR (`fastsse`).
    cpu.fp_sync();
    (op.exec)(cpu, &op.insn)
}

impl Op {
    /// Pre-decodes one instruction, picking a specialized function when the form has one.
    pub fn new(insn: Instruction) -> Op {
        // One table lookup per instruction (decoding is start-up cost).
        let handler = if insn.is_invalid() {
            None
        } else {
            handler_for(insn.code())
        };
        let exec = if insn.is_invalid() {
            crate::exec::invalid
        } else {
            handler.unwrap_or(crate::exec::unimplemented)
        };
        let mut op = Op {
            run: generic,
            exec,
            next_ip: insn.next_ip(),
            imm: 0,
            disp: 0,
            r0: NOREG,
            r1: NOREG,
            base: NOREG,
            index: NOREG,
            scale: 0,
            seg: 0,
            insn,
        };
        if handler.is_some() {
            if let Some(f) =
                super::select_hostop::select(&mut op).or_else(|| super::select::select(&mut op))
            {
                op.run = f;
            }
        }
        op
    }
}

/// A straight-line run of instructions ending at a control transfer, a SYSCALL, or a size cap;
/// or, with no instructions, the placeholder of a block not decoded because the caller of
/// `Interpreter::run_cold` takes it over (`is_placeholder`).
pub struct Block {
    pub ops: Box<[Op]>,
    /// The block ends with SYSCALL: the CPU must leave to the operating system after it.
    pub ends_in_syscall: bool,
    /// The blocks execution last continued into: (guest address, arena index), most recent
    /// first. Valid until the arena is cleared, which forgets every block at once.
    pub succ: [(u64, u32); 2],
    /// How often `Interpreter::run_cold` started this block, or `KEEP` (see there).
    pub visits: u32,
}

impl Block {
    /// Whether this is a placeholder (`BlockCache::get`): a decoded block has at least one
    /// instruction (an undecodable one included).
    pub fn is_placeholder(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The empty marker of `succ` and the fast table; never a guest address that can match, as
/// lookups of it always take the slow path.
pub const EMPTY: u64 = u64::MAX;

const MAX_BLOCK: usize = 64;
const FAST_SLOTS: usize = 4096;
/// The arena is dropped wholesale beyond this many blocks (code generators, huge programs).
const MAX_BLOCKS: usize = 1 << 18;

#[derive(Default)]
pub struct BlockCache {
    pub blocks: Vec<Block>,
    map: HashMap<u64, u32, BuildIdHasher>,
    /// A direct-mapped front for `map`: (guest address, arena index).
    fast: Vec<(u64, u32)>,
    /// The address space's code epoch these blocks were decoded under.
    pub epoch: u64,
}

impl BlockCache {
    pub fn clear(&mut self) {
        self.blocks.clear();
        self.map.clear();
        self.fast.clear();
    }

    /// The arena index of the block at `rip`, decoding it if needed, or, if `hinted` (asked
    /// only then) says so, entering a placeholder without decoding it. The second value is
    /// true if the arena was cleared to make room (every index held before is then void).
    #[inline]
    pub fn get(
        &mut self,
        rip: u64,
        mem: &AddressSpace,
        hinted: impl FnOnce() -> bool,
    ) -> Result<(u32, bool)> {
        if self.fast.is_empty() {
            self.fast = vec![(EMPTY, 0); FAST_SLOTS];
        }
        let slot = (rip ^ (rip >> 12)) as usize & (FAST_SLOTS - 1);
        if self.fast[slot].0 == rip && rip != EMPTY {
            return Ok((self.fast[slot].1, false));
        }
        self.get_slow(rip, mem, slot, hinted)
    }

    /// The arena index of the block at `rip` if it is decoded.
    pub fn peek(&self, rip: u64) -> Option<&u32> {
        self.map.get(&rip)
    }

    /// Decodes the placeholder at arena index `i` (the block at `rip`) in place, keeping its
    /// successors and visit count.
    pub fn decode_placeholder(&mut self, i: u32, rip: u64, mem: &AddressSpace) -> Result<()> {
        let b = decode_block(rip, mem)?;
        let block = &mut self.blocks[i as usize];
        block.ops = b.ops;
        block.ends_in_syscall = b.ends_in_syscall;
        Ok(())
    }

    #[inline(never)]
    fn get_slow(
        &mut self,
        rip: u64,
        mem: &AddressSpace,
        slot: usize,
        hinted: impl FnOnce() -> bool,
    ) -> Result<(u32, bool)> {
        let mut cleared = false;
        let idx = match self.map.get(&rip) {
            Some(&i) => i,
            None => {
                let b = if hinted() {
                    Block {
                        ops: Box::new([]),
                        ends_in_syscall: false,
                        succ: [(EMPTY, 0); 2],
                        visits: 0,
                    }
                } else {
                    decode_block(rip, mem)?
                };
                if self.blocks.len() >= MAX_BLOCKS {
                    self.clear();
                    self.fast = vec![(EMPTY, 0); FAST_SLOTS];
                    cleared = true;
                }
                let i = self.blocks.len() as u32;
                self.blocks.push(b);
                self.map.insert(rip, i);
                i
            }
        };
        self.fast[slot] = (rip, idx);
        Ok((idx, cleared))
    }
}

/// Bytes fetched at once for decoding a block (at most to the end of the page).
const CHUNK: usize = 256;

/// Decodes the block starting at `rip`.
///
/// Each instruction is decoded from exactly the bytes a 16-byte fetch at its address would
/// give (fewer where the executable bytes end), but the bytes are fetched a chunk at a time
/// and one decoder runs over the chunk: a fetch and a decoder per instruction were a
/// measurable share of start-up (docs/ARCHITECTURE.md, "Translator"). A window taken from a
/// chunk is the same as a fresh fetch when the chunk holds 16 bytes from the instruction, or
/// when the chunk stopped short (fewer bytes were executable, so a fetch at the instruction
/// stops at the same place); otherwise the chunk is fetched again from the instruction. The
/// decoder sees the rest of the chunk rather than 16 bytes, which decodes the same: it never
/// reads past 15 bytes of an instruction, and reports running out of bytes only when the
/// data ends within those 15, exactly as with the 16-byte window.
fn decode_block(rip: u64, mem: &AddressSpace) -> Result<Block> {
    let mut ops = Vec::with_capacity(16);
    let mut ip = rip;
    let mut ends_in_syscall = false;
    let mut buf = [0u8; CHUNK];
    // The chunk: its guest address, the bytes fetched, and whether the fetch filled the
    // length asked (more may be executable past it).
    let mut start = 0u64;
    let mut len = 0usize;
    let mut full = false;
    let mut dec = Decoder::with_ip(64, &[], 0, DecoderOptions::NONE);
    loop {
        let o = ip.wrapping_sub(start);
        // (A chunk that ends exactly at `ip` is reused only to stop the block there: `ip` is
        // not executable, and an empty block must report the fetch fault instead.)
        let reuse = len > 0
            && ip >= start
            && o <= len as u64
            && (len - o as usize >= 16 || !full)
            && (o < len as u64 || !ops.is_empty());
        let o = if reuse {
            o as usize
        } else {
            // From `ip` to the end of its page, at least 16 bytes and at most a chunk.
            let to_page_end = (cetbox_mem::PAGE_SIZE - (ip & (cetbox_mem::PAGE_SIZE - 1))) as usize;
            let want = to_page_end.clamp(16, CHUNK);
            match mem.fetch(ip, &mut buf[..want]) {
                Ok(n) => {
                    (start, len, full) = (ip, n, n == want);
                    dec = Decoder::with_ip(64, &buf[..n], ip, DecoderOptions::NONE);
                    0
                }
                Err(f) if ops.is_empty() => return Err(Exception::from(f)),
                Err(_) => break, // the next block will report the fault at its own address
            }
        };
        // What a 16-byte fetch at `ip` would have returned.
        let n = (len - o).min(16);
        if n == 0 {
            // The chunk stopped short exactly here: `ip` is not executable (a fetch there
            // fails); the next block reports the fault at its own address.
            break;
        }
        mem.mark_code(ip);
        mem.mark_code(ip + n as u64 - 1);
        // `o` < `len`, the decoder's data length, so this cannot fail.
        dec.set_position(o)
            .map_err(|_| Exception::GeneralProtection)?;
        dec.set_ip(ip);
        let insn = dec.decode();
        if insn.is_invalid() {
            if !ops.is_empty() {
                break;
            }
            if dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
                // The instruction runs into a page we may not execute.
                return Err(straddle_fault(mem, ip + n as u64));
            }
            if too_long(mem, ip) {
                return Err(Exception::GeneralProtection);
            }
            ops.push(Op::new(insn));
            break;
        }
        let flow = insn.flow_control();
        let code = insn.code();
        ip = insn.next_ip();
        ops.push(Op::new(insn));
        if code == Code::Syscall {
            ends_in_syscall = true;
            break;
        }
        // POPF may set TF (or AC): the run loop looks at both between blocks.
        if matches!(code, Code::Popfq | Code::Popfw) {
            break;
        }
        if flow != FlowControl::Next || ops.len() >= MAX_BLOCK {
            break;
        }
    }
    Ok(Block {
        ops: ops.into_boxed_slice(),
        ends_in_syscall,
        succ: [(EMPTY, 0); 2],
        visits: 0,
    })
}

/// The fault of an instruction that runs into `addr`, a page that may not be executed.
pub(crate) fn straddle_fault(mem: &AddressSpace, addr: u64) -> Exception {
    let f = mem.check(addr, 1, Access::Fetch).err().unwrap_or(Fault {
        addr,
        access: Access::Fetch,
        kind: FaultKind::Protection,
        present: true,
    });
    Exception::from(f)
}

/// A hasher for u64 keys that are already well spread (guest addresses).
#[derive(Default, Clone, Copy)]
pub struct BuildIdHasher;

impl std::hash::BuildHasher for BuildIdHasher {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Whether the undecodable bytes at `ip` are an instruction longer than the architectural
/// limit of 15 bytes (SDM Vol. 2A §2.3.11: #GP(0), which Linux reports as SIGSEGV SI_KERNEL)
/// rather than an invalid opcode (#UD): redundant prefixes followed by a valid instruction.
/// The last four prefixes are kept when decoding the rest, so operand- and address-size and
/// REX prefixes still shape its length.
pub(crate) fn too_long(mem: &AddressSpace, ip: u64) -> bool {
    let mut buf = [0u8; 32];
    let Ok(n) = mem.fetch(ip, &mut buf) else {
        return false;
    };
    let is_prefix = |b: u8| {
        matches!(
            b,
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3
        ) || (0x40..=0x4f).contains(&b)
    };
    let k = buf[..n].iter().take_while(|&&b| is_prefix(b)).count();
    if k < 4 || k >= n {
        return false;
    }
    let from = k - 4;
    let mut dec = Decoder::with_ip(64, &buf[from..n], ip + from as u64, DecoderOptions::NONE);
    let rest = dec.decode();
    !rest.is_invalid() && from + rest.len() > 15
}
