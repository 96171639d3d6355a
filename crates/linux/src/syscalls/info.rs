//! System and identity information: uname, getrandom, sysinfo, resource limits, credentials,
//! scheduling and CPU affinity, personality, syslog.

#![allow(non_upper_case_globals)]

use super::fs::{buf, host, io_prefix, opt_buf};
use crate::errno::{Errno, SysResult};
use crate::hostcall::HostPtr;
use crate::process::Thread;
use cetbox_mem::Access;
use libc::*;
use std::sync::atomic::Ordering;

/// sizeof(struct utsname): six 65-byte fields.
const UTSNAME: usize = 390;
const RLIMIT: u64 = 16;

/// The host's uname with machine "x86_64" (what the guest runs on, whatever cetbox runs on).
pub(crate) fn sys_uname(t: &mut Thread, a: [u64; 6]) -> SysResult {
    buf(t, a[0], UTSNAME as u64, Access::Write)?;
    let mut u = [0u8; UTSNAME];
    host!(SYS_uname, HostPtr::of_mut(&mut u))?;
    let machine = &mut u[4 * 65..5 * 65];
    machine.fill(0);
    machine[..6].copy_from_slice(b"x86_64");
    t.mem().write_bytes(a[0], &u)?;
    Ok(0)
}

pub(crate) fn sys_getrandom(t: &mut Thread, a: [u64; 6]) -> SysResult {
    const GRND_NONBLOCK: u32 = 1;
    const GRND_RANDOM: u32 = 2;
    const GRND_INSECURE: u32 = 4;
    let flags = a[2] as u32;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_INSECURE | GRND_RANDOM) == (GRND_INSECURE | GRND_RANDOM)
    {
        return Err(Errno::EINVAL);
    }
    // Clamped to INT_MAX before the range is checked (drivers/char/random.c, import_ubuf).
    let (p, n) = io_prefix(t, a[0], a[1].min(i32::MAX as u64), Access::Write)?;
    host!(SYS_getrandom, p, n, flags as u64)
}

pub(crate) fn sys_sysinfo(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let p = buf(
        t,
        a[0],
        std::mem::size_of::<sysinfo>() as u64,
        Access::Write,
    )?;
    host!(SYS_sysinfo, p)
}

pub(crate) fn sys_getrlimit(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if let Some((soft, hard)) = crate::rlimit::get(a[0] as u32 as i32) {
        return put_rlimit(t, a[1], soft, hard);
    }
    let p = buf(t, a[1], RLIMIT, Access::Write)?;
    host!(SYS_prlimit64, 0, a[0] as u32 as u64, 0, p)
}

pub(crate) fn sys_setrlimit(t: &mut Thread, a: [u64; 6]) -> SysResult {
    sys_prlimit64(t, [0, a[0], a[1], 0, 0, 0])
}

fn put_rlimit(t: &Thread, addr: u64, soft: u64, hard: u64) -> SysResult {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&soft.to_le_bytes());
    b[8..].copy_from_slice(&hard.to_le_bytes());
    t.mem().write_bytes(addr, &b)?;
    Ok(0)
}

/// RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK of this process are the guest's own (rlimit.rs);
/// everything else, and other processes, are the host's.
pub(crate) fn sys_prlimit64(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let pid = a[0] as u32 as i32;
    let res = a[1] as u32 as i32;
    if (pid == 0 || pid == t.proc.pid) && crate::rlimit::get(res).is_some() {
        let new = if a[2] != 0 {
            let p = buf(t, a[2], RLIMIT, Access::Read)?;
            // SAFETY: 16 readable guest bytes at `p`.
            let r: [u64; 2] = unsafe { std::ptr::read_unaligned(p.as_ptr() as *const [u64; 2]) };
            Some(r)
        } else {
            None
        };
        let (soft, hard) = crate::rlimit::get(res).unwrap_or((u64::MAX, u64::MAX));
        if let Some([s, h]) = new {
            crate::rlimit::set(res, s, h)?;
            // Another process's /proc/PID/limits shows it from now on.
            crate::procview::publish_limits(t.proc.personality.load(Ordering::Relaxed));
        }
        if a[3] != 0 {
            put_rlimit(t, a[3], soft, hard)?;
        }
        return Ok(0);
    }
    let new = opt_buf(t, a[2], RLIMIT, Access::Read)?;
    let old = opt_buf(t, a[3], RLIMIT, Access::Write)?;
    host!(
        SYS_prlimit64,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        new,
        old
    )
}

/// Calls with only integer arguments, passed as they are.
fn plain(nr: i64, a: [u64; 6]) -> SysResult {
    host!(nr, a[0], a[1], a[2], a[3], a[4], a[5])
}

macro_rules! plain_calls {
    ($($name:ident => $nr:expr;)*) => {
        $(pub(crate) fn $name(_t: &mut Thread, a: [u64; 6]) -> SysResult { plain($nr, a) })*
    };
}

