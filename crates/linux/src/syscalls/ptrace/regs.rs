//! Register requests on a tracee in a published stop: they read and write its thread page
//! (`page.rs`), which it loads back when it resumes (Linux arch/x86/kernel/ptrace.c
//! arch_ptrace(), ptrace_regset() in kernel/ptrace.c, xfpregs_get()/xfpregs_set() in
//! arch/x86/kernel/fpu/regset.c).

use super::page::*;
use super::user::{self, DEBUGREG_OFF, NREGS, REGS_LEN, USER_LEN};
use crate::errno::{Errno, SysResult};
use crate::process::Thread;

const PTRACE_PEEKUSER: u64 = 3;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_GETREGS: u64 = 12;
const PTRACE_SETREGS: u64 = 13;
const PTRACE_GETFPREGS: u64 = 14;
const PTRACE_SETFPREGS: u64 = 15;
const PTRACE_SETOPTIONS: u64 = 0x4200;
const PTRACE_GETEVENTMSG: u64 = 0x4201;
const PTRACE_GETSIGINFO: u64 = 0x4202;
const PTRACE_SETSIGINFO: u64 = 0x4203;
const PTRACE_GETREGSET: u64 = 0x4204;
const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;
const NT_X86_XSTATE: u64 = 0x202;
/// The PTRACE_O_* bits Linux knows (include/uapi/linux/ptrace.h PTRACE_O_MASK).
const PTRACE_O_MASK: u64 = 0xff | 0x30_0000;
const PTRACE_O_EXITKILL: u64 = 0x10_0000;
/// arch/x86/include/asm/debugreg.h: DR6 bits that read as 1.
pub const DR6_RESERVED: u64 = 0xffff_0ff0;
const FX_LEN: usize = 512;

fn read_regs(pid: i32) -> Result<[u64; NREGS], Errno> {
    let mut b = [0u8; REGS_LEN];
    remote_read(pid, thread_of(pid)? + T_REGS, &mut b)?;
    Ok(user::from_bytes(&b))
}

fn write_regs(pid: i32, r: &[u64; NREGS]) -> Result<(), Errno> {
    remote_write(pid, thread_of(pid)? + T_REGS, &user::to_bytes(r))
}

/// xfpregs_set's check: no MXCSR bits beyond the feature mask (EINVAL).
fn set_fx(pid: i32, fx: &[u8]) -> Result<(), Errno> {
    let mxcsr = u32::from_le_bytes(fx[24..28].try_into().unwrap());
    if mxcsr & !cetbox_cpu::fpstate::MXCSR_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    remote_write(pid, thread_of(pid)? + T_FXSAVE, fx)
}

/// Stores the words of `new` (a prefix of user_regs_struct) one by one as genregs_set() does.
fn set_regs(pid: i32, new: &[u8]) -> Result<(), Errno> {
    let mut r = read_regs(pid)?;
    let words: Vec<u64> = new
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let res = user::put_all(&mut r, &words);
    write_regs(pid, &r)?;
    res
}

pub fn request(t: &mut Thread, req: u64, pid: i32, addr: u64, data: u64) -> SysResult {
    match req {
        PTRACE_GETREGS => {
            let mut b = [0u8; REGS_LEN];
            remote_read(pid, thread_of(pid)? + T_REGS, &mut b)?;
            t.mem().write_bytes(data, &b)?;
            Ok(0)
        }
        PTRACE_SETREGS => {
            let mut b = [0u8; REGS_LEN];
            t.mem().read_bytes(data, &mut b)?;
            set_regs(pid, &b)?;
            Ok(0)
        }
        PTRACE_GETFPREGS => {
            let mut b = [0u8; FX_LEN];
            remote_read(pid, thread_of(pid)? + T_FXSAVE, &mut b)?;
            t.mem().write_bytes(data, &b)?;
            Ok(0)
        }
        PTRACE_SETFPREGS => {
            let mut b = [0u8; FX_LEN];
            t.mem().read_bytes(data, &mut b)?;
            set_fx(pid, &b)?;
            Ok(0)
        }
        PTRACE_PEEKUSER => {
            let v = peek_user(pid, addr)?;
            t.mem().write_bytes(data, &v.to_le_bytes())?;
            Ok(0)
        }
        PTRACE_POKEUSER => poke_user(pid, addr, data).map(|()| 0),
        PTRACE_GETEVENTMSG => {
            let m = remote_get(pid, thread_of(pid)? + T_EVENTMSG)?;
            t.mem().write_bytes(data, &m.to_le_bytes())?;
            Ok(0)
        }
        PTRACE_GETSIGINFO => {
            let mut b = [0u8; 128];
            remote_read(pid, thread_of(pid)? + T_SIGINFO, &mut b)?;
            t.mem().write_bytes(data, &b)?;
            Ok(0)
        }
        PTRACE_SETSIGINFO => {
            let mut b = [0u8; 128];
            t.mem().read_bytes(data, &mut b)?;
            remote_write(pid, thread_of(pid)? + T_SIGINFO, &b)?;
            Ok(0)
        }
        PTRACE_SETOPTIONS => {
            if data & !PTRACE_O_MASK != 0 {
                return Err(Errno::EINVAL);
            }
            remote_set(pid, thread_of(pid)? + T_OPTIONS, data)?;
            // The host kills the tracee with its tracer as Linux would.
            // SAFETY: a request on our stopped host tracee, no pointers.
            let _ = unsafe {
                libc::syscall(
                    libc::SYS_ptrace,
                    PTRACE_SETOPTIONS,
                    pid,
                    0,
                    data & PTRACE_O_EXITKILL,
                )
            };
            Ok(0)
        }
        _ => regset(t, req, pid, addr, data),
    }
}

