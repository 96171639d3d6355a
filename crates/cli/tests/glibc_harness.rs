//! glibc's own CET and shadow-stack tests (the 38 `tst-cet-*`, `tst-shstk-*` and
//! `tst-setjmp-cet` tests of glibc 2.41's x86 Makefiles), each run under cetbox through glibc's
//! test harness in the build tree tests/sysroot/glibc-cet.sh keeps:
//! `make test t=SUBDIR/NAME test-wrapper="cetbox run --"`, which gives every test the
//! environment its Makefile sets (NAME-ENV). The result glibc's harness records
//! (SUBDIR/NAME.test-result) must be the one the test gives on CET hardware under Linux 6.6+,
//! written below with the reason for every result that is not PASS (README.md, "glibc's own
//! tests under cetbox"); nothing here is taken from cetbox's output.
//!
//! Without the build tree the tests are listed as ignored, NOT RUN (glibc_env/mod.rs). They run
//! one at a time under a lock on the build tree, since glibc's make is not safe to run twice at
//! once in one tree (tests/sysroot/glibc-tests.sh takes the same lock).
//!
//! The broader slice (whole setjmp, signal, stdlib, misc, nptl directories, natively and under
//! cetbox) is too slow for the test suite; `tests/sysroot/glibc-tests.sh` runs it (README.md).

