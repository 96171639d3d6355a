//! The pages a traced cetbox process shares with its tracer's cetbox. A guest's registers live
//! inside its cetbox process, so the host's register requests would show cetbox's own: the
//! traced thread writes its guest state here when it stops at a guest instruction boundary and
//! reads it back when it resumes; the tracer's cetbox reads and writes the pages of the stopped
//! tracee with process_vm_readv/writev (the two processes share no memory: the tracee's pages
//! are private, and it is stopped while the tracer touches them).
//!
//! Layout: a header page at `BASE` (the magic, the guest's auxv and the slot table: the tid
//! of the traced thread each thread page belongs to, 0 for a free one) and `SLOTS` thread
//! pages after it. Linux traces threads one by one (kernel/ptrace.c ptrace_attach and
//! ptrace_traceme name a task, not a process), so each traced thread takes a page of its own
//! when it becomes traced and gives it back when it exits or its tracer detaches; the tracer's
//! cetbox finds a thread's page by its tid in the slot table.

use crate::errno::Errno;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where a traced cetbox process keeps the pages: below the guest mmap reservation and the
/// remote-memory header (`remote_mem::HEADER`).
pub const BASE: u64 = 0x5fff_ff00_0000;
/// How many threads of a process can be traced at once.
pub const SLOTS: usize = 120;
/// The header page and the thread pages.
pub const LEN: usize = (1 + SLOTS) * 4096;
pub const MAGIC: u64 = 0x6365_7462_6f78_5254; // "cetboxRT"

// Header page.
pub const H_MAGIC: u64 = 0;
/// The guest's auxiliary vector (what its /proc/PID/auxv shows a tracer): its length in
/// bytes, and the bytes from H_AUXV on (up to the end of the header page).
pub const H_AUXV_LEN: u64 = 40;
/// The slot table: SLOTS words, the tid owning each thread page (0: free).
pub const H_SLOTS: u64 = 64;
pub const H_AUXV: u64 = 1024;
pub const AUXV_MAX: usize = 4096 - H_AUXV as usize;
const _: () = assert!(H_SLOTS + SLOTS as u64 * 8 <= H_AUXV);

/// Offsets in a thread page.
/// STOPPED while the thread waits in a published stop, RUNNING otherwise.
pub const T_STATE: u64 = 0;
/// The wait status the tracer's wait4 reports for the stop.
pub const T_STATUS: u64 = 8;
/// Written by the tracer when it resumes the thread: the signal to deliver (0: none).
pub const T_RESUME_SIG: u64 = 16;
/// Written by the tracer: RESUME_CONT or RESUME_SYSCALL.
pub const T_RESUME_MODE: u64 = 24;
/// PTRACE_SETOPTIONS.
pub const T_OPTIONS: u64 = 32;
/// A signal the host cannot deliver through cetbox's handler (a stop signal), carried by
/// `CARRIER` instead: its number, then its siginfo (128 bytes).
pub const T_INJECT_SIG: u64 = 40;
pub const T_INJECT_INFO: u64 = 48;
/// The siginfo of the stop (PTRACE_GETSIGINFO / SETSIGINFO), 128 bytes.
pub const T_SIGINFO: u64 = 176;
/// The debug registers DR0-DR7 (8 words) as the tracer last set them.
pub const T_DEBUGREG: u64 = 304;
/// struct user_regs_struct (216 bytes).
pub const T_REGS: u64 = 384;
/// The FXSAVE area (struct user_i387_struct, 512 bytes).
pub const T_FXSAVE: u64 = 640;
/// PTRACE_GETEVENTMSG's message for the last event stop.
pub const T_EVENTMSG: u64 = 1160;
/// The thread's shadow-stack state (NT_X86_SHSTK, PTRACE_ARCH_PRCTL): SSP, the enabled
/// features, the locked features.
pub const T_SSP: u64 = 1168;
pub const T_FEATURES: u64 = 1176;
pub const T_LOCKED: u64 = 1184;
/// What the thread last published of SSP and the locked features, so that it takes back only
/// what a tracer changed (the syscall in between may change them itself: rt_sigreturn,
/// arch_prctl). Not the tracer's to write.
pub const T_PUB_SSP: u64 = 1192;
pub const T_PUB_LOCKED: u64 = 1200;
/// The XCR0 of the thread's CPU (NT_X86_XSTATE's components).
pub const T_XCR0: u64 = 1208;
/// The XSAVE area beyond its legacy part (which is T_FXSAVE), at its standard-format offsets
/// from here: the header's XSTATE_BV at +512, the AVX state at +576 (`xstate.rs`).
pub const T_XSAVE: u64 = 2048;
const _: () = assert!(T_XSAVE as usize + super::xstate::LEN <= 4096);

