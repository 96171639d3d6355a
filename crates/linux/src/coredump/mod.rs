//! Core dumps of guest processes, as Linux writes them (fs/coredump.c vfs_coredump and
//! fs/binfmt_elf.c elf_core_dump): when a guest dies of a signal whose default action dumps
//! core, RLIMIT_CORE and the dumpable flag allow it, and /proc/sys/kernel/core_pattern is a
//! file pattern, cetbox writes an ELF core file of the *guest* (its mappings, its threads'
//! registers and the shadow-stack pointer) where the kernel would have written the guest's.
//! A pipe pattern (`|program`) is not run: cetbox prints one line saying no core was written.
//!
//! The host kernel must not dump cetbox itself afterwards: `exit::die_by_signal` sets cetbox's
//! own RLIMIT_CORE to 0 before it dies of the same signal, unless it can have the host dump a
//! small core of itself where nobody sees it (`host_bit`), so that the host's wait status
//! carries the core-dumped bit (WCOREDUMP) for a native parent; a cetbox parent adds it
//! otherwise (see `dumped`).

pub mod dumped;
pub mod elf;
pub mod host_bit;
pub mod notes;

use crate::process::Thread;
use crate::signals::{self, SigInfo};
use cetbox_mem::{Backing, VmaKind};
use notes::ThreadRegs;
use std::os::unix::ffi::OsStrExt;

/// coredump_filter bits (Documentation/filesystems/proc.rst, "coredump_filter").
const FILTER_ANON_PRIVATE: u32 = 1 << 0;
const FILTER_ANON_SHARED: u32 = 1 << 1;
const FILTER_MAPPED_PRIVATE: u32 = 1 << 2;
const FILTER_MAPPED_SHARED: u32 = 1 << 3;
const FILTER_ELF_HEADERS: u32 = 1 << 4;
/// Linux's default (MMF_DUMP_FILTER_DEFAULT with CONFIG_CORE_DUMP_DEFAULT_ELF_HEADERS).
const FILTER_DEFAULT: u32 = 0x33;
/// CORENAME_MAX_SIZE.
const CORENAME_MAX: usize = 128;
const PAGE: u64 = 4096;

/// The registers of thread `t` now; `orig_rax` is the syscall it is in (-1: none).
pub fn regs_of(t: &Thread, orig_rax: i64) -> ThreadRegs {
    let mut fx = [0u8; 512];
    cetbox_cpu::fpstate::fxsave(&t.cpu.x87, &t.cpu.sse, &mut fx);
    ThreadRegs {
        tid: t.tid,
        gpr: t.cpu.gpr,
        rip: t.cpu.rip,
        rflags: t.cpu.rflags(),
        fs_base: t.cpu.fs_base,
        gs_base: t.cpu.gs_base,
        orig_rax,
        fx,
        shstk: t.shstk.features & crate::shstk::SHSTK != 0,
        ssp: t.cpu.cet.ssp,
        sighold: t.signals.mask,
        sigpend: t
            .signals
            .pending
            .iter()
            .fold(0, |m, i| m | signals::bit(i.signo)),
    }
}

/// Whether a syscall may keep a thread inside cetbox for long (sleeping in the host kernel):
/// such a thread publishes its registers at entry, for a core dump taken meanwhile. The quick
/// ones listed here are left out to keep their cost down; a thread in one of them reaches the
/// run loop (and publishes there) soon after a dump begins.
pub fn may_block(nr: u64) -> bool {
    !matches!(
        nr,
        // mmap, mprotect, munmap, brk, rt_sigaction, rt_sigprocmask, sched_yield, madvise,
        // getpid, getuid, getgid, geteuid, getegid, getppid, gettid, time, gettimeofday,
        // clock_gettime, clock_getres, lseek, fstat, uname, getcwd, sysinfo, getrusage, times,
        // arch_prctl, prctl, set_tid_address, set_robust_list, getrlimit, prlimit64, getpgrp,
        // getsid, getpgid, dup, dup2, dup3
        9 | 10
            | 11
            | 12
            | 13
            | 14
            | 24
            | 28
            | 39
            | 102
            | 104
            | 107
            | 108
            | 110
            | 186
            | 201
            | 96
            | 228
            | 229
            | 8
            | 5
            | 63
            | 79
            | 99
            | 98
            | 100
            | 158
            | 157
            | 218
            | 273
            | 97
            | 302
            | 111
            | 124
            | 121
            | 32
            | 33
            | 292
    )
}

/// Whether `sig`'s default action dumps core (signal(7): "Core").
pub fn dumps_core(sig: i32) -> bool {
    matches!(signals::default_action(sig), signals::DefaultAction::Core)
}

