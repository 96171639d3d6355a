//! `cetbox run --gdb`: Debian's gdb, driven in batch mode, debugs guest programs through
//! cetbox's remote stub (breakpoints, backtraces, the shadow-stack pointer `$pl3_ssp`,
//! stepping, watchpoints, threads, a dynamically linked guest, signals, a shadow-stack
//! violation with its siginfo, monitor commands, detach); a small protocol client checks the
//! target description and the NT_X86_SHSTK rules for writing pl3_ssp, and interrupts a
//! running guest. Expected values come from the programs' source and the Linux ABI, never
//! from cetbox's own output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

mod common;

const TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gdb");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles tests/gdb/NAME.c with `flags` into NAME-TAG (once per test run).
fn build(name: &str, tag: &str, flags: &[&str]) -> PathBuf {
    let exe = out_dir().join(format!("{name}-{tag}"));
    let tmp = out_dir().join(format!("{name}-{tag}.{}.tmp", std::process::id()));
    let flags: Vec<&str> = ["-g", "-fcf-protection=none"]
        .iter()
        .chain(flags)
        .copied()
        .collect();
    common::gcc(
        &root().join(format!("tests/gdb/{name}.c")),
        &tmp,
        &flags,
        &[],
    );
    std::fs::rename(&tmp, &exe).unwrap();
    exe
}

macro_rules! program {
    ($fn:ident, $name:literal, $tag:literal, $($flag:literal),*) => {
        fn $fn() -> &'static Path {
            static P: OnceLock<PathBuf> = OnceLock::new();
            P.get_or_init(|| build($name, $tag, &[$($flag),*]))
        }
    };
}

program!(basic, "basic", "static", "-O1", "-static");
program!(basic_dyn, "basic", "dynamic", "-O1");
program!(
    violation,
    "violation",
    "static",
    "-O0",
    "-fno-omit-frame-pointer",
    "-static"
);
program!(threads, "threads", "static", "-O1", "-static", "-pthread");
program!(signal, "signal", "static", "-O1", "-static");
program!(spin, "spin", "static", "-O1", "-static");
program!(forkexec, "forkexec", "static", "-O1", "-static");

/// Kills `pid` if the returned sender is not used (or dropped) within TIMEOUT.
fn watchdog(pid: u32) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(TIMEOUT) {
            // SAFETY: kill with integer arguments.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    tx
}

/// A guest started with `cetbox run --gdb=127.0.0.1:0`, waiting for gdb.
struct Guest {
    child: Child,
    /// Waited for; otherwise (a failed assertion) dropping the guest kills it.
    done: bool,
    addr: String,
    stderr_rest: mpsc::Receiver<String>,
    _watchdog: mpsc::Sender<()>,
}

