//! The guest's view of /proc/self: maps, smaps, status, exe, auxv, cmdline, environ, stat,
//! statm and mem, synthesized from cetbox's own state in Linux's exact formats.
//!
//! Synthesized files are memfds holding a snapshot taken at open time (Linux generates them
//! at read time, which only matters for programs that keep one open across changes).
//! /proc/self/mem is a host descriptor for the host's /proc/self/mem, which addresses guest
//! memory directly (guest addresses are host addresses); it is registered so that the file
//! syscalls can route its reads and writes through `mem_access`, which applies the guest's
//! mappings and Linux's forced-write semantics (Linux mm/gup.c, check_vma_flags()).

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::{Backing, Vma, VmaKind, PAGE_SIZE};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;

/// Which process file a path names, after the /proc/<self>/ prefix.
fn strip<'a>(t: &Thread, path: &'a [u8]) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(b"/proc/")?;
    let pid = t.proc.pid.to_string();
    let tid = t.tid.to_string();
    let (head, tail) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let tail = if head == b"self" || head == pid.as_bytes() {
        // /proc/<pid>/task/<tid>/x: every thread of the process shares its address space
        // (a task directory under our pid can only name one of our threads), so the memory
        // files are the process's; another thread's stat and status describe that thread
        // (its state), which the host's files do.
        match tail.strip_prefix(b"task/") {
            Some(tt) => {
                let i = tt.iter().position(|&c| c == b'/')?;
                if tt[..i].is_empty() || !tt[..i].iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let file = &tt[i + 1..];
                if &tt[..i] != tid.as_bytes() && matches!(trim_slashes(file), b"stat" | b"status") {
                    return None;
                }
                file
            }
            None => tail,
        }
    } else if head == b"thread-self" {
        tail
    } else {
        return None;
    };
    Some(trim_slashes(tail))
}

fn trim_slashes(mut s: &[u8]) -> &[u8] {
    while let Some(r) = s.strip_suffix(b"/") {
        s = r;
    }
    s
}

/// The target of a readlink on a /proc path cetbox synthesizes.
pub fn readlink(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    let p = trim_slashes(path);
    if p == b"/proc/self" {
        return Some(t.proc.pid.to_string().into_bytes());
    }
    if p == b"/proc/thread-self" {
        return Some(format!("{}/task/{}", t.proc.pid, t.tid).into_bytes());
    }
    if let Some((pid, b"exe")) = crate::procview::other_file(t, p) {
        // The host's readlink is the permission check (and ENOENT for a bad task).
        std::fs::read_link(std::ffi::OsStr::from_bytes(p)).ok()?;
        return crate::procview::of(pid).map(|v| v.exe);
    }
    match strip(t, path)? {
        b"exe" => Some(
            crate::sysroot::to_guest(t.proc.opts.sysroot.as_deref(), &t.proc.image().exe)
                .into_bytes(),
        ),
        _ => None,
    }
}

/// Opens a synthesized /proc file; None for paths cetbox does not synthesize.
pub fn open(t: &mut Thread, path: &[u8], flags: i32) -> Option<SysResult> {
    if let Some(pid) = other_mem(t, path) {
        return Some(open_other_mem(t, path, pid, flags));
    }
    if let Some((pid, file)) = crate::procview::other_file(t, trim_slashes(path)) {
        if let Some(r) = open_other_view(path, pid, file, flags) {
            return Some(r);
        }
    }
    if let Some(r) = traced_auxv(path, flags) {
        return Some(r);
    }
    let name = strip(t, path)?;
    let acc = flags & libc::O_ACCMODE;
    let content = match name {
        b"maps" => maps(t),
        b"smaps" => smaps(t),
        b"status" => status(t),
        b"stat" => stat(t),
        b"statm" => statm(t),
        b"auxv" => {
            let img = t.proc.image();
            img.auxv
                .iter()
                .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
                .collect()
        }
        b"cmdline" => read_range(t, |i| (i.arg_start, i.arg_end)),
        b"environ" => read_range(t, |i| (i.env_start, i.env_end)),
        b"exe" => {
            let exe = t.proc.image().exe.clone();
            let c = std::ffi::CString::new(exe).ok()?;
            // SAFETY: `c` is a valid C string; the flags are the guest's.
            let fd = unsafe { libc::open(c.as_ptr(), flags & !libc::O_CREAT, 0) };
            return Some(Errno::check(fd as i64));
        }
        b"mem" => return Some(open_mem(t, flags)),
        _ => return None,
    };
    if acc != libc::O_RDONLY {
        return Some(Err(Errno::EACCES));
    }
    Some(memfd_with(&content, flags))
}

