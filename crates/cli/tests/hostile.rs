//! Hostile guests whose expected behaviour cannot be observed natively (shadow stacks need CET
//! hardware, which this machine lacks, or the behaviour is cetbox's own): each program under
//! tests/hostile/ runs under cetbox with a timeout and its output is compared with what the
//! spec (Linux's source) says, written here. Natively comparable hostile cases live in
//! tests/guest/hostile/ and run through guest.rs.

mod common;

use common::{run, Outcome, Spec, Status};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Builds tests/hostile/NAME.c once per test run.
fn program(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile");
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let exe = dir.join(name);
    // Built once per test run (never a stale binary from an earlier run).
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let src = common::repo_root().join(format!("tests/hostile/{name}.c"));
        let tmp = dir.join(format!("{name}.tmp"));
        let st = Command::new("gcc")
            .args([
                "-O0",
                "-g",
                "-static",
                "-pthread",
                "-fcf-protection=none",
                "-mno-red-zone",
                "-o",
            ])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc must be installed");
        assert!(st.success(), "building {name}.c failed");
        std::fs::rename(&tmp, &exe).unwrap();
        built.push(name.to_string());
    }
    exe
}

/// Runs `name case` under cetbox with `extra` options.
fn cetbox(name: &str, case: &str, extra: &[&str]) -> Outcome {
    let mut spec = Spec::new(program(name)).args([case]);
    spec.timeout = Duration::from_secs(60);
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = run(&spec.under_cetbox(&extra));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "cetbox panicked:\n{stderr}");
    out
}

fn stdout(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Item: the host kernel never writes guest memory through a pointer checked only at syscall
/// entry. A read blocked on a pipe whose buffer becomes a shadow stack (map_shadow_stack at the
/// same address) fails with EFAULT and leaves the kernel's restore token in place, as Linux's
/// copy_to_user, which cannot write shadow-stack pages with ordinary writes.
#[test]
fn blocked_read_cannot_write_a_new_shadow_stack() {
    for _ in 0..3 {
        let o = cetbox("race", "shstk", &[]);
        assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
        assert_eq!(
            stdout(&o),
            "map_shadow_stack at P: yes\n\
             token is the restore token for the top: yes\n\
             read: EFAULT\n\
             page: unchanged\n"
        );
    }
}

/// The same race with mprotect(PROT_READ) (also compared natively in tests/guest/hostile).
#[test]
fn blocked_read_cannot_write_a_page_made_read_only() {
    for _ in 0..3 {
        let o = cetbox("race", "mprotect", &[]);
        assert_eq!(o.status, Status::Exited(0));
        assert_eq!(stdout(&o), "read: EFAULT\npage: unchanged\n");
    }
}