plain_calls! {
    sys_getuid => SYS_getuid;
    sys_geteuid => SYS_geteuid;
    sys_getgid => SYS_getgid;
    sys_getegid => SYS_getegid;
    sys_setuid => SYS_setuid;
    sys_setgid => SYS_setgid;
    sys_setreuid => SYS_setreuid;
    sys_setregid => SYS_setregid;
    sys_setresuid => SYS_setresuid;
    sys_setresgid => SYS_setresgid;
    sys_setfsuid => SYS_setfsuid;
    sys_setfsgid => SYS_setfsgid;
    sys_sched_yield => SYS_sched_yield;
    sys_sched_get_priority_max => SYS_sched_get_priority_max;
    sys_sched_get_priority_min => SYS_sched_get_priority_min;
    sys_sched_getscheduler => SYS_sched_getscheduler;
    sys_getpriority => SYS_getpriority;
    sys_setpriority => SYS_setpriority;
    sys_ioprio_get => SYS_ioprio_get;
    sys_ioprio_set => SYS_ioprio_set;
}

pub(crate) fn sys_getresuid(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let r = buf(t, a[0], 4, Access::Write)?;
    let e = buf(t, a[1], 4, Access::Write)?;
    let s = buf(t, a[2], 4, Access::Write)?;
    host!(SYS_getresuid, r, e, s)
}

pub(crate) fn sys_getresgid(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let r = buf(t, a[0], 4, Access::Write)?;
    let e = buf(t, a[1], 4, Access::Write)?;
    let s = buf(t, a[2], 4, Access::Write)?;
    host!(SYS_getresgid, r, e, s)
}

pub(crate) fn sys_getgroups(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let n = a[0] as u32 as i32;
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    let p = if n == 0 {
        HostPtr::NULL
    } else {
        buf(t, a[1], n as u64 * 4, Access::Write)?
    };
    host!(SYS_getgroups, n as u64, p)
}

pub(crate) fn sys_setgroups(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let n = a[0] as u32 as i32;
    if !(0..=65536).contains(&n) {
        return Err(Errno::EINVAL);
    }
    let p = buf(t, a[1], n as u64 * 4, Access::Read)?;
    host!(SYS_setgroups, n as u64, p)
}

/// getcpu: a thread registered for rseq is on its virtual CPU (the `cpu_id` of its area,
/// node 0: `crate::vcpu`); any other thread on the host CPU it runs on.
pub(crate) fn sys_getcpu(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if let Some(cpu) = crate::rseq::current_cpu(t) {
        for (p, v) in [(a[0], cpu), (a[1], 0)] {
            if p != 0 {
                t.mem().write_u32(p, v).map_err(|_| Errno::EFAULT)?;
            }
        }
        return Ok(0);
    }
    let cpu = opt_buf(t, a[0], 4, Access::Write)?;
    let node = opt_buf(t, a[1], 4, Access::Write)?;
    host!(SYS_getcpu, cpu, node)
}

/// sched_getaffinity returns how many bytes of mask it wrote; the host writes them directly.
pub(crate) fn sys_sched_getaffinity(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let len = a[1] as u32 as u64;
    if len & 7 != 0 {
        return Err(Errno::EINVAL);
    }
    let p = buf(t, a[2], len, Access::Write)?;
    host!(SYS_sched_getaffinity, a[0] as u32 as u64, len, p)
}

pub(crate) fn sys_sched_setaffinity(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let len = a[1] as u32 as u64;
    let p = buf(t, a[2], len, Access::Read)?;
    let r = host!(SYS_sched_setaffinity, a[0] as u32 as u64, len, p);
    // rseq-registered threads choose their virtual CPUs within their affinity (vcpu.rs): a
    // change of one of this process's threads makes them look again.
    let pid = a[0] as u32 as i32;
    if r.is_ok() && (pid == 0 || t.proc.threads.registry().by_tid.contains_key(&pid)) {
        t.proc.vcpus.affinity_changed();
    }
    r
}

