//! The Linux personality: what a Linux 6.6+ x86-64 kernel does for a user process, on top of
//! cetbox's CPU and address space. ELF loading, syscalls grouped by family, signal delivery,
//! the kernel side of shadow stacks, and the /proc views.

pub mod abi;
pub mod coredump;
pub mod debug;
pub mod diag;
pub mod engine_pool;
pub mod errno;
pub mod events;
pub mod exit;
pub mod fixed_map;
pub mod fork;
pub mod hostcall;
pub mod loader;
pub mod memfd;
pub mod objects;
pub mod options;
pub mod private_fds;
pub mod proc_refresh;
pub mod process;
pub mod procfs;
pub mod procview;
pub mod reexec;
pub mod remote_mem;
pub mod rlimit;
pub mod rseq;
pub mod run;
pub mod shstk;
pub mod signals;
pub mod stack_growth;
pub mod start;
pub mod syscalls;
pub mod sysroot;
pub mod thread;
pub mod thread_group;
pub mod usermem;
pub mod vcpu;
pub mod violation;
pub mod waitcall;

pub use errno::{Errno, SysResult};
pub use options::{default_translation_cache, EngineKind, Options, ShstkPolicy, ViolationPolicy};
pub use process::{Process, Thread};
