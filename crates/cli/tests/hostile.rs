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
    cetbox_args(name, &[case], extra)
}

/// Runs `name args` under cetbox with `extra` options.
fn cetbox_args(name: &str, args: &[&str], extra: &[&str]) -> Outcome {
    let mut spec = Spec::new(program(name)).args(args);
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
             page: unchanged\n\
             pipe still holds the data: yes\n"
        );
    }
}

/// The same race with mprotect(PROT_READ) (also compared natively in tests/guest/hostile).
#[test]
fn blocked_read_cannot_write_a_page_made_read_only() {
    for _ in 0..3 {
        let o = cetbox("race", "mprotect", &[]);
        assert_eq!(o.status, Status::Exited(0));
        assert_eq!(
            stdout(&o),
            "read: EFAULT\npage: unchanged\npipe still holds the data: yes\n"
        );
    }
}

/// Item: a requeued FUTEX_WAIT_REQUEUE_PI waiter never has the host write its PI word after
/// the guest saw the word's page become a shadow stack (tests/hostile/requeue_pi.c; the
/// read-only variant is compared natively in tests/guest/hostile/requeue_pi_mprotect.c).
/// Requeued to a lock its requeuer keeps, the waiter times out (Linux: ETIMEDOUT from
/// futex_wait_requeue_pi after rt_mutex_wait_proxy_lock, no owner fix-up since it never got
/// the lock), the requeuer's UNLOCK_PI reads 0 on the fresh page and answers EPERM
/// (kernel/futex/pi.c futex_unlock_pi), and the page keeps exactly what map_shadow_stack put
/// there.
#[test]
fn requeued_pi_waiter_never_writes_a_new_shadow_stack() {
    for _ in 0..3 {
        let o = cetbox("requeue_pi", "shstk-held", &[]);
        assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
        assert_eq!(
            stdout(&o),
            "map_shadow_stack at P: yes\n\
             waiter: ETIMEDOUT\n\
             requeuer's unlock: EPERM\n\
             page: unchanged\n"
        );
    }
}

/// The requeuer unlocks (Linux hands the lock to the requeued waiter inside that UNLOCK_PI,
/// kernel/futex/pi.c wake_futex_pi) and replaces the page by a shadow stack after a delay
/// varying with the round: the waiter's write of the word, wherever it happens, lands before
/// munmap returns, never on the shadow stack.
#[test]
fn requeued_pi_waiter_racing_with_map_shadow_stack_never_writes_it() {
    let o = cetbox("requeue_pi", "shstk-race", &[]);
    assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
    assert_eq!(
        stdout(&o),
        "unlocks that failed: 0, pages not at P: 0\n\
         rounds where the page changed after map_shadow_stack returned: 0\n"
    );
}

/// Runs cetbox with `args` and returns its exit code and its peak resident set in KiB (from
/// wait4's rusage of that very child), killing it after 60 s.
// The child is reaped by wait4 below (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn peak_rss(args: &[&str]) -> (Option<i32>, i64) {
    use std::os::unix::process::CommandExt;
    let child = Command::new(common::cetbox_bin())
        .args(args)
        .env_clear()
        .envs(common::fixed_env())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("cetbox starts");
    let pid = child.id() as i32;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let watchdog = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !d2.load(std::sync::atomic::Ordering::SeqCst) {
            if start.elapsed() > Duration::from_secs(60) {
                // SAFETY: killing the process group of the child this test started.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    });
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointers; `pid` is our child, not waited for elsewhere.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.thread().unpark();
    watchdog.join().unwrap();
    assert_eq!(r, pid);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, ru.ru_maxrss)
}

/// A 4 TiB PROT_NONE reservation, made and unmapped five times, costs cetbox little memory:
/// PROT_NONE pages leave their page-table entries 0 and never written (one byte per page
/// would be 1 GiB per reservation), and unmapping gives table pages back.
#[test]
fn huge_prot_none_reservations_cost_no_table_memory() {
    let exe = program("reserve");
    let (code, kb) = peak_rss(&["run", "--", exe.to_str().unwrap(), "5"]);
    assert_eq!(code, Some(0));
    assert!(
        kb < 128 * 1024,
        "peak RSS {kb} KiB for 4 TiB PROT_NONE reservations"
    );
}

