//! New guest processes: fork, vfork and clone without CLONE_VM make a host child process that
//! keeps running the guest under cetbox.
//!
//! Guest memory is identity-mapped host memory and cetbox's page table is itself private
//! anonymous memory, so a host fork gives the child a copy-on-write copy of the whole guest
//! address space at the same addresses, together with a consistent copy of cetbox's own state.
//! The child then only fixes what depends on its identity: its pid and tid, the host-signal
//! registry (only the forking thread survives), the process state shared by threads (a fresh
//! `Process` so that later changes in the parent do not leak into it), and the clone flags'
//! effects (SETTLS, CHILD_SETTID, CHILD_CLEARTID, a new stack).
//!
//! vfork and clone(CLONE_VM | CLONE_VFORK) (posix_spawn) are emulated by a fork plus a wait:
//! the parent blocks until the child execs or exits, which keeps vfork's ordering guarantee.
//! Memory is not shared with the child, but the effect of sharing is reproduced where programs
//! rely on it: when the child execs or exits, it sends what it wrote back to the parent, which
//! writes it into its own memory before it resumes. (glibc's posix_spawn reports a failed exec
//! this way, through a variable the child writes.) The wait uses a pipe private to cetbox: the
//! child holds the write end until then.
//!
//! What the child wrote is found with /proc/self/pagemap: a private page the child holds
//! alone (PM_MMAP_EXCLUSIVE) was copied on write since the fork. But a write by the parent
//! copies too, and leaves the child alone with the old page: sending those pages would put
//! back, under the parent's other threads (which run on, as they do on Linux), what they wrote
//! since the fork (glibc's nptl/tst-exec5, whose main thread runs on while a thread
//! posix_spawns, crashed intermittently). So when the parent has other threads, the child first forks a holder process
//! (`hold_snapshot`) that keeps the memory as at the fork: the pages stay shared with it
//! whatever the parent does, the child holds alone only those it wrote itself, and the child
//! sends only the bytes that differ from the holder's (other threads may write other bytes of
//! the same page). A single-threaded parent writes nothing while it waits but what the clone
//! itself stores for it (CLONE_PARENT_SETTID, CLONE_PIDFD), which it stores again after the
//! child's pages.
//!
//! The bytes go only where the mapping is still the one of the fork, on both sides: another
//! thread of the parent may unmap, replace or move a mapping while the child runs (on Linux the
//! child's bytes went with the old mapping), and the child may map its own (which Linux would
//! have shared, and cetbox cannot). A mapping watch of the address space (`cetbox_mem`'s
//! `space/watch.rs`), begun before the host fork and copied into the child with its memory,
//! records what changed on each side. The parent writes a run only into pages of the same
//! mapping and kind (a shadow stack only gets the child's shadow-stack runs), as a forced write
//! (`receive_pages`). The parent's wait is killable, as Linux's (`read_killable`).

use crate::errno::{Errno, SysResult};
use crate::process::Thread;
use std::sync::atomic::Ordering;

use crate::abi::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FS, CLONE_NEWNS, CLONE_NEWPID,
    CLONE_NEWUSER, CLONE_PARENT, CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_PTRACE, CLONE_SETTLS,
    CLONE_SIGHAND, CLONE_THREAD, CLONE_UNTRACED, CLONE_VFORK, CLONE_VM, CSIGNAL,
};

/// Flags whose effect cetbox applies itself; the rest go to the host clone.
const EMULATED: u64 = CSIGNAL
    | CLONE_VM
    | CLONE_VFORK
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_PIDFD
    | CLONE_DETACHED
    | CLONE_PTRACE
    | CLONE_UNTRACED;

/// Closes `fd` (ignoring errors).
fn close(fd: i32) {
    // SAFETY: closing a descriptor cetbox owns.
    unsafe { libc::close(fd) };
}