/// PTRACE_GETREGSET / SETREGSET of NT_PRSTATUS and NT_PRFPREG (ptrace_regset: the length must
/// be a multiple of the element size, 8, and is cut to the regset's size; the length used is
/// written back into the iovec).
fn regset(t: &mut Thread, req: u64, pid: i32, note: u64, iov_addr: u64) -> SysResult {
    if note == NT_X86_XSTATE {
        return xstate_regset(t, req, pid, iov_addr);
    }
    let size = match note {
        NT_PRSTATUS => REGS_LEN as u64,
        NT_PRFPREG => FX_LEN as u64,
        _ => return Err(Errno::EINVAL),
    };
    let (base, len) = super::regset_iovec(t, iov_addr)?;
    let len = len.min(size) as usize;
    let at = if note == NT_PRSTATUS {
        T_REGS
    } else {
        T_FXSAVE
    };
    if req == PTRACE_GETREGSET {
        let mut b = vec![0u8; len];
        remote_read(pid, thread_of(pid)? + at, &mut b)?;
        t.mem().write_bytes(base, &b)?;
    } else {
        let mut b = vec![0u8; len];
        t.mem().read_bytes(base, &mut b)?;
        if note == NT_PRSTATUS {
            set_regs(pid, &b)?;
        } else if len != FX_LEN {
            // xfpregs_set: "No funny business with partial or oversized writes".
            return Err(Errno::EINVAL);
        } else {
            set_fx(pid, &b)?;
        }
    }
    t.mem()
        .write_bytes(iov_addr + 8, &(len as u64).to_le_bytes())?;
    Ok(0)
}

/// ptrace_peekusr: the registers, the debug registers, zero elsewhere; EIO for an unaligned
/// offset or one past struct user.
fn peek_user(pid: i32, addr: u64) -> Result<u64, Errno> {
    if !addr.is_multiple_of(8) || addr >= USER_LEN {
        return Err(Errno::EIO);
    }
    if addr < REGS_LEN as u64 {
        return Ok(read_regs(pid)?[(addr / 8) as usize]);
    }
    if (DEBUGREG_OFF..=DEBUGREG_OFF + 7 * 8).contains(&addr) {
        let n = (addr - DEBUGREG_OFF) / 8;
        if n == 4 || n == 5 {
            return Ok(0);
        }
        return remote_get(pid, thread_of(pid)? + T_DEBUGREG + n * 8);
    }
    Ok(0)
}

/// ptrace_pokeusr: the registers with putreg()'s checks and the debug registers; EIO
/// elsewhere. cetbox has no hardware breakpoints: DR7 may only be written with every
/// breakpoint disabled (what debuggers write at attach), an enabling DR7 is EIO.
fn poke_user(pid: i32, addr: u64, data: u64) -> Result<(), Errno> {
    if !addr.is_multiple_of(8) || addr >= USER_LEN {
        return Err(Errno::EIO);
    }
    if addr < REGS_LEN as u64 {
        let mut r = read_regs(pid)?;
        user::put(&mut r, (addr / 8) as usize, data)?;
        return write_regs(pid, &r);
    }
    if (DEBUGREG_OFF..=DEBUGREG_OFF + 7 * 8).contains(&addr) {
        let n = (addr - DEBUGREG_OFF) / 8;
        match n {
            4 | 5 => return Err(Errno::EIO),
            7 if data & 0xff != 0 => return Err(Errno::EIO),
            _ => {}
        }
        return remote_set(pid, thread_of(pid)? + T_DEBUGREG + n * 8, data);
    }
    Err(Errno::EIO)
}

/// GETREGSET / SETREGSET of NT_X86_XSTATE (`xstate.rs`): the length cut to the regset's
/// size and written back, as for the other regsets.
fn xstate_regset(t: &mut Thread, req: u64, pid: i32, iov_addr: u64) -> SysResult {
    let th = thread_of(pid)?;
    let size = super::xstate::size(pid, th)?;
    let (base, len) = super::regset_iovec(t, iov_addr)?;
    let len = (len as usize).min(size);
    if req == PTRACE_GETREGSET {
        let b = super::xstate::get(pid, th)?;
        t.mem().write_bytes(base, &b[..len])?;
    } else {
        let mut b = vec![0u8; len];
        t.mem().read_bytes(base, &mut b)?;
        super::xstate::put(pid, th, &b)?;
    }
    t.mem()
        .write_bytes(iov_addr + 8, &(len as u64).to_le_bytes())?;
    Ok(0)
}
