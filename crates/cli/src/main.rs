//! The cetbox command line.

mod check;
mod cli;
mod demo;
mod gdb;
mod private_fd;
mod report;

use clap::Parser;
use std::os::unix::ffi::OsStrExt;

/// Parses the command line; bad usage gets one plain line on stderr and exit status 2.
fn parse() -> cli::Cli {
    use clap::error::ErrorKind;
    match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let text = e.to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let mut first = lines
                .next()
                .unwrap_or("bad usage")
                .trim_start_matches("error: ")
                .to_string();
            if first.ends_with(':') {
                // "the following required arguments were not provided:" names them next.
                first = format!("{first} {}", lines.next().unwrap_or(""));
            }
            let first = if matches!(
                e.kind(),
                ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                "a subcommand is required: run, check or demo".to_string()
            } else {
                first
            };
            eprintln!("cetbox: {first} (see 'cetbox --help')");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args = parse();
    let code = match args.command {
        cli::Command::Run(r) => run(r),
        cli::Command::Demo => demo::run(),
        cli::Command::Check(c) => check::run(&c.files, c.json, c.sysroot.as_deref()),
        cli::Command::Resume { fd } => resume(fd),
    };
    std::process::exit(code);
}

/// A program name without a slash is looked up in PATH, as a shell would (`cetbox run -- make
/// check`); the first executable regular file wins. Anything else is used as given.
fn resolve_program(prog: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if prog.as_os_str().as_bytes().contains(&b'/') || prog.as_os_str().is_empty() {
        return prog.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|c| {
            std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| prog.to_path_buf())
}

/// The level to present: the one asked for if the host can back it (else one line and None),
/// or the default, lowered to what the host supports (with one line saying so).
fn cpu_level(asked: Option<&str>) -> Option<cetbox_cpu::CpuLevel> {
    use cetbox_cpu::CpuLevel;
    match asked {
        Some(name) => {
            let level = CpuLevel::from_name(name)?;
            let missing = level.missing_host_features();
            if !missing.is_empty() {
                eprintln!(
                    "cetbox: --cpu={name} needs host CPU features this machine lacks: {}",
                    missing.join(", ")
                );
                return None;
            }
            Some(level)
        }
        None => {
            let host = CpuLevel::host_max();
            if host < CpuLevel::DEFAULT {
                eprintln!(
                    "cetbox: this host cannot back the default CPU {}; presenting {}",
                    CpuLevel::DEFAULT.name(),
                    host.name()
                );
                Some(host)
            } else {
                Some(CpuLevel::DEFAULT)
            }
        }
    }
}

/// The fresh cetbox a guest's execve from a multi-threaded process started: reads the handover
/// and runs the new program (never returns unless the handover is unreadable).
fn resume(fd: i32) -> i32 {
    use std::io::Read;
    use std::os::unix::io::FromRawFd;
    // SAFETY: the descriptor was left open for us by the cetbox that exec'd this one; we take
    // ownership and close it when done.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    // The handover memfd's offset is at its start (cetbox_linux::memfd::holding).
    let mut data = Vec::new();
    if let Err(e) = file.read_to_end(&mut data) {
        eprintln!("cetbox: resume: {e}");
        return 2;
    }
    drop(file);
    let Some(h) = cetbox_linux::reexec::Handover::decode(&data) else {
        eprintln!("cetbox: resume: bad handover (this subcommand is internal)");
        return 2;
    };
    let reporter = report::Reporter::resume(&h.observer);
    cetbox_linux::reexec::resume(h, std::sync::Arc::new(reporter))
}

fn run(r: cli::RunArgs) -> i32 {
    let Some(cpu_level) = cpu_level(r.cpu.as_deref()) else {
        return 2;
    };
    // The sysroot rules (cetbox_linux::sysroot) want the directory without symbolic links.
    let sysroot = match r
        .sysroot
        .as_deref()
        .map(cetbox_linux::sysroot::canonical_root)
    {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            eprintln!(
                "cetbox: --sysroot={}: {e}",
                r.sysroot
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new(""))
                    .display()
            );
            return 2;
        }
    };
    let opts = cetbox_linux::Options {
        cpu_level,
        shstk: r.shstk.into(),
        on_violation: r.on_violation.into(),
        trace_syscalls: r.trace.iter().any(|t| t == "syscalls"),
        sysroot,
        no_cet: r.no_cet,
        engine: r.engine.into(),
        self_exe: std::env::current_exe().ok(),
        translation_cache: if r.no_translation_cache {
            None
        } else {
            cetbox_linux::default_translation_cache()
        },
    };
    let mut argv: Vec<Vec<u8>> = vec![r.prog.as_os_str().as_bytes().to_vec()];
    argv.extend(r.args.iter().map(|a| a.as_bytes().to_vec()));
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    let path = resolve_program(&r.prog).to_string_lossy().into_owned();
    let format = match r.report {
        cli::ReportArg::Text => report::Format::Text,
        cli::ReportArg::Json => report::Format::Json,
    };
    let reporter = match report::Reporter::new(
        format,
        r.report_file.as_deref(),
        matches!(r.on_violation, cli::ViolationArg::Continue),
    ) {
        Ok(rep) => rep,
        Err(e) => {
            eprintln!(
                "cetbox: cannot create report file {}: {e}",
                r.report_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            return 2;
        }
    };
    let reporter = match r.error_exitcode {
        Some(code) => match report::Tally::create() {
            Ok(t) => reporter.with_error_exitcode(t, code),
            Err(e) => {
                eprintln!("cetbox: cannot set up --error-exitcode: {e}");
                return 2;
            }
        },
        None => reporter,
    };
    let mut observer: std::sync::Arc<dyn cetbox_linux::events::Observer> =
        std::sync::Arc::new(reporter);
    let last_violation = std::sync::Arc::new(std::sync::Mutex::new(None));
    if r.gdb.is_some() {
        observer = std::sync::Arc::new(gdb::Recording {
            inner: observer,
            last: last_violation.clone(),
        });
    }
    let gdb_addr = r.gdb.as_deref().map(gdb::listen_address);
    let attach = |proc: &std::sync::Arc<cetbox_linux::Process>, first: i32| {
        if let Some(addr) = &gdb_addr {
            if let Err(e) = gdb::attach(addr, proc, first, last_violation.clone()) {
                eprintln!("cetbox: cannot serve gdb on {addr}: {e}");
                std::process::exit(2);
            }
        }
    };
    match cetbox_linux::start::run_program(opts, Some(observer), &path, argv, envp, attach) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("cetbox: {e}");
            // As shells report a command that cannot be run: 127 when it was not found, 126
            // when it was found but cannot be executed.
            if e.errno == libc::ENOENT || e.errno == libc::ENOTDIR {
                127
            } else {
                126
            }
        }
    }
}
