//! Another guest's /proc/PID files, as that guest sees them through /proc/self.
//!
//! Another guest process is another cetbox process: the host's /proc/PID shows cetbox's own
//! mappings, executable and auxv there. Linux shows a process's maps, exe, auxv, cmdline and
//! environ to another exactly as to itself (fs/proc/base.c, fs/proc/task_mmu.c), and debuggers
//! rely on it (gdb reads its inferior's /proc/PID/maps and exe to find the shared libraries).
//!
//! So every cetbox process publishes what those files are made of, in its own memory, for
//! others to read with the host's process_vm_readv (the host's PTRACE_MODE_ATTACH check):
//! a header page at the fixed host address [`PAGE`] (cetbox's memory, never the guest's)
//! holding a magic word, a sequence number (odd while the publisher rewrites it, a seqlock) and
//! the address and length of each blob: the text of /proc/self/maps, the executable's path as
//! the guest sees it, the auxv bytes, and the guest's argument and environment ranges (read
//! from its guest memory through `remote_mem`, as Linux's cmdline and environ read the
//! process's memory). It is rewritten when the VMAs changed since the last time
//! (`AddressSpace::vma_generation`; stack growth by a fault counts), at the entry of every
//! system call other than the mapping calls themselves ([`publishes_at`]), before a signal is
//! acted on (where a traced process stops for its tracer), and after exec. So a program that
//! maps and unmaps in a loop pays for one rewrite when it next does something else, and
//! whatever another process can learn from this one through a system call (a pipe, a signal,
//! a wait, a ptrace stop) finds the view already current. What it does not cover: a change
//! announced to another process through shared memory alone, with no system call, which the
//! view shows from the next call on. A fork child inherits the parent's copy, which describes
//! it.
//!
//! The reader trusts nothing it reads beyond bounds: lengths are capped, the copies are the
//! host's (a bad address fails, never faults), a sequence number that moved while it read
//! makes it read again a few times and then give up, and what it got is shown as file contents
//! (a process that is not cetbox but maps a fake header there can only show itself wrongly).
//! A process without the header (native, or not yet publishing), or one the host refuses to
//! let us read, keeps the host's view.

use crate::errno::Errno;
use crate::process::Thread;
use cetbox_mem::PAGE_SIZE;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Host address of the header page: below `remote_mem::HEADER`, outside guest memory.
pub const PAGE: u64 = 0x5fff_fffd_0000;
const MAGIC: u64 = 0x6365_7462_7072_6f63; // "cetbproc"
/// Header words: magic, sequence, then (address, length) of maps, exe, auxv, then arg_start,
/// arg_end, env_start, env_end, then (address, length) of the executable's host path.
const WORDS: usize = 14;
const W_SEQ: usize = 1;
const MAX_MAPS: u64 = 64 << 20;
const MAX_EXE: u64 = 4096;
const MAX_AUXV: u64 = 4096;
/// Linux's cmdline and environ are whatever lies in the range; capped for our copy.
const MAX_RANGE: u64 = 16 << 20;

/// The blobs the header points at (kept alive until the next publication).
struct Blobs {
    maps: Vec<u8>,
    exe: Vec<u8>,
    auxv: Vec<u8>,
    exe_host: Vec<u8>,
}

/// The published blobs (a leaked Box, replaced and freed by the publisher; null: none yet).
static BLOBS: AtomicPtr<Blobs> = AtomicPtr::new(std::ptr::null_mut());
/// Held by the thread that publishes. A flag rather than a lock: another thread that finds it
/// held does not wait (the view is rewritten at its next call), and a fork child, in which the
/// holder may not exist, takes it back (`after_fork_child`).
static PUBLISHING: AtomicBool = AtomicBool::new(false);
/// The VMA generation last published (u64::MAX: never).
static PUBLISHED_GEN: AtomicU64 = AtomicU64::new(u64::MAX);

/// In a fork child, before any guest code runs: the publisher flag may have been held by a
/// thread of the parent, which the child does not have; and the view is written again.
pub fn after_fork_child() {
    PUBLISHING.store(false, Ordering::Release);
    PUBLISHED_GEN.store(u64::MAX, Ordering::Release);
}

