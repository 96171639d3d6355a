//! Access to another guest process's memory (process_vm_readv/writev, ptrace PEEK/POKE),
//! checked against that process's guest page table at the moment of the copy.
//!
//! Another guest process is another cetbox process, whose guest memory is at the addresses the
//! guest names but which also holds cetbox's own heap, code cache and thread contexts. Handing
//! a guest's remote addresses to the host would let one guest write into another cetbox (an
//! escape), write shadow-stack and read-only pages that Linux refuses to process_vm_writev
//! (mm/gup.c `check_vma_flags`: a write to a !VM_WRITE or VM_SHADOW_STACK mapping needs
//! FOLL_FORCE), and read memory where Linux stops at the first bad page
//! (mm/process_vm_access.c `process_vm_rw_core`: a partial count, EFAULT if nothing moved).
//!
//! So every cetbox process publishes what a remote accessor needs:
//! - a header page at the fixed host address [`HEADER`] (never guest memory: the guest cannot
//!   map over cetbox's memory) with a magic word, a random nonce, the number of a private
//!   descriptor, the host address and extent of its page table and the address of its
//!   published VMA list (`cetbox_mem::directory_addr`);
//! - behind that descriptor, a memfd page holding the table's cross-process protocol
//!   (`cetbox_mem::xlock`: each change of page-table entries is recorded there and waits for
//!   registered accessors before it begins), and the nonce again.
//!
//! An accessor reads the header with the host's process_vm_readv (the same permission check
//! as the guest's call), takes the lock page with pidfd_open + pidfd_getfd (the same
//! PTRACE_MODE_ATTACH_REALCREDS check), confirms the nonce, and then, a bounded chunk at a
//! time, registers as an accessor, reads the target's entries for the chunk's pages with the
//! recorded change in progress applied, copies only the prefix they allow, and leaves. A
//! process without the header is native (not a cetbox guest: the host path is Linux's own
//! behaviour) unless it runs cetbox's own executable, which is refused (a cetbox process not
//! yet or no longer publishing its table).
//!
//! The accessor never waits for the target: a target stopped anywhere (SIGSTOP, a host ptrace
//! stop), inside a change of its table too, is read as it is after that change. A process
//! stopped (SIGSTOP, SIGTSTP: the host's stop, which cetbox cannot catch) while registered as
//! another's accessor (a few instructions around one host copy) holds up that process's
//! mapping changes until it runs again; the held-up threads still act on signals, a fatal one
//! included (`settle`).

use crate::errno::{Errno, SysResult};
use cetbox_mem::{page, xlock, PAGE_SIZE};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Host address of the header page in every cetbox process: below the guest placement window
/// (`cetbox_mem` RESERVE_START) and below the ptrace register page, far above cetbox's
/// executable and heap.
pub const HEADER: u64 = 0x5fff_fffe_0000;
const MAGIC: u64 = 0x6365_7462_6f78_4d54; // "cetboxMT"
/// Header words: magic, nonce, descriptor, table base, table limit, VMA directory
/// (`cetbox_mem::directory_addr`).
const HEADER_WORDS: usize = 6;
/// Offset of the nonce in the lock page (the lock word is at 0).
const PAGE_NONCE: usize = 8;
/// Pages checked and copied per registration as an accessor.
const CHUNK_PAGES: u64 = 64;

/// What this process publishes: its lock page and descriptor.
struct Published {
    fd: i32,
    page: u64,
}

static PUBLISHED: Mutex<Option<Published>> = Mutex::new(None);

fn nonce() -> u64 {
    let mut v = 0u64;
    // SAFETY: getrandom writes 8 bytes into `v`.
    let n = unsafe { libc::getrandom((&raw mut v).cast::<libc::c_void>(), 8, 0) };
    if n != 8 {
        // No entropy source: still unique per process and time.
        // SAFETY: getpid has no preconditions.
        v = (unsafe { libc::getpid() } as u64) << 32
            ^ std::time::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.as_nanos() as u64);
    }
    v | 1
}

