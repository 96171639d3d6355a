//! The ptrace requests that reach the host, with their pointer arguments made safe: a request
//! names buffers in the tracer (the calling guest), which the host would otherwise read or
//! write unchecked in this cetbox process (its heap, code cache, contexts). Each pointer
//! becomes a checked guest buffer (`fs::buf`: the guest memory itself for reads, a bounce
//! buffer for writes); requests without pointers pass as they are; a request cetbox does not
//! know answers EIO, as Linux's `ptrace_request` does for an unknown one (kernel/ptrace.c).
//! Layouts: include/uapi/linux/ptrace.h, kernel/ptrace.c.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use cetbox_mem::Access;

const SIGINFO: u64 = 128;

/// Runs request `a` (ptrace's four arguments) through `host` with its pointers replaced.
pub(crate) fn passthrough(
    t: &mut Thread,
    a: [u64; 6],
    host: impl Fn([u64; 6]) -> SysResult,
) -> SysResult {
    let (req, addr, data) = (a[0], a[2], a[3]);
    let mut a = a;
    let buf = |t: &Thread, p: u64, len: u64, acc| super::fs::buf(t, p, len, acc).map(|h| h.addr());
    match req {
        // CONT, KILL, SINGLESTEP, ATTACH, DETACH, OLDSETOPTIONS, SYSCALL, SYSEMU,
        // SYSEMU_SINGLESTEP, SINGLEBLOCK, SETOPTIONS, SEIZE, INTERRUPT, LISTEN: integers only.
        7 | 8 | 9 | 16 | 17 | 21 | 24 | 31 | 32 | 33 | 0x4200 | 0x4206 | 0x4207 | 0x4208 => {}
        // GETEVENTMSG: an unsigned long out.
        0x4201 => a[3] = buf(t, data, 8, Access::Write)?,
        // GETSIGINFO / SETSIGINFO: a siginfo out / in.
        0x4202 => a[3] = buf(t, data, SIGINFO, Access::Write)?,
        0x4203 => a[3] = buf(t, data, SIGINFO, Access::Read)?,
        // PEEKSIGINFO: struct ptrace_peeksiginfo_args { u64 off; u32 flags; s32 nr; } in, nr
        // siginfos out.
        0x4209 => {
            let mut args = [0u8; 16];
            t.mem()
                .read_bytes(addr, &mut args)
                .map_err(|_| Errno::EFAULT)?;
            let nr = i32::from_le_bytes([args[12], args[13], args[14], args[15]]);
            a[2] = buf(t, addr, 16, Access::Read)?;
            if nr > 0 {
                a[3] = buf(t, data, nr as u64 * SIGINFO, Access::Write)?;
            }
        }
        // GETSIGMASK / SETSIGMASK: `addr` bytes (8 is the only size Linux accepts).
        0x420a if addr == 8 => a[3] = buf(t, data, 8, Access::Write)?,
        0x420b if addr == 8 => a[3] = buf(t, data, 8, Access::Read)?,
        0x420a | 0x420b => return Err(Errno::EINVAL),
        // SECCOMP_GET_FILTER: with a buffer, as many 8-byte sock_filter entries as the filter
        // has (asked first without one).
        0x420c => {
            if data != 0 {
                let n = host([req, a[1], addr, 0, 0, 0])?;
                a[3] = buf(t, data, n * 8, Access::Write)?;
            }
        }
        // SECCOMP_GET_METADATA (in and out), GET_SYSCALL_INFO, GET_RSEQ_CONFIGURATION,
        // GET_SYSCALL_USER_DISPATCH_CONFIG (out), SET_SYSCALL_USER_DISPATCH_CONFIG (in): `addr`
        // bytes at `data`, at most a page (larger sizes are EINVAL or clamped by Linux).
        0x420d | 0x420e | 0x420f | 0x4211 => {
            let n = addr.min(4096);
            a[2] = n;
            a[3] = buf(t, data, n, Access::Write)?;
        }
        0x4210 => {
            let n = addr.min(4096);
            a[2] = n;
            a[3] = buf(t, data, n, Access::Read)?;
        }
        // GET_THREAD_AREA / SET_THREAD_AREA: struct user_desc (16 bytes).
        25 => a[3] = buf(t, data, 16, Access::Write)?,
        26 => a[3] = buf(t, data, 16, Access::Read)?,
        _ => return Err(Errno::EIO),
    }
    host(a)
}