/// Whether a system call's entry publishes the view: every call but those that only change
/// mappings (a run of them is published once, at the next other call).
pub fn publishes_at(nr: u64) -> bool {
    !matches!(
        nr as i64,
        libc::SYS_mmap
            | libc::SYS_munmap
            | libc::SYS_mprotect
            | libc::SYS_mremap
            | libc::SYS_brk
            | libc::SYS_madvise
            | libc::SYS_pkey_mprotect
            | libc::SYS_shmat
            | libc::SYS_shmdt
            | 453 // map_shadow_stack
    )
}

/// Publishes this process's view when its VMAs changed since the last publication (or `force`,
/// after exec). Called by the syscall layer and signal delivery (module comment).
pub fn refresh(t: &Thread, force: bool) {
    let g = t.mem().vma_generation();
    if !force && g == PUBLISHED_GEN.load(Ordering::Acquire) {
        return;
    }
    if PUBLISHING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let g = t.mem().vma_generation();
    let img = t.proc.image().clone();
    let new = Blobs {
        maps: crate::procfs::maps(t),
        exe: crate::sysroot::to_guest(t.proc.opts.sysroot.as_deref(), &img.exe).into_bytes(),
        auxv: img
            .auxv
            .iter()
            .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
            .collect(),
        exe_host: img.exe.clone().into_bytes(),
    };
    let blob = |b: &Vec<u8>| (b.as_ptr() as u64, b.len() as u64);
    let (m, e, a, h) = (
        blob(&new.maps),
        blob(&new.exe),
        blob(&new.auxv),
        blob(&new.exe_host),
    );
    let words = [
        MAGIC,
        0,
        m.0,
        m.1,
        e.0,
        e.1,
        a.0,
        a.1,
        img.arg_start,
        img.arg_end,
        img.env_start,
        img.env_end,
        h.0,
        h.1,
    ];
    if write_header(&words).is_ok() {
        // The old blobs go only now: a reader that still reads them sees the sequence move.
        let old = BLOBS.swap(Box::into_raw(Box::new(new)), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: a Box this function leaked before, no longer published.
            drop(unsafe { Box::from_raw(old) });
        }
        PUBLISHED_GEN.store(g, Ordering::Release);
    }
    PUBLISHING.store(false, Ordering::Release);
}

/// Whether this process made the header page (a fork child inherits it with the page).
static RESERVED: AtomicBool = AtomicBool::new(false);

/// Makes the header page, empty, when the process starts (before any guest code, which could
/// otherwise map something of its own there).
pub fn reserve() {
    if RESERVED.load(Ordering::Acquire) {
        return;
    }
    // SAFETY: a new private page at a fixed address outside guest memory, made only where
    // nothing is mapped (MAP_FIXED_NOREPLACE).
    unsafe {
        let p = libc::mmap(
            PAGE as *mut libc::c_void,
            PAGE_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        if p as u64 != PAGE {
            libc::munmap(p, PAGE_SIZE as usize);
            return;
        }
    }
    RESERVED.store(true, Ordering::Release);
}

/// Writes the header under the seqlock (nothing when the page could not be made ours).
fn write_header(words: &[u64; WORDS]) -> Result<(), Errno> {
    if !RESERVED.load(Ordering::Acquire) {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: the page is ours, mapped read-write, and the words are aligned.
    let cells = unsafe { &*(PAGE as *const [AtomicU64; WORDS]) };
    let seq = cells[W_SEQ].load(Ordering::Relaxed);
    cells[W_SEQ].store(seq | 1, Ordering::Release);
    std::sync::atomic::fence(Ordering::Release);
    for (i, w) in words.iter().enumerate() {
        if i != W_SEQ {
            cells[i].store(*w, Ordering::Relaxed);
        }
    }
    cells[W_SEQ].store((seq | 1) + 1, Ordering::Release);
    Ok(())
}

/// Another guest's published view, read consistently.
pub struct View {
    pub maps: Vec<u8>,
    pub exe: Vec<u8>,
    pub auxv: Vec<u8>,
    /// The executable's host path (differs from `exe` under `--sysroot`).
    pub exe_host: Vec<u8>,
    args: (u64, u64),
    env: (u64, u64),
    pid: i32,
}

fn read_words(pid: i32) -> Option<[u64; WORDS]> {
    let mut raw = [0u8; WORDS * 8];
    if crate::remote_mem::host_copy(pid, PAGE, &mut raw, false).ok()? != raw.len() {
        return None;
    }
    let mut w = [0u64; WORDS];
    for (i, c) in raw.chunks_exact(8).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().ok()?);
    }
    (w[0] == MAGIC).then_some(w)
}

