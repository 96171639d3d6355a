//! Real third-party program: the statically linked busybox from Debian's `busybox-static`,
//! run natively and under `cetbox run` with the same arguments, input, environment and working
//! directory; stdout, stderr and exit status must agree byte for byte.

mod common;

use common::{parallel_map, run, Outcome, Spec, Status, Stdin, TempDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

struct Case {
    name: &'static str,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    /// Run in the fixed file tree instead of an empty directory.
    in_tree: bool,
}

fn case(name: &'static str, args: &[&str], stdin: Option<&[u8]>) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: stdin.map(<[u8]>::to_vec),
        in_tree: false,
    }
}

fn tree_case(name: &'static str, args: &[&str]) -> Case {
    Case {
        in_tree: true,
        ..case(name, args, None)
    }
}

const TEXT: &[u8] =
    b"banana 3\napple 10\ncherry 7\napple 10\ndate 1\nbanana 3\nelderberry 42\nfig 0\n";

fn cases() -> Vec<Case> {
    let mut lines = Vec::new();
    for i in 0..2000u32 {
        lines.extend_from_slice(
            format!("line {i} value {}\n", i.wrapping_mul(2654435761) % 1000).as_bytes(),
        );
    }
    let bin: Vec<u8> = (0..=255u8)
        .chain((0..300u32).map(|i| (i * 7) as u8))
        .collect();
    vec![
        case("echo", &["echo", "hello", "world", "-n", "x y"], None),
        case("echo -e", &["echo", "-e", "tab\\there\\nnew\\x41\\0101"], None),
        case("printf", &["printf", "%s=%5d|%-6.2f|%x|%o|%c|%e\\n", "k", "42", "3.14159", "255", "8", "Z", "12345.678"], None),
        case("printf reuse", &["printf", "[%s:%d]\\n", "a", "1", "b", "2", "c"], None),
        case("seq", &["seq", "1", "3", "40"], None),
        case("seq float", &["seq", "-w", "0.5", "0.25", "3"], None),
        case("sort", &["sort"], Some(TEXT)),
        case("sort -n -r -k2", &["sort", "-n", "-r", "-k2"], Some(TEXT)),
        case("sort -u", &["sort", "-u"], Some(TEXT)),
        case("sort big", &["sort", "-t", " ", "-k4,4n", "-k2,2n"], Some(&lines)),
        case("uniq -c", &["uniq", "-c"], Some(b"a\na\nb\nc\nc\nc\na\n")),
        case("wc", &["wc"], Some(&lines)),
        case("wc -l -w -c", &["wc", "-l", "-w", "-c"], Some(TEXT)),
        case("md5sum", &["md5sum"], Some(&lines)),
        case("sha256sum", &["sha256sum"], Some(&lines)),
        case("sha1sum", &["sha1sum"], Some(TEXT)),
        case("sed", &["sed", "-e", "s/\\([a-z]*\\) \\([0-9]*\\)/\\2:\\1/", "-e", "/^1/d", "-e", "3q"], Some(TEXT)),
        case("sed big", &["sed", "-n", "s/value \\([0-9]*5\\)$/V=\\1/p"], Some(&lines)),
        case("awk", &["awk", "{ s[$1] += $2; n++ } END { for (k in s) t += s[k]; printf \"%d %d %.3f\\n\", n, t, t / n }"], Some(TEXT)),
        case("awk arith", &["awk", "BEGIN { for (i = 1; i <= 10; i++) printf \"%.6g %.6g %d %s\\n\", i / 7, i * 1.5e10, int(i * 3.7), substr(\"abcdefghij\", i, 3) }"], None),
        case("awk fields", &["awk", "-F", " ", "NR % 100 == 0 { print NR, $2 * 2, length($0), toupper($1) }"], Some(&lines)),
        case("grep", &["grep", "-n", "an"], Some(TEXT)),
        case("grep -E -c", &["grep", "-E", "-c", "value (1|2)[0-9]$"], Some(&lines)),
        case("grep no match", &["grep", "zzz"], Some(TEXT)),
        case("tr", &["tr", "a-z", "A-Z"], Some(TEXT)),
        case("tr -d -s", &["tr", "-s", "a-z", "-d", "0-9"], Some(TEXT)),
        case("cut", &["cut", "-d", " ", "-f", "2"], Some(TEXT)),
        case("cut -c", &["cut", "-c", "2-5"], Some(TEXT)),
        case("head", &["head", "-n", "3"], Some(&lines)),
        case("head -c", &["head", "-c", "100"], Some(&lines)),
        case("tail", &["tail", "-n", "5"], Some(&lines)),
        case("tail +", &["tail", "-n", "+1995"], Some(&lines)),
        case("expr mul", &["expr", "6", "*", "7"], None),
        case("expr zero", &["expr", "5", "-", "5"], None),
        case("expr match", &["expr", "hello123", ":", "[a-z]*\\([0-9]*\\)"], None),
        case("expr error", &["expr", "1", "/", "0"], None),
        case("basename", &["basename", "/usr/local/lib/libfoo.so.1", ".1"], None),
        case("dirname", &["dirname", "/usr/local/lib/libfoo.so.1"], None),
        case("od", &["od", "-A", "x", "-t", "x1", "-v"], Some(&bin)),
        case("od -c", &["od", "-c"], Some(TEXT)),
        case("xxd", &["xxd"], Some(&bin)),
        case("xxd -p", &["xxd", "-p"], Some(TEXT)),
        case("factor", &["factor", "1234567890123", "97", "600851475143", "2147483647", "999999000001", "123456789012"], None),
        case("date -u -d @0", &["date", "-u", "-d", "@0"], None),
        case("date format", &["date", "-u", "-d", "@1234567890", "+%Y-%m-%d %H:%M:%S %j %a %s"], None),
        case("cat missing", &["cat", "/nonexistent/cetbox-file"], None),
        case("true", &["true"], None),
        case("false", &["false"], None),
        case("sh arithmetic", &["sh", "-c", "i=0; s=0; while [ $i -lt 200 ]; do s=$((s + i * i)); i=$((i + 1)); done; echo $s; exit 3"], None),
        case("sh builtins", &["sh", "-c", "x=abcdef; echo ${#x} ${x%def} ${x#ab}; set -- a b c; echo $# $2; printf '%s\\n' \"$@\" | wc -l"], None),
        tree_case("find", &["find", "."]),
        tree_case("find -type f -name", &["find", ".", "-type", "f", "-name", "*.txt"]),
        tree_case("ls -R", &["ls", "-R", "-1"]),
        tree_case("md5sum files", &["md5sum", "a.txt", "sub/b.txt", "sub/deeper/c.bin"]),
        tree_case("tar create", &["tar", "cf", "-", "."]),
        tree_case("tar list", &["tar", "tvf", "../tree.tar"]),
        tree_case("du", &["du", "-a", "-k", "."]),
        tree_case("cmp", &["cmp", "a.txt", "sub/b.txt"]),
        tree_case("diff", &["diff", "a.txt", "sub/b.txt"]),
    ]
}

