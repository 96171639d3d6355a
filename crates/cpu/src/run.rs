//! The execution loop.

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
        loop {
            if stop.load(Ordering::Relaxed) {
                return Exit::Interrupted;
            }
            let epoch = self.mem.code_epoch();
            if epoch != self.cache.epoch {
                self.cache.clear();
                self.cache.epoch = epoch;
            }
            let block = match self.cache.get(self.rip, &self.mem) {
                Ok(b) => b,
                Err(e) => return Exit::Exception(e),
            };
            let mut done = 0u64;
            for op in block.ops.iter() {
                let next = op.insn.next_ip();
                self.rip = next;
                done += 1;
                if let Err(e) = (op.exec)(self, &op.insn) {
                    if e != Exception::Breakpoint {
                        self.rip = op.insn.ip();
                    }
                    self.icount += done;
                    return Exit::Exception(e);
                }
                // A taken branch, or a store that changed guest code (possibly the rest of this
                // very block, as self-modifying code does): continue from a fresh decode.
                if self.rip != next || self.mem.code_epoch() != self.cache.epoch {
                    break;
                }
            }
            self.icount += done;
            if block.ends_in_syscall && self.rip == block.ops[block.ops.len() - 1].insn.next_ip() {
                return Exit::Syscall;
            }
        }
    }

    /// Executes exactly one instruction at RIP (used by single-stepping and the differential
    /// tests); returns what `run` would have returned after it, or None to continue.
    pub fn step(&mut self) -> Option<Exit> {
        let stop = AtomicBool::new(false);
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
        let exec = if insn.is_invalid() {
            crate::exec::invalid
        } else {
            crate::exec::handler_for(insn.code()).unwrap_or(crate::exec::unimplemented)
        };
        let _ = stop;
        self.rip = insn.next_ip();
        self.icount += 1;
        if let Err(e) = exec(self, &insn) {
            if e != Exception::Breakpoint {
                self.rip = rip;
            }
            return Some(Exit::Exception(e));
        }
        if insn.code() == iced_x86::Code::Syscall {
            return Some(Exit::Syscall);
        }
        None
    }
}
