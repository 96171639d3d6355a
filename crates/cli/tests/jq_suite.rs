//! A real third-party test suite: jq's shell-driven test drivers (`tests/third_party/jq`, from
//! the jq 1.6 sources) run with Debian's `jq`, natively and under `cetbox run`. Each driver is a
//! `#!/bin/sh` script that sources jq's `tests/setup` (set -eu, mktemp, traps, `which`) and runs
//! `jq --run-tests`; under cetbox the whole tree (sh, mktemp, which, dirname, jq, rm) runs
//! emulated. Output and exit status must be identical, and the native run must pass.
//! The 321-test core suite (`tests/jq.test`, with its modules) runs the same way through
//! `jq --run-tests` directly, under the default engine (the translator).

mod common;

use common::{compare, repo_root, run, Spec, Status, TempDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

const JQ: &str = "/usr/bin/jq";
const DRIVERS: [&str; 3] = ["utf8test", "base64test", "onigtest"];

/// Lays out jq's tree as its drivers expect it: `tests/` beside the `jq` binary.
fn layout(dir: &Path) {
    copy_tree(
        &repo_root().join("tests/third_party/jq/tests"),
        &dir.join("tests"),
    );
    std::os::unix::fs::symlink(JQ, dir.join("jq")).expect("symlink jq");
}

/// Copies the directory tree `src` to `to`, every file readable (jq's module tests read
/// `tests/modules`).
fn copy_tree(src: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(src).expect("jq tests") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dest);
            continue;
        }
        std::fs::copy(e.path(), &dest).expect("copy");
        let mode = std::fs::metadata(e.path())
            .expect("stat")
            .permissions()
            .mode();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode | 0o444))
            .expect("chmod");
    }
}

/// jq's core suite: `jq -L tests/modules --run-tests tests/jq.test`, natively and under the
/// default engine. Every line (each test's name and line number, the summary "321 of 321 tests
/// passed") and the exit status must match, and the native run must pass all 321 tests.
#[test]
fn jq_core_suite_matches_native() {
    assert!(
        Path::new(JQ).exists(),
        "{JQ} is missing: install Debian's jq (`apt-get install -y jq`)"
    );
    let tests = repo_root().join("tests/third_party/jq/tests");
    let mut spec = Spec::new(JQ).args([
        "-L".into(),
        tests.join("modules").into_os_string(),
        "--run-tests".into(),
        tests.join("jq.test").into_os_string(),
    ]);
    spec.timeout = Duration::from_secs(120);
    let native = run(&spec);
    let mut under = spec.under_cetbox(&[]);
    // About 35 s on an idle 2-core machine (6x native); other tests run beside it.
    under.timeout = Duration::from_secs(600);
    let emulated = run(&under);
    println!(
        "jq.test native {:.2}s, cetbox {:.2}s",
        native.elapsed.as_secs_f64(),
        emulated.elapsed.as_secs_f64()
    );
    assert_eq!(native.status, Status::Exited(0), "the native run fails");
    let out = String::from_utf8_lossy(&native.stdout);
    assert!(
        out.lines()
            .any(|l| l == "321 of 321 tests passed (0 malformed)"),
        "native summary is not 321 of 321: {}",
        out.lines().last().unwrap_or("")
    );
    if let Some(d) = compare("native", &native, "cetbox", &emulated) {
        panic!("jq.test differs under cetbox:\n{d}");
    }
}

#[test]
fn jq_test_drivers_match_native() {
    drivers(false);
}

/// Drivers that report shadow-stack violations under `--shstk=on` when the shell and C
/// library they run are not built for shadow stacks (the drivers are `set -e` dash scripts
/// whose command substitutions and traps leave through longjmp, and glibc's vfork without CET
/// code). `common::audit_problems` checks that these and only these report, and never in an
/// object marked SHSTK.
const SHSTK_EXPECTED: &[&str] = &["utf8test", "base64test", "onigtest"];

/// The drivers again with shadow stacks on (audit mode): output identical to the native run,
/// violations exactly in the listed drivers.
#[test]
fn jq_test_drivers_with_shadow_stacks_on() {
    drivers(true);
}

fn drivers(audit: bool) {
    assert!(
        Path::new(JQ).exists(),
        "{JQ} is missing: install Debian's jq (`apt-get install -y jq`)"
    );
    let base = TempDir::new("jq");
    let mut failures = Vec::new();
    let mut passed = 0;
    for name in DRIVERS {
        let report_dir = TempDir::new("jq-report");
        let report_file = report_dir.path.join("cet.jsonl");
        let mut outs = Vec::new();
        for under in [false, true] {
            let dir: PathBuf = base.path.join(format!("{name}-{}", under as u8));
            layout(&dir);
            let mut spec = Spec::new(dir.join("tests").join(name));
            // jq's setup runs everything under valgrind when it finds one.
            spec.env.push(("NO_VALGRIND".into(), "1".into()));
            spec.env.push(("TMPDIR".into(), dir.display().to_string()));
            spec.cwd = Some(dir.clone());
            spec.timeout = Duration::from_secs(60);
            let spec = if under {
                let opts = if audit {
                    common::shstk_audit_args(&report_file)
                } else {
                    Vec::new()
                };
                let mut s = spec.under_cetbox(&opts);
                s.timeout = Duration::from_secs(300);
                s
            } else {
                spec
            };
            outs.push(run(&spec));
        }
        let (native, emulated) = (&outs[0], &outs[1]);
        let line = format!(
            "{:<12} {:<20} native {:>6.2}s  cetbox {:>6.2}s",
            name,
            native.status.to_string(),
            native.elapsed.as_secs_f64(),
            emulated.elapsed.as_secs_f64()
        );
        let mut details = String::new();
        if native.status != Status::Exited(0) {
            details.push_str(&format!(
                "    the native run fails: {}\n{}\n",
                native.status,
                String::from_utf8_lossy(&native.stderr)
            ));
        }
        if let Some(d) = compare("native", native, "cetbox", emulated) {
            details.push_str(&d);
        }
        if audit {
            let found = common::violations_in(&report_file);
            let shell = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
            let listed = SHSTK_EXPECTED.contains(&name);
            for p in common::audit_problems(name, &shell, listed, &found) {
                details.push_str(&format!("    {p}\n"));
            }
        }
        if details.is_empty() {
            passed += 1;
            println!("ok   {line}");
        } else {
            println!("FAIL {line}\n{}", details.trim_end());
            failures.push(format!("{line}\n{details}"));
        }
    }
    let summary = format!("{passed} passed, {} failed", failures.len());
    println!("{summary}");
    assert!(failures.is_empty(), "{summary}\n{}", failures.join("\n"));
}
