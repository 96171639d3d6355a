//! Process and thread identity and lifetime: exit, ids, tid address, robust lists, prctl,
//! process groups and sessions, wait, futex.

#![allow(non_upper_case_globals)]

use super::fs::{buf, host, opt_buf};
use super::futex_waiters;
use super::requeue_pi;
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::{ExitRequest, Thread};
use crate::signals;
use crate::waitcall::{host_wait, Waiter};
use cetbox_mem::Access;
use libc::*;

pub(crate) fn sys_exit(t: &mut Thread, a: [u64; 6]) -> SysResult {
    t.exit = Some(ExitRequest::Thread(a[0] as i32 & 0xff));
    Ok(0)
}

pub(crate) fn sys_exit_group(t: &mut Thread, a: [u64; 6]) -> SysResult {
    t.exit = Some(ExitRequest::Group(a[0] as i32 & 0xff));
    Ok(0)
}

pub(crate) fn sys_getpid(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    Ok(t.proc.pid as u64)
}

pub(crate) fn sys_gettid(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    Ok(t.tid as u64)
}

pub(crate) fn sys_getppid(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    host!(SYS_getppid)
}

/// Not passed to the host: the host thread's own clear_child_tid belongs to cetbox's runtime.
pub(crate) fn sys_set_tid_address(t: &mut Thread, a: [u64; 6]) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

/// sizeof(struct robust_list_head).
const ROBUST_HEAD: u64 = 24;

/// Kept for the guest (the threads code walks it at thread exit and when the process ends) and
/// given to the host thread too: guest memory is host memory at the same addresses, so the
/// host kernel walks it when the thread dies in a way cetbox cannot see, such as SIGKILL
/// (Linux does it in every exit: kernel/futex/core.c, exit_robust_list). cetbox's own runtime
/// keeps no robust mutexes, so it loses nothing by the replacement; a list cetbox already
/// walked holds no futex with the dead thread's tid, so the host's walk finds nothing more.
pub(crate) fn sys_set_robust_list(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[1] != ROBUST_HEAD {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a[0], a[1]);
    crate::thread_group::note_robust(t);
    set_host_robust_list(a[0]);
    Ok(0)
}

/// Registers `head` as the host thread's robust list (0: none).
pub fn set_host_robust_list(head: u64) {
    // SAFETY: set_robust_list only records the pointer, which is why it cannot be a HostPtr
    // (it outlives the call); the kernel reads it with get_user at thread exit, which fails
    // harmlessly if the memory is gone. The answer is ignored: the guest's own list is kept
    // by cetbox either way.
    let _ = unsafe { crate::hostcall::raw(SYS_set_robust_list, [head, ROBUST_HEAD, 0, 0, 0, 0]) };
}

pub(crate) fn sys_get_robust_list(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let (head, len) = if pid == 0 || pid == t.tid {
        t.robust_list
    } else {
        // Another thread of this process; threads of other processes are not visible
        // (Linux would need ptrace access, which cetbox does not grant).
        crate::thread_group::robust_list_of(t, pid).ok_or(Errno::ESRCH)?
    };
    let len = if head == 0 && len == 0 {
        ROBUST_HEAD
    } else {
        len
    };
    buf(t, a[1], 8, Access::Write)?;
    buf(t, a[2], 8, Access::Write)?;
    t.mem().write_u64(a[2], len)?;
    t.mem().write_u64(a[1], head)?;
    Ok(0)
}

// ---------------------------------------------------------------- prctl

/// The thread's name as /proc/self/comm and PR_GET_NAME show it (NUL padded, at most 15
/// bytes).
pub fn comm(t: &Thread) -> [u8; 16] {
    if let Some(n) = t.proc.thread_names().get(&t.tid) {
        return *n;
    }
    let exe = t.proc.image().exe.clone();
    let base = exe.rsplit('/').next().unwrap_or("").as_bytes();
    let mut out = [0u8; 16];
    let n = base.len().min(15);
    out[..n].copy_from_slice(&base[..n]);
    out
}

/// A new thread starts with its creator's name (the host thread gets it too).
pub fn inherit_comm(t: &Thread, name: [u8; 16]) {
    set_comm(t, name);
    // SAFETY: `name` is a NUL-terminated 16-byte buffer owned here.
    unsafe { libc::prctl(PR_SET_NAME, name.as_ptr()) };
}

/// Drops an exited thread's name, so a later thread with the same tid does not inherit it.
pub fn forget_comm(t: &Thread) {
    t.proc.thread_names().remove(&t.tid);
}