/// Expands a core_pattern (format_corename): %% %p %P %i %I %u %g %s %t %h %e %E %c %d; other
/// specifiers expand to nothing. Appends .PID when core_uses_pid is set and the pattern has no
/// %p. The result is capped at CORENAME_MAX_SIZE.
pub fn corename(
    pattern: &[u8],
    sig: i32,
    comm: &[u8],
    exe: &str,
    tid: i32,
    uses_pid: bool,
) -> Vec<u8> {
    // SAFETY: these id and time calls have no preconditions.
    let (pid, uid, gid, now) = unsafe {
        (
            libc::getpid(),
            libc::getuid(),
            libc::getgid(),
            libc::time(std::ptr::null_mut()),
        )
    };
    let mut out = Vec::new();
    let mut has_pid = false;
    let mut i = 0;
    while i < pattern.len() {
        let c = pattern[i];
        i += 1;
        if c != b'%' || i >= pattern.len() {
            out.push(c);
            continue;
        }
        let spec = pattern[i];
        i += 1;
        let s = match spec {
            b'%' => "%".to_string(),
            b'p' | b'P' => {
                has_pid = true;
                pid.to_string()
            }
            b'i' | b'I' => tid.to_string(),
            b'u' => uid.to_string(),
            b'g' => gid.to_string(),
            b'd' => "1".to_string(),
            b's' => sig.to_string(),
            b't' => now.to_string(),
            b'h' => hostname(),
            b'e' => String::from_utf8_lossy(comm).into_owned(),
            b'E' => exe.replace('/', "!"),
            b'c' => {
                let l = core_limit();
                if l == libc::RLIM_INFINITY {
                    "18446744073709551615".into()
                } else {
                    l.to_string()
                }
            }
            _ => String::new(),
        };
        out.extend_from_slice(s.as_bytes());
    }
    if uses_pid && !has_pid {
        out.extend_from_slice(format!(".{pid}").as_bytes());
    }
    out.truncate(CORENAME_MAX - 1);
    out
}

fn hostname() -> String {
    let mut u: libc::utsname = unsafe_zeroed();
    // SAFETY: uname writes into the struct we own.
    unsafe { libc::uname(&mut u) };
    u.nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect()
}

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C structs (utsname, rlimit) for which all zeroes is valid.
    unsafe { std::mem::zeroed() }
}

fn core_limit() -> u64 {
    let mut r: libc::rlimit = unsafe_zeroed();
    // SAFETY: getrlimit writes into the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut r) };
    r.rlim_cur
}

fn read_trimmed(path: &str) -> Option<Vec<u8>> {
    let mut v = std::fs::read(path).ok()?;
    while v.last() == Some(&b'\n') {
        v.pop();
    }
    Some(v)
}

/// vma_dump_size: how much of a mapping the kernel writes, for coredump_filter `filter`.
fn dump_size(v: &cetbox_mem::Vma, filter: u32, pagemap: Option<&std::fs::File>) -> u64 {
    let whole = v.end - v.start;
    match v.kind {
        // Special mappings with a name are always dumped; vvar has no readable pages.
        VmaKind::Vdso => return whole,
        VmaKind::Vvar => return 0,
        _ => {}
    }
    let on = |bit: u32| filter & bit != 0;
    if v.shared {
        let anon = match &v.backing {
            Backing::Anonymous => true,
            Backing::File { path, .. } => std::fs::metadata(path).is_err(),
        };
        let bit = if anon {
            FILTER_ANON_SHARED
        } else {
            FILTER_MAPPED_SHARED
        };
        return if on(bit) { whole } else { 0 };
    }
    // "Dump segments that have been written to": the VMA has anonymous pages (anon_vma).
    if on(FILTER_ANON_PRIVATE) && has_anon_pages(v, pagemap) {
        return whole;
    }
    let Backing::File { path, offset, .. } = &v.backing else {
        return 0;
    };
    if on(FILTER_MAPPED_PRIVATE) {
        return whole;
    }
    if on(FILTER_ELF_HEADERS) && *offset == 0 && v.prot & libc::PROT_READ as u32 != 0 {
        use std::os::unix::fs::PermissionsExt;
        let exec = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        let mut magic = [0u8; 4];
        let elf = std::fs::File::open("/proc/self/mem")
            .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut magic, v.start))
            .is_ok()
            && &magic == b"\x7fELF";
        if exec || elf {
            return PAGE;
        }
    }
    0
}

/// Whether any page of the mapping is anonymous memory (present and not file-backed, or
/// swapped), from /proc/self/pagemap: what the kernel's anon_vma tells.
fn has_anon_pages(v: &cetbox_mem::Vma, pagemap: Option<&std::fs::File>) -> bool {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE: u64 = 1 << 61;
    let Some(pm) = pagemap else {
        return true;
    };
    let n = ((v.end - v.start) / PAGE) as usize;
    let mut buf = vec![0u8; 8 * n.min(4096)];
    let mut done = 0;
    while done < n {
        let k = (n - done).min(4096);
        let b = &mut buf[..8 * k];
        if pm
            .read_exact_at(b, (v.start / PAGE + done as u64) * 8)
            .is_err()
        {
            return true;
        }
        for e in b.chunks_exact(8) {
            let e = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
            if e & SWAPPED != 0 || (e & PRESENT != 0 && e & FILE == 0) {
                return true;
            }
        }
        done += k;
    }
    false
}