mod common;
mod glibc_env;

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What the test gives on CET hardware with Linux 6.6+ (shadow stacks, no user IBT).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Want {
    Pass,
    /// glibc's harness says UNSUPPORTED, for the reason given.
    Unsupported(&'static str),
    /// The test fails on CET hardware too, for the reason given.
    Fail(&'static str),
}

const NEEDS_IBT: Want = Want::Unsupported(
    "needs IBT (CPU_FEATURE_ACTIVE (IBT)); Linux 6.6 gives user space shadow stacks only",
);

/// The CET and shadow-stack tests of glibc 2.41 (tests/sysroot/glibc-cet-tests.awk lists them
/// from the Makefiles; `the_list_is_glibcs` checks that this table has the same names).
const TESTS: &[(&str, Want)] = &[
    ("setjmp/tst-setjmp-cet", Want::Pass),
    ("elf/tst-cet-legacy-1", Want::Pass),
    ("elf/tst-cet-legacy-1a", Want::Pass),
    ("elf/tst-cet-legacy-2", Want::Pass),
    ("elf/tst-cet-legacy-2a", Want::Pass),
    ("elf/tst-cet-legacy-3", Want::Pass),
    ("elf/tst-cet-legacy-4", Want::Pass),
    ("elf/tst-cet-legacy-4a", Want::Pass),
    ("elf/tst-cet-legacy-4b", Want::Pass),
    ("elf/tst-cet-legacy-4c", Want::Pass),
    ("elf/tst-cet-legacy-5a", Want::Pass),
    ("elf/tst-cet-legacy-5b", Want::Pass),
    ("elf/tst-cet-legacy-6a", Want::Pass),
    ("elf/tst-cet-legacy-6b", Want::Pass),
    ("elf/tst-cet-legacy-7", Want::Pass),
    ("elf/tst-cet-legacy-8", NEEDS_IBT),
    ("elf/tst-cet-legacy-9", Want::Pass),
    ("elf/tst-cet-legacy-9-static", Want::Pass),
    ("elf/tst-cet-legacy-10", Want::Pass),
    ("elf/tst-cet-legacy-10-static", Want::Pass),
    ("elf/tst-cet-legacy-10a", Want::Pass),
    ("elf/tst-cet-legacy-10a-static", Want::Pass),
    ("elf/tst-cet-property-1", Want::Pass),
    ("elf/tst-cet-property-2", NEEDS_IBT),
    ("elf/tst-shstk-legacy-1a", Want::Pass),
    ("elf/tst-shstk-legacy-1a-static", Want::Pass),
    ("elf/tst-shstk-legacy-1b", Want::Pass),
    ("elf/tst-shstk-legacy-1b-static", Want::Pass),
    ("elf/tst-shstk-legacy-1c", Want::Pass),
    ("elf/tst-shstk-legacy-1c-static", Want::Pass),
    ("elf/tst-shstk-legacy-1d", Want::Pass),
    ("elf/tst-shstk-legacy-1d-static", Want::Pass),
    ("elf/tst-shstk-legacy-1e", Want::Pass),
    (
        "elf/tst-shstk-legacy-1e-static",
        Want::Unsupported(
            "its .sh runs the program directly, not through the test wrapper, so it runs \
             natively, on this CPU without CET",
        ),
    ),
    ("elf/tst-shstk-legacy-1f", Want::Pass),
    (
        "elf/tst-shstk-legacy-1g",
        Want::Fail(
            "the link dropped its DT_NEEDED on tst-shstk-legacy-mod-1.so (--as-needed; \
             checked by the trial), so the legacy module is never loaded and the SIGSEGV the \
             test expects never comes",
        ),
    ),
    (
        "posix/tst-cet-vfork-1",
        Want::Unsupported(
            "its Makefile sets no tst-cet-vfork-1-ENV, and glibc 2.41 leaves SHSTK inactive \
             without glibc.cpu.hwcaps=SHSTK (sysdeps/x86/cpu-features.c); \
             tst_cet_vfork_1_with_the_tunable runs it with it",
        ),
    ),
    ("stdlib/tst-cet-setcontext-1", Want::Pass),
];

/// Per-test limit (glibc's own timeout is 20 s times TIMEOUTFACTOR=30; building a test that
/// make finds out of date happens inside this too).
const TIMEOUT: Duration = Duration::from_secs(900);

/// Holds the build-tree lock (flock on BUILD/.cetbox-test-lock) while alive.
struct TreeLock {
    _file: File,
}

impl TreeLock {
    fn take(build: &Path) -> TreeLock {
        let f = File::create(build.join(".cetbox-test-lock")).expect("create the lock file");
        // SAFETY: flock on a descriptor we own; it blocks until the lock is ours.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
        TreeLock { _file: f }
    }
}

/// Runs `make test t=TEST` under cetbox with extra make arguments; returns glibc's result line.
fn run_glibc_test(build: &Path, test: &str, extra: &[String]) -> String {
    let _lock = TreeLock::take(build);
    let result = build.join(format!("{test}.test-result"));
    let _ = std::fs::remove_file(&result);
    let _ = std::fs::remove_file(build.join(format!("{test}.out")));
    let cetbox = common::cetbox_bin();
    let mut cmd = Command::new("make");
    cmd.current_dir(build)
        .arg("-s")
        .arg("test")
        .arg(format!("t={test}"))
        .arg(format!("test-wrapper={} run --", cetbox.display()))
        .args(extra)
        .env("TIMEOUTFACTOR", "30");
    let out = common::output_within(&mut cmd, TIMEOUT);
    match std::fs::read_to_string(&result) {
        Ok(s) => s.lines().next().unwrap_or("").to_string(),
        Err(_) => panic!(
            "no {} (make {}):\n{}\n{}",
            result.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn want_line(test: &str, want: Want) -> String {
    let word = match want {
        Want::Pass => "PASS",
        Want::Unsupported(_) => "UNSUPPORTED",
        Want::Fail(_) => "FAIL",
    };
    format!("{word}: {test}")
}

fn check(build: &Path, test: &'static str, want: Want) {
    let got = run_glibc_test(build, test, &[]);
    if test == "elf/tst-shstk-legacy-1g" {
        // Looked at after the run, which builds the test in a fresh build tree.
        // The reason the test fails on CET hardware too: no DT_NEEDED on the legacy module.
        let out = Command::new("objdump")
            .arg("-p")
            .arg(build.join(test))
            .output()
            .expect("objdump runs");
        let p = String::from_utf8_lossy(&out.stdout);
        assert!(p.contains("NEEDED"), "objdump -p {test}: {p}");
        assert!(
            !p.contains("tst-shstk-legacy-mod-1.so"),
            "{test} now needs the legacy module, so it should fault and PASS: {p}"
        );
    }
    let out = std::fs::read_to_string(build.join(format!("{test}.out"))).unwrap_or_default();
    assert_eq!(got, want_line(test, want), "{want:?}\n{test}.out:\n{out}");
}

/// tst-cet-vfork-1 with the SHSTK tunable its Makefile does not set: vfork with shadow stacks
/// on must work as on CET hardware (the child's and the parent's shadow stacks stay in step).
fn vfork_with_the_tunable(build: &Path) {
    let test = "posix/tst-cet-vfork-1";
    let got = run_glibc_test(
        build,
        test,
        &["tst-cet-vfork-1-ENV=GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK".into()],
    );
    let out = std::fs::read_to_string(build.join(format!("{test}.out"))).unwrap_or_default();
    assert_eq!(got, want_line(test, Want::Pass), "{test}.out:\n{out}");
}

/// The table above names exactly the tests glibc's Makefiles define.
fn the_list_is_glibcs(build: &Path) {
    let tree = build
        .parent()
        .unwrap()
        .join("src")
        .read_dir()
        .expect("the source directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("glibc-"))
        })
        .expect("glibc's source tree next to the build tree");
    let awk = common::repo_root().join("tests/sysroot/glibc-cet-tests.awk");
    let mut listed = Vec::new();
    for mk in [
        "sysdeps/x86/Makefile",
        "sysdeps/x86_64/Makefile",
        "sysdeps/unix/sysv/linux/x86_64/Makefile",
    ] {
        let out = Command::new("awk")
            .arg("-f")
            .arg(&awk)
            .arg(tree.join(mk))
            .output()
            .expect("awk runs");
        assert!(out.status.success());
        listed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(String::from),
        );
    }
    listed.sort();
    let mut ours: Vec<String> = TESTS.iter().map(|(t, _)| t.to_string()).collect();
    ours.sort();
    assert_eq!(ours, listed);
}

fn main() {
    let mut args = libtest_mimic::Arguments::from_args();
    // One make at a time in the build tree (the lock would serialise them anyway).
    args.test_threads = Some(1);
    let mut trials = vec![glibc_env::trial(
        "the_list_is_glibcs",
        glibc_env::build_tree,
        the_list_is_glibcs,
    )];
    for &(test, want) in TESTS {
        let name = test.replace(['/', '-'], "_");
        trials.push(glibc_env::trial(&name, glibc_env::build_tree, move |b| {
            check(b, test, want)
        }));
    }
    trials.push(glibc_env::trial(
        "posix_tst_cet_vfork_1_with_the_tunable",
        glibc_env::build_tree,
        vfork_with_the_tunable,
    ));
    libtest_mimic::run(&args, trials).exit();
}
