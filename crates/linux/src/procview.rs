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
//! the address and length of each blob: the VMA records (of which the text of
//! /proc/self/maps is made, as of smaps and the sizes), the executable's path as the guest
//! sees it, the auxv bytes, and the guest's argument and environment ranges (read
//! from its guest memory through `remote_mem`, as Linux's cmdline and environ read the
//! process's memory). It is rewritten when the VMAs changed since the last time
//! (`AddressSpace::vma_generation`; stack growth by a fault counts), at the entry of every
//! system call other than the mapping calls themselves (`syscalls::table::MAPPING`), before a
//! signal is acted on (where a traced process stops for its tracer), and after exec. So a
//! program that
//! maps and unmaps in a loop pays for one rewrite when it next does something else, and
//! whatever another process can learn from this one through a system call (a pipe, a signal,
//! a wait, a ptrace stop) finds the view already current. What it does not cover: a change
//! announced to another process through shared memory alone, with no system call, which the
//! view shows from the next call on. A fork child inherits the parent's copy, which describes
//! it.
//!
//! The reader copies only the blobs the file it makes needs (`Need`), and trusts nothing it
//! reads beyond bounds: lengths are capped, the copies are the host's (a bad address fails, never faults), a sequence number that moved while it read
//! makes it read again a few times and then give up, and what it got is shown as file contents
//! (a process that is not cetbox but maps a fake header there can only show itself wrongly).
//! A process without the header (native, or not yet publishing), or one the host refuses to
//! let us read, keeps the host's view.
//!
//! status, stat, statm, smaps and smaps_rollup (and syscall, wchan, limits and personality, from
//! the slots and the published limits) are made by the reader with the generators of
//! /proc/self (`procfs`), from the target's facts, so the text is what the target would read
//! of itself at that moment: the VMAs as records (published with maps), the values the
//! target's kernel side keeps (signal masks and dispositions, shadow-stack features, the
//! VmHWM it has shown), published at the same points in fixed words (the dispositions when
//! they change, the thread's mask, pending signals and features at every syscall entry and
//! before a signal is acted on: stale while the thread runs guest code, current while it
//! blocks or is stopped), and what the host kernel keeps for both alike, read from the host's
//! files of the target (State, PPid, the ids, Threads, FDSize, capabilities, and the resident
//! pages from its /proc/PID/pagemap, which is current, as natively). The host's State S is
//! the guest's only while the thread is in a guest's waiting call, which each thread marks in
//! its slot ([`Waiting`]); otherwise it is one of cetbox's own waits and shown as R. The target's private
//! descriptors (`private_fds`) are found through the published address of their table, read
//! when the reader lists /proc/PID/fd or reads a link there.

use crate::errno::Errno;
use crate::process::Thread;
use cetbox_mem::PAGE_SIZE;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Host address of the header page: below `remote_mem::HEADER`, outside guest memory.
pub const PAGE: u64 = 0x5fff_fffd_0000;
/// The header page.
const LEN: usize = PAGE_SIZE as usize;
const MAGIC: u64 = 0x6365_7462_7072_6f64; // "cetbprod"
/// Header words under the seqlock: magic, sequence, two words unused (0), then (address,
/// length) of exe and auxv, then arg_start, arg_end, env_start, env_end, then (address, length) of the
/// executable's host path and of the VMA records (`procfs::VmaInfo::encode`), brk_start, and
/// the address of the private-descriptor table (`private_fds::table_address`).
const WORDS: usize = 18;
const W_SEQ: usize = 1;
/// Words written on their own (each one value): SigIgn, SigCgt, ShdPnd, VmHWM in KiB.
const W_IGN: usize = 24;
const W_CGT: usize = 25;
const W_SHDPND: usize = 26;
const W_HWM: usize = 27;
/// How many thread slots have ever been taken (the slots a reader looks through), and how
/// many threads are being created and have not taken theirs yet ([`creating`]).
const W_HIGH: usize = 28;
const W_CREATING: usize = 29;
/// The guest's resource limits that are not the host's (`rlimit`): 1 once published, then
/// soft and hard of RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK; then the personality, with bit
/// 32 set once published.
const W_LIMITS: usize = 30;
const W_PERS: usize = 37;
/// The thread slots, at their own fixed address (below the ptrace pages,
/// `syscalls::ptrace::page::BASE`): room for [`MAX_SLOTS`] threads, of which the host backs
/// only the pages used (fresh anonymous memory), so a process with few threads pays one page.
const SLOTS_BASE: u64 = 0x5fff_fe00_0000;
/// Slot words: tid, sequence (a seqlock per slot), the blocked and pending signals, the
/// shadow-stack features and locked features, the wait word (outside the seqlock, see
/// [`Waiting`]), the system call the thread is in plus one (0: none), its six arguments, and
/// the stack and instruction pointers at its entry (/proc/PID/syscall).
const SLOT_WORDS: usize = 16;
const S_WAITING: usize = 6;
const S_NR: usize = 7;
/// Linux's own limit on a process's threads is its pid space and threads-max; cetbox's is
/// this many threads with a slot (8 MiB of address space): a thread beyond it keeps the
/// host's status and stat.
const MAX_SLOTS: usize = 65536;
const SLOTS_LEN: usize = MAX_SLOTS * SLOT_WORDS * 8;
const MAX_VMAS: u64 = 64 << 20;
const MAX_EXE: u64 = 4096;
const MAX_AUXV: u64 = 4096;
/// Linux's cmdline and environ are whatever lies in the range; capped for our copy.
const MAX_RANGE: u64 = 16 << 20;