/// A fresh lock page: a memfd page mapped shared, its descriptor private. The lock word starts
/// held by the caller when `held`.
fn new_lock_page(nonce: u64, held: bool) -> std::io::Result<Published> {
    // Unregistered until `make_private_fd` below (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    // SAFETY: memfd_create with a valid C string.
    let fd = unsafe { libc::memfd_create(c"cetbox-table-lock".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: sizing and mapping the memfd we just created.
    let p = unsafe {
        if libc::ftruncate(fd, PAGE_SIZE as i64) != 0 {
            libc::close(fd);
            return Err(std::io::Error::last_os_error());
        }
        libc::mmap(
            std::ptr::null_mut(),
            PAGE_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = std::io::Error::last_os_error();
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    // SAFETY: `p` is a fresh page-sized shared mapping; the words are aligned.
    unsafe {
        (*(p as *const AtomicU32)).store(
            if held { libc::gettid() as u32 } else { 0 },
            Ordering::Relaxed,
        );
        (*(p.cast::<u8>().add(PAGE_NONCE) as *const AtomicU64)).store(nonce, Ordering::Release);
    }
    let fd = crate::private_fds::make_private_fd(fd);
    Ok(Published { fd, page: p as u64 })
}

/// Writes the header page (mapping it the first time).
fn write_header(words: [u64; HEADER_WORDS]) -> std::io::Result<()> {
    // The header is our own page at a fixed address outside guest memory, created the first
    // time (EEXIST afterwards: it is already ours, made read-write again to be rewritten).
    match crate::fixed_map::map_fresh(HEADER, PAGE_SIZE as usize) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            // SAFETY: the page at HEADER is this process's own header page (published before,
            // or inherited through fork); no Rust reference covers it.
            let r = unsafe {
                libc::mprotect(
                    HEADER as *mut libc::c_void,
                    PAGE_SIZE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Err(e) => return Err(std::io::Error::from_raw_os_error(e.0)),
    }
    // SAFETY: the header page is mapped read-write (above) and ours; the words are aligned.
    unsafe {
        let h = HEADER as *mut u64;
        // The magic last: a reader that sees it sees the rest.
        for (i, w) in words.iter().enumerate().skip(1) {
            h.add(i).write_volatile(*w);
        }
        h.write_volatile(words[0]);
        libc::mprotect(
            HEADER as *mut libc::c_void,
            PAGE_SIZE as usize,
            libc::PROT_READ,
        );
    }
    Ok(())
}

/// Publishes this process's page table for remote accessors and installs its lock. Called
/// once the address space exists; later calls (exec in the same process) change nothing.
pub fn publish(mem: &cetbox_mem::AddressSpace) -> std::io::Result<()> {
    let mut g = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_some() {
        return Ok(());
    }
    let n = nonce();
    let p = new_lock_page(n, false)?;
    let pt = mem.page_table();
    write_header([
        MAGIC,
        n,
        p.fd as u64,
        pt.base_addr(),
        pt.limit(),
        cetbox_mem::directory_addr(),
    ])?;
    xlock::install(p.page as *const AtomicU32);
    xlock::set_on_stop(crate::thread_group::park_if_ending);
    mem.publish_vmas();
    *g = Some(p);
    Ok(())
}

/// Before a mapping call changes anything: waits until no other process's accessor is
/// registered on this process's table, or gives up (false) when the thread's stop flag is set
/// (a signal, the process ending): the call then restarts once the signal is acted on. An
/// accessor stopped (SIGSTOP) in its registration would otherwise hold the thread, unable to
/// act on signals (even a fatal one), until it runs again.
pub fn settle(t: &crate::process::Thread) -> bool {
    xlock::installed().is_none_or(|w| xlock::settle(w, &t.stop))
}

/// In a fork child (single-threaded, before any guest code runs): the lock page and its
/// descriptor are the parent's, shared. Makes our own and publishes it, then waits for the
/// accessors registered on the inherited page (one that found the inherited header and
/// registered there finishes first; one that registers afterwards sees the new nonce and
/// fails as at a bad page). The parent's lock is held meanwhile.
pub fn after_fork_child(mem: &cetbox_mem::AddressSpace) {
    let mut g = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(old) = g.take() else {
        return;
    };
    // SAFETY: the inherited lock page stays mapped until the end of this function.
    let old_word = unsafe { &*(old.page as *const AtomicU32) };
    xlock::acquire(old_word, None);
    let n = nonce();
    let Ok(p) = new_lock_page(n, false) else {
        // No lock page of our own: keep the header invalid so accessors refuse us rather
        // than trust the parent's lock.
        let _ = write_header([0; HEADER_WORDS]);
        xlock::install(std::ptr::null());
        xlock::release(old_word);
        return;
    };
    xlock::install(p.page as *const AtomicU32);
    let pt = mem.page_table();
    if write_header([
        MAGIC,
        n,
        p.fd as u64,
        pt.base_addr(),
        pt.limit(),
        cetbox_mem::directory_addr(),
    ])
    .is_err()
    {
        let _ = write_header([0; HEADER_WORDS]);
    }
    // An accessor registered on the inherited page before the new header was written may be
    // copying with our table's consent; one registering after it sees the new nonce.
    xlock::wait_borrowers(old_word);
    xlock::release(old_word);
    crate::private_fds::unregister_private_fd(old.fd);
    // SAFETY: the old page and descriptor are no longer installed or published.
    unsafe {
        libc::munmap(old.page as *mut libc::c_void, PAGE_SIZE as usize);
        libc::close(old.fd);
    }
    *g = Some(p);
}

/// The host's process_vm_readv of `len` bytes at `remote` in `pid` into `buf`.
fn host_read(pid: i32, remote: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    host_copy(pid, remote, buf, false)
}

/// The host's process_vm_readv (or, with `write`, process_vm_writev) of `buf.len()` bytes
/// between `buf` and `remote` in process `pid`, unchecked: for cetbox's own published pages
/// in another cetbox process, never for guest memory (that goes through the target's table).
pub(crate) fn host_copy(
    pid: i32,
    remote: u64,
    buf: &mut [u8],
    write: bool,
) -> Result<usize, Errno> {
    let l = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
        iov_len: buf.len(),
    };
    let r = libc::iovec {
        iov_base: remote as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec is our buffer; the remote one names memory in another process,
    // which the host kernel checks.
    let n = unsafe {
        if write {
            libc::process_vm_writev(pid, &l, 1, &r, 1, 0)
        } else {
            libc::process_vm_readv(pid, &l, 1, &r, 1, 0)
        }
    };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// Whether `pid` runs the same executable as this process (a cetbox process).
pub(crate) fn runs_cetbox(pid: i32) -> bool {
    match (
        std::fs::read_link(format!("/proc/{pid}/exe")),
        std::fs::read_link("/proc/self/exe"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        // Unknown: treat as cetbox, whose memory must not be reached unchecked.
        _ => true,
    }
}

/// Which pages an access may use, by the target's page-table entry and VMAs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// process_vm_readv: readable guest pages.
    Read,
    /// process_vm_writev: writable pages that are not shadow stack.
    Write,
    /// A forced read (FOLL_FORCE: ptrace PEEK, a read of /proc/PID/mem): any page of a guest
    /// mapping, PROT_NONE included (mm/gup.c `check_vma_flags`: VM_MAYREAD suffices), not
    /// past the end of its file.
    ForcedRead,
    /// A forced write (FOLL_FORCE | FOLL_WRITE: ptrace POKE, a write of /proc/PID/mem): any
    /// page of a guest mapping, except a shared mapping without PROT_WRITE
    /// (`check_vma_flags` refuses a forced write where `is_cow_mapping` is false, whatever
    /// the backing); a private one is written copy-on-write by the host's own forced write.
    ForcedWrite,
}

fn allowed(b: u8, rule: Rule) -> bool {
    if b & page::MAPPED == 0 || b & page::BEYOND_EOF != 0 {
        return false;
    }
    match rule {
        Rule::Read => b & page::READ != 0,
        Rule::Write => b & page::WRITE != 0 && b & page::SHADOW == 0,
        Rule::ForcedRead | Rule::ForcedWrite => false,
    }
}

/// Whether a forced access may use a page with entry `b`, given the published records of
/// the special VMAs (PROT_NONE, or shared without PROT_WRITE: `cetbox_mem` published.rs)
/// covering it. Two records cover it while an mprotect replaces one VMA with another (the
/// old and the new); the entry is then the old or the new one, and each answer below is the
/// one the state before or after the change gives.
fn forced_allowed(b: u8, covering: &[&cetbox_mem::Record], rule: Rule) -> bool {
    let shared_ro = covering
        .iter()
        .any(|v| v[2] & cetbox_mem::FLAG_SHARED != 0 && v[2] & libc::PROT_WRITE as u64 == 0);
    if rule == Rule::ForcedWrite && shared_ro {
        return false;
    }
    if b & page::MAPPED != 0 {
        // Mapped with some access: past the end of its file the host fault is SIGBUS, which
        // Linux's forced access reports as a failure too.
        return b & page::BEYOND_EOF == 0;
    }
    // No entry: PROT_NONE memory if a PROT_NONE VMA covers it, else nothing.
    b == 0 && covering.iter().any(|v| v[2] & 7 == 0)
}

/// Another cetbox process whose published table this process may consult.
struct Target {
    pid: i32,
    page: u64,
    nonce: u64,
    table: u64,
    limit: u64,
    directory: u64,
}

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: our own mapping of the target's lock page.
        unsafe { libc::munmap(self.page as *mut libc::c_void, PAGE_SIZE as usize) };
    }
}

fn read_header(pid: i32) -> Result<Option<[u64; HEADER_WORDS]>, Errno> {
    let mut raw = [0u8; HEADER_WORDS * 8];
    match host_read(pid, HEADER, &mut raw) {
        Ok(n) if n == raw.len() => {}
        Ok(_) | Err(Errno::EFAULT) => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut w = [0u64; HEADER_WORDS];
    for (i, c) in raw.chunks_exact(8).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
    }
    Ok((w[0] == MAGIC).then_some(w))
}

/// What a remote access meets at `pid`.
enum Peer {
    /// A process that is not cetbox: the host's access is Linux's.
    Native,
    /// A cetbox process: every page is checked against its table.
    Guest(Target),
}

impl Target {
    fn open(pid: i32) -> Result<Peer, Errno> {
        for _ in 0..4 {
            // The pidfd and the received descriptor are cetbox's own for a moment
            // (`cetbox_mem::transient`).
            let _hold = cetbox_mem::transient::hold();
            let Some(h) = read_header(pid)? else {
                return if runs_cetbox(pid) {
                    Err(Errno::EFAULT)
                } else {
                    Ok(Peer::Native)
                };
            };
            // SAFETY: pidfd_open and pidfd_getfd take integers; the descriptors are ours.
            let fd = unsafe {
                let mut pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
                if pidfd < 0 && matches!(Errno::last(), Errno::EINVAL | Errno::ENOENT) {
                    // A thread that is not its process's leader (a tracer names each traced
                    // thread): PIDFD_THREAD (O_EXCL) opens it.
                    pidfd = libc::syscall(libc::SYS_pidfd_open, pid, libc::O_EXCL) as i32;
                }
                if pidfd < 0 {
                    return Err(Errno::last());
                }
                let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd, h[2] as i32, 0) as i32;
                let e = Errno::last();
                libc::close(pidfd);
                if fd < 0 {
                    return Err(if e == Errno::EBADF { Errno::EFAULT } else { e });
                }
                fd
            };
            // SAFETY: mapping one page of the descriptor we just received, then closing it.
            let p = unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    PAGE_SIZE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                );
                libc::close(fd);
                p
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            let t = Target {
                pid,
                page: p as u64,
                nonce: h[1],
                table: h[3],
                limit: h[4],
                directory: h[5],
            };
            // Whatever the descriptor was, only the target's own lock page holds its nonce.
            if t.page_nonce() == t.nonce {
                return Ok(Peer::Guest(t));
            }
        }
        Err(Errno::EFAULT)
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: `page` is our live shared mapping of the lock page.
        unsafe { &*(self.page as *const AtomicU32) }
    }

    fn page_nonce(&self) -> u64 {
        // A file shorter than a page would fault here: read through the host instead.
        let mut raw = [0u8; 8];
        // SAFETY: `page` is our live mapping; the host's read of it fails rather than faults.
        let n = unsafe {
            let l = libc::iovec {
                iov_base: raw.as_mut_ptr().cast::<libc::c_void>(),
                iov_len: 8,
            };
            let r = libc::iovec {
                iov_base: (self.page as usize + PAGE_NONCE) as *mut libc::c_void,
                iov_len: 8,
            };
            libc::process_vm_readv(libc::getpid(), &l, 1, &r, 1, 0)
        };
        if n == 8 {
            u64::from_le_bytes(raw)
        } else {
            0
        }
    }

    /// Registers as the target's accessor (`xlock::Borrow`: no change of its table begins
    /// until the registration ends) and confirms the lock page is still the one the target
    /// publishes.
    fn borrow(&self) -> Option<Borrowed<'_>> {
        let b = xlock::Borrow::enter(self.word());
        match read_header(self.pid) {
            Ok(Some(h)) if h[1] == self.nonce => Some(Borrowed { t: self, b }),
            _ => None,
        }
    }
}

/// A registration as a target's accessor.
struct Borrowed<'a> {
    t: &'a Target,
    b: xlock::Borrow<'a>,
}