/// Runs `program args` (natively or, with `cetbox`, under cetbox) with RLIMIT_AS set to
/// `limit` bytes, soft and hard, as `ulimit -v` does; returns stdout and the exit code.
fn under_as_limit(
    limit: u64,
    cetbox: bool,
    program: &std::path::Path,
    args: &[&str],
) -> (String, Option<i32>) {
    use std::os::unix::process::CommandExt;
    let mut cmd = if cetbox {
        let mut c = Command::new(common::cetbox_bin());
        c.args(["run", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).env_clear().envs(common::fixed_env());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut spec_child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let pid = spec_child.id() as i32;
    let watchdog = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        loop {
            std::thread::park_timeout(Duration::from_millis(100));
            // SAFETY: signal 0 only probes whether the child still exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                return;
            }
            if start.elapsed() > Duration::from_secs(60) {
                // SAFETY: killing the child this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return;
            }
        }
    });
    let mut out = String::new();
    use std::io::Read;
    spec_child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let st = spec_child.wait().unwrap();
    watchdog.join().unwrap();
    (out, st.code())
}

/// cetbox starts and runs programs under an 8 GiB (and a 2 GiB) address-space limit, as the
/// same program does natively: without room for its usual 30 TiB placement reservation and
/// 32 GiB page table, it covers a smaller guest address range (AddressSpace::new).
#[test]
fn runs_under_small_address_space_limits() {
    let exe = program("limited");
    for limit in [8u64 << 30, 2 << 30] {
        let native = under_as_limit(limit, false, &exe, &[]);
        assert_eq!(native.1, Some(0), "native run under {limit}");
        let emulated = under_as_limit(limit, true, &exe, &[]);
        assert_eq!(emulated, native, "under RLIMIT_AS {limit}");
    }
    // A dynamically linked PIE (the system shell) too.
    let sh = std::path::Path::new("/bin/sh");
    let args = ["-c", "echo hello; (echo from a subshell)"];
    let native = under_as_limit(8 << 30, false, sh, &args);
    assert_eq!(under_as_limit(8 << 30, true, sh, &args), native);
}

/// A report that cannot be written is said on stderr (`--report-file=/dev/full`), not lost.
#[test]
fn unwritable_report_is_said_on_stderr() {
    let exe = program("violate");
    let mut spec = Spec::new(&exe);
    spec.timeout = Duration::from_secs(60);
    let o = run(&spec.under_cetbox(&["--shstk=on".into(), "--report-file=/dev/full".into()]));
    assert_eq!(o.status, Status::Signaled(libc::SIGSEGV));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(
            "cetbox: cannot write the shadow-stack report to /dev/full: No space left on device"
        ),
        "stderr: {e}"
    );
    // Written to a real file, nothing is said.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    let file = dir.join("report.txt");
    let o = run(&spec.under_cetbox(&[
        "--shstk=on".into(),
        format!("--report-file={}", file.display()),
    ]));
    assert_eq!(o.status, Status::Signaled(libc::SIGSEGV));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("cannot write"));
    assert!(std::fs::read_to_string(&file).unwrap().contains("#CP"));
}

/// `cetbox check` answers at once for anything but a regular file: a FIFO with no writer
/// (whose open or read would block forever), a directory, a device.
#[test]
fn check_refuses_non_regular_files_at_once() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile-fifo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for target in [fifo.to_str().unwrap(), "/dev/null", dir.to_str().unwrap()] {
        let mut spec = Spec::new(common::cetbox_bin()).args(["check", target]);
        spec.timeout = Duration::from_secs(30);
        let o = run(&spec);
        assert_eq!(o.status, Status::Exited(2), "{target}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("not a regular file"),
            "{target}"
        );
    }
}

/// Parses /proc/PID/maps text into (start, end, permissions, path) rows.
fn maps_rows(text: &str) -> Vec<(u64, u64, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let path = f.nth(3).unwrap_or("").to_string();
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
                perms,
                path,
            ))
        })
        .collect()
}

