//! Loading ELF programs: static, static-PIE, dynamically linked (PT_INTERP), and #! scripts,
//! with the initial stack Linux builds (binfmt_elf and binfmt_script of Linux 6.6+).
//!
//! Loading has two phases, as in the kernel. `prepare` opens and validates everything whose
//! failure execve reports to the caller (missing file, permissions, script line, ELF and
//! interpreter headers). `load` then builds the new image; a failure there corresponds to
//! the kernel killing the process after the point of no return, so its errno is never seen
//! natively and cetbox reports ENOEXEC with a precise message.
//!
//! Differences from Linux, on purpose:
//! - no vDSO: AT_SYSINFO_EHDR is omitted, so glibc falls back to real syscalls for
//!   clock_gettime and friends;
//! - address randomization is reduced to a small random stack offset; the PIE base is
//!   ELF_ET_DYN_BASE exactly, and brk starts one page after the program (Linux randomizes
//!   it within 32 MiB);
//! - segments that overlap, lie past the end of the file or are otherwise corrupt are
//!   rejected at load time instead of crashing later.

pub mod elf;
pub mod script;
pub mod stack;

use crate::process::{Image, ShstkState, Thread};
use cetbox_cpu::fpstate::{Sse, X87};
use cetbox_mem::{page_ceil, AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use elf::Elf;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Why a program could not be loaded; `errno` is what execve returns.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub errno: i32,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) fn err(errno: i32, path: &str, why: &str) -> LoadError {
    LoadError {
        errno,
        message: format!("{path}: {why}"),
    }
}

/// Linux's BINPRM_BUF_SIZE: how much of the file decides its format.
pub const BINPRM_BUF_SIZE: usize = 256;
/// How many #! interpreters may be chained (Linux's exec_binprm gives ELOOP beyond 5).
pub const MAX_INTERP_DEPTH: usize = 5;

/// AT_MINSIGSTKSZ for the emulated CPU, which has FXSR but no XSAVE: Linux's
/// init_sigframe_size() computes sizeof(struct rt_sigframe) 440 + 15 alignment padding +
/// fpu__get_fpstate_size() (the 512-byte FXSAVE area plus the 112-byte legacy fsave header a
/// kernel with IA32 emulation reserves) + 63 XSAVE padding = 1142, rounded up to 16.
pub const MINSIGSTKSZ: u64 = 1152;

/// AT_MINSIGSTKSZ for a CPU model: as above for FXSR-only CPUs; with XSAVE (x86-64-v3,
/// XCR0 = x87|SSE|AVX) fpu__get_fpstate_size() is the user XSAVE size 832 + FP_XSTATE_MAGIC2
/// 4 + the 112-byte fsave header, so 440 + 15 + 948 + 63 = 1466, rounded up to 16: 1472
/// (arch/x86/kernel/signal.c init_sigframe_size, arch/x86/kernel/fpu/xstate.c).
pub fn minsigstksz(cfg: &cetbox_cpu::CpuConfig) -> u64 {
    if cfg.xcr0() != 0 {
        let size = 440 + 15 + (crate::signals::frame::XSTATE_SIZE_AVX + 4 + 112) + 63;
        (size + 15) & !15
    } else {
        MINSIGSTKSZ
    }
}

/// A validated program, ready to be mapped.
pub struct Prepared {
    pub elf: Elf,
    pub interp: Option<Elf>,
    /// argv after #! rewriting.
    pub argv: Vec<Vec<u8>>,
    /// The file name given to execve (AT_EXECFN).
    pub execfn: Vec<u8>,
}

