//! execve from a multi-threaded process: tests/shstk/exec_thread.c, run under cetbox only
//! since no CET hardware is here, with the expected output written from the spec
//! (docs/acceptance.md 14.11; Linux fs/exec.c de_thread and begin_new_exec ->
//! arch/x86/kernel/shstk.c reset_thread_features). The rest of execve from threads (killing
//! the other threads, the leader's tid, pending signals, masks, dispositions) is compared with
//! native runs by tests/guest/threads/exec_from_thread.c in guest.rs.

mod common;

use common::{run, Spec, Status};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn prog() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("exec_threads");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("exec_thread");
        let st = Command::new("gcc")
            .args(["-O2", "-static", "-pthread", "-fcf-protection=none", "-o"])
            .arg(&exe)
            .arg(common::repo_root().join("tests/shstk/exec_thread.c"))
            .status()
            .expect("gcc must be installed");
        assert!(st.success(), "building exec_thread.c failed");
        exe
    })
}

fn cetbox(opts: &[&str]) -> (String, Status) {
    let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    let o = run(&Spec::new(prog()).under_cetbox(&opts));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked"), "cetbox panicked:\n{e}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), o.status)
}

/// With --shstk=on: the thread has shadow stacks from the policy, adds WRSS and locks both;
/// the exec'd program starts as any program does under the policy: SHSTK only (status 1),
/// on a new shadow stack, nothing locked (so WRSS can be enabled again), and as the leader.
/// (The kernel prints each feature word followed by a space: arch_proc_pid_thread_features,
/// arch/x86/kernel/cpu/proc.c; docs/acceptance.md.)
#[test]
fn exec_from_a_thread_resets_shadow_stack_state() {
    let (out, status) = cetbox(&["--shstk=on"]);
    assert_eq!(
        out,
        "main: status 1\n\
         thread: wrss enable 0, lock 0, status 3\n\
         after: tid == pid 1, status 1, ssp nonzero 1\n\
         x86_Thread_features:\tshstk \n\
         x86_Thread_features_locked:\t\n\
         after: wrss enable 0\n"
    );
    assert_eq!(status, Status::Exited(0));
}

/// With shadow stacks off (the default, Linux 6.6's behaviour): the thread's WRSS enable and
/// lock are refused or empty, and after the exec everything is still off; WRSS is refused
/// because it needs SHSTK (-EPERM = -1).
#[test]
fn exec_from_a_thread_without_shadow_stacks() {
    let (out, status) = cetbox(&[]);
    assert_eq!(
        out,
        "main: status 0\n\
         thread: wrss enable -1, lock 0, status 0\n\
         after: tid == pid 1, status 0, ssp nonzero 0\n\
         x86_Thread_features:\t\n\
         x86_Thread_features_locked:\t\n\
         after: wrss enable -1\n"
    );
    assert_eq!(status, Status::Exited(0));
}
