//! ptrace between guests. A guest's registers live inside its cetbox process, so the host's
//! register requests would show cetbox's own. While a process is traced (PTRACE_TRACEME), cetbox
//! keeps its shadow-stack state in a register page at a fixed host address, written before and
//! read back after every syscall (where signal stops happen); a tracing guest reads and writes
//! that page with process_vm_readv/writev for the NT_X86_SHSTK regset (Linux
//! arch/x86/kernel/fpu/regset.c, ssp_get() and ssp_set()).
//! Memory requests pass through to the host (guest memory is at the same address in the
//! tracee's cetbox process) once `remote_mem` found the word in the tracee's guest memory.
//! Other register requests answer EIO.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use crate::shstk::{SHSTK, TASK_SIZE_MAX};
use cetbox_mem::Access;
use std::sync::atomic::Ordering;

const PTRACE_TRACEME: u64 = 0;
const PTRACE_PEEKUSER: u64 = 3;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_GETREGS: u64 = 12;
const PTRACE_SETREGS: u64 = 13;
const PTRACE_GETFPREGS: u64 = 14;
const PTRACE_SETFPREGS: u64 = 15;
const PTRACE_ARCH_PRCTL: u64 = 30;
const PTRACE_GETREGSET: u64 = 0x4204;
const PTRACE_SETREGSET: u64 = 0x4205;
const NT_X86_SHSTK: u64 = 0x204;

/// Where a traced cetbox process keeps its register page: below the guest mmap reservation.
const REGS_PAGE: u64 = 0x5fff_ffff_0000;
const MAGIC: u64 = 0x6365_7462_6f78_5254; // "cetboxRT"

/// Layout of the page: [magic, ssp, shstk features, locked features].
const OFF_SSP: u64 = 8;
const OFF_FEATURES: u64 = 16;
const OFF_LOCKED: u64 = 24;

fn page() -> *mut u64 {
    REGS_PAGE as *mut u64
}

/// Publishes the thread's shadow-stack state for a tracer (called before each syscall while
/// traced).
pub fn publish(t: &Thread) {
    if !t.proc.traced.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: the page was mapped at REGS_PAGE by PTRACE_TRACEME and is never unmapped; it is
    // outside guest memory, so only cetbox and its tracer touch it.
    unsafe {
        page().write_volatile(MAGIC);
        page()
            .add((OFF_SSP / 8) as usize)
            .write_volatile(t.cpu.cet.ssp);
        page()
            .add((OFF_FEATURES / 8) as usize)
            .write_volatile(t.shstk.features);
        page()
            .add((OFF_LOCKED / 8) as usize)
            .write_volatile(t.shstk.locked);
    }
}

/// Takes back what a tracer changed while the thread was stopped (after each syscall).
pub fn reload(t: &mut Thread) {
    if !t.proc.traced.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: as in `publish`.
    let (ssp, locked) = unsafe {
        (
            page().add((OFF_SSP / 8) as usize).read_volatile(),
            page().add((OFF_LOCKED / 8) as usize).read_volatile(),
        )
    };
    t.shstk.locked = locked;
    if t.shstk.features & SHSTK != 0 {
        t.cpu.cet.ssp = ssp;
    }
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
            // SAFETY: a fresh anonymous page at a fixed address outside guest memory;
            // MAP_FIXED_NOREPLACE never replaces anything.
            let p = unsafe {
                libc::mmap(
                    REGS_PAGE as *mut libc::c_void,
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p as u64 != REGS_PAGE && !(p == libc::MAP_FAILED && Errno::last() == Errno::EEXIST) {
                return Err(Errno::ENOMEM);
            }
            t.proc.traced.store(true, Ordering::Relaxed);
            publish(t);
            Ok(0)
        }
        PTRACE_GETREGSET | PTRACE_SETREGSET if addr == NT_X86_SHSTK => {
            shstk_regset(t, req, pid, data)
        }
        PTRACE_ARCH_PRCTL => arch_prctl(t, pid, addr, data as u32),
        PTRACE_GETREGSET | PTRACE_SETREGSET | PTRACE_GETREGS | PTRACE_SETREGS
        | PTRACE_GETFPREGS | PTRACE_SETFPREGS | PTRACE_PEEKUSER | PTRACE_POKEUSER => {
            Err(Errno::EIO)
        }
        _ => {
            // PEEK requests return the word through `data` for the raw syscall.
            let mut a = a;
            if matches!(req, 1 | 2) {
                // Into a bounce buffer the guest receives when the call returns (usermem).
                a[3] = crate::syscalls::fs::buf(t, data, 8, Access::Write)?.addr();
            }
            if matches!(req, 1 | 2 | 4 | 5) {
                // Only where the tracee's guest page table allows (remote_mem).
                return crate::remote_mem::ptrace_word(pid, addr, || host_ptrace(a));
            }
            // Pointer arguments name the tracer's buffers: checked (ptrace_host).
            super::ptrace_host::passthrough(t, a, host_ptrace)
        }
    }
}

