//! The guest's view of /proc/self: maps, smaps, status, exe, auxv, cmdline, environ, stat,
//! statm and mem, synthesized from cetbox's own state in Linux's exact formats.
//!
//! Synthesized files are memfds holding a snapshot taken at open time, made again when the
//! guest reads one from offset 0 after its first read (`refresh_before_read`): Linux's
//! seq_file makes a /proc file's text anew at every read from offset 0 (fs/seq_file.c
//! `seq_read_iter`), and programs poll a process's state by rewinding one open descriptor
//! (glibc's support_process_state_wait).
//! /proc/self/mem is a host descriptor for the host's /proc/self/mem, which addresses guest
//! memory directly (guest addresses are host addresses); it is registered so that the file
//! syscalls can route its reads and writes through `mem_access`, which applies the guest's
//! mappings and Linux's forced-write semantics (Linux mm/gup.c, check_vma_flags()).

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::{Backing, Vma, VmaKind, PAGE_SIZE};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt as _;

/// A path under /proc split into the parts that name a process's or thread's file:
/// /proc/HEAD/REST or /proc/HEAD/task/TASK/REST (empty components skipped). The one parser of
/// such paths for the /proc files cetbox makes or filters.
pub struct ProcPath<'a> {
    /// The process component: a pid, `self` or `thread-self` (or any other name).
    pub head: &'a [u8],
    /// `head` as a number, when it is one.
    pub pid: Option<i32>,
    /// The TASK component of /proc/HEAD/task/TASK/..., when there is one.
    pub task: Option<&'a [u8]>,
    /// The components after the process or task directory.
    pub rest: Vec<&'a [u8]>,
}

impl<'a> ProcPath<'a> {
    pub fn parse(path: &'a [u8]) -> Option<ProcPath<'a>> {
        let rest = path.strip_prefix(b"/proc/")?;
        let mut parts = rest.split(|&c| c == b'/').filter(|p| !p.is_empty());
        let head = parts.next()?;
        let mut rest: Vec<&[u8]> = parts.collect();
        let task = match rest.as_slice() {
            [b"task", tid, ..] => {
                let tid = *tid;
                rest.drain(..2);
                Some(tid)
            }
            _ => None,
        };
        Some(ProcPath {
            head,
            pid: number(head),
            task,
            rest,
        })
    }

    /// The one file the path names in the process or task directory (None: none, or deeper).
    pub fn file(&self) -> Option<&'a [u8]> {
        match self.rest.as_slice() {
            [f] => Some(f),
            _ => None,
        }
    }

    /// The task's id, when the path has a task component that is a number.
    pub fn tid(&self) -> Option<i32> {
        self.task.and_then(number)
    }
}

/// A /proc name made of decimal digits as a number.
fn number(p: &[u8]) -> Option<i32> {
    if p.is_empty() || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(p).ok()?.parse().ok()
}

/// Which process file a path names, after the /proc/<self>/ prefix.
fn strip<'a>(t: &Thread, path: &'a [u8]) -> Option<&'a [u8]> {
    let p = ProcPath::parse(path)?;
    if p.head == b"thread-self" {
        return p.task.is_none().then(|| p.file()).flatten();
    }
    if p.head != b"self" && p.pid != Some(t.proc.pid) {
        return None;
    }
    let file = p.file()?;
    // /proc/<pid>/task/<tid>/x: every thread of the process shares its address space (a task
    // directory under our pid can only name one of our threads), so the memory files are the
    // process's; another thread's stat and status describe that thread (its state), which
    // the host's files do.
    // The per-thread files of the process directory are its leader's (`thread_of`).
    if thread_of(t, &p).is_some_and(|tid| tid != t.tid) {
        return None;
    }
    p.task.map_or(Some(()), |_| p.tid().map(|_| ()))?;
    Some(file)
}

fn trim_slashes(mut s: &[u8]) -> &[u8] {
    while let Some(r) = s.strip_suffix(b"/") {
        s = r;
    }
    s
}

/// The target of a readlink on a /proc path cetbox synthesizes.
pub fn readlink(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    // Host files read meanwhile are cetbox's own for a moment (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    let p = trim_slashes(path);
    if p == b"/proc/self" {
        return Some(t.proc.pid.to_string().into_bytes());
    }
    if p == b"/proc/thread-self" {
        return Some(format!("{}/task/{}", t.proc.pid, t.tid).into_bytes());
    }
    if let Some((pid, _, b"exe")) = crate::procview::other_file(t, p) {
        // The host's readlink is the permission check (and ENOENT for a bad task).
        std::fs::read_link(std::ffi::OsStr::from_bytes(p)).ok()?;
        let need = crate::procview::Need {
            exe: true,
            ..Default::default()
        };
        return crate::procview::of(pid, need).map(|v| v.exe);
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
    let r = open_inner(t, path, flags)?;
    if let Ok(fd) = r {
        crate::proc_refresh::opened(fd as i32, path);
    }
    Some(r)
}

fn open_inner(t: &mut Thread, path: &[u8], flags: i32) -> Option<SysResult> {
    // Host files read meanwhile are cetbox's own for a moment (`cetbox_mem::transient`); the
    // memfd made for the guest is the guest's, as the descriptor a native open makes.
    let _hold = cetbox_mem::transient::hold();
    if let Some(pid) = other_mem(t, path) {
        return Some(open_other_mem(t, path, pid, flags));
    }
    if let Some((pid, tid, file)) = crate::procview::other_file(t, trim_slashes(path)) {
        if let Some(r) = open_other_view(path, pid, tid, file, flags) {
            return Some(r);
        }
    }
    if let Some(r) = traced_auxv(path, flags) {
        return Some(r);
    }
    if let Some(content) = other_thread_file(t, path) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Some(Err(Errno::EACCES));
        }
        return Some(memfd_with(&content, flags));
    }
    let name = strip(t, path)?;
    let acc = flags & libc::O_ACCMODE;
    let content = match name {
        b"exe" => {
            let exe = t.proc.image().exe.clone();
            let c = std::ffi::CString::new(exe).ok()?;
            // SAFETY: `c` is a valid C string; the flags are the guest's.
            let fd = unsafe { libc::open(c.as_ptr(), flags & !libc::O_CREAT, 0) };
            return Some(Errno::check(fd as i64));
        }
        b"mem" => return Some(open_mem(t, flags)),
        _ => self_content(t, name, path)?,
    };
    if acc != libc::O_RDONLY {
        return Some(Err(Errno::EACCES));
    }
    Some(memfd_with(&content, flags))
}