/// The checks of the kernel's copy_process that concern flag combinations, for a clone that
/// creates a process (no CLONE_VM, or CLONE_VM with CLONE_VFORK).
fn check_flags(flags: u64) -> Result<(), Errno> {
    if flags & (CLONE_NEWNS | CLONE_FS) == (CLONE_NEWNS | CLONE_FS)
        || flags & (CLONE_NEWUSER | CLONE_FS) == (CLONE_NEWUSER | CLONE_FS)
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (CLONE_PIDFD | CLONE_DETACHED) == (CLONE_PIDFD | CLONE_DETACHED) {
        return Err(Errno::EINVAL);
    }
    // Sharing signal handlers or being a thread needs a shared address space in one process,
    // which a host child cannot have: those clones are threads (crate::thread).
    if flags & (CLONE_SIGHAND | CLONE_THREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_NEWPID != 0 && flags & CLONE_PARENT != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Creates a child process (clone without CLONE_VM, fork, vfork). Returns the child's pid in
/// the parent; the child continues from the same point with RAX = 0.
///
/// With CLONE_PIDFD the pidfd is stored at `pidfd_at`: clone's `parent_tid` argument, clone3's
/// separate `pidfd` field (`syscalls::clone` checks the two do not share a location).
pub fn fork_process(
    t: &mut Thread,
    flags: u64,
    child_stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
    pidfd_at: u64,
) -> SysResult {
    check_flags(flags)?;
    let exit_signal = (flags & CSIGNAL) as i32;
    if exit_signal > 64 {
        return Err(Errno::EINVAL);
    }
    // The kernel validates the user pointers it will write only when it writes them; we do
    // the parent's ones before forking so a bad pointer fails the call cleanly.
    if flags & CLONE_PARENT_SETTID != 0 {
        crate::usermem::buf(t, ptid, 4, cetbox_mem::Access::Write)?;
    }
    if flags & CLONE_PIDFD != 0 {
        crate::usermem::buf(t, pidfd_at, 4, cetbox_mem::Access::Write)?;
    }
    let vfork = flags & CLONE_VFORK != 0;
    let ptrace_event =
        crate::syscalls::ptrace::stop::clone_event(t, flags, Some(exit_signal as u64));
    let shared_vm = vfork && flags & CLONE_VM != 0;
    // Other threads that may write memory while this one waits for the child (see the module
    // comment). Asked before the registry is locked; if this is the only thread, no other can
    // appear meanwhile, since only a thread of this process could create it.
    let snapshot_wanted = shared_vm && t.proc.threads.multithreaded();
    let host_flags = (flags & !EMULATED) | exit_signal as u64;

    // The vfork wait pipe.
    let mut pipe = [-1i32; 2];
    if vfork {
        // Unregistered until `make_private_fd` (`cetbox_mem::transient`).
        let _hold = cetbox_mem::transient::hold();
        // SAFETY: pipe2 writes two descriptors into our array.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(Errno::last());
        }
        for p in pipe.iter_mut() {
            *p = crate::private_fds::make_private_fd(*p);
        }
    }

    // Snapshots of the state shared with the parent's other threads, taken while locking is
    // still safe.
    let snapshot = t.proc.fork_snapshot(t.tid);
    // Which pages still have the mappings of the fork when the child's bytes come back (see
    // `receive_pages`); the child gets a copy of the watch with its memory.
    let watch = if shared_vm {
        t.mem().watch_mappings()
    } else {
        0
    };

    // Host signals stay blocked across the fork until the child has registered its new tid
    // with the host-signal registry; one arriving earlier would be recorded for a thread that
    // does not exist in the child and be lost.
    let guest_mask = crate::signals::host::host_mask();
    // Everything blocked, the ptrace CARRIER too: a guest tracer's attach may reach the child
    // before it has registered for host signals (which drops what it inherited), and must
    // then stay pending until it has.
    crate::signals::host::block_all();
    crate::coredump::dumped::before_fork();
    let parent = t.proc.clone();
    // The thread registry and the mapping lock, held across the fork so that the child does
    // not inherit either held by a thread it does not have. Whoever holds the mapping lock
    // may be waiting for the registry (a shootdown lists the threads): this thread never
    // waits for the one while holding the other.
    let (registry, maps_hold) = loop {
        let registry = crate::thread_group::lock_for_fork(&parent.threads);
        if let Some(hold) = parent.mem.try_hold_for_fork() {
            break (registry, hold);
        }
        drop(registry);
        std::thread::yield_now();
    };
    // The child inherits the count and waits for its thread's slot (`procview`); the
    // parent's own count is undone once the fork returned.
    crate::procview::creating();
    let pid = if host_flags == libc::SIGCHLD as u64 {
        // glibc's fork runs its atfork handlers (malloc's locks above all), which keeps cetbox's
        // own runtime usable in the child even when other host threads exist.
        // SAFETY: the child only runs cetbox code on this thread.
        unsafe { libc::fork() }
    } else {
        // SAFETY: a clone without CLONE_VM and without a new stack behaves like fork; the
        // flags are the guest's (already checked) minus the ones cetbox emulates.
        unsafe { libc::syscall(libc::SYS_clone, host_flags, 0usize, 0usize, 0usize, 0usize) as i32 }
    };
    drop(maps_hold);
    if pid != 0 {
        crate::procview::creation_failed();
    }
    if pid < 0 {
        let e = Errno::last();
        drop(registry);
        crate::signals::host::set_host_mask(guest_mask);
        if watch != 0 {
            t.mem().unwatch_mappings(watch);
        }
        for p in pipe {
            if p >= 0 {
                crate::private_fds::unregister_private_fd(p);
                close(p);
            }
        }
        return Err(e);
    }

    if pid == 0 {
        // ---------------- the child
        // First of all, before anything here writes guest memory: the memory as at the fork.
        let (holder, holder_word) = if snapshot_wanted {
            hold_snapshot()
        } else {
            (-1, 0)
        };
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        // An inherited vfork pipe belongs to our parent's parent's wait: not ours to hold.
        let old = t.proc.vfork_fd.swap(-1, Ordering::SeqCst);
        if old >= 0 {
            crate::private_fds::unregister_private_fd(old);
            close(old);
        }
        // The parent's kept engines: their code caches are mappings shared with it.
        t.proc.engines.forget_after_fork();
        t.proc = t.proc.forked(me, snapshot);
        // Our own page-table lock for remote accessors, before any mapping changes.
        crate::remote_mem::after_fork_child(t.mem());
        crate::procview::after_fork_child();
        cetbox_mem::transient::after_fork_child();
        crate::coredump::dumped::after_fork_child();
        cetbox_jit::profile::after_fork_child();
        // A fresh engine: the translator's code cache is a shared mapping (crates/jit/src/
        // cache.rs), so the child must not append to the one it inherited from its parent.
        t.engine = t.engine.fork();
        if vfork {
            crate::private_fds::unregister_private_fd(pipe[0]);
            close(pipe[0]);
            t.proc.vfork_fd.store(pipe[1], Ordering::SeqCst);
            t.proc.vfork_shared_vm.store(shared_vm, Ordering::SeqCst);
            t.proc.vfork_snapshot.store(holder, Ordering::SeqCst);
            t.proc
                .vfork_snapshot_word
                .store(holder_word, Ordering::SeqCst);
            t.proc.vfork_watch.store(watch, Ordering::SeqCst);
        } else if watch != 0 {
            t.mem().unwatch_mappings(watch);
        }
        t.tid = me;
        t.signals.pending.clear();
        t.signals.saved_mask = None;
        crate::syscalls::ptrace::after_fork();
        crate::signals::host::after_fork(t);
        crate::signals::host::set_host_mask(guest_mask);
        crate::thread_group::after_fork_child(t, registry);
        // This thread's slot, under its own tid (the parent's were dropped above).
        crate::procview::thread_started(t);
        crate::debug::forked_child();
        t.robust_list = (0, 0);
        crate::rseq::after_fork(t, flags & CLONE_VM != 0);
        t.clear_child_tid = if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        };
        if flags & CLONE_SETTLS != 0 {
            t.cpu.fs_base = tls;
        }
        if child_stack != 0 {
            t.cpu.gpr[cetbox_cpu::Reg::Rsp as usize] = child_stack;
        }
        if vfork && flags & CLONE_VM != 0 {
            // A vfork child has no sigaltstack of its own (it would share the parent's).
            t.signals.altstack = Default::default();
        }
        let _ = crate::shstk::on_clone(t, flags, 0);
        if shared_vm && flags & CLONE_PARENT_SETTID != 0 {
            // The kernel stores the parent's word before the child runs; in a shared memory
            // the child sees it (kernel/fork.c, kernel_clone).
            let _ = t.mem().write_u32(ptid, me as u32);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            // The kernel ignores a fault here.
            let _ = t.mem().write_u32(ctid, me as u32);
        }
        // A traced parent's tracer asked for this fork's event: it attaches to the child.
        t.ptrace_auto_attach = ptrace_event.map(|(_, inherit)| inherit);
        crate::syscalls::ptrace::stop::await_attach(t, false);
        return Ok(0);
    }

    // ---------------- the parent
    drop(registry);
    crate::signals::host::set_host_mask(guest_mask);
    let mut pidfd = -1;
    if flags & CLONE_PIDFD != 0 {
        // SAFETY: pidfd_open takes integers only.
        pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd >= 0 {
            // SAFETY: F_SETFD on a descriptor we just got.
            unsafe { libc::fcntl(pidfd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    // What the clone stores for the parent. Stored again after a CLONE_VM child's pages,
    // which may hold the words as they were at the fork.
    let store = |t: &Thread| {
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = t.mem().write_u32(ptid, pid as u32);
        }
        if pidfd >= 0 {
            let _ = t.mem().write_u32(pidfd_at, pidfd as u32);
        }
    };
    store(t);
    if let Some((event, _)) = ptrace_event {
        crate::syscalls::ptrace::stop::event_stop(t, event, pid as u64);
    }
    if vfork {
        crate::private_fds::unregister_private_fd(pipe[1]);
        close(pipe[1]);
        let ended = receive_pages(t, pipe[0], watch);
        crate::private_fds::unregister_private_fd(pipe[0]);
        close(pipe[0]);
        if watch != 0 {
            t.mem().unwatch_mappings(watch);
        }
        if !ended {
            // A fatal signal ended the wait: it is delivered as the call returns, and the
            // process dies of it (the child runs on, as Linux's does).
            return Ok(pid as u64);
        }
        if shared_vm {
            store(t);
        }
        crate::syscalls::ptrace::stop::vfork_done(t, pid);
    }
    Ok(pid as u64)
}

/// Called when the process execs (before the old image is unmapped) or exits: a vfork child
/// sends its modified pages to its parent and releases it.
pub fn release_vfork_parent(proc: &crate::process::Process) {
    let fd = proc.vfork_fd.swap(-1, Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let holder = proc.vfork_snapshot.swap(-1, Ordering::SeqCst);
    let holder_word = proc.vfork_snapshot_word.swap(0, Ordering::SeqCst);
    let watch = proc.vfork_watch.swap(0, Ordering::SeqCst);
    if proc.vfork_shared_vm.swap(false, Ordering::SeqCst) {
        send_pages(&proc.mem, fd, holder, watch);
    }
    if watch != 0 {
        proc.mem.unwatch_mappings(watch);
    }
    // Before the parent is released: the holder's copy of the write end is gone with it.
    end_snapshot(holder, holder_word);
    crate::private_fds::unregister_private_fd(fd);
    close(fd);
}

// ---------------------------------------------------------------- the snapshot holder

/// In a CLONE_VM vfork child, before anything changes its memory: forks a process that holds
/// that memory unchanged until `end_snapshot` (see the module comment). Returns its pid and the
/// host address of the shared word that ends it, or (-1, 0) if it could not be made (the child
/// then sends whole pages, as a single-threaded parent's child does).
///
/// The holder is a clone child with no exit signal, which wait and waitpid without __WCLONE or
/// __WALL do not see (wait(2)), in a process group of its own, and a wait that could find only
/// it answers ECHILD (`wait_finds_only_holder`), so the guest running here does not meet it;
/// /proc listings leave it out (`procview::mark_holder`). It closes every
/// descriptor at once, so it keeps no pipe open, and dies with this process (PR_SET_PDEATHSIG).
/// It ends when the word, in a page shared with this process, becomes nonzero: a signal would
/// not do, as the guest may change this process's user ids before it execs (a privileged
/// program dropping its rights in a posix_spawn or vfork child), after which kill(2) may no
/// longer reach the holder, which keeps the ids of the fork.
fn hold_snapshot() -> (i32, usize) {
    // SAFETY: a fresh shared anonymous page of cetbox's own (outside the guest's address
    // space, which cetbox maps only at fixed addresses); nothing else refers to it.
    let word = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            cetbox_mem::PAGE_SIZE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if word == libc::MAP_FAILED {
        return (-1, 0);
    }
    let word = word as usize;
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    // SAFETY: a clone without CLONE_VM and without a new stack behaves like fork (this process
    // has one thread now, the one that forked it). The holder runs nothing but the raw calls
    // below, with every host signal still blocked (fork_process blocked them for the fork).
    let pid = unsafe { libc::syscall(libc::SYS_clone, 0usize, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: raw system calls on integers, and a futex wait on the shared word mapped
        // above (read only by the kernel); nothing here writes memory.
        unsafe {
            // A process group of its own (the child does the same, whichever runs first), so
            // signals to the child's group (kill(-pgrp), the terminal's job control) and
            // waits for it (waitpid(0) or -pgrp) do not reach it; a header that says what it
            // is (not a copy of the process it copies) for other guests' /proc.
            libc::setpgid(0, 0);
            crate::procview::mark_holder();
            libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            // The child may have died before the line above.
            if libc::getppid() != me {
                libc::_exit(0);
            }
            // Every signal is blocked: only the word (or SIGKILL) ends this.
            while std::ptr::read_volatile(word as *const u32) == 0 {
                libc::syscall(
                    libc::SYS_futex,
                    word as *const u32,
                    libc::FUTEX_WAIT,
                    0u32,
                    std::ptr::null::<libc::timespec>(),
                );
            }
            libc::_exit(0);
        }
    }
    if pid < 0 {
        // SAFETY: unmapping the page mapped above, which nothing else uses.
        unsafe { libc::munmap(word as *mut libc::c_void, cetbox_mem::PAGE_SIZE as usize) };
        (-1, 0)
    } else {
        // SAFETY: setpgid takes integers only (see the holder's own call above).
        unsafe { libc::setpgid(pid as i32, pid as i32) };
        (pid as i32, word)
    }
}

/// For a guest's wait in a vfork child that keeps a snapshot holder: whether the wait could
/// find no child but the holder, which is cetbox's, no child of the guest's, and must then
/// answer ECHILD as Linux does. `wait4` gives the wait4 pid; `waitid` gives (idtype, id).
/// The holder is a clone child with no exit signal, in a process group of its own: only a
/// wait with __WALL or __WCLONE for any child, or one naming its pid or group, could find it.
/// Left: a wait for any child, where the guest has others, still sees the holder if someone
/// stopped or killed it by its pid (or kill(-1)), as nothing else reaches it.
pub fn wait_finds_only_holder(
    proc: &crate::process::Process,
    wait4: Option<i32>,
    waitid: Option<(u32, i32)>,
    options: u64,
) -> bool {
    let holder = proc.vfork_snapshot.load(Ordering::SeqCst);
    if holder <= 0 {
        return false;
    }
    const P_ALL: u32 = 0;
    const P_PID: u32 = 1;
    const P_PGID: u32 = 2;
    // Invalid options are EINVAL first (kernel/exit.c, kernel_wait4 and kernel_waitid): the
    // host call answers those.
    let o = options as u32 as i32;
    let common =
        libc::WNOHANG | libc::WCONTINUED | libc::__WNOTHREAD | libc::__WCLONE | libc::__WALL;
    let valid = match waitid {
        None => o & !(common | libc::WUNTRACED) == 0,
        Some(_) => {
            o & !(common | libc::WNOWAIT | libc::WEXITED | libc::WSTOPPED) == 0
                && o & (libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED) != 0
        }
    };
    if !valid {
        return false;
    }
    let any = match (wait4, waitid) {
        (Some(pid), _) if pid == holder || pid == -holder => return true,
        (Some(pid), _) => pid == -1,
        (None, Some((P_PID | P_PGID, id))) if id == holder => return true,
        (None, Some((idtype, _))) => idtype == P_ALL,
        (None, None) => false,
    };
    let clone_children = options as u32 & (libc::__WALL | libc::__WCLONE) as u32 != 0;
    any && clone_children && !has_child_besides(holder)
}

/// Whether this process has a child other than `holder`, as the host lists its threads'
/// children (/proc/PID/task/TID/children, proc(5)); true when that cannot be read.
fn has_child_besides(holder: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return true;
    };
    for task in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            return true;
        };
        if list
            .split_ascii_whitespace()
            .any(|p| p.parse::<i32>().ok() != Some(holder))
        {
            return true;
        }
    }
    false
}

/// Ends and reaps the holder (if any), so that the program this process execs never sees it.
/// The wait is bounded: a holder stopped by a job-control signal this process may no longer
/// send SIGCONT or SIGKILL to is left behind (it dies with this process) rather than hanging
/// the exec and the waiting parent.
fn end_snapshot(holder: i32, word: usize) {
    if holder <= 0 {
        return;
    }
    if word != 0 {
        // SAFETY: the word is the first of the shared page `hold_snapshot` mapped, ours until
        // the munmap below; FUTEX_WAKE (shared: the holder is another process) writes nothing.
        unsafe {
            (*(word as *const std::sync::atomic::AtomicU32)).store(1, Ordering::SeqCst);
            libc::syscall(libc::SYS_futex, word as *const u32, libc::FUTEX_WAKE, 1);
        }
    }
    // SAFETY: signalling and reaping our own child, by its pid (only a guest's __WCLONE or
    // __WALL wait could have reaped it before us; its pid could then be reused, which is
    // the known limit of a pid without a pidfd).
    unsafe {
        libc::kill(holder, libc::SIGKILL);
        let mut status = 0;
        // About 2 s at most: yields first (the holder usually ends within microseconds),
        // then sleeps a millisecond at a time.
        for i in 0..2100 {
            let r = libc::waitpid(holder, &mut status, libc::__WCLONE | libc::WNOHANG);
            let interrupted = std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
            if r == holder || (r < 0 && !interrupted) {
                break;
            }
            if i < 100 {
                libc::sched_yield();
            } else {
                libc::usleep(1000);
            }
        }
        if word != 0 {
            libc::munmap(word as *mut libc::c_void, cetbox_mem::PAGE_SIZE as usize);
        }
    }
}

/// The holder's copy of `buf.len()` bytes at `addr`, if it can be read whole.
fn read_snapshot(holder: i32, addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec describes `buf`, which we own mutably; the remote one is only
    // read, in the holder's address space, by the kernel.
    let n = unsafe { libc::process_vm_readv(holder, &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// The runs of bytes where `now` differs from `then` (same length), as (start, end) offsets.
fn changed_runs(now: &[u8], then: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < now.len() {
        if now[i] == then[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < now.len() && now[i] != then[i] {
            i += 1;
        }
        runs.push((s, i));
    }
    runs
}

// ---------------------------------------------------------------- vfork page transfer

/// /proc/self/pagemap bits.
const PM_PRESENT: u64 = 1 << 63;
const PM_FILE: u64 = 1 << 61;
const PM_EXCLUSIVE: u64 = 1 << 56;

/// Largest piece of a run of pages read and compared at once, and the largest run sent in one
/// record (what the parent accepts).
const CHUNK: u64 = 256 * cetbox_mem::PAGE_SIZE;

/// A record's header: address, length and flags (`SHADOW_RUN`), little-endian u64s.
const HEADER: usize = 24;
/// The run lies in a shadow stack: the parent writes it only as shadow-stack stores.
const SHADOW_RUN: u64 = 1;

/// The transfer pipe as a `File`, for the standard library's `write_all` (which retries on
/// EINTR); never closed by it.
fn pipe_file(fd: i32) -> std::mem::ManuallyDrop<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is an open pipe end the caller owns for the whole transfer; ManuallyDrop
    // keeps the File from closing it.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn write_all(fd: i32, b: &[u8]) -> bool {
    use std::io::Write;
    pipe_file(fd).write_all(b).is_ok()
}

/// The PAGEMAP_SCAN ioctl's argument and result records (include/uapi/linux/fs.h, Linux 6.7;
/// Documentation/admin-guide/mm/pagemap.rst).
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// _IOWR('f', 16, struct pm_scan_arg).
const PAGEMAP_SCAN: u64 = 0xC000_0000 | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | 0x6610;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;

/// Calls `f` with the parts of [start, end) that may hold pages of the child's own, in pieces
/// of at most CHUNK: with PAGEMAP_SCAN, only the present anonymous ones, which the kernel
/// finds by walking its page tables (a huge reservation, such as a sanitizer's shadow or a Go
/// heap arena, costs nothing where nothing was touched); without it (a kernel before 6.7),
/// all of the range. Stops when `f` returns false; returns false then.
fn candidate_pieces(pm: i32, start: u64, end: u64, f: &mut dyn FnMut(u64, u64) -> bool) -> bool {
    let mut pieces = |s: u64, e: u64| {
        let mut a = s;
        while a < e {
            let b = e.min(a.saturating_add(CHUNK));
            if !f(a, b) {
                return false;
            }
            a = b;
        }
        true
    };
    let mut at = start;
    while at < end {
        let mut regions = [PageRegion::default(); 64];
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: 0,
            start: at,
            end,
            walk_end: 0,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            max_pages: 0,
            // Present, and not file pages (a private file page written is anonymous).
            category_inverted: PAGE_IS_FILE,
            category_mask: PAGE_IS_PRESENT | PAGE_IS_FILE,
            category_anyof_mask: 0,
            return_mask: PAGE_IS_PRESENT,
        };
        // SAFETY: PAGEMAP_SCAN on our own pagemap reads `arg` and writes `arg.walk_end` and at
        // most `vec_len` records into `regions`, both ours and alive for the call.
        let n = unsafe { libc::ioctl(pm, PAGEMAP_SCAN as _, &mut arg as *mut PmScanArg) };
        if n < 0 {
            // No PAGEMAP_SCAN: every page of the rest is a candidate.
            return pieces(at, end);
        }
        for r in &regions[..(n as usize).min(regions.len())] {
            if !pieces(r.start.max(at), r.end.min(end)) {
                return false;
            }
        }
        if arg.walk_end <= at {
            // No progress (should not happen): the rest as candidates, rather than looping.
            return pieces(at, end);
        }
        at = arg.walk_end;
    }
    true
}

/// The child's side: every private page it made its own since the fork (present, anonymous,
/// mapped only here) is sent as (address, length, flags, bytes) records; with a snapshot
/// holder, only the bytes that differ from the holder's copy. Only pages whose mapping is the
/// one of the fork (mapping watch `watch`): a mapping the child made itself would have been
/// shared on Linux, which cetbox cannot reproduce, and its bytes do not belong in the
/// parent's mapping there.
fn send_pages(mem: &cetbox_mem::AddressSpace, fd: i32, holder: i32, watch: u64) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let _hold = cetbox_mem::transient::hold();
    let Ok(pm) = std::fs::File::open("/proc/self/pagemap") else {
        return;
    };
    let page = cetbox_mem::PAGE_SIZE;
    for v in mem.vmas() {
        if v.shared {
            continue;
        }
        let flags = if v.kind == cetbox_mem::VmaKind::ShadowStack {
            SHADOW_RUN
        } else {
            0
        };
        let send = |addr: u64, data: &[u8]| {
            let mut hdr = [0u8; HEADER];
            hdr[..8].copy_from_slice(&addr.to_le_bytes());
            hdr[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
            hdr[16..].copy_from_slice(&flags.to_le_bytes());
            write_all(fd, &hdr) && write_all(fd, data)
        };
        let mut piece = |start: u64, end: u64| -> bool {
            let npages = ((end - start) / page) as usize;
            let mut entries = vec![0u8; npages * 8];
            if pm.read_exact_at(&mut entries, start / page * 8).is_err() {
                return true;
            }
            let dirty = |i: usize| {
                let e = u64::from_le_bytes(entries[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
                e & PM_PRESENT != 0
                    && e & PM_EXCLUSIVE != 0
                    && e & PM_FILE == 0
                    && mem.unchanged_since(watch, start + i as u64 * page, page)
            };
            let mut i = 0;
            while i < npages {
                if !dirty(i) {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < npages && dirty(i) {
                    i += 1;
                }
                let addr = start + s as u64 * page;
                let mut data = vec![0u8; (i - s) * page as usize];
                if mem.read_bytes(addr, &mut data).is_ok() {
                    let sent = if holder > 0 {
                        send_changes(holder, addr, &data, &send)
                    } else {
                        send(addr, &data)
                    };
                    if !sent {
                        return false;
                    }
                }
            }
            true
        };
        if !candidate_pieces(pm.as_raw_fd(), v.start, v.end, &mut piece) {
            return;
        }
    }
}

/// Sends the bytes of `data` (the child's memory at `addr`) that differ from the holder's
/// copy. Where the holder's copy of the whole run cannot be read (part of it was mapped only
/// after the fork), page by page: only a page the holder lacks is sent whole, so the parent's
/// other threads' writes elsewhere are not undone. False when the pipe failed.
fn send_changes(holder: i32, addr: u64, data: &[u8], send: &dyn Fn(u64, &[u8]) -> bool) -> bool {
    let diff = |at: u64, now: &[u8], then: &[u8]| {
        changed_runs(now, then)
            .into_iter()
            .all(|(a, b)| send(at + a as u64, &now[a..b]))
    };
    let mut then = vec![0u8; data.len()];
    if read_snapshot(holder, addr, &mut then) {
        return diff(addr, data, &then);
    }
    let page = cetbox_mem::PAGE_SIZE as usize;
    data.chunks(page).enumerate().all(|(i, now)| {
        let at = addr + (i * page) as u64;
        let then = &mut then[..now.len()];
        if read_snapshot(holder, at, then) {
            diff(at, now, then)
        } else {
            send(at, now)
        }
    })
}

/// Why a read of the transfer pipe ended.
enum Stop {
    /// The child execed or ended (end of file), or the pipe failed.
    Ended,
    /// A fatal signal is pending for the waiting parent.
    Killed,
}

/// Whether a signal that kills the process is pending for `t` (after collecting the host's):
/// not blocked, with the default action of terminating, and no tracer or debugger to see it
/// first. Linux's vfork wait ends for such a signal only (kernel/fork.c,
/// wait_for_vfork_done's killable wait; kernel/signal.c complete_signal makes it SIGKILL).
fn fatal_signal_pending(t: &mut Thread) -> bool {
    use crate::signals::{bit, default_action, DefaultAction, SIG_DFL};
    crate::signals::host::collect(t);
    if crate::syscalls::ptrace::stop::traced(t) || crate::debug::active() {
        return false;
    }
    let fatal = |s: &crate::signals::SigInfo| {
        crate::signals::valid(s.signo)
            && t.signals.mask & bit(s.signo) == 0
            && t.proc.signals.action(s.signo).handler == SIG_DFL
            && matches!(
                default_action(s.signo),
                DefaultAction::Terminate | DefaultAction::Core
            )
    };
    t.signals.pending.iter().any(fatal) || t.proc.signals.pending().iter().any(fatal)
}

/// Reads exactly `buf.len()` bytes of the transfer pipe, waiting as Linux's vfork parent does:
/// killable, and for nothing else.
fn read_killable(t: &mut Thread, fd: i32, buf: &mut [u8]) -> Result<(), Stop> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        let n = rest.len() as u64;
        let w = crate::waitcall::Waiter::of(t);
        let r = crate::waitcall::host_wait!(
            w,
            libc::SYS_read,
            fd as u64,
            crate::hostcall::HostPtr::of_mut(rest),
            n
        );
        match r {
            Ok(0) => return Err(Stop::Ended),
            Ok(k) => done += k as usize,
            Err(Errno::EINTR) => {
                if fatal_signal_pending(t) {
                    return Err(Stop::Killed);
                }
            }
            Err(_) => return Err(Stop::Ended),
        }
    }
    Ok(())
}

/// The parent's side: waits until the child execs or exits (end of file), applying the runs
/// it sends to the same addresses here. Returns false when a fatal signal ended the wait.
///
/// A run is written only into pages that still have the mapping they had at the fork
/// (mapping watch `watch`) and that the guest may write now: another thread may have
/// unmapped or replaced the mapping since (on Linux the child's bytes went with the old one),
/// or made it read-only or PROT_NONE; a shadow-stack run only into a shadow stack, as
/// shadow-stack stores, and nothing else into one. A record longer than CHUNK is not one the
/// child sends: the rest is not applied, and the parent only waits for the end.
fn receive_pages(t: &mut Thread, fd: i32, watch: u64) -> bool {
    let page = cetbox_mem::PAGE_SIZE;
    let mut data = Vec::new();
    loop {
        let mut hdr = [0u8; HEADER];
        match read_killable(t, fd, &mut hdr) {
            Ok(()) => {}
            Err(Stop::Ended) => return true,
            Err(Stop::Killed) => return false,
        }
        let word =
            |i: usize| u64::from_le_bytes(hdr[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let (addr, len, flags) = (word(0), word(1), word(2));
        if len == 0 || len > CHUNK || flags & !SHADOW_RUN != 0 {
            return wait_for_end(t, fd);
        }
        data.resize(len as usize, 0);
        match read_killable(t, fd, &mut data) {
            Ok(()) => {}
            Err(Stop::Ended) => return true,
            Err(Stop::Killed) => return false,
        }
        // Page by page: a run of bytes need not start at a page boundary, and each page is
        // checked on its own.
        let mut off = 0u64;
        while off < len {
            let a = addr.wrapping_add(off);
            let n = (page - a % page).min(len - off);
            t.mem().write_unchanged(
                watch,
                a,
                &data[off as usize..(off + n) as usize],
                flags & SHADOW_RUN != 0,
            );
            off += n;
        }
    }
}

/// Discards what the child still sends until the end of file. False when a fatal signal ended
/// the wait.
fn wait_for_end(t: &mut Thread, fd: i32) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        let n = sink.len() as u64;
        let w = crate::waitcall::Waiter::of(t);
        let r = crate::waitcall::host_wait!(
            w,
            libc::SYS_read,
            fd as u64,
            crate::hostcall::HostPtr::of_mut(&mut sink[..]),
            n
        );
        match r {
            Ok(0) => return true,
            Ok(_) => {}
            Err(Errno::EINTR) => {
                if fatal_signal_pending(t) {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}
