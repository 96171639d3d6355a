//! ptrace between guests. A guest's registers live inside its cetbox process, so the host's
//! register requests would show cetbox's own. Each traced thread keeps its guest state in a
//! page of its own at a fixed host address (`page.rs`, found by tid in a slot table): its
//! shadow-stack state, written before and read back after every syscall (for NT_X86_SHSTK and
//! PTRACE_ARCH_PRCTL, Linux arch/x86/kernel/fpu/regset.c ssp_get()/ssp_set()), and, at each
//! ptrace-stop, which it takes itself at a guest instruction boundary (`stop.rs`), its
//! user_regs_struct, FXSAVE area and stop siginfo. The tracer's cetbox reads and writes those
//! with process_vm_readv/writev for the register requests, and its wait4 shows the guest the
//! tracee's stops (`wait.rs`), attaching to the threads and children the tracee's
//! PTRACE_O_TRACECLONE/FORK/VFORK events announce. Memory requests pass through to the host
//! (guest memory is at the same address in the tracee's cetbox process) once `remote_mem`
//! found the word in the tracee's guest memory.

mod page;
mod regs;
pub mod stop;
mod user;
pub mod wait;
mod xstate;

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use crate::shstk::{SHSTK, TASK_SIZE_MAX};
use cetbox_mem::Access;
use page::{BASE, H_MAGIC, MAGIC, T_FEATURES, T_LOCKED, T_PUB_LOCKED, T_PUB_SSP, T_SSP};
use std::sync::atomic::Ordering;

const PTRACE_TRACEME: u64 = 0;
const PTRACE_PEEKTEXT: u64 = 1;
const PTRACE_PEEKDATA: u64 = 2;
const PTRACE_PEEKUSER: u64 = 3;
const PTRACE_POKETEXT: u64 = 4;
const PTRACE_POKEDATA: u64 = 5;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_CONT: u64 = 7;
const PTRACE_SINGLESTEP: u64 = 9;
const PTRACE_GETREGS: u64 = 12;
const PTRACE_SETREGS: u64 = 13;
const PTRACE_GETFPREGS: u64 = 14;
const PTRACE_SETFPREGS: u64 = 15;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_DETACH: u64 = 17;
const PTRACE_SYSCALL: u64 = 24;
const PTRACE_ARCH_PRCTL: u64 = 30;
const PTRACE_SETOPTIONS: u64 = 0x4200;
const PTRACE_GETEVENTMSG: u64 = 0x4201;
const PTRACE_GETSIGINFO: u64 = 0x4202;
const PTRACE_SETSIGINFO: u64 = 0x4203;
const PTRACE_GETREGSET: u64 = 0x4204;
const PTRACE_SETREGSET: u64 = 0x4205;
const NT_X86_SHSTK: u64 = 0x204;

/// Publishes the thread's shadow-stack state for a tracer (called before each syscall while
/// traced, and at each stop).
pub fn publish(t: &Thread) {
    if !t.proc.traced.load(Ordering::Relaxed) {
        return;
    }
    let Some(me) = page::mine(t.tid) else { return };
    page::set(me + T_SSP, t.cpu.cet.ssp);
    page::set(me + T_FEATURES, t.shstk.features);
    page::set(me + T_LOCKED, t.shstk.locked);
    page::set(me + T_PUB_SSP, t.cpu.cet.ssp);
    page::set(me + T_PUB_LOCKED, t.shstk.locked);
}

/// Takes back what a tracer changed while the thread was stopped (after each syscall and
/// each stop).
pub fn reload(t: &mut Thread) {
    if !t.proc.traced.load(Ordering::Relaxed) {
        return;
    }
    if let Some(me) = page::mine(t.tid) {
        reload_from(t, me);
    }
}

/// `reload` from thread page `me`, which a stop uses even when its tracer detached during it
/// (the page is no longer the thread's, but holds what the tracer last wrote).
pub(crate) fn reload_from(t: &mut Thread, me: u64) {
    let (ssp, locked) = (page::get(me + T_SSP), page::get(me + T_LOCKED));
    if locked != page::get(me + T_PUB_LOCKED) {
        t.shstk.locked = locked;
    }
    if ssp != page::get(me + T_PUB_SSP) && t.shstk.features & SHSTK != 0 {
        t.cpu.cet.ssp = ssp;
    }
}

