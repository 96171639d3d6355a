//! Threads and shadow stacks (docs/acceptance.md, Linux behaviour 14.9; Linux
//! arch/x86/kernel/shstk.c, shstk_alloc_thread_stack() and shstk_free()): a guest program from
//! tests/threads/ run under `cetbox run --shstk=on`. There is no CET hardware to compare with,
//! so the expected output is written from those sources, not taken from cetbox.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Builds tests/threads/NAME.c once per test run: the tests here run in parallel and share
/// the binary, so none may run it while another is still linking it.
fn build(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    assert_eq!(name, "shstk_threads", "one program is built here");
    BUILT
        .get_or_init(|| {
            let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/threads")
                .join(format!("{name}.c"));
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("threads");
            std::fs::create_dir_all(&out).unwrap();
            let exe = out.join(name);
            let tmp = out.join(format!("{name}.tmp{}", std::process::id()));
            let o = common::output_within(
                Command::new("gcc")
                    .args(["-O2", "-static", "-pthread", "-o"])
                    .arg(&tmp)
                    .arg(&src),
                common::TOOL_TIMEOUT,
            );
            assert!(
                o.status.success(),
                "building {name}.c failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::fs::rename(&tmp, &exe).unwrap();
            exe
        })
        .clone()
}

/// Runs the program under cetbox with `opts`; returns stdout and how it ended.
fn run(exe: &PathBuf, opts: &[&str]) -> (String, String) {
    use std::os::unix::process::ExitStatusExt;
    let out = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_cetbox"))
            .arg("run")
            .args(opts)
            .arg("--")
            .arg(exe)
            .env_clear()
            .env("PATH", "/usr/bin:/bin"),
        Duration::from_secs(120),
    );
    let how = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "cetbox panicked:\n{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), how)
}

/// shstk_alloc_thread_stack(): each CLONE_VM thread gets a new shadow stack of
/// PAGE_ALIGN(clone3 stack_size) (0x10001 -> 0x11000) or, for clone,
/// PAGE_ALIGN(min(RLIMIT_STACK, 4 GiB)) (0x180000),
/// starting empty; shstk_free() (behaviour 14.9): it is unmapped when the thread exits.
#[test]
fn threads_get_their_own_shadow_stacks() {
    let exe = build("shstk_threads");
    let (out, how) = run(&exe, &["--shstk=on"]);
    let expected = "\
main: shadow stacks on 1
main: in a mapping 1
main: ss flag 1
clone3: created 1
clone3 thread: own mapping 1, one entry below the end 1, size 0x11000, differs from main 1, ss flag 1
clone3 thread: shadow stack unmapped after exit 1
clone: created 1
clone thread: own mapping 1, one entry below the end 1, size 0x180000, differs from main 1, ss flag 1
clone thread: shadow stack unmapped after exit 1
pthread: on a shadow stack 1, differs from main 1, unmapped after join 1
main: still on its shadow stack 1
";
    assert_eq!(out, expected);
    assert_eq!(how, "exit 0");
}

/// shstk_alloc_thread_stack(): without shadow stacks nothing is allocated (RDSSP is a NOP and
/// reads 0).
#[test]
fn threads_without_shadow_stacks() {
    let exe = build("shstk_threads");
    let (out, how) = run(&exe, &["--shstk=off"]);
    let expected = "\
main: shadow stacks on 0
pthread: ssp 0
shadow-stack mappings: 0
";
    assert_eq!(out, expected);
    assert_eq!(how, "exit 0");
}
