//! strace-like rendering of system calls for `--trace=syscalls`; what each argument is comes
//! from the syscall table (`super::table`).
//!
//! Argument letters: `P` string (path), `D` dirfd (AT_FDCWD), `F` int, `N` unsigned decimal,
//! `O` open flags, `B` output of a buffer whose length is the next argument, `X` hex.

use super::table;
use crate::errno::SysResult;
use crate::process::Thread;

/// One line: `name(args) = result`, as strace prints it.
pub fn line(t: &Thread, nr: u64, args: &[u64; 6], res: &SysResult) -> String {
    let a = format_args(t, nr, args);
    let r = match res {
        Ok(v) => format_result(nr, *v),
        Err(e) => format!(
            "-1 {} ({})",
            e.name(),
            std::io::Error::from_raw_os_error(e.0)
        ),
    };
    format!("{}({}) = {r}", table::name(nr), a.join(", "))
}

fn quote(bytes: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:o}")),
        }
    }
    s.push('"');
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}

fn open_flags(v: u64) -> String {
    let v = v as u32 as i32;
    let mut parts = vec![match v & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    }
    .to_string()];
    let mut rest = v & !libc::O_ACCMODE;
    for (bit, n) in [
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        (libc::O_LARGEFILE, "O_LARGEFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
        (libc::O_TMPFILE, "O_TMPFILE"),
        (libc::O_SYNC, "O_SYNC"),
    ] {
        if rest & bit == bit {
            parts.push(n.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// The arguments of a syscall as strace shows them (strings for paths, AT_FDCWD, open flags,
/// decimal descriptors and counts; hex for the rest).
fn format_args(t: &Thread, nr: u64, args: &[u64; 6]) -> Vec<String> {
    let k = table::get(nr).map_or("XXXXXX", |s| s.args).as_bytes();
    (0..k.len())
        .map(|i| {
            let v = args[i];
            match k.get(i) {
                Some(b'P') => match t.mem().read_cstr(v, 4096) {
                    Ok(Some(s)) => quote(&s, 4096),
                    _ => format!("{v:#x}"),
                },
                Some(b'D') if v as u32 as i32 == -100 => "AT_FDCWD".to_string(),
                Some(b'D') | Some(b'F') => format!("{}", v as u32 as i32),
                Some(b'N') => format!("{v}"),
                Some(b'O') => open_flags(v),
                Some(b'B') => {
                    let len = (args.get(i + 1).copied().unwrap_or(0) as usize).min(32);
                    let mut b = vec![0u8; len];
                    match t.mem().read_bytes(v, &mut b) {
                        Ok(()) => {
                            let s = quote(&b, 32);
                            if (args[i + 1] as usize) > 32 {
                                format!("{s}...")
                            } else {
                                s
                            }
                        }
                        Err(_) => format!("{v:#x}"),
                    }
                }
                _ => format!("{v:#x}"),
            }
        })
        .collect()
}

/// The result as strace shows it.
fn format_result(nr: u64, v: u64) -> String {
    if table::get(nr).is_some_and(|s| s.flags & table::HEX_RESULT != 0) {
        format!("{v:#x}")
    } else {
        format!("{}", v as i64)
    }
}