pub const RUNNING: u64 = 0;
pub const STOPPED: u64 = 1;
pub const RESUME_CONT: u64 = 0;
pub const RESUME_SYSCALL: u64 = 1;
pub const RESUME_SINGLESTEP: u64 = 2;

/// Whether this process has the pages (set by PTRACE_TRACEME; a forked child inherits them).
static MAPPED: AtomicBool = AtomicBool::new(false);

/// No thread page.
const NO_SLOT: usize = usize::MAX;

thread_local! {
    /// The slot this host thread (one guest thread) took when it became traced. Read by the
    /// host signal handler too: a const-initialized Cell needs no lazy initialization there.
    static SLOT: Cell<usize> = const { Cell::new(NO_SLOT) };
}

/// The slot table word of slot `i`.
fn slot_word(i: usize) -> &'static AtomicU64 {
    debug_assert!(mapped() && i < SLOTS);
    // SAFETY: the header page is mapped (callers check `mapped`) and never unmapped; the
    // word is 8-aligned. Only this process's threads change it atomically; a tracer's
    // detach writes it while the owner is stopped.
    unsafe { &*((BASE + H_SLOTS + i as u64 * 8) as *const AtomicU64) }
}

/// The host address of slot `i`'s thread page.
pub fn page_of(i: usize) -> u64 {
    BASE + 4096 * (1 + i as u64)
}

/// Takes a free thread page for `tid` (cleared), or finds the one it has. None if all are
/// taken.
pub fn take_slot(tid: i32) -> Option<u64> {
    let tid = tid as u64;
    let i = (0..SLOTS)
        .find(|&i| slot_word(i).load(Ordering::Acquire) == tid)
        .or_else(|| {
            (0..SLOTS).find(|&i| {
                slot_word(i)
                    .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            })
        })?;
    // SAFETY: the thread page of a slot we own lies in the mapped pages.
    unsafe { std::ptr::write_bytes(page_of(i) as *mut u8, 0, 4096) };
    SLOT.with(|s| s.set(i));
    Some(page_of(i))
}

