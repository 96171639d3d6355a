//! Command-line syntax (clap), following qemu-user and valgrind conventions.

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "cetbox",
    version,
    about = "Run x86-64 Linux programs with software CET shadow stacks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program under cetbox and exit with its status.
    Run(RunArgs),
    /// Show which objects of each ELF file (and its libraries) carry the SHSTK property.
    /// Exits 1 if any object lacks it, 2 if a file is not a readable ELF file.
    Check(CheckArgs),
    /// Build a small vulnerable program and show its attack succeeding with shadow stacks off
    /// and stopped (and reported) with them on.
    Demo,
    /// Internal: continue a guest's execve made from a multi-threaded process (cetbox execs
    /// itself with this; see crates/linux/src/reexec.rs).
    #[command(hide = true)]
    Resume {
        /// The descriptor holding the handover.
        fd: i32,
    },
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Resolve the interpreter and libraries as `cetbox run --sysroot` does: under this
    /// directory first, falling back to the host.
    #[arg(long)]
    pub sysroot: Option<PathBuf>,
    /// ELF files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// When shadow stacks are on: off (only arch_prctl enables, like Linux 6.6), on (from the
    /// first instruction), auto (when every loaded object is marked SHSTK).
    #[arg(long, value_enum, default_value_t = ShstkArg::Off)]
    pub shstk: ShstkArg,
    /// What to do at a shadow-stack violation: kill (deliver SIGSEGV as Linux does) or
    /// continue (report, resynchronize and go on).
    #[arg(long = "on-violation", value_enum, default_value_t = ViolationArg::Kill)]
    pub on_violation: ViolationArg,
    /// Report format for shadow-stack violations.
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    pub report: ReportArg,
    /// Write reports to this file instead of stderr.
    #[arg(long = "report-file")]
    pub report_file: Option<PathBuf>,
    /// Trace events to stderr (syscalls).
    #[arg(long, value_parser = ["syscalls"])]
    pub trace: Vec<String>,
    /// A directory holding a distribution (or a libc): every absolute path the guest names is
    /// looked up there first (links resolve inside it), then on the host; /proc, /dev and /sys
    /// are always the host's.
    #[arg(long)]
    pub sysroot: Option<PathBuf>,
    /// Present a CPU without CET (CPUID CET_SS clear), as a shadow-stack-capable kernel on an
    /// older CPU: arch_prctl(ARCH_SHSTK_ENABLE) and map_shadow_stack answer EOPNOTSUPP.
    #[arg(long = "no-cet")]
    pub no_cet: bool,
    /// The CPU presented to the program, by microarchitecture level: x86-64 (baseline: SSE2),
    /// x86-64-v2 (+SSE3..SSE4.2, POPCNT, CMPXCHG16B), x86-64-v3 (+AVX, AVX2, FMA, F16C, BMI1,
    /// BMI2, LZCNT, MOVBE, XSAVE). Default: x86-64-v3, or the highest level the host supports if
    /// lower. CET shadow stacks are part of every level (see --no-cet).
    #[arg(long = "cpu", value_parser = ["x86-64", "x86-64-v2", "x86-64-v3"])]
    pub cpu: Option<String>,

    /// Exit with this status (1-255) at the end of a run in which any process of the whole
    /// process tree reported a shadow-stack violation, and print a one-line summary; 0 only
    /// prints the summary (Valgrind's convention).
    #[arg(long = "error-exitcode", value_name = "N", value_parser = clap::value_parser!(i32).range(0..=255))]
    pub error_exitcode: Option<i32>,

    /// Wait for gdb on [HOST:]PORT (default host 127.0.0.1) before the first instruction,
    /// and serve it as a remote target (`target remote :PORT`). Port 0 picks a free port;
    /// the address is printed on stderr.
    #[arg(long, value_name = "[HOST:]PORT")]
    pub gdb: Option<String>,

    /// The engine that runs guest code: jit (the translator, which hands the interpreter what
    /// it does not translate) or interp (the interpreter, the reference it is tested against).
    #[arg(long, value_enum, default_value_t = EngineArg::Jit)]
    pub engine: EngineArg,
    /// Do not read or write the hot-block profile in the user's cache directory (which lets
    /// a new process translate the blocks earlier processes found hot at their first visit).
    /// CETBOX_TRANSLATION_CACHE=off does the same; an absolute path there names the directory.
    #[arg(long = "no-translation-cache")]
    pub no_translation_cache: bool,
    /// The program to run.
    pub prog: PathBuf,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EngineArg {
    Interp,
    Jit,
}

impl From<EngineArg> for cetbox_linux::EngineKind {
    fn from(a: EngineArg) -> Self {
        match a {
            EngineArg::Interp => cetbox_linux::EngineKind::Interp,
            EngineArg::Jit => cetbox_linux::EngineKind::Jit,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShstkArg {
    Off,
    On,
    Auto,
}

impl From<ShstkArg> for cetbox_linux::ShstkPolicy {
    fn from(a: ShstkArg) -> Self {
        match a {
            ShstkArg::Off => cetbox_linux::ShstkPolicy::Off,
            ShstkArg::On => cetbox_linux::ShstkPolicy::On,
            ShstkArg::Auto => cetbox_linux::ShstkPolicy::Auto,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ViolationArg {
    Kill,
    Continue,
}

impl From<ViolationArg> for cetbox_linux::ViolationPolicy {
    fn from(a: ViolationArg) -> Self {
        match a {
            ViolationArg::Kill => cetbox_linux::ViolationPolicy::Kill,
            ViolationArg::Continue => cetbox_linux::ViolationPolicy::Continue,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportArg {
    Text,
    Json,
}