/// execve names the thread after the new program's file (the executable's base name).
pub fn comm_reset(t: &Thread, exe: &str) {
    t.proc.thread_names().remove(&t.tid);
    let base = exe.rsplit('/').next().unwrap_or("").as_bytes();
    let mut name = [0u8; 16];
    let n = base.len().min(15);
    name[..n].copy_from_slice(&base[..n]);
    // SAFETY: `name` is a NUL-terminated 16-byte buffer owned here.
    unsafe { libc::prctl(PR_SET_NAME, name.as_ptr()) };
}

fn set_comm(t: &Thread, name: [u8; 16]) {
    t.proc.thread_names().insert(t.tid, name);
}

const PR_SET_VMA: i32 = 0x5356_4d41;
const PR_GET_AUXV: i32 = 0x4155_5856;

pub(crate) fn sys_prctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let option = a[0] as u32 as i32;
    if let Some(r) = crate::shstk::prctl(t, option as u64, a) {
        return r;
    }
    let int_out = |t: &Thread, addr: u64, nr_opt: i32| -> SysResult {
        let p = buf(t, addr, 4, Access::Write)?;
        host!(SYS_prctl, nr_opt as u64, p)
    };
    match option {
        PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            host!(SYS_prctl, option as u64, a[1])
        }
        PR_GET_PDEATHSIG => int_out(t, a[1], option),
        PR_GET_CHILD_SUBREAPER => int_out(t, a[1], option),
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            let s = t
                .mem()
                .read_cstr(a[1], 16)
                .map_err(|_| Errno::EFAULT)?
                .unwrap_or_else(|| {
                    // No NUL in 16 bytes: Linux keeps the first 15.
                    let mut v = vec![0u8; 15];
                    let _ = t.mem().read_bytes(a[1], &mut v);
                    v
                });
            let n = s.len().min(15);
            name[..n].copy_from_slice(&s[..n]);
            set_comm(t, name);
            // The host thread carries the same name, so host tools show it as they would.
            // SAFETY: `name` is a NUL-terminated 16-byte buffer owned here.
            unsafe { libc::prctl(PR_SET_NAME, name.as_ptr()) };
            Ok(0)
        }
        PR_GET_NAME => {
            t.mem().write_bytes(a[1], &comm(t))?;
            Ok(0)
        }
        PR_GET_TID_ADDRESS => {
            t.mem().write_u64(a[1], t.clear_child_tid)?;
            Ok(0)
        }
        PR_GET_AUXV => {
            let auxv = t.proc.image().auxv.clone();
            let mut bytes = Vec::with_capacity(auxv.len() * 16 + 16);
            for (k, v) in auxv
                .iter()
                .filter(|e| e.0 != 0)
                .chain(std::iter::once(&(0, 0)))
            {
                bytes.extend_from_slice(&k.to_le_bytes());
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            if a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            let n = (a[2] as usize).min(bytes.len());
            t.mem().write_bytes(a[1], &bytes[..n])?;
            Ok(bytes.len() as u64)
        }
        // (57, 58: PR_SET_IO_FLUSHER, PR_GET_IO_FLUSHER.)
        // Integer-only options that concern the host process exactly as they would concern the
        // guest's.
        PR_GET_DUMPABLE
        | PR_SET_DUMPABLE
        | PR_GET_KEEPCAPS
        | PR_SET_KEEPCAPS
        | PR_GET_TIMING
        | PR_SET_TIMING
        | PR_CAPBSET_READ
        | PR_CAPBSET_DROP
        | PR_GET_SECUREBITS
        | PR_SET_SECUREBITS
        | PR_SET_TIMERSLACK
        | PR_GET_TIMERSLACK
        | PR_TASK_PERF_EVENTS_DISABLE
        | PR_TASK_PERF_EVENTS_ENABLE
        | PR_MCE_KILL
        | PR_MCE_KILL_GET
        | PR_SET_CHILD_SUBREAPER
        | PR_SET_NO_NEW_PRIVS
        | PR_GET_NO_NEW_PRIVS
        | PR_SET_THP_DISABLE
        | PR_GET_THP_DISABLE
        | PR_CAP_AMBIENT
        | PR_GET_SPECULATION_CTRL
        | PR_SET_SPECULATION_CTRL
        | 57
        | 58 => host!(SYS_prctl, option as u64, a[1], a[2], a[3], a[4]),
        PR_GET_SECCOMP => Ok(0),
        // Time-stamp counter control would need the CPU to fault RDTSC: always enabled.
        PR_GET_TSC => {
            t.mem().write_u32(a[1], PR_TSC_ENABLE as u32)?;
            Ok(0)
        }
        PR_SET_TSC => {
            if a[1] == PR_TSC_ENABLE as u64 {
                Ok(0)
            } else {
                Err(Errno::EINVAL)
            }
        }
        // A guest seccomp filter, syscall user dispatch or PR_SET_MM would apply to cetbox
        // itself; they answer as on a kernel without them (or without the privilege).
        PR_SET_SECCOMP => Err(Errno::EINVAL),
        PR_SET_MM => Err(Errno::EPERM),
        // PR_SET_VMA: anonymous VMA names are not kept (as without CONFIG_ANON_VMA_NAME);
        // glibc ignores the failure.
        PR_SET_VMA => Err(Errno::EINVAL),
        // Options of other architectures (unaligned access, FP modes, endianness, MPX, SVE,
        // pointer authentication, tagged addresses, SME, RISC-V...) and unknown ones.
        _ => Err(Errno::EINVAL),
    }
}