/// Gives the calling thread's page back (thread exit).
pub fn release_slot(tid: i32) {
    let i = SLOT.with(|s| s.replace(NO_SLOT));
    if i != NO_SLOT && mapped() {
        let _ = slot_word(i).compare_exchange(tid as u64, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The calling thread's page while it is traced (its slot still names it: a tracer's detach
/// frees it). Async-signal-safe.
pub fn mine(tid: i32) -> Option<u64> {
    if !mapped() {
        return None;
    }
    let i = SLOT.try_with(|s| s.get()).unwrap_or(NO_SLOT);
    if i == NO_SLOT || slot_word(i).load(Ordering::Acquire) != tid as u64 {
        return None;
    }
    Some(page_of(i))
}

/// In a forked child: PTRACE_TRACEME and PTRACE_ATTACH do not extend to children: every slot
/// is freed.
pub fn clear_slots() {
    if mapped() {
        for i in 0..SLOTS {
            slot_word(i).store(0, Ordering::Release);
        }
    }
    let _ = SLOT.try_with(|s| s.set(NO_SLOT));
}

/// Maps the pages, cleared, unless this process has them already (mapped by another of its
/// threads, or inherited through fork). Several threads may become traced at once: a lock
/// makes one of them map.
pub fn map() -> Result<(), Errno> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if MAPPED.load(Ordering::Acquire) {
        return Ok(());
    }
    // Something else lying there is not the pages.
    crate::fixed_map::map_fresh(BASE, LEN).map_err(|_| Errno::ENOMEM)?;
    MAPPED.store(true, Ordering::Release);
    Ok(())
}

pub fn mapped() -> bool {
    MAPPED.load(Ordering::Acquire)
}

/// Reads a word of this process's pages. Callers check `mapped` first.
pub fn get(addr: u64) -> u64 {
    debug_assert!(mapped() && addr >= BASE && addr + 8 <= BASE + LEN as u64);
    // SAFETY: the address lies in the mapped pages (callers check `mapped`), 8-aligned; they
    // are never unmapped. Volatile: the tracer's process writes them while we are stopped.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Writes a word of this process's pages.
pub fn set(addr: u64, v: u64) {
    debug_assert!(mapped() && addr >= BASE && addr + 8 <= BASE + LEN as u64);
    // SAFETY: as in `get`.
    unsafe { (addr as *mut u64).write_volatile(v) }
}

/// Copies bytes out of this process's pages.
pub fn get_bytes(addr: u64, out: &mut [u8]) {
    debug_assert!(mapped() && addr >= BASE && addr + out.len() as u64 <= BASE + LEN as u64);
    // SAFETY: as in `get`; the range lies in the pages.
    unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), out.len()) }
}

/// Copies bytes into this process's pages.
pub fn set_bytes(addr: u64, data: &[u8]) {
    debug_assert!(mapped() && addr >= BASE && addr + data.len() as u64 <= BASE + LEN as u64);
    // SAFETY: as in `get_bytes`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) }
}

/// Reads or writes the pages of process `pid` (the tracer's side): all of `buf`, or ESRCH.
fn remote_io(pid: i32, addr: u64, buf: &mut [u8], write: bool) -> Result<(), Errno> {
    match crate::remote_mem::host_copy(pid, addr, buf, write) {
        Ok(n) if n == buf.len() => Ok(()),
        _ => Err(Errno::ESRCH),
    }
}

pub fn remote_read(pid: i32, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    remote_io(pid, addr, buf, false)
}

pub fn remote_write(pid: i32, addr: u64, data: &[u8]) -> Result<(), Errno> {
    let mut b = data.to_vec();
    remote_io(pid, addr, &mut b, true)
}

pub fn remote_get(pid: i32, addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    remote_read(pid, addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

pub fn remote_set(pid: i32, addr: u64, v: u64) -> Result<(), Errno> {
    remote_write(pid, addr, &v.to_le_bytes())
}

/// The host address of traced thread `tid`'s page in its cetbox process (the tracer's side),
/// ESRCH if `tid` is not a traced thread of a cetbox process with the pages.
pub fn thread_of(tid: i32) -> Result<u64, Errno> {
    if tid <= 0 || remote_get(tid, BASE + H_MAGIC)? != MAGIC {
        return Err(Errno::ESRCH);
    }
    let mut table = [0u8; SLOTS * 8];
    remote_read(tid, BASE + H_SLOTS, &mut table)?;
    table
        .chunks_exact(8)
        .position(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) == tid as u64)
        .map(page_of)
        .ok_or(Errno::ESRCH)
}

/// Whether `tid` is a traced thread of a cetbox process with the pages.
pub fn is_traced_thread(tid: i32) -> bool {
    thread_of(tid).is_ok()
}

/// Frees traced thread `tid`'s slot (PTRACE_DETACH, the tracer's side; the thread is stopped).
pub fn remote_release(tid: i32) -> Result<(), Errno> {
    let page = thread_of(tid)?;
    let i = ((page - BASE) / 4096 - 1) as usize;
    remote_set(tid, BASE + H_SLOTS + i as u64 * 8, 0)
}
