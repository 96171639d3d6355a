//! `cetbox demo`: builds a small program with a stack buffer overflow (demo/vuln.c, built into
//! cetbox) and runs its attack twice under cetbox: with shadow stacks off it succeeds, with them
//! on it is stopped and reported.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = include_str!("../../../demo/vuln.c");

fn build(dir: &Path) -> Result<PathBuf, String> {
    let src = dir.join("vuln.c");
    let exe = dir.join("vuln");
    std::fs::write(&src, SOURCE).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let out = Command::new("gcc")
        .args(["-O0", "-g", "-fno-stack-protector", "-fcf-protection=none", "-static", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run gcc ({e}); install gcc and the static C library (Debian: gcc libc6-dev)"))?;
    if !out.status.success() {
        return Err(format!(
            "gcc failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(exe)
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(11)) => "killed by SIGSEGV".into(),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown".into(),
    }
}

fn run_once(exe: &Path, shstk: &str) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    println!("$ cetbox run --shstk={shstk} vuln");
    let out = Command::new(me)
        .args(["run", &format!("--shstk={shstk}"), "--"])
        .arg(exe)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .map_err(|e| e.to_string())?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  | {line}");
    }
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        println!("  ! {line}");
    }
    println!("  => {}\n", describe(out.status));
    Ok(())
}

pub fn run() -> i32 {
    let dir = std::env::temp_dir().join(format!("cetbox-demo-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cetbox: cannot create {}: {e}", dir.display());
        return 2;
    }
    let result = build(&dir).and_then(|exe| {
        println!(
            "cetbox demo: greet() overflows a 16-byte buffer and overwrites its return address"
        );
        println!("with the address of grant_admin(), which the program never calls.\n");
        println!("1. Shadow stacks off (what most machines run today): the attack works.");
        run_once(&exe, "off")?;
        println!("2. Shadow stacks on: RET compares the return address with the shadow stack.");
        run_once(&exe, "on")?;
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cetbox: demo: {e}");
            2
        }
    }
}
