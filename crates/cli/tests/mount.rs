//! mount(2) and umount2(2) under cetbox against native runs of tests/mount/mount_calls.c:
//! the answers of an unprivileged caller (argument errors in Linux's order, then EPERM), and,
//! in a new user and mount namespace, real mounts (tmpfs with options, bind, read-only
//! remount, chroot, move, MNT_DETACH, and the new mount API with glibc's misc/tst-mount
//! checks) and pivot_root, as glibc's tests do through support_become_root; an overlay whose lower layer
//! exists only in a `--sysroot` (mount options and fsconfig strings that name paths); and
//! a dirfd that is one of cetbox's private descriptors, ignored with an absolute path.
//!
//! The namespace trials need a host that lets an unprivileged process create user namespaces
//! (`unshare -Ur true`); when the native run finds it refused, the trial is listed as
//! *ignored* with a "NOT RUN" reason, never as passed. This file runs on libtest-mimic
//! (`harness = false`) because the built-in harness cannot ignore a test at run time.

mod common;

use common::{compare, repo_root, run, Outcome, Spec, Status, TempDir};
use libtest_mimic::{Completion, Failed, Trial};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The exit status with which the program says the kernel refused the namespaces.
const NOT_RUN: i32 = 77;

fn program() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = common::target_dir().join("mount-tests");
        std::fs::create_dir_all(&out).unwrap();
        let bin = out.join("mount_calls");
        common::gcc(
            &repo_root().join("tests/mount/mount_calls.c"),
            &bin,
            &["-O2", "-static", "-Wall", "-Werror"],
            &[],
        );
        bin
    })
}

fn runs(mode: &str) -> (Outcome, Outcome) {
    let mut spec = Spec::new(program()).args([mode]);
    spec.timeout = Duration::from_secs(60);
    let native = run(&spec);
    // A report file gives cetbox a private descriptor (`private_fds`), which the dirfd checks
    // of the unprivileged run meet among the descriptor numbers the guest sees closed.
    let cetbox = run(&spec.under_cetbox(&["--report-file=/dev/null".to_string()]));
    (native, cetbox)
}

/// `mount_calls overlay LOWER`: natively with the sysroot's directory itself, under cetbox
/// with `--sysroot=DIR` and the path the guest believes in, which exists only in DIR, so the
/// overlay's lower layer is the sysroot's only if its mount options and fsconfig strings go
/// through the sysroot's path rules (`crates/linux/src/syscalls/mount_options.rs`).
fn overlay_runs() -> (Outcome, Outcome) {
    let tmp = TempDir::new("mount-sysroot");
    let lower = tmp.path.join("cetbox-mount-lower");
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::write(lower.join("file"), "from the sysroot\n").unwrap();
    let mut native = Spec::new(program()).args(["overlay".into(), lower.into_os_string()]);
    native.timeout = Duration::from_secs(60);
    let mut guest = Spec::new(program()).args(["overlay", "/cetbox-mount-lower"]);
    guest.timeout = Duration::from_secs(60);
    let sysroot = format!("--sysroot={}", tmp.path.display());
    (run(&native), run(&guest.under_cetbox(&[sysroot])))
}

fn differences(native: &Outcome, cetbox: &Outcome) -> Result<Completion, Failed> {
    match compare("native", native, "cetbox", cetbox) {
        None => Ok(Completion::Completed),
        Some(d) => Err(Failed::from(format!(
            "cetbox differs from the native run:\n{d}\nnative stdout:\n{}",
            String::from_utf8_lossy(&native.stdout)
        ))),
    }
}

fn unprivileged() -> Result<(), Failed> {
    let (native, cetbox) = runs("unprivileged");
    if native.status != Status::Exited(0) {
        return Err(Failed::from(format!(
            "the native run failed ({}): {}",
            native.status,
            String::from_utf8_lossy(&native.stderr)
        )));
    }
    differences(&native, &cetbox).map(|_| ())
}

fn in_user_and_mount_namespace(mode: &str) -> Result<Completion, Failed> {
    let (native, cetbox) = if mode == "overlay" {
        overlay_runs()
    } else {
        runs(mode)
    };
    if native.status == Status::Exited(NOT_RUN) {
        return Ok(Completion::ignored_with(format!(
            "NOT RUN: this host refuses a new user and mount namespace ({})",
            String::from_utf8_lossy(&native.stdout).trim()
        )));
    }
    if native.status != Status::Exited(0) {
        return Err(Failed::from(format!(
            "the native run failed ({}): {}",
            native.status,
            String::from_utf8_lossy(&native.stderr)
        )));
    }
    differences(&native, &cetbox)
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let trials = vec![
        Trial::test("unprivileged_answers", unprivileged),
        Trial::ignorable_test("in_a_user_and_mount_namespace", || {
            in_user_and_mount_namespace("userns")
        }),
        Trial::ignorable_test("new_mount_api_in_a_user_and_mount_namespace", || {
            in_user_and_mount_namespace("newapi")
        }),
        Trial::ignorable_test("pivot_root_in_a_user_and_mount_namespace", || {
            in_user_and_mount_namespace("pivot")
        }),
        Trial::ignorable_test("overlay_options_under_sysroot", || {
            in_user_and_mount_namespace("overlay")
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}
