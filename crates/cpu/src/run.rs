//! The execution loop.

use crate::block::{BlockCache, Op, EMPTY};
use crate::{Cpu, Exception};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why `Cpu::run` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The guest executed SYSCALL; RIP is past it, RCX and R11 are already set as the CPU sets
    /// them. The operating system handles it and calls `run` again.
    Syscall,
    /// An instruction raised an exception; RIP and all state are as the exception left them.
    Exception(Exception),
    /// `stop` was set (a signal is pending); RIP is at an instruction boundary.
    Interrupted,
}

impl Cpu {
    /// Runs guest code until a syscall, an exception, or `stop` becomes true.
    pub fn run(&mut self, stop: &AtomicBool) -> Exit {
        // The cache leaves the CPU while blocks run, so handlers can borrow the CPU mutably
        // while the run loop holds the block; nothing a handler does touches the cache.
        let mut cache = std::mem::take(&mut self.cache);
        let exit = self.run_blocks(&mut cache, stop);
        self.cache = cache;
        self.fp_sync();
        exit
    }

    fn run_blocks(&mut self, cache: &mut BlockCache, stop: &AtomicBool) -> Exit {
        // The block that just ran, whose successor cache the next lookup may use and fill.
        let mut prev: Option<u32> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Exit::Interrupted;
            }
            if self.flags.bits & crate::flags::TF != 0 {
                return self.trace_step();
            }
            let epoch = self.mem.code_epoch();
            if epoch != cache.epoch {
                cache.clear();
                cache.epoch = epoch;
                prev = None;
            }
            let rip = self.rip;
            let idx = match prev {
                Some(p) => {
                    let s = &cache.blocks[p as usize].succ;
                    if s[0].0 == rip && rip != EMPTY {
                        s[0].1
                    } else if s[1].0 == rip && rip != EMPTY {
                        s[1].1
                    } else {
                        match cache.get(rip, &self.mem) {
                            Ok((i, cleared)) => {
                                if !cleared {
                                    let s = &mut cache.blocks[p as usize].succ;
                                    s[1] = s[0];
                                    s[0] = (rip, i);
                                }
                                i
                            }
                            Err(e) => return Exit::Exception(e),
                        }
                    }
                }
                None => match cache.get(rip, &self.mem) {
                    Ok((i, _)) => i,
                    Err(e) => return Exit::Exception(e),
                },
            };
            let block = &cache.blocks[idx as usize];
            let ops = &block.ops[..];
            // How many instructions retired, from an op's position (computed only when the
            // block is left early, so the loop itself keeps no counter).
            let base = ops.as_ptr() as usize;
            let retired =
                |op: &Op| ((op as *const Op as usize - base) / size_of::<Op>()) as u64 + 1;
            let mut done = ops.len() as u64;
            for op in ops {
                let next = op.next_ip;
                self.rip = next;
                if let Err(e) = (op.run)(self, op) {
                    if !e.is_trap() {
                        self.rip = op.insn.ip();
                    }
                    self.icount += retired(op);
                    return Exit::Exception(e);
                }
                // A taken branch, or a store that changed guest code (possibly the rest of this
                // very block, as self-modifying code does): continue from a fresh decode.
                if self.rip != next || self.mem.code_epoch() != cache.epoch {
                    done = retired(op);
                    break;
                }
            }
            self.icount += done;
            if block.ends_in_syscall && self.rip == block.ops[block.ops.len() - 1].next_ip {
                return Exit::Syscall;
            }
            prev = Some(idx);
        }
    }

    /// One instruction with EFLAGS.TF set at its start: the single-step trap (#DB, a trap
    /// reported after the instruction) follows it unless it faulted (a fault is reported
    /// instead) or was SYSCALL (which clears TF through the FMASK MSR Linux programs; the
    /// kernel returns with TF restored, so the instruction after it traps). TF set by POPF
    /// first takes effect for the next instruction (SDM Vol. 3B §18.3.1.4).
    fn trace_step(&mut self) -> Exit {
        match self.step() {
            Some(exit) => exit,
            None => Exit::Exception(Exception::Debug),
        }
    }

    /// Executes exactly one instruction at RIP (used by single-stepping and the differential
    /// tests); returns what `run` would have returned after it, or None to continue.
    pub fn step(&mut self) -> Option<Exit> {
        let rip = self.rip;
        let mut buf = [0u8; 16];
        let n = match self.mem.fetch(rip, &mut buf) {
            Ok(n) => n,
            Err(f) => return Some(Exit::Exception(Exception::from(f))),
        };
        let mut dec =
            iced_x86::Decoder::with_ip(64, &buf[..n], rip, iced_x86::DecoderOptions::NONE);
        let insn = dec.decode();
        if insn.is_invalid() && dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
            // As `run` reports it: the instruction runs into a page that may not be executed.
            return Some(Exit::Exception(crate::block::straddle_fault(
                &self.mem,
                rip + n as u64,
            )));
        }
        if insn.is_invalid() && crate::block::too_long(&self.mem, rip) {
            return Some(Exit::Exception(Exception::GeneralProtection));
        }
        // The same pre-decoding as the block cache, so single steps run the same code.
        let op = Op::new(insn);
        self.rip = op.next_ip;
        self.icount += 1;
        let r = (op.run)(self, &op);
        self.fp_sync();
        if let Err(e) = r {
            if !e.is_trap() {
                self.rip = rip;
            }
            return Some(Exit::Exception(e));
        }
        if op.insn.code() == iced_x86::Code::Syscall {
            return Some(Exit::Syscall);
        }
        None
    }

    /// `step` through the family handler alone, bypassing the specialized forms: the
    /// reference the fast paths are tested against.
    #[doc(hidden)]
    pub fn step_reference(&mut self) -> Option<Exit> {
        let rip = self.rip;
        let mut buf = [0u8; 16];
        let n = match self.mem.fetch(rip, &mut buf) {
            Ok(n) => n,
            Err(f) => return Some(Exit::Exception(Exception::from(f))),
        };
        let mut dec =
            iced_x86::Decoder::with_ip(64, &buf[..n], rip, iced_x86::DecoderOptions::NONE);
        let op = Op::new(dec.decode());
        self.rip = op.next_ip;
        self.icount += 1;
        self.fp_sync();
        if let Err(e) = (op.exec)(self, &op.insn) {
            if !e.is_trap() {
                self.rip = rip;
            }
            return Some(Exit::Exception(e));
        }
        if op.insn.code() == iced_x86::Code::Syscall {
            return Some(Exit::Syscall);
        }
        None
    }
}
