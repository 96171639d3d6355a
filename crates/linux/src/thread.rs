//! Guest threads: each runs on its own host thread with its own CPU state, sharing the
//! process's address space, signal dispositions and file descriptors.
//!
//! A guest thread's tid is its host thread's real tid, so tgkill, /proc/<pid>/task and PI
//! futexes (whose words hold owner tids) work natively in the host kernel. The host thread is
//! made with `std::thread`, which already shares everything Linux shares for CLONE_THREAD.
//!
//! Ending: exit(2) ends one thread (robust list, its shadow stack, clear_child_tid); when the
//! last one goes, the process ends with that thread's status, as on Linux.
//! exit_group(2) and fatal signals end the whole host process at once (`exit::finish`): the
//! other threads are asked to stop at their next block boundary so they do no more guest work
//! meanwhile, and the host's exit_group takes care of threads blocked in host calls.

use crate::errno::{Errno, SysResult};
use crate::process::{ExitRequest, Thread};
use crate::signals;
use crate::thread_group::{others_regs, park_forever, set_me, shared_of, stop_others};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

pub use crate::abi::*;

/// Host stack of a guest thread's host thread: cetbox's own call depth is shallow (the run
/// loop, one syscall, one signal delivery); guest stacks are guest memory.
const HOST_STACK: usize = 512 * 1024;

/// Ends the whole process (exit_group, a fatal signal, the last thread's exit). Only the
/// first caller does it; others park until the host process is gone.
pub fn end_process(t: &Thread, how: ExitRequest) -> ! {
    if t.proc.threads.exiting.swap(true, Ordering::AcqRel) {
        park_forever();
    }
    crate::thread_group::ENDING.store(true, Ordering::Release);
    stop_others(t);
    if let ExitRequest::Signal(sig) = how {
        if crate::coredump::dumps_core(sig) {
            let others = others_regs(t);
            let info = t
                .fatal_siginfo
                .unwrap_or_else(|| signals::SigInfo::new(sig, 0x80));
            if crate::coredump::dump(t, sig, &info, t.orig_rax, &others) {
                crate::coredump::dumped::report_dumped(t.proc.pid);
            }
        }
    }
    exit_robust_lists_of_process(t);
    crate::exit::finish(&t.proc, how)
}

/// Finishes a thread whose run loop returned `how`. Returns only when the thread alone is
/// done and others remain; the caller then ends its host thread (or parks, on the main one).
pub fn finish_thread(t: &mut Thread, how: ExitRequest) {
    // The status as wait reports it, for PTRACE_EVENT_EXIT.
    let status = match how {
        ExitRequest::Thread(c) | ExitRequest::Group(c) => ((c & 0xff) as u64) << 8,
        ExitRequest::Signal(s) => s as u64,
    };
    crate::syscalls::ptrace::stop::exit_event(t, status);
    let code = match how {
        ExitRequest::Thread(code) => code,
        other => end_process(t, other),
    };
    if t.proc.threads.exiting() {
        park_forever();
    }
    let traced = crate::syscalls::ptrace::stop::traced(t);
    release(t);
    let last = t.proc.threads.remove(Some(t.tid)) == 0;
    if last {
        // The process's status is the last thread's (as observed on Linux 6.18, even when the
        // leader exited earlier with another code).
        end_process(t, ExitRequest::Group(code));
    }
    if t.clear_child_tid != 0 {
        if traced {
            clear_child_tid_at_exit(t);
        } else {
            clear_child_tid(t);
        }
    }
}

/// For a thread a guest tracer traces, whose exit the tracer sees: the host kernel clears and
/// wakes the guest's clear_child_tid word as this host thread exits (set_tid_address), as
/// Linux does in mm_release during do_exit. A joiner then goes on only once the thread has
/// exited, so its tracer sees the exit before anything the joiner does next (the process's
/// exit, in which the thread's own exit report would be lost). The host C library's own word
/// for this thread is then never cleared, so it never reuses this host stack: each traced
/// thread's exit costs its stack.
fn clear_child_tid_at_exit(t: &Thread) {
    let a = t.clear_child_tid;
    if t.mem().check(a, 4, cetbox_mem::Access::Write).is_err() {
        return;
    }
    // SAFETY: set_tid_address records an address the kernel writes (0, then a futex wake)
    // when this host thread exits: a checked, writable guest word (identity-mapped memory).
    unsafe {
        libc::syscall(libc::SYS_set_tid_address, a);
    }
}

