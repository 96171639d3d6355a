//! System V message queues and semaphores (shared memory is `shm.rs`). Queues, semaphore sets
//! and their ids are the host's, in the IPC namespace cetbox shares with the guest, so the
//! calls pass through after cetbox checks the guest's buffers. Where a buffer fails the check,
//! the host gets a null pointer instead, so it makes its own checks in its own order first and
//! answers EFAULT where Linux would copy (the order of ipc/msg.c and ipc/sem.c).

use super::fs::{buf, host};
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::Thread;
use crate::waitcall::Waiter;
use cetbox_mem::Access;

/// IPC_64 (include/uapi/linux/ipc.h): the command flag selecting the 64-bit structures, which
/// are the only ones on x86-64.
const IPC_64: i32 = 0x100;
/// sizeof(struct msqid64_ds) on x86-64 (arch/x86/include/uapi/asm/msgbuf.h).
const MSQID_DS: u64 = 120;
/// sizeof(struct msginfo) (include/uapi/linux/msg.h): eight ints.
const MSGINFO: u64 = 32;
/// sizeof(struct semid64_ds) on x86-64 (arch/x86/include/uapi/asm/sembuf.h).
const SEMID_DS: u64 = 104;
/// sizeof(struct seminfo) (include/uapi/linux/sem.h): ten ints.
const SEMINFO: u64 = 40;
/// sizeof(struct sembuf): unsigned short, short, short.
const SEMBUF: u64 = 6;
/// sizeof(long mtype) at the start of a struct msgbuf.
const MTYPE: u64 = 8;

// Commands (include/uapi/linux/ipc.h, msg.h, sem.h).
const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;
const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;
const GETALL: i32 = 13;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

/// The guest buffer as a host pointer, or null when the check fails (the host then answers
/// EFAULT after its own checks).
fn or_null(t: &Thread, addr: u64, len: u64, access: Access) -> HostPtr<'static> {
    buf(t, addr, len, access).unwrap_or(HostPtr::NULL)
}

/// /proc/sys/kernel/msgmax: the largest message (msg_ctlmax of the IPC namespace).
fn msgmax() -> u64 {
    let _hold = cetbox_mem::transient::hold();
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

pub(crate) fn sys_msgget(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(libc::SYS_msgget, a[0] as u32 as u64, a[1] as u32 as u64)
}

/// msgsnd(msqid, msgp, msgsz, msgflg). ksys_msgsnd reads mtype first (EFAULT), then
/// do_msgsnd checks msgsz against msg_ctlmax and msqid (EINVAL) before it copies the text.
pub(crate) fn sys_msgsnd(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, flags) = (a[0] as u32 as i32, a[1], a[2], a[3] as u32 as u64);
    buf(t, msgp, MTYPE, Access::Read)?;
    let p = match buf(t, msgp, MTYPE.saturating_add(size), Access::Read) {
        Ok(p) => p,
        // The text is not readable: Linux still answers EINVAL first for a bad size or id.
        Err(e) => {
            if (size as i64) < 0 || size > msgmax() || id < 0 {
                return Err(Errno::EINVAL);
            }
            return Err(e);
        }
    };
    let call = |flags: u64| {
        crate::hostcall::args([(id as u64).into(), p.into(), size.into(), flags.into()])
    };
    // A signal recorded before the call ends it only if the queue is full (do_msgsnd looks
    // for room first): the IPC_NOWAIT form decides.
    Waiter::of(t)
        .call_or_skip(libc::SYS_msgsnd, call(flags))
        .unwrap_or_else(|| {
            match crate::hostcall::call(libc::SYS_msgsnd, call(flags | libc::IPC_NOWAIT as u64)) {
                Err(Errno::EAGAIN) if flags & libc::IPC_NOWAIT as u64 == 0 => Err(Errno::EINTR),
                r => r,
            }
        })
}

/// msgrcv(msqid, msgp, msgsz, msgtyp, msgflg): the host receives into a buffer of cetbox's
/// (mtype and at most msgmax bytes of text, the largest message a queue holds), then the
/// bytes go to the guest; if that copy fails the message is gone, as with Linux's store_msg.
pub(crate) fn sys_msgrcv(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, typ, flags) = (a[0] as u32 as i32, a[1], a[2], a[3], a[4] as u32);
    if id < 0 || (size as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let cap = size.min(msgmax());
    let mut tmp = vec![0u8; (MTYPE + cap) as usize];
    let w = Waiter::of(t);
    let buf = HostPtr::of_mut(&mut tmp[..]);
    let call = |flags: u32| {
        crate::hostcall::args([
            (id as u64).into(),
            buf.into(),
            cap.into(),
            typ.into(),
            (flags as u64).into(),
        ])
    };
    // A signal recorded before the call ends it only if no message is there (do_msgrcv
    // looks first): the IPC_NOWAIT form decides.
    let n = w
        .call_or_skip(libc::SYS_msgrcv, call(flags))
        .unwrap_or_else(|| {
            match crate::hostcall::call(libc::SYS_msgrcv, call(flags | libc::IPC_NOWAIT as u32)) {
                Err(Errno(libc::ENOMSG)) if flags & libc::IPC_NOWAIT as u32 == 0 => {
                    Err(Errno::EINTR)
                }
                r => r,
            }
        })?;
    t.mem()
        .write_bytes(msgp, &tmp[..(MTYPE + n) as usize])
        .map_err(|_| Errno::EFAULT)?;
    Ok(n)
}