struct Ended {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Guest {
    fn start(opts: &[&str], prog: &Path) -> Guest {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cetbox"))
            .arg("run")
            .args(opts)
            .arg("--gdb=127.0.0.1:0")
            .arg("--")
            .arg(prog)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wd = watchdog(child.id());
        let err = child.stderr.take().unwrap();
        let (addr_tx, addr_rx) = mpsc::channel::<String>();
        let (rest_tx, rest_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut all = String::new();
            let mut line = String::new();
            let mut sent = false;
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if !sent {
                    if let Some(a) = line
                        .split_whitespace()
                        .find(|w| w.starts_with("127.0.0.1:"))
                    {
                        let _ = addr_tx.send(a.trim_end_matches(')').to_string());
                        sent = true;
                    }
                }
                all.push_str(&line);
                line.clear();
            }
            drop(addr_tx);
            let _ = rest_tx.send(all);
        });
        let addr = addr_rx
            .recv_timeout(TIMEOUT)
            .expect("cetbox did not say where it waits for gdb");
        Guest {
            child,
            done: false,
            addr,
            stderr_rest: rest_rx,
            _watchdog: wd,
        }
    }

    fn wait(mut self) -> Ended {
        self.done = true;
        let mut stdout = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut stdout).unwrap();
        }
        let status = self.child.wait().unwrap();
        let stderr = self.stderr_rest.recv_timeout(TIMEOUT).unwrap_or_default();
        Ended {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs gdb in batch mode against `guest` with `cmds` (after `target remote`); returns its
/// output (stdout and stderr).
fn gdb(guest: &Guest, prog: &Path, cmds: &[&str]) -> String {
    let mut c = Command::new("gdb");
    c.args(["-batch", "-nx", "-iex", "set auto-load safe-path /"])
        .args(["-ex", "set pagination off"])
        .args(["-ex", &format!("target remote {}", guest.addr)]);
    for (i, cmd) in cmds.iter().enumerate() {
        if cmd.contains('\n') {
            // A multi-line command (while ... end) goes through a script file.
            let f = out_dir().join(format!(
                "cmd-{}-{i}-{:?}.gdb",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&f, format!("{cmd}\n")).unwrap();
            c.arg("-x").arg(f);
        } else {
            c.args(["-ex", cmd]);
        }
    }
    let child = c
        .arg(prog)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gdb is installed (apt-get install gdb)");
    let wd = watchdog(child.id());
    let o = child.wait_with_output().unwrap();
    drop(wd);
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    s
}

fn session(opts: &[&str], prog: &Path, cmds: &[&str]) -> (String, Ended) {
    let g = Guest::start(opts, prog);
    let out = gdb(&g, prog, cmds);
    let end = g.wait();
    (out, end)
}

/// A gdb session (`session`) after which the guest exited with status 0; returns gdb's output
/// and the guest's stdout.
fn session_to_exit(opts: &[&str], prog: &Path, cmds: &[&str]) -> (String, String) {
    let (out, end) = session(opts, prog, cmds);
    assert_eq!(
        end.status.code(),
        Some(0),
        "guest status {:?}, stderr:\n{}\ngdb:\n{out}",
        end.status,
        end.stderr
    );
    (out, end.stdout)
}

/// A protocol connection (no gdb) to a guest stopped at its first instruction, after the
/// qSupported handshake; returns the guest, the connection, the handshake's reply and the
/// stopped thread's id (from the `?` stop reply).
fn protocol_session(opts: &[&str], prog: &Path, features: &str) -> (Guest, Client, String, String) {
    let g = Guest::start(opts, prog);
    let mut c = Client::connect(&g.addr);
    let sup = c.ask(&format!("qSupported:{features}"));
    let stop = c.ask("?");
    assert!(stop.starts_with("T05"), "{stop}");
    let tid = stop
        .split("thread:")
        .nth(1)
        .unwrap_or_else(|| panic!("no thread in the stop reply {stop}"))
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (g, c, sup, tid)
}

/// The value gdb printed for `$N = value` (the last such line for N).
fn value(out: &str, n: u32) -> String {
    let prefix = format!("${n} = ");
    out.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .next_back()
        .unwrap_or_else(|| panic!("no ${n} in gdb output:\n{out}"))
        .trim()
        .to_string()
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not a hex number: {v}"))
}

/// The address of symbol `name` in `prog`, from nm (not from cetbox or gdb).
fn symbol(prog: &Path, name: &str) -> u64 {
    let o = Command::new("nm").arg(prog).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 && f[2] == name {
            return u64::from_str_radix(f[0], 16).unwrap();
        }
    }
    panic!("{name} not in {}", prog.display());
}

#[test]
fn breakpoint_backtrace_and_shadow_stack_pointer() {
    let prog = basic();
    let (out, stdout) = session_to_exit(
        &["--shstk=on"],
        prog,
        &[
            "break leaf",
            "continue",
            "bt",
            "p/x $pl3_ssp",
            "p/x *(long *)$pl3_ssp",
            "x/2gx $pl3_ssp",
            "p/x $rip",
            "p x",
            "detach",
        ],
    );
    assert!(out.contains("Breakpoint 1, leaf (x=x@entry=21)"), "{out}");
    // The call chain of basic.c: main -> middle -> leaf.
    let bt: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert!(bt.len() >= 3, "{out}");
    assert!(
        bt[0].contains("leaf") && bt[1].contains("middle") && bt[2].contains("main"),
        "{out}"
    );
    let ssp = hex(&value(&out, 1));
    assert_eq!(ssp % 8, 0);
    // The entry at SSP is leaf's return address: inside middle, as on the normal stack.
    let ret = hex(&value(&out, 2));
    let middle = symbol(prog, "middle");
    let main = symbol(prog, "main");
    assert!(
        ret > middle && ret < middle + 64,
        "return address {ret:#x}, middle at {middle:#x}"
    );
    let x = out
        .lines()
        .find(|l| l.starts_with(&format!("{ssp:#x}:")))
        .expect("x/2gx line");
    let words: Vec<u64> = x.split_whitespace().skip(1).map(hex).collect();
    assert_eq!(words[0], ret);
    assert!(words[1] > main && words[1] < main + 128, "{out}");
    assert_eq!(hex(&value(&out, 3)), symbol(prog, "leaf"));
    assert_eq!(value(&out, 4), "21");
    // Detached, the guest ran to its end as without a debugger.
    assert!(out.contains("detached"), "{out}");
    assert_eq!(stdout, "result 43 counter 21 sorted 1 2 3 4\n");
}

#[test]
fn pl3_ssp_is_unavailable_without_shadow_stacks() {
    let prog = basic();
    let (out, _) = session_to_exit(
        &[],
        prog,
        &["break leaf", "continue", "p $pl3_ssp", "continue"],
    );
    assert_eq!(value(&out, 1), "<unavailable>", "{out}");
}

#[test]
fn stepping_over_call_and_ret_keeps_the_shadow_stack_in_step() {
    let prog = basic();
    let (out, _) = session_to_exit(
        &["--shstk=on"],
        prog,
        &[
            "break middle",
            "continue",
            // Single-step instructions until the CALL to leaf has run.
            "p/x $pl3_ssp",
            "while $pc < leaf || $pc >= middle\nstepi\nend",
            "p/x $pl3_ssp",
            "p/x *(long *)$pl3_ssp",
            "p/x *(long *)$rsp",
            "finish",
            "p/x $pl3_ssp",
            "next",
            "p r",
            "continue",
        ],
    );
    let before = hex(&value(&out, 1));
    // CALL pushed one entry, the same return address as on the normal stack.
    assert_eq!(hex(&value(&out, 2)), before - 8, "{out}");
    assert_eq!(value(&out, 3), value(&out, 4), "{out}");
    // RET popped it.
    assert_eq!(hex(&value(&out, 6)), before, "{out}");
    // `next` stepped over middle's RET into main, whose r is middle(20) = leaf(21) + 1 = 43.
    assert!(out.contains("main () at"), "{out}");
    assert_eq!(value(&out, 7), "43", "{out}");
}

#[test]
fn watchpoints_write_read_and_access() {
    let prog = basic();
    let (out, _) = session_to_exit(
        &[],
        prog,
        &[
            "watch counter",
            "continue",
            "p $pc >= leaf && $pc < middle",
            "delete",
            "rwatch counter",
            "continue",
            "p $pc >= main",
            "delete",
            "continue",
        ],
    );
    assert!(
        out.contains("Old value = 0") && out.contains("New value = 21"),
        "{out}"
    );
    assert_eq!(value(&out, 1), "1", "write watchpoint outside leaf:\n{out}");
    // main reads counter for printf.
    assert!(out.contains("Value = 21"), "{out}");
    assert_eq!(value(&out, 2), "1", "{out}");

    let (out, _) = session_to_exit(
        &[],
        prog,
        &[
            "awatch counter",
            "continue",
            "continue",
            "delete",
            "continue",
        ],
    );
    // leaf's `counter += x` reads then writes it: an access watchpoint reports it.
    assert!(
        out.contains("Hardware access (read/write) watchpoint 1: counter"),
        "{out}"
    );
    assert!(
        out.contains("Value = 0") || out.contains("Old value = 0"),
        "{out}"
    );
}

#[test]
fn hardware_breakpoint() {
    let prog = basic();
    let (out, _) = session_to_exit(&[], prog, &["hbreak middle", "continue", "p x", "continue"]);
    assert!(out.contains("Hardware assisted breakpoint 1"), "{out}");
    assert_eq!(value(&out, 1), "20", "{out}");
}

#[test]
fn threads_are_listed_with_their_own_registers() {
    let prog = threads();
    let (out, stdout) = session_to_exit(
        &[],
        prog,
        &[
            "break all_started",
            "continue",
            "info threads",
            "p $_gthread",
            "thread 2",
            "p/x $pc",
            "thread 1",
            "p/x $pc",
            "continue",
        ],
    );
    let rows = out
        .lines()
        .filter(|l| l.contains("Thread ") && (l.starts_with("* ") || l.starts_with("  ")))
        .count();
    assert_eq!(rows, 4, "four threads:\n{out}");
    assert_eq!(value(&out, 1), "1");
    assert_ne!(value(&out, 2), value(&out, 3), "{out}");
    assert_eq!(hex(&value(&out, 3)), symbol(prog, "all_started"));
    assert_eq!(stdout, "joined\n");
}

#[test]
fn dynamic_guest_libc_symbols() {
    let prog = basic_dyn();
    let (out, _) = session_to_exit(
        &[],
        prog,
        &[
            "break cmp",
            "continue",
            "bt",
            "info sharedlibrary",
            "delete",
            "continue",
        ],
    );
    assert!(out.contains("Breakpoint 1, cmp"), "{out}");
    // The caller of the comparison function is libc's qsort, symbolized from libc.so.6.
    assert!(
        out.lines()
            .any(|l| l.starts_with("#1") && l.contains("msort")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with('#') && l.contains("qsort")),
        "{out}"
    );
    assert!(out.contains("libc.so.6"), "{out}");
}

#[test]
fn violation_stops_at_the_ret_with_segv_cperr() {
    let prog = violation();
    for mode in ["kill", "continue"] {
        let opt = format!("--on-violation={mode}");
        let (out, end) = session(
            &["--shstk=on", &opt],
            prog,
            &[
                "continue",
                "p $_siginfo.si_signo",
                "p $_siginfo.si_code",
                "x/i $pc",
                "p $pc >= victim && $pc < main",
                "monitor shadow-stack",
                "monitor shstk-status",
                "monitor report",
                "continue",
            ],
        );
        assert!(
            out.contains("Program received signal SIGSEGV"),
            "{mode}:\n{out}"
        );
        assert_eq!(value(&out, 1), "11", "{mode}");
        // SEGV_CPERR (Linux include/uapi/asm-generic/siginfo.h).
        assert_eq!(value(&out, 2), "10", "{mode}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("=> ") && l.ends_with("ret")),
            "{mode}:\n{out}"
        );
        assert_eq!(value(&out, 3), "1", "{mode}");
        // The shadow stack still holds victim's real return address, in main.
        assert!(
            out.contains("#0 ") && out.contains(" main+"),
            "{mode}:\n{out}"
        );
        assert!(out.contains("enabled: yes"), "{out}");
        assert!(
            out.contains("return address does not match the shadow stack"),
            "{out}"
        );
        match mode {
            "kill" => {
                assert!(
                    out.contains("Program terminated with signal SIGSEGV"),
                    "{out}"
                );
                assert_eq!(end.status.signal(), Some(libc::SIGSEGV));
            }
            _ => assert_eq!(end.status.code(), Some(3), "audit mode goes on:\n{out}"),
        }
    }
}

#[test]
fn signals_stop_first_and_pass_as_gdb_says() {
    let prog = signal();
    let (out, end) = session(&[], prog, &["continue", "p $_siginfo.si_signo", "continue"]);
    assert!(out.contains("Program received signal SIGUSR1"), "{out}");
    assert_eq!(value(&out, 1), libc::SIGUSR1.to_string());
    assert_eq!(end.stdout, "handled\nafter\n");
    let (out, end) = session(&[], prog, &["continue", "signal 0"]);
    assert!(out.contains("Program received signal SIGUSR1"), "{out}");
    assert_eq!(end.stdout, "after\n", "signal 0 discards it");
}

#[test]
fn forked_child_runs_undebugged_and_exec_stops_with_sigtrap() {
    let prog = forkexec();
    let (out, stdout) = session_to_exit(
        &[],
        prog,
        &[
            "break marker",
            "continue",
            "p who",
            "continue",
            "p $_siginfo.si_signo",
            "p $_siginfo.si_code",
            "continue",
        ],
    );
    // Only the parent's marker(2) stops; the child's marker(1) ran undebugged.
    assert_eq!(out.matches("Breakpoint 1, marker").count(), 1, "{out}");
    assert_eq!(value(&out, 1), "2", "{out}");
    // execve: SIGTRAP, SI_USER (send_sig from the exec path, as for a traced process).
    assert!(out.contains("Program received signal SIGTRAP"), "{out}");
    assert_eq!(value(&out, 2), "5");
    assert_eq!(value(&out, 3), "0");
    assert!(out.contains("exited normally"), "{out}");
    assert_eq!(stdout, "child 7\n");
}

// ---- The protocol, without gdb ----

struct Client {
    s: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client { s }
    }

    fn send_raw(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Sends a packet and returns the reply's payload (acknowledging it).
    fn ask(&mut self, payload: &str) -> String {
        let sum = payload.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.send_raw(format!("${payload}#{sum:02x}").as_bytes());
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut b = [0u8; 1];
        // Skip acknowledgements up to the packet start.
        loop {
            self.s.read_exact(&mut b).unwrap();
            if b[0] == b'$' {
                break;
            }
        }
        let mut p = Vec::new();
        loop {
            self.s.read_exact(&mut b).unwrap();
            if b[0] == b'#' {
                break;
            }
            p.push(b[0]);
        }
        let mut cs = [0u8; 2];
        self.s.read_exact(&mut cs).unwrap();
        self.send_raw(b"+");
        String::from_utf8_lossy(&p).into_owned()
    }
}

fn le_hex(v: u64) -> String {
    v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn from_le_hex(s: &str) -> u64 {
    let b: Vec<u8> = (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    u64::from_le_bytes(b[..8].try_into().unwrap())
}

/// pl3_ssp's register number: its position in the target description.
fn pl3_ssp_regnum(xml: &str) -> usize {
    let mut n = 0;
    for part in xml.split("<reg ").skip(1) {
        if let Some(r) = part.split("regnum=\"").nth(1) {
            n = r.split('"').next().unwrap().parse().unwrap();
        }
        if part.starts_with("name=\"pl3_ssp\"") {
            return n;
        }
        n += 1;
    }
    panic!("no pl3_ssp register in the description");
}

#[test]
fn protocol_target_description_and_pl3_ssp_writes() {
    for shstk in ["on", "off"] {
        let opt = format!("--shstk={shstk}");
        let (g, mut c, sup, tid) = protocol_session(
            &[&opt],
            basic(),
            "multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386",
        );
        assert!(sup.contains("qXfer:features:read+"), "{sup}");
        assert!(sup.contains("qXfer:siginfo:read+"), "{sup}");
        let mut xml = String::new();
        loop {
            let r = c.ask(&format!(
                "qXfer:features:read:target.xml:{:x},400",
                xml.len()
            ));
            xml.push_str(&r[1..]);
            if r.starts_with('l') {
                break;
            }
            assert!(r.starts_with('m'), "{r}");
        }
        assert!(
            xml.contains("<feature name=\"org.gnu.gdb.i386.pl3_ssp\">"),
            "{xml}"
        );
        assert!(xml.contains("<reg name=\"pl3_ssp\" bitsize=\"64\" type=\"data_ptr\"/>"));
        for f in ["core", "sse", "linux", "segments"] {
            assert!(xml.contains(&format!("org.gnu.gdb.i386.{f}")), "{f}");
        }
        let n = pl3_ssp_regnum(&xml);
        assert_eq!(c.ask(&format!("Hg{tid}")), "OK");
        let cur = c.ask(&format!("p{n:x}"));
        if shstk == "off" {
            // No shadow stack: unavailable, and writes refused with ENODEV (19), as
            // ptrace(PTRACE_SETREGSET, NT_X86_SHSTK) answers.
            assert_eq!(cur, "xxxxxxxxxxxxxxxx");
            assert_eq!(c.ask(&format!("P{n:x}={}", le_hex(0x1000))), "E13");
        } else {
            let ssp = from_le_hex(&cur);
            assert!(ssp != 0 && ssp.is_multiple_of(8), "{ssp:#x}");
            // Misaligned and beyond TASK_SIZE_MAX: EINVAL (22).
            assert_eq!(c.ask(&format!("P{n:x}={}", le_hex(ssp + 4))), "E16");
            assert_eq!(
                c.ask(&format!("P{n:x}={}", le_hex(0x7fff_ffff_f000))),
                "E16"
            );
            assert_eq!(
                c.ask(&format!("p{n:x}")),
                cur,
                "a refused write changes nothing"
            );
            // A valid value is taken.
            assert_eq!(c.ask(&format!("P{n:x}={}", le_hex(ssp - 8))), "OK");
            assert_eq!(from_le_hex(&c.ask(&format!("p{n:x}"))), ssp - 8);
        }
        // Unmapped memory answers an error; mapped memory its bytes.
        assert!(c.ask("m10,8").starts_with('E'));
        let main = symbol(basic(), "main");
        assert_eq!(c.ask(&format!("m{main:x},1")).len(), 2);
        c.send_raw(b"$k#6b");
        let end = g.wait();
        assert_eq!(end.status.signal(), Some(libc::SIGKILL), "{}", end.stderr);
    }
}

#[test]
fn protocol_interrupt_and_siginfo() {
    let (g, mut c, _, tid) = protocol_session(&[], spin(), "multiprocess+;swbreak+;hwbreak+");
    // Run to main first, so the interrupt finds the program in its loop however early it
    // comes.
    let main = symbol(spin(), "main");
    assert_eq!(c.ask(&format!("Z0,{main:x},1")), "OK");
    let stop = c.ask("vCont;c");
    assert!(
        stop.starts_with("T05") && stop.contains("swbreak"),
        "{stop}"
    );
    assert_eq!(c.ask(&format!("z0,{main:x},1")), "OK");
    // Resume, then interrupt (Ctrl-C is the byte 0x03 outside packets): SIGINT stop.
    let sum = "vCont;c".bytes().fold(0u8, |a, b| a.wrapping_add(b));
    c.send_raw(format!("$vCont;c#{sum:02x}").as_bytes());
    c.send_raw(&[3]);
    let stop = c.reply();
    assert!(stop.starts_with("T02"), "{stop}");
    // The program is in its loop, in main.
    let pc = from_le_hex(&c.ask("p10"));
    assert!(pc >= main && pc < main + 64, "{pc:#x}");
    // $_siginfo: SIGINT (2) with si_code SI_USER (0), 128 bytes.
    assert_eq!(c.ask(&format!("Hg{tid}")), "OK");
    let si = c.ask("qXfer:siginfo:read::0,80");
    assert!(si.starts_with('l'), "{si}");
    let b = &si.as_bytes()[1..];
    assert_eq!(&b[0..4], &[2, 0, 0, 0]);
    assert_eq!(&b[8..12], &[0, 0, 0, 0]);
    c.send_raw(b"$k#6b");
    let end = g.wait();
    assert_eq!(end.status.signal(), Some(libc::SIGKILL));
}