/// The C library's text for an errno, without Rust's "(os error N)" suffix.
pub fn errstr(n: i32) -> String {
    let s = std::io::Error::from_raw_os_error(n).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The kernel's open_exec: the file must exist, be a regular file and executable.
/// Returns the open file and its first BINPRM_BUF_SIZE bytes.
pub fn open_exec(path: &Path) -> Result<(File, Vec<u8>), LoadError> {
    let shown = path.to_string_lossy().into_owned();
    if path.as_os_str().is_empty() {
        return Err(err(libc::ENOENT, "''", "no such file or directory"));
    }
    let md = std::fs::metadata(path).map_err(|e| {
        let n = errno_of(&e);
        err(n, &shown, &errstr(n))
    })?;
    if md.is_dir() {
        return Err(err(libc::EACCES, &shown, "is a directory"));
    }
    if !md.is_file() {
        return Err(err(libc::EACCES, &shown, "not a regular file"));
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| err(libc::ENOENT, &shown, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        let n = std::io::Error::last_os_error();
        return Err(err(errno_of(&n), &shown, &format!("cannot execute: {n}")));
    }
    let mut f = File::open(path).map_err(|e| {
        err(
            errno_of(&e),
            &shown,
            &format!(
                "cannot read the file: {} (execute-only files are not supported)",
                errstr(errno_of(&e))
            ),
        )
    })?;
    let mut head = Vec::with_capacity(BINPRM_BUF_SIZE);
    (&mut f)
        .take(BINPRM_BUF_SIZE as u64)
        .read_to_end(&mut head)
        .map_err(|e| err(errno_of(&e), &shown, &format!("cannot read: {e}")))?;
    Ok((f, head))
}

fn absolute(path: &Path) -> String {
    match std::fs::canonicalize(path) {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(_) => {
            let p = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(path)
            };
            p.to_string_lossy().into_owned()
        }
    }
}

/// Where the interpreter named by PT_INTERP (or a `#!` line) is found: under the sysroot if
/// it is there, else on the host (crate::sysroot's rules).
pub fn interp_path(interp: &[u8], sysroot: Option<&Path>) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(crate::sysroot::host_path(
        sysroot, interp, true,
    )))
}

/// Everything execve checks before the point of no return: the file, #! scripts (rewriting
/// argv), the ELF headers and the interpreter.
pub fn prepare(
    path: &str,
    argv: &[Vec<u8>],
    sysroot: Option<&Path>,
) -> Result<Prepared, LoadError> {
    let mut argv: Vec<Vec<u8>> = argv.to_vec();
    // Linux 5.18+ never starts a program with argc == 0.
    if argv.is_empty() {
        argv.push(Vec::new());
    }
    let mut cur = PathBuf::from(path);
    let mut depth = 0;
    let elf = loop {
        if depth > MAX_INTERP_DEPTH {
            return Err(err(libc::ELOOP, path, "too many levels of #! interpreters"));
        }
        let (file, head) = open_exec(&cur)?;
        let shown = cur.to_string_lossy().into_owned();
        if head.starts_with(b"#!") {
            let (name, arg) =
                script::parse(&head).map_err(|why| err(libc::ENOEXEC, &shown, why))?;
            // argv[0] is replaced by the script's path; the interpreter and its one optional
            // argument go in front.
            let mut new_argv = vec![name.clone()];
            if let Some(a) = arg {
                new_argv.push(a);
            }
            new_argv.push(cur.as_os_str().as_bytes().to_vec());
            new_argv.extend(argv.iter().skip(1).cloned());
            argv = new_argv;
            cur = interp_path(&name, sysroot);
            depth += 1;
            continue;
        }
        if !elf::is_elf(&head) {
            return Err(err(
                libc::ENOEXEC,
                &shown,
                "not an executable format (neither ELF nor #! script)",
            ));
        }
        break elf::parse(file, &shown, absolute(&cur), &head, false)?;
    };
    let interp = match &elf.interp {
        None => None,
        Some(name) => {
            let ip = interp_path(name, sysroot);
            let (file, head) = open_exec(&ip).map_err(|e| LoadError {
                errno: e.errno,
                message: format!("{}: cannot load its interpreter: {}", elf.path, e.message),
            })?;
            let shown = ip.to_string_lossy().into_owned();
            let i =
                elf::parse(file, &shown, absolute(&ip), &head, true).map_err(|e| LoadError {
                    errno: e.errno,
                    message: format!("{}: bad interpreter: {}", elf.path, e.message),
                })?;
            Some(i)
        }
    };
    Ok(Prepared {
        elf,
        interp,
        argv,
        execfn: path.as_bytes().to_vec(),
    })
}

