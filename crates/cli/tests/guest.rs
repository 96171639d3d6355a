//! Differential test: every C/C++ program under `tests/guest/` is compiled with the system
//! compiler, run natively and under `cetbox run`, and the two runs must agree byte for byte on
//! stdout, stderr and the exit status or terminating signal.
//!
//! Environment:
//! - `CETBOX_GUEST_FILTER=substr`: only programs whose `area/name` contains `substr`.
//! - `CETBOX_GUEST_NATIVE_ONLY=1`: run each program natively twice instead and check that it is
//!   deterministic (the precondition for comparing against cetbox at all); the test then fails
//!   on purpose after its report, since cetbox was not run.
//! - `CETBOX_GUEST_CETBOX_ARGS="--shstk=on ..."`: extra options for `cetbox run`.
//! - `CETBOX_GUEST_TIMEOUT=secs`: per-run timeout under cetbox (default 120).
//! - `CETBOX_TEST_THREADS=n`: worker threads (default: up to 2).

mod common;

use common::{
    compare, parallel_map, run, violations_in, Outcome, Spec, Status, Stdin, TempDir, Violation,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One guest program and how to build and run it.
#[derive(Debug, Clone)]
struct Guest {
    /// `area/name`, the id used in reports and by the filter.
    id: String,
    source: PathBuf,
    cxx: bool,
    opt: String,
    static_pie: bool,
    cflags: Vec<String>,
    args: Vec<String>,
    stdin: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// Reads the `//! key: value` directives documented in `tests/guest/README.md`.
fn parse_guest(root: &Path, source: &Path) -> Result<Guest, String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let rel = source.strip_prefix(root).unwrap_or(source);
    let id = rel.with_extension("").to_string_lossy().into_owned();
    let mut g = Guest {
        id,
        source: source.to_path_buf(),
        cxx: source.extension().is_some_and(|e| e == "cc"),
        opt: "-O2".into(),
        static_pie: false,
        cflags: Vec::new(),
        args: Vec::new(),
        stdin: None,
        env: Vec::new(),
    };
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("//!") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            return Err(format!("{}: bad directive {line:?}", g.id));
        };
        let value = value.trim();
        match key.trim() {
            "opt" => g.opt = value.to_string(),
            "link" => match value {
                "static" => g.static_pie = false,
                "static-pie" => g.static_pie = true,
                v => return Err(format!("{}: unknown link mode {v:?}", g.id)),
            },
            "cflags" => g.cflags.extend(value.split_whitespace().map(String::from)),
            "args" => g.args = split_args(value),
            "stdin" => g.stdin = Some(source.parent().unwrap_or(root).join(value)),
            "env" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("{}: env needs KEY=VALUE", g.id))?;
                g.env.push((k.to_string(), v.to_string()));
            }
            k => return Err(format!("{}: unknown directive {k:?}", g.id)),
        }
    }
    Ok(g)
}

