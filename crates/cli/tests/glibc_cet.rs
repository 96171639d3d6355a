//! A CET-built glibc (2.41, tests/sysroot/glibc-cet.sh) turns shadow stacks on by itself under
//! `cetbox run --sysroot=DIR`, and the patterns a CET glibc must keep in step (longjmp,
//! siglongjmp, swapcontext, vfork, posix_spawn, threads, qsort callbacks, deep recursion) run
//! with no violation; a program with an unmarked object gets glibc's legacy rules; overwritten
//! return addresses are still caught.
//!
//! These tests need the sysroot, which takes a slow glibc build (see README.md, "A CET-built
//! glibc"): `tests/sysroot/glibc-cet.sh` builds it once (cached) and prints its path. Without
//! it they are listed as *ignored* with a "NOT RUN" reason, never as passed (glibc_env/mod.rs);
//! `CETBOX_GLIBC_REQUIRED=1` turns that into a failure. The sysroot is `$CETBOX_GLIBC_SYSROOT`
//! if set, else the script's cache directory.
//!
//! Expected results come from glibc's rules (sysdeps/x86/cpu-tunables.c, sysdeps/x86_64/dl-cet.c,
//! sysdeps/unix/sysv/linux/x86_64/dl-cet.h: SHSTK is opt-in through
//! GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK; a fully marked program gets shadow stacks enabled and
//! locked with ARCH_SHSTK_LOCK(-1); glibc.cpu.x86_shstk=permissive does not lock them) and Linux's /proc format (arch_proc_pid_thread_features in
//! arch/x86/kernel/cpu/proc.c): nothing here is taken from cetbox's output.

mod common;
mod glibc_env;

use common::{repo_root, run, Spec, Status};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The sysroot; the trials run only when it is there (glibc_env::trial).
fn sysroot() -> PathBuf {
    glibc_env::sysroot().expect("the sysroot was there when the trial started")
}

fn gcc(root: &Path, args: &[String]) {
    let mut c = Command::new("gcc");
    c.arg(format!("--sysroot={}", root.display()))
        .arg(format!("-B{}/usr/lib/x86_64-linux-gnu/", root.display()))
        .args(["-fcf-protection=full", "-O1", "-pthread"])
        .args(args);
    let out = c.output().expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (marked program, program with one unmarked object), built once per test binary.
fn programs() -> &'static (PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let root = sysroot();
        let src = repo_root().join("tests/sysroot/cet");
        let out = common::target_dir().join("glibc-cet-tests");
        std::fs::create_dir_all(&out).unwrap();
        let s = |f: &str| src.join(f).to_string_lossy().into_owned();
        let o = |f: &str| out.join(f).to_string_lossy().into_owned();
        gcc(
            &root,
            &[
                "-Wl,-z,cet-report=error".into(),
                "-o".into(),
                o("patterns"),
                s("patterns.c"),
            ],
        );
        // The legacy object: compiled without -fcf-protection, so it has no SHSTK property.
        let lo = o("legacy.o");
        let st = Command::new("gcc")
            .args([
                "-fcf-protection=none",
                "-O1",
                "-c",
                "-o",
                &lo,
                &s("legacy.c"),
            ])
            .status()
            .expect("gcc runs");
        assert!(st.success());
        gcc(
            &root,
            &["-o".into(), o("patterns-legacy"), s("patterns.c"), lo],
        );
        (out.join("patterns"), out.join("patterns-legacy"))
    })
}

/// Runs `prog pattern` under `cetbox run --sysroot` with the SHSTK hwcap and extra tunables.
fn run_pattern(prog: &Path, pattern: &str, tunables: &str) -> common::Outcome {
    let root = sysroot();
    let mut spec = Spec::new(prog).args([pattern]);
    let mut t = "glibc.cpu.hwcaps=SHSTK".to_string();
    if !tunables.is_empty() {
        t.push(':');
        t.push_str(tunables);
    }
    spec.env.push(("GLIBC_TUNABLES".into(), t));
    run(&spec.under_cetbox(&[format!("--sysroot={}", root.display())]))
}

const ON_LOCKED: &str = "x86_Thread_features:\tshstk \nx86_Thread_features_locked:\tshstk wrss \nARCH_SHSTK_STATUS: 0, features 0x1\n";
const ON_UNLOCKED: &str =
    "x86_Thread_features:\tshstk \nx86_Thread_features_locked:\t\nARCH_SHSTK_STATUS: 0, features 0x1\n";
const OFF: &str =
    "x86_Thread_features:\t\nx86_Thread_features_locked:\t\nARCH_SHSTK_STATUS: 0, features 0\n";