/// The text of this process's synthesized file `name` (after /proc/self/, of the file at
/// `path`), as made now; None for names that are not synthesized text.
fn self_content(t: &Thread, name: &[u8], path: &[u8]) -> Option<Vec<u8>> {
    Some(match name {
        b"children" => children_without_holder(t, path)?,
        b"maps" => maps(t),
        b"smaps" => smaps(t),
        b"smaps_rollup" => smaps_rollup(t),
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
        b"limits" => limits_text(
            &std::fs::read_to_string("/proc/self/limits").ok()?,
            own_limits(),
        ),
        // fs/proc/base.c proc_pid_personality.
        b"personality" => format!(
            "{:08x}\n",
            t.proc
                .personality
                .load(std::sync::atomic::Ordering::Relaxed)
        )
        .into_bytes(),
        b"syscall" => own_syscall(t),
        b"wchan" => b"0".to_vec(),
        _ => return None,
    })
}

/// The text of a synthesized /proc file at `path` as made now, for a read from offset 0 of a
/// descriptor opened on it (`crate::proc_refresh`); None when it is not made by cetbox (or
/// another guest no longer publishes its view).
pub fn content_now(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    // Host files read meanwhile are cetbox's own for a moment (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    if let Some((pid, tid, file)) = crate::procview::other_file(t, trim_slashes(path)) {
        // A process that no longer publishes its view (it has exited and is a zombie, whose
        // view went with its memory) or its thread's facts (the thread is exiting) is shown
        // as the host shows it, as an open would show it now: the text it showed while it
        // ran would otherwise stay, and a reader waiting for State Z (glibc's
        // support_process_state_wait, misc/tst-pidfd) would wait forever.
        // Only status and stat: the host's maps, environ, smaps... of a cetbox process whose
        // view could not be read for a moment are cetbox's own (its mappings, its
        // environment), never shown to a guest; those keep their last text.
        return crate::procview::of(pid, crate::procview::Need::of_file(file))
            .and_then(|view| other_content(view, pid, tid, file))
            .or_else(|| {
                matches!(file, b"status" | b"stat")
                    .then(|| host_text(trim_slashes(path), pid, tid, file))
                    .flatten()
            });
    }
    if let Some(content) = other_thread_file(t, path) {
        return Some(content);
    }
    self_content(t, strip(t, path)?, path)
}

/// A thread's `children` (proc(5)) in a vfork child that keeps a snapshot holder
/// (`crate::fork`): the host's list without the holder, which is cetbox's, no child of the
/// guest's. None (the host's file as it is) when there is no holder.
fn children_without_holder(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    let holder = t
        .proc
        .vfork_snapshot
        .load(std::sync::atomic::Ordering::SeqCst);
    if holder <= 0 {
        return None;
    }
    let text = std::fs::read(std::ffi::OsStr::from_bytes(trim_slashes(path))).ok()?;
    let text = String::from_utf8(text).ok()?;
    Some(
        text.split_ascii_whitespace()
            .filter(|p| p.parse::<i32>().ok() != Some(holder))
            .map(|p| format!("{p} "))
            .collect::<String>()
            .into_bytes(),
    )
}

