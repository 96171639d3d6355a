//! The pages a traced cetbox process shares with its tracer's cetbox. A guest's registers live
//! inside its cetbox process, so the host's register requests would show cetbox's own: the
//! traced thread writes its guest state here when it stops at a guest instruction boundary and
//! reads it back when it resumes; the tracer's cetbox reads and writes the pages of the stopped
//! tracee with process_vm_readv/writev (the two processes share no memory: the tracee's pages
//! are private, and it is stopped while the tracer touches them).
//!
//! Layout: a header page at `BASE` (the magic and the process's shadow-stack state) and one
//! page per traced thread after it. PTRACE_TRACEME traces the calling thread only (Linux
//! kernel/ptrace.c, ptrace_traceme), so one thread page is used today; the header names its tid.

use crate::errno::Errno;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a traced cetbox process keeps the pages: below the guest mmap reservation.
pub const BASE: u64 = 0x5fff_ffff_0000;
/// The header page and one thread page.
pub const LEN: usize = 2 * 4096;
pub const MAGIC: u64 = 0x6365_7462_6f78_5254; // "cetboxRT"

// Header page.
pub const H_MAGIC: u64 = 0;
pub const H_SSP: u64 = 8;
pub const H_FEATURES: u64 = 16;
pub const H_LOCKED: u64 = 24;
/// The tid of the traced thread (the one that called PTRACE_TRACEME).
pub const H_TID: u64 = 32;
/// The guest's auxiliary vector (what its /proc/PID/auxv shows a tracer): its length in
/// bytes, and the bytes from H_AUXV on (up to the end of the header page).
pub const H_AUXV_LEN: u64 = 40;
pub const H_AUXV: u64 = 1024;
pub const AUXV_MAX: usize = 4096 - H_AUXV as usize;

/// The traced thread's page.
pub const THREAD: u64 = BASE + 4096;
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

pub const RUNNING: u64 = 0;
pub const STOPPED: u64 = 1;
pub const RESUME_CONT: u64 = 0;
pub const RESUME_SYSCALL: u64 = 1;
pub const RESUME_SINGLESTEP: u64 = 2;

/// Whether this process has the pages (set by PTRACE_TRACEME; a forked child inherits them).
static MAPPED: AtomicBool = AtomicBool::new(false);

/// Maps the pages (or finds them inherited through fork) and clears them.
pub fn map() -> Result<(), Errno> {
    // SAFETY: fresh anonymous pages at a fixed address outside guest memory;
    // MAP_FIXED_NOREPLACE never replaces anything.
    let p = unsafe {
        libc::mmap(
            BASE as *mut libc::c_void,
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p as u64 != BASE && !(p == libc::MAP_FAILED && Errno::last() == Errno::EEXIST) {
        return Err(Errno::ENOMEM);
    }
    if p == libc::MAP_FAILED && !MAPPED.load(Ordering::Acquire) {
        // Something else of ours lies there: not the pages.
        return Err(Errno::ENOMEM);
    }
    MAPPED.store(true, Ordering::Release);
    // SAFETY: the LEN bytes at BASE are the pages just mapped (or inherited), ours alone.
    unsafe { std::ptr::write_bytes(BASE as *mut u8, 0, LEN) };
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

/// Whether `tid` is the traced thread of a cetbox process with the pages.
pub fn is_traced_thread(tid: i32) -> bool {
    remote_get(tid, BASE + H_MAGIC) == Ok(MAGIC) && remote_get(tid, BASE + H_TID) == Ok(tid as u64)
}