/// Splits on whitespace; `""` is an empty argument and `"a b"` keeps its space.
fn split_args(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut have = false;
    for c in s.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                have = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

fn discover(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(areas) = std::fs::read_dir(root) else {
        return found;
    };
    for area in areas.flatten() {
        if !area.path().is_dir() {
            continue;
        }
        if let Ok(files) = std::fs::read_dir(area.path()) {
            for f in files.flatten() {
                let p = f.path();
                if p.extension().is_some_and(|e| e == "c" || e == "cc") {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    found
}

fn compiler_identity() -> String {
    let mut id = String::new();
    for cc in ["gcc", "g++"] {
        let o = common::output_within(Command::new(cc).arg("--version"), common::TOOL_TIMEOUT);
        assert!(
            o.status.success(),
            "cannot run {cc}; install gcc, g++ and libc6-dev"
        );
        id.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    id
}

/// The headers `source` (whose text is `text`) includes with `#include "..."`, found next to
/// it as the compiler finds them, and theirs in turn: each one's path and contents, for the
/// build cache key, so that changing a shared header (tests/guest/common/) rebuilds the
/// programs that include it. A header that cannot be read adds nothing (the compiler then
/// reports it).
fn local_headers(source: &Path, text: &[u8], seen: &mut Vec<PathBuf>, out: &mut Vec<u8>) {
    let dir = source.parent().unwrap_or(Path::new("."));
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("include") else {
            continue;
        };
        let Some(name) = rest
            .trim()
            .strip_prefix('"')
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let path = dir.join(name);
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let Ok(header) = std::fs::read(&path) else {
            continue;
        };
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&header);
        out.push(0);
        local_headers(&path, &header, seen, out);
    }
}

/// Compiles `g` (or reuses the cached binary with the same source, included headers, flags
/// and compiler).
fn build(g: &Guest, cache: &Path, compiler_id: &str, march: &[&str]) -> Result<PathBuf, String> {
    let src = std::fs::read(&g.source).map_err(|e| format!("read {}: {e}", g.source.display()))?;
    let compiler = if g.cxx { "g++" } else { "gcc" };
    let mut flags: Vec<String> = vec![g.opt.clone()];
    if g.cxx {
        flags.push("-std=gnu++17".into());
    } else {
        flags.push("-std=gnu11".into());
    }
    flags.push("-w".into());
    flags.extend(g.cflags.iter().cloned());
    flags.extend(march.iter().map(|m| m.to_string()));
    flags.push(
        if g.static_pie {
            "-static-pie"
        } else {
            "-static"
        }
        .into(),
    );
    let mut link: Vec<String> = vec!["-lm".into()];
    if !g.cxx {
        link.push("-lpthread".into());
    }
    let mut headers = Vec::new();
    local_headers(&g.source, &src, &mut Vec::new(), &mut headers);
    let key = common::fnv1a(&[
        &src,
        &headers,
        flags.join(" ").as_bytes(),
        link.join(" ").as_bytes(),
        compiler.as_bytes(),
        compiler_id.as_bytes(),
    ]);
    let name = g.id.replace('/', "__");
    let out = cache.join(format!("{name}-{key:016x}"));
    if out.exists() {
        return Ok(out);
    }
    // Unique per build: the tests of this file run in parallel threads of one process and may
    // build the same program at once; each writes its own file and renames it into place
    // (atomic), so no test ever runs a half-written binary.
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = cache.join(format!(
        "{name}-{key:016x}.tmp{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let res = common::output_within(
        Command::new(compiler)
            .args(&flags)
            .arg("-o")
            .arg(&tmp)
            .arg(&g.source)
            .args(&link),
        common::TOOL_TIMEOUT,
    );
    if !res.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{compiler} {} failed:\n{}",
            flags.join(" "),
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("rename: {e}"))?;
    Ok(out)
}

struct Report {
    id: String,
    pass: bool,
    line: String,
    details: String,
    /// The built binary (None when the build failed).
    bin: Option<PathBuf>,
    /// In audit mode, the violations cetbox reported.
    violations: Vec<Violation>,
}

/// What the second run of each program is.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Natively again (the determinism check).
    NativeTwice,
    /// Under cetbox with the given extra options.
    Cetbox,
    /// Under cetbox's interpreter (`--engine=interp`), the reference engine; every other
    /// mode runs the default engine, the translator (crates/jit).
    Interpreter,
    /// Under cetbox with shadow stacks on in audit mode (`--shstk=on --on-violation=continue
    /// --report=json --report-file=...`): the program must still behave exactly as natively,
    /// and the violations reported are returned for the caller to check.
    ShstkAudit,
}

fn run_guest(
    g: &Guest,
    cache: &Path,
    compiler_id: &str,
    mode: Mode,
    cetbox_args: &[String],
    timeout: Duration,
    march: &[&str],
) -> Report {
    let native_only = mode == Mode::NativeTwice;
    let bin = match build(g, cache, compiler_id, march) {
        Ok(b) => b,
        Err(e) => {
            return Report {
                id: g.id.clone(),
                pass: false,
                line: format!("FAIL {} (build)", g.id),
                details: e,
                bin: None,
                violations: Vec::new(),
            }
        }
    };
    let report_dir = TempDir::new("guest-report");
    let report_file = report_dir.path.join("cet.jsonl");
    let mut cetbox_args = cetbox_args.to_vec();
    if mode == Mode::ShstkAudit {
        cetbox_args.extend(common::shstk_audit_args(&report_file));
    }
    if mode == Mode::Interpreter {
        cetbox_args.push("--engine=interp".to_string());
    }
    let spec_for = |cwd: &Path| {
        let mut s = Spec::new(&bin).args(g.args.iter().cloned());
        s.env.extend(g.env.iter().cloned());
        s.stdin = match &g.stdin {
            Some(p) => Stdin::File(p.clone()),
            None => Stdin::Null,
        };
        // Each run gets its own empty working directory.
        s.cwd = Some(cwd.to_path_buf());
        s.timeout = Duration::from_secs(60);
        s
    };
    let d1 = TempDir::new("guest");
    let native = run(&spec_for(&d1.path));
    let (other_name, other): (&str, Outcome) = if native_only {
        let d2 = TempDir::new("guest");
        ("native2", run(&spec_for(&d2.path)))
    } else {
        let d2 = TempDir::new("guest");
        let mut s = spec_for(&d2.path).under_cetbox(&cetbox_args);
        s.timeout = timeout;
        ("cetbox", run(&s))
    };
    let mut details = String::new();
    if matches!(native.status, Status::TimedOut | Status::SpawnFailed(_)) {
        details.push_str(&format!(
            "    native run did not complete: {}\n",
            native.status
        ));
    }
    if let Some(d) = compare("native", &native, other_name, &other) {
        details.push_str(&d);
    }
    let pass = details.is_empty();
    let ratio = other.elapsed.as_secs_f64() / native.elapsed.as_secs_f64().max(1e-3);
    let line = format!(
        "{} {:<28} {:<22} native {:>6.2}s  {other_name} {:>6.2}s  ({:.0}x)",
        if pass { "ok  " } else { "FAIL" },
        g.id,
        format!("{}", native.status),
        native.elapsed.as_secs_f64(),
        other.elapsed.as_secs_f64(),
        ratio
    );
    Report {
        id: g.id.clone(),
        pass,
        line,
        details,
        bin: Some(bin),
        violations: violations_in(&report_file),
    }
}

/// The same programs under the interpreter (the default engine is the translator), against
/// the same native runs: both engines are held to every program.
#[test]
fn guest_programs_under_interpreter() {
    fail_on_differences(&run_suite(Mode::Interpreter, &[]), &[]);
}

/// The suite built for x86-64-v2 (SSE4.2, POPCNT...), run under the default CPU.
#[test]
fn guest_programs_x86_64_v2() {
    fail_on_differences(&run_suite(Mode::Cetbox, &["-march=x86-64-v2"]), &[]);
}

/// The suite built for x86-64-v3 (AVX2, FMA, BMI2...), run under the default CPU.
#[test]
fn guest_programs_x86_64_v3() {
    fail_on_differences(&run_suite(Mode::Cetbox, &["-march=x86-64-v3"]), &[]);
}

#[test]
fn guest_programs() {
    let native_only =
        std::env::var("CETBOX_GUEST_NATIVE_ONLY").is_ok_and(|v| !v.is_empty() && v != "0");
    let reports = run_suite(
        if native_only {
            Mode::NativeTwice
        } else {
            Mode::Cetbox
        },
        &[],
    );
    fail_on_differences(&reports, &[]);
    // The determinism check never ran cetbox: it must not look like a passing test of it.
    assert!(
        !native_only,
        "CETBOX_GUEST_NATIVE_ONLY: every program is deterministic natively ({} programs), but \
         cetbox was NOT run; this mode never reports a pass",
        reports.len()
    );
}

/// Where a program's expected shadow-stack violations come from.
enum Cause {
    /// A glibc routine linked into the (static) program: its violations are expected exactly
    /// when that routine has no shadow-stack code (a glibc configured without --enable-cet,
    /// Debian 12's for one); with it (Ubuntu, Fedora) the program must report nothing.
    Linked(&'static str),
    /// A program it starts: violations in the code of the system shell (/bin/sh, whatever it
    /// is) or of the C library loaded with it are allowed exactly when that object lacks the
    /// SHSTK marking (dash, for one, leaves its command loop with longjmp).
    Started,
}

/// The guest programs expected to report violations under `--shstk=on`, why, and whether
/// the program may die of it even in audit mode (resynchronizing pops the shadow stack; a
/// program that keeps switching stacks runs it out and is then killed, as Linux would kill
/// it at the first violation).
const SHSTK_EXPECTED: &[(&str, Cause, bool)] = &[
    // longjmp/siglongjmp out of nested calls or a signal handler, then a RET in the function
    // that called setjmp: a __longjmp without CET code leaves the skipped frames' entries.
    ("misc/setjmp", Cause::Linked("__longjmp"), false),
    ("signals/altstack_nested", Cause::Linked("__longjmp"), false),
    (
        "signals/truncated_mapping",
        Cause::Linked("__longjmp"),
        false,
    ),
    ("threads/unmap_race", Cause::Linked("__longjmp"), false),
    // siglongjmp out of the SIGBUS handler of each probe.
    ("files/mmap_resize", Cause::Linked("__longjmp"), false),
    ("files/mmap_resize_other", Cause::Linked("__longjmp"), false),
    // siglongjmp out of the SIGUSR1 and SIGSEGV handlers that stop its spinning threads.
    ("threads/spin_interrupt", Cause::Linked("__longjmp"), false),
    // siglongjmp out of the SIGSEGV handler of a probe, then a RET.
    ("hostile/cpu_faults", Cause::Linked("__longjmp"), false),
    ("hostile/huge_reserve", Cause::Linked("__longjmp"), false),
    // siglongjmp out of the SIGBUS/SIGSEGV handler of each alignment probe.
    ("hostile/alignment_check", Cause::Linked("__longjmp"), false),
    // siglongjmp out of the SIGSEGV handler of the thread that runs non-executable code.
    ("threads/engine_reuse", Cause::Linked("__longjmp"), false),
    (
        "hostile/threads_while_computing",
        Cause::Linked("__longjmp"),
        false,
    ),
    // swapcontext/setcontext without CET code switch stacks but not shadow stacks.
    ("misc/ucontext", Cause::Linked("__swapcontext"), true),
    // vfork: the child's RET out of vfork pops the shared shadow stack, so the parent's RET
    // mismatches; glibc's CET __vfork pops its return address and jumps instead.
    ("misc/exec", Cause::Linked("__vfork"), false),
    ("misc/ipc", Cause::Linked("__vfork"), false),
    ("ptrace/fork_events", Cause::Linked("__vfork"), false),
    ("threads/vfork_killable", Cause::Linked("__vfork"), false),
    (
        "hostile/vfork_huge_reserve",
        Cause::Linked("__vfork"),
        false,
    ),
    // Both also run /bin/sh -c ...
    ("misc/exec", Cause::Started, false),
    ("misc/ipc", Cause::Started, false),
];

/// Every guest program again with shadow stacks on (audit mode, so a violation is reported
/// and resynchronized rather than fatal): the output must still match the native run byte for
/// byte, and violations must be exactly those SHSTK_EXPECTED derives from the objects the
/// programs link and start — a listed program whose routine lacks CET code must report at
/// least one in its own code, and no violation may happen anywhere else.
#[test]
fn guest_programs_with_shadow_stacks_on() {
    let reports = run_suite(Mode::ShstkAudit, &[]);
    let filter = std::env::var("CETBOX_GUEST_FILTER").unwrap_or_default();
    let shell = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    let mut problems = Vec::new();
    let mut excused = Vec::new();
    let mut expecting = Vec::new();
    for r in &reports {
        let Some(bin) = &r.bin else { continue };
        let causes: Vec<&(&str, Cause, bool)> =
            SHSTK_EXPECTED.iter().filter(|e| e.0 == r.id).collect();
        // The program's own routines that lack CET code and are expected to report.
        let linked: Vec<&str> = causes
            .iter()
            .filter_map(|e| match e.1 {
                Cause::Linked(f) if !common::function_has_cet(bin, f) => Some(f),
                _ => None,
            })
            .collect();
        let started = causes.iter().any(|e| matches!(e.1, Cause::Started));
        let own: Vec<&Violation> = r.violations.iter().filter(|v| v.object == *bin).collect();
        if !linked.is_empty() {
            expecting.push(r.id.as_str());
            if own.is_empty() {
                problems.push(format!(
                    "{}: {linked:?} lack CET code, yet no violation was reported",
                    r.id
                ));
            }
            if causes.iter().any(|e| e.2) {
                excused.push(r.id.as_str());
            }
        } else if !own.is_empty() {
            problems.push(format!("{}: unexpected violations {own:?}", r.id));
        }
        for v in r.violations.iter().filter(|v| v.object != *bin) {
            let from_started =
                v.object == shell || v.object.file_name().is_some_and(|n| n == "libc.so.6");
            if !(started && from_started && !common::object_has_shstk(&v.object)) {
                problems.push(format!("{}: unexpected violation {v:?}", r.id));
            }
        }
    }
    // The list names real programs (a renamed program must not drop out silently).
    for (id, ..) in SHSTK_EXPECTED {
        if id.contains(filter.as_str()) && !reports.iter().any(|r| r.id == *id) {
            problems.push(format!("SHSTK_EXPECTED names {id}, which does not exist"));
        }
    }
    println!(
        "{} programs with --shstk=on; expected to report (this machine's glibc): {}; {} problems",
        reports.len(),
        expecting.join(" "),
        problems.len()
    );
    for p in &problems {
        println!("PROBLEM {p}");
    }
    fail_on_differences(&reports, &excused);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Builds every (filtered) guest program, with `march` added to its flags, and runs it natively
/// and as `mode` says; the caller decides what a difference means.
fn run_suite(mode: Mode, march: &[&str]) -> Vec<Report> {
    let root = common::repo_root().join("tests/guest");
    let filter = std::env::var("CETBOX_GUEST_FILTER").unwrap_or_default();
    let native_only = mode == Mode::NativeTwice;
    let cetbox_args: Vec<String> = std::env::var("CETBOX_GUEST_CETBOX_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let timeout = Duration::from_secs(
        std::env::var("CETBOX_GUEST_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );

    let mut guests = Vec::new();
    let mut errors = Vec::new();
    for src in discover(&root) {
        match parse_guest(&root, &src) {
            Ok(g) if g.id.contains(&filter) => guests.push(g),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "bad guest sources:\n{}",
        errors.join("\n")
    );
    assert!(
        !guests.is_empty(),
        "no guest programs found under {} (filter {filter:?})",
        root.display()
    );

    let cache = common::target_dir().join("guest-cache");
    std::fs::create_dir_all(&cache).expect("create guest cache");
    let compiler_id = compiler_identity();
    println!(
        "running {} guest programs{} {} on {} threads",
        guests.len(),
        if march.is_empty() {
            String::new()
        } else {
            format!(" built with {}", march.join(" "))
        },
        if native_only {
            "natively twice (determinism check)"
        } else {
            "natively and under cetbox"
        },
        common::worker_threads()
    );

    let reports = parallel_map(guests, common::worker_threads(), |g| {
        run_guest(g, &cache, &compiler_id, mode, &cetbox_args, timeout, march)
    });

    for r in &reports {
        println!("{}", r.line);
        if !r.pass {
            println!("{}", r.details.trim_end());
        }
    }
    reports
}

/// Panics if a program other than those in `excused` differed from its native run.
fn fail_on_differences(reports: &[Report], excused: &[&str]) {
    let failed: Vec<&Report> = reports
        .iter()
        .filter(|r| !r.pass && !excused.contains(&r.id.as_str()))
        .collect();
    let summary = format!(
        "{} passed, {} failed{}",
        reports.iter().filter(|r| r.pass).count(),
        failed.len(),
        if excused.is_empty() {
            String::new()
        } else {
            format!(" ({} excused: {})", excused.len(), excused.join(" "))
        }
    );
    println!("{summary}");
    if !failed.is_empty() {
        let ids: Vec<&str> = failed.iter().map(|r| r.id.as_str()).collect();
        let mut msg = format!("{summary}: {}\n", ids.join(" "));
        for r in failed {
            msg.push_str(&format!("{}\n{}\n", r.line, r.details.trim_end()));
        }
        panic!("{msg}");
    }
}

/// A change of a header a program includes, directly or through another header, changes what
/// its build cache key covers; a header it does not include does not.
#[test]
fn cache_key_covers_included_headers() {
    let dir = common::TempDir::new("guest-headers");
    let d = &dir.path;
    std::fs::create_dir_all(d.join("area")).unwrap();
    std::fs::create_dir_all(d.join("common")).unwrap();
    let src = b"#include <stdio.h>\n  #  include \"../common/a.h\"\nint main(void) { return 0; }\n";
    std::fs::write(d.join("area/prog.c"), src).unwrap();
    std::fs::write(d.join("common/a.h"), "#include \"b.h\"\nint a;\n").unwrap();
    std::fs::write(d.join("common/b.h"), "int b;\n").unwrap();
    std::fs::write(d.join("common/unused.h"), "int u;\n").unwrap();
    let covered = || {
        let mut out = Vec::new();
        local_headers(&d.join("area/prog.c"), src, &mut Vec::new(), &mut out);
        out
    };
    let before = covered();
    assert!(!before.is_empty());
    std::fs::write(d.join("common/unused.h"), "int u2;\n").unwrap();
    assert_eq!(covered(), before);
    std::fs::write(d.join("common/b.h"), "int b2;\n").unwrap();
    let after_b = covered();
    assert_ne!(after_b, before);
    std::fs::write(d.join("common/a.h"), "#include \"b.h\"\nint a2;\n").unwrap();
    assert_ne!(covered(), after_b);
}

#[test]
fn split_args_handles_quotes() {
    assert_eq!(
        split_args(r#"one "" "two words" three"#),
        vec!["one", "", "two words", "three"]
    );
    assert!(split_args("   ").is_empty());
}