/// Another guest's /proc/PID `file` (maps, exe, auxv, cmdline, environ) as it sees its own
/// (`procview`); None when `pid` publishes no view (a native process: the host's file is
/// Linux's). The host opens the path first, as Linux's permission check at open and for the
/// errors of a task that does not exist.
fn open_other_view(path: &[u8], pid: i32, file: &[u8], flags: i32) -> Option<SysResult> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: a valid C string; the descriptor is closed at once.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Some(Err(Errno::last()));
        }
        libc::close(fd);
    }
    let view = crate::procview::of(pid)?;
    let content = match file {
        b"maps" => view.maps,
        b"auxv" => view.auxv,
        b"cmdline" => view.cmdline(),
        b"environ" => view.environ(),
        b"exe" => return Some(open_published_exe(&view.exe_host, flags)),
        _ => return None,
    };
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        return Some(Err(Errno::EACCES));
    }
    Some(memfd_with(&content, flags))
}

/// Opens the executable another process published. The path is that process's word, so it
/// must not lead into /proc (a host /proc/PID/mem would reach cetbox's own memory): a file on
/// a proc file system is refused.
fn open_published_exe(path: &[u8], flags: i32) -> SysResult {
    let c = std::ffi::CString::new(path).map_err(|_| Errno::ENOENT)?;
    // SAFETY: `c` is a valid C string; the flags are the guest's, never creating.
    let fd = unsafe { libc::open(c.as_ptr(), flags & !(libc::O_CREAT | libc::O_TMPFILE), 0) };
    let fd = Errno::check(fd as i64)? as i32;
    // SAFETY: a zeroed statfs is a valid out-parameter for our descriptor.
    let on_proc = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::fstatfs(fd, &mut st) != 0 || st.f_type == libc::PROC_SUPER_MAGIC
    };
    if on_proc {
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(fd) };
        return Err(Errno::EACCES);
    }
    Ok(fd as u64)
}

/// /proc/PID/auxv (or /proc/PID/task/TID/auxv) of another guest that a guest tracer traces:
/// the guest's auxv it published (syscalls/ptrace), where the host's file shows its cetbox's.
fn traced_auxv(path: &[u8], flags: i32) -> Option<SysResult> {
    let rest = trim_slashes(path).strip_prefix(b"/proc/")?;
    let (pid, tail) = rest.split_at(rest.iter().position(|&c| c == b'/')?);
    let pid: i32 = std::str::from_utf8(pid).ok()?.parse().ok()?;
    let tail = &tail[1..];
    let is_auxv = tail == b"auxv"
        || tail
            .strip_prefix(b"task/")
            .and_then(|t| t.split(|&c| c == b'/').nth(1))
            .is_some_and(|f| f == b"auxv");
    if !is_auxv {
        return None;
    }
    let content = crate::syscalls::ptrace::traced_auxv(pid)?;
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        return Some(Err(Errno::EACCES));
    }
    Some(memfd_with(&content, flags))
}

fn memfd_with(content: &[u8], flags: i32) -> SysResult {
    let mfd = if flags & libc::O_CLOEXEC != 0 {
        libc::MFD_CLOEXEC
    } else {
        0
    };
    use std::os::fd::IntoRawFd;
    match crate::memfd::holding(c"cetbox-proc", mfd, content) {
        Ok(fd) => Ok(fd.into_raw_fd() as u64),
        Err(crate::memfd::Failed::Create(e)) => Err(e),
        Err(crate::memfd::Failed::Write) => Err(Errno::EIO),
    }
}

fn read_range(t: &Thread, f: impl Fn(&crate::process::Image) -> (u64, u64)) -> Vec<u8> {
    let (s, e) = f(&t.proc.image());
    if e <= s {
        return Vec::new();
    }
    let mut buf = vec![0u8; (e - s) as usize];
    // The area may have been unmapped or changed by the program; Linux reads it live too.
    if t.mem().read_bytes(s, &mut buf).is_err() {
        return Vec::new();
    }
    buf
}