impl Borrowed<'_> {
    /// How many bytes from `addr` (at most `len`) lie on pages `rule` allows, in the table
    /// as it is after the change in progress, if any (`xlock::Borrow::read`).
    fn allowed_prefix(&self, addr: u64, len: u64, rule: Rule) -> u64 {
        if len == 0 {
            return 0;
        }
        self.b
            .read(|change| self.allowed_prefix_in(addr, len, rule, change))
    }

    fn allowed_prefix_in(
        &self,
        addr: u64,
        len: u64,
        rule: Rule,
        change: Option<xlock::Change>,
    ) -> u64 {
        let t = self.t;
        let first = addr >> 12;
        let last = (addr.saturating_add(len - 1)) >> 12;
        let npages = (last - first + 1) as usize;
        let mut entries = vec![0u8; npages];
        let inside = (t.limit >> 12).saturating_sub(first).min(npages as u64) as usize;
        if inside > 0 {
            match host_read(t.pid, t.table + first, &mut entries[..inside]) {
                Ok(n) => entries[n..].fill(0),
                Err(_) => return 0,
            }
        }
        // A page a move (mremap) is taking away or bringing is refused until it is done.
        let moving = |at: u64| match change {
            Some(c @ xlock::Change::Move { .. }) => c.apply(at, 1) == 0,
            _ => false,
        };
        if let Some(c) = change {
            for (i, b) in entries.iter_mut().enumerate() {
                *b = c.apply((first + i as u64) << 12, *b);
            }
        }
        let good = if matches!(rule, Rule::ForcedRead | Rule::ForcedWrite) {
            let Some(vmas) = self.vmas(first << 12, (last + 1) << 12, change) else {
                return 0;
            };
            entries
                .iter()
                .enumerate()
                .take_while(|&(i, &b)| {
                    let at = (first + i as u64) << 12;
                    let covering: Vec<&cetbox_mem::Record> =
                        vmas.iter().filter(|v| v[0] <= at && at < v[1]).collect();
                    !moving(at) && forced_allowed(b, &covering, rule)
                })
                .count()
        } else {
            entries.iter().take_while(|&&b| allowed(b, rule)).count()
        } as u64;
        if good as usize == npages {
            len
        } else {
            ((first + good) << 12).saturating_sub(addr).min(len)
        }
    }

    /// The target's published special VMAs that overlap [start, end), None if they cannot be
    /// read: from the sorted, disjoint list of the current ones (at most one per page of the
    /// range) and the few an mprotect in progress replaces. `change`: the change in
    /// progress, which may be a move of the list itself.
    fn vmas(
        &self,
        start: u64,
        end: u64,
        change: Option<xlock::Change>,
    ) -> Option<Vec<cetbox_mem::Record>> {
        const RECORD: u64 = std::mem::size_of::<cetbox_mem::Record>() as u64;
        let t = self.t;
        let word = |at: u64| -> Option<u64> {
            let mut raw = [0u8; 8];
            match host_read(t.pid, at, &mut raw) {
                Ok(8) => Some(u64::from_le_bytes(raw)),
                _ => None,
            }
        };
        let records = |at: u64, n: u64| -> Option<Vec<cetbox_mem::Record>> {
            let mut raw = vec![0u8; (n * RECORD) as usize];
            if n > 0 && host_read(t.pid, at, &mut raw).ok()? != raw.len() {
                return None;
            }
            Some(
                raw.chunks_exact(RECORD as usize)
                    .map(|r| {
                        let w = |i: usize| {
                            u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
                        };
                        [w(0), w(1), w(2)]
                    })
                    .collect(),
            )
        };
        let (base, counts) = match change {
            Some(xlock::Change::Directory { ptr, len }) => (ptr, len),
            _ => (word(t.directory)?, word(t.directory + 8)?),
        };
        let (count, leaving) = (counts & 0xffff_ffff, counts >> 32);
        // The first current record whose end lies above `start`.
        let (mut lo, mut hi) = (0u64, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if word(base + mid * RECORD + 8)? <= start {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let n = (count - lo).min((end - start) / PAGE_SIZE + 1);
        let mut found = records(base + lo * RECORD, n)?;
        found.extend(records(base + count * RECORD, leaving)?);
        found.retain(|v| v[0] < end && v[1] > start);
        Some(found)
    }
}

/// process_vm_readv/writev on another process: `local` are host iovecs of the caller's
/// (checked) buffers, `remote` the guest's (address, length) pairs in `pid`.
pub fn process_vm(
    pid: i32,
    local: &[libc::iovec],
    remote: &[(u64, u64)],
    write: bool,
) -> SysResult {
    let nr = if write {
        libc::SYS_process_vm_writev
    } else {
        libc::SYS_process_vm_readv
    };
    let host = |l: &[libc::iovec], r: &[libc::iovec]| -> Result<u64, Errno> {
        // SAFETY: the local iovecs describe the caller's checked (or bounce) buffers; the
        // remote ones are in another process, checked against its table or native.
        Errno::check(unsafe {
            libc::syscall(nr, pid, l.as_ptr(), l.len(), r.as_ptr(), r.len(), 0u64)
        })
    };
    let target = match Target::open(pid)? {
        Peer::Native => {
            let rv: Vec<libc::iovec> = remote
                .iter()
                .map(|&(b, l)| libc::iovec {
                    iov_base: b as *mut libc::c_void,
                    iov_len: l as usize,
                })
                .collect();
            return host(local, &rv);
        }
        Peer::Guest(t) => t,
    };
    let rule = if write { Rule::Write } else { Rule::Read };
    let local_total: u64 = local.iter().map(|v| v.iov_len as u64).sum();
    let wanted = local_total.min(remote.iter().map(|v| v.1).sum());
    // The local cursor: iovec index and offset into it.
    let (mut li, mut lo) = (0usize, 0u64);
    let mut done = 0u64;
    'remote: for &(base, len) in remote {
        let mut off = 0u64;
        while off < len {
            while li < local.len() && lo >= local[li].iov_len as u64 {
                li += 1;
                lo = 0;
            }
            if li >= local.len() {
                break 'remote;
            }
            let a = base.wrapping_add(off);
            let chunk = (len - off).min((CHUNK_PAGES * PAGE_SIZE) - (a & (PAGE_SIZE - 1)));
            let Some(held) = target.borrow() else {
                break 'remote;
            };
            let n = held.allowed_prefix(a, chunk, rule);
            if n == 0 {
                break 'remote;
            }
            // Local iovecs for up to n bytes from the cursor.
            let mut lv = Vec::new();
            let (mut i, mut o, mut take) = (li, lo, 0u64);
            while i < local.len() && take < n {
                let avail = local[i].iov_len as u64 - o;
                let k = avail.min(n - take);
                if k > 0 {
                    lv.push(libc::iovec {
                        // SAFETY (pointer arithmetic only): inside the caller's iovec.
                        iov_base: (local[i].iov_base as u64 + o) as *mut libc::c_void,
                        iov_len: k as usize,
                    });
                }
                take += k;
                o += k;
                if o >= local[i].iov_len as u64 {
                    i += 1;
                    o = 0;
                }
            }
            let rv = [libc::iovec {
                iov_base: a as *mut libc::c_void,
                iov_len: take as usize,
            }];
            let r = host(&lv, &rv);
            drop(held);
            let r = match r {
                Ok(r) => r,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break 'remote,
            };
            done += r;
            off += r;
            // Advance the local cursor by r.
            let mut adv = r;
            while adv > 0 && li < local.len() {
                let k = (local[li].iov_len as u64 - lo).min(adv);
                lo += k;
                adv -= k;
                if lo >= local[li].iov_len as u64 {
                    li += 1;
                    lo = 0;
                }
            }
            if r < take {
                break 'remote;
            }
        }
    }
    if done == 0 && wanted != 0 {
        return Err(Errno::EFAULT);
    }
    Ok(done)
}

