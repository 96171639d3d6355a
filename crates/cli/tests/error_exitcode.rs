//! `--error-exitcode=N` (Valgrind's convention) over a whole process tree: tests/frontend/tree.c
//! builds a tree of processes (fork + execve at each level) whose leaves break the shadow stack
//! at two sites while every process exits 0, so only cetbox's own exit status can tell CI that
//! violations happened. Expected counts come from the program: each violating leaf runs site_a
//! twice and site_b once (3 violations at 2 sites); natively every process exits 0.

mod common;

use common::{run, Outcome, Spec, Status};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn tree_prog() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("error_exitcode");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("tree");
        let st = Command::new("gcc")
            .args(["-O1", "-g", "-static", "-fcf-protection=none", "-o"])
            .arg(&exe)
            .arg(common::repo_root().join("tests/frontend/tree.c"))
            .status()
            .expect("gcc must be installed");
        assert!(st.success(), "building tree.c failed");
        exe
    })
}

/// Compiles tests/frontend/NAME.c (static, with threads) next to the tree program.
fn build(name: &str) -> PathBuf {
    let exe = tree_prog().with_file_name(name);
    let st = Command::new("gcc")
        .args(["-O1", "-static", "-pthread", "-o"])
        .arg(&exe)
        .arg(common::repo_root().join(format!("tests/frontend/{name}.c")))
        .status()
        .expect("gcc must be installed");
    assert!(st.success(), "building {name}.c failed");
    exe
}

fn cetbox(opts: &[&str], args: &[&str]) -> Outcome {
    let spec = Spec::new(tree_prog()).args(args);
    let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    let o = run(&spec.under_cetbox(&opts));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked"), "cetbox panicked:\n{e}");
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const AUDIT: [&str; 3] = [
    "--shstk=on",
    "--on-violation=continue",
    "--error-exitcode=99",
];

/// The precondition: natively the tree exits 0, so a CI job would pass.
#[test]
fn natively_the_tree_exits_zero() {
    let o = run(&Spec::new(tree_prog()).args(["2", "violate"]));
    assert_eq!(o.status, Status::Exited(0));
    assert_eq!(
        text(&o.stdout),
        "leaf sum=114\ndepth 1: child 0 ended with 0\ndepth 2: child 0 ended with 0\n"
    );
}

/// A violation three processes deep (top -> child -> grandchild, each an execve'd program)
/// makes the top-level cetbox exit 99, with the one-line summary on stderr.
#[test]
fn violation_three_processes_deep_fails_the_run() {
    let o = cetbox(&AUDIT, &["2", "violate"]);
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(99), "{e}");
    // The guest itself behaved as natively (audit mode resynchronizes and goes on).
    assert_eq!(
        text(&o.stdout),
        "leaf sum=114\ndepth 1: child 0 ended with 0\ndepth 2: child 0 ended with 0\n"
    );
    let summary: Vec<&str> = e
        .lines()
        .filter(|l| l.contains("in the whole process tree"))
        .collect();
    assert_eq!(
        summary,
        ["cetbox: 3 violations at 2 sites in the whole process tree (--error-exitcode: exit status 99)"],
        "{e}"
    );
    assert!(
        e.trim_end().ends_with("(--error-exitcode: exit status 99)"),
        "the tree summary is the last line: {e}"
    );
}

/// Without violations the guest's own status stands and the summary says 0.
#[test]
fn clean_tree_keeps_the_guest_status() {
    let o = cetbox(&AUDIT, &["2", "clean"]);
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(0), "{e}");
    assert_eq!(
        e, "cetbox: 0 violations at 0 sites in the whole process tree\n",
        "{e}"
    );
}

/// Without --error-exitcode nothing changes: exit 0, no tree summary.
#[test]
fn without_the_option_the_status_is_the_guests() {
    let o = cetbox(
        &["--shstk=on", "--on-violation=continue"],
        &["2", "violate"],
    );
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(0), "{e}");
    assert!(!e.contains("whole process tree"), "{e}");
    assert!(e.contains("shadow-stack violation summary"), "{e}");
}

/// The same sites reached in two leaf processes (siblings under the top's two children) count
/// once each: 6 violations at 2 sites.
#[test]
fn sites_are_counted_once_across_processes() {
    let o = cetbox(&AUDIT, &["2", "violate", "2"]);
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(99), "{e}");
    assert!(
        e.contains("cetbox: 6 violations at 2 sites in the whole process tree"),
        "{e}"
    );
}