// ---------------------------------------------------------------- groups, sessions, wait

pub(crate) fn sys_getpgrp(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    host!(SYS_getpgrp)
}
pub(crate) fn sys_getpgid(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_getpgid, a[0] as u32 as u64)
}
pub(crate) fn sys_setpgid(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_setpgid, a[0] as u32 as u64, a[1] as u32 as u64)
}
pub(crate) fn sys_getsid(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(SYS_getsid, a[0] as u32 as u64)
}
pub(crate) fn sys_setsid(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    host!(SYS_setsid)
}

const RUSAGE: u64 = std::mem::size_of::<rusage>() as u64;

pub(crate) fn sys_wait4(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if crate::fork::wait_finds_only_holder(&t.proc, Some(a[0] as i32), None, a[2]) {
        return Err(Errno::ECHILD);
    }
    let (status, ru) = match (
        opt_buf(t, a[1], 4, Access::Write),
        opt_buf(t, a[3], RUSAGE, Access::Write),
    ) {
        (Ok(s), Ok(r)) => (s, r),
        _ => {
            // Linux waits first and copies the status out afterwards (kernel_wait4): with
            // no child the answer is ECHILD, and a reaped child is still reaped when the
            // copy then fails with EFAULT.
            let mut st = 0i32;
            // SAFETY: rusage is plain data.
            let mut r: rusage = unsafe { std::mem::zeroed() };
            let n = traced_wait4(
                t,
                a[0],
                HostPtr::of_mut(&mut st),
                a[2],
                HostPtr::of_mut(&mut r),
            )?;
            if n > 0 {
                crate::coredump::dumped::take_dumped(n as i32);
                return Err(Errno::EFAULT);
            }
            return Ok(n);
        }
    };
    // A stop must be seen even when the guest asks for no status (a guest tracer's stops are
    // filtered, see traced_wait4).
    let mut own = 0i32;
    let status_or_own = if status.is_null() {
        HostPtr::of_mut(&mut own)
    } else {
        status
    };
    let n = traced_wait4(t, a[0], status_or_own, a[2], ru)?;
    if n > 0 && crate::coredump::dumped::take_dumped(n as i32) && !status.is_null() {
        // SAFETY: `status` is the checked 4-byte status buffer (or its bounce) the host just
        // wrote; guest memory there is host memory that stays mapped read-write until this
        // syscall returns (a bounce is copied out afterwards).
        unsafe {
            let p = status.as_ptr().cast::<i32>();
            let st = p.read_unaligned();
            // Killed by a signal (WIFSIGNALED): the core-dumped bit joins it.
            if st & 0x7f != 0 && st & 0x7f != 0x7f {
                p.write_unaligned(st | 0x80);
            }
        }
    }
    Ok(n)
}

/// wait4 for a tracer: the host stops of a guest-traced child that are not the guest's
/// ptrace-stops are passed on to it and the wait goes on; a guest ptrace-stop shows the status
/// the tracee published (syscalls/ptrace/wait.rs).
fn traced_wait4(
    t: &Thread,
    pid: u64,
    status: HostPtr<'_>,
    options: u64,
    ru: HostPtr<'_>,
) -> SysResult {
    loop {
        let n = wait4(t, pid, status, options, ru)?;
        if n == 0 {
            return Ok(n);
        }
        let p = status.as_ptr().cast::<i32>();
        // SAFETY: `status` is a 4-byte buffer (checked guest memory, its bounce or ours) the
        // host just wrote, mapped read-write until this syscall returns.
        let st = unsafe { p.read_unaligned() };
        if st & 0xff != 0x7f {
            return Ok(n);
        }
        match super::ptrace::wait::filter(n as i32, st) {
            super::ptrace::wait::Seen::Report(s) => {
                // SAFETY: as above.
                unsafe { p.write_unaligned(s) };
                return Ok(n);
            }
            super::ptrace::wait::Seen::Again => {}
        }
    }
}