/// The blobs the header points at (kept alive until the next publication).
struct Blobs {
    exe: Vec<u8>,
    auxv: Vec<u8>,
    exe_host: Vec<u8>,
    vmas: Vec<u8>,
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
    // The slots name the parent's threads; this thread takes one at its next call. The child
    // has no pending signals and its own VmHWM (`Process::forked`).
    let _ = SLOT.try_with(|s| s.set(None));
    if let (Some(w), Some(s)) = (pages(), slots()) {
        w[W_SHDPND].store(0, Ordering::Relaxed);
        w[W_HWM].store(0, Ordering::Relaxed);
        for i in 0..high(w) {
            s[i * SLOT_WORDS].store(0, Ordering::Relaxed);
            s[i * SLOT_WORDS + S_WAITING].store(0, Ordering::Relaxed);
        }
        // The forking thread is the one thread and has no slot yet: a reader waits for it
        // (`thread_started` takes it and counts it done).
        w[W_CREATING].store(1, Ordering::Release);
    }
}

/// Publishes this process's view when its VMAs changed since the last publication (or `force`,
/// after exec), and the calling thread's facts always. Called by the syscall layer at the
/// entry of every call but those that only change mappings (`syscalls::table::MAPPING`) and
/// by signal delivery (module comment).
pub fn refresh(t: &Thread, force: bool) {
    publish_thread(t);
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
    let infos = crate::procfs::vma_infos(t);
    let new = Blobs {
        exe: crate::sysroot::to_guest(t.proc.opts.sysroot.as_deref(), &img.exe).into_bytes(),
        auxv: img
            .auxv
            .iter()
            .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
            .collect(),
        exe_host: img.exe.clone().into_bytes(),
        vmas: crate::procfs::VmaInfo::encode(&infos),
    };
    let blob = |b: &Vec<u8>| (b.as_ptr() as u64, b.len() as u64);
    let (e, a, h, v) = (
        blob(&new.exe),
        blob(&new.auxv),
        blob(&new.exe_host),
        blob(&new.vmas),
    );
    let words = [
        MAGIC,
        0,
        0,
        0,
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
        v.0,
        v.1,
        img.brk_start,
        crate::private_fds::table_address(),
    ];
    publish_dispositions(&t.proc.signals);
    publish_limits(t.proc.personality.load(Ordering::Relaxed));
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
    if crate::fixed_map::map_fresh(PAGE, LEN).is_err() {
        return;
    }
    if crate::fixed_map::map_fresh(SLOTS_BASE, SLOTS_LEN).is_err() {
        // SAFETY: the header page was just made ours above and nothing refers to it yet.
        unsafe { libc::munmap(PAGE as *mut libc::c_void, LEN) };
        return;
    }
    RESERVED.store(true, Ordering::Release);
}

/// The thread slots, once they are made (with [`pages`]).
fn slots() -> Option<&'static [AtomicU64; SLOTS_LEN / 8]> {
    if !RESERVED.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: as for `pages`: mapped read-write by `reserve` (or inherited through fork) for
    // the process's lifetime, aligned, only accessed atomically.
    Some(unsafe { &*(SLOTS_BASE as *const [AtomicU64; SLOTS_LEN / 8]) })
}

