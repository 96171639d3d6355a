//! How cetbox runs guests: policies chosen on the command line.

use std::path::PathBuf;

/// When shadow stacks are enabled for programs that never enable them themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShstkPolicy {
    /// Like a 6.6 kernel: only arch_prctl(ARCH_SHSTK_ENABLE) enables them.
    #[default]
    Off,
    /// Enabled from the first instruction of every program started or exec'd (not locked).
    On,
    /// Enabled when the program and every object it loads carry GNU_PROPERTY_X86_FEATURE_1_SHSTK.
    Auto,
}

/// What happens at a shadow-stack violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ViolationPolicy {
    /// Deliver the signal Linux would (SIGSEGV / SEGV_CPERR): the default.
    #[default]
    Kill,
    /// Audit mode: report, resynchronize the shadow stack and continue.
    Continue,
}

/// Which engine runs guest code (`cetbox_cpu::engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The interpreter, the reference engine.
    Interp,
    /// The translator (crates/jit), which hands the interpreter what it does not translate;
    /// the default.
    #[default]
    Jit,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The engine every guest thread runs on.
    pub engine: EngineKind,
    pub shstk: ShstkPolicy,
    pub on_violation: ViolationPolicy,
    /// Print an strace-like line per syscall to stderr.
    pub trace_syscalls: bool,
    /// Where to find the interpreter and libraries of dynamically linked programs.
    pub sysroot: Option<PathBuf>,
    /// The "no-CET" profile: CPUID hides CET_SS and the shadow-stack ABI answers EOPNOTSUPP.
    pub no_cet: bool,
    /// The microarchitecture level the CPU presents (`--cpu`).
    pub cpu_level: cetbox_cpu::CpuLevel,
    /// The path of the cetbox binary itself, for re-running exec'd programs under cetbox.
    pub self_exe: Option<PathBuf>,
    /// The directory of the translator's hot-block profile (`cetbox_jit::profile`), or None
    /// to run without one.
    pub translation_cache: Option<PathBuf>,
}

/// The hot-block profile directory this environment asks for (`cetbox_jit::profile`:
/// CETBOX_TRANSLATION_CACHE, else the user's cache directory).
pub fn default_translation_cache() -> Option<PathBuf> {
    cetbox_jit::profile::default_dir()
}