/// The host's wait4 through `waitcall`. When a signal was recorded before it began, Linux
/// (do_wait) still reaps a child that is ready and answers the signal only when it would
/// sleep: the WNOHANG form decides (it writes nothing when no child is ready).
fn wait4(t: &Thread, pid: u64, status: HostPtr<'_>, options: u64, ru: HostPtr<'_>) -> SysResult {
    let call = |options: u64| {
        crate::hostcall::args([
            (pid as u32 as u64).into(),
            status.into(),
            (options as u32 as u64).into(),
            ru.into(),
        ])
    };
    Waiter::of(t)
        .call_or_skip(SYS_wait4, call(options))
        .unwrap_or_else(
            || match crate::hostcall::call(SYS_wait4, call(options | WNOHANG as u64)) {
                Ok(0) if options as u32 as i32 & WNOHANG == 0 => Err(Errno::EINTR),
                r => r,
            },
        )
}

pub(crate) fn sys_waitid(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let which = (a[0] as u32, a[1] as i32);
    if crate::fork::wait_finds_only_holder(&t.proc, None, Some(which), a[3]) {
        return Err(Errno::ECHILD);
    }
    let info = opt_buf(t, a[2], 128, Access::Write)?;
    let ru = opt_buf(t, a[4], RUSAGE, Access::Write)?;
    fn args<'a>(a: [u64; 6], info: HostPtr<'a>, opts: u64, ru: HostPtr<'a>) -> [Arg<'a>; 6] {
        crate::hostcall::args([
            (a[0] as u32 as u64).into(),
            (a[1] as u32 as u64).into(),
            info.into(),
            (opts as u32 as u64).into(),
            ru.into(),
        ])
    }
    let call = |info, options| args(a, info, options, ru);
    let options = a[3] as u32 as u64;
    let r = Waiter::of(t)
        .call_or_skip(SYS_waitid, call(info, options))
        .unwrap_or_else(|| {
            if options as i32 & WNOHANG != 0 {
                return crate::hostcall::call(SYS_waitid, call(info, options));
            }
            // A signal recorded before the wait: is a child ready (do_wait looks first)? A
            // WNOHANG|WNOWAIT look into a siginfo of ours (si_pid at byte 16) decides; then
            // the guest's call reaps it without waiting.
            let mut probe = [0u8; 128];
            let look = options | (WNOHANG | WNOWAIT) as u64;
            let looked = crate::hostcall::call(
                SYS_waitid,
                args(a, HostPtr::of_mut(&mut probe), look, HostPtr::NULL),
            );
            match looked {
                Ok(_) if probe[16..20] != [0; 4] => {
                    crate::hostcall::call(SYS_waitid, call(info, options))
                }
                Ok(_) => Err(Errno::EINTR),
                Err(e) => Err(e),
            }
        })?;
    const CLD_KILLED: i32 = 2;
    const CLD_DUMPED: i32 = 3;
    if !info.is_null() && a[3] as u32 as i32 & libc::WNOWAIT == 0 {
        // SAFETY: `info` is the checked 128-byte siginfo buffer (or its bounce) the host just
        // filled; si_code is the int at offset 8, si_pid the one at offset 16.
        unsafe {
            let code = info.as_ptr().add(8).cast::<i32>();
            let pid = info.as_ptr().add(16).cast::<i32>().read_unaligned();
            if code.read_unaligned() == CLD_KILLED && crate::coredump::dumped::take_dumped(pid) {
                code.write_unaligned(CLD_DUMPED);
            }
        }
    }
    Ok(r)
}

// ---------------------------------------------------------------- futex

// The futex constants as u32 (libc's are i32); FUTEX_PRIVATE_FLAG is libc's.
use crate::abi::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMD_MASK, FUTEX_CMP_REQUEUE, FUTEX_CMP_REQUEUE_PI, FUTEX_FD,
    FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_REQUEUE, FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};