fn expect_ok(o: &common::Outcome, want: &str) {
    assert_eq!(
        o.status,
        Status::Exited(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("violation"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn marked(pattern: &str, lines: &str) {
    let (p, _) = programs();
    let o = run_pattern(p, pattern, "");
    expect_ok(&o, &format!("{ON_LOCKED}{lines}done\n"));
}

fn ld_so_enables_and_locks_shadow_stacks() {
    marked("status", "");
}

fn longjmp() {
    marked("longjmp", "longjmp: 4200\n");
}

fn siglongjmp_out_of_a_handler() {
    marked("siglongjmp", "siglongjmp: 140, SIGUSR1 blocked after: 0\n");
}

fn swapcontext_coroutines() {
    // Three generators yield id*100+1..5 each: 3*15 + 5*(0+100+200).
    marked("swapcontext", "swapcontext: sum 1545\n");
}

fn vfork_and_exec() {
    marked("vfork", "vfork+exec: child exit 0\n");
}

fn posix_spawn() {
    marked("posix_spawn", "posix_spawn: 0, child exit 0\n");
}

fn threads() {
    // fib(15) + fib(16) + fib(17) + fib(18) = 610 + 987 + 1597 + 2584.
    marked("threads", "threads: 5778\n");
}

fn qsort_callbacks() {
    marked("qsort", "qsort: sorted 1\n");
}

fn deep_recursion() {
    marked("recursion", "recursion: 100000\n");
}

/// backtrace() dlopens libgcc_s.so.1 (glibc's misc/unwind-link.c). Neither Debian 12's nor
/// trixie's libgcc_s carries the SHSTK marking, so with shadow stacks locked on, glibc's
/// dlopen check (dl_cet_check_dlopen) refuses it and backtrace() returns 0 frames, with no
/// violation; in permissive mode glibc turns shadow stacks off for the legacy library
/// (single-threaded) and the unwinder works.
fn backtrace_with_an_unmarked_libgcc_s() {
    marked("backtrace", "backtrace: 0 frames\n");
    // Six bt_deep frames, p_backtrace, main, __libc_start_call_main, __libc_start_main, _start.
    let (p, _) = programs();
    let o = run_pattern(p, "backtrace", "glibc.cpu.x86_shstk=permissive");
    expect_ok(&o, &format!("{ON_UNLOCKED}backtrace: 11 frames\ndone\n"));
}

fn an_unmarked_object_leaves_shadow_stacks_off() {
    let (_, legacy) = programs();
    expect_ok(
        &run_pattern(legacy, "longjmp", ""),
        &format!("{OFF}longjmp: 4200\ndone\n"),
    );
    // glibc.cpu.x86_shstk=on does not help a legacy *program*: dl_cet_check starts from the
    // program's own markings (GL(dl_x86_feature_1) = l_x86_feature_1_and) and returns early
    // when they are empty, before cet_always_on is looked at (sysdeps/x86_64/dl-cet.c).
    expect_ok(
        &run_pattern(legacy, "longjmp", "glibc.cpu.x86_shstk=on"),
        &format!("{OFF}longjmp: 4200\ndone\n"),
    );
    // permissive: the startup check still leaves them off for a legacy program.
    expect_ok(
        &run_pattern(legacy, "status", "glibc.cpu.x86_shstk=permissive"),
        &format!("{OFF}done\n"),
    );
    // A marked program in permissive mode: on, not locked.
    let (p, _) = programs();
    expect_ok(
        &run_pattern(p, "status", "glibc.cpu.x86_shstk=permissive"),
        &format!("{ON_UNLOCKED}done\n"),
    );
    // Without the hwcap, glibc 2.41 leaves SHSTK off (it is opt-in).
    let mut spec = Spec::new(p).args(["status"]);
    spec.env.retain(|(k, _)| k != "GLIBC_TUNABLES");
    let o = run(&spec.under_cetbox(&[format!("--sysroot={}", sysroot().display())]));
    expect_ok(&o, &format!("{OFF}done\n"));
}

fn expect_violation(pattern: &str) {
    let (p, _) = programs();
    let o = run_pattern(p, pattern, "");
    assert_eq!(o.status, Status::Signaled(libc::SIGSEGV), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), ON_LOCKED);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("shadow-stack violation") && err.contains("near-ret"),
        "{err}"
    );
}

fn a_return_address_overwrite_is_caught() {
    expect_violation("overwrite");
}

fn a_stack_switch_without_rstorssp_is_caught() {
    expect_violation("stack-switch");
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let tests: [(&str, fn()); 13] = [
        (
            "ld_so_enables_and_locks_shadow_stacks",
            ld_so_enables_and_locks_shadow_stacks,
        ),
        ("longjmp", longjmp),
        ("siglongjmp_out_of_a_handler", siglongjmp_out_of_a_handler),
        ("swapcontext_coroutines", swapcontext_coroutines),
        ("vfork_and_exec", vfork_and_exec),
        ("posix_spawn", posix_spawn),
        ("threads", threads),
        ("qsort_callbacks", qsort_callbacks),
        ("deep_recursion", deep_recursion),
        (
            "backtrace_with_an_unmarked_libgcc_s",
            backtrace_with_an_unmarked_libgcc_s,
        ),
        (
            "an_unmarked_object_leaves_shadow_stacks_off",
            an_unmarked_object_leaves_shadow_stacks_off,
        ),
        (
            "a_return_address_overwrite_is_caught",
            a_return_address_overwrite_is_caught,
        ),
        (
            "a_stack_switch_without_rstorssp_is_caught",
            a_stack_switch_without_rstorssp_is_caught,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| glibc_env::trial(name, glibc_env::sysroot, move |_| f()))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
