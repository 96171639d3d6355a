//! The emulated x86-64 CPU (64-bit user mode), shadow-stack unit included.
//!
//! It knows nothing of Linux: it runs guest instructions until one needs the operating system
//! (SYSCALL), faults, or the host asks it to stop, and touches memory only through
//! `cetbox_mem::AddressSpace`.

pub mod cpuid;
pub mod engine;
mod exception;
pub mod exec;
pub mod flags;
pub mod fpstate;
pub mod interp;
pub mod level;
pub mod operand;
pub mod state;
pub mod undef;

pub use engine::{Engine, Exit};
pub use exception::{CpCode, Exception, UdReason};
pub use interp::Interpreter;
pub use level::CpuLevel;
pub use state::{CetState, Cpu, CpuConfig, Reg};

/// Whether `addr` is canonical with 48-bit virtual addresses.
#[inline(always)]
pub fn is_canonical(addr: u64) -> bool {
    ((addr as i64) << 16 >> 16) as u64 == addr
}