fn open_mem(t: &Thread, flags: i32) -> SysResult {
    let fd = mem_placeholder(flags)?;
    t.proc.mem_fds().insert(fd, 0);
    Ok(fd as u64)
}

/// The descriptor a guest gets for a /proc/PID/mem: an empty sealed memfd with the guest's
/// access mode, never the host's /proc file, which would address cetbox's own memory. Reads
/// and writes of it are cetbox's (`mem_access`, by descriptor number); a copy of it that
/// cetbox does not know (dup, SCM_RIGHTS, pidfd_getfd) reads nothing and cannot be written.
fn mem_placeholder(flags: i32) -> Result<i32, Errno> {
    // SAFETY: memfd_create with a valid name; fcntl and open on the descriptor we made.
    unsafe {
        let m = libc::memfd_create(
            c"cetbox-proc-mem".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        );
        if m < 0 {
            return Err(Errno::last());
        }
        libc::fcntl(
            m,
            libc::F_ADD_SEALS,
            libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL,
        );
        let path = std::ffi::CString::new(format!("/proc/self/fd/{m}")).unwrap_or_default();
        let fd = libc::open(path.as_ptr(), flags & (libc::O_ACCMODE | libc::O_CLOEXEC));
        let e = Errno::last();
        libc::close(m);
        if fd < 0 {
            return Err(e);
        }
        Ok(fd)
    }
}

/// The process whose /proc/PID/mem (or /proc/PID/task/TID/mem) `path` names, when that is not
/// this process.
fn other_mem(t: &Thread, path: &[u8]) -> Option<i32> {
    let rest = path.strip_prefix(b"/proc/")?;
    let mut parts = rest.split(|&c| c == b'/').filter(|p| !p.is_empty());
    let pid = parts.next()?;
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    if !digits(pid) {
        return None;
    }
    let pid: i32 = std::str::from_utf8(pid).ok()?.parse().ok()?;
    match (parts.next()?, parts.next(), parts.next(), parts.next()) {
        (b"mem", None, _, _) => {}
        (b"task", Some(tid), Some(b"mem"), None) if digits(tid) => {}
        _ => return None,
    }
    (pid != t.proc.pid).then_some(pid)
}

/// Another process's /proc/PID/mem: the host opens it once as the permission check (Linux's,
/// mm_access with PTRACE_MODE_ATTACH, at open), the guest gets a placeholder, and reads and
/// writes go through `remote_mem`, which allows only that process's guest memory when it is a
/// cetbox guest.
fn open_other_mem(t: &Thread, path: &[u8], pid: i32, flags: i32) -> SysResult {
    let c = std::ffi::CString::new(path).map_err(|_| Errno::ENOENT)?;
    // SAFETY: a valid C string; the access mode is the guest's; the descriptor is closed.
    unsafe {
        let fd = libc::open(c.as_ptr(), flags & libc::O_ACCMODE | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(Errno::last());
        }
        libc::close(fd);
    }
    let fd = mem_placeholder(flags)?;
    t.proc.mem_fds().insert(fd, pid);
    Ok(fd as u64)
}

/// Whether `fd` is a guest /proc/PID/mem descriptor.
pub fn is_mem_fd(t: &Thread, fd: i32) -> bool {
    t.proc.mem_fds().contains_key(&fd)
}

/// `new` is now a copy of `old` (dup, dup2, dup3, F_DUPFD): a copy of a /proc/PID/mem
/// descriptor shows the same memory; a descriptor replaced by a copy of another file no
/// longer does.
pub fn copied_fd(t: &Thread, old: i32, new: i32) {
    if old == new {
        return;
    }
    let mut m = t.proc.mem_fds();
    match m.get(&old).copied() {
        Some(pid) => {
            m.insert(new, pid);
        }
        None => {
            m.remove(&new);
        }
    }
}

/// Forget a /proc/self/mem descriptor (call from close).
pub fn forget_fd(t: &Thread, fd: i32) {
    t.proc.mem_fds().remove(&fd);
}