/// The kernel's mm_release for an exiting thread, in its order: robust futexes, then the
/// shadow stack, then clear_child_tid (done by the caller, last, since a joiner may free the
/// thread's memory as soon as it sees the tid cleared).
fn release(t: &mut Thread) {
    exit_robust_list(t);
    // Walked: the host kernel need not walk it again when the host thread ends.
    crate::syscalls::process::set_host_robust_list(0);
    crate::shstk::free_owned(t);
    signals::host::unregister_thread(t);
    crate::syscalls::ptrace::thread_exit(t);
    crate::procview::thread_exit();
    crate::syscalls::process::forget_comm(t);
}

fn clear_child_tid(t: &Thread) {
    let a = t.clear_child_tid;
    if t.mem().write_u32(a, 0).is_ok() {
        host_futex_wake(a, 1, false);
    }
}

/// FUTEX_WAKE on the host at a (checked) guest address.
fn host_futex_wake(addr: u64, n: u32, private: bool) {
    let op = libc::FUTEX_WAKE | if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    // SAFETY: `addr` is a checked, writable guest word (identity-mapped host memory); the
    // other arguments are integers.
    unsafe {
        libc::syscall(libc::SYS_futex, addr, op, n, 0usize, 0usize, 0u32);
    }
}

const ROBUST_LIST_LIMIT: usize = 2048;

/// exit_robust_list: marks the futexes the dying thread still holds OWNER_DIED and wakes one
/// waiter of each, so robust mutexes report EOWNERDEAD to the next locker.
fn exit_robust_list(t: &mut Thread) {
    walk_robust_list(t, t.tid, t.robust_list);
}

/// The robust lists of every thread of a process that ends all at once (exit_group, a fatal
/// signal): Linux's do_exit runs exit_robust_list for each of its threads (exit_mm,
/// futex_exit_release), so a process waiting on a robust mutex one of them held gets
/// EOWNERDEAD instead of waiting forever. `t` is the thread ending the process; the others
/// have been asked to stop.
fn exit_robust_lists_of_process(t: &Thread) {
    let others: Vec<(i32, (u64, u64))> = t
        .proc
        .threads
        .registry()
        .by_tid
        .iter()
        .filter(|(tid, _)| **tid != t.tid)
        .map(|(tid, s)| {
            let head = s.robust_head.load(Ordering::Relaxed);
            (*tid, (head, s.robust_len.load(Ordering::Relaxed)))
        })
        .collect();
    for (tid, list) in others {
        walk_robust_list(t, tid, list);
    }
    walk_robust_list(t, t.tid, t.robust_list);
}

/// Walks the robust list (head, len) of thread `tid` of `t`'s process (kernel/futex/core.c,
/// exit_robust_list).
fn walk_robust_list(t: &Thread, tid: i32, (head, len): (u64, u64)) {
    if head == 0 || len == 0 {
        return;
    }
    let mem = t.mem();
    let (Ok(first), Ok(offset), Ok(pending)) = (
        mem.read_u64(head),
        mem.read_u64(head + 8),
        mem.read_u64(head + 16),
    ) else {
        return;
    };
    let offset = offset as i64;
    let mut entry = first;
    let mut n = 0;
    while entry & !1 != head {
        let Ok(next) = mem.read_u64(entry & !1) else {
            return;
        };
        if entry != pending {
            futex_death(
                t,
                tid,
                (entry & !1).wrapping_add(offset as u64),
                entry & 1 != 0,
                false,
            );
        }
        entry = next;
        n += 1;
        if n >= ROBUST_LIST_LIMIT {
            break;
        }
    }
    if pending != 0 {
        futex_death(
            t,
            tid,
            (pending & !1).wrapping_add(offset as u64),
            pending & 1 != 0,
            true,
        );
    }
}

