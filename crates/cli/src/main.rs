//! The cetbox command line.

mod check;
mod cli;
mod demo;
mod report;

use clap::Parser;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let args = cli::Cli::parse();
    let code = match args.command {
        cli::Command::Run(r) => run(r),
        cli::Command::Demo => demo::run(),
        cli::Command::Check(c) => check::run(&c.files, c.json, c.sysroot.as_deref()),
    };
    std::process::exit(code);
}

fn run(r: cli::RunArgs) -> i32 {
    let opts = cetbox_linux::Options {
        shstk: r.shstk.into(),
        on_violation: r.on_violation.into(),
        trace_syscalls: r.trace.iter().any(|t| t == "syscalls"),
        sysroot: r.sysroot.clone(),
        no_cet: false,
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
    let path = r.prog.to_string_lossy().into_owned();
    let format = match r.report {
        cli::ReportArg::Text => report::Format::Text,
        cli::ReportArg::Json => report::Format::Json,
    };
    let reporter = match report::Reporter::new(format, r.report_file.as_deref()) {
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
        Err(msg) => {
            eprintln!("cetbox: {msg}");
            // As a shell reports a command it cannot run: 127 when there is no such file,
            // 126 when it exists but cannot be executed.
            if r.prog.exists() {
                126
            } else {
                127
            }
        }
    }
}