fn read_blob(pid: i32, addr: u64, len: u64, max: u64) -> Option<Vec<u8>> {
    if len > max {
        return None;
    }
    let mut b = vec![0u8; len as usize];
    if len > 0 && crate::remote_mem::host_copy(pid, addr, &mut b, false).ok()? != b.len() {
        return None;
    }
    Some(b)
}

/// The view `pid` publishes, if it is another guest that publishes one and the host lets us
/// read it (None: the host's view applies).
pub fn of(pid: i32) -> Option<View> {
    // SAFETY: getpid has no preconditions.
    if pid == unsafe { libc::getpid() } {
        return None;
    }
    for _ in 0..8 {
        let w = read_words(pid)?;
        if w[W_SEQ] & 1 != 0 {
            std::thread::yield_now();
            continue;
        }
        let maps = read_blob(pid, w[2], w[3], MAX_MAPS);
        let exe = read_blob(pid, w[4], w[5], MAX_EXE);
        let auxv = read_blob(pid, w[6], w[7], MAX_AUXV);
        let exe_host = read_blob(pid, w[12], w[13], MAX_EXE);
        let again = read_words(pid)?;
        if again[W_SEQ] != w[W_SEQ] {
            continue;
        }
        return Some(View {
            maps: maps?,
            exe: exe?,
            auxv: auxv?,
            exe_host: exe_host?,
            args: (w[8], w[9]),
            env: (w[10], w[11]),
            pid,
        });
    }
    None
}

impl View {
    fn range(&self, (s, e): (u64, u64)) -> Vec<u8> {
        if e <= s || e - s > MAX_RANGE {
            return Vec::new();
        }
        let mut b = vec![0u8; (e - s) as usize];
        match crate::remote_mem::mem_file(self.pid, s, &mut b, false) {
            Ok(n) => {
                b.truncate(n as usize);
                b
            }
            Err(_) => Vec::new(),
        }
    }

    /// /proc/PID/cmdline.
    pub fn cmdline(&self) -> Vec<u8> {
        self.range(self.args)
    }

    /// /proc/PID/environ.
    pub fn environ(&self) -> Vec<u8> {
        self.range(self.env)
    }
}

/// The pid and file a path names under another process's /proc directory
/// (/proc/PID/FILE or /proc/PID/task/TID/FILE), for the files served from [`View`].
pub fn other_file<'a>(t: &Thread, path: &'a [u8]) -> Option<(i32, &'a [u8])> {
    let rest = path.strip_prefix(b"/proc/")?;
    let mut parts = rest.split(|&c| c == b'/').filter(|p| !p.is_empty());
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    let pid = parts.next().filter(|p| digits(p))?;
    let pid: i32 = std::str::from_utf8(pid).ok()?.parse().ok()?;
    // Our own process under another thread's id is not another guest: the host's view (as
    // before; Linux shows the process's files there).
    if pid == t.proc.pid || std::path::Path::new(&format!("/proc/self/task/{pid}")).exists() {
        return None;
    }
    let file = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
        (b"task", Some(tid), Some(f), None) if digits(tid) => f,
        (f, None, _, _) if f != b"task" => f,
        _ => return None,
    };
    matches!(file, b"maps" | b"exe" | b"auxv" | b"cmdline" | b"environ").then_some((pid, file))
}