/// ptrace PEEKTEXT/PEEKDATA/POKETEXT/POKEDATA of the word at `addr` in `pid` (`poke`: the
/// word a POKE writes): the host's request (`host`, which does the forced access) runs,
/// registered as the target's accessor (`xlock::Borrow`), when every page of the word allows
/// the forced access. Otherwise EIO, as Linux's `generic_ptrace_peekdata`/`pokedata` answer
/// when `ptrace_access_vm` copies less than a word (or ESRCH if `pid` is not a tracee
/// stopped for us, which Linux checks first); a POKE has then written the bytes before the
/// first page it may not touch, as `access_remote_vm` copies page by page (kernel/ptrace.c,
/// mm/memory.c `__access_remote_vm`).
pub fn ptrace_word(
    pid: i32,
    addr: u64,
    poke: Option<u64>,
    host: impl FnOnce() -> SysResult,
) -> SysResult {
    let target = match Target::open(pid) {
        Ok(Peer::Native) => return host(),
        Ok(Peer::Guest(t)) => t,
        Err(_) => return Err(not_word(pid)),
    };
    let Some(held) = target.borrow() else {
        return Err(not_word(pid));
    };
    let rule = if poke.is_some() {
        Rule::ForcedWrite
    } else {
        Rule::ForcedRead
    };
    let n = held.allowed_prefix(addr, 8, rule) as usize;
    if n == 8 {
        return host();
    }
    let e = not_word(pid);
    if let (Some(word), Errno::EIO, 1..) = (poke, e, n) {
        // The part on the pages the target allows: the host's forced write of exactly those
        // bytes, through its /proc/PID/mem (the tracer may open it: PTRACE_MODE_ATTACH).
        let _ = host_mem_write(pid, addr, &word.to_le_bytes()[..n]);
    }
    drop(held);
    Err(e)
}

