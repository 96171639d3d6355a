//! Restartable sequences: the rseq(2) system call and what the kernel does for a registered
//! thread on its way back to user mode (Linux kernel/rseq.c; the area's layout is
//! include/uapi/linux/rseq.h, struct rseq and struct rseq_cs).
//!
//! The kernel's guarantee, that a registered thread's `cpu_id` is current at every user
//! instruction and that a critical section is aborted to its abort handler whenever the thread
//! was preempted, migrated or is given a signal inside it, holds here because cetbox schedules
//! registered threads onto virtual CPUs itself (`crate::vcpu`): a thread that takes its
//! virtual CPU back after another thread held it, or takes another one, is "preempted" or
//! "migrated", and `notify_resume` runs before its next guest instruction. Signal delivery
//! calls `signal_deliver` before building the frame (arch/x86/kernel/signal.c, setup_rt_frame).

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use crate::vcpu::Lease;

/// The size of the original struct rseq (ORIG_RSEQ_SIZE), and its alignment.
const ORIG_RSEQ_SIZE: u32 = 32;
/// offsetof(struct rseq, end) in Linux 6.6 (mm_cid is the last field): the feature size the
/// loader advertises with AT_RSEQ_FEATURE_SIZE.
pub const FEATURE_SIZE: u64 = 28;
/// __alignof__(struct rseq): AT_RSEQ_ALIGN.
pub const ALIGN: u64 = 32;
const RSEQ_FLAG_UNREGISTER: i32 = 1;
/// cpu_id after unregistration (RSEQ_CPU_ID_UNINITIALIZED).
const CPU_ID_UNINITIALIZED: u32 = -1i32 as u32;

/// Field offsets in struct rseq.
const CPU_ID_START: u64 = 0;
const CPU_ID: u64 = 4;
const RSEQ_CS: u64 = 8;
const FLAGS: u64 = 16;
const NODE_ID: u64 = 20;
const MM_CID: u64 = 24;

/// A thread's registered rseq area (task_struct's rseq, rseq_len, rseq_sig) and its virtual
/// CPU lease.
#[derive(Clone, Debug)]
pub struct Registration {
    pub addr: u64,
    pub len: u32,
    pub sig: u32,
    pub lease: Lease,
    /// The update at the last acquisition failed: SIGSEGV is due (force_sigsegv(0)).
    pub fault: bool,
}

/// The kernel's put_user/get_user failing, or a descriptor it rejects: either way the thread
/// gets SIGSEGV.
#[derive(Debug)]
pub struct Invalid;

/// SYSCALL_DEFINE4(rseq, ...) of kernel/rseq.c, checks in the kernel's order.
pub(crate) fn sys_rseq(t: &mut Thread, a: [u64; 6]) -> SysResult {
    let addr = a[0];
    let len = a[1] as u32;
    let flags = a[2] as u32 as i32;
    let sig = a[3] as u32;
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags & !RSEQ_FLAG_UNREGISTER != 0 {
            return Err(Errno::EINVAL);
        }
        let Some(r) = &t.rseq else {
            return Err(Errno::EINVAL);
        };
        if r.addr != addr || r.len != len {
            return Err(Errno::EINVAL);
        }
        if r.sig != sig {
            return Err(Errno::EPERM);
        }
        // rseq_reset_rseq_cpu_node_id: a fault leaves the thread registered.
        let m = t.mem();
        m.write_u32(addr + CPU_ID_START, 0)
            .and_then(|_| m.write_u32(addr + CPU_ID, CPU_ID_UNINITIALIZED))
            .and_then(|_| m.write_u32(addr + NODE_ID, 0))
            .and_then(|_| m.write_u32(addr + MM_CID, 0))
            .map_err(|_| Errno::EFAULT)?;
        // The call kept the virtual CPU (`keep_across`): give it back with the registration.
        leave(t);
        t.rseq = None;
        return Ok(0);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some(r) = &t.rseq {
        if r.addr != addr || r.len != len {
            return Err(Errno::EINVAL);
        }
        if r.sig != sig {
            return Err(Errno::EPERM);
        }
        return Err(Errno(libc::EBUSY));
    }
    let aligned = |n: u64| addr.is_multiple_of(n);
    if len < ORIG_RSEQ_SIZE
        || (len == ORIG_RSEQ_SIZE && !aligned(ORIG_RSEQ_SIZE as u64))
        || (len != ORIG_RSEQ_SIZE && (!aligned(ALIGN) || (len as u64) < FEATURE_SIZE))
    {
        return Err(Errno::EINVAL);
    }
    // Only access_ok: an unmapped area is accepted, and the write of cpu_id on the way back
    // to user mode fails with SIGSEGV.
    if !crate::usermem::access_ok(addr, len as u64) {
        return Err(Errno::EFAULT);
    }
    let home = t.tid.unsigned_abs() as usize % t.proc.vcpus.count().max(1);
    t.rseq = Some(Registration {
        addr,
        len,
        sig,
        lease: Lease::new(home),
        fault: false,
    });
    Ok(0)
}

