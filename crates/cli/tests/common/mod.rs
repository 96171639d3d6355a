//! Shared helpers for the integration tests that run programs natively and under `cetbox run`
//! and compare what they do: spawning with a timeout, capturing output, comparing runs,
//! running jobs on a small thread pool, and scratch directories.

#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// The `cetbox` binary built by cargo for this test run.
pub fn cetbox_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cetbox"))
}

/// The repository root (two levels above this crate's manifest).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The cargo target directory (the binary lives in `<target>/<profile>/cetbox`), so caches
/// land next to the build products and are removed by `cargo clean`.
pub fn target_dir() -> PathBuf {
    let bin = cetbox_bin();
    bin.parent()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// The fixed, small environment every guest sees, natively and under cetbox.
pub fn fixed_env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("HOME".into(), "/nonexistent".into()),
        ("TZ".into(), "UTC".into()),
        ("LANG".into(), "C".into()),
    ]
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    SpawnFailed(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Signaled(s) => write!(f, "killed by signal {s}"),
            Status::TimedOut => write!(f, "timed out"),
            Status::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// Everything observable about one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
    pub elapsed: Duration,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub stdin: Stdin,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub enum Stdin {
    Null,
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Spec {
    pub fn new(program: impl Into<PathBuf>) -> Spec {
        Spec {
            program: program.into(),
            args: Vec::new(),
            env: fixed_env(),
            stdin: Stdin::Null,
            cwd: None,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Spec
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The same program, run as `cetbox run [extra...] -- PROG ARGS...`.
    pub fn under_cetbox(&self, extra: &[String]) -> Spec {
        let mut args: Vec<OsString> = vec!["run".into()];
        args.extend(extra.iter().map(OsString::from));
        args.push("--".into());
        args.push(self.program.clone().into_os_string());
        args.extend(self.args.iter().cloned());
        Spec {
            program: cetbox_bin(),
            args,
            ..self.clone()
        }
    }
}

/// Runs `spec` to completion (or until its timeout, when the whole process group is killed).
pub fn run(spec: &Spec) -> Outcome {
    let start = Instant::now();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).env_clear();
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    let stdin_bytes = match &spec.stdin {
        Stdin::Null => {
            cmd.stdin(Stdio::null());
            None
        }
        Stdin::File(p) => match std::fs::File::open(p) {
            Ok(f) => {
                cmd.stdin(Stdio::from(f));
                None
            }
            Err(e) => return failed(format!("stdin {}: {e}", p.display()), start),
        },
        Stdin::Bytes(b) => {
            cmd.stdin(Stdio::piped());
            Some(b.clone())
        }
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (setpgid, setrlimit) run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Own process group, so a timeout can kill every descendant; no core files.
            libc::setpgid(0, 0);
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(e.to_string(), start),
    };
    let pid = child.id() as i32;
    let writer = match (stdin_bytes, child.stdin.take()) {
        (Some(bytes), Some(mut w)) => Some(std::thread::spawn(move || {
            use std::io::Write;
            // The program may exit without reading everything: ignore EPIPE.
            let _ = w.write_all(&bytes);
        })),
        _ => None,
    };
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let mut timed_out = false;
    let res = match rx.recv_timeout(spec.timeout) {
        Ok(r) => r,
        Err(_) => {
            timed_out = true;
            // SAFETY: kill(2) on our own child's process group has no memory-safety preconditions.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            rx.recv().expect("waiter thread")
        }
    };
    let _ = waiter.join();
    // Descendants that outlive the child would keep the pipes open; end them too.
    // SAFETY: as above.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let status = if timed_out {
        Status::TimedOut
    } else {
        match res {
            Ok(st) => match (st.code(), st.signal()) {
                (Some(c), _) => Status::Exited(c),
                (None, Some(s)) => Status::Signaled(s),
                _ => Status::SpawnFailed(format!("unknown status {st:?}")),
            },
            Err(e) => Status::SpawnFailed(e.to_string()),
        }
    };
    Outcome {
        stdout,
        stderr,
        status,
        elapsed: start.elapsed(),
    }
}

fn failed(msg: String, start: Instant) -> Outcome {
    Outcome {
        stdout: Vec::new(),
        stderr: Vec::new(),
        status: Status::SpawnFailed(msg),
        elapsed: start.elapsed(),
    }
}

/// Compares two runs; `None` when stdout, stderr and status are identical, otherwise a
/// description of every difference with the first differing lines.
pub fn compare(a_name: &str, a: &Outcome, b_name: &str, b: &Outcome) -> Option<String> {
    let mut msg = String::new();
    if a.status != b.status {
        msg.push_str(&format!(
            "    status: {a_name} {}, {b_name} {}\n",
            a.status, b.status
        ));
    }
    for (stream, x, y) in [
        ("stdout", &a.stdout, &b.stdout),
        ("stderr", &a.stderr, &b.stderr),
    ] {
        if x != y {
            msg.push_str(&first_difference(stream, a_name, x, b_name, y));
        }
    }
    if msg.is_empty() {
        None
    } else {
        Some(msg)
    }
}

fn first_difference(stream: &str, a_name: &str, a: &[u8], b_name: &str, b: &[u8]) -> String {
    let al: Vec<&[u8]> = a.split_inclusive(|&c| c == b'\n').collect();
    let bl: Vec<&[u8]> = b.split_inclusive(|&c| c == b'\n').collect();
    let i = al
        .iter()
        .zip(bl.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(al.len().min(bl.len()));
    let show = |l: Option<&&[u8]>| match l {
        Some(l) => {
            let s = String::from_utf8_lossy(l);
            let s = s.trim_end_matches('\n');
            let mut t: String = s.chars().take(300).collect();
            if s.chars().count() > 300 {
                t.push_str("...");
            }
            format!("{t:?}")
        }
        None => "<end of output>".to_string(),
    };
    let mut m = format!(
        "    {stream} differs ({a_name} {} bytes/{} lines, {b_name} {} bytes/{} lines); first difference at line {}:\n",
        a.len(),
        al.len(),
        b.len(),
        bl.len(),
        i + 1
    );
    // A little context: the differing line and the two after it.
    for k in i..i + 3 {
        if k >= al.len() && k >= bl.len() {
            break;
        }
        m.push_str(&format!(
            "      {a_name:>7} {:>5}: {}\n",
            k + 1,
            show(al.get(k))
        ));
        m.push_str(&format!(
            "      {b_name:>7} {:>5}: {}\n",
            k + 1,
            show(bl.get(k))
        ));
    }
    m
}

/// Runs `f` over `items` on `threads` worker threads; results come back in input order.
pub fn parallel_map<T, R, F>(items: Vec<T>, threads: usize, f: F) -> Vec<R>
where
    T: Send + Sync,
    R: Send,
    F: Fn(&T) -> R + Send + Sync,
{
    let n = items.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// Number of worker threads: `CETBOX_TEST_THREADS`, else the machine's parallelism (at most 2
/// by default, the size of the CI machine).
pub fn worker_threads() -> usize {
    if let Some(n) = std::env::var("CETBOX_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(2)
}

/// A scratch directory removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("cetbox-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// 64-bit FNV-1a, for content-addressed caches (stable across Rust versions, unlike std's
/// hasher).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Compares a native run with a cetbox run: the summary line, whether they match, and the
/// details of any difference (a native run that did not complete counts as a failure).
pub fn check(label: &str, native: &Outcome, emulated: &Outcome) -> (String, bool, String) {
    let mut details = String::new();
    if matches!(native.status, Status::TimedOut | Status::SpawnFailed(_)) {
        details.push_str(&format!(
            "    native run did not complete: {}\n",
            native.status
        ));
    }
    if let Some(d) = compare("native", native, "cetbox", emulated) {
        details.push_str(&d);
    }
    let pass = details.is_empty();
    let line = format!(
        "{} {:<30} {:<22} native {:>6.2}s  cetbox {:>6.2}s",
        if pass { "ok  " } else { "FAIL" },
        label,
        native.status.to_string(),
        native.elapsed.as_secs_f64(),
        emulated.elapsed.as_secs_f64()
    );
    (line, pass, details)
}

/// How long a compiler or a quick helper command may take before the test fails.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// Compiles the C program `src` with `gcc FLAGS -o OUT SRC LIBS` (under `TOOL_TIMEOUT`),
/// panicking with the compiler's messages if it fails.
pub fn gcc(src: &Path, out: &Path, flags: &[&str], libs: &[&str]) {
    let o = output_within(
        Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(out)
            .arg(src)
            .args(libs),
        TOOL_TIMEOUT,
    );
    assert!(
        o.status.success(),
        "gcc {flags:?} {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `cmd.output()` with stdin from /dev/null (as `Command::output` does), but in its own
/// process group and killed with every descendant after `timeout`, so a hang fails the test
/// at once instead of stalling the suite; panics then, naming the command.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    cmd.stdin(Stdio::null());
    output_keeping_stdin(cmd, timeout)
}

/// `output_within` for a command whose stdin the caller has set.
pub fn output_keeping_stdin(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls (setpgid) run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    }
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id() as i32;
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(r) => r.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on our own child's process group has no memory-safety
            // preconditions.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = rx.recv();
            panic!("{what} did not finish within {timeout:?}");
        }
    };
    // Descendants that outlive the child would keep the pipes open; end them too.
    // SAFETY: as above.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// `child.wait()` with a deadline: after `timeout` the child is killed and the test fails.
pub fn wait_within(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child {} did not finish within {timeout:?}", child.id());
            }
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
    }
}

/// Whether `func` in `bin` uses the shadow-stack instructions (RDSSP/INCSSP), i.e. was built
/// CET-aware: libgcc's `_Unwind_*`, glibc's `__longjmp`, `__vfork` and the ucontext functions
/// carry them exactly when their library was built with -fcf-protection / --enable-cet. Tests
/// derive their shadow-stack expectations from this, not from the distribution they run on.
pub fn function_has_cet(bin: &Path, func: &str) -> bool {
    // objdump labels code with one of the names at an address (__vfork is also __libc_vfork
    // and vfork), so every alias of `func` is tried.
    let nm = output_within(Command::new("nm").arg(bin), TOOL_TIMEOUT);
    let nm = String::from_utf8_lossy(&nm.stdout);
    let addr = nm
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(_, rest)| rest.split_whitespace().nth(1) == Some(func))
        .map(|(a, _)| a.to_string());
    let mut names = vec![func.to_string()];
    if let Some(a) = &addr {
        names.extend(
            nm.lines()
                .filter(|l| l.starts_with(a.as_str()))
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter(|n| *n != func)
                .map(String::from),
        );
    }
    for name in &names {
        let o = output_within(
            Command::new("objdump")
                .arg("-d")
                .arg(format!("--disassemble={name}"))
                .arg(bin),
            TOOL_TIMEOUT,
        );
        let dis = String::from_utf8_lossy(&o.stdout);
        if dis.contains(&format!("<{name}>:")) {
            return dis.contains("incssp") || dis.contains("rdssp");
        }
    }
    panic!(
        "{func} not found in {} (objdump and nm from binutils must be installed)",
        bin.display()
    );
}

/// Whether the ELF object at `path` carries the x86 SHSTK property (GNU property note
/// GNU_PROPERTY_X86_FEATURE_1_AND with SHSTK, as `readelf -n` shows it): built for shadow
/// stacks, so no violation may happen in its code.
pub fn object_has_shstk(path: &Path) -> bool {
    let o = output_within(Command::new("readelf").arg("-n").arg(path), TOOL_TIMEOUT);
    assert!(
        o.status.success(),
        "readelf -n {} failed (binutils must be installed)",
        path.display()
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .any(|l| l.contains("x86 feature") && l.contains("SHSTK"))
}

/// One violation of a JSON report: its kind, and the symbol and object of the instruction.
#[derive(Debug)]
pub struct Violation {
    pub kind: String,
    pub symbol: String,
    pub object: PathBuf,
}

/// The violations of a JSON report file (one object per line; summaries have "type":
/// "summary").
pub fn violations_in(report: &Path) -> Vec<Violation> {
    let text = std::fs::read_to_string(report).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] != "summary")
        .map(|v| Violation {
            kind: v["kind"].as_str().unwrap_or("?").to_string(),
            symbol: v["instruction"]["symbol"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            object: PathBuf::from(v["instruction"]["object"].as_str().unwrap_or("?")),
        })
        .collect()
}

/// The options of a `--shstk=on` audit run reporting to `report` as JSON: violations are
/// reported and resynchronized, so the program keeps running and can be compared with its
/// native run.
pub fn shstk_audit_args(report: &Path) -> Vec<String> {
    vec![
        "--shstk=on".into(),
        "--on-violation=continue".into(),
        "--report=json".into(),
        format!("--report-file={}", report.display()),
    ]
}

/// What is wrong with the violations an audit run of case `name` (program `prog`) reported.
/// `listed`: the suite's explicit list names the case as reporting violations on a C library
/// or program not built for shadow stacks. Then, when `prog` lacks the SHSTK marking, at
/// least one violation must be reported; an unlisted case must report none; and no violation
/// may ever happen in the code of an object that carries the marking.
pub fn audit_problems(name: &str, prog: &Path, listed: bool, found: &[Violation]) -> Vec<String> {
    let mut problems = Vec::new();
    for v in found {
        if v.object.exists() && object_has_shstk(&v.object) {
            problems.push(format!(
                "{name}: violation in an object built for shadow stacks: {v:?}"
            ));
        }
    }
    if listed && found.is_empty() && !object_has_shstk(prog) {
        problems.push(format!(
            "{name}: listed as reporting violations ({} lacks SHSTK), none reported",
            prog.display()
        ));
    }
    if !listed && !found.is_empty() {
        problems.push(format!("{name}: unexpected violations {found:?}"));
    }
    problems
}