fn futex_death(t: &Thread, tid: i32, uaddr: u64, pi: bool, pending_op: bool) {
    if uaddr & 3 != 0 {
        return;
    }
    let mem = t.mem();
    let Ok(uval) = mem.read_u32(uaddr) else {
        return;
    };
    if uval & FUTEX_TID_MASK == 0 && pending_op && !pi {
        // Died between setting list_op_pending and taking the lock: a waiter may have been
        // handed the wakeup meant for us.
        host_futex_wake(uaddr, 1, false);
        return;
    }
    let tid = tid as u32;
    let mut was = 0u32;
    let r = mem.atomic_rmw(uaddr, 4, &mut |old| {
        let old = old as u32;
        was = old;
        if old & FUTEX_TID_MASK != tid {
            return None;
        }
        Some(((old & FUTEX_WAITERS) | FUTEX_OWNER_DIED) as u64)
    });
    if r.is_ok() && was & FUTEX_TID_MASK == tid && !pi && was & FUTEX_WAITERS != 0 {
        host_futex_wake(uaddr, 1, false);
    }
}

/// A validated request for a new thread (from clone or clone3).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneRequest {
    pub flags: u64,
    /// The child's initial stack pointer (0: the parent's).
    pub sp: u64,
    /// clone3's stack_size (0 for clone), which sizes the new shadow stack.
    pub stack_size: u64,
    pub parent_tid: u64,
    pub child_tid: u64,
    pub tls: u64,
    /// Where CLONE_PIDFD stores the pidfd.
    pub pidfd: u64,
}

/// Moves a new thread to its host thread.
struct Handoff(Thread);

impl Handoff {
    fn into_inner(self) -> Thread {
        self.0
    }
}

// SAFETY: the only non-Send part of a Thread is the CPU's decoded-block cache (Rc blocks).
// The child's CPU comes from `Cpu::fork`, whose cache is new and empty, so no Rc is shared
// with the parent's host thread; from the move on, only the child's host thread uses it.
unsafe impl Send for Handoff {}

