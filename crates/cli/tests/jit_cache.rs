//! The translator's code cache is bounded: with a 64 KiB cache (CETBOX_JIT_CACHE_SIZE) a
//! real program fills it again and again, it is flushed whole each time, and the program
//! still prints exactly what it prints natively.

mod common;

use common::{check, run, Spec, TempDir};
use std::time::Duration;

/// The largest `flushes:` figure in CETBOX_JIT_STATS lines on stderr (the counters are
/// cumulative per thread and printed whenever the engine returns).
fn flushes(stderr: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .filter_map(|l| l.split("flushes: ").nth(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn small_code_cache_flushes_and_runs_exactly() {
    let dir = TempDir::new("jit-cache");
    for (name, flags) in [("checksums", "-O0"), ("expr_eval", "-O2")] {
        let src = common::repo_root().join(format!("tests/guest/misc/{name}.c"));
        let prog = dir.path.join(name);
        common::gcc(&src, &prog, &[flags], &["-lm"]);
        let mut native = Spec::new(&prog);
        native.timeout = Duration::from_secs(60);
        let native = run(&native);
        let mut emulated = Spec::new(&prog).under_cetbox(&[]);
        emulated
            .env
            .push(("CETBOX_JIT_CACHE_SIZE".into(), "65536".into()));
        emulated.env.push(("CETBOX_JIT_STATS".into(), "1".into()));
        emulated.timeout = Duration::from_secs(300);
        let mut emulated = run(&emulated);
        let n = flushes(&emulated.stderr);
        assert!(n > 0, "{name}: the 64 KiB cache was never flushed");
        // The statistics are cetbox's, not the guest's: compare the guest's own output.
        emulated.stderr.clear();
        let mut native = native;
        native.stderr.clear();
        let (label, ok, diff) = check(name, &native, &emulated);
        assert!(ok, "{label}: {diff}");
    }
}