/// Writes the guest's core for death by `sig` (delivered with `info`) of the process whose
/// thread `t` took the signal; `others` are the other threads' registers. Does nothing when
/// Linux would write nothing.
/// Writes the core file; true if it was written (what sets the core-dumped bit on Linux).
pub fn dump(t: &Thread, sig: i32, info: &SigInfo, orig_rax: i64, others: &[ThreadRegs]) -> bool {
    // SAFETY: prctl(PR_GET_DUMPABLE) takes no pointers.
    if unsafe { libc::prctl(libc::PR_GET_DUMPABLE) } <= 0 {
        return false;
    }
    let limit = core_limit();
    // binfmt->min_coredump: a limit below one page writes nothing.
    if limit < PAGE {
        return false;
    }
    let Some(pattern) = read_trimmed("/proc/sys/kernel/core_pattern") else {
        return false;
    };
    if pattern.is_empty() {
        return false;
    }
    if pattern[0] == b'|' {
        crate::diag::diag(&format!(
            "no core file written: core_pattern pipes cores to a program ({}), which cetbox does not run",
            String::from_utf8_lossy(&pattern)
        ));
        return false;
    }
    let uses_pid = read_trimmed("/proc/sys/kernel/core_uses_pid").is_some_and(|v| v != b"0");
    let comm = crate::syscalls::process::comm(t);
    let comm_len = comm.iter().position(|&c| c == 0).unwrap_or(16);
    let image = t.proc.image().clone();
    let name = corename(
        &pattern,
        sig,
        &comm[..comm_len],
        &image.exe,
        t.tid,
        uses_pid,
    );
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&name));
    // The kernel unlinks an existing file first, then creates the core exclusively, mode 0600,
    // never following a symlink.
    let _ = std::fs::remove_file(path);
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return false;
    };
    let filter = read_trimmed("/proc/self/coredump_filter")
        .and_then(|v| u32::from_str_radix(std::str::from_utf8(&v).ok()?, 16).ok())
        .unwrap_or(FILTER_DEFAULT);
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
    let vmas = t.mem().vmas();
    let segs: Vec<elf::Segment> = vmas
        .iter()
        .map(|v| elf::Segment {
            start: v.start,
            end: v.end,
            prot: v.prot,
            dump: dump_size(v, filter, pagemap.as_ref()),
            anon: v.backing == Backing::Anonymous,
        })
        .collect();
    let files: Vec<(u64, u64, u64, String)> = vmas
        .iter()
        .filter_map(|v| match &v.backing {
            Backing::File { path, offset, .. } => Some((v.start, v.end, *offset, path.clone())),
            Backing::Anonymous => None,
        })
        .collect();

    // SAFETY: these id calls have no preconditions.
    let ids = unsafe {
        notes::ProcIds {
            pid: t.proc.pid,
            ppid: libc::getppid(),
            pgrp: libc::getpgrp(),
            sid: libc::getsid(0),
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    };
    let me = regs_of(t, orig_rax);
    // write_note_info's order: the dumping thread's NT_PRSTATUS, then the process notes, then
    // its other regsets; then each other thread's NT_PRSTATUS and regsets.
    let mut list = vec![
        notes::prstatus(&me, sig, &ids),
        notes::prpsinfo(&ids, &comm, &image.argv),
        notes::siginfo(info),
        notes::auxv(&image.auxv),
        notes::files(&files),
    ];
    let regsets = |r: &ThreadRegs, list: &mut Vec<notes::Note>| {
        list.push(notes::fpregs(r));
        list.push(notes::xstate(r));
        list.extend(notes::shstk(r));
    };
    regsets(&me, &mut list);
    for r in others {
        list.push(notes::prstatus(r, sig, &ids));
        regsets(r, &mut list);
    }
    elf::write(&mut f, &list, &segs, limit).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corename_expands_like_format_corename() {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let n = corename(b"core.%e.%s.%%.%i", 11, b"prog", "/bin/prog", 42, true);
        assert_eq!(
            n,
            b"core.prog.11.%.42"
                .iter()
                .chain(format!(".{pid}").as_bytes())
                .copied()
                .collect::<Vec<u8>>()
        );
        let n = corename(b"/tmp/c-%p-%E-%z", 6, b"x", "/usr/bin/x", 1, true);
        assert_eq!(n, format!("/tmp/c-{pid}-!usr!bin!x-").into_bytes());
        assert_eq!(corename(b"core", 6, b"x", "/x", 1, false), b"core");
        assert_eq!(
            corename(&[b'a'; 300], 6, b"x", "/x", 1, false).len(),
            CORENAME_MAX - 1
        );
    }
}