/// Creates a guest thread (clone with CLONE_THREAD). Returns the child's tid.
pub fn spawn(t: &mut Thread, r: &CloneRequest) -> SysResult {
    if r.flags & CLONE_SETTLS != 0 && r.tls >= crate::shstk::TASK_SIZE_MAX {
        return Err(Errno::EPERM);
    }
    if t.proc.threads.exiting() {
        return Err(signals::ERESTARTNOINTR);
    }
    let proc = t.proc.clone();
    let mut child = Thread::new(proc.clone(), 0);
    child.cpu = t.cpu.fork(proc.mem.clone());
    // An ended thread's engine, with what it translated, if the process kept one.
    match proc.engines.take() {
        Some((engine, stop)) => {
            child.engine = engine;
            child.stop = stop;
        }
        None => child.engine = t.engine.fork(),
    }
    child.cpu.gpr[0] = 0;
    if r.sp != 0 {
        child.cpu.gpr[4] = r.sp;
    }
    if r.flags & CLONE_SETTLS != 0 {
        child.cpu.fs_base = r.tls;
    }
    child.shstk = t.shstk;
    crate::shstk::on_clone(&mut child, r.flags, r.stack_size)?;
    child.signals.mask = t.signals.mask;
    let ptrace_event = crate::syscalls::ptrace::stop::clone_event(t, r.flags, None);
    child.ptrace_auto_attach = ptrace_event.map(|(_, inherit)| inherit);
    child.orig_rax = t.orig_rax;
    if r.flags & (CLONE_VM | CLONE_VFORK) != CLONE_VM {
        child.signals.altstack = t.signals.altstack;
    }
    if r.flags & CLONE_CHILD_CLEARTID != 0 {
        child.clear_child_tid = r.child_tid;
    }
    let comm = crate::syscalls::process::comm(t);
    let new_shstk = (
        child.shstk.base,
        child.shstk.size,
        r.flags & CLONE_VFORK == 0,
    );
    t.proc.threads.update(|r| r.live += 1);

    let (tx, rx) = mpsc::channel::<Result<i32, Errno>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let req = *r;
    let handoff = Handoff(child);
    let parent_settid = Arc::new(std::sync::Once::new());
    let child_settid = parent_settid.clone();
    // The host thread starts with every signal blocked: one sent to the new tid before the
    // child has registered for host signals stays pending in the host kernel (`child_main`
    // registers, then sets the guest's mask) instead of being taken for a process signal.
    let mask = signals::host::host_mask();
    signals::host::set_host_mask(!0);
    // Readers of /proc/self/task/TID/* wait for the new thread's slot (`procview`).
    crate::procview::creating();
    let spawned = std::thread::Builder::new()
        .stack_size(HOST_STACK)
        .spawn(move || {
            let child = handoff.into_inner();
            child_main(child, req, comm, tx, &child_settid);
            drop(done_tx);
        });
    signals::host::set_host_mask(mask);
    let handle = match spawned {
        Ok(h) => h,
        Err(_) => {
            crate::procview::creation_failed();
            t.proc.threads.remove(None);
            // The Thread went with the closure that never ran; its shadow stack is still
            // mapped.
            if new_shstk.2 && new_shstk.0 != 0 && new_shstk.0 != t.shstk.base {
                let _ = t.mem().unmap(new_shstk.0, new_shstk.1);
            }
            return Err(Errno::EAGAIN);
        }
    };
    // The child's tid without waiting for it to be scheduled (with other threads computing,
    // that wait is a host scheduling round per thread created). Only a child that must
    // unshare its fd table or fs context may still fail, and is waited for.
    let known = if child_unshares(r.flags) {
        None
    } else {
        host_tid(&handle)
    };
    drop(handle);
    let tid = match known {
        Some(tid) => tid,
        None => match rx.recv() {
            Ok(Ok(tid)) => tid,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Errno::EAGAIN),
        },
    };
    // Linux writes parent_tid before clone returns and before the child runs; whichever of
    // the two host threads gets here first writes it, once.
    if r.flags & CLONE_PARENT_SETTID != 0 {
        parent_settid.call_once(|| {
            let _ = t.mem().write_u32(r.parent_tid, tid as u32);
        });
    }
    if r.flags & CLONE_PIDFD != 0 {
        // PIDFD_THREAD (O_EXCL): a pidfd for this very thread.
        // SAFETY: integer arguments only.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, libc::O_EXCL) };
        if fd >= 0 {
            let _ = t.mem().write_u32(r.pidfd, fd as u32);
        }
    }
    if let Some((event, _)) = ptrace_event {
        crate::syscalls::ptrace::stop::event_stop(t, event, tid as u64);
    }
    if r.flags & CLONE_VFORK != 0 {
        // The parent sleeps until the child exits (a thread cannot exec on its own here).
        let _ = done_rx.recv();
    }
    Ok(tid as u64)
}

/// Whether a clone with `flags` gives the child its own fd table or fs context, which the
/// child makes with unshare (and which can fail).
fn child_unshares(flags: u64) -> bool {
    flags & (CLONE_FILES | CLONE_FS) != CLONE_FILES | CLONE_FS
}

