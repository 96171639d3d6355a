//! The command line as users see it: help and bad usage of every subcommand, `check`, `demo`,
//! reports (text and JSON, validated against docs/report-schema.json), audit mode, the
//! `--shstk=auto` policy and syscall tracing.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Every run here takes seconds at most; a hang fails after this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn cetbox(args: &[&str]) -> Output {
    common::output_within(
        Command::new(env!("CARGO_BIN_EXE_cetbox"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin"),
        RUN_TIMEOUT,
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("frontend");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles tests/frontend/NAME.c with `flags` into NAME-TAG, once per test run: tests run
/// in parallel and several use the same binary, so each is built by the first test that asks
/// (into a temporary name, then renamed) while the others wait for it.
fn build(name: &str, tag: &str, flags: &[&str]) -> PathBuf {
    type Slot = Arc<OnceLock<PathBuf>>;
    type Slots = Mutex<HashMap<String, (Vec<String>, Slot)>>;
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    let key = format!("{name}-{tag}");
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let slot = {
        let mut m = SLOTS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (known, slot) = m
            .entry(key.clone())
            .or_insert_with(|| (flags.clone(), Slot::default()));
        assert_eq!(*known, flags, "{key} is built with one set of flags");
        slot.clone()
    };
    slot.get_or_init(|| {
        let exe = out_dir().join(&key);
        let tmp = out_dir().join(format!("{key}.tmp{}", std::process::id()));
        let o = common::output_within(
            Command::new("gcc")
                .args(&flags)
                .arg("-o")
                .arg(&tmp)
                .arg(root().join(format!("tests/frontend/{name}.c"))),
            common::TOOL_TIMEOUT,
        );
        assert!(
            o.status.success(),
            "gcc failed for {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
        exe
    })
    .clone()
}

fn audit_prog() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        build(
            "audit",
            "static",
            &["-O1", "-g", "-static", "-fcf-protection=none"],
        )
    })
}

#[test]
fn help_documents_every_subcommand_and_option() {
    let o = cetbox(&["--help"]);
    assert!(o.status.success());
    for c in ["run", "check", "demo"] {
        assert!(stdout(&o).contains(c), "top-level help lacks {c}");
    }
    let o = cetbox(&["run", "--help"]);
    assert!(o.status.success());
    for opt in [
        "--shstk",
        "--on-violation",
        "--report",
        "--report-file",
        "--trace",
        "--sysroot",
        "--cpu",
        "x86-64-v3",
        "off",
        "auto",
        "continue",
        "json",
    ] {
        assert!(stdout(&o).contains(opt), "run --help lacks {opt}");
    }
    let o = cetbox(&["check", "--help"]);
    assert!(
        o.status.success() && stdout(&o).contains("--json") && stdout(&o).contains("--sysroot")
    );
    let o = cetbox(&["demo", "--help"]);
    assert!(o.status.success() && stdout(&o).contains("vulnerable"));
}

#[test]
fn bad_usage_is_one_plain_line_and_status_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frob"],
        &["run"],
        &["run", "--shstk=maybe", "/bin/true"],
        &["run", "--on-violation=ignore", "/bin/true"],
        &["run", "--report=xml", "/bin/true"],
        &["run", "--trace=everything", "/bin/true"],
        &["run", "--bogus", "/bin/true"],
        &["check"],
        &["check", "--bogus", "/bin/true"],
        &["demo", "extra"],
    ];
    for args in cases {
        let o = cetbox(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{args:?}: not one line: {e}");
        assert!(e.starts_with("cetbox: "), "{args:?}: {e}");
        assert!(!e.contains("panicked"));
    }
}