/// How many slots have been taken at some time (the ones to look through).
fn high(w: &[AtomicU64; LEN / 8]) -> usize {
    (w[W_HIGH].load(Ordering::Acquire) as usize).min(MAX_SLOTS)
}

/// Publishes the guest's own resource limits (`rlimit`: RLIMIT_AS, RLIMIT_DATA and
/// RLIMIT_STACK, which the host's limits file of cetbox does not show) and its personality,
/// for another process's /proc/PID/limits and personality. Called when the view is rewritten
/// and when they change (setrlimit, prlimit, personality).
pub fn publish_limits(personality: u32) {
    let Some(w) = pages() else { return };
    for (i, res) in [libc::RLIMIT_AS, libc::RLIMIT_DATA, libc::RLIMIT_STACK]
        .into_iter()
        .enumerate()
    {
        let (soft, hard) = crate::rlimit::get(res as i32).unwrap_or((u64::MAX, u64::MAX));
        w[W_LIMITS + 1 + 2 * i].store(soft, Ordering::Relaxed);
        w[W_LIMITS + 2 + 2 * i].store(hard, Ordering::Relaxed);
    }
    w[W_LIMITS].store(1, Ordering::Release);
    w[W_PERS].store(1 << 32 | personality as u64, Ordering::Release);
}

/// A guest thread is about to be created (a clone of a thread or a process): a reader that
/// finds no slot for a thread of this process while such a creation is under way waits for
/// the new thread to take one ([`thread_started`]) rather than show the host's files of it.
/// Undone by the new thread's `thread_started`, or by [`creation_failed`].
pub fn creating() {
    if let Some(w) = pages() {
        w[W_CREATING].fetch_add(1, Ordering::AcqRel);
    }
}