/// The host tid of a thread just started by `std::thread`, without waiting for it to run:
/// the C library's pthread_create has it before returning (glibc's create_thread passes
/// CLONE_PARENT_SETTID), and pthread_getcpuclockid(3) encodes it in the thread's CPU-time
/// clock, which Linux defines as `(~tid << 3) | CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_SCHED`
/// (include/linux/posix-timers_types.h, MAKE_THREAD_CPUCLOCK). The encoding is checked once
/// on the calling thread against gettid; None if the C library encodes it otherwise.
fn host_tid<T>(h: &std::thread::JoinHandle<T>) -> Option<i32> {
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::OnceLock;
    fn decode(p: libc::pthread_t) -> Option<i32> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: `p` names a thread that has not been joined or detached yet (its handle is
        // alive), and `clock` is a valid clockid_t to fill.
        if unsafe { libc::pthread_getcpuclockid(p, &mut clock) } != 0 || clock & 7 != 6 {
            return None;
        }
        Some(!(clock >> 3))
    }
    // A fact about the host C library, the same for every thread and process: checked once.
    static WORKS: OnceLock<bool> = OnceLock::new();
    // SAFETY: pthread_self has no preconditions.
    let works = *WORKS.get_or_init(|| decode(unsafe { libc::pthread_self() }) == Some(gettid()));
    if !works {
        return None;
    }
    decode(h.as_pthread_t()).filter(|&tid| tid > 0)
}

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The new host thread: takes the real tid, does the kernel's child-side setup, reports to
/// the parent and runs the guest.
fn child_main(
    mut t: Thread,
    r: CloneRequest,
    comm: [u8; 16],
    tx: mpsc::Sender<Result<i32, Errno>>,
    parent_settid: &std::sync::Once,
) {
    let tid = gettid();
    t.tid = tid;
    // Unshared fd table or fs context: give this host thread private copies.
    let mut unshare = 0;
    if r.flags & CLONE_FILES == 0 {
        unshare |= libc::CLONE_FILES;
    }
    if r.flags & CLONE_FS == 0 {
        unshare |= libc::CLONE_FS;
    }
    // SAFETY: unshare of the calling thread's own fd table / fs context.
    if unshare != 0 && unsafe { libc::unshare(unshare) } != 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOMEM);
        t.proc.threads.remove(None);
        crate::procview::creation_failed();
        crate::shstk::free_owned(&mut t);
        let _ = tx.send(Err(Errno(e)));
        return;
    }
    // Registered for host signals before they are unblocked (the thread started with all of
    // them blocked, see `spawn`).
    signals::host::register_thread(&mut t);
    // Its slot before anything that may wait (`procview::Waiting`).
    crate::procview::thread_started(&t);
    let mask = t.signals.mask;
    signals::deliver::set_mask(&mut t, mask);
    let s = shared_of(&t);
    set_me(&s);
    t.proc.threads.registry().by_tid.insert(tid, s);
    crate::syscalls::process::inherit_comm(&t, comm);
    // Linux writes parent_tid before the child first runs and child_tid in the child before
    // it returns to user mode; failures are ignored.
    if r.flags & CLONE_PARENT_SETTID != 0 {
        parent_settid.call_once(|| {
            let _ = t.mem().write_u32(r.parent_tid, tid as u32);
        });
    }
    if r.flags & CLONE_CHILD_SETTID != 0 {
        let _ = t.mem().write_u32(r.child_tid, tid as u32);
    }
    // The parent may not be listening (it knew the tid without waiting).
    let _ = tx.send(Ok(tid));
    drop(tx);
    // A traced creator's tracer attaches to the new thread before it runs guest code.
    crate::syscalls::ptrace::stop::await_attach(&mut t, true);
    let how = crate::run::run_thread(&mut t);
    finish_thread(&mut t, how);
    // Not when the process is ending: no thread will take it.
    if !t.proc.threads.exiting() {
        let proc = t.proc.clone();
        proc.engines.give(t.engine, t.stop);
    }
}

#[cfg(test)]
mod tests {
    /// The tid `spawn` reads from a new thread's CPU-time clock is the one the thread itself
    /// gets from gettid (on a C library that encodes it otherwise `host_tid` must say None,
    /// which this host's glibc does not).
    #[test]
    fn host_tid_is_the_new_threads_gettid() {
        for _ in 0..20 {
            let (tx, rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                tx.send(super::gettid()).expect("send");
                // Alive until the parent has read its tid.
                let _ = go_rx.recv();
            });
            let known = super::host_tid(&h);
            let real = rx.recv().expect("tid");
            assert_eq!(known, Some(real));
            drop(go_tx);
            h.join().expect("join");
        }
    }
}