/// A read or write of guest memory through /proc/self/mem at guest address `addr`: reads
/// need mapped pages (any protection), writes are forced (they work on read-only and
/// shadow-stack pages, which stay shadow-stack pages). Like Linux, a transfer that starts
/// on an unmapped page fails with EIO, one that reaches one stops short.
pub fn mem_access(t: &Thread, addr: u64, buf: &mut [u8], write: bool) -> SysResult {
    forced_access(t.mem(), addr, buf, write)
}

/// `mem_access` through the guest's /proc/PID/mem descriptor `fd`: this process's memory, or
/// another process's through `remote_mem`.
pub fn mem_access_fd(t: &Thread, fd: i32, addr: u64, buf: &mut [u8], write: bool) -> SysResult {
    let pid = t.proc.mem_fds().get(&fd).copied().unwrap_or(0);
    if pid != 0 && pid != t.proc.pid {
        return crate::remote_mem::mem_file(pid, addr, buf, write);
    }
    mem_access(t, addr, buf, write)
}

/// `mem_access` on an address space (ptrace's and a debugger's FOLL_FORCE access).
pub fn forced_access(
    mem: &cetbox_mem::AddressSpace,
    addr: u64,
    buf: &mut [u8],
    write: bool,
) -> SysResult {
    let mut done = 0usize;
    while done < buf.len() {
        let a = addr.wrapping_add(done as u64);
        let Some(v) = mem.find_vma(a) else { break };
        let n = ((v.end - a) as usize).min(buf.len() - done);
        let r = if write {
            mem.force_write(a, &buf[done..done + n]).map_err(|_| ())
        } else {
            read_forced(mem, a, &mut buf[done..done + n])
        };
        if r.is_err() {
            break;
        }
        done += n;
    }
    if done == 0 && !buf.is_empty() {
        return Err(Errno::EIO);
    }
    Ok(done as u64)
}

fn read_forced(mem: &cetbox_mem::AddressSpace, a: u64, out: &mut [u8]) -> Result<(), ()> {
    // Reads are allowed whatever the protection (FOLL_FORCE); pages past EOF are not.
    if !mem.forced_readable(a, out.len() as u64) {
        return Err(());
    }
    // SAFETY: every page is guest memory mapped on the host (readable: private and shared
    // guest memory is always host-readable).
    unsafe { std::ptr::copy_nonoverlapping(a as *const u8, out.as_mut_ptr(), out.len()) };
    Ok(())
}

fn dev_parts(dev: u64) -> (u32, u32) {
    (libc::major(dev), libc::minor(dev))
}

/// The name column of a maps line.
fn vma_name(v: &Vma, brk: (u64, u64), sysroot: Option<&std::path::Path>) -> Option<String> {
    match (&v.backing, v.kind) {
        (Backing::File { path, .. }, _) => Some(crate::sysroot::to_guest(sysroot, path)),
        (_, VmaKind::Stack) => Some("[stack]".into()),
        (_, VmaKind::Vdso) => Some("[vdso]".into()),
        (_, VmaKind::Vvar) => Some("[vvar]".into()),
        (_, VmaKind::Heap) => Some("[heap]".into()),
        _ if v.start <= brk.0 && v.end >= brk.1 && brk.1 > brk.0 && v.kind == VmaKind::Normal => {
            None
        }
        _ if v.shared => Some("/dev/zero (deleted)".into()),
        _ => None,
    }
}

/// One /proc/self/maps line.
pub fn maps_line(v: &Vma, brk: (u64, u64)) -> String {
    maps_line_in(v, brk, None)
}

/// One /proc/self/maps line, file names shown as the guest sees them under `--sysroot`.
pub fn maps_line_in(v: &Vma, brk: (u64, u64), sysroot: Option<&std::path::Path>) -> String {
    let (off, (maj, min), ino) = match &v.backing {
        Backing::File {
            dev, inode, offset, ..
        } => (*offset, dev_parts(*dev), *inode),
        Backing::Anonymous => (0, (0, 0), 0),
    };
    let r = |b: i32, c: char| if v.prot & b as u32 != 0 { c } else { '-' };
    let mut s = format!(
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        v.start,
        v.end,
        r(libc::PROT_READ, 'r'),
        r(libc::PROT_WRITE, 'w'),
        r(libc::PROT_EXEC, 'x'),
        if v.shared { 's' } else { 'p' },
        off,
        maj,
        min,
        ino
    );
    if let Some(name) = vma_name(v, brk, sysroot) {
        while s.len() < 73 {
            s.push(' ');
        }
        s.push_str(&name);
    }
    s.push('\n');
    s
}

