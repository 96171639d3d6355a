//! The cetbox command line.

mod check;
mod cli;
mod demo;
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

fn run(r: cli::RunArgs) -> i32 {
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
        shstk: r.shstk.into(),
        on_violation: r.on_violation.into(),
        trace_syscalls: r.trace.iter().any(|t| t == "syscalls"),
        sysroot,
        no_cet: r.no_cet,
        self_exe: std::env::current_exe().ok(),
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
    let observer: std::sync::Arc<dyn cetbox_linux::events::Observer> =
        std::sync::Arc::new(reporter);
    match cetbox_linux::run::run_program(opts, Some(observer), &path, argv, envp) {
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