/// The creation announced by [`creating`] made no thread (or, in a fork's parent, is over:
/// the child has its own count).
pub fn creation_failed() {
    if let Some(w) = pages() {
        let _ =
            w[W_CREATING].fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// The words of this process's pages, once they are made.
fn pages() -> Option<&'static [AtomicU64; LEN / 8]> {
    if !RESERVED.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: the pages are ours (made by `reserve`, or inherited with them through fork),
    // mapped read-write for the process's lifetime and never unmapped; the words are aligned
    // and only ever accessed atomically.
    Some(unsafe { &*(PAGE as *const [AtomicU64; LEN / 8]) })
}

/// The signals the process ignores and catches (status SigIgn and SigCgt), when its
/// dispositions change (`ProcessSignals::set_action`) or the view is rewritten.
pub fn publish_dispositions(s: &crate::signals::ProcessSignals) {
    let (ign, cgt) = s.ignored_and_caught();
    set_dispositions(ign, cgt);
}

/// Publishes SigIgn and SigCgt.
pub fn set_dispositions(ign: u64, cgt: u64) {
    if let Some(w) = pages() {
        w[W_IGN].store(ign, Ordering::Relaxed);
        w[W_CGT].store(cgt, Ordering::Relaxed);
    }
}

/// Publishes the VmHWM this process has shown (it keeps the peak as its status is read).
pub fn publish_hwm(kb: u64) {
    if let Some(w) = pages() {
        w[W_HWM].fetch_max(kb, Ordering::Relaxed);
    }
}

thread_local! {
    /// The slot this thread publishes its facts in.
    static SLOT: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Publishes the calling thread's signal mask, pending signals and shadow-stack features, and
/// the process's pending signals, in its slot (taken the first time; none when all are
/// taken: its status then keeps the host's view).
fn publish_thread(t: &Thread) {
    let (Some(w), Some(sl)) = (pages(), slots()) else {
        return;
    };
    let slot = SLOT.try_with(|c| {
        if c.get().is_none() {
            c.set(claim(w, sl, t.tid));
            // Not waiting (whatever the slot's last holder left).
            if let Some(i) = c.get() {
                sl[i * SLOT_WORDS + S_WAITING].store(0, Ordering::Release);
            }
        }
        c.get()
    });
    let Ok(Some(i)) = slot else { return };
    let f = crate::procfs::thread_facts(t);
    w[W_SHDPND].store(f.shd_pnd, Ordering::Relaxed);
    let s = &sl[i * SLOT_WORDS..][..SLOT_WORDS];
    let seq = s[1].load(Ordering::Relaxed);
    s[1].store(seq | 1, Ordering::Release);
    std::sync::atomic::fence(Ordering::Release);
    s[2].store(f.blocked, Ordering::Relaxed);
    s[3].store(f.pending, Ordering::Relaxed);
    s[4].store(f.features, Ordering::Relaxed);
    s[5].store(f.locked, Ordering::Relaxed);
    // The call being entered (or interrupted, at a signal's delivery), as Linux's
    // collect_syscall reads it from the task's saved registers (lib/syscall.c): the number,
    // the six argument registers, the stack pointer and the address after the SYSCALL.
    let g = &t.cpu.gpr;
    s[S_NR].store(t.signals.in_syscall.map_or(0, |n| n + 1), Ordering::Relaxed);
    for (k, r) in [7, 6, 2, 10, 8, 9].into_iter().enumerate() {
        s[S_NR + 1 + k].store(g[r], Ordering::Relaxed);
    }
    s[14].store(g[4], Ordering::Relaxed);
    s[15].store(t.cpu.rip, Ordering::Relaxed);
    s[1].store((seq | 1) + 1, Ordering::Release);
}

/// Takes a free slot for `tid`: one a thread that exited left, or a new one past the slots
/// taken so far (None: all [`MAX_SLOTS`] are in use).
fn claim(w: &[AtomicU64; LEN / 8], s: &[AtomicU64; SLOTS_LEN / 8], tid: i32) -> Option<usize> {
    let take = |i: usize| {
        s[i * SLOT_WORDS]
            .compare_exchange(0, tid as u64, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    };
    loop {
        let h = high(w);
        if let Some(i) = (0..h).find(|&i| take(i)) {
            return Some(i);
        }
        if h >= MAX_SLOTS {
            return None;
        }
        // Slot `h` becomes visible to readers and to other claimers at once; whoever takes it
        // first has it.
        let _ =
            w[W_HIGH].compare_exchange(h as u64, h as u64 + 1, Ordering::AcqRel, Ordering::Relaxed);
        if take(h) {
            return Some(h);
        }
    }
}

/// Publishes the calling thread's slot before its first system call (at start-up, in a fork
/// child, in a new thread), so that its State is the guest's from the first instruction
/// ([`Waiting`]).
pub fn thread_started(t: &Thread) {
    publish_thread(t);
    creation_failed();
}

/// Marks the calling thread, for as long as it lives, as sleeping in a guest's waiting call
/// (a blocking read, a futex or signal wait, nanosleep, ...: `waitcall`, sigsuspend).
///
/// Linux shows a thread's State as S only while it sleeps interruptibly in the kernel
/// (fs/proc/array.c get_task_state), and programs wait for S to know that another process
/// has reached its blocking call (glibc's support_process_state_wait, before a signal that
/// call must take: misc/tst-pidfd). The host's State of the host thread that runs a guest
/// thread is S also while cetbox itself waits (a contended lock, the virtual CPU lease of
/// `vcpu`, the join of start-up in `signals::host`), where the guest thread is running for
/// Linux. So the reader shows S only while this mark is set, and R where the host says S
/// without it ([`shown_state`]).
pub struct Waiting {
    word: Option<&'static AtomicU64>,
    before: u64,
}

impl Waiting {
    pub fn begin() -> Waiting {
        let word = slots().and_then(|s| {
            let i = SLOT.try_with(|c| c.get()).ok().flatten()?;
            Some(&s[i * SLOT_WORDS + S_WAITING])
        });
        let before = word.map_or(0, |w| w.swap(1, Ordering::Release));
        Waiting { word, before }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(w) = self.word {
            w.store(self.before, Ordering::Release);
        }
    }
}

/// The State a reader shows for a thread whose host State is `host` and whose wait word is
/// `waiting` ([`Waiting`]): the host's, but R where the host's S is one of cetbox's own waits.
pub fn shown_state(host: &str, waiting: u64) -> String {
    if host.starts_with('S') && waiting == 0 {
        "R (running)".into()
    } else {
        host.to_string()
    }
}

/// What a thread last published in its slot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThreadWords {
    pub blocked: u64,
    pub pending: u64,
    pub features: u64,
    pub locked: u64,
    /// The wait word ([`Waiting`]).
    pub waiting: u64,
    /// The system call it was in plus one (0: none), its six arguments, stack pointer and
    /// instruction pointer.
    pub syscall: [u64; 9],
}

impl ThreadWords {
    fn of(s: &[u64]) -> ThreadWords {
        let mut syscall = [0; 9];
        syscall.copy_from_slice(&s[S_NR..S_NR + 9]);
        ThreadWords {
            blocked: s[2],
            pending: s[3],
            features: s[4],
            locked: s[5],
            waiting: s[S_WAITING],
            syscall,
        }
    }

    /// The thread's /proc/PID/task/TID/syscall as another thread reads it (fs/proc/base.c
    /// proc_pid_syscall): Linux shows the call and its registers only for a task that is not
    /// running (kernel/lib/syscall.c task_current_syscall answers EAGAIN, shown as
    /// "running", for a runnable one), so here only while it sleeps (`asleep`, as
    /// `procfs` finds it).
    pub fn syscall_text(&self, asleep: bool) -> String {
        if !asleep || self.syscall[0] == 0 {
            return "running\n".into();
        }
        syscall_line(
            self.syscall[0] - 1,
            &self.syscall[1..7],
            self.syscall[7],
            self.syscall[8],
        )
    }
}

/// The line of /proc/PID/syscall for a task in call `nr` with `args` (fs/proc/base.c
/// proc_pid_syscall: the number as an int, the rest as 0x%llx).
pub fn syscall_line(nr: u64, args: &[u64], sp: u64, ip: u64) -> String {
    let mut o = format!("{}", nr as i32);
    for a in args {
        o += &format!(" 0x{a:x}");
    }
    o + &format!(" 0x{sp:x} 0x{ip:x}\n")
}

/// Looks a thread up with `find`, which gives its slot's words when a slot names it and the
/// count of threads being created ([`creating`]). While no slot names it and a creation is
/// under way, it is most likely that new thread, which takes its slot before it runs any
/// guest code: the lookup is made again for a while rather than show the host's files of
/// the thread. Bounded (5 s: on a loaded machine a new host thread was seen to wait more
/// than 500 ms to first run), for a host thread that is no guest thread (a debugger
/// connection's) read while threads are being created.
fn await_slot(find: impl Fn() -> Option<(Option<ThreadWords>, u64)>) -> Option<ThreadWords> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (found, creating) = find()?;
        if found.is_some() || creating == 0 || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}

/// What this process's thread `tid` last published (as [`View::thread_words`]).
pub fn own_thread_words(tid: i32) -> Option<ThreadWords> {
    let (w, sl) = (pages()?, slots()?);
    await_slot(|| {
        let creating = w[W_CREATING].load(Ordering::Acquire);
        let found = seq_read(
            || {
                let i = (0..high(w))
                    .map(|i| i * SLOT_WORDS)
                    .find(|&i| sl[i].load(Ordering::Acquire) == tid as u64)?;
                Some((sl[i + 1].load(Ordering::Acquire), i))
            },
            |&i| {
                let words: Vec<u64> = (0..SLOT_WORDS)
                    .map(|k| sl[i + k].load(Ordering::Relaxed))
                    .collect();
                std::sync::atomic::fence(Ordering::Acquire);
                Some(ThreadWords::of(&words))
            },
        );
        Some((found, creating))
    })
}

/// A read under a seqlock: `head` gives the sequence and what locates the data, `read` reads
/// the data; then the sequence must be the same, and even (no write under way), or it is all
/// read again, a few times at most (the writer may be another process: it cannot make the
/// reader wait). None: `head` failed, or the sequence did not settle; else what `read` gave.
fn seq_read<H, T>(
    head: impl Fn() -> Option<(u64, H)>,
    read: impl Fn(&H) -> Option<T>,
) -> Option<T> {
    for _ in 0..8 {
        let (seq, h) = head()?;
        if seq & 1 == 0 {
            let v = read(&h);
            if head()?.0 == seq {
                return v;
            }
        }
        std::thread::yield_now();
    }
    None
}

/// At the exit of a guest thread: its slot is free again.
pub fn thread_exit() {
    let Some(w) = pages() else { return };
    let Some(s) = slots() else { return };
    let _ = w;
    if let Ok(Some(i)) = SLOT.try_with(|c| c.take()) {
        s[i * SLOT_WORDS + S_WAITING].store(0, Ordering::Relaxed);
        s[i * SLOT_WORDS].store(0, Ordering::Release);
    }
}

/// Writes the header under the seqlock (nothing when the page could not be made ours).
fn write_header(words: &[u64; WORDS]) -> Result<(), Errno> {
    let Some(cells) = pages() else {
        return Err(Errno::ENOMEM);
    };
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

/// Which blobs of another guest's view a reader copies (those not needed are left empty).
#[derive(Clone, Copy, Default)]
pub struct Need {
    /// The executable's path as the guest sees it (readlink of exe).
    pub exe: bool,
    pub auxv: bool,
    /// The executable's host path (opening exe, and the command name of status and stat).
    pub exe_host: bool,
    /// The VMA records (maps, smaps, status, stat, statm).
    pub vmas: bool,
}

impl Need {
    /// What the /proc/PID `file` (a name `other_file` accepts) is made of, when it is opened
    /// or read (readlink of exe needs `exe` alone).
    pub fn of_file(file: &[u8]) -> Need {
        match file {
            b"exe" => Need {
                exe_host: true,
                ..Need::default()
            },
            b"auxv" => Need {
                auxv: true,
                ..Need::default()
            },
            b"maps" => Need {
                vmas: true,
                ..Need::default()
            },
            b"cmdline" | b"environ" | b"syscall" | b"wchan" | b"limits" | b"personality" => {
                Need::default()
            }
            _ => Need {
                vmas: true,
                exe_host: true,
                ..Need::default()
            },
        }
    }
}

/// Another guest's published view, read consistently (the blobs it was asked for).
pub struct View {
    pub exe: Vec<u8>,
    pub auxv: Vec<u8>,
    /// The executable's host path (differs from `exe` under `--sysroot`).
    pub exe_host: Vec<u8>,
    /// The VMA records (`procfs::VmaInfo::encode`).
    pub vmas: Vec<u8>,
    pub brk_start: u64,
    args: (u64, u64),
    env: (u64, u64),
    pid: i32,
}

/// The first header word of a vfork snapshot holder (`crate::fork`): a copy of its vfork
/// child's memory that is no process of the guest's. Readers find no view there, and /proc
/// listings leave it out (`is_holder`).
const HOLDER_MAGIC: u64 = 0x6365_7462_686f_6c64; // "cetbhold"

/// In a vfork snapshot holder, right after it was made: its copy of the header (inherited
/// from the process it copies, which it is not) says what it is. Async-signal-safe: one
/// atomic store into cetbox's own private page, no guest memory.
pub fn mark_holder() {
    if let Some(w) = pages() {
        w[0].store(HOLDER_MAGIC, Ordering::Release);
    }
}

/// Whether host process `pid` is a vfork snapshot holder of a cetbox process (`mark_holder`).
pub fn is_holder(pid: i32) -> bool {
    let mut raw = [0u8; 8];
    crate::remote_mem::host_copy(pid, PAGE, &mut raw, false).ok() == Some(8)
        && u64::from_le_bytes(raw) == HOLDER_MAGIC
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

/// The view `pid` publishes, with the blobs `need` names, if it is another guest that
/// publishes one and the host lets us read it (None: the host's view applies).
pub fn of(pid: i32, need: Need) -> Option<View> {
    // SAFETY: getpid has no preconditions.
    if pid == unsafe { libc::getpid() } {
        return None;
    }
    let head = || read_words(pid).map(|w| (w[W_SEQ], w));
    seq_read(head, |w| {
        let blob = |want: bool, at: usize, max: u64| match want {
            true => read_blob(pid, w[at], w[at + 1], max),
            false => Some(Vec::new()),
        };
        let exe = blob(need.exe, 4, MAX_EXE);
        let auxv = blob(need.auxv, 6, MAX_AUXV);
        let exe_host = blob(need.exe_host, 12, MAX_EXE);
        let vmas = blob(need.vmas, 14, MAX_VMAS);
        Some(View {
            exe: exe?,
            auxv: auxv?,
            exe_host: exe_host?,
            vmas: vmas?,
            brk_start: w[16],
            args: (w[8], w[9]),
            env: (w[10], w[11]),
            pid,
        })
    })
}

impl View {
    /// /proc/PID/maps: the lines of the VMA records (None: they do not parse).
    pub fn maps(&self) -> Option<Vec<u8>> {
        let v = crate::procfs::VmaInfo::decode(&self.vmas)?;
        Some(v.iter().flat_map(|i| i.line.bytes()).collect())
    }

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

    /// The argument and environment ranges (stat's arg_start..env_end).
    pub fn ranges(&self) -> ((u64, u64), (u64, u64)) {
        (self.args, self.env)
    }

    /// /proc/PID/cmdline.
    pub fn cmdline(&self) -> Vec<u8> {
        self.range(self.args)
    }

    /// /proc/PID/environ.
    pub fn environ(&self) -> Vec<u8> {
        self.range(self.env)
    }

    /// The process-wide words: SigIgn, SigCgt, ShdPnd, VmHWM (KiB).
    pub fn process_words(&self) -> Option<[u64; 4]> {
        let mut raw = [0u8; 32];
        let at = PAGE + W_IGN as u64 * 8;
        if crate::remote_mem::host_copy(self.pid, at, &mut raw, false).ok()? != raw.len() {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        Some([w(0), w(1), w(2), w(3)])
    }

    /// What thread `tid` last published (None: it has no slot).
    pub fn thread_words(&self, tid: i32) -> Option<ThreadWords> {
        thread_words_of(self.pid, tid)
    }

    /// The guest's soft and hard RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK, and its
    /// personality (None: not published).
    pub fn limits(&self) -> Option<([(u64, u64); 3], u32)> {
        let mut raw = [0u8; 8 * (W_PERS + 1 - W_LIMITS)];
        let at = PAGE + W_LIMITS as u64 * 8;
        if crate::remote_mem::host_copy(self.pid, at, &mut raw, false).ok()? != raw.len() {
            return None;
        }
        let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        if w(0) != 1 || w(W_PERS - W_LIMITS) >> 32 != 1 {
            return None;
        }
        Some((
            [(w(1), w(2)), (w(3), w(4)), (w(5), w(6))],
            w(W_PERS - W_LIMITS) as u32,
        ))
    }
}

/// The slots process `pid` publishes (the words of those taken so far) and its count of
/// threads being created.
fn remote_slots(pid: i32) -> Option<(Vec<u64>, u64)> {
    let mut head = [0u8; 16];
    if crate::remote_mem::host_copy(pid, PAGE + W_HIGH as u64 * 8, &mut head, false).ok()? != 16 {
        return None;
    }
    let high = u64::from_le_bytes(head[..8].try_into().ok()?).min(MAX_SLOTS as u64) as usize;
    let creating = u64::from_le_bytes(head[8..].try_into().ok()?);
    let mut raw = vec![0u8; high * SLOT_WORDS * 8];
    if !raw.is_empty()
        && crate::remote_mem::host_copy(pid, SLOTS_BASE, &mut raw, false).ok()? != raw.len()
    {
        return None;
    }
    let words = raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    Some((words, creating))
}

/// What thread `tid` of another cetbox process `pid` last published.
fn thread_words_of(pid: i32, tid: i32) -> Option<ThreadWords> {
    await_slot(|| {
        // The slots are copied at once, the slot's words with its sequence; the sequence
        // read again after them is in the next copy.
        let creating = std::cell::Cell::new(0);
        let head = || {
            let (w, c) = remote_slots(pid)?;
            creating.set(c);
            let i = (0..w.len() / SLOT_WORDS).find(|&i| w[i * SLOT_WORDS] == tid as u64)?;
            let s = &w[i * SLOT_WORDS..][..SLOT_WORDS];
            Some((s[1], ThreadWords::of(s)))
        };
        let found = seq_read(head, |facts| Some(*facts));
        if found.is_none() {
            remote_slots(pid).map(|(_, c)| creating.set(c))?;
        }
        Some((found, creating.get()))
    })
}

/// The wait word ([`Waiting`]) of thread `tid` of another cetbox process `pid`, for a reader
/// that shows the host's file of that thread (the process's view or the thread's facts could
/// not be read): the word when the thread has a slot; 0 when it has none yet but could take
/// one (a new thread or fork child that has not reached its first system call, so no waiting
/// call either); None when the process publishes nothing (it has exited, or is not cetbox) or
/// every slot is taken (the host's State stands).
pub fn wait_word(pid: i32, tid: i32) -> Option<u64> {
    read_words(pid)?;
    if let Some(f) = thread_words_of(pid, tid) {
        return Some(f.waiting);
    }
    let (w, _) = remote_slots(pid)?;
    let n = w.len() / SLOT_WORDS;
    (n < MAX_SLOTS || (0..n).any(|i| w[i * SLOT_WORDS] == 0)).then_some(0)
}

/// The descriptors in process `pid`'s private-descriptor table at `addr` (none when it cannot
/// be read).
fn private_table(pid: i32, addr: u64) -> Vec<i32> {
    let mut raw = [0u8; 4 * crate::private_fds::MAX_PRIVATE];
    if addr == 0 || crate::remote_mem::host_copy(pid, addr, &mut raw, false).ok() != Some(raw.len())
    {
        return Vec::new();
    }
    raw.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0xff; 4])))
        .filter(|&fd| fd >= 0)
        .collect()
}