/// futex on the host, on the same addresses: guest memory is host memory, so waiters and wakers
/// in different guest threads (host threads) meet in the host kernel. Every futex word the host
/// will read or write is checked to be guest memory first; a plain wake on an address that is
/// not guest memory wakes nobody (Linux does not touch memory for a private wake either), which
/// keeps guest wakes away from cetbox's own futexes.
pub(crate) fn sys_futex(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (uaddr, op, val, utime, uaddr2, val3) = (a[0], a[1] as u32, a[2], a[3], a[4], a[5]);
    let cmd = op & FUTEX_CMD_MASK;
    if uaddr & 3 != 0 {
        return Err(Errno::EINVAL);
    }
    // A futex is identified by its guest address, so the host gets the address itself, not a
    // bounce buffer; the host's atomic updates of a futex word cannot go through `usermem`.
    // Those that do not block (WAKE_OP, UNLOCK_PI, TRYLOCK_PI, the shared CMP_REQUEUE_PI, and
    // the REQUEUE/CMP_REQUEUE reads) run under the mapping lock below; LOCK_PI re-checks its
    // word under the lock each time it enters the host again (`lock_pi`, which says what
    // remains open). Requeue-PI on private futexes is cetbox's own (`requeue_pi`), on top of
    // `lock_pi`. A shared WAIT_REQUEUE_PI, whose requeuer may be another process, is one host
    // sleep, checked at entry: its own write of the PI word (uaddr2) inside that call, when
    // the kernel must fix the lock's owner for the woken waiter (kernel/futex/requeue.c
    // `futex_wait_requeue_pi` -> pi.c `fixup_pi_owner`: a timeout or signal racing with the
    // hand-over, or a stolen lock), is made however long ago the word was checked.
    if op & FUTEX_PRIVATE_FLAG as u32 != 0 {
        match cmd {
            FUTEX_WAIT_REQUEUE_PI => {
                return requeue_pi::wait(t, uaddr, op, val as u32, utime, uaddr2);
            }
            // do_futex: FUTEX_CLOCK_REALTIME only for the waits that take a deadline.
            FUTEX_CMP_REQUEUE_PI if op & FUTEX_CLOCK_REALTIME != 0 => {
                return Err(Errno::ENOSYS);
            }
            FUTEX_CMP_REQUEUE_PI => {
                return requeue_pi::requeue(t, uaddr, val as u32, utime, uaddr2, val3 as u32);
            }
            _ => {}
        }
    }
    let word = |addr: u64, acc: Access| -> Result<Arg, Errno> {
        Ok(crate::syscalls::fs::guest_range(t, addr, 4, acc)?.into())
    };
    let timeout =
        |addr: u64| -> Result<Arg, Errno> { Ok(opt_buf(t, addr, 16, Access::Read)?.into()) };
    let int = Arg::from;
    // Commands that update a futex word on the host without blocking run under the mapping
    // lock with that word checked writable (not a shadow stack, not read-only): a racing
    // munmap + map_shadow_stack or mprotect cannot slip in between check and host write.
    // REQUEUE and CMP_REQUEUE only read the first word (CMP_REQUEUE compares it): under the
    // lock with it checked readable, so an unmapped word is EFAULT as on Linux, not the zero
    // page cetbox leaves there.
    let locked_word = match cmd {
        FUTEX_WAKE_OP | FUTEX_CMP_REQUEUE_PI => Some((uaddr2, Access::Write)),
        FUTEX_TRYLOCK_PI => Some((uaddr, Access::Write)),
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => Some((uaddr, Access::Read)),
        _ => None,
    };
    // Waits register their address (see `futex_waiters`).
    let _waiting = matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI)
        .then(|| futex_waiters::Waiting::enter(uaddr));
    let args: [Arg; 6] = match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => [
            word(uaddr, Access::Read)?,
            int(op as u64),
            int(val),
            timeout(utime)?,
            int(0),
            int(val3),
        ],
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            // get_futex_key: access_ok first (a kernel address is EFAULT); a shared futex
            // needs its page (EFAULT if unmapped), a private one only its address.
            if !crate::syscalls::fs::access_ok(uaddr, 4) {
                return Err(Errno::EFAULT);
            }
            // A private futex is keyed by its address alone, so its waiters are woken even
            // when the page is gone; cetbox passes such a wake on only where a guest thread
            // may wait (`futex_waiters`), never to its own futexes.
            if t.mem().check(uaddr, 4, Access::Read).is_err() {
                if op & FUTEX_PRIVATE_FLAG as u32 == 0 {
                    return Err(Errno::EFAULT);
                }
                if !futex_waiters::may_wait_at(uaddr) {
                    return meets_requeue_pi(t, cmd, op, uaddr, val, utime, Ok(0));
                }
            }
            // Checked above; the host only looks the word's page up (get_futex_key).
            [
                int(uaddr),
                int(op as u64),
                int(val),
                int(0),
                int(0),
                int(val3),
            ]
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if uaddr2 & 3 != 0 {
                return Err(Errno::EINVAL);
            }
            let u = word(uaddr, Access::Read)?;
            let u2 = word(uaddr2, Access::Read)?;
            // `utime` is the requeue count here, not a pointer.
            [u, int(op as u64), int(val), int(utime), u2, int(val3)]
        }
        FUTEX_WAKE_OP => {
            if uaddr2 & 3 != 0 {
                return Err(Errno::EINVAL);
            }
            let u2 = word(uaddr2, Access::Write)?;
            let u = word(uaddr, Access::Read)?;
            // `utime` is the second wake count here, not a pointer.
            [u, int(op as u64), int(val), int(utime), u2, int(val3)]
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 => {
            // The deadline is read and validated first (kernel/futex/syscalls.c).
            let deadline = requeue_pi::read_deadline(t, utime)?;
            word(uaddr, Access::Write)?;
            let _waiting = futex_waiters::Waiting::enter(uaddr);
            let deadline = deadline.map(|d| (d[0], d[1]));
            return lock_pi(t, cmd, uaddr, op, deadline, None);
        }
        FUTEX_UNLOCK_PI => {
            // futex_unlock_pi (kernel/futex/pi.c) reads the word and refuses a lock the
            // caller does not own (EPERM) before any write of it can fault (EFAULT): a
            // read-only page or a shadow stack holding another value answers EPERM.
            let args = [int(uaddr), int(op as u64), int(val), int(0), int(0), int(0)];
            return t.mem().with_locked(|ok| {
                if !ok(uaddr, 4, Access::Read) {
                    return Err(Errno::EFAULT);
                }
                // SAFETY: checked readable just above, under the mapping lock.
                let v = unsafe { requeue_pi::atomic_at(uaddr) }
                    .load(std::sync::atomic::Ordering::SeqCst);
                if v & 0x3fff_ffff != t.tid as u32 {
                    return Err(Errno::EPERM);
                }
                if !ok(uaddr, 4, Access::Write) {
                    return Err(Errno::EFAULT);
                }
                crate::hostcall::call(SYS_futex, args)
            });
        }
        FUTEX_TRYLOCK_PI => [
            word(uaddr, Access::Write)?,
            int(op as u64),
            int(val),
            int(0),
            int(0),
            int(0),
        ],
        FUTEX_WAIT_REQUEUE_PI => {
            let u = word(uaddr, Access::Read)?;
            let u2 = word(uaddr2, Access::Write)?;
            [u, int(op as u64), int(val), timeout(utime)?, u2, int(val3)]
        }
        FUTEX_CMP_REQUEUE_PI => {
            let u = word(uaddr, Access::Read)?;
            let u2 = word(uaddr2, Access::Write)?;
            // `utime` is the requeue count here, not a pointer.
            [u, int(op as u64), int(val), int(utime), u2, int(val3)]
        }
        FUTEX_FD => return Err(Errno::EINVAL),
        _ => return Err(Errno::ENOSYS),
    };
    let res = match locked_word {
        Some((w, acc)) => t
            .mem()
            .with_checked(w, 4, acc, || crate::hostcall::call(SYS_futex, args))
            .unwrap_or(Err(Errno::EFAULT)),
        // A wait must not begin after a signal for the guest was recorded (`waitcall`).
        None if matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) => {
            Waiter::of(t)
                .call_or_skip(SYS_futex, args)
                .unwrap_or_else(|| {
                    // A signal recorded before the wait: Linux compares the word first
                    // (futex_wait_setup: EAGAIN), and answers the signal only when it would
                    // sleep. The same wait with a zero timeout (relative or long past) decides.
                    let zero = [0i64; 2];
                    let mut again = args;
                    again[3] = HostPtr::of(&zero).into();
                    match crate::hostcall::call(SYS_futex, again) {
                        Err(Errno::ETIMEDOUT) => Err(Errno::EINTR),
                        r => r,
                    }
                })
        }
        None => {
            // The shared FUTEX_WAIT_REQUEUE_PI (the host's): a guest's waiting call.
            let _waiting = (cmd == FUTEX_WAIT_REQUEUE_PI).then(crate::procview::Waiting::begin);
            crate::hostcall::call(SYS_futex, args)
        }
    };
    if matches!(res, Ok(n) if n > 0)
        && matches!(
            cmd,
            FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_CMP_REQUEUE_PI
        )
    {
        futex_waiters::requeued_to(uaddr2);
    }
    let res = meets_requeue_pi(t, cmd, op, uaddr, val, utime, res);
    match res {
        // A host signal (recorded for the guest) interrupted the wait: answer with the code
        // Linux's futex would have, so signal delivery applies its restart rules.
        Err(Errno::EINTR) => Err(match cmd {
            FUTEX_WAIT | FUTEX_WAIT_BITSET if utime != 0 => signals::ERESTART_RESTARTBLOCK,
            FUTEX_WAIT | FUTEX_WAIT_BITSET => signals::ERESTARTSYS,
            FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_REQUEUE_PI => signals::ERESTARTNOINTR,
            _ => Errno::EINTR,
        }),
        r => r,
    }
}