/// The host's text of another process's file at `path` (`file` of its thread `tid`), for
/// when that process's view or the thread's facts cannot be read: a cetbox process that is
/// starting or whose thread has not yet reached its first system call, or one that has exited
/// (a zombie, which publishes nothing: the host's State Z is Linux's). A host S of a thread
/// that is not in a waiting call is one of cetbox's own waits and is shown as R
/// (`procview::Waiting`); the wait word is read after the host's file, as in `Facts::other`.
fn host_text(path: &[u8], pid: i32, tid: i32, file: &[u8]) -> Option<Vec<u8>> {
    let mut text = std::fs::read(std::ffi::OsStr::from_bytes(path)).ok()?;
    if !matches!(file, b"status" | b"stat") {
        return Some(text);
    }
    let Some(waiting) = crate::procview::wait_word(pid, tid) else {
        return Some(text);
    };
    // The state letter: stat's first field after the command's last ')', status's State.
    let at = if file == b"stat" {
        text.iter().rposition(|&c| c == b')').map(|i| i + 2)
    } else {
        text.windows(7)
            .position(|w| w == b"State:\t")
            .map(|i| i + 7)
    };
    if let Some(at) = at.filter(|&i| text.get(i) == Some(&b'S')) {
        if waiting == 0 {
            if file == b"stat" {
                text[at] = b'R';
            } else {
                let end = text[at..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(text.len(), |e| at + e);
                text.splice(at..end, b"R (running)".iter().copied());
            }
        }
    }
    Some(text)
}

/// The text of another guest's file `file` (of its thread `tid`) from its published `view`;
/// None for exe (a link) and names that are not synthesized.
fn other_content(view: crate::procview::View, pid: i32, tid: i32, file: &[u8]) -> Option<Vec<u8>> {
    match file {
        b"maps" => view.maps(),
        b"auxv" => Some(view.auxv),
        b"cmdline" => Some(view.cmdline()),
        b"environ" => Some(view.environ()),
        b"exe" => None,
        b"syscall" | b"wchan" => {
            let wchan = format!("/proc/{pid}/task/{tid}/wchan");
            sleep_file(file, || view.thread_words(tid), &wchan)
        }
        b"limits" => Some(limits_text(
            &std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?,
            view.limits()?.0,
        )),
        b"personality" => Some(format!("{:08x}\n", view.limits()?.1).into_bytes()),
        _ => other_task_file(&view, pid, tid, file),
    }
}

/// Another guest's /proc/PID `file` (maps, exe, auxv, cmdline, environ, and of thread `tid`
/// status, stat, statm, smaps, smaps_rollup) as it sees its own
/// (`procview`); None when `pid` publishes no view (a native process: the host's file is
/// Linux's). The host opens the path first, as Linux's permission check at open and for the
/// errors of a task that does not exist.
fn open_other_view(path: &[u8], pid: i32, tid: i32, file: &[u8], flags: i32) -> Option<SysResult> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: a valid C string; the descriptor is closed at once.
    unsafe {
        let fd = libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Some(Err(Errno::last()));
        }
        libc::close(fd);
    }
    let content = match crate::procview::of(pid, crate::procview::Need::of_file(file)) {
        Some(view) if file == b"exe" => return Some(open_published_exe(&view.exe_host, flags)),
        Some(view) => other_content(view, pid, tid, file),
        None => None,
    };
    // status and stat of a cetbox process whose view or thread facts are not there yet (or
    // for a moment cannot be read) are its host's files with the guest's State, on a
    // descriptor that later reads make anew from the view (`proc_refresh`): a descriptor on
    // the host's file itself would keep showing the host's State.
    let content = match content {
        Some(c) => c,
        None if matches!(file, b"status" | b"stat") && crate::remote_mem::runs_cetbox(pid) => {
            host_text(trim_slashes(path), pid, tid, file)?
        }
        None => return None,
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
    // A running program's executable cannot be opened for writing (ETXTBSY, fs/namei.c
    // do_open -> deny_write_access); and the path being another process's word, it is opened
    // read-only, without blocking (a FIFO) or taking a controlling terminal, and must be a
    // regular file not on /proc.
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        return Err(Errno::ETXTBSY);
    }
    let c = std::ffi::CString::new(path).map_err(|_| Errno::ENOENT)?;
    let safe = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let keep = flags & (libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOATIME | libc::O_LARGEFILE);
    // SAFETY: `c` is a valid C string; no flag creates, truncates or writes.
    let fd = unsafe { libc::open(c.as_ptr(), safe | keep, 0) };
    let fd = Errno::check(fd as i64)? as i32;
    // SAFETY: zeroed statfs and stat are valid out-parameters for our descriptor; F_SETFL
    // only changes its status flags to what the guest asked.
    let on_proc = unsafe {
        let mut sf: libc::statfs = std::mem::zeroed();
        let mut st: libc::stat = std::mem::zeroed();
        let bad = libc::fstatfs(fd, &mut sf) != 0
            || sf.f_type == libc::PROC_SUPER_MAGIC
            || libc::fstat(fd, &mut st) != 0
            || st.st_mode & libc::S_IFMT != libc::S_IFREG;
        if !bad && flags & libc::O_NONBLOCK == 0 {
            libc::fcntl(
                fd,
                libc::F_SETFL,
                flags & !libc::O_NONBLOCK & !libc::O_ACCMODE,
            );
        }
        bad
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
    let p = ProcPath::parse(path)?;
    if p.file()? != b"auxv" {
        return None;
    }
    let content = crate::syscalls::ptrace::traced_auxv(p.pid?)?;
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
    let p = ProcPath::parse(path)?;
    let pid = p.pid?;
    if p.file()? != b"mem" || (p.task.is_some() && p.tid().is_none()) {
        return None;
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
    crate::proc_refresh::copied(old, new);
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
    crate::proc_refresh::closed(fd);
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

/// What /proc/PID/smaps, status, stat and statm show of one VMA, made by the process itself
/// (`vma_infos`) and, for another process reading them, published with its maps (`procview`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    pub start: u64,
    pub end: u64,
    /// Its maps line.
    pub line: String,
    /// Its smaps VmFlags line.
    pub flags: String,
    /// Whether it can hold resident pages (not PROT_NONE: huge reservations are not scanned).
    scan: bool,
    /// Shared anonymous memory (RssShmem).
    shmem: bool,
    /// Which status size it counts in.
    class: SizeClass,
    /// An executable mapping of the program file (stat start_code/end_code).
    exe_code: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizeClass {
    Other = 0,
    Stack = 1,
    Exe = 2,
    Lib = 3,
    Data = 4,
}

impl VmaInfo {
    fn of(v: &Vma, brk: (u64, u64), sysroot: Option<&std::path::Path>, exe: &str) -> VmaInfo {
        let exec = v.prot & libc::PROT_EXEC as u32 != 0;
        let write = v.prot & libc::PROT_WRITE as u32 != 0;
        let of_exe = matches!(&v.backing, Backing::File { path, .. } if *path == exe);
        let class = if v.growsdown || v.kind == VmaKind::ShadowStack || v.kind == VmaKind::Stack {
            SizeClass::Stack
        } else if exec && !write {
            if of_exe {
                SizeClass::Exe
            } else {
                SizeClass::Lib
            }
        } else if write && !v.shared {
            SizeClass::Data
        } else {
            SizeClass::Other
        };
        VmaInfo {
            start: v.start,
            end: v.end,
            line: maps_line_in(v, brk, sysroot),
            flags: vm_flags(v),
            scan: v.prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32 != 0,
            shmem: v.shared && v.backing == Backing::Anonymous,
            class,
            exe_code: of_exe && exec,
        }
    }

    fn kb(&self) -> u64 {
        (self.end - self.start) / 1024
    }

    /// The records as bytes: per VMA start, end, a flag word (scan, shmem, exe_code, class
    /// from bit 8), the lengths of the two lines (u32 each), then the lines.
    pub fn encode(v: &[VmaInfo]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in v {
            let bits = i.scan as u64
                | (i.shmem as u64) << 1
                | (i.exe_code as u64) << 2
                | (i.class as u64) << 8;
            for w in [i.start, i.end, bits] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&(i.line.len() as u32).to_le_bytes());
            out.extend_from_slice(&(i.flags.len() as u32).to_le_bytes());
            out.extend_from_slice(i.line.as_bytes());
            out.extend_from_slice(i.flags.as_bytes());
        }
        out
    }

    /// The records `encode` made (another process's words: None when they do not parse).
    pub fn decode(mut b: &[u8]) -> Option<Vec<VmaInfo>> {
        /// The end of x86-64 user space with 4-level paging (arch/x86/include/asm/page_64.h
        /// TASK_SIZE_MAX: 2^47 minus a guard page).
        const USER_END: u64 = (1 << 47) - PAGE_SIZE;
        let mut out = Vec::new();
        let mut prev_end = 0u64;
        let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h.to_vec())
        };
        while !b.is_empty() {
            let w = |x: Vec<u8>| u64::from_le_bytes(x.try_into().unwrap_or_default());
            let start = w(take(&mut b, 8)?);
            let end = w(take(&mut b, 8)?);
            let bits = w(take(&mut b, 8)?);
            let len = |x: Vec<u8>| u32::from_le_bytes(x.try_into().unwrap_or_default()) as usize;
            let (ll, fl) = (len(take(&mut b, 4)?), len(take(&mut b, 4)?));
            let line = String::from_utf8(take(&mut b, ll)?).ok()?;
            let flags = String::from_utf8(take(&mut b, fl)?).ok()?;
            // Another process's words: only page-aligned, ordered, disjoint ranges of user
            // space, so every size computed from them is bounded (and cannot overflow).
            let aligned = start % PAGE_SIZE == 0 && end % PAGE_SIZE == 0;
            if !aligned || end <= start || end > USER_END || start < prev_end {
                return None;
            }
            prev_end = end;
            let class = match bits >> 8 {
                1 => SizeClass::Stack,
                2 => SizeClass::Exe,
                3 => SizeClass::Lib,
                4 => SizeClass::Data,
                _ => SizeClass::Other,
            };
            out.push(VmaInfo {
                start,
                end,
                line,
                flags,
                scan: bits & 1 != 0,
                shmem: bits & 2 != 0,
                class,
                exe_code: bits & 4 != 0,
            });
        }
        Some(out)
    }
}

/// This process's VMAs as [`VmaInfo`]s.
pub fn vma_infos(t: &Thread) -> Vec<VmaInfo> {
    let brk = brk_range(t);
    let exe = t.proc.image().exe.clone();
    let sysroot = t.proc.opts.sysroot.as_deref();
    t.mem()
        .vmas()
        .iter()
        .map(|v| VmaInfo::of(v, brk, sysroot, &exe))
        .collect()
}

