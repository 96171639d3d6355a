//! `--sysroot=DIR` path rules (crates/linux/src/sysroot.rs), with a small sysroot this test
//! builds itself from the host's toolchain, so it runs on every machine:
//!
//! - DIR/opt/cetbox-sysroot-test/lib/libgreet.so: the program's DT_RUNPATH names that
//!   directory, which does not exist on the host, so the program runs only if ld.so's
//!   library search looks in the sysroot;
//! - DIR/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-cetbox-copy.so (an absolute
//!   link, a copy of the host's ld.so under a name the host does not have): the interpreter
//!   lookup and links inside the sysroot;
//! - DIR/etc: files only the sysroot has, an absolute link, a link into /proc (the /proc view
//!   answers through it), no passwd (host fallback);
//! - DIR/dev with a marker file and DIR/proc empty: /dev and /proc must come from the host;
//! - DIR/bin/hello: execve looks in the sysroot.
//!
//! The expected output is written from the rules (crates/linux/src/sysroot.rs, qemu-user's
//! `-L`), not taken from cetbox.

mod common;

use common::{cetbox_bin, repo_root, run, Spec, Status, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cc(args: &[&str]) {
    let out = Command::new("gcc").args(args).output().expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the sysroot and the program; returns (sysroot, program outside it).
fn build(tmp: &Path) -> (PathBuf, PathBuf) {
    let src = repo_root().join("tests/sysroot");
    let root = tmp.join("root");
    for d in [
        "opt/cetbox-sysroot-test/lib",
        "lib/x86_64-linux-gnu",
        "lib64",
        "etc",
        "dev",
        "proc",
        "bin",
        "usr/bin",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let s = |f: &str| src.join(f).to_string_lossy().into_owned();
    let r = |f: &str| root.join(f).to_string_lossy().into_owned();
    cc(&[
        "-shared",
        "-fPIC",
        "-O1",
        "-o",
        &r("opt/cetbox-sysroot-test/lib/libgreet.so"),
        &s("greet.c"),
    ]);
    cc(&["-static", "-O1", "-o", &r("bin/hello"), &s("hello.c")]);
    let prog = tmp.join("paths");
    cc(&[
        "-O1",
        "-o",
        &prog.to_string_lossy(),
        &s("paths.c"),
        &format!("-L{}", r("opt/cetbox-sysroot-test/lib")),
        "-lgreet",
        "-Wl,-rpath,/opt/cetbox-sysroot-test/lib",
    ]);
    std::fs::copy(&prog, root.join("usr/bin/paths")).unwrap();
    let host_ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("host ld.so");
    std::fs::copy(
        &host_ld,
        root.join("lib/x86_64-linux-gnu/ld-cetbox-copy.so"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-cetbox-copy.so",
        root.join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/cetbox-sysroot-only"),
        "only in the sysroot\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/real"), "real file in the sysroot\n").unwrap();
    std::os::unix::fs::symlink("/etc/real", root.join("etc/abs-link")).unwrap();
    std::os::unix::fs::symlink("/proc/self/maps", root.join("etc/maps-link")).unwrap();
    std::fs::write(root.join("dev/marker"), "").unwrap();
    (root.canonicalize().unwrap(), prog)
}

fn expected(root: &Path) -> String {
    let _ = root;
    [
        "greet: from libgreet.so in the sysroot",
        "open /etc/cetbox-sysroot-only: only in the sysroot",
        "open /etc/abs-link: real file in the sysroot",
        "readlink /etc/abs-link: /etc/real",
        "lstat /etc/abs-link: symlink",
        "stat /etc/abs-link: regular file",
        "access /etc/passwd (host only): yes",
        "stat /dev/null: char device",
        "stat /dev/marker (sysroot only): missing",
        "stat /proc/self/status: regular file",
        "/proc/self/exe is argv[2]: yes",
        "maps: libgreet.so as /opt/...: yes, interpreter as /lib/...: yes, sysroot path shown: no",
        "stat /proc/self/exe is argv[2]: yes",
        "/etc/maps-link shows the guest's maps: yes",
        "open cetbox-sysroot-only: only in the sysroot",
        "getcwd is the host path: yes",
        "hello from /bin/hello in the sysroot",
        "/bin/hello exit status 7",
        "",
    ]
    .join("\n")
}

fn run_in_sysroot(root: &Path, prog: &str, exe_shown: &str) -> common::Outcome {
    let spec = Spec::new(prog).args([root.to_string_lossy().into_owned(), exe_shown.into()]);
    let spec = spec.under_cetbox(&[format!("--sysroot={}", root.display())]);
    run(&spec)
}

fn assert_outcome(o: &common::Outcome, root: &Path) {
    assert_eq!(
        o.status,
        Status::Exited(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected(root));
}

#[test]
fn a_program_outside_the_sysroot_sees_the_sysroot_first() {
    let tmp = TempDir::new("sysroot-out");
    let (root, prog) = build(&tmp.path);
    // The same program natively: its library is nowhere on the host, so ld.so refuses it
    // (exit status 127), which is what makes the run below depend on the sysroot.
    let native = run(&Spec::new(&prog).args(["x", "y"]));
    assert_eq!(native.status, Status::Exited(127), "{native:?}");
    let p = prog.to_string_lossy().into_owned();
    let o = run_in_sysroot(&root, &p, &p);
    assert_outcome(&o, &root);
}

#[test]
fn a_program_named_by_its_guest_path_runs_from_the_sysroot() {
    let tmp = TempDir::new("sysroot-in");
    let (root, _) = build(&tmp.path);
    let o = run_in_sysroot(&root, "/usr/bin/paths", "/usr/bin/paths");
    assert_outcome(&o, &root);
}

#[test]
fn check_resolves_libraries_in_the_sysroot() {
    let tmp = TempDir::new("sysroot-check");
    let (root, prog) = build(&tmp.path);
    let out = Command::new(cetbox_bin())
        .arg("check")
        .arg("--json")
        .arg(format!("--sysroot={}", root.display()))
        .arg(&prog)
        .output()
        .expect("cetbox check runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let objs = v["files"][0]["objects"]
        .as_array()
        .expect("objects")
        .clone();
    let path_of = |name: &str| {
        objs.iter()
            .find(|o| o["name"] == name)
            .and_then(|o| o["path"].as_str().map(str::to_string))
    };
    let r = root.display();
    assert_eq!(
        path_of("libgreet.so"),
        Some(format!("{r}/opt/cetbox-sysroot-test/lib/libgreet.so"))
    );
    assert_eq!(
        path_of("/lib64/ld-linux-x86-64.so.2"),
        Some(format!("{r}/lib/x86_64-linux-gnu/ld-cetbox-copy.so"))
    );
    // libc.so.6 is not in the sysroot: the host's.
    let libc = path_of("libc.so.6").expect("libc.so.6 resolved");
    assert!(!libc.starts_with(&r.to_string()), "{libc}");
}

#[test]
fn a_missing_sysroot_is_a_usage_error() {
    let o =
        run(&Spec::new("/bin/true").under_cetbox(&["--sysroot=/nonexistent/cetbox-root".into()]));
    assert_eq!(o.status, Status::Exited(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--sysroot=/nonexistent/cetbox-root"));
}