/// The guest probes every host mapping of the cetbox process that is not one of its own
/// mappings — cetbox's binary, heap (where each thread's translator context and the SSP it
/// holds live), stacks, page table, and the translator's code cache (the default engine) —
/// with a read and a write at its first and middle page. Linux gives a process SIGSEGV with
/// SEGV_MAPERR at the address for memory it has not mapped (arch/x86/mm/fault.c,
/// bad_area_nosemaphore), so each probe must fault exactly so, and nothing may be read or
/// written. The code cache must be among the probed mappings (the guest ran translated code).
#[test]
fn guest_cannot_reach_cetbox_memory() {
    use std::io::{BufRead, BufReader, Write};
    for engine in ["jit", "interp"] {
        let mut child = Command::new(common::cetbox_bin())
            .args(["run", &format!("--engine={engine}"), "--"])
            .arg(program("probe_host"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start cetbox");
        let pid = child.id();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut guest_maps = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "guest ended early");
            if line == "ready\n" {
                break;
            }
            guest_maps.push_str(&line);
        }
        let guest = maps_rows(&guest_maps);
        let host_text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let host = maps_rows(&host_text);
        let user_limit = 1u64 << 47;
        let foreign: Vec<&(u64, u64, String, String)> = host
            .iter()
            .filter(|h| h.1 <= user_limit)
            .filter(|h| !guest.iter().any(|g| g.0 < h.1 && h.0 < g.1))
            .collect();
        assert!(
            foreign.iter().any(|h| h.3 == "[heap]" || h.3.is_empty()),
            "no cetbox heap or anonymous memory found among:\n{host_text}"
        );
        if engine == "jit" {
            assert!(
                foreign.iter().any(|h| h.2.starts_with("r-x") && h.3.is_empty()),
                "the translator's code cache (anonymous r-x) is not among cetbox's mappings:\n{host_text}"
            );
        }
        let mut probes = Vec::new();
        for h in &foreign {
            probes.push(h.0);
            let mid = (h.0 + (h.1 - h.0) / 2) & !0xfff;
            if mid != h.0 {
                probes.push(mid);
            }
        }
        let mut stdin = child.stdin.take().unwrap();
        let mut problems = Vec::new();
        for &p in &probes {
            writeln!(stdin, "{p:x}").unwrap();
            line.clear();
            out.read_line(&mut line).unwrap();
            let want = format!("{p:x} read SIGSEGV-MAPERR write SIGSEGV-MAPERR\n");
            if line != want {
                problems.push(format!("{}: got {line:?}, want {want:?}", engine));
            }
        }
        drop(stdin);
        let status = common::wait_within(&mut child, Duration::from_secs(60));
        assert!(status.success(), "{engine}: guest exit status {status:?}");
        assert!(
            problems.is_empty(),
            "{} of {} probes of cetbox's own memory did not fault as on Linux:\n{}\nhost maps:\n{host_text}",
            problems.len(),
            probes.len(),
            problems.join("\n")
        );
        assert!(probes.len() >= 4, "too few probes: {probes:?}");
    }
}

