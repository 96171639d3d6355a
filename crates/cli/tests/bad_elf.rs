//! `cetbox run` on things that cannot be run: each must give exactly one diagnostic line on
//! stderr that starts with "cetbox: " and names the file, exit like a shell would (127 when the
//! file does not exist, 126 when it exists but cannot be executed), and never panic.

mod common;

use common::{run, Spec, Status, TempDir};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A real x86-64 ELF file to corrupt: the cetbox binary itself.
fn good_elf() -> Vec<u8> {
    let data = std::fs::read(common::cetbox_bin()).expect("read cetbox binary");
    assert_eq!(&data[..4], b"\x7fELF");
    assert_eq!(data[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([data[18], data[19]]), 62, "EM_X86_64");
    data
}

fn write_exec(dir: &Path, name: &str, data: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write test file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p
}

struct Expect {
    what: &'static str,
    path: PathBuf,
    code: i32,
}

fn check(e: &Expect) -> Result<(), String> {
    let mut spec = Spec::new(common::cetbox_bin()).args(["run", "--"]);
    spec.args.push(e.path.clone().into_os_string());
    spec.args.push("arg1".into());
    spec.timeout = Duration::from_secs(30);
    let out = run(&spec);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if stderr.contains("panicked") {
        problems.push("cetbox panicked".to_string());
    }
    if out.status != Status::Exited(e.code) {
        problems.push(format!(
            "expected exit status {}, got {}",
            e.code, out.status
        ));
    }
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 {
        problems.push(format!(
            "expected exactly one stderr line, got {}",
            lines.len()
        ));
    }
    if let Some(first) = lines.first() {
        if !first.starts_with("cetbox: ") {
            problems.push("stderr line does not start with \"cetbox: \"".into());
        }
        let name = e.path.to_string_lossy();
        if !first.contains(name.as_ref()) {
            problems.push(format!("stderr line does not name the file {name}"));
        }
    }
    if !out.stdout.is_empty() {
        problems.push(format!(
            "unexpected stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    if problems.is_empty() {
        println!("ok   {:<36} {} | {}", e.what, out.status, stderr.trim_end());
        Ok(())
    } else {
        Err(format!(
            "FAIL {}: {}\n    stderr: {:?}",
            e.what,
            problems.join("; "),
            stderr
        ))
    }
}

#[test]
fn bad_programs_are_rejected_cleanly() {
    let dir = TempDir::new("badelf");
    let d = &dir.path;
    let elf = good_elf();

    let mut cases = vec![
        Expect {
            what: "missing file",
            path: d.join("does-not-exist"),
            code: 127,
        },
        Expect {
            what: "missing directory component",
            path: d.join("no-such-dir/prog"),
            code: 127,
        },
        Expect {
            what: "file without exec permission",
            path: write_exec(d, "noexec", &elf, 0o644),
            code: 126,
        },
        Expect {
            what: "directory",
            path: {
                let p = d.join("a-directory");
                std::fs::create_dir(&p).expect("mkdir");
                p
            },
            code: 126,
        },
        Expect {
            what: "text file without #!",
            path: write_exec(d, "text", b"echo hello\nexit 3\n", 0o755),
            code: 126,
        },
        Expect {
            what: "empty file",
            path: write_exec(d, "empty", b"", 0o755),
            code: 126,
        },
        Expect {
            what: "ELF magic only",
            path: write_exec(d, "magic", b"\x7fELF", 0o755),
            code: 126,
        },
        Expect {
            what: "truncated ELF (header only)",
            path: write_exec(d, "truncated", &elf[..64], 0o755),
            code: 126,
        },
    ];

    let mut patched = |name: &str, what: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut data = elf.clone();
        f(&mut data);
        cases.push(Expect {
            what,
            path: write_exec(d, name, &data, 0o755),
            code: 126,
        });
    };
    patched("bad-phoff", "corrupted e_phoff", &|v| {
        v[32..40].copy_from_slice(&0x7fff_ffff_ffff_0000u64.to_le_bytes())
    });
    patched("phoff-past-end", "e_phoff just past the end", &|v| {
        let len = v.len() as u64;
        v[32..40].copy_from_slice(&(len - 8).to_le_bytes())
    });
    patched("bad-phentsize", "wrong e_phentsize", &|v| {
        v[54..56].copy_from_slice(&7u16.to_le_bytes())
    });
    patched("elf32", "32-bit ELF (ELFCLASS32)", &|v| v[4] = 1);
    patched("big-endian", "big-endian ELF", &|v| v[5] = 2);
    patched("aarch64", "ELF for EM_AARCH64", &|v| {
        v[18..20].copy_from_slice(&183u16.to_le_bytes())
    });
    patched("relocatable", "ET_REL object", &|v| {
        v[16..18].copy_from_slice(&1u16.to_le_bytes())
    });
    patched("core", "ET_CORE file", &|v| {
        v[16..18].copy_from_slice(&4u16.to_le_bytes())
    });

    let mut failures = Vec::new();
    for c in &cases {
        if let Err(e) = check(c) {
            println!("{e}");
            failures.push(e);
        }
    }
    println!(
        "{} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cetbox_without_a_program_is_a_usage_error() {
    let spec = Spec::new(common::cetbox_bin()).args(["run"]);
    let out = run(&spec);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    assert!(
        matches!(out.status, Status::Exited(c) if c != 0),
        "expected a non-zero exit, got {}",
        out.status
    );
}