/// Makes `t` a traced thread of its process: the pages mapped (cleared when they were not
/// there yet), a thread page of its own, `options` its PTRACE_SETOPTIONS (inherited by an
/// auto-attached clone, ptrace_init_task).
pub(crate) fn become_traced(t: &mut Thread, options: u64) -> Result<(), Errno> {
    page::map()?;
    let me = page::take_slot(t.tid).ok_or(Errno::EPERM)?;
    // DR6 as Linux shows it for a thread that never trapped (ptrace_get_debugreg:
    // virtual_dr6 ^ DR6_RESERVED).
    page::set(me + page::T_DEBUGREG + 6 * 8, regs::DR6_RESERVED);
    page::set(me + page::T_OPTIONS, options);
    page::set(BASE + H_MAGIC, MAGIC);
    t.proc.traced.store(true, Ordering::Relaxed);
    publish(t);
    publish_auxv(t);
    Ok(())
}

/// Publishes the guest's auxv for the tracer's /proc/PID/auxv (at attach and after exec).
pub(crate) fn publish_auxv(t: &Thread) {
    let bytes: Vec<u8> = t
        .proc
        .image()
        .auxv
        .iter()
        .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .take(page::AUXV_MAX)
        .collect();
    page::set_bytes(BASE + page::H_AUXV, &bytes);
    page::set(BASE + page::H_AUXV_LEN, bytes.len() as u64);
}

/// The auxv a traced guest `pid` published, for its tracer's /proc/PID/auxv (the host's file
/// would show its cetbox's).
pub fn traced_auxv(pid: i32) -> Option<Vec<u8>> {
    if page::remote_get(pid, BASE + H_MAGIC).ok()? != MAGIC {
        return None;
    }
    let len = page::remote_get(pid, BASE + page::H_AUXV_LEN).ok()? as usize;
    if len == 0 || len > page::AUXV_MAX {
        return None;
    }
    let mut b = vec![0u8; len];
    page::remote_read(pid, BASE + page::H_AUXV, &mut b).ok()?;
    Some(b)
}

/// In a forked child: PTRACE_TRACEME does not extend to children (the pages it inherited
/// name its parent's traced thread).
pub fn after_fork() {
    page::clear_slots();
}

/// At the exit of a guest thread: its thread page is free again.
pub fn thread_exit(t: &Thread) {
    page::release_slot(t.tid);
}

fn host_ptrace(a: [u64; 6]) -> SysResult {
    // SAFETY: memory requests name guest addresses in the tracee (or the tracer's checked
    // buffers); the host kernel validates everything else.
    Errno::check(unsafe { libc::syscall(libc::SYS_ptrace, a[0], a[1], a[2], a[3]) })
}

pub(crate) fn sys_ptrace(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (req, pid, addr, data) = (a[0], a[1] as i32, a[2], a[3]);
    match req {
        PTRACE_TRACEME => {
            host_ptrace(a)?;
            become_traced(t, 0)?;
            Ok(0)
        }
        PTRACE_ATTACH => {
            host_ptrace(a)?;
            wait::attaching(pid, false);
            Ok(0)
        }
        PTRACE_GETREGSET | PTRACE_SETREGSET if addr == NT_X86_SHSTK => {
            shstk_regset(t, req, pid, data)
        }
        PTRACE_ARCH_PRCTL => arch_prctl(t, pid, addr, data as u32),
        PTRACE_CONT | PTRACE_SYSCALL | PTRACE_SINGLESTEP | PTRACE_DETACH
            if page::is_traced_thread(pid) =>
        {
            let mode = match req {
                PTRACE_SYSCALL => page::RESUME_SYSCALL,
                PTRACE_SINGLESTEP => page::RESUME_SINGLESTEP,
                _ => page::RESUME_CONT,
            };
            wait::resume(pid, mode, data, req == PTRACE_DETACH)
        }
        PTRACE_GETREGS | PTRACE_SETREGS | PTRACE_GETFPREGS | PTRACE_SETFPREGS | PTRACE_PEEKUSER
        | PTRACE_POKEUSER | PTRACE_GETREGSET | PTRACE_SETREGSET | PTRACE_GETSIGINFO
        | PTRACE_SETSIGINFO | PTRACE_SETOPTIONS | PTRACE_GETEVENTMSG
            if page::is_traced_thread(pid) =>
        {
            wait::check_stopped(pid)?;
            regs::request(t, req, pid, addr, data)
        }
        // Not a stopped tracee of ours (ptrace_check_attach).
        PTRACE_GETREGSET | PTRACE_SETREGSET | PTRACE_GETREGS | PTRACE_SETREGS
        | PTRACE_GETFPREGS | PTRACE_SETFPREGS | PTRACE_PEEKUSER | PTRACE_POKEUSER => {
            Err(Errno::ESRCH)
        }
        _ => memory_request(t, a),
    }
}