#[test]
fn report_file_that_cannot_be_created_is_an_error() {
    let o = cetbox(&["run", "--report-file=/nonexistent/dir/r.txt", "/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("cetbox: cannot create report file"));
}

#[test]
fn check_marked_unmarked_and_not_elf() {
    let marked = build(
        "auto",
        "marked",
        &["-nostdlib", "-static", "-fcf-protection=full"],
    );
    let unmarked = build(
        "auto",
        "unmarked",
        &["-nostdlib", "-static", "-fcf-protection=none"],
    );
    let o = cetbox(&["check", marked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("yes   yes"), "{}", stdout(&o));
    assert!(stdout(&o).contains("shadow stacks can be enabled"));
    let o = cetbox(&[
        "check",
        unmarked.to_str().unwrap(),
        marked.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("shadow stacks stay off: 1 of 1 objects lack SHSTK"));
    let text = root().join("README.md");
    let o = cetbox(&["check", text.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    // JSON, with a dynamically linked program: its libraries are resolved like ld.so does.
    let o = cetbox(&["check", "--json", "/bin/true", marked.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    // /bin/true can run with shadow stacks exactly when it and every object it loads carry
    // the SHSTK property; readelf decides that here, independently of cetbox (Debian 12's are
    // unmarked, Ubuntu's and Fedora's marked).
    let all_marked =
        files[0]["objects"].as_array().unwrap().iter().all(|o| {
            common::object_has_shstk(Path::new(o["path"].as_str().expect("resolved path")))
        });
    assert_eq!(files[0]["shstk"], all_marked, "{}", files[0]);
    assert_eq!(o.status.code(), Some(if all_marked { 0 } else { 1 }));
    let libs: Vec<&str> = files[0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(libs.contains(&"libc.so.6"), "{libs:?}");
    assert!(files[0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/libc.so.6"))));
    assert_eq!(files[1]["shstk"], true);
    assert_eq!(files[1]["objects"][0]["ibt"], true);
}

#[test]
fn shstk_auto_follows_the_markings() {
    let marked = build(
        "auto",
        "marked",
        &["-nostdlib", "-static", "-fcf-protection=full"],
    );
    let unmarked = build(
        "auto",
        "unmarked",
        &["-nostdlib", "-static", "-fcf-protection=none"],
    );
    // The program exits 1 exactly when shadow stacks were on at its first instruction.
    let o = cetbox(&["run", "--shstk=auto", marked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = cetbox(&["run", "--shstk=auto", unmarked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("lacks the SHSTK property") && e.contains("auto-unmarked"),
        "{e}"
    );
    let o = cetbox(&["run", "--shstk=on", unmarked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let o = cetbox(&["run", "--shstk=off", marked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn violation_kills_like_linux_by_default() {
    let p = audit_prog().to_str().unwrap();
    let native = common::output_within(&mut Command::new(p), RUN_TIMEOUT);
    assert_eq!(
        (stdout(&native).as_str(), native.status.code()),
        ("sum=135\n", Some(3))
    );
    // Shadow stacks off: the same as native.
    let o = cetbox(&["run", p]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("sum=135\n", Some(3))
    );
    // On: the first RET after plain_longjmp raises #CP and the process dies of SIGSEGV.
    let o = cetbox(&["run", "--shstk=on", p]);
    assert_eq!(o.status.signal(), Some(11));
    assert_eq!(stdout(&o), "");
    let e = stderr(&o);
    assert!(
        e.contains(
            "shadow-stack violation: return address does not match the shadow stack (#CP near-ret)"
        ),
        "{e}"
    );
    assert!(e.contains("at ") && e.contains("site_a"), "{e}");
    assert!(
        e.contains("return address on the stack:")
            && e.contains("return address on the shadow stack:"),
        "{e}"
    );
    assert!(
        e.contains("deep"),
        "the shadow stack's stale entry is in deep(): {e}"
    );
    assert!(e.contains("call stack from the shadow stack"), "{e}");
    assert!(e.contains("audit.c:"), "DWARF file:line expected: {e}");
    assert!(
        e.contains("shadow stacks enabled by --shstk=on, not locked"),
        "{e}"
    );
    assert!(
        e.contains("no SIGSEGV handler: the process is killed by SIGSEGV (SEGV_CPERR)"),
        "{e}"
    );
    assert!(
        !e.contains("summary"),
        "a single fatal violation needs no summary: {e}"
    );
}

#[test]
fn audit_mode_counts_sites_and_keeps_the_exit_status() {
    let p = audit_prog().to_str().unwrap();
    let o = cetbox(&["run", "--shstk=on", "--on-violation=continue", p]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("sum=135\n", Some(3)),
        "{}",
        stderr(&o)
    );
    let e = stderr(&o);
    // Each site is reported once, then counted.
    assert_eq!(
        e.matches("shadow-stack violation: return address").count(),
        2,
        "{e}"
    );
    assert!(e.contains("audit mode: shadow stack resynchronized"), "{e}");
    assert!(
        e.contains("shadow-stack violation summary: 6 violation(s) at 2 site(s)"),
        "{e}"
    );
    let summary: Vec<&str> = e.lines().filter(|l| l.contains("ret-mismatch")).collect();
    assert!(
        summary
            .iter()
            .any(|l| l.contains("5x") && l.contains("site_a")),
        "{summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.contains("1x") && l.contains("site_b")),
        "{summary:?}"
    );
}

#[test]
fn json_report_matches_its_schema() {
    let p = audit_prog().to_str().unwrap();
    let file = out_dir().join("report.jsonl");
    let _ = std::fs::remove_file(&file);
    let o = cetbox(&[
        "run",
        "--shstk=on",
        "--on-violation=continue",
        "--report=json",
        &format!("--report-file={}", file.display()),
        p,
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o), "", "reports go to the file");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/report-schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two violations and a summary: {text}");
    for v in &lines {
        let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{v}\n{errors:?}");
    }
    assert_eq!(lines[0]["kind"], "ret-mismatch");
    assert_eq!(lines[0]["outcome"], "resynchronized");
    assert_eq!(lines[0]["instruction"]["symbol"], "site_a");
    assert!(lines[0]["instruction"]["file"]
        .as_str()
        .unwrap()
        .ends_with("audit.c"));
    // plain_longjmp (audit.c) was called from deep() and never returned: the shadow stack's
    // top entry is that call's return address in deep.
    assert_eq!(
        lines[0]["shadow_return_address"]["symbol"], "deep",
        "{}",
        lines[0]
    );
    assert_eq!(lines[0]["return_address"]["symbol"], "main");
    assert_eq!(lines[2]["type"], "summary");
    assert_eq!(lines[2]["violations"], 6);
    // The schema rejects what it should: a wrong kind.
    let mut bad = lines[0].clone();
    bad["kind"] = "something-else".into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn demo_shows_the_attack_and_the_stop() {
    let o = cetbox(&["demo"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = stdout(&o);
    let (off, on) = s.split_once("2. Shadow stacks on").expect("two parts");
    assert!(
        off.contains("ATTACK SUCCEEDED") && off.contains("exit status 66"),
        "{s}"
    );
    assert!(!on.contains("ATTACK SUCCEEDED"), "{s}");
    assert!(
        on.contains("shadow-stack violation") && on.contains("greet") && on.contains("grant_admin"),
        "{s}"
    );
    assert!(on.contains("killed by SIGSEGV"), "{s}");
    assert!(s.lines().count() < 45, "the demo stays short: {s}");
}

#[test]
fn trace_syscalls_prints_strace_like_lines() {
    let unmarked = build(
        "auto",
        "unmarked",
        &["-nostdlib", "-static", "-fcf-protection=none"],
    );
    let o = cetbox(&["run", "--trace=syscalls", unmarked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(e.lines().any(|l| l.contains("exit(0)")), "{e}");
}

#[test]
fn instruction_outside_the_model_is_sigill_with_one_diagnostic() {
    let p = build("popcnt", "static", &["-O2", "-static", "-mpopcnt"]);
    // POPCNT is outside the baseline model (it is x86-64-v2; see tests/cpu_levels.rs).
    let o = cetbox(&["run", "--cpu=x86-64", p.to_str().unwrap()]);
    assert_eq!(o.status.signal(), Some(4), "killed by SIGILL");
    assert_eq!(stdout(&o), "before\n");
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("cetbox: unsupported instruction at 0x") && e.contains("popcnt"),
        "{e}"
    );
}

#[test]
fn no_cet_profile_answers_eopnotsupp() {
    let p = build("nocet", "static", &["-O1", "-static"]);
    let o = cetbox(&["run", "--no-cet", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "cet_ss=0 enable=-95 map=-95 lock=0 status=0 features=0\nx86_Thread_features:\t\nx86_Thread_features_locked:\tshstk \n"
    );
    // The default profile: CET_SS set and the ABI works.
    let o = cetbox(&["run", p.to_str().unwrap()]);
    assert!(
        stdout(&o).starts_with("cet_ss=1 enable=0 map="),
        "{}",
        stdout(&o)
    );
}

#[test]
fn program_names_are_looked_up_in_path() {
    let o = cetbox(&["run", "--", "sh", "-c", "echo $((6 * 7)); exit 3"]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("42\n", Some(3)),
        "{}",
        stderr(&o)
    );
    let o = cetbox(&["run", "--", "no-such-program-anywhere"]);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(stderr(&o).lines().count(), 1);
}