/// A fixed tree with fixed contents and timestamps.
fn make_tree(base: &Path) -> PathBuf {
    let tree = base.join("tree");
    let files: [(&str, Vec<u8>); 5] = [
        ("a.txt", b"alpha\nbeta\ngamma\n".to_vec()),
        ("sub/b.txt", b"alpha\nBETA\ngamma\ndelta\n".to_vec()),
        (
            "sub/deeper/c.bin",
            (0..5000u32).map(|i| (i * 31 % 251) as u8).collect(),
        ),
        ("sub/deeper/d.txt", b"".to_vec()),
        ("z.txt", b"last\n".to_vec()),
    ];
    for (name, data) in &files {
        let p = tree.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    }
    // Fixed mtimes so tar archives do not depend on when the test ran.
    let stamp = "200001020304.05";
    let status = common::output_within(
        std::process::Command::new(BUSYBOX)
            .args([
                "find", ".", "-exec", BUSYBOX, "touch", "-t", stamp, "{}", "+",
            ])
            .current_dir(&tree),
        common::TOOL_TIMEOUT,
    )
    .status;
    assert!(status.success());
    let out = common::output_within(
        std::process::Command::new(BUSYBOX)
            .args(["tar", "cf", "../tree.tar", "."])
            .current_dir(&tree),
        common::TOOL_TIMEOUT,
    )
    .status;
    assert!(out.success());
    tree
}

/// `CETBOX_GUEST_NATIVE_ONLY=1`: compare two native runs (checks the cases themselves).
fn native_only() -> bool {
    std::env::var("CETBOX_GUEST_NATIVE_ONLY").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn require_busybox() {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing: install the statically linked busybox with \
         `apt-get install -y busybox-static` (the busybox tests cannot run without it)"
    );
}

