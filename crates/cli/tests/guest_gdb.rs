//! gdb run as a guest debugs another guest through ptrace between guests
//! (crates/linux/src/syscalls/ptrace/): Debian's gdb in batch mode breaks in tests/gdb/basic.c,
//! shows the backtrace, arguments and rip, steps a line, changes a variable, finishes a frame
//! and continues to the end, under cetbox exactly as it does natively (with displaced
//! stepping, which copies instructions to the entry point gdb reads from /proc/PID/auxv: the
//! tracee's guest auxv). A second test has gdb debug a two-threaded program: the new thread
//! reported through PTRACE_O_TRACECLONE, its breakpoint, `info threads`, each thread's
//! backtrace, and the thread's exit before the process's.

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

/// Also the threads' identities: `Thread 0x... (LWP n)` (the thread pointer is an mmap or brk
/// address, the LWP a tid) becomes `Thread T (LWP N)`, and runs of spaces (the `info threads`
/// columns, as wide as those) become one.
fn normalize_threads(out: &[u8]) -> String {
    normalize(out)
        .lines()
        .map(|l| {
            let mut s = String::new();
            let mut rest = l;
            while let Some(i) = rest.find("Thread 0x") {
                s.push_str(&rest[..i]);
                let tail = &rest[i..];
                match tail.find(')') {
                    Some(j) if tail[..j].contains("(LWP ") => {
                        s.push_str("Thread T (LWP N)");
                        rest = &tail[j + 1..];
                    }
                    _ => {
                        s.push_str("Thread 0x");
                        rest = &tail["Thread 0x".len()..];
                    }
                }
            }
            s.push_str(rest);
            s.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// gdb's batch run of `exe` with commands `cmds`, natively and as a guest under both engines;
/// returns the native report, normalized by `norm`, after checking the guest runs gave the
/// same.
fn native_and_guest(exe: &std::path::Path, cmds: &[&str], norm: fn(&[u8]) -> String) -> String {
    let dir = exe.parent().unwrap().to_path_buf();
    let gdb = PathBuf::from("/usr/bin/gdb");
    let mut args: Vec<String> = vec!["-nx".into(), "-batch".into()];
    for c in cmds {
        args.push("-ex".into());
        args.push((*c).into());
    }
    args.push(exe.to_str().unwrap().into());
    let mut native = Spec::new(&gdb).args(args.iter().cloned());
    native.cwd = Some(dir);
    native.timeout = Duration::from_secs(120);
    let n = run(&native);
    assert!(
        matches!(n.status, Status::Exited(0)),
        "native gdb: {}",
        n.status
    );
    let n = norm(&n.stdout);
    for engine in [&[][..], &["--engine=interp".to_string()][..]] {
        let mut guest = native.under_cetbox(engine);
        guest.timeout = Duration::from_secs(120);
        let g = run(&guest);
        assert!(
            matches!(g.status, Status::Exited(0)),
            "guest gdb {engine:?}: {}",
            g.status
        );
        let g = norm(&g.stdout);
        assert_eq!(
            n, g,
            "native gdb (left) and gdb under cetbox {engine:?} (right) differ"
        );
    }
    n
}

#[test]
fn guest_gdb_debugs_threads_like_native() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest_gdb_threads");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("thread_stop");
    common::gcc(
        &root().join("tests/gdb/thread_stop.c"),
        &exe,
        &["-g", "-fcf-protection=none", "-O1", "-static", "-pthread"],
        &[],
    );
    let n = native_and_guest(
        &exe,
        &[
            "break stop_here",
            "run",
            "info threads",
            "bt",
            "thread 1",
            "bt",
            "thread 2",
            "p n",
            "continue",
        ],
        normalize_threads,
    );
    // The run must have got somewhere: the new thread, its breakpoint, both threads listed
    // with main in pthread_join, the thread's exit, then the process's.
    assert!(n.contains("[New Thread T (LWP N)]"), "{n}");
    assert!(
        n.contains("Thread 2 \"thread_stop\" hit Breakpoint 1, stop_here (n=n@entry=41)"),
        "{n}"
    );
    assert!(n.contains("__pthread_clockjoin_ex"), "{n}");
    assert!(
        n.contains("* 2 Thread T (LWP N) \"thread_stop\" stop_here"),
        "{n}"
    );
    assert!(
        n.contains("[Thread T (LWP N) exited]\n[Inferior 1 (process N) exited normally]"),
        "{n}"
    );
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