/// A plain wake or requeue of a private futex that leaves requeue-PI waiters (cetbox's own,
/// `requeue_pi`) on `uaddr`: Linux's walk of the waiters stops at the first one with EINVAL
/// (kernel/futex/waitwake.c `futex_wake`, `futex_wake_op`; requeue.c `futex_requeue`), having
/// woken or requeued the plain waiters before it. The host dealt with the plain waiters;
/// taking them as queued first, the walk reaches a requeue-PI waiter when it has not used up
/// its counts (FUTEX_WAKE: at least one waiter even for a count of 0; WAKE_OP: its first
/// word's waiters, whose count the host does not report apart, are taken as never enough).
fn meets_requeue_pi(
    t: &Thread,
    cmd: u32,
    op: u32,
    uaddr: u64,
    val: u64,
    utime: u64,
    res: SysResult,
) -> SysResult {
    let Ok(n) = res else { return res };
    if op & FUTEX_PRIVATE_FLAG as u32 == 0 {
        return res;
    }
    let stops = match cmd {
        FUTEX_WAKE | FUTEX_WAKE_BITSET => (n as i64) < (val as u32 as i32).max(1) as i64,
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            (n as i64) < val as u32 as i32 as i64 + utime as u32 as i32 as i64
        }
        FUTEX_WAKE_OP => true,
        _ => false,
    };
    if stops && t.proc.requeue_pi.waiting_at(uaddr) {
        return Err(Errno::EINVAL);
    }
    res
}

