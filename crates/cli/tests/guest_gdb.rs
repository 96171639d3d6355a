//! gdb run as a guest debugs another guest through ptrace between guests
//! (crates/linux/src/syscalls/ptrace/): Debian's gdb in batch mode breaks in tests/gdb/basic.c,
//! shows the backtrace, arguments and rip, steps a line, changes a variable, finishes a frame
//! and continues to the end, under cetbox exactly as it does natively (with displaced
//! stepping, which copies instructions to the entry point gdb reads from /proc/PID/auxv: the
//! tracee's guest auxv).

use std::path::PathBuf;
use std::time::Duration;

mod common;
use common::{run, Spec, Status};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// gdb's report with the process id taken out.
fn normalize(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| match l.find("(process ") {
            Some(i) => format!(
                "{}(process N{}",
                &l[..i],
                &l[l[i..].find(')').unwrap() + i..]
            ),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn guest_gdb_breaks_steps_and_finishes_like_native() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest_gdb");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("basic");
    common::gcc(
        &root().join("tests/gdb/basic.c"),
        &exe,
        &["-g", "-fcf-protection=none", "-O1", "-static"],
        &[],
    );
    let gdb = PathBuf::from("/usr/bin/gdb");
    let mut args: Vec<String> = vec!["-nx".into(), "-batch".into()];
    for c in [
        "break leaf",
        "run",
        "bt",
        "p x",
        "p/x $rip",
        "next",
        "p counter",
        "set var counter = 100",
        "finish",
        "continue",
    ] {
        args.push("-ex".into());
        args.push(c.into());
    }
    args.push(exe.to_str().unwrap().into());
    let mut native = Spec::new(&gdb).args(args.iter().cloned());
    native.cwd = Some(dir.clone());
    native.timeout = Duration::from_secs(120);
    let n = run(&native);
    assert!(
        matches!(n.status, Status::Exited(0)),
        "native gdb: {}",
        n.status
    );
    let n = normalize(&n.stdout);
    // The run must have got somewhere: the breakpoint, the changed counter, the exit.
    assert!(n.contains("Breakpoint 1, leaf (x=x@entry=21)"), "{n}");
    assert!(n.contains("result 43 counter 100"), "{n}");
    assert!(n.contains("exited normally"), "{n}");
    // Under both engines (the translator by default).
    for engine in [&[][..], &["--engine=interp".to_string()][..]] {
        let mut guest = native.under_cetbox(engine);
        guest.timeout = Duration::from_secs(120);
        let g = run(&guest);
        assert!(
            matches!(g.status, Status::Exited(0)),
            "guest gdb {engine:?}: {}",
            g.status
        );
        let g = normalize(&g.stdout);
        assert_eq!(
            n, g,
            "native gdb (left) and gdb under cetbox {engine:?} (right) differ"
        );
    }
}