/// In kill mode a leaf dies of SIGSEGV, which its parent ignores (exit 0): the run still
/// fails.
#[test]
fn kill_mode_violations_count_too() {
    let o = cetbox(&["--shstk=on", "--error-exitcode=42"], &["1", "violate"]);
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(42), "{e}");
    // SIGSEGV is signal 11, shown as the raw wait status 0xb.
    assert_eq!(text(&o.stdout), "depth 1: child 0 ended with 0xb\n");
    assert!(
        e.contains("cetbox: 1 violation at 1 site in the whole process tree"),
        "{e}"
    );
}

/// --error-exitcode=0 prints the summary but keeps the guest's status.
#[test]
fn zero_only_summarizes() {
    let o = cetbox(
        &[
            "--shstk=on",
            "--on-violation=continue",
            "--error-exitcode=0",
        ],
        &["1", "violate"],
    );
    let e = text(&o.stderr);
    assert_eq!(o.status, Status::Exited(0), "{e}");
    assert!(
        e.lines()
            .any(|l| l == "cetbox: 3 violations at 2 sites in the whole process tree"),
        "{e}"
    );
}

/// Out-of-range values are usage errors (exit 2).
#[test]
fn bad_values_are_usage_errors() {
    for bad in [
        "--error-exitcode=256",
        "--error-exitcode=-1",
        "--error-exitcode=x",
    ] {
        let o = cetbox(&[bad], &["0", "clean"]);
        assert_eq!(o.status, Status::Exited(2), "{bad}: {}", text(&o.stderr));
    }
}

/// With --report=json the tree summary is the report's last object, valid against
/// docs/report-schema.json, and the text line still reaches stderr.
#[test]
fn json_report_ends_with_the_tree_summary() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("error_exitcode");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tree.jsonl");
    let _ = std::fs::remove_file(&file);
    let rf = format!("--report-file={}", file.display());
    let o = cetbox(
        &[
            "--shstk=on",
            "--on-violation=continue",
            "--error-exitcode=99",
            "--report=json",
            &rf,
        ],
        &["2", "violate"],
    );
    assert_eq!(o.status, Status::Exited(99), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "cetbox: 3 violations at 2 sites in the whole process tree (--error-exitcode: exit status 99)\n"
    );
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("docs/report-schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let report = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for v in &lines {
        let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{v}\n{errors:?}");
    }
    let last = lines.last().expect("a report");
    assert_eq!(
        last,
        &serde_json::json!({"type": "tree-summary", "violations": 3, "sites": 2, "error_exitcode": 99})
    );
}

/// The tally and the report file survive an execve made from a second thread (which makes
/// cetbox re-execute itself): the violating tree runs after such an exec, at the top level.
#[test]
fn tally_and_report_survive_exec_from_a_thread() {
    let launcher = build("thread_exec");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("error_exitcode");
    let file = dir.join("thread_exec.jsonl");
    let _ = std::fs::remove_file(&file);
    let rf = format!("--report-file={}", file.display());
    let tree = tree_prog().to_str().unwrap().to_string();
    let mut opts: Vec<String> = AUDIT.iter().map(|s| s.to_string()).collect();
    opts.extend(["--report=json".to_string(), rf]);
    let spec = Spec::new(&launcher).args([tree.as_str(), "1", "violate"]);
    let o = run(&spec.under_cetbox(&opts));
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status, Status::Exited(99), "{e}");
    assert_eq!(
        e,
        "cetbox: 3 violations at 2 sites in the whole process tree (--error-exitcode: exit status 99)\n"
    );
    let report = std::fs::read_to_string(&file).unwrap();
    let last: serde_json::Value = serde_json::from_str(report.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "tree-summary");
    assert_eq!(
        report.matches("\"type\":\"violation\"").count(),
        2,
        "{report}"
    );
}

/// The example: `make check` whose recipe runs the tree (make -> tree -> leaf).
#[test]
fn make_check_fails_when_a_child_violates() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("error_exitcode/make");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Makefile"),
        format!("check:\n\t{} 1 violate\n", tree_prog().display()),
    )
    .unwrap();
    let mut spec = Spec::new("make").args(["-s", "check"]);
    spec.cwd = Some(dir);
    let native = run(&spec);
    assert_eq!(native.status, Status::Exited(0), "{}", text(&native.stderr));
    let o = run(&spec.under_cetbox(&AUDIT.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    let e = text(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status, Status::Exited(99), "{e}");
    assert_eq!(text(&o.stdout), text(&native.stdout));
    assert!(e.ends_with("cetbox: 3 violations at 2 sites in the whole process tree (--error-exitcode: exit status 99)\n"), "{e}");
}