/// The pid, the tid (the pid for /proc/PID/FILE) and the file a path names under another
/// process's /proc directory (/proc/PID/FILE or /proc/PID/task/TID/FILE), for the files
/// served from [`View`].
pub fn other_file<'a>(t: &Thread, path: &'a [u8]) -> Option<(i32, i32, &'a [u8])> {
    let p = crate::procfs::ProcPath::parse(path)?;
    let pid = p.pid?;
    // Our own process under another thread's id is not another guest: the host's view (as
    // before; Linux shows the process's files there).
    if pid == t.proc.pid || std::path::Path::new(&format!("/proc/self/task/{pid}")).exists() {
        return None;
    }
    let tid = match p.task {
        Some(_) => p.tid()?,
        None => pid,
    };
    let file = p.file()?;
    matches!(
        file,
        b"maps"
            | b"exe"
            | b"auxv"
            | b"cmdline"
            | b"environ"
            | b"status"
            | b"stat"
            | b"statm"
            | b"smaps"
            | b"smaps_rollup"
            | b"syscall"
            | b"wchan"
            | b"limits"
            | b"personality"
    )
    .then_some((pid, tid, file))
}

/// Whether `path` (a canonical /proc name) is a link in a descriptor directory,
/// /proc/PID/fd/N or /proc/PID/task/TID/fd/N, naming one of cetbox's private descriptors in
/// that process (this one or another guest): the guest sees no such descriptor.
pub fn names_private_fd(path: &[u8]) -> bool {
    let Some(p) = crate::procfs::ProcPath::parse(path) else {
        return false;
    };
    let fd = match p.rest.as_slice() {
        [b"fd", fd] => std::str::from_utf8(fd).ok().and_then(|s| s.parse().ok()),
        _ => None,
    };
    match (p.pid, fd) {
        (Some(pid), Some(fd)) => private_fds_of(pid).contains(&fd),
        _ => false,
    }
}