fn brk_range(t: &Thread) -> (u64, u64) {
    let i = t.proc.image();
    (i.brk_start, i.brk)
}

/// /proc/self/maps.
pub fn maps(t: &Thread) -> Vec<u8> {
    let brk = brk_range(t);
    let mut out = String::new();
    for v in t.mem().vmas() {
        out.push_str(&maps_line_in(&v, brk, t.proc.opts.sysroot.as_deref()));
    }
    out.into_bytes()
}

/// The VmFlags mnemonics of a VMA, in Linux's bit order.
pub fn vm_flags(v: &Vma) -> String {
    let prot = |b: i32| v.prot & b as u32 != 0;
    let mut f = Vec::new();
    if prot(libc::PROT_READ) {
        f.push("rd");
    }
    if prot(libc::PROT_WRITE) {
        f.push("wr");
    }
    if prot(libc::PROT_EXEC) {
        f.push("ex");
    }
    if v.shared {
        f.push("sh");
    }
    f.push("mr");
    // A shared mapping of a read-only descriptor lacks VM_MAYWRITE; cetbox does not keep
    // the descriptor's mode, so it shows `mw` only while the mapping is writable.
    if !v.shared || prot(libc::PROT_WRITE) {
        f.push("mw");
    }
    f.push("me");
    if v.shared {
        f.push("ms");
    }
    if v.growsdown {
        f.push("gd");
    }
    // VM_ACCOUNT: private writable memory (accounted at creation).
    let anon_like = !v.shared
        && (prot(libc::PROT_WRITE)
            || v.kind == VmaKind::ShadowStack
            || matches!(v.kind, VmaKind::Stack | VmaKind::Heap));
    if anon_like {
        f.push("ac");
    }
    if v.kind == VmaKind::ShadowStack {
        f.push("ss");
    }
    let mut s = String::from("VmFlags: ");
    for m in f {
        s.push_str(m);
        s.push(' ');
    }
    s.push('\n');
    s
}

/// /proc/self/smaps. Residency is not tracked: every page counts as resident and private
/// (dirty for anonymous memory, clean for file pages).
pub fn smaps(t: &Thread) -> Vec<u8> {
    let brk = brk_range(t);
    let pagemap = host_pagemap();
    let mut out = String::new();
    for v in t.mem().vmas() {
        out.push_str(&maps_line_in(&v, brk, t.proc.opts.sysroot.as_deref()));
        let kb = v.len() / 1024;
        let (ra, rf) = resident(pagemap.as_ref(), &v);
        let rss = ra + rf;
        let line = |o: &mut String, name: &str, val: u64| {
            let _ = writeln!(o, "{:<16}{:>8} kB", format!("{name}:"), val);
        };
        line(&mut out, "Size", kb);
        line(&mut out, "KernelPageSize", 4);
        line(&mut out, "MMUPageSize", 4);
        line(&mut out, "Rss", rss);
        line(&mut out, "Pss", rss);
        line(&mut out, "Pss_Dirty", ra);
        line(&mut out, "Shared_Clean", 0);
        line(&mut out, "Shared_Dirty", 0);
        line(&mut out, "Private_Clean", rf);
        line(&mut out, "Private_Dirty", ra);
        line(&mut out, "Referenced", rss);
        line(&mut out, "Anonymous", ra);
        line(&mut out, "KSM", 0);
        line(&mut out, "LazyFree", 0);
        line(&mut out, "AnonHugePages", 0);
        line(&mut out, "ShmemPmdMapped", 0);
        line(&mut out, "FilePmdMapped", 0);
        line(&mut out, "Shared_Hugetlb", 0);
        line(&mut out, "Private_Hugetlb", 0);
        line(&mut out, "Swap", 0);
        line(&mut out, "SwapPss", 0);
        line(&mut out, "Locked", 0);
        let _ = writeln!(out, "{:<16}{:>8}", "THPeligible:", 0);
        out.push_str(&vm_flags(&v));
    }
    out.into_bytes()
}