/// What a thread's status shows of its signals and shadow stack (published for other
/// processes by `procview`).
pub struct ThreadFacts {
    pub blocked: u64,
    pub pending: u64,
    /// The process's pending signals (ShdPnd).
    pub shd_pnd: u64,
    pub features: u64,
    pub locked: u64,
}

pub fn thread_facts(t: &Thread) -> ThreadFacts {
    let mask = |p: &[crate::signals::SigInfo]| {
        p.iter().fold(0u64, |m, s| m | crate::signals::bit(s.signo))
    };
    ThreadFacts {
        blocked: t.signals.mask,
        pending: mask(&t.signals.pending),
        shd_pnd: mask(&t.proc.signals.pending()),
        features: t.shstk.features,
        locked: t.shstk.locked,
    }
}

/// Everything status, stat, statm, smaps and smaps_rollup are made of: from this process's
/// own state ([`Facts::own`]) or from another guest's published view and the host's files of
/// it ([`Facts::other`]), so that both give the same text.
struct Facts {
    vmas: Vec<VmaInfo>,
    /// The host's pagemap of the process (guest memory is host memory at the same address).
    pagemap: Option<std::fs::File>,
    /// For another process, whose VMA records are its own word: the ranges its host maps
    /// has mapped, to which the walk of its pagemap is limited (None: this process's own
    /// VMAs, which are host mappings).
    host_mapped: Option<Vec<(u64, u64)>>,
    comm: String,
    tgid: i32,
    tid: i32,
    /// The status State value and the stat state letter.
    state: String,
    ppid: i32,
    pgrp: i32,
    sid: i32,
    umask: String,
    uid: (String, String),
    gid: (String, String),
    /// The host's status file of the task, for what the host keeps alike for the guest
    /// (FDSize, Groups, Threads, SigQ, the capabilities).
    host_status: String,
    /// The VmHWM shown so far (KiB).
    hwm: u64,
    thread: ThreadFacts,
    ign: u64,
    cgt: u64,
    arg: (u64, u64),
    env: (u64, u64),
    brk_start: u64,
}

