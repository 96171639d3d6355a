//! Core dumps of guests (crates/linux/src/coredump): a guest that dies of a core-dumping
//! signal leaves an ELF core file as Linux writes it (fs/binfmt_elf.c elf_core_dump), readable
//! by gdb and readelf, with the shadow-stack pointer in NT_X86_SHSTK
//! (arch/x86/kernel/fpu/regset.c ssp_get: the 8-byte user SSP).
//!
//! Guest: tests/shstk/coredump.c. Expected values come from the program and the spec: the
//! faulting RET of smash() with RAX = 0x1234567890, SIGSEGV with SEGV_CPERR (10) for a
//! shadow-stack violation, the SSP one entry below the SSP main printed (the CALL's push; a
//! #CP'ing RET pops nothing), and for an abort() the same note sequence as a native core
//! written by this host's kernel.
//!
//! Core files land where /proc/sys/kernel/core_pattern says, relative to the guest's cwd; the
//! tests run each guest in its own directory. With a pipe pattern (`|program`) cetbox must
//! write no core and say so in one line: the tests check that instead.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

fn prog() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("coredump");
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("coredump");
        let st = Command::new("gcc")
            .args([
                "-O1",
                "-g",
                "-static",
                "-pthread",
                "-fno-omit-frame-pointer",
                "-fno-stack-protector",
                "-fcf-protection=none",
                "-o",
            ])
            .arg(&exe)
            .arg(common::repo_root().join("tests/shstk/coredump.c"))
            .status()
            .expect("gcc must be installed");
        assert!(st.success(), "building coredump.c failed");
        exe
    })
}

/// A fresh directory for one run.
fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("coredump")
        .join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Run {
    stdout: String,
    stderr: String,
    signal: Option<i32>,
    /// WCOREDUMP of the wait status this test (a native parent) received.
    core_dumped: bool,
}

/// Runs `program args` in `dir` with RLIMIT_CORE = `core_limit`, killed after a timeout.
fn run_in(dir: &Path, program: &Path, args: &[&str], core_limit: u64) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            let lim = libc::rlimit {
                rlim_cur: core_limit,
                rlim_max: core_limit,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            // SAFETY: killing our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            panic!("{} {args:?} timed out", program.display());
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "cetbox panicked:\n{stderr}");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        signal: out.status.signal(),
        core_dumped: out.status.core_dumped(),
    }
}

fn cetbox_in(dir: &Path, opts: &[&str], args: &[&str], core_limit: u64) -> Run {
    let mut a: Vec<&str> = vec!["run"];
    a.extend_from_slice(opts);
    a.push("--");
    let p = prog().to_str().unwrap().to_string();
    a.push(&p);
    a.extend_from_slice(args);
    run_in(dir, &common::cetbox_bin(), &a, core_limit)
}

fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap()
        .trim_end()
        .to_string()
}

/// Where the kernel (and cetbox) put the core of process `pid` killed by `sig`, for the
/// patterns a test machine plausibly has: plain names with %p %P %i %I %e %s %%, and
/// core_uses_pid.
fn core_path(dir: &Path, pid: i32, sig: i32) -> PathBuf {
    let pat = core_pattern();
    let mut name = String::new();
    let mut has_pid = false;
    let mut it = pat.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            name.push(c);
            continue;
        }
        match it.next() {
            Some('p' | 'P' | 'i' | 'I') => {
                has_pid = true;
                name += &pid.to_string();
            }
            Some('e') => name += "coredump",
            Some('s') => name += &sig.to_string(),
            Some('%') => name.push('%'),
            other => panic!("core_pattern {pat:?} uses %{other:?}, which this test cannot predict"),
        }
    }
    let uses_pid =
        std::fs::read_to_string("/proc/sys/kernel/core_uses_pid").is_ok_and(|s| s.trim() != "0");
    if uses_pid && !has_pid {
        name += &format!(".{pid}");
    }
    dir.join(name)
}

fn pid_of(stdout: &str) -> i32 {
    let p = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .expect("pid= line");
    p.parse().unwrap()
}

fn ssp_of(stdout: &str) -> u64 {
    let s = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ssp=0x"))
        .expect("ssp= line");
    u64::from_str_radix(s, 16).unwrap()
}

