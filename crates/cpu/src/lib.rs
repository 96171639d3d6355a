//! The emulated x86-64 CPU (64-bit user mode), shadow-stack unit included.
//!
//! It knows nothing of Linux: it runs guest instructions until one needs the operating system
//! (SYSCALL), faults, or the host asks it to stop, and touches memory only through
//! `cetbox_mem::AddressSpace`.

mod block;
pub mod cpuid;
mod exception;
pub mod exec;
mod fast;
mod fastsse;
pub mod flags;
pub mod fpstate;
pub mod operand;
mod run;
pub mod state;
pub mod undef;

pub use exception::{Exception, UdReason};
pub use run::Exit;
pub use state::{CetState, Cpu, CpuConfig, Reg};

/// Whether `addr` is canonical with 48-bit virtual addresses.
#[inline(always)]
pub fn is_canonical(addr: u64) -> bool {
    ((addr as i64) << 16 >> 16) as u64 == addr
}