/// sched_getparam, sched_setparam and sched_setscheduler answer EINVAL for a null param or a
/// negative pid before they look at the memory (kernel/sched/syscalls.c).
fn sched_param_args(pid: u64, param: u64) -> Result<(), Errno> {
    if param == 0 || (pid as u32 as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub(crate) fn sys_sched_getparam(t: &mut Thread, a: [u64; 6]) -> SysResult {
    sched_param_args(a[0], a[1])?;
    let p = buf(t, a[1], 4, Access::Write)?;
    host!(SYS_sched_getparam, a[0] as u32 as u64, p)
}

pub(crate) fn sys_sched_setparam(t: &mut Thread, a: [u64; 6]) -> SysResult {
    sched_param_args(a[0], a[1])?;
    let p = buf(t, a[1], 4, Access::Read)?;
    host!(SYS_sched_setparam, a[0] as u32 as u64, p)
}

pub(crate) fn sys_sched_setscheduler(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if (a[1] as u32 as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    sched_param_args(a[0], a[2])?;
    let p = buf(t, a[2], 4, Access::Read)?;
    host!(
        SYS_sched_setscheduler,
        a[0] as u32 as u64,
        a[1] as u32 as u64,
        p
    )
}

pub(crate) fn sys_sched_rr_get_interval(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let p = buf(t, a[1], 16, Access::Write)?;
    host!(SYS_sched_rr_get_interval, a[0] as u32 as u64, p)
}

/// SCHED_ATTR_SIZE_VER0 (include/uapi/linux/sched/types.h).
const SCHED_ATTR_SIZE_VER0: u64 = 48;
/// The most of a struct sched_attr the kernel looks at (PAGE_SIZE).
const SCHED_ATTR_MAX: u64 = 4096;

pub(crate) fn sys_sched_getattr(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let size = a[2] as u32 as u64;
    // kernel/sched/syscalls.c, sched_getattr: these before anything else.
    if a[1] == 0
        || (a[0] as u32 as i32) < 0
        || !(SCHED_ATTR_SIZE_VER0..=SCHED_ATTR_MAX).contains(&size)
        || a[3] as u32 != 0
    {
        return Err(Errno::EINVAL);
    }
    let p = buf(t, a[1], size.max(48), Access::Write)?;
    host!(SYS_sched_getattr, a[0] as u32 as u64, p, size, a[3])
}

/// sched_setattr (kernel/sched/syscalls.c): EINVAL for a null attr, a negative pid or any
/// flags, before the struct is read. Its first field is its size: 0 means
/// SCHED_ATTR_SIZE_VER0; a size below that or above a page is E2BIG, and then the kernel writes
/// the size it knows into that field (sched_copy_attr), as it does when the bytes beyond the
/// struct it knows are not all zero. The host gets a copy of the bytes the kernel would read,
/// and its size answer is copied back.
pub(crate) fn sys_sched_setattr(t: &mut Thread, a: [u64; 6]) -> SysResult {
    if a[1] == 0 || (a[0] as u32 as i32) < 0 || a[2] as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let size = t.mem().read_u32(a[1]).map_err(|_| Errno::EFAULT)? as u64;
    let mut attr = vec![0u8; SCHED_ATTR_MAX as usize];
    let len = match size {
        0 => SCHED_ATTR_SIZE_VER0,
        s if (SCHED_ATTR_SIZE_VER0..=SCHED_ATTR_MAX).contains(&s) => s,
        _ => 4,
    };
    t.mem()
        .read_bytes(a[1], &mut attr[..len as usize])
        .map_err(|_| Errno::EFAULT)?;
    // The host writes its size answer into the copy on E2BIG: a mutable borrow.
    let r = host!(
        SYS_sched_setattr,
        a[0] as u32 as u64,
        HostPtr::of_mut(&mut attr[..])
    );
    if r == Err(Errno::E2BIG) {
        // put_user's failure is ignored there too.
        let _ = t.mem().write_bytes(a[1], &attr[..4]);
    }
    r
}

/// personality(2): only PER_LINUX execution is emulated; the value is kept per process
/// (`Process::personality`) and reported back; 0xffffffff only queries it.
pub(crate) fn sys_personality(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let p = a[0] as u32;
    let old = t.proc.personality.load(Ordering::Relaxed);
    if p != 0xffff_ffff {
        t.proc.personality.store(p, Ordering::Relaxed);
        crate::procview::publish_limits(p);
    }
    Ok(old as u64)
}

/// The kernel log is not the guest's to read (dmesg_restrict): EPERM.
pub(crate) fn sys_syslog(_t: &mut Thread, _a: [u64; 6]) -> SysResult {
    Err(Errno::EPERM)
}

pub(crate) fn sys_sethostname(t: &mut Thread, a: [u64; 6]) -> SysResult {
    set_uts_name(t, a, SYS_sethostname)
}

pub(crate) fn sys_setdomainname(t: &mut Thread, a: [u64; 6]) -> SysResult {
    set_uts_name(t, a, SYS_setdomainname)
}

/// sethostname and setdomainname (host call `nr`): a name of at most __NEW_UTS_LEN (64) bytes.
fn set_uts_name(t: &mut Thread, a: [u64; 6], nr: libc::c_long) -> SysResult {
    let len = a[1] as u32 as i32;
    if !(0..=64).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let p = buf(t, a[0], len as u64, Access::Read)?;
    host!(nr, p, len as u64)
}

/// capget/capset: header { u32 version; int pid; } and up to two 12-byte data records.
pub(crate) fn sys_capget(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let h = buf(t, a[0], 8, Access::Write)?;
    let d = opt_buf(t, a[1], 24, Access::Write)?;
    host!(SYS_capget, h, d)
}

pub(crate) fn sys_capset(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let h = buf(t, a[0], 8, Access::Write)?;
    let d = buf(t, a[1], 24, Access::Read)?;
    host!(SYS_capset, h, d)
}