/// Another guest process is another cetbox process: a parent guest aims process_vm_readv,
/// process_vm_writev, PTRACE_PEEKDATA and PTRACE_POKEDATA at every host mapping of its stopped
/// child's cetbox process that is not one of the child's guest mappings (first and middle
/// page: cetbox's binary, heap, stacks, page table, code cache, the published table header).
/// Linux has nothing mapped there for the child: EFAULT for process_vm_* (mm/process_vm_access.c,
/// nothing copied), EIO for PEEK/POKE (kernel/ptrace.c generic_ptrace_peekdata/pokedata). Then
/// the child's shadow-stack page: readable, process_vm_writev refused with EFAULT (mm/gup.c
/// check_vma_flags: VM_SHADOW_STACK needs FOLL_FORCE), POKEDATA allowed (FOLL_FORCE on a
/// private mapping) and read back by PEEKDATA. The same through /proc/PID/mem (FOLL_FORCE:
/// fs/proc/base.c mem_rw): EIO outside guest memory, the shadow-stack page written.
#[test]
fn other_guest_cannot_reach_cetbox_memory() {
    use std::io::{BufRead, BufReader, Write};
    for engine in ["jit", "interp"] {
        let mut child = Command::new(common::cetbox_bin())
            .args(["run", &format!("--engine={engine}"), "--"])
            .arg(program("remote_probe"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start cetbox");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut guest_maps, mut ss, mut pid) = (String::new(), String::new(), 0u32);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "guest ended early");
            if let Some(a) = line.strip_prefix("ss ") {
                ss = a.trim().to_string();
            } else if let Some(p) = line.strip_prefix("pid ") {
                pid = p.trim().parse().unwrap();
            } else if line == "go\n" {
                break;
            } else if line != "ready\n" {
                guest_maps.push_str(&line);
            }
        }
        assert!(
            pid != 0 && !ss.is_empty(),
            "no pid or shadow stack: {guest_maps}"
        );
        let guest = maps_rows(&guest_maps);
        let host_text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let host = maps_rows(&host_text);
        let foreign: Vec<&(u64, u64, String, String)> = host
            .iter()
            .filter(|h| h.1 <= 1u64 << 47)
            .filter(|h| !guest.iter().any(|g| g.0 < h.1 && h.0 < g.1))
            .collect();
        assert!(
            foreign.iter().any(|h| h.3 == "[heap]" || h.3.is_empty()),
            "no cetbox heap or anonymous memory found among:\n{host_text}"
        );
        let mut probes = Vec::new();
        for h in &foreign {
            probes.push(h.0);
            let mid = (h.0 + (h.1 - h.0) / 2) & !0xfff;
            if mid != h.0 {
                probes.push(mid);
            }
        }
        let mut stdin = child.stdin.take().unwrap();
        let mut problems = Vec::new();
        for &p in &probes {
            writeln!(stdin, "{p:x}").unwrap();
            line.clear();
            out.read_line(&mut line).unwrap();
            let want = format!(
                "{p:x} read EFAULT write EFAULT peek EIO poke EIO memread EIO memwrite EIO\n"
            );
            if line != want {
                problems.push(format!("{engine}: got {line:?}, want {want:?}"));
            }
        }
        writeln!(stdin, "ss {ss}").unwrap();
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(
            line,
            "shadow stack read 8 write EFAULT poke 0 peek 1122334455667788 memwrite 8 memread 8 \
             SHSTKMEM\n",
            "{engine}"
        );
        drop(stdin);
        let status = common::wait_within(&mut child, Duration::from_secs(60));
        assert!(status.success(), "{engine}: guest exit status {status:?}");
        assert!(
            problems.is_empty(),
            "{} of {} probes of another cetbox's own memory were not refused as on Linux:\n{}\nhost maps:\n{host_text}",
            problems.len(),
            probes.len(),
            problems.join("\n")
        );
        assert!(probes.len() >= 4, "too few probes: {probes:?}");
    }
}

/// process_vm_writev racing with the target's munmap + map_shadow_stack at the same address
/// (tests/hostile/remote_race.c): Linux checks and copies under the target's mmap lock and
/// never writes a shadow-stack mapping without FOLL_FORCE (mm/gup.c check_vma_flags), so the
/// parent's pattern never appears in one of the child's shadow stacks. The child's rounds are
/// fixed; each run is one race of thousands of rounds.
#[test]
fn remote_write_never_reaches_a_shadow_stack() {
    for _ in 0..3 {
        let o = cetbox("remote_race", "", &[]);
        assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
        assert_eq!(
            stdout(&o),
            "rounds 3000, shadow-stack pages with a remote write: 0\n"
        );
    }
}

/// The prefix of cetbox's line for a refused ioctl request (crates/linux/src/syscalls/fs/ioctl).
fn refused_line(req: &str) -> String {
    format!("cetbox: ioctl request {req} ")
}

/// Item: an ioctl whose argument layout cetbox does not know never reaches the host with a
/// guest pointer in it. KVM_GET_DIRTY_LOG's nested bitmap pointer aimed at a shadow stack's
/// restore token: refused with ENOTTY (Linux's answer for a request the driver lacks), the
/// token intact; without the refusal the host writes the bitmap over it (where /dev/kvm
/// opens). Linux itself would fail the copy with EFAULT; cetbox refuses before any host call.
#[test]
fn device_ioctl_with_nested_pointer_is_refused() {
    for _ in 0..3 {
        let o = cetbox("ioctl_refused", "kvm", &[]);
        assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
        assert_eq!(
            stdout(&o),
            "KVM_SET_USER_MEMORY_REGION: ENOTTY\n\
             restore token for the top: yes\n\
             KVM_GET_DIRTY_LOG into the shadow stack: ENOTTY\n\
             token: unchanged\n"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        // KVM_SET_USER_MEMORY_REGION = _IOW(0xae, 0x46, 32 bytes), KVM_GET_DIRTY_LOG =
        // _IOW(0xae, 0x42, 16 bytes) (include/uapi/linux/kvm.h).
        for req in ["0x4020ae46", "0x4010ae42"] {
            assert_eq!(err.matches(&refused_line(req)).count(), 1, "{err}");
        }
    }
}

/// A refused request is named once per process on stderr however often it is made; a request
/// cetbox does not know with a small integer argument reaches the host (ENOTTY from /dev/null,
/// as natively) without a word; a closed descriptor is EBADF first, as on Linux.
#[test]
fn refused_ioctl_is_said_once_per_request() {
    for _ in 0..3 {
        let o = cetbox("ioctl_refused", "once", &[]);
        assert_eq!(o.status, Status::Exited(0), "{}", stdout(&o));
        assert_eq!(
            stdout(&o),
            "A: ENOTTY\nA again: ENOTTY\nB: ENOTTY\nB with 5: ENOTTY\n\
             A on a closed descriptor: EBADF\n"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        // A = _IOWR('x', 0x31, 32 bytes), B = _IO(0xf7, 2).
        assert_eq!(err.matches(&refused_line("0xc0207831")).count(), 1, "{err}");
        assert_eq!(err.matches(&refused_line("0xf702")).count(), 1, "{err}");
        assert_eq!(err.lines().count(), 2, "{err}");
    }
}

/// Starts the native helper tests/hostile/proc_fake_header.c in `mode` and waits until its
/// fake view is published; gives it and its pid.
fn fake_header(mode: &str) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut helper = Command::new(program("proc_fake_header"))
        .arg(mode)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the native helper");
    let mut line = String::new();
    BufReader::new(helper.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "{mode}");
    let pid = helper.id().to_string();
    (helper, pid)
}

/// A process that is not cetbox but maps a page where cetbox processes publish their /proc view
/// (crates/linux/src/procview.rs) can only misrepresent itself to a guest reading its
/// /proc/PID files: a claimed length beyond the bounds leaves the host's view of the files made
/// of that blob, a sequence that never settles the host's view of all
/// (no hang, no crash), and a consistent fake view is shown as text, but an
/// executable path into /proc (which would reach cetbox's own memory) is not opened.
#[test]
fn fake_published_view_is_bounded() {
    for mode in ["huge", "odd", "fake", "bigvmas"] {
        let (mut helper, pid) = fake_header(mode);
        let host_maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let host_exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        let out = cetbox("proc_fake_view", &pid, &[]);
        let _ = helper.kill();
        let _ = helper.wait();
        assert!(
            matches!(out.status, Status::Exited(0)),
            "{mode}: {:?}",
            out.status
        );
        let want = if mode == "fake" {
            "maps<<fake maps\n>>\nexe<</proc/self/mem>>\nopen exe: Permission denied\n".to_string()
        } else if mode == "bigvmas" {
            // Each file copies only the blobs it is made of.
            format!("maps<<{host_maps}>>\nexe<</proc/self/mem>>\nopen exe: Permission denied\n")
        } else {
            format!(
                "maps<<{host_maps}>>\nexe<<{}>>\nopen exe: ok\n",
                host_exe.display()
            )
        };
        assert_eq!(stdout(&out), want, "{mode}");
    }
}

/// A published VMA record is another process's word: one spanning all of user space (2^35
/// pages) must not make a reader of that process's status walk 2^35 pagemap entries. The
/// walk covers only what the host has mapped there (the helper's few mappings), so the read
/// ends at once, where it would otherwise outlast the timeout.
#[test]
fn vast_published_vma_costs_only_what_is_mapped() {
    let (mut helper, pid) = fake_header("vast");
    let out = cetbox_args("proc_fake_view", &[&pid, "status"], &[]);
    let _ = helper.kill();
    let _ = helper.wait();
    assert_eq!(out.status, Status::Exited(0), "{}", stdout(&out));
    let size_kb = (0x7fff_ffff_e000u64 - 0x1000) / 1024;
    let text = stdout(&out);
    // The maps text is made of the records.
    let head = "maps<<00001000-7fffffffe000 rw-p 00000000 00:00 0 \n>>\n\
                exe<</proc/self/mem>>\nopen exe: Permission denied\n";
    assert!(text.starts_with(head), "{text}");
    let tail = text.split_once("VmSize:").map(|(_, t)| t).unwrap_or("");
    assert!(
        tail.starts_with(&format!("\t{size_kb} kB\nVmRSS:\t")),
        "{text}"
    );
}

/// Known limit closed: a mapping call of a guest held up by another process's accessor (one
/// stopped in the middle of its copy stays registered for as long as it is stopped) waited
/// without looking at its stop flag, so it acted on no signal, a fatal one included, until
/// the accessor left. The native helper registers as such an accessor and keeps the
/// registration (tests/hostile/accessor_hold.c); the guest's SIGUSR1 handler must run and its
/// SIGTERM must end it meanwhile (Linux's mmap_write_lock_killable; its readers cannot be
/// stopped while they hold mmap_lock). Before, the helper waited for the handler forever.
#[test]
fn mapping_call_held_by_an_accessor_acts_on_signals() {
    let guest = program("held_mapper");
    let mut spec = Spec::new(program("accessor_hold"));
    spec.args = vec![common::cetbox_bin().into(), guest.into()];
    spec.timeout = Duration::from_secs(60);
    let out = run(&spec);
    assert_eq!(out.status, Status::Exited(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "SIGUSR1 acted on while the mmap waits for an accessor\n\
         the mmap made once the accessor left\n\
         ended by signal 15 while the mmap waits for an accessor\n"
    );
}