/// The host's /proc/PID/mem of `pid`, opened for reading or for writing (close-on-exec): the
/// host's forced access (FOLL_FORCE) to another process's memory. EIO when it cannot be opened.
fn open_proc_mem(pid: i32, write: bool) -> Result<std::fs::File, Errno> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open(format!("/proc/{pid}/mem"))
        .map_err(|_| Errno::EIO)
}

/// The host's forced write of `bytes` at `addr` in `pid`, through its /proc/PID/mem.
fn host_mem_write(pid: i32, addr: u64, bytes: &[u8]) -> SysResult {
    use std::os::unix::fs::FileExt;
    let f = open_proc_mem(pid, true)?;
    f.write_at(bytes, addr)
        .map(|n| n as u64)
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// EIO, or ESRCH when `pid` is not our stopped tracee (a register read of its cetbox process
/// tells, and reads nothing the guest sees).
fn not_word(pid: i32) -> Errno {
    let mut v = 0u64;
    // SAFETY: PTRACE_PEEKUSER writes one word into `v`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ptrace,
            libc::PTRACE_PEEKUSER,
            pid,
            0usize,
            &raw mut v,
        )
    };
    if r < 0 && Errno::last() == Errno::ESRCH {
        Errno::ESRCH
    } else {
        Errno::EIO
    }
}