pub(crate) fn sys_msgctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (id, cmd) = (a[0] as u32 as i32, a[1] as u32 as i32);
    let arg: Arg = match cmd & !IPC_64 {
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => or_null(t, a[2], MSQID_DS, Access::Write).into(),
        IPC_SET => or_null(t, a[2], MSQID_DS, Access::Read).into(),
        IPC_INFO | MSG_INFO => or_null(t, a[2], MSGINFO, Access::Write).into(),
        // IPC_RMID and unknown commands (EINVAL): the host does not dereference the argument.
        _ => a[2].into(),
    };
    host!(libc::SYS_msgctl, id as u64, cmd as u32 as u64, arg)
}

pub(crate) fn sys_semget(_t: &mut Thread, a: [u64; 6]) -> SysResult {
    host!(
        libc::SYS_semget,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        a[2] as u32 as u64
    )
}

pub(crate) fn sys_semop(t: &mut Thread, a: [u64; 6]) -> SysResult {
    semtimedop(t, a[0], a[1], a[2], 0)
}

pub(crate) fn sys_semtimedop(t: &mut Thread, a: [u64; 6]) -> SysResult {
    semtimedop(t, a[0], a[1], a[2], a[3])
}

/// ksys_semtimedop copies the timeout first (EFAULT); do_semtimedop then checks nsops and
/// semid (EINVAL) and sc_semopm (E2BIG) before it copies the operations.
fn semtimedop(t: &Thread, id: u64, sops: u64, nsops: u64, timeout: u64) -> SysResult {
    let ts = if timeout == 0 {
        HostPtr::NULL
    } else {
        buf(t, timeout, 16, Access::Read)?
    };
    let ops = or_null(t, sops, nsops.saturating_mul(SEMBUF), Access::Read);
    let call = |ops: HostPtr<'_>| {
        crate::hostcall::call(
            libc::SYS_semtimedop,
            crate::hostcall::args([
                (id as u32 as u64).into(),
                ops.into(),
                (nsops as u32 as u64).into(),
                ts.into(),
            ]),
        )
    };
    let args = crate::hostcall::args([
        (id as u32 as u64).into(),
        ops.into(),
        (nsops as u32 as u64).into(),
        ts.into(),
    ]);
    Waiter::of(t)
        .call_or_skip(libc::SYS_semtimedop, args)
        .unwrap_or_else(|| {
            // A signal recorded before the call ends it only if the operations would wait
            // (do_semtimedop tries them first): the same operations with IPC_NOWAIT decide.
            let mut nowait = vec![0u8; (nsops as u32 as u64 * SEMBUF).min(1 << 16) as usize];
            if ops.is_null() || nowait.len() as u64 != nsops as u32 as u64 * SEMBUF {
                return call(ops);
            }
            if t.mem().read_bytes(sops, &mut nowait).is_err() {
                return call(ops);
            }
            let mut waits = false;
            for op in nowait.chunks_exact_mut(SEMBUF as usize) {
                // struct sembuf { u16 sem_num; i16 sem_op; i16 sem_flg; }
                let flg = i16::from_ne_bytes([op[4], op[5]]);
                waits |= flg & libc::IPC_NOWAIT as i16 == 0;
                op[4..6].copy_from_slice(&(flg | libc::IPC_NOWAIT as i16).to_ne_bytes());
            }
            match call(HostPtr::of(&nowait[..])) {
                Err(Errno::EAGAIN) if waits => Err(Errno::EINTR),
                r => r,
            }
        })
}

/// semctl(semid, semnum, cmd, arg): `arg` is an int or a pointer, by command.
pub(crate) fn sys_semctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let (id, num, cmd) = (a[0] as u32 as i32, a[1] as u32 as i32, a[2] as u32 as i32);
    let arg: Arg = match cmd & !IPC_64 {
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => or_null(t, a[3], SEMID_DS, Access::Write).into(),
        IPC_SET => or_null(t, a[3], SEMID_DS, Access::Read).into(),
        IPC_INFO | SEM_INFO => or_null(t, a[3], SEMINFO, Access::Write).into(),
        GETALL | SETALL => {
            let access = if cmd & !IPC_64 == GETALL {
                Access::Write
            } else {
                Access::Read
            };
            // The array holds one unsigned short per semaphore of the set.
            match semaphores(id) {
                Some(n) => or_null(t, a[3], n * 2, access).into(),
                None => HostPtr::NULL.into(),
            }
        }
        IPC_RMID => 0u64.into(),
        // SETVAL's value, GETVAL/GETPID/GETNCNT/GETZCNT's unused argument, unknown commands
        // (EINVAL): never an address the host dereferences.
        _ => a[3].into(),
    };
    host!(
        libc::SYS_semctl,
        id as u64,
        num as u64,
        cmd as u32 as u64,
        arg
    )
}

/// The number of semaphores in set `id` (sem_nsems of IPC_STAT), if the host answers.
fn semaphores(id: i32) -> Option<u64> {
    let mut ds = [0u64; (SEMID_DS / 8) as usize];
    host!(
        libc::SYS_semctl,
        id as u32 as u64,
        0u64,
        IPC_STAT as u64,
        HostPtr::of_mut(&mut ds)
    )
    .ok()?;
    // struct semid64_ds: ipc64_perm (48 bytes), sem_otime, an unused word, sem_ctime, an
    // unused word, then sem_nsems (the eleventh 8-byte word).
    Some(ds[10])
}