/// The `x86_Thread_features` line value for a feature mask (Linux arch/x86/kernel/cpu/proc.c,
/// arch_proc_pid_thread_features()).
pub fn feature_words(bits: u64) -> String {
    let mut s = String::new();
    if bits & 1 != 0 {
        s.push_str("shstk ");
    }
    if bits & 2 != 0 {
        s.push_str("wrss ");
    }
    s
}

fn comm(t: &Thread) -> String {
    let exe = t.proc.image().exe.clone();
    let base = exe.rsplit('/').next().unwrap_or("").to_string();
    // TASK_COMM_LEN is 16 including the NUL.
    base.chars().take(15).collect()
}

struct Sizes {
    vm_size: u64,
    vm_stk: u64,
    vm_exe: u64,
    vm_data: u64,
    vm_lib: u64,
    /// Resident KiB (see `resident`).
    rss_anon: u64,
    rss_file: u64,
    rss_shmem: u64,
}

fn sizes(t: &Thread) -> Sizes {
    let exe = t.proc.image().exe.clone();
    let mut s = Sizes {
        vm_size: 0,
        vm_stk: 0,
        vm_exe: 0,
        vm_data: 0,
        vm_lib: 0,
        rss_anon: 0,
        rss_file: 0,
        rss_shmem: 0,
    };
    let pagemap = host_pagemap();
    for v in t.mem().vmas() {
        let kb = v.len() / 1024;
        s.vm_size += kb;
        let (anon, file) = resident(pagemap.as_ref(), &v);
        s.rss_anon += anon;
        if v.shared && v.backing == Backing::Anonymous {
            s.rss_shmem += file;
        } else {
            s.rss_file += file;
        }
        let exec = v.prot & libc::PROT_EXEC as u32 != 0;
        let write = v.prot & libc::PROT_WRITE as u32 != 0;
        if v.growsdown || v.kind == VmaKind::ShadowStack || v.kind == VmaKind::Stack {
            s.vm_stk += kb;
        } else if exec && !write {
            match &v.backing {
                Backing::File { path, .. } if *path == exe => s.vm_exe += kb,
                _ => s.vm_lib += kb,
            }
        } else if write && !v.shared {
            s.vm_data += kb;
        }
    }
    s
}

/// The resident part of a guest mapping in KiB, as (anonymous, file-backed or shared): the
/// pages the host kernel has page-table entries for (guest memory is host memory at the same
/// address), read from the host's /proc/self/pagemap (bit 63: present; bit 61: file page or
/// shared anonymous; Documentation/admin-guide/mm/pagemap.rst). PROT_NONE mappings (huge
/// reservations) are not scanned: the guest cannot have touched them.
fn resident(pagemap: Option<&std::fs::File>, v: &Vma) -> (u64, u64) {
    use std::os::unix::fs::FileExt;
    let Some(f) = pagemap else {
        return (0, 0);
    };
    if v.prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32 == 0 {
        return (0, 0);
    }
    let (mut anon, mut file) = (0u64, 0u64);
    let mut buf = vec![0u8; 8 * 4096];
    let mut page = v.start / PAGE_SIZE;
    let end = v.end / PAGE_SIZE;
    while page < end {
        let n = ((end - page) as usize).min(4096);
        let Ok(got) = f.read_at(&mut buf[..n * 8], page * 8) else {
            break;
        };
        for e in buf[..got].chunks_exact(8) {
            let e = u64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
            if e & (1 << 63) != 0 {
                if e & (1 << 61) != 0 {
                    file += 4;
                } else {
                    anon += 4;
                }
            }
        }
        if got < n * 8 {
            break;
        }
        page += n as u64;
    }
    (anon, file)
}

fn host_pagemap() -> Option<std::fs::File> {
    std::fs::File::open("/proc/self/pagemap").ok()
}

fn host_status_field(name: &str) -> Option<String> {
    let st = std::fs::read_to_string("/proc/self/status").ok()?;
    st.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.to_string()))
}

fn sigset_hex(v: u64) -> String {
    format!("{v:016x}")
}

