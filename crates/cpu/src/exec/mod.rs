//! Instruction semantics, one module per instruction family. Each module exposes
//! `lookup(Code) -> Option<Handler>`; the first module that knows a `Code` executes it.
//!
//! Handler contract: the run loop sets `cpu.rip` to the next instruction before calling the
//! handler; a branch overwrites it. A handler that fails must leave every register, flag and
//! memory byte as it found them (faults are precise): do all loads and checks first, then
//! write memory, then registers and flags.

use crate::exception::Result;
use crate::{Cpu, Exception, UdReason};
use iced_x86::{Code, Instruction};

pub mod alu;
pub mod atomic;
pub mod bits;
pub mod cet;
pub mod control;
pub mod cx16;
pub mod data;
pub mod hostop;
pub mod muldiv;
pub mod shift;
pub mod sse;
pub mod string;
pub mod system;
pub mod x87;
pub mod xsave;

/// Executes one decoded instruction.
pub type Handler = fn(&mut Cpu, &Instruction) -> Result<()>;

/// The handler for an instruction form, or None if cetbox does not implement it.
pub fn handler_for(code: Code) -> Option<Handler> {
    control::lookup(code)
        .or_else(|| alu::lookup(code))
        .or_else(|| data::lookup(code))
        .or_else(|| shift::lookup(code))
        .or_else(|| muldiv::lookup(code))
        .or_else(|| hostop::lookup(code))
        .or_else(|| cx16::lookup(code))
        .or_else(|| xsave::lookup(code))
        .or_else(|| bits::lookup(code))
        .or_else(|| atomic::lookup(code))
        .or_else(|| string::lookup(code))
        .or_else(|| system::lookup(code))
        .or_else(|| cet::lookup(code))
        .or_else(|| sse::lookup(code))
        .or_else(|| x87::lookup(code))
}

/// Bytes the decoder rejects: #UD.
pub fn invalid(_: &mut Cpu, _: &Instruction) -> Result<()> {
    Err(Exception::InvalidOpcode(UdReason::Architectural))
}

/// A valid instruction outside cetbox's CPU model: #UD with a diagnostic naming it.
pub fn unimplemented(_: &mut Cpu, i: &Instruction) -> Result<()> {
    Err(Exception::InvalidOpcode(UdReason::Unimplemented(format!(
        "{i} ({:?})",
        i.code()
    ))))
}