/// The private descriptors of process `pid`: this process's own, another guest's published
/// table, or none (a native process).
pub fn private_fds_of(pid: i32) -> Vec<i32> {
    // SAFETY: getpid has no preconditions.
    if pid == unsafe { libc::getpid() } {
        return crate::private_fds::private_fds();
    }
    // Only the header: the table's address does not change while the process runs.
    read_words(pid)
        .map(|w| private_table(pid, w[17]))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A sequence that stays odd or keeps moving gives nothing after a few reads; one that
    /// settles gives what was read under it.
    #[test]
    fn seq_read_retries_a_bounded_number_of_times() {
        let calls = Cell::new(0u64);
        let odd = || {
            calls.set(calls.get() + 1);
            Some((3u64, ()))
        };
        assert_eq!(seq_read(odd, |_| Some(1)), None::<i32>);
        assert_eq!(calls.get(), 8);
        let moving = || {
            calls.set(calls.get() + 2);
            Some((calls.get(), ()))
        };
        assert_eq!(seq_read(moving, |_| Some(1)), None::<i32>);
        // Moves once (between the first read and its check), then settles.
        let n = Cell::new(0u64);
        let settling = || {
            n.set(n.get() + 1);
            Some((if n.get() == 1 { 2 } else { 4 }, n.get()))
        };
        assert_eq!(seq_read(settling, |&h| Some(h)), Some(3));
        assert_eq!(seq_read(|| None::<(u64, ())>, |_| Some(1)), None);
    }
}