/// Requests passed to the host: memory peeks and pokes (guest memory is at the same address
/// in the tracee's cetbox process, reached only where the tracee's guest page table allows:
/// `remote_mem`) and the rest, whose pointers name the tracer's buffers (`ptrace_host`).
fn memory_request(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (req, pid, addr, data) = (a[0], a[1] as i32, a[2], a[3]);
    let mut a = a;
    match req {
        PTRACE_PEEKTEXT | PTRACE_PEEKDATA | PTRACE_POKETEXT | PTRACE_POKEDATA => {
            if matches!(req, PTRACE_PEEKTEXT | PTRACE_PEEKDATA) {
                // PEEK requests return the word through `data` for the raw syscall: into a
                // bounce buffer the guest receives when the call returns (usermem).
                a[3] = crate::syscalls::fs::buf(t, data, 8, Access::Write)?.addr();
            }
            let poke = matches!(req, PTRACE_POKETEXT | PTRACE_POKEDATA).then_some(data);
            crate::remote_mem::ptrace_word(pid, addr, poke, || host_ptrace(a))
        }
        _ => super::ptrace_host::passthrough(t, a, host_ptrace),
    }
}

/// A word of traced thread `pid`'s page (ESRCH if it is not one).
fn remote(pid: i32, off: u64, buf: &mut [u8; 8], write: bool) -> Result<(), Errno> {
    let at = page::thread_of(pid)? + off;
    if write {
        page::remote_write(pid, at, buf)
    } else {
        page::remote_read(pid, at, buf)
    }
}

/// PTRACE_ARCH_PRCTL for the shadow-stack codes: the kernel's "not self" path (Linux
/// arch/x86/kernel/shstk.c, shstk_prctl() with task != current): STATUS writes into the tracer's
/// memory, LOCK and UNLOCK change the tracee's lock mask, ENABLE and DISABLE are refused. Other
/// arch_prctl codes are not available this way.
fn arch_prctl(t: &mut Thread, pid: i32, arg: u64, option: u32) -> SysResult {
    use crate::shstk::{ARCH_SHSTK_LOCK, ARCH_SHSTK_STATUS, ARCH_SHSTK_UNLOCK};
    match option {
        ARCH_SHSTK_STATUS => {
            let mut f = [0u8; 8];
            remote(pid, T_FEATURES, &mut f, false)?;
            t.mem().write_bytes(arg, &f).map_err(|_| Errno::EFAULT)?;
            Ok(0)
        }
        ARCH_SHSTK_LOCK | ARCH_SHSTK_UNLOCK => {
            let mut l = [0u8; 8];
            remote(pid, T_LOCKED, &mut l, false)?;
            let old = u64::from_le_bytes(l);
            let new = if option == ARCH_SHSTK_LOCK {
                old | arg
            } else {
                old & !arg
            };
            remote(pid, T_LOCKED, &mut new.to_le_bytes(), true)?;
            Ok(0)
        }
        0x5001 | 0x5002 => Err(Errno::EINVAL),
        _ => Err(Errno::EIO),
    }
}

/// The struct iovec of a GETREGSET/SETREGSET request: its base and length, a whole number
/// of the regset's 8-byte units (kernel/ptrace.c ptrace_regset: EINVAL otherwise).
fn regset_iovec(t: &Thread, iov_addr: u64) -> Result<(u64, u64), Errno> {
    let mut iov = [0u8; 16];
    t.mem().read_bytes(iov_addr, &mut iov)?;
    let word = |i: usize| u64::from_le_bytes(iov[i..i + 8].try_into().unwrap_or([0; 8]));
    let (base, len) = (word(0), word(8));
    if len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((base, len))
}

/// NT_X86_SHSTK through the tracee's register page, with the kernel's checks (Linux
/// arch/x86/kernel/fpu/regset.c, ssp_get() and ssp_set()).
fn shstk_regset(t: &mut Thread, req: u64, pid: i32, iov_addr: u64) -> SysResult {
    let (base, len) = regset_iovec(t, iov_addr)?;
    let mut features = [0u8; 8];
    remote(pid, T_FEATURES, &mut features, false)?;
    if u64::from_le_bytes(features) & SHSTK == 0 {
        return Err(Errno::ENODEV);
    }
    if req == PTRACE_GETREGSET {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut ssp = [0u8; 8];
        remote(pid, T_SSP, &mut ssp, false)?;
        t.mem().write_bytes(base, &ssp)?;
        t.mem().write_bytes(iov_addr + 8, &8u64.to_le_bytes())?;
        return Ok(0);
    }
    if len != 8 {
        return Err(Errno::EINVAL);
    }
    let mut v = [0u8; 8];
    t.mem().read_bytes(base, &mut v)?;
    let ssp = u64::from_le_bytes(v);
    if ssp >= TASK_SIZE_MAX || ssp % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    remote(pid, T_SSP, &mut v, true)?;
    Ok(0)
}