/// TASK_COMM_LEN is 16 including the NUL.
fn comm_of(exe: &str) -> String {
    exe.rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(15)
        .collect()
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

impl Facts {
    fn own(t: &Thread) -> Facts {
        // SAFETY: these calls have no preconditions.
        let (ppid, pgrp, sid, uid, euid, gid, egid) = unsafe {
            (
                libc::getppid(),
                libc::getpgrp(),
                libc::getsid(0),
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
        let img = t.proc.image().clone();
        let (ign, cgt) = t.proc.signals.ignored_and_caught();
        Facts {
            vmas: vma_infos(t),
            pagemap: std::fs::File::open("/proc/self/pagemap").ok(),
            host_mapped: None,
            comm: comm_of(&img.exe),
            tgid: t.proc.pid,
            tid: t.tid,
            state: "R (running)".into(),
            ppid,
            pgrp,
            sid,
            umask: format!("{um:04o}"),
            uid: (uid.to_string(), euid.to_string()),
            gid: (gid.to_string(), egid.to_string()),
            host_status: std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default(),
            hwm: t.proc.rss_peak.load(std::sync::atomic::Ordering::Relaxed),
            thread: thread_facts(t),
            ign,
            cgt,
            arg: (img.arg_start, img.arg_end),
            env: (img.env_start, img.env_end),
            brk_start: img.brk_start,
        }
    }

    /// Thread `tid` of another guest `pid` (the leader for /proc/PID/FILE); None when it
    /// publishes no view or the thread no facts (the host's file applies).
    fn other(view: &crate::procview::View, pid: i32, tid: i32) -> Option<Facts> {
        let vmas = VmaInfo::decode(&view.vmas)?;
        let [ign, cgt, shd_pnd, hwm] = view.process_words()?;
        let host_status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
        let host_stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
        // The wait word after the host's State: a host S shown as S was, when the word was
        // read, the thread's waiting call (`procview::Waiting`).
        let crate::procview::ThreadWords {
            blocked,
            pending,
            features,
            locked,
            waiting,
            ..
        } = view.thread_words(tid)?;
        // The fields after the command name, which may hold anything up to its last ')'.
        let after = host_stat.get(host_stat.rfind(')')? + 2..)?;
        let f: Vec<&str> = after.split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<i32>().ok());
        let ids = |name: &str| {
            let mut it = status_field(&host_status, name)?.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        };
        let exe = String::from_utf8_lossy(&view.exe_host).into_owned();
        let (arg, env) = view.ranges();
        Some(Facts {
            vmas,
            pagemap: std::fs::File::open(format!("/proc/{pid}/pagemap")).ok(),
            host_mapped: Some(host_ranges(
                &std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?,
            )),
            comm: comm_of(&exe),
            tgid: pid,
            tid,
            state: crate::procview::shown_state(status_field(&host_status, "State")?, waiting),
            ppid: num(1)?,
            pgrp: num(2)?,
            sid: num(3)?,
            umask: status_field(&host_status, "Umask")?.to_string(),
            uid: ids("Uid")?,
            gid: ids("Gid")?,
            hwm,
            thread: ThreadFacts {
                blocked,
                pending,
                shd_pnd,
                features,
                locked,
            },
            host_status,
            ign,
            cgt,
            arg,
            env,
            brk_start: view.brk_start,
        })
    }

    fn host(&self, name: &str) -> Option<String> {
        status_field(&self.host_status, name).map(str::to_string)
    }

    /// The pending signals: those cetbox holds itself and the blocked ones the host kernel
    /// keeps pending for the thread or process (its mask is the guest's, mirrored, so a
    /// blocked guest signal waits there as natively; an unblocked one is being delivered).
    fn pending(&self) -> (u64, u64) {
        let host = |name: &str| {
            self.host(name)
                .and_then(|v| u64::from_str_radix(&v, 16).ok())
                .unwrap_or(0)
                & self.thread.blocked
        };
        (
            self.thread.pending | host("SigPnd"),
            self.thread.shd_pnd | host("ShdPnd"),
        )
    }

    /// The resident KiB of each VMA as (anonymous, file-backed or shared). Another process's
    /// records are walked only where its host maps has mappings and for at most
    /// [`SCAN_BUDGET`] pages in all, so a reader's cost is bounded whatever it published.
    fn resident(&self) -> Vec<(u64, u64)> {
        let mut budget = match self.host_mapped {
            Some(_) => SCAN_BUDGET,
            None => u64::MAX,
        };
        let mut cursor = 0;
        self.vmas
            .iter()
            .map(|v| {
                resident(
                    self.pagemap.as_ref(),
                    v,
                    self.host_mapped.as_deref(),
                    &mut cursor,
                    &mut budget,
                )
            })
            .collect()
    }

    fn sizes(&self) -> Sizes {
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
        for (v, (anon, file)) in self.vmas.iter().zip(self.resident()) {
            let kb = v.kb();
            s.vm_size += kb;
            s.rss_anon += anon;
            if v.shmem {
                s.rss_shmem += file;
            } else {
                s.rss_file += file;
            }
            match v.class {
                SizeClass::Stack => s.vm_stk += kb,
                SizeClass::Exe => s.vm_exe += kb,
                SizeClass::Lib => s.vm_lib += kb,
                SizeClass::Data => s.vm_data += kb,
                SizeClass::Other => {}
            }
        }
        s
    }
}

fn kb_line(o: &mut String, name: &str, val: u64) {
    let _ = writeln!(o, "{:<16}{:>8} kB", format!("{name}:"), val);
}

fn smaps_of(f: &Facts) -> Vec<u8> {
    let mut out = String::new();
    for (v, (ra, rf)) in f.vmas.iter().zip(f.resident()) {
        out.push_str(&v.line);
        let rss = ra + rf;
        let line = kb_line;
        line(&mut out, "Size", v.kb());
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
        out.push_str(&v.flags);
    }
    out.into_bytes()
}

/// /proc/PID/smaps_rollup: the smaps counts summed over the VMAs, under a header line
/// spanning them (Linux fs/proc/task_mmu.c show_smaps_rollup), with smaps' accounting.
fn smaps_rollup_of(f: &Facts) -> Vec<u8> {
    let (mut anon, mut file, mut shmem) = (0u64, 0u64, 0u64);
    for (v, (ra, rf)) in f.vmas.iter().zip(f.resident()) {
        anon += ra;
        if v.shmem {
            shmem += rf;
        } else {
            file += rf;
        }
    }
    let (start, end) = match (f.vmas.first(), f.vmas.last()) {
        (Some(a), Some(b)) => (a.start, b.end),
        _ => (0, 0),
    };
    let mut out = format!("{start:08x}-{end:08x} ---p 00000000 00:00 0 ");
    while out.len() < 73 {
        out.push(' ');
    }
    out.push_str("[rollup]\n");
    let rss = anon + file + shmem;
    let o = &mut out;
    kb_line(o, "Rss", rss);
    kb_line(o, "Pss", rss);
    kb_line(o, "Pss_Dirty", anon);
    kb_line(o, "Pss_Anon", anon);
    kb_line(o, "Pss_File", file);
    kb_line(o, "Pss_Shmem", shmem);
    kb_line(o, "Shared_Clean", 0);
    kb_line(o, "Shared_Dirty", 0);
    kb_line(o, "Private_Clean", file + shmem);
    kb_line(o, "Private_Dirty", anon);
    kb_line(o, "Referenced", rss);
    kb_line(o, "Anonymous", anon);
    for name in [
        "KSM",
        "LazyFree",
        "AnonHugePages",
        "ShmemPmdMapped",
        "FilePmdMapped",
        "Shared_Hugetlb",
        "Private_Hugetlb",
        "Swap",
        "SwapPss",
        "Locked",
    ] {
        kb_line(o, name, 0);
    }
    out.into_bytes()
}

/// /proc/self/smaps. Every resident page counts as private (dirty for anonymous memory,
/// clean for file pages).
pub fn smaps(t: &Thread) -> Vec<u8> {
    smaps_of(&Facts::own(t))
}

/// /proc/self/smaps_rollup.
pub fn smaps_rollup(t: &Thread) -> Vec<u8> {
    smaps_rollup_of(&Facts::own(t))
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

/// The most pagemap entries read for one view of another process: 16 GiB of readable
/// mappings (32 MiB of pagemap). Beyond it that process's pages count as not resident.
const SCAN_BUDGET: u64 = 1 << 22;

/// The ranges of a host maps text (the kernel's: ordered, disjoint).
fn host_ranges(maps: &str) -> Vec<(u64, u64)> {
    maps.lines()
        .filter_map(|l| {
            let (s, e) = l.split(' ').next()?.split_once('-')?;
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        })
        .collect()
}

/// The resident part of a guest mapping in KiB, as (anonymous, file-backed or shared): the
/// pages the host kernel has page-table entries for (guest memory is host memory at the same
/// address), read from the host's /proc/PID/pagemap (bit 63: present; bit 61: file page or
/// shared anonymous; Documentation/admin-guide/mm/pagemap.rst). PROT_NONE mappings (huge
/// reservations) are not scanned: the guest cannot have touched them. With `mapped` (sorted,
/// disjoint), only the parts of the mapping inside those host ranges are read; at most
/// `budget` entries are read, and `budget` is reduced by those read (pagemap has an entry for
/// every page of a range, mapped or not, so its cost is the range's size).
///
/// `cursor` is where the walk of `mapped` stopped for the previous mapping: called for
/// mappings in ascending order (as a process's own are), the walk merges the two lists and
/// costs O(mappings + ranges) in all; another process's records are its own word, and one
/// out of order makes the walk search `mapped` from its beginning (binary search:
/// `partition_point`), so a reader's cost never grows with mappings times ranges.
fn resident(
    pagemap: Option<&std::fs::File>,
    v: &VmaInfo,
    mapped: Option<&[(u64, u64)]>,
    cursor: &mut usize,
    budget: &mut u64,
) -> (u64, u64) {
    let Some(f) = pagemap else {
        return (0, 0);
    };
    if !v.scan || *budget == 0 {
        return (0, 0);
    }
    let whole = [(v.start, v.end)];
    let ranges = mapped.unwrap_or(&whole);
    // The first range ending above the mapping's start: past the cursor when every range
    // before it ends at or below that start, else searched from the beginning.
    let mut c = if mapped.is_some() {
        (*cursor).min(ranges.len())
    } else {
        0
    };
    if c > 0 && ranges[c - 1].1 > v.start {
        c = 0;
    }
    let mut j = c + ranges[c..].partition_point(|r| r.1 <= v.start);
    let (mut anon, mut file) = (0u64, 0u64);
    while j < ranges.len() && ranges[j].0 < v.end && *budget > 0 {
        let (s, e) = (ranges[j].0.max(v.start), ranges[j].1.min(v.end));
        if s < e {
            let (a, f) = resident_pages(f, s / PAGE_SIZE, e / PAGE_SIZE, budget);
            anon += a;
            file += f;
        }
        j += 1;
    }
    if mapped.is_some() {
        // The last range walked may reach into the next mapping.
        *cursor = if j > 0 && ranges[j - 1].1 > v.end {
            j - 1
        } else {
            j
        };
    }
    (anon, file)
}

/// `resident` of the pages `page..end`.
fn resident_pages(f: &std::fs::File, mut page: u64, end: u64, budget: &mut u64) -> (u64, u64) {
    use std::os::unix::fs::FileExt;
    let (mut anon, mut file) = (0u64, 0u64);
    let mut buf = vec![0u8; 8 * 4096];
    let end = end.min(page.saturating_add(*budget));
    while page < end {
        let n = ((end - page) as usize).min(4096);
        let Ok(got) = f.read_at(&mut buf[..n * 8], page * 8) else {
            break;
        };
        *budget = budget.saturating_sub(n as u64);
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

fn sigset_hex(v: u64) -> String {
    format!("{v:016x}")
}

/// /proc/self/status.
pub fn status(t: &Thread) -> Vec<u8> {
    let mut f = Facts::own(t);
    let rss = {
        let sz = f.sizes();
        sz.rss_anon + sz.rss_file + sz.rss_shmem
    };
    f.hwm = t
        .proc
        .rss_peak
        .fetch_max(rss, std::sync::atomic::Ordering::Relaxed)
        .max(rss);
    // Another process reading this one's status shows the peak this one has shown.
    crate::procview::publish_hwm(f.hwm);
    status_of(&f)
}

fn status_of(f: &Facts) -> Vec<u8> {
    let sz = f.sizes();
    let (pid, tid) = (f.tgid, f.tid);
    let mut o = String::new();
    let _ = writeln!(o, "Name:\t{}", f.comm);
    let _ = writeln!(o, "Umask:\t{}", f.umask);
    let _ = writeln!(o, "State:\t{}", f.state);
    let _ = writeln!(o, "Tgid:\t{pid}");
    let _ = writeln!(o, "Ngid:\t0");
    let _ = writeln!(o, "Pid:\t{tid}");
    let _ = writeln!(o, "PPid:\t{}", f.ppid);
    let _ = writeln!(o, "TracerPid:\t0");
    let (uid, euid) = &f.uid;
    let _ = writeln!(o, "Uid:\t{uid}\t{euid}\t{euid}\t{euid}");
    let (gid, egid) = &f.gid;
    let _ = writeln!(o, "Gid:\t{gid}\t{egid}\t{egid}\t{egid}");
    let _ = writeln!(
        o,
        "FDSize:\t{}",
        f.host("FDSize").unwrap_or_else(|| "64".into())
    );
    let _ = writeln!(o, "Groups:\t{}", f.host("Groups").unwrap_or_default());
    let _ = writeln!(o, "NStgid:\t{pid}");
    let _ = writeln!(o, "NSpid:\t{tid}");
    let kb = |o: &mut String, n: &str, v: u64| {
        let _ = writeln!(o, "{n}:\t{v:>8} kB");
    };
    kb(&mut o, "VmPeak", sz.vm_size);
    kb(&mut o, "VmSize", sz.vm_size);
    kb(&mut o, "VmLck", 0);
    kb(&mut o, "VmPin", 0);
    let rss = sz.rss_anon + sz.rss_file + sz.rss_shmem;
    kb(&mut o, "VmHWM", f.hwm.max(rss));
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
    let _ = writeln!(
        o,
        "Threads:\t{}",
        f.host("Threads").unwrap_or_else(|| "1".into())
    );
    let _ = writeln!(
        o,
        "SigQ:\t0/{}",
        f.host("SigQ")
            .and_then(|s| s.split('/').nth(1).map(str::to_string))
            .unwrap_or_else(|| "63704".into())
    );
    let (pnd, shd_pnd) = f.pending();
    let _ = writeln!(o, "SigPnd:\t{}", sigset_hex(pnd));
    let _ = writeln!(o, "ShdPnd:\t{}", sigset_hex(shd_pnd));
    let _ = writeln!(o, "SigBlk:\t{}", sigset_hex(f.thread.blocked));
    let _ = writeln!(o, "SigIgn:\t{}", sigset_hex(f.ign));
    let _ = writeln!(o, "SigCgt:\t{}", sigset_hex(f.cgt));
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let v = f.host(cap).unwrap_or_else(|| "0000000000000000".into());
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
        feature_words(f.thread.features)
    );
    let _ = writeln!(
        o,
        "x86_Thread_features_locked:\t{}",
        feature_words(f.thread.locked)
    );
    o.into_bytes()
}

/// /proc/self/stat (the fields programs read: pid, comm, state, ppid, pgrp, session, the
/// sizes, start_stack, and the arg/env/brk addresses).
pub fn stat(t: &Thread) -> Vec<u8> {
    stat_of(&Facts::own(t))
}

fn stat_of(f: &Facts) -> Vec<u8> {
    let sz = f.sizes();
    let code = f
        .vmas
        .iter()
        .filter(|v| v.exe_code)
        .fold((0u64, 0u64), |(s, e), v| {
            (if s == 0 { v.start } else { s.min(v.start) }, e.max(v.end))
        });
    let rss_pages = (sz.rss_anon + sz.rss_file + sz.rss_shmem) * 1024 / PAGE_SIZE;
    let start_stack = f.arg.0 & !7;
    // The signal fields are the first word of each set, limited to 31 bits (Linux
    // fs/proc/array.c do_task_stat: "obsolete", kept decimal for old readers).
    let sig = |v: u64| (v & 0x7fff_ffff).to_string();
    let state = f.state.chars().next().unwrap_or('R').to_string();
    let fields: Vec<String> = vec![
        f.tid.to_string(),
        format!("({})", f.comm),
        state,
        f.ppid.to_string(),
        f.pgrp.to_string(),
        f.sid.to_string(),
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
        sig(f.pending().0),
        sig(f.thread.blocked),
        sig(f.ign),
        sig(f.cgt),
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
        f.brk_start.to_string(),
        f.arg.0.to_string(),
        f.arg.1.to_string(),
        f.env.0.to_string(),
        f.env.1.to_string(),
        "0".into(),
    ];
    let mut s = fields.join(" ");
    s.push('\n');
    s.into_bytes()
}

/// /proc/self/statm, in pages.
pub fn statm(t: &Thread) -> Vec<u8> {
    statm_of(&Facts::own(t))
}

fn statm_of(f: &Facts) -> Vec<u8> {
    let sz = f.sizes();
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

/// The files that describe one thread (fs/proc/base.c tid_base_stuff), which /proc/PID/FILE
/// shows of the thread-group leader (the task PID) whichever thread reads it.
fn per_thread(file: &[u8]) -> bool {
    matches!(file, b"status" | b"stat" | b"syscall" | b"wchan")
}

/// The thread whose per-thread file (`per_thread`) `p` names: TID of a task directory, the
/// leader (the pid) for the process's own directory; None for other files.
fn thread_of(t: &Thread, p: &ProcPath) -> Option<i32> {
    if !per_thread(p.file()?) {
        return None;
    }
    match p.task {
        Some(_) => p.tid(),
        None => Some(t.proc.pid),
    }
}

/// /proc/self/task/TID/status, stat, syscall or wchan (also under this process's pid, and
/// the process's own, which are the leader's) of another thread of this process: what that
/// thread would read through /proc/thread-self, from the facts it published at its last
/// syscall entry (`procview`) and the host's file of the thread (its State). None for other
/// paths, or a thread that has published nothing (the host's file).
fn other_thread_file(t: &Thread, path: &[u8]) -> Option<Vec<u8>> {
    let p = ProcPath::parse(path)?;
    if p.head != b"self" && p.pid != Some(t.proc.pid) {
        return None;
    }
    let (tid, file) = (thread_of(t, &p)?, p.file()?);
    if tid == t.tid {
        return None;
    }
    let host_status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    // After the host's State, as in `Facts::other`.
    if matches!(file, b"syscall" | b"wchan") {
        let wchan = format!("/proc/self/task/{tid}/wchan");
        return sleep_file(file, || crate::procview::own_thread_words(tid), &wchan);
    }
    let mut f = Facts::own(t);
    f.tid = tid;
    match crate::procview::own_thread_words(tid) {
        Some(words) => {
            f.state =
                crate::procview::shown_state(status_field(&host_status, "State")?, words.waiting);
            f.thread = ThreadFacts {
                blocked: words.blocked,
                pending: words.pending,
                shd_pnd: f.thread.shd_pnd,
                features: words.features,
                locked: words.locked,
            };
        }
        // The leader ended while other threads run on: Linux keeps it as a zombie until the
        // whole group ends (kernel/exit.c, delay_group_leader), and its status says so. Its
        // slot is gone with it, so its own masks are the reader's here; the host's file would
        // describe cetbox's thread instead (its handlers and masks).
        None if tid == t.proc.pid => f.state = "Z (zombie)".into(),
        None => return None,
    }
    f.host_status = host_status;
    Some(if file == b"status" {
        status_of(&f)
    } else {
        stat_of(&f)
    })
}

/// /proc/PID/syscall or wchan of another thread (`file`), whose published facts `words` gives
/// and whose host thread's wchan is the file at `host_wchan`.
///
/// Linux shows a sleeping task's call and registers and the kernel function it waits in, and
/// for a running task "running" and 0 (kernel/lib/syscall.c task_current_syscall,
/// kernel/sched/core.c get_wchan). A guest thread sleeps only in a guest's waiting call
/// (`procview::Waiting`) while its host thread sleeps in the kernel (the host's wchan names a
/// function); elsewhere a host wait is cetbox's own and the guest thread runs for Linux. The
/// host thread of a thread in a waiting call may still be on its way to its host wait (or
/// waiting for cetbox's own reasons on the way): it is looked at again for a moment (at most
/// 5 ms) before the thread is shown as running.
fn sleep_file(
    file: &[u8],
    words: impl Fn() -> Option<crate::procview::ThreadWords>,
    host_wchan: &str,
) -> Option<Vec<u8>> {
    let mut w = words()?;
    let mut wchan = None;
    for _ in 0..25 {
        if w.waiting == 0 {
            break;
        }
        match std::fs::read(host_wchan) {
            Ok(h) if !h.is_empty() && h != b"0" => {
                wchan = Some(h);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
        w = words()?;
    }
    Some(match file {
        b"syscall" => w.syscall_text(wchan.is_some()).into_bytes(),
        _ => wchan.unwrap_or_else(|| b"0".to_vec()),
    })
}

/// /proc/PID/limits (fs/proc/base.c proc_pid_limits): the host's text of the process, whose
/// limits are the guest's but for those cetbox keeps for the guest itself (`rlimit`:
/// address space, data and stack), whose rows are made from `guest` (soft and hard of
/// RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK) in Linux's format.
fn limits_text(host: &str, guest: [(u64, u64); 3]) -> Vec<u8> {
    let rows = [
        ("Max address space", guest[0]),
        ("Max data size", guest[1]),
        ("Max stack size", guest[2]),
    ];
    let value = |v: u64| match v {
        u64::MAX => "unlimited".to_string(),
        v => v.to_string(),
    };
    let mut out = String::with_capacity(host.len());
    for line in host.split_inclusive('\n') {
        match rows
            .iter()
            .find(|(name, _)| line.strip_prefix(name).is_some_and(|r| r.starts_with("  ")))
        {
            Some((name, (soft, hard))) => {
                let _ = writeln!(
                    out,
                    "{name:<25} {:<20} {:<20} {:<10}",
                    value(*soft),
                    value(*hard),
                    "bytes"
                );
            }
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// The guest's own RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK.
fn own_limits() -> [(u64, u64); 3] {
    [libc::RLIMIT_AS, libc::RLIMIT_DATA, libc::RLIMIT_STACK]
        .map(|r| crate::rlimit::get(r as i32).unwrap_or((u64::MAX, u64::MAX)))
}

/// /proc/PID/syscall of the reading thread itself: Linux reads the current task's registers
/// without waiting for it (kernel/lib/syscall.c task_current_syscall), so it shows the call
/// that reads the file, with its arguments.
fn own_syscall(t: &Thread) -> Vec<u8> {
    let g = &t.cpu.gpr;
    let nr = t.signals.in_syscall.unwrap_or(u64::MAX);
    crate::procview::syscall_line(nr, &[g[7], g[6], g[2], g[10], g[8], g[9]], g[4], t.cpu.rip)
        .into_bytes()
}

/// Another guest's status, stat, statm, smaps or smaps_rollup of thread `tid`, as that
/// process would read it through /proc/self at this moment (None: the host's file applies).
pub fn other_task_file(
    view: &crate::procview::View,
    pid: i32,
    tid: i32,
    file: &[u8],
) -> Option<Vec<u8>> {
    let f = Facts::other(view, pid, tid)?;
    Some(match file {
        b"status" => status_of(&f),
        b"stat" => stat_of(&f),
        b"statm" => statm_of(&f),
        b"smaps" => smaps_of(&f),
        b"smaps_rollup" => smaps_rollup_of(&f),
        _ => return None,
    })
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

    fn info(start: u64, class: SizeClass, line: &str) -> VmaInfo {
        VmaInfo {
            start,
            end: start + 0x3000,
            line: line.into(),
            flags: "VmFlags: rd mr mw me \n".into(),
            scan: true,
            shmem: class == SizeClass::Other,
            class,
            exe_code: class == SizeClass::Exe,
        }
    }

    /// Another process's records come back as they were made; anything cut short or
    /// inconsistent is refused, never read out of bounds.
    #[test]
    fn vma_records_round_trip_and_bounds() {
        let v = vec![
            info(
                0x400000,
                SizeClass::Exe,
                "00400000-00403000 r-xp 0 00:00 0 /bin/x\n",
            ),
            info(
                0x7000_0000,
                SizeClass::Stack,
                "70000000-70003000 rw-p 0 00:00 0 [stack]\n",
            ),
            info(0x8000_0000, SizeClass::Other, ""),
        ];
        let b = VmaInfo::encode(&v);
        assert_eq!(VmaInfo::decode(&b), Some(v));
        assert_eq!(VmaInfo::decode(&[]), Some(vec![]));
        for cut in 1..b.len() {
            // A record cut anywhere is either refused or (at a record boundary) shorter.
            if let Some(d) = VmaInfo::decode(&b[..cut]) {
                assert!(d.len() < 3);
            }
        }
        let mut bad = b.clone();
        bad[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(VmaInfo::decode(&bad), None);
    }

    /// The one parser of /proc/PID paths: process, task and file parts.
    #[test]
    fn proc_paths() {
        let p = ProcPath::parse(b"/proc/12/task/34/maps").unwrap();
        assert_eq!(
            (p.head, p.pid, p.task, p.tid()),
            (&b"12"[..], Some(12), Some(&b"34"[..]), Some(34))
        );
        assert_eq!(p.file(), Some(&b"maps"[..]));
        let p = ProcPath::parse(b"/proc/self/fd/3").unwrap();
        assert_eq!((p.pid, p.task, p.file()), (None, None, None));
        assert_eq!(p.rest, [&b"fd"[..], &b"3"[..]]);
        let p = ProcPath::parse(b"/proc/5/task").unwrap();
        assert_eq!(
            (p.pid, p.task, p.file()),
            (Some(5), None, Some(&b"task"[..]))
        );
        let p = ProcPath::parse(b"/proc/5/task/x/mem").unwrap();
        assert_eq!((p.task, p.tid()), (Some(&b"x"[..]), None));
        assert_eq!(ProcPath::parse(b"/proc/+5/maps").unwrap().pid, None);
        assert_eq!(
            ProcPath::parse(b"/proc/99999999999/maps").unwrap().pid,
            None
        );
        assert!(ProcPath::parse(b"/proc/").is_none());
        assert!(ProcPath::parse(b"/sys/5/maps").is_none());
    }

    /// A fresh private anonymous mapping of `len` bytes with the pages `touched` written (so
    /// resident); the caller unmaps it.
    fn fresh_pages(len: usize, touched: &[usize]) -> *mut libc::c_void {
        // SAFETY: a fresh private anonymous mapping: no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        for &page in touched {
            assert!((page + 1) * PAGE_SIZE as usize <= len);
            // SAFETY: a page inside the mapping just made.
            unsafe {
                p.cast::<u8>()
                    .add(page * PAGE_SIZE as usize)
                    .write_volatile(1)
            };
        }
        p
    }

    /// The walk of the host ranges merges them with the mappings (each range reaching into
    /// several mappings counts in each), and a mapping out of order is found all the same.
    #[test]
    fn resident_walk_merges_ranges_and_mappings() {
        const N: u64 = 16;
        let len = (N * PAGE_SIZE) as usize;
        let p = fresh_pages(len, &[0, 1, 9]);
        let at = |page: u64| p as u64 + page * PAGE_SIZE;
        let vma = |a: u64, b: u64| {
            let mut v = info(at(a), SizeClass::Data, "");
            v.end = at(b);
            v
        };
        let f = std::fs::File::open("/proc/self/pagemap").unwrap();
        let ranges = [(at(0), at(2)), (at(3), at(10)), (at(11), at(N))];
        let vmas = [vma(0, 4), vma(4, 12), vma(12, N)];
        let (mut cursor, mut budget) = (0, u64::MAX);
        let got: Vec<(u64, u64)> = vmas
            .iter()
            .map(|v| resident(Some(&f), v, Some(&ranges), &mut cursor, &mut budget))
            .collect();
        assert_eq!(got, [(8, 0), (4, 0), (0, 0)]);
        // Pages read: 2 + 1 in the first, 6 + 1 in the second, 4 in the third.
        assert_eq!(budget, u64::MAX - 14);
        // Out of order (a record list that is not sorted): searched from the beginning.
        assert_eq!(
            resident(Some(&f), &vmas[0], Some(&ranges), &mut cursor, &mut budget),
            (8, 0)
        );
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(p, len) };
    }

    /// Many mappings and many host ranges, none overlapping: the walk costs their sum, not
    /// their product (2^34 steps, minutes, when every mapping looked at every range), in
    /// order and in reverse order alike.
    #[test]
    fn resident_walk_is_linear_in_mappings_and_ranges() {
        const N: u64 = 1 << 17;
        let base = 1u64 << 45;
        let page = |i: u64| base + i * PAGE_SIZE;
        let ranges: Vec<(u64, u64)> = (0..N).map(|i| (page(2 * i + 1), page(2 * i + 2))).collect();
        let vmas: Vec<VmaInfo> = (0..N)
            .map(|i| {
                let mut v = info(page(2 * i), SizeClass::Data, "");
                v.end = page(2 * i + 1);
                v
            })
            .collect();
        let f = std::fs::File::open("/proc/self/pagemap").unwrap();
        let (mut cursor, mut budget) = (0, SCAN_BUDGET);
        for v in vmas.iter().chain(vmas.iter().rev()) {
            assert_eq!(
                resident(Some(&f), v, Some(&ranges), &mut cursor, &mut budget),
                (0, 0)
            );
        }
        assert_eq!(budget, SCAN_BUDGET);
    }

    /// A mapping's resident pages are read only where the host has mappings and within the
    /// budget: a record spanning all of user space costs what the host really maps.
    #[test]
    fn resident_walk_is_bounded_by_host_mappings_and_budget() {
        const N: usize = 16;
        let len = N * PAGE_SIZE as usize;
        let p = fresh_pages(len, &[0, 1]);
        let (s, e) = (p as u64, p as u64 + len as u64);
        let f = std::fs::File::open("/proc/self/pagemap").unwrap();
        let mut vast = info(PAGE_SIZE, SizeClass::Data, "");
        vast.end = (1 << 47) - PAGE_SIZE;
        let mut budget = u64::MAX;
        let got = resident(Some(&f), &vast, Some(&[(s, e)]), &mut 0, &mut budget);
        assert_eq!(got, (8, 0));
        assert_eq!(budget, u64::MAX - N as u64);
        // Unmapped on the host: nothing read.
        let mut budget = 100;
        assert_eq!(
            resident(Some(&f), &vast, Some(&[]), &mut 0, &mut budget),
            (0, 0)
        );
        assert_eq!(budget, 100);
        // The budget ends the walk: one page read, one resident.
        let mut budget = 1;
        assert_eq!(
            resident(Some(&f), &vast, Some(&[(s, e)]), &mut 0, &mut budget),
            (4, 0)
        );
        assert_eq!(budget, 0);
        let mut budget = u64::MAX;
        let own = resident(
            Some(&f),
            &info(s, SizeClass::Data, ""),
            None,
            &mut 0,
            &mut budget,
        );
        assert_eq!(own, (8, 0));
        assert!(
            host_ranges(&std::fs::read_to_string("/proc/self/maps").unwrap())
                .iter()
                .any(|&r| r == (s, e) || (r.0 <= s && r.1 >= e))
        );
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(p, len) };
    }
}