/// A read or write of another process's memory through a guest's /proc/PID/mem (FOLL_FORCE
/// access: fs/proc/base.c `mem_rw`): the host's pread/pwrite of its /proc/PID/mem, a chunk at
/// a time, only on pages of that process's guest memory, registered as its accessor. A
/// transfer that starts on a page that is not guest memory fails with EIO, one that reaches
/// one stops short, as `mem_rw` does when access_remote_vm copies nothing.
pub fn mem_file(pid: i32, addr: u64, buf: &mut [u8], write: bool) -> SysResult {
    use std::os::fd::AsRawFd;
    let f = open_proc_mem(pid, write)?;
    mem_file_via(pid, f.as_raw_fd(), addr, buf, write)
}

fn mem_file_via(pid: i32, fd: i32, addr: u64, buf: &mut [u8], write: bool) -> SysResult {
    let host = |b: &mut [u8], at: u64| -> Result<u64, Errno> {
        // SAFETY: `b` is our buffer of b.len() bytes; the descriptor is the guest's open of
        // /proc/PID/mem.
        Errno::check(unsafe {
            if write {
                libc::pwrite(fd, b.as_ptr().cast::<libc::c_void>(), b.len(), at as i64) as i64
            } else {
                libc::pread(
                    fd,
                    b.as_mut_ptr().cast::<libc::c_void>(),
                    b.len(),
                    at as i64,
                ) as i64
            }
        })
    };
    let target = match Target::open(pid) {
        Ok(Peer::Native) => return host(buf, addr),
        Ok(Peer::Guest(t)) => t,
        Err(_) => return Err(Errno::EIO),
    };
    let mut done = 0usize;
    while done < buf.len() {
        let a = addr.wrapping_add(done as u64);
        let chunk =
            ((buf.len() - done) as u64).min(CHUNK_PAGES * PAGE_SIZE - (a & (PAGE_SIZE - 1)));
        let Some(held) = target.borrow() else {
            break;
        };
        let rule = if write {
            Rule::ForcedWrite
        } else {
            Rule::ForcedRead
        };
        let n = held.allowed_prefix(a, chunk, rule) as usize;
        if n == 0 {
            break;
        }
        let r = host(&mut buf[done..done + n], a);
        drop(held);
        match r {
            Ok(r) => {
                done += r as usize;
                if (r as usize) < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if done == 0 && !buf.is_empty() {
        return Err(Errno::EIO);
    }
    Ok(done as u64)
}