/// The kernel's rseq_handle_notify_resume on the way back to user mode with registers: the
/// critical-section fix-up (rseq_ip_fixup), then the CPU fields (rseq_update_cpu_node_id).
/// An error means SIGSEGV for the thread.
pub fn notify_resume(t: &mut Thread) -> Result<(), Invalid> {
    let Some(r) = &t.rseq else { return Ok(()) };
    let (addr, sig, vcpu) = (r.addr, r.sig, r.lease.vcpu);
    if let Some(ip) = ip_fixup(t, addr, sig)? {
        t.cpu.rip = ip;
    }
    let m = t.mem();
    let cpu = t.proc.vcpus.cpu_id(vcpu);
    m.write_u32(addr + CPU_ID_START, cpu)
        .and_then(|_| m.write_u32(addr + CPU_ID, cpu))
        .and_then(|_| m.write_u32(addr + NODE_ID, 0))
        .and_then(|_| m.write_u32(addr + MM_CID, vcpu as u32))
        .map_err(|_| Invalid)
}

/// rseq_ip_fixup with rseq_get_rseq_cs and rseq_need_restart: returns the abort handler's
/// address when the thread's RIP lies inside the registered critical section.
fn ip_fixup(t: &Thread, addr: u64, sig: u32) -> Result<Option<u64>, Invalid> {
    let m = t.mem();
    let clear = || m.write_u64(addr + RSEQ_CS, 0).map_err(|_| Invalid);
    let ptr = m.read_u64(addr + RSEQ_CS).map_err(|_| Invalid)?;
    if ptr == 0 {
        // Not nested over a critical section: the kernel clears the (null) pointer anyway.
        clear()?;
        return Ok(None);
    }
    if ptr >= crate::abi::TASK_SIZE {
        return Err(Invalid);
    }
    // struct rseq_cs: version, flags, start_ip, post_commit_offset, abort_ip.
    let version = m.read_u32(ptr).map_err(|_| Invalid)?;
    let cs_flags = m.read_u32(ptr + 4).map_err(|_| Invalid)?;
    let start_ip = m.read_u64(ptr + 8).map_err(|_| Invalid)?;
    let post_commit_offset = m.read_u64(ptr + 16).map_err(|_| Invalid)?;
    let abort_ip = m.read_u64(ptr + 24).map_err(|_| Invalid)?;
    let task_size = crate::abi::TASK_SIZE;
    let end = start_ip.wrapping_add(post_commit_offset);
    if start_ip >= task_size || end >= task_size || abort_ip >= task_size || version > 0 {
        return Err(Invalid);
    }
    if end < start_ip {
        return Err(Invalid);
    }
    // The abort handler must not lie inside the critical section.
    if abort_ip.wrapping_sub(start_ip) < post_commit_offset {
        return Err(Invalid);
    }
    let found = m.read_u32(abort_ip.wrapping_sub(4)).map_err(|_| Invalid)?;
    if found != sig {
        return Err(Invalid);
    }
    if t.cpu.rip.wrapping_sub(start_ip) >= post_commit_offset {
        clear()?;
        return Ok(None);
    }
    // rseq_need_restart: any flag, in the descriptor or the area, is refused (the
    // RSEQ_CS_FLAG_NO_RESTART_ON_* flags are deprecated and rejected since Linux 6.0).
    if cs_flags != 0 {
        return Err(Invalid);
    }
    let area_flags = m.read_u32(addr + FLAGS).map_err(|_| Invalid)?;
    if area_flags != 0 {
        return Err(Invalid);
    }
    clear()?;
    Ok(Some(abort_ip))
}

