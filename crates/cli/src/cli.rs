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
    /// The program to run.
    pub prog: PathBuf,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
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
