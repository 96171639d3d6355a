//! Differential test: every C/C++ program under `tests/guest/` is compiled with the system
//! compiler, run natively and under `cetbox run`, and the two runs must agree byte for byte on
//! stdout, stderr and the exit status or terminating signal.
//!
//! Environment:
//! - `CETBOX_GUEST_FILTER=substr`: only programs whose `area/name` contains `substr`.
//! - `CETBOX_GUEST_NATIVE_ONLY=1`: run each program natively twice instead and check that it is
//!   deterministic (the precondition for comparing against cetbox at all).
//! - `CETBOX_GUEST_CETBOX_ARGS="--shstk=on ..."`: extra options for `cetbox run`.
//! - `CETBOX_GUEST_TIMEOUT=secs`: per-run timeout under cetbox (default 120).
//! - `CETBOX_TEST_THREADS=n`: worker threads (default: up to 2).

mod common;

use common::{compare, parallel_map, run, Outcome, Spec, Status, Stdin, TempDir};
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
        match Command::new(cc).arg("--version").output() {
            Ok(o) => id.push_str(&String::from_utf8_lossy(&o.stdout)),
            Err(e) => panic!("cannot run {cc}: {e}; install gcc, g++ and libc6-dev"),
        }
    }
    id
}

/// Compiles `g` (or reuses the cached binary with the same source, flags and compiler).
fn build(g: &Guest, cache: &Path, compiler_id: &str) -> Result<PathBuf, String> {
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
    let key = common::fnv1a(&[
        &src,
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
    let tmp = cache.join(format!("{name}-{key:016x}.tmp{}", std::process::id()));
    let res = Command::new(compiler)
        .args(&flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&g.source)
        .args(&link)
        .output()
        .map_err(|e| format!("cannot run {compiler}: {e}"))?;
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
}

fn run_guest(
    g: &Guest,
    cache: &Path,
    compiler_id: &str,
    native_only: bool,
    cetbox_args: &[String],
    timeout: Duration,
) -> Report {
    let bin = match build(g, cache, compiler_id) {
        Ok(b) => b,
        Err(e) => {
            return Report {
                id: g.id.clone(),
                pass: false,
                line: format!("FAIL {} (build)", g.id),
                details: e,
            }
        }
    };
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
        let mut s = spec_for(&d2.path).under_cetbox(cetbox_args);
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
    }
}

#[test]
fn guest_programs() {
    run_all_guests(&[]);
}

/// The same programs under the translating engine (crates/jit), against the same native runs.
#[test]
fn guest_programs_under_translator() {
    if std::env::var("CETBOX_GUEST_NATIVE_ONLY").is_ok_and(|v| !v.is_empty() && v != "0") {
        return; // the determinism check does not involve an engine
    }
    run_all_guests(&["--engine=jit".to_string()]);
}

/// Runs every guest program (or the filtered ones) natively and under `cetbox run` with
/// `engine_args` followed by CETBOX_GUEST_CETBOX_ARGS.
fn run_all_guests(engine_args: &[String]) {
    let root = common::repo_root().join("tests/guest");
    let filter = std::env::var("CETBOX_GUEST_FILTER").unwrap_or_default();
    let native_only =
        std::env::var("CETBOX_GUEST_NATIVE_ONLY").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut cetbox_args: Vec<String> = engine_args.to_vec();
    cetbox_args.extend(
        std::env::var("CETBOX_GUEST_CETBOX_ARGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from),
    );
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
        "running {} guest programs {} on {} threads",
        guests.len(),
        if native_only {
            "natively twice (determinism check)"
        } else {
            "natively and under cetbox"
        },
        common::worker_threads()
    );

    let reports = parallel_map(guests, common::worker_threads(), |g| {
        run_guest(g, &cache, &compiler_id, native_only, &cetbox_args, timeout)
    });

    let mut passed = 0;
    let mut failed = Vec::new();
    for r in &reports {
        println!("{}", r.line);
        if r.pass {
            passed += 1;
        } else {
            println!("{}", r.details.trim_end());
            failed.push(r.id.clone());
        }
    }
    let summary = format!("{passed} passed, {} failed", failed.len());
    println!("{summary}");
    if !failed.is_empty() {
        let mut msg = format!("{summary}: {}\n", failed.join(" "));
        for r in reports.iter().filter(|r| !r.pass) {
            msg.push_str(&format!("{}\n{}\n", r.line, r.details.trim_end()));
        }
        panic!("{msg}");
    }
}

#[test]
fn split_args_handles_quotes() {
    assert_eq!(
        split_args(r#"one "" "two words" three"#),
        vec!["one", "", "two words", "three"]
    );
    assert!(split_args("   ").is_empty());
}