/// rseq_signal_deliver, before a signal frame is built: the fix-up as on any return to user
/// mode (so the frame saves the abort handler's address). An error means the delivery turns
/// into force_sigsegv(sig).
pub fn signal_deliver(t: &mut Thread) -> Result<(), Invalid> {
    notify_resume(t)
}

/// The CPU a registered thread is on (its virtual CPU), for getcpu; None if unregistered.
pub fn current_cpu(t: &Thread) -> Option<u32> {
    let r = t.rseq.as_ref()?;
    Some(t.proc.vcpus.cpu_id(r.lease.vcpu))
}

/// A fork child keeps the registration (with a fresh lease in its own virtual CPUs), except
/// one that shares the parent's memory (CLONE_VM), as kernel/rseq.c rseq_fork decides.
pub fn after_fork(t: &mut Thread, clone_vm: bool) {
    if clone_vm {
        t.rseq = None;
        return;
    }
    let n = t.proc.vcpus.count().max(1);
    if let Some(r) = t.rseq.as_mut() {
        r.lease = Lease::new(r.lease.vcpu % n);
        r.fault = false;
    }
}

/// Takes a virtual CPU for a registered thread about to run guest code, with the update and
/// fix-up a preemption or migration calls for. Returns false when the thread must not run
/// guest code now: the wait was interrupted (its stop flag, the process ending), or the
/// update failed (`Registration::fault`; the run loop then forces SIGSEGV). Unregistered
/// threads take no lease.
pub fn enter(t: &mut Thread) -> bool {
    let Some(r) = t.rseq.as_mut() else {
        return true;
    };
    if r.lease.held {
        // Kept across a quick syscall (`keep_across`): given back if a waiter asked for it.
        if !t.proc.vcpus.yield_requested(r.lease.vcpu) {
            return true;
        }
        r.lease.held = false;
        t.proc.vcpus.release(r.lease.vcpu);
    }
    let Some(moved) = t.proc.vcpus.acquire(t.tid, &mut r.lease, &t.stop, &t.proc) else {
        return false;
    };
    if !moved && !r.lease.notify {
        return true;
    }
    r.lease.notify = false;
    if notify_resume(t).is_err() {
        leave(t);
        if let Some(r) = t.rseq.as_mut() {
            r.fault = true;
        }
        return false;
    }
    true
}

/// Whether a thread leaving guest code for syscall `nr` keeps its virtual CPU: only for the
/// syscalls that never sleep (`coredump::may_block`; sched_yield excepted), rseq itself and
/// the creation of a thread (clone or clone3 with CLONE_THREAD and without CLONE_VFORK), and
/// not while a tracer or debugger may stop the thread inside the syscall.
pub fn keep_across(t: &Thread, nr: u64) -> bool {
    if !t.rseq.as_ref().is_some_and(|r| r.lease.held)
        || crate::debug::active()
        || crate::syscalls::ptrace::stop::traced(t)
    {
        return false;
    }
    let creates_thread = |flags: u64| {
        flags & libc::CLONE_THREAD as u64 != 0 && flags & libc::CLONE_VFORK as u64 == 0
    };
    match nr as i64 {
        libc::SYS_sched_yield => false,
        libc::SYS_rseq => true,
        libc::SYS_clone => creates_thread(t.cpu.gpr[7]),
        libc::SYS_clone3 => t.mem().read_u64(t.cpu.gpr[7]).is_ok_and(creates_thread),
        _ => !crate::coredump::may_block(nr),
    }
}

/// Gives back the thread's virtual CPU, if it holds one.
pub fn leave(t: &mut Thread) {
    if let Some(r) = t.rseq.as_mut() {
        if r.lease.held {
            r.lease.held = false;
            t.proc.vcpus.release(r.lease.vcpu);
        }
    }
}

/// After `enter` refused because the update failed: SIGSEGV, as force_sigsegv(0) in
/// rseq_handle_notify_resume.
pub fn deliver_fault(t: &mut Thread) {
    let due = t
        .rseq
        .as_mut()
        .is_some_and(|r| std::mem::take(&mut r.fault));
    if due {
        crate::signals::deliver::force_sigsegv(t, 0);
    }
}