fn remote(pid: i32, off: u64, buf: &mut [u8; 8], write: bool) -> Result<(), Errno> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: (REGS_PAGE + off) as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: both iovecs describe 8 bytes: our buffer and the tracee's register page.
    let n = unsafe {
        if write {
            libc::process_vm_writev(pid, &local, 1, &remote, 1, 0)
        } else {
            libc::process_vm_readv(pid, &local, 1, &remote, 1, 0)
        }
    };
    if n == 8 {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// PTRACE_ARCH_PRCTL for the shadow-stack codes: the kernel's "not self" path (Linux
/// arch/x86/kernel/shstk.c, shstk_prctl() with task != current): STATUS writes into the tracer's
/// memory, LOCK and UNLOCK change the tracee's lock mask, ENABLE and DISABLE are refused. Other
/// arch_prctl codes are not available this way.
fn arch_prctl(t: &mut Thread, pid: i32, arg: u64, option: u32) -> SysResult {
    use crate::shstk::{ARCH_SHSTK_LOCK, ARCH_SHSTK_STATUS, ARCH_SHSTK_UNLOCK};
    let mut magic = [0u8; 8];
    remote(pid, 0, &mut magic, false)?;
    if u64::from_le_bytes(magic) != MAGIC {
        return Err(Errno::ESRCH);
    }
    match option {
        ARCH_SHSTK_STATUS => {
            let mut f = [0u8; 8];
            remote(pid, OFF_FEATURES, &mut f, false)?;
            t.mem().write_bytes(arg, &f).map_err(|_| Errno::EFAULT)?;
            Ok(0)
        }
        ARCH_SHSTK_LOCK | ARCH_SHSTK_UNLOCK => {
            let mut l = [0u8; 8];
            remote(pid, OFF_LOCKED, &mut l, false)?;
            let old = u64::from_le_bytes(l);
            let new = if option == ARCH_SHSTK_LOCK {
                old | arg
            } else {
                old & !arg
            };
            remote(pid, OFF_LOCKED, &mut new.to_le_bytes(), true)?;
            Ok(0)
        }
        0x5001 | 0x5002 => Err(Errno::EINVAL),
        _ => Err(Errno::EIO),
    }
}

/// NT_X86_SHSTK through the tracee's register page, with the kernel's checks (Linux
/// arch/x86/kernel/fpu/regset.c, ssp_get() and ssp_set()).
fn shstk_regset(t: &mut Thread, req: u64, pid: i32, iov_addr: u64) -> SysResult {
    let mut iov = [0u8; 16];
    t.mem().read_bytes(iov_addr, &mut iov)?;
    let base = u64::from_le_bytes(iov[0..8].try_into().unwrap());
    let len = u64::from_le_bytes(iov[8..16].try_into().unwrap());
    if len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let mut magic = [0u8; 8];
    remote(pid, 0, &mut magic, false)?;
    if u64::from_le_bytes(magic) != MAGIC {
        return Err(Errno::ESRCH);
    }
    let mut features = [0u8; 8];
    remote(pid, OFF_FEATURES, &mut features, false)?;
    if u64::from_le_bytes(features) & SHSTK == 0 {
        return Err(Errno::ENODEV);
    }
    if req == PTRACE_GETREGSET {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut ssp = [0u8; 8];
        remote(pid, OFF_SSP, &mut ssp, false)?;
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
    remote(pid, OFF_SSP, &mut v, true)?;
    Ok(0)
}
