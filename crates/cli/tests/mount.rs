//! mount(2) and umount2(2) under cetbox against native runs of tests/mount/mount_calls.c:
//! the answers of an unprivileged caller (argument errors in Linux's order, then EPERM), and,
//! in a new user and mount namespace, real mounts (tmpfs with options, bind, read-only
//! remount, chroot, move, MNT_DETACH, and the new mount API with glibc's misc/tst-mount
//! checks), as glibc's tests do through support_become_root.
//!
//! The namespace trials need a host that lets an unprivileged process create user namespaces
//! (`unshare -Ur true`); when the native run finds it refused, the trial is listed as
//! *ignored* with a "NOT RUN" reason, never as passed. This file runs on libtest-mimic
//! (`harness = false`) because the built-in harness cannot ignore a test at run time.

mod common;

use common::{compare, repo_root, run, Outcome, Spec, Status};
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
    let cetbox = run(&spec.under_cetbox(&[]));
    (native, cetbox)
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
    let (native, cetbox) = runs(mode);
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
    ];
    libtest_mimic::run(&args, trials).exit();
}