/// Checks whether `path` could be executed (everything before the point of no return),
/// without touching any address space: for execve's error returns.
pub fn probe(path: &str, argv: &[Vec<u8>], sysroot: Option<&Path>) -> Result<(), LoadError> {
    prepare(path, argv, sysroot).map(|_| ())
}

/// `count` random bytes from the host.
pub fn random_bytes(count: usize) -> Vec<u8> {
    let mut b = vec![0u8; count];
    let mut done = 0;
    while done < count {
        // SAFETY: the buffer has `count - done` writable bytes at that offset.
        let r = unsafe {
            libc::getrandom(
                b[done..].as_mut_ptr().cast::<libc::c_void>(),
                count - done,
                0,
            )
        };
        if r <= 0 {
            break;
        }
        done += r as usize;
    }
    b
}

fn random_u64() -> u64 {
    let b = random_bytes(8);
    u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))
}

pub use crate::rlimit::stack_rlimit;

/// The gap Linux keeps between the stack top and mmap_base: RLIMIT_STACK plus the stack
/// guard gap and the stack randomization range, clamped to [128 MiB, ...]. An unlimited stack
/// (which makes Linux use the legacy bottom-up layout) gets a fixed 1 TiB gap.
pub fn mmap_gap(rlim: Option<u64>) -> u64 {
    const MIN: u64 = 128 << 20;
    const MAX: u64 = 1 << 40;
    match rlim {
        None => MAX,
        Some(r) => r
            .saturating_add(cetbox_mem::STACK_GUARD_GAP)
            .saturating_add(stack::STACK_RANDOM_PAGES * PAGE_SIZE)
            .clamp(MIN, MAX),
    }
}

/// Maps one object. `pie_base`: put an ET_DYN at ELF_ET_DYN_BASE (a PIE with an
/// interpreter); otherwise an ET_DYN goes where the top-down allocator puts it.
fn map_object(mem: &AddressSpace, e: &Elf, pie_base: bool) -> Result<elf::Loaded, LoadError> {
    if e.e_type == object::elf::ET_EXEC {
        return e.map_segments(mem, 0);
    }
    let (lo, hi) = e.span();
    let len = hi - lo;
    let placeholder = |addr: u64, fixed: bool| {
        let mut r = MapRequest::anonymous(addr, len, 0, VmaKind::Normal);
        r.noreplace = fixed;
        mem.map(&r)
    };
    let mut base = None;
    if pie_base {
        let align = e.max_align();
        let dyn_base = elf::et_dyn_base(mem.user_limit());
        let want = (dyn_base & !(align - 1)).wrapping_sub(lo) & !(PAGE_SIZE - 1);
        if let Ok(a) = placeholder(want.wrapping_add(lo), true) {
            base = Some(a);
        }
    }
    let base = match base {
        Some(b) => b,
        None => placeholder(0, false)
            .map_err(|_| e_fail(e, libc::ENOMEM, "no room in the address space"))?,
    };
    e.map_segments(mem, base - lo)
}

fn e_fail(e: &Elf, errno: i32, why: &str) -> LoadError {
    err(errno, &e.path, why)
}

