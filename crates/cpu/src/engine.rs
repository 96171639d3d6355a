//! The seam between the machine model and what executes it.
//!
//! `Cpu` (`state.rs`) is plain architectural state; an `Engine` runs guest code on it. The
//! interpreter (`crate::interp`) is the reference engine; a translating engine implements the
//! same trait and is held to the same tests. The Linux personality, signal frames, ptrace and
//! reports only ever see `Cpu`, and only between calls into an engine.
//!
//! The contract every engine keeps (docs/ARCHITECTURE.md, "The engine contract"):
//! - Precise faults: `Exit::Exception` leaves RIP at the faulting instruction and every
//!   register, flag and byte of memory as after the previous instruction (REP string
//!   instructions: as after the last completed iteration). Traps (INT3, INT 0x80) leave RIP
//!   after the instruction.
//! - `Exit::Syscall` leaves RIP after SYSCALL with RCX and R11 set as the CPU sets them.
//! - `stop` is polled on every iteration of a loop, so a guest cannot delay a stop
//!   indefinitely: the interpreter polls it before every block (at most 64 instructions), the
//!   translator before every block reached by a branch that does not go forward (every
//!   cycle of blocks has one) and by every indirect branch or return, so only a finite run of
//!   forward branches goes unpolled; `Exit::Interrupted` leaves RIP at an instruction
//!   boundary.
//! - Code changes: the address space's code epoch (`AddressSpace::code_epoch`) is checked
//!   before each block and after every instruction that may store, so no stale decoded or
//!   translated code runs after a write to code, munmap or mprotect.
//! - EFLAGS.TF: an instruction that starts with TF set runs alone and is followed by the
//!   single-step trap (`Exception::Debug`, RIP after it) unless it faulted or was SYSCALL.
//! - `Cpu::icount` counts retired instructions.
//! - On return, `Cpu` is fully synchronized: nothing of the guest's state is left only in host
//!   registers (the host MXCSR included).

use crate::{Cpu, Exception};
use std::sync::atomic::AtomicBool;

/// Why an engine returned.
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

/// Something that executes guest instructions on a `Cpu`.
pub trait Engine: Send {
    /// Runs guest code until a syscall, an exception, or `stop` becomes true.
    fn run(&mut self, cpu: &mut Cpu, stop: &AtomicBool) -> Exit;

    /// Executes exactly one instruction at RIP (single-stepping, debuggers, tests); returns
    /// what `run` would have returned after it, or None to continue.
    fn step(&mut self, cpu: &mut Cpu) -> Option<Exit>;

    /// Forgets every decoded or translated instruction (after exec, or a new address space).
    /// Changes made through the address space are noticed through its code epoch; this is
    /// for changes the epoch does not describe.
    fn invalidate(&mut self);

    /// A fresh engine of the same kind for a new thread or a forked process.
    fn fork(&self) -> Box<dyn Engine>;

    /// Called on the host thread that ran this engine when its guest thread has ended and the
    /// engine is kept for a later thread of the same process (whose code it has translated
    /// already): drops whatever ties it to this host thread. Only the caller's host thread
    /// state and per-thread caches change; what the engine knows about guest code stays.
    fn retire(&mut self) {}

    /// The engine's name, as `--engine` spells it.
    fn name(&self) -> &'static str;
}