/// The longest a PI lock waits in the host kernel before cetbox looks for guest signals.
const PI_SLICE_NS: i64 = 20_000_000;

/// FUTEX_LOCK_PI and FUTEX_LOCK_PI2 wait in the host kernel, which restarts them by itself
/// after cetbox's signal handler returns (futex_lock_pi answers -ERESTARTNOINTR,
/// kernel/futex/pi.c), so a signal for the guest, even a fatal one, would wait until the lock
/// is taken. They wait in slices of at most PI_SLICE_NS instead, ending at the guest's own
/// deadline if it comes first (both are absolute: CLOCK_REALTIME for LOCK_PI, CLOCK_MONOTONIC
/// for LOCK_PI2 unless FUTEX_CLOCK_REALTIME; futex_init_timeout in kernel/futex/syscalls.c).
/// When a slice ends and a signal was recorded for this thread, the call answers
/// ERESTARTNOINTR: the signal is delivered (or kills) and the call restarts, as on Linux.
///
/// Entering the host again writes the futex word (it takes a free lock or sets
/// FUTEX_WAITERS), which Linux's one long wait never does: before each new slice the word is
/// checked writable under the mapping lock. If another thread unmapped it (or made it
/// read-only or a shadow stack) meanwhile, Linux's waiter would still be asleep on the lock
/// it queued on, which nobody can hand over any more (UNLOCK_PI on that word fails with
/// EFAULT): the thread then waits without the host until its deadline (ETIMEDOUT) or a signal
/// (ERESTARTNOINTR; the restarted call then meets the bad word at entry: EFAULT, as Linux's
/// restarted futex_lock_pi).
///
/// Between that check and the host's own update of the word inside the call
/// (kernel/futex/pi.c `futex_lock_pi_atomic`: a cmpxchg taking a free lock, or setting
/// FUTEX_WAITERS; `fixup_pi_owner` after a handoff) another thread could make the word's page
/// read-only or a shadow stack; the host, whose page stays writable, would then write there
/// where Linux's cmpxchg faults. So each host call is registered (`pi_inflight`) before the
/// check, and a mapping change that takes write access away waits, before it returns to its
/// guest, until no call on a word it made unwritable is still in the host (at most a slice):
/// every host write to the word happens before the change is visible to the guest, as if the
/// lock call had come first. A requeued private FUTEX_WAIT_REQUEUE_PI waiter takes its PI lock
/// here too (`requeue_pi`); a shared one's stays one host sleep (`sys_futex`).
pub(super) fn lock_pi(
    t: &Thread,
    cmd: u32,
    addr: u64,
    op: u32,
    deadline: Option<(i64, i64)>,
    mut registered: Option<super::pi_inflight::InFlight<'_>>,
) -> SysResult {
    // A guest's waiting call: State S for readers of /proc while it sleeps in the host's
    // LOCK_PI or `orphan_wait` (procview::Waiting), as a thread blocked on a PI mutex on Linux.
    let _waiting = crate::procview::Waiting::begin();
    let clock = if cmd == FUTEX_LOCK_PI || op & FUTEX_CLOCK_REALTIME != 0 {
        CLOCK_REALTIME
    } else {
        CLOCK_MONOTONIC
    };
    let mut first = true;
    loop {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the struct we own.
        unsafe { clock_gettime(clock, &mut now) };
        let ns = now.tv_nsec + PI_SLICE_NS;
        let slice_end = (now.tv_sec + ns / 1_000_000_000, ns % 1_000_000_000);
        let (end, last) = match deadline {
            Some(d) if d <= slice_end => (d, true),
            _ => (slice_end, false),
        };
        // The host only reads the slice's deadline: a shared borrow for the call.
        let ts = [end.0, end.1];
        // Registered while in the host, the word checked writable after registering (see
        // pi_inflight): a mapping change that takes it away waits for this call to end. A
        // requeued FUTEX_WAIT_REQUEUE_PI waiter's first call comes registered by its requeuer
        // (`requeue_pi`).
        let inflight = match registered.take() {
            Some(r) => r,
            None => match super::pi_inflight::enter(t, addr) {
                Some(r) => r,
                None if first => return Err(Errno::EFAULT),
                None => return orphan_wait(t, clock, deadline),
            },
        };
        first = false;
        let r = crate::hostcall::call(
            SYS_futex,
            [
                Arg::from(addr),
                Arg::from(op as u64),
                Arg::from(0u64),
                HostPtr::of(&ts).into(),
                Arg::from(0u64),
                Arg::from(0u64),
            ],
        );
        drop(inflight);
        match r {
            Err(Errno::ETIMEDOUT) if !last => {
                if t.stop.load(std::sync::atomic::Ordering::Acquire) {
                    return Err(signals::ERESTARTNOINTR);
                }
            }
            Err(Errno::EINTR) => return Err(signals::ERESTARTNOINTR),
            r => return r,
        }
    }
}