/// Loads `path` into the thread's (empty) address space and sets up registers and the stack
/// so that the next `run` starts the program.
pub fn load(
    t: &mut Thread,
    path: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<(), LoadError> {
    let sysroot = t.proc.opts.sysroot.clone();
    // The program itself is looked up under the sysroot too; AT_EXECFN keeps its own name.
    let host = interp_path(path.as_bytes(), sysroot.as_deref());
    let mut prep = prepare(&host.to_string_lossy(), argv, sysroot.as_deref())?;
    prep.execfn = path.as_bytes().to_vec();
    stack::check_arg_size(&prep.argv, envp, stack_rlimit())
        .map_err(|e| err(e, path, "argument list too long"))?;
    load_prepared(t, prep, envp)
}

/// Builds the new image from a prepared program (after the point of no return).
pub fn load_prepared(t: &mut Thread, prep: Prepared, envp: &[Vec<u8>]) -> Result<(), LoadError> {
    let mem = t.proc.mem.clone();
    let rlim = stack_rlimit();
    // The stack goes at the top of the guest area, slightly randomized as Linux does; the
    // mmap area starts below the space the stack may grow into.
    let rnd_pages = random_u64() % stack::STACK_RANDOM_PAGES;
    let stack_top = mem.stack_limit() - rnd_pages * PAGE_SIZE;
    mem.set_mmap_base(mem.stack_limit() - mmap_gap(rlim));

    let Prepared {
        elf: main,
        interp,
        argv,
        execfn,
    } = prep;
    let m = map_object(&mem, &main, interp.is_some())?;
    let i = match &interp {
        Some(ie) => Some(map_object(&mem, ie, false)?),
        None => None,
    };

    // brk: one page after the program's highest segment; a static PIE's heap goes where
    // a PIE with an interpreter would be loaded, as Linux does for it.
    let brk = if main.e_type == object::elf::ET_DYN && interp.is_none() {
        elf::et_dyn_base(mem.user_limit())
    } else {
        page_ceil(m.end) + PAGE_SIZE
    };

    // SAFETY: these calls have no preconditions.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let hwcap = cetbox_cpu::cpuid::cpuid(&t.proc.cpu_config, 1, 0).3 as u64;
    let entry = i.map(|x| x.entry).unwrap_or(m.entry);
    let phnum = main.phdrs.len() as u64;
    let auxv_for = |lay: &stack::Strings| -> Vec<(u64, u64)> {
        vec![
            (stack::AT_MINSIGSTKSZ, minsigstksz(&t.proc.cpu_config)),
            (stack::AT_HWCAP, hwcap),
            (stack::AT_PAGESZ, PAGE_SIZE),
            (stack::AT_CLKTCK, 100),
            (stack::AT_PHDR, m.phdr_addr),
            (stack::AT_PHENT, 56),
            (stack::AT_PHNUM, phnum),
            (stack::AT_BASE, i.map(|x| x.bias).unwrap_or(0)),
            (stack::AT_FLAGS, 0),
            (stack::AT_ENTRY, m.entry),
            (stack::AT_UID, uid as u64),
            (stack::AT_EUID, euid as u64),
            (stack::AT_GID, gid as u64),
            (stack::AT_EGID, egid as u64),
            (stack::AT_SECURE, 0),
            (stack::AT_RANDOM, lay.random),
            (stack::AT_HWCAP2, 0),
            (stack::AT_EXECFN, lay.execfn),
            (stack::AT_PLATFORM, lay.platform),
            (stack::AT_RSEQ_FEATURE_SIZE, crate::rseq::FEATURE_SIZE),
            (stack::AT_RSEQ_ALIGN, crate::rseq::ALIGN),
            (stack::AT_NULL, 0),
        ]
    };
    let st = stack::build(
        &mem,
        stack_top,
        main.exec_stack,
        &argv,
        envp,
        &execfn,
        rlim,
        auxv_for,
    )
    .map_err(|(errno, why)| err(errno, &main.path, &why))?;

    // Registers as Linux's start_thread leaves them: everything zero but RSP and RIP,
    // RFLAGS = IF, default x87 and SSE control words, no shadow stack.
    let cpu = &mut t.cpu;
    cpu.gpr = [0; 16];
    cpu.gpr[cetbox_cpu::Reg::Rsp as usize] = st.sp;
    cpu.rip = entry;
    cpu.set_rflags(0x202);
    cpu.fs_base = 0;
    cpu.gs_base = 0;
    cpu.x87 = X87::default();
    cpu.sse = Sse::default();
    cpu.cet = Default::default();
    t.engine.invalidate();
    cetbox_jit::profile::set_program(&main.file);
    t.shstk = ShstkState::default();

    *t.proc.image() = Image {
        exe: main.abs_path.clone(),
        argv,
        brk_start: brk,
        brk,
        auxv: st.auxv,
        stack_top,
        arg_start: st.arg_start,
        arg_end: st.arg_end,
        env_start: st.env_start,
        env_end: st.env_end,
    };
    crate::shstk::enable_at_start(t);
    Ok(())
}