/// /proc/self/status.
pub fn status(t: &Thread) -> Vec<u8> {
    let sz = sizes(t);
    // SAFETY: these calls have no preconditions.
    let (ppid, uid, euid, gid, egid) = unsafe {
        (
            libc::getppid(),
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    // SAFETY: umask is read by setting and restoring it.
    let um = unsafe {
        let u = libc::umask(0);
        libc::umask(u);
        u
    };
    let pid = t.proc.pid;
    let threads = host_status_field("Threads")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "1".into());
    let mut o = String::new();
    let _ = writeln!(o, "Name:\t{}", comm(t));
    let _ = writeln!(o, "Umask:\t{um:04o}");
    let _ = writeln!(o, "State:\tR (running)");
    let _ = writeln!(o, "Tgid:\t{pid}");
    let _ = writeln!(o, "Ngid:\t0");
    let _ = writeln!(o, "Pid:\t{}", t.tid);
    let _ = writeln!(o, "PPid:\t{ppid}");
    let _ = writeln!(o, "TracerPid:\t0");
    let _ = writeln!(o, "Uid:\t{uid}\t{euid}\t{euid}\t{euid}");
    let _ = writeln!(o, "Gid:\t{gid}\t{egid}\t{egid}\t{egid}");
    let _ = writeln!(
        o,
        "FDSize:\t{}",
        host_status_field("FDSize")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "64".into())
    );
    let _ = writeln!(
        o,
        "Groups:\t{}",
        host_status_field("Groups")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    );
    let _ = writeln!(o, "NStgid:\t{pid}");
    let _ = writeln!(o, "NSpid:\t{}", t.tid);
    let kb = |o: &mut String, n: &str, v: u64| {
        let _ = writeln!(o, "{n}:\t{v:>8} kB");
    };
    kb(&mut o, "VmPeak", sz.vm_size);
    kb(&mut o, "VmSize", sz.vm_size);
    kb(&mut o, "VmLck", 0);
    kb(&mut o, "VmPin", 0);
    let rss = sz.rss_anon + sz.rss_file + sz.rss_shmem;
    let hwm = t
        .proc
        .rss_peak
        .fetch_max(rss, std::sync::atomic::Ordering::Relaxed)
        .max(rss);
    kb(&mut o, "VmHWM", hwm);
    kb(&mut o, "VmRSS", rss);
    kb(&mut o, "RssAnon", sz.rss_anon);
    kb(&mut o, "RssFile", sz.rss_file);
    kb(&mut o, "RssShmem", sz.rss_shmem);
    kb(&mut o, "VmData", sz.vm_data);
    kb(&mut o, "VmStk", sz.vm_stk);
    kb(&mut o, "VmExe", sz.vm_exe);
    kb(&mut o, "VmLib", sz.vm_lib);
    kb(&mut o, "VmPTE", 0);
    kb(&mut o, "VmSwap", 0);
    kb(&mut o, "HugetlbPages", 0);
    let _ = writeln!(o, "CoreDumping:\t0");
    let _ = writeln!(o, "THP_enabled:\t1");
    let _ = writeln!(o, "untag_mask:\t0xffffffffffffffff");
    let _ = writeln!(o, "Threads:\t{threads}");
    let _ = writeln!(
        o,
        "SigQ:\t0/{}",
        host_status_field("SigQ")
            .and_then(|s| s.trim().split('/').nth(1).map(str::to_string))
            .unwrap_or_else(|| "63704".into())
    );
    let thread_pending = t
        .signals
        .pending
        .iter()
        .fold(0u64, |m, s| m | crate::signals::bit(s.signo));
    let proc_pending = t
        .proc
        .signals
        .pending
        .lock()
        .map(|p| p.iter().fold(0u64, |m, s| m | crate::signals::bit(s.signo)))
        .unwrap_or(0);
    let (mut ign, mut cgt) = (0u64, 0u64);
    for sig in 1..=64 {
        let a = t.proc.signals.action(sig);
        match a.handler {
            0 => {}
            1 => ign |= crate::signals::bit(sig),
            _ => cgt |= crate::signals::bit(sig),
        }
    }
    let _ = writeln!(o, "SigPnd:\t{}", sigset_hex(thread_pending));
    let _ = writeln!(o, "ShdPnd:\t{}", sigset_hex(proc_pending));
    let _ = writeln!(o, "SigBlk:\t{}", sigset_hex(t.signals.mask));
    let _ = writeln!(o, "SigIgn:\t{}", sigset_hex(ign));
    let _ = writeln!(o, "SigCgt:\t{}", sigset_hex(cgt));
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let v = host_status_field(cap)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "0000000000000000".into());
        let _ = writeln!(o, "{cap}:\t{v}");
    }
    let _ = writeln!(o, "NoNewPrivs:\t0");
    let _ = writeln!(o, "Seccomp:\t0");
    let _ = writeln!(o, "Seccomp_filters:\t0");
    let _ = writeln!(o, "Speculation_Store_Bypass:\tvulnerable");
    let _ = writeln!(o, "SpeculationIndirectBranch:\talways enabled");
    let _ = writeln!(o, "Cpus_allowed:\t1");
    let _ = writeln!(o, "Cpus_allowed_list:\t0");
    let _ = writeln!(o, "Mems_allowed:\t1");
    let _ = writeln!(o, "Mems_allowed_list:\t0");
    let _ = writeln!(o, "voluntary_ctxt_switches:\t0");
    let _ = writeln!(o, "nonvoluntary_ctxt_switches:\t0");
    let _ = writeln!(
        o,
        "x86_Thread_features:\t{}",
        feature_words(t.shstk.features)
    );
    let _ = writeln!(
        o,
        "x86_Thread_features_locked:\t{}",
        feature_words(t.shstk.locked)
    );
    o.into_bytes()
}

