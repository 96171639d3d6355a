//! clone, clone3, fork and vfork: new threads share the address space and run on their own host
//! threads (`crate::thread`); new processes are host processes (`crate::fork`).
//!
//! The flag checks follow copy_process and clone3's argument checks in Linux 6.6–6.18, in
//! their order, so a guest probing for features sees the same errors.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use crate::thread::*;
use cetbox_mem::PAGE_SIZE;

const SIGCHLD: u64 = 17;
/// Sizes of struct clone_args: VER0 (flags..tls), VER1 (+set_tid, set_tid_size), VER2
/// (+cgroup). 6.6–6.18 know nothing larger (no shstk_token).
const CLONE_ARGS_SIZE_VER0: u64 = 64;
const CLONE_ARGS_SIZE_VER2: u64 = 88;
const NSIG: u64 = 64;
/// MAX_PID_NS_LEVEL.
const MAX_PID_NS_LEVEL: u64 = 32;

/// The arguments of a clone, whichever syscall they came from.
#[derive(Clone, Copy, Debug, Default)]
struct Args {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    /// Initial stack pointer for clone; lowest address of the stack for clone3.
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid_size: u64,
}

/// clone(flags, newsp, parent_tid, child_tid, tls) — x86-64 argument order.
pub(crate) fn sys_clone(t: &mut Thread, a: [u64; 6]) -> SysResult {
    // Legacy clone takes an int: the upper half of the register is ignored, and the low byte
    // is the exit signal.
    let raw = a[0] & 0xffff_ffff;
    let args = Args {
        flags: raw & !CSIGNAL,
        exit_signal: raw & CSIGNAL,
        stack: a[1],
        parent_tid: a[2],
        child_tid: a[3],
        tls: a[4],
        // With CLONE_PIDFD the pidfd goes where parent_tid points.
        pidfd: a[2],
        ..Args::default()
    };
    do_clone(t, &args, args.stack)
}

pub(crate) fn sys_fork(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    crate::fork::fork_process(t, SIGCHLD, 0, 0, 0, 0, 0)
}

pub(crate) fn sys_vfork(t: &mut Thread, _a: [u64; 6]) -> SysResult {
    crate::fork::fork_process(t, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0, 0)
}

/// clone3(struct clone_args *uargs, size_t size).
pub(crate) fn sys_clone3(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (uargs, size) = (a[0], a[1]);
    // copy_clone_args_from_user: size bounds first.
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    if size < CLONE_ARGS_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    let known = size.min(CLONE_ARGS_SIZE_VER2) as usize;
    let mut b = [0u8; CLONE_ARGS_SIZE_VER2 as usize];
    t.mem().read_bytes(uargs, &mut b[..known])?;
    if size > CLONE_ARGS_SIZE_VER2 {
        // copy_struct_from_user: unknown trailing bytes must be zero.
        let mut rest = vec![0u8; (size - CLONE_ARGS_SIZE_VER2) as usize];
        t.mem()
            .read_bytes(uargs + CLONE_ARGS_SIZE_VER2, &mut rest)?;
        if rest.iter().any(|&x| x != 0) {
            return Err(Errno::E2BIG);
        }
    }
    let q = |i: usize| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
    let args = Args {
        flags: q(0),
        pidfd: q(1),
        child_tid: q(2),
        parent_tid: q(3),
        exit_signal: q(4),
        stack: q(5),
        stack_size: q(6),
        tls: q(7),
        set_tid_size: q(9),
    };
    let set_tid = q(8);
    let cgroup = q(10);
    if args.set_tid_size > MAX_PID_NS_LEVEL
        || (set_tid == 0 && args.set_tid_size != 0)
        || (set_tid != 0 && args.set_tid_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if args.exit_signal & !CSIGNAL != 0 || args.exit_signal > NSIG {
        return Err(Errno::EINVAL);
    }
    if args.flags & CLONE_INTO_CGROUP != 0
        && (cgroup > i32::MAX as u64 || size < CLONE_ARGS_SIZE_VER2)
    {
        return Err(Errno::EINVAL);
    }
    // clone3_args_valid.
    if args.flags & !(0xffff_ffff | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0 {
        return Err(Errno::EINVAL);
    }
    if args.flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND) == CLONE_SIGHAND | CLONE_CLEAR_SIGHAND {
        return Err(Errno::EINVAL);
    }
    if args.exit_signal != 0 && args.flags & (CLONE_THREAD | CLONE_PARENT) != 0 {
        return Err(Errno::EINVAL);
    }
    if (args.stack == 0) != (args.stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    // clone3 gives the lowest address of the stack; the stack pointer starts at its top.
    let sp = if args.stack != 0 {
        args.stack.wrapping_add(args.stack_size)
    } else {
        0
    };
    do_clone(t, &args, sp)
}

/// kernel_clone's and copy_process's flag checks, then a thread or a process.
fn do_clone(t: &mut Thread, args: &Args, sp: u64) -> SysResult {
    let f = args.flags;
    // kernel_clone: the pidfd and the parent's tid cannot share a location (always the case
    // for legacy clone, where both go to parent_tid).
    if f & CLONE_PIDFD != 0 && f & CLONE_PARENT_SETTID != 0 && args.pidfd == args.parent_tid {
        return Err(Errno::EINVAL);
    }
    if f & (CLONE_NEWNS | CLONE_FS) == CLONE_NEWNS | CLONE_FS
        || f & (CLONE_NEWUSER | CLONE_FS) == CLONE_NEWUSER | CLONE_FS
    {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if f & (CLONE_NEWUSER | CLONE_NEWPID) != 0 && f & (CLONE_THREAD | CLONE_PARENT) != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_PIDFD != 0 && f & CLONE_DETACHED != 0 {
        return Err(Errno::EINVAL);
    }
    if f & CLONE_THREAD == 0 {
        // A new process (fork, vfork, posix_spawn's CLONE_VM|CLONE_VFORK, containers'
        // namespaces): the legacy flags word with the exit signal in its low byte.
        return crate::fork::fork_process(
            t,
            f | (args.exit_signal & CSIGNAL),
            sp,
            args.parent_tid,
            args.child_tid,
            args.tls,
            args.pidfd,
        );
    }
    if args.set_tid_size != 0 {
        // Choosing a tid needs CAP_CHECKPOINT_RESTORE in the host's pid namespace.
        return Err(Errno::EPERM);
    }
    if f & (CLONE_NEWNS
        | CLONE_NEWUTS
        | CLONE_NEWIPC
        | CLONE_NEWNET
        | CLONE_NEWCGROUP
        | CLONE_NEWTIME
        | CLONE_INTO_CGROUP)
        != 0
    {
        // New namespaces for a thread: cetbox runs unprivileged on the host.
        return Err(Errno::EPERM);
    }
    spawn(
        t,
        &CloneRequest {
            flags: f,
            sp,
            stack_size: args.stack_size,
            parent_tid: args.parent_tid,
            child_tid: args.child_tid,
            tls: args.tls,
            pidfd: args.pidfd,
        },
    )
}