/// (name, type, descriptor) of every note in the core's PT_NOTE segments, in file order.
fn notes(core: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let u16_at = |o: usize| u16::from_le_bytes(core[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(core[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(core[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&core[..4], b"\x7fELF");
    assert_eq!(u16_at(16), 4, "ET_CORE");
    assert_eq!(u16_at(18), 62, "EM_X86_64");
    let (phoff, phnum) = (u64_at(32), u16_at(56));
    let mut out = Vec::new();
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        if u32_at(ph) != 4 {
            continue;
        }
        let (mut o, end) = (u64_at(ph + 8), u64_at(ph + 8) + u64_at(ph + 32));
        while o < end {
            let (namesz, descsz, kind) =
                (u32_at(o) as usize, u32_at(o + 4) as usize, u32_at(o + 8));
            let name = String::from_utf8_lossy(&core[o + 12..o + 12 + namesz - 1]).into_owned();
            let d = o + 12 + namesz.next_multiple_of(4);
            out.push((name, kind, core[d..d + descsz].to_vec()));
            o = d + descsz.next_multiple_of(4);
        }
    }
    out
}

const NT_PRSTATUS: u32 = 1;
const NT_PRFPREG: u32 = 2;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_X86_XSTATE: u32 = 0x202;
const NT_X86_SHSTK: u32 = 0x204;
const NT_SIGINFO: u32 = 0x5349_4749;
const NT_FILE: u32 = 0x4649_4c45;

fn le32(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// gdb's major version (`GNU gdb (Debian 13.1-3) 13.1`).
fn gdb_major() -> u32 {
    let out = Command::new("gdb").arg("--version").output().expect("gdb");
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let last = first.rsplit(' ').next().unwrap_or("");
    last.split('.').next().unwrap_or("0").parse().unwrap_or(0)
}

fn gdb(core: &Path, cmds: &[&str]) -> String {
    let mut a: Vec<String> = vec!["-batch".into(), "-nx".into()];
    for c in cmds {
        a.push("-ex".into());
        a.push(c.to_string());
    }
    a.push(prog().to_str().unwrap().into());
    a.push(core.to_str().unwrap().into());
    let args: Vec<&str> = a.iter().map(String::as_str).collect();
    let r = run_in(core.parent().unwrap(), Path::new("/usr/bin/gdb"), &args, 0);
    r.stdout + &r.stderr
}

fn readelf_notes(core: &Path) -> Vec<String> {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(core)
        .output()
        .expect("readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("  CORE") || l.starts_with("  LINUX"))
        .map(|l| {
            // "  CORE   0x00000150\tNT_PRSTATUS (prstatus structure)" -> "CORE NT_PRSTATUS (...)"
            let mut w = l.split_whitespace();
            let owner = w.next().unwrap_or("");
            let _size = w.next();
            format!("{owner} {}", w.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

fn pipe_pattern() -> bool {
    core_pattern().starts_with('|')
}

/// A shadow-stack violation (#CP at smash's RET) dumps core: the note sequence of Linux, the
/// registers at the RET, SIGSEGV/SEGV_CPERR, and the SSP in NT_X86_SHSTK.
#[test]
fn violation_core_has_registers_and_the_shadow_stack_pointer() {
    let dir = scratch("violation");
    let r = cetbox_in(&dir, &["--shstk=on"], &["ret"], libc::RLIM_INFINITY);
    assert_eq!(r.signal, Some(libc::SIGSEGV), "{}", r.stderr);
    let pid = pid_of(&r.stdout);
    if pipe_pattern() {
        assert!(
            r.stderr
                .contains("no core file written: core_pattern pipes"),
            "{}",
            r.stderr
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        return;
    }
    let path = core_path(&dir, pid, libc::SIGSEGV);
    let core =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), r.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o077,
        0,
        "cores are created mode 0600 (minus umask)"
    );

    let n = notes(&core);
    let seq: Vec<(&str, u32)> = n.iter().map(|(a, k, _)| (a.as_str(), *k)).collect();
    assert_eq!(
        seq,
        [
            ("CORE", NT_PRSTATUS),
            ("CORE", NT_PRPSINFO),
            ("CORE", NT_SIGINFO),
            ("CORE", NT_AUXV),
            ("CORE", NT_FILE),
            ("CORE", NT_PRFPREG),
            ("LINUX", NT_X86_XSTATE),
            ("LINUX", NT_X86_SHSTK),
        ]
    );
    let prstatus = &n[0].2;
    assert_eq!(prstatus.len(), 336);
    assert_eq!(le32(prstatus, 0), libc::SIGSEGV, "pr_info.si_signo");
    assert_eq!(le32(prstatus, 32), pid, "pr_pid");
    // pr_reg: rax is word 10, rip word 16 (struct user_regs_struct).
    assert_eq!(le64(prstatus, 112 + 8 * 10), 0x1234567890, "rax at the RET");
    let siginfo = &n[2].2;
    assert_eq!(
        (le32(siginfo, 0), le32(siginfo, 8)),
        (libc::SIGSEGV, 10),
        "SIGSEGV with SEGV_CPERR"
    );
    let psinfo = &n[1].2;
    assert_eq!(&psinfo[40..48], b"coredump", "pr_fname");
    let args = String::from_utf8_lossy(&psinfo[56..136]);
    assert!(
        args.ends_with(" ret \0") || args.contains("coredump ret "),
        "pr_psargs {args:?}"
    );
    let ssp = ssp_of(&r.stdout);
    assert_eq!(
        n[7].2,
        (ssp - 8).to_le_bytes(),
        "NT_X86_SHSTK holds the SSP at the fault"
    );

    // readelf lists every note (binutils 2.40 names 0x204 "Unknown note type").
    let listed = readelf_notes(&path);
    assert_eq!(listed.len(), 8, "{listed:?}");
    assert!(listed[0].starts_with("CORE NT_PRSTATUS"), "{listed:?}");
    assert!(
        listed[7] == "LINUX Unknown note type: (0x00000204)"
            || listed[7].starts_with("LINUX NT_X86_SHSTK"),
        "{listed:?}"
    );

    // gdb: the faulting RET in frame #0, the registers, and $pl3_ssp where gdb reads the note.
    let g = gdb(
        &path,
        &["bt 1", "x/i $pc", "info registers rax", "p/x $pl3_ssp"],
    );
    assert!(g.contains("Program terminated with signal SIGSEGV"), "{g}");
    assert!(g.contains("#0  0x") && g.contains(" in smash ()"), "{g}");
    assert!(
        g.lines().any(|l| l.starts_with("=> 0x")
            && l.contains("<smash+")
            && l.trim_end().ends_with("ret")),
        "{g}"
    );
    assert!(g.contains("rax            0x1234567890"), "{g}");
    if gdb_major() >= 15 {
        assert!(g.contains(&format!("= {:#x}", ssp - 8)), "{g}");
    } else {
        // GDB learned NT_X86_SHSTK ($pl3_ssp) in version 15; older ones have no such register.
        assert!(g.contains("$1 = void"), "{g}");
    }
}

/// Every thread gets NT_PRSTATUS and its regsets, the dumping thread first; each has its own
/// shadow stack and so its own NT_X86_SHSTK; gdb sees the other threads blocked in read().
#[test]
fn threads_each_have_their_notes() {
    let dir = scratch("threads");
    let r = cetbox_in(&dir, &["--shstk=on"], &["ret-threads"], libc::RLIM_INFINITY);
    assert_eq!(r.signal, Some(libc::SIGSEGV), "{}", r.stderr);
    if pipe_pattern() {
        assert!(r.stderr.contains("no core file written"), "{}", r.stderr);
        return;
    }
    let pid = pid_of(&r.stdout);
    let path = core_path(&dir, pid, libc::SIGSEGV);
    let core = std::fs::read(&path).unwrap();
    let n = notes(&core);
    let kinds: Vec<u32> = n.iter().map(|x| x.1).collect();
    let thread = [NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE, NT_X86_SHSTK];
    let mut expected = vec![NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE];
    expected.extend_from_slice(&thread[1..]);
    expected.extend_from_slice(&thread);
    expected.extend_from_slice(&thread);
    assert_eq!(kinds, expected);
    let tids: Vec<i32> = n
        .iter()
        .filter(|x| x.1 == NT_PRSTATUS)
        .map(|x| le32(&x.2, 32))
        .collect();
    assert_eq!(tids[0], pid, "the dumping thread first");
    assert!(
        tids[1] != pid && tids[2] != pid && tids[1] != tids[2],
        "{tids:?}"
    );
    let ssps: Vec<u64> = n
        .iter()
        .filter(|x| x.1 == NT_X86_SHSTK)
        .map(|x| le64(&x.2, 0))
        .collect();
    assert_eq!(ssps[0], ssp_of(&r.stdout) - 8);
    assert!(
        ssps[1] != ssps[0] && ssps[2] != ssps[0] && ssps[1] != ssps[2],
        "{ssps:x?}"
    );
    let g = gdb(&path, &["info threads"]);
    assert_eq!(g.matches(" in read ()").count(), 2, "{g}");
    assert!(g.contains("in smash ()"), "{g}");
}

/// RLIMIT_CORE = 0 (the usual default): no core, as Linux.
#[test]
fn no_core_without_rlimit_core() {
    let dir = scratch("nolimit");
    let r = cetbox_in(&dir, &["--shstk=on"], &["ret"], 0);
    assert_eq!(r.signal, Some(libc::SIGSEGV));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no file");
    assert!(!r.stderr.contains("core file"), "{}", r.stderr);
}

/// The parent's view of a child that dumped core (fs/coredump.c coredump_finish sets 0x80
/// in the exit code when the core was written; kernel/exit.c wait_task_zombie reports it as
/// WCOREDUMP to wait4 and as CLD_DUMPED to waitid), and of one whose RLIMIT_CORE of 0 kept
/// it from dumping: compared with the same program run natively, and checked against those
/// rules. Each run is in its own directory, where the cores land.
#[test]
fn parent_sees_the_core_dumped_bit() {
    let ndir = scratch("wait-native");
    let native = run_in(&ndir, prog(), &["wait-status"], libc::RLIM_INFINITY);
    let cdir = scratch("wait-cetbox");
    let emu = cetbox_in(&cdir, &[], &["wait-status"], libc::RLIM_INFINITY);
    let dumped = "RLIMIT_CORE unlimited: wait4 1, signaled 1, signal 6, core dumped 1\n\
                  RLIMIT_CORE unlimited: waitid 0, pid 1, si_code CLD_DUMPED, status 6\n";
    let not_dumped = "RLIMIT_CORE unlimited: wait4 1, signaled 1, signal 6, core dumped 0\n\
                      RLIMIT_CORE unlimited: waitid 0, pid 1, si_code CLD_KILLED, status 6\n";
    let no_limit = "RLIMIT_CORE 0: wait4 1, signaled 1, signal 6, core dumped 0\n\
                    RLIMIT_CORE 0: waitid 0, pid 1, si_code CLD_KILLED, status 6\n";
    if pipe_pattern() {
        // A pipe pattern: cetbox runs no helper and writes no core (README), so its children
        // have no core-dumped bit; the native run's depends on the host's helper.
        assert_eq!(
            emu.stdout,
            format!("{not_dumped}{no_limit}"),
            "{}",
            emu.stderr
        );
        return;
    }
    let expected = format!("{dumped}{no_limit}");
    assert_eq!(native.stdout, expected, "native run");
    assert_eq!(emu.stdout, expected, "cetbox run\n{}", emu.stderr);
}

/// A native parent (this test) of `cetbox run` sees the core-dumped bit when the guest's core
/// was written, as it does for the program run natively (fs/coredump.c sets it when the core
/// was written): cetbox has the host kernel dump a small core of itself into a tmpfs of its
/// own mount namespace (coredump/host_bit.rs), which needs root or CAP_SYS_ADMIN; without
/// them the bit is missing (README, Known limits), which is what this test then expects. The
/// guest's core stays the only file in the directory, and it is the guest's. With RLIMIT_CORE
/// 0 neither run has the bit.
#[test]
fn native_parent_sees_the_core_dumped_bit() {
    if pipe_pattern() {
        // cetbox writes no core for a pipe pattern, so there is no bit to give.
        let r = cetbox_in(&scratch("bit-pipe"), &[], &["abort"], libc::RLIM_INFINITY);
        assert!(!r.core_dumped);
        return;
    }
    let ndir = scratch("bit-native");
    let native = run_in(&ndir, prog(), &["abort"], libc::RLIM_INFINITY);
    assert_eq!(native.signal, Some(libc::SIGABRT));
    assert!(native.core_dumped, "native run: no core-dumped bit");
    let cdir = scratch("bit-cetbox");
    let emu = cetbox_in(&cdir, &[], &["abort"], libc::RLIM_INFINITY);
    assert_eq!(emu.signal, Some(libc::SIGABRT), "{}", emu.stderr);
    // SAFETY: geteuid has no preconditions.
    let privileged = unsafe { libc::geteuid() } == 0;
    assert_eq!(emu.core_dumped, privileged, "cetbox run\n{}", emu.stderr);
    let core = core_path(&cdir, pid_of(&emu.stdout), libc::SIGABRT);
    let files: Vec<_> = std::fs::read_dir(&cdir).unwrap().collect();
    assert_eq!(files.len(), 1, "only the guest's core: {files:?}");
    let bytes = std::fs::read(&core).expect("the guest's core");
    // NT_PRPSINFO's pr_fname (struct elf_prpsinfo, offset 40): the guest's name, not cetbox's.
    let fname = notes(&bytes)
        .into_iter()
        .find(|(_, ty, _)| *ty == 3)
        .map(|(_, _, d)| d[40..56].to_vec())
        .expect("NT_PRPSINFO");
    assert!(
        fname.starts_with(b"coredump\0"),
        "the guest's core, not cetbox's: {:?}",
        String::from_utf8_lossy(&fname)
    );
    for (tag, prog_run) in [("native", true), ("cetbox", false)] {
        let dir = scratch(&format!("bit-nolimit-{tag}"));
        let r = if prog_run {
            run_in(&dir, prog(), &["abort"], 0)
        } else {
            cetbox_in(&dir, &[], &["abort"], 0)
        };
        assert_eq!(r.signal, Some(libc::SIGABRT), "{tag}");
        assert!(
            !r.core_dumped,
            "{tag}: RLIMIT_CORE 0, yet the core-dumped bit"
        );
    }
}

/// abort() in a two-thread process: cetbox's core lists the same notes, in the same order, as
/// the core this host's kernel writes for the same program run natively. (Kernels from 6.11
/// add one NT_X86_XSAVE_LAYOUT note (0x205) describing the host CPU's XSAVE layout; cetbox's
/// CPU model has no extended XSAVE components and writes none, as Linux 6.6.)
#[test]
fn abort_core_matches_the_native_note_sequence() {
    let ndir = scratch("abort-native");
    let native = run_in(&ndir, prog(), &["abort"], libc::RLIM_INFINITY);
    assert_eq!(native.signal, Some(libc::SIGABRT));
    let cdir = scratch("abort-cetbox");
    let emu = cetbox_in(&cdir, &[], &["abort"], libc::RLIM_INFINITY);
    assert_eq!(emu.signal, Some(libc::SIGABRT), "{}", emu.stderr);
    if pipe_pattern() {
        assert!(
            emu.stderr.contains("no core file written"),
            "{}",
            emu.stderr
        );
        return;
    }
    let nlist: Vec<String> =
        readelf_notes(&core_path(&ndir, pid_of(&native.stdout), libc::SIGABRT))
            .into_iter()
            .filter(|l| l != "LINUX Unknown note type: (0x00000205)" && !l.contains("XSAVE_LAYOUT"))
            .collect();
    let clist = readelf_notes(&core_path(&cdir, pid_of(&emu.stdout), libc::SIGABRT));
    assert_eq!(clist, nlist);
    // The process notes, the dumping thread's two regsets, three notes per other thread.
    assert_eq!(clist.len(), 5 + 2 + 2 * 3, "{clist:?}");
    let g = gdb(
        &core_path(&cdir, pid_of(&emu.stdout), libc::SIGABRT),
        &["bt"],
    );
    assert!(g.contains("Program terminated with signal SIGABRT"), "{g}");
    assert!(g.contains(" in abort ()"), "{g}");
}