/// /proc/self/stat (the fields programs read: pid, comm, state, ppid, pgrp, session, the
/// sizes, start_stack, and the arg/env/brk addresses).
pub fn stat(t: &Thread) -> Vec<u8> {
    let sz = sizes(t);
    let img = t.proc.image().clone();
    // SAFETY: these calls have no preconditions.
    let (ppid, pgrp, sid) = unsafe { (libc::getppid(), libc::getpgrp(), libc::getsid(0)) };
    let code = t
        .mem()
        .vmas()
        .into_iter()
        .filter(|v| matches!(&v.backing, Backing::File { path, .. } if *path == img.exe))
        .filter(|v| v.prot & libc::PROT_EXEC as u32 != 0)
        .fold((0u64, 0u64), |(s, e), v| {
            (if s == 0 { v.start } else { s.min(v.start) }, e.max(v.end))
        });
    let rss_pages = sz.vm_size * 1024 / PAGE_SIZE;
    let start_stack = img.arg_start & !7;
    let fields: Vec<String> = vec![
        t.tid.to_string(),
        format!("({})", comm(t)),
        "R".into(),
        ppid.to_string(),
        pgrp.to_string(),
        sid.to_string(),
        "0".into(),
        "-1".into(),
        "4194304".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(), // minflt cminflt majflt cmajflt
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(), // utime stime cutime cstime
        "20".into(),
        "0".into(),
        "1".into(),
        "0".into(),
        "0".into(), // starttime
        (sz.vm_size * 1024).to_string(),
        rss_pages.to_string(),
        u64::MAX.to_string(),
        code.0.to_string(),
        code.1.to_string(),
        start_stack.to_string(),
        "0".into(),
        "0".into(), // kstkesp kstkeip
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(), // signal blocked sigignore sigcatch
        "0".into(),
        "0".into(),
        "0".into(),  // wchan nswap cnswap
        "17".into(), // exit_signal
        "0".into(),  // processor
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(), // start_data end_data
        img.brk_start.to_string(),
        img.arg_start.to_string(),
        img.arg_end.to_string(),
        img.env_start.to_string(),
        img.env_end.to_string(),
        "0".into(),
    ];
    let mut s = fields.join(" ");
    s.push('\n');
    s.into_bytes()
}

/// /proc/self/statm, in pages.
pub fn statm(t: &Thread) -> Vec<u8> {
    let sz = sizes(t);
    let p = |kb: u64| kb * 1024 / PAGE_SIZE;
    format!(
        "{} {} {} {} 0 {} 0\n",
        p(sz.vm_size),
        p(sz.rss_anon + sz.rss_file + sz.rss_shmem),
        p(sz.rss_file + sz.rss_shmem),
        p(sz.vm_exe),
        p(sz.vm_data + sz.vm_stk)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_lines() {
        assert_eq!(feature_words(0), "");
        assert_eq!(feature_words(1), "shstk ");
        assert_eq!(feature_words(3), "shstk wrss ");
        assert_eq!(feature_words(2), "wrss ");
        assert_eq!(feature_words(1 << 5 | 1), "shstk ");
    }
}