#[test]
fn busybox_applets() {
    let cetbox_args: Vec<String> = std::env::var("CETBOX_GUEST_CETBOX_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let results = applets(&cetbox_args, false);
    let pipe = yes_head(&cetbox_args);
    report(results.into_iter().chain(std::iter::once(pipe)).collect());
}

/// Cases that report shadow-stack violations under `--shstk=on` when busybox is not built for
/// shadow stacks (Debian's busybox-static links a glibc whose __longjmp has no CET code): the
/// shell's `exit` with a status unwinds to its main loop with longjmp. `audit_problems`
/// checks that these and only these report, and never in an object marked SHSTK.
const SHSTK_EXPECTED: &[&str] = &["sh arithmetic"];

/// Every case again with shadow stacks on (audit mode): output identical to the native run,
/// violations exactly in the listed cases.
#[test]
fn busybox_applets_with_shadow_stacks_on() {
    let results = applets(&[], true);
    report(results);
}

/// Runs every case natively and under cetbox with `cetbox_args` (plus, with `audit`, the
/// `--shstk=on` audit options, checking the violations reported against SHSTK_EXPECTED).
fn applets(cetbox_args: &[String], audit: bool) -> Vec<(String, bool, String)> {
    require_busybox();
    let base = TempDir::new("busybox");
    let tree = make_tree(&base.path);
    parallel_map(cases(), common::worker_threads(), |c| {
        let dir = TempDir::new("bb");
        let mut spec = Spec::new(BUSYBOX).args(c.args.iter().cloned());
        spec.cwd = Some(if c.in_tree {
            tree.clone()
        } else {
            dir.path.clone()
        });
        spec.stdin = match &c.stdin {
            Some(b) => Stdin::Bytes(b.clone()),
            None => Stdin::Null,
        };
        spec.timeout = Duration::from_secs(60);
        let native = run(&spec);
        let report_dir = TempDir::new("bb-report");
        let report_file = report_dir.path.join("cet.jsonl");
        let mut args = cetbox_args.to_vec();
        if audit {
            args.extend(common::shstk_audit_args(&report_file));
        }
        let emulated = if native_only() {
            run(&spec)
        } else {
            let mut under = spec.under_cetbox(&args);
            under.timeout = Duration::from_secs(120);
            run(&under)
        };
        let (mut line, mut pass, mut details) = check(c.name, &native, &emulated);
        if audit {
            let found = common::violations_in(&report_file);
            let listed = SHSTK_EXPECTED.contains(&c.name);
            for p in common::audit_problems(c.name, Path::new(BUSYBOX), listed, &found) {
                pass = false;
                details.push_str(&format!("    {p}\n"));
                line = line.replacen("ok  ", "FAIL", 1);
            }
        }
        (line, pass, details)
    })
}

/// `busybox yes | busybox head -n 5`: the writer is killed by SIGPIPE (or fails with EPIPE)
/// once the reader exits. Both halves run under cetbox in the emulated pipeline.
fn yes_head(cetbox_args: &[String]) -> (String, bool, String) {
    fn pipeline(wrap: Option<&[String]>) -> Outcome {
        let start = std::time::Instant::now();
        let mk = |args: &[&str]| {
            let mut cmd = match wrap {
                Some(extra) => {
                    let mut c = std::process::Command::new(common::cetbox_bin());
                    c.arg("run").args(extra).arg("--").arg(BUSYBOX);
                    c
                }
                None => std::process::Command::new(BUSYBOX),
            };
            cmd.args(args).env_clear().envs(common::fixed_env());
            cmd
        };
        let mut yes = mk(&["yes", "cetbox"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn yes");
        let yes_out = yes.stdout.take().expect("pipe");
        let head = common::output_keeping_stdin(
            mk(&["head", "-n", "5"]).stdin(yes_out),
            common::TOOL_TIMEOUT,
        );
        let yes_status = common::wait_within(&mut yes, common::TOOL_TIMEOUT);
        let mut stderr = Vec::new();
        if let Some(mut e) = yes.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_end(&mut stderr);
        }
        use std::os::unix::process::ExitStatusExt;
        let status = match (yes_status.code(), yes_status.signal()) {
            (Some(c), _) => Status::Exited(c),
            (_, Some(s)) => Status::Signaled(s),
            _ => Status::SpawnFailed("?".into()),
        };
        let mut stdout = head.stdout;
        stdout.extend_from_slice(format!("[head status {:?}]\n", head.status.code()).as_bytes());
        stderr.extend_from_slice(&head.stderr);
        Outcome {
            stdout,
            stderr,
            status,
            elapsed: start.elapsed(),
        }
    }
    let native = pipeline(None);
    let emulated = pipeline(if native_only() {
        None
    } else {
        Some(cetbox_args)
    });
    check("yes | head", &native, &emulated)
}

fn check(name: &str, native: &Outcome, emulated: &Outcome) -> (String, bool, String) {
    common::check(&format!("busybox {name}"), native, emulated)
}

fn report(results: Vec<(String, bool, String)>) {
    let mut passed = 0;
    let mut failed = 0;
    let mut msg = String::new();
    for (line, pass, details) in &results {
        println!("{line}");
        if *pass {
            passed += 1;
        } else {
            failed += 1;
            println!("{}", details.trim_end());
            msg.push_str(&format!("{line}\n{}\n", details.trim_end()));
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    println!("{summary}");
    if failed > 0 {
        panic!("{summary}\n{msg}");
    }
    // The determinism check never ran cetbox: it must not look like a passing test of it.
    assert!(
        !native_only(),
        "CETBOX_GUEST_NATIVE_ONLY: the cases are deterministic natively ({summary}), but \
         cetbox was NOT run; this mode never reports a pass"
    );
}

#[test]
fn busybox_is_static() {
    require_busybox();
    // cetbox runs it without a sysroot only if it has no PT_INTERP; check the premise.
    let data = std::fs::read(BUSYBOX).expect("read busybox");
    assert_eq!(&data[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(data[4], 2, "not a 64-bit ELF");
    let phoff = u64::from_le_bytes(data[32..40].try_into().expect("8 bytes")) as usize;
    let phentsize = u16::from_le_bytes([data[54], data[55]]) as usize;
    let phnum = u16::from_le_bytes([data[56], data[57]]) as usize;
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes"));
        assert_ne!(
            p_type, 3,
            "{BUSYBOX} has PT_INTERP: install busybox-static, not busybox"
        );
    }
}