/// The rest of a PI lock wait whose futex word went away (see `lock_pi`): until `deadline`
/// on `clock` (ETIMEDOUT) or a signal for the thread (ERESTARTNOINTR), in slices.
fn orphan_wait(t: &Thread, clock: clockid_t, deadline: Option<(i64, i64)>) -> SysResult {
    loop {
        if t.stop.load(std::sync::atomic::Ordering::Acquire) {
            return Err(signals::ERESTARTNOINTR);
        }
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the struct we own.
        unsafe { clock_gettime(clock, &mut now) };
        if let Some(d) = deadline {
            if (now.tv_sec, now.tv_nsec) >= d {
                return Err(Errno::ETIMEDOUT);
            }
        }
        let ns = now.tv_nsec + PI_SLICE_NS;
        let mut end = (now.tv_sec + ns / 1_000_000_000, ns % 1_000_000_000);
        if let Some(d) = deadline {
            end = end.min(d);
        }
        let ts = timespec {
            tv_sec: end.0,
            tv_nsec: end.1,
        };
        // SAFETY: an absolute sleep on a timespec we own; a signal ends it early (EINTR).
        unsafe { clock_nanosleep(clock, TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
    }
}

/// futex_waitv: struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 reserved; }.
pub(crate) fn sys_futex_waitv(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let n = a[1] as u32 as u64;
    if a[2] != 0 {
        return Err(Errno::EINVAL);
    }
    if n == 0 || n > 128 {
        return Err(Errno::EINVAL);
    }
    let arr = buf(t, a[0], n * 24, Access::Read)?;
    for i in 0..n {
        let uaddr = t.mem().read_u64(a[0] + i * 24 + 8)?;
        let flags = t.mem().read_u32(a[0] + i * 24 + 16)?;
        // The size field (FUTEX2_SIZE_U8..U64) decides how many bytes are compared.
        let size = 1u64 << (flags & 3);
        buf(t, uaddr, size, Access::Read)?;
    }
    let ts = opt_buf(t, a[3], 16, Access::Read)?;
    host_wait!(
        Waiter::of(t),
        SYS_futex_waitv,
        arr,
        n,
        0,
        ts,
        a[4] as u32 as u64
    )
}
