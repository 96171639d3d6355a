//! Decoded-instruction cache: guest code is decoded once into blocks of instructions, each
//! paired with its handler, and looked up by guest address.

use crate::exception::Result;
use crate::exec::{handler_for, Handler};
use crate::Exception;
use cetbox_mem::{Access, AddressSpace, Fault, FaultKind};
use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Instruction};
use std::collections::HashMap;
use std::rc::Rc;

/// One decoded instruction and the function that executes it.
pub struct Op {
    pub insn: Instruction,
    pub exec: Handler,
}

/// A straight-line run of instructions ending at a control transfer, a SYSCALL, or a size cap.
pub struct Block {
    pub ops: Box<[Op]>,
    /// The block ends with SYSCALL: the CPU must leave to the operating system after it.
    pub ends_in_syscall: bool,
}

const MAX_BLOCK: usize = 64;
/// Blocks kept before the cache starts over: a guest jumping to ever new addresses (every byte
/// offset of a large buffer, say) must not grow host memory without bound.
const MAX_CACHED: usize = 1 << 16;
const FAST_SLOTS: usize = 4096;

#[derive(Default)]
pub struct BlockCache {
    map: HashMap<u64, Rc<Block>, BuildIdHasher>,
    fast: Vec<(u64, Option<Rc<Block>>)>,
    /// The address space's code epoch these blocks were decoded under.
    pub epoch: u64,
}

impl BlockCache {
    pub fn clear(&mut self) {
        self.map.clear();
        self.fast.clear();
    }

    #[inline(always)]
    pub fn get(&mut self, rip: u64, mem: &AddressSpace) -> Result<Rc<Block>> {
        if self.fast.is_empty() {
            self.fast = vec![(u64::MAX, None); FAST_SLOTS];
        }
        let slot = (rip ^ (rip >> 12)) as usize & (FAST_SLOTS - 1);
        if self.fast[slot].0 == rip {
            if let Some(b) = &self.fast[slot].1 {
                return Ok(b.clone());
            }
        }
        let b = match self.map.get(&rip) {
            Some(b) => b.clone(),
            None => {
                let b = Rc::new(decode_block(rip, mem)?);
                if self.map.len() >= MAX_CACHED {
                    self.clear();
                    self.fast = vec![(u64::MAX, None); FAST_SLOTS];
                }
                self.map.insert(rip, b.clone());
                b
            }
        };
        self.fast[slot] = (rip, Some(b.clone()));
        Ok(b)
    }
}

/// Decodes the block starting at `rip`.
fn decode_block(rip: u64, mem: &AddressSpace) -> Result<Block> {
    let mut ops = Vec::with_capacity(16);
    let mut ip = rip;
    let mut ends_in_syscall = false;
    let mut buf = [0u8; 16];
    loop {
        let n = match mem.fetch(ip, &mut buf) {
            Ok(n) => n,
            Err(f) if ops.is_empty() => return Err(Exception::from(f)),
            Err(_) => break, // the next block will report the fault at its own address
        };
        mem.mark_code(ip);
        mem.mark_code(ip + n as u64 - 1);
        let mut dec = Decoder::with_ip(64, &buf[..n], ip, DecoderOptions::NONE);
        let insn = dec.decode();
        if insn.is_invalid() {
            if !ops.is_empty() {
                break;
            }
            if dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
                // The instruction runs into a page we may not execute.
                return Err(straddle_fault(mem, ip + n as u64));
            }
            ops.push(Op {
                insn,
                exec: crate::exec::invalid,
            });
            break;
        }
        let exec = handler_for(insn.code()).unwrap_or(crate::exec::unimplemented);
        let flow = insn.flow_control();
        let code = insn.code();
        ip = insn.next_ip();
        ops.push(Op { insn, exec });
        if code == Code::Syscall {
            ends_in_syscall = true;
            break;
        }
        if flow != FlowControl::Next || ops.len() >= MAX_BLOCK {
            break;
        }
    }
    Ok(Block {
        ops: ops.into_boxed_slice(),
        ends_in_syscall,
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
