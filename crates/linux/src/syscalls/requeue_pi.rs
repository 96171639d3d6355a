//! FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI on private futexes, done by cetbox itself on
//! top of its checked, sliced PI lock (`process::lock_pi`) instead of in one host sleep.
//!
//! The host's futex_wait_requeue_pi (kernel/futex/requeue.c) sleeps once for the whole call and
//! may write the PI word (uaddr2) at its end (kernel/futex/pi.c `fixup_pi_owner`) on a page the
//! host keeps writable after the guest made it read-only or a shadow stack, where Linux fails
//! with EFAULT. Here a requeue-PI waiter sleeps on a word of cetbox's own, in the signal-aware
//! way of `waitcall`, listed in its process's [`Table`] by (uaddr, uaddr2); the requeuer
//! (`requeue`, under the mapping lock with every word it writes checked writable, as
//! TRYLOCK_PI and UNLOCK_PI are) either takes uaddr2 for the top waiter (the cmpxchg 0 -> TID
//! of `futex_proxy_trylock_atomic`) or marks the waiter requeued, and a requeued waiter takes
//! the lock itself with the sliced LOCK_PI2 whose host calls are registered in `pi_inflight`:
//! no host write of uaddr2 can follow a mapping change the guest has seen.
//!
//! Linux's requeued waiter is already queued on the lock's rt_mutex when CMP_REQUEUE_PI
//! returns; cetbox's enters the host's LOCK_PI when it runs. The requeuer therefore registers
//! the requeued waiter's coming host call in `pi_inflight` on its behalf (under the mapping
//! lock, uaddr2 checked writable), and the waiter's first host call goes in under that
//! registration without checking the word again: a mapping change that takes uaddr2 away
//! waits for that call as for any other in flight, so the waiter's first attempt (taking a
//! lock freed by the owner's UNLOCK_PI meanwhile, or queueing behind the owner) lands before
//! the change is visible, as Linux's hand-over in UNLOCK_PI would have.
//!
//! Only private futexes: a shared futex's waiters and requeuers may be in other processes
//! (other cetboxes), which this table does not reach; those keep the host's calls
//! (`process::sys_futex`). Linux keys private and shared futexes apart
//! (kernel/futex/core.c `get_futex_key`: FUT_OFF_MMSHARED), so no private call ever meets a
//! shared waiter and the two never mix.

use super::pi_inflight;
use crate::errno::{Errno, SysResult};
use crate::hostcall::{Arg, HostPtr};
use crate::process::Thread;
use crate::waitcall::Waiter;
use cetbox_mem::Access;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2, FUTEX_OWNER_DIED,
    FUTEX_PRIVATE_FLAG, FUTEX_TID_MASK, FUTEX_WAITERS, FUTEX_WAIT_BITSET, FUTEX_WAKE,
};

/// A waiter's state (its own futex word): still waiting on uaddr, given uaddr2 by the requeuer
/// (Linux's Q_REQUEUE_PI_LOCKED), or requeued to wait for uaddr2 (Q_REQUEUE_PI_DONE).
const WAITING: u32 = 0;
const LOCKED: u32 = 1;
const REQUEUED: u32 = 2;

struct Entry {
    tid: i32,
    uaddr: u64,
    uaddr2: u64,
    state: AtomicU32,
}

/// A process's requeue-PI waiters still waiting on their first word, oldest first (Linux
/// queues waiters of equal priority in arrival order: kernel/futex/core.c `__futex_queue`).
#[derive(Default)]
pub struct Table {
    waiters: Mutex<Vec<Arc<Entry>>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Entry>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a requeue-PI waiter waits on `uaddr` (for the plain wakes and requeues, which
    /// Linux refuses with EINVAL when they meet one: kernel/futex/waitwake.c `futex_wake`,
    /// `futex_wake_op`, requeue.c `futex_requeue`).
    pub fn waiting_at(&self, uaddr: u64) -> bool {
        self.lock().iter().any(|e| e.uaddr == uaddr)
    }
}

/// Removes a waiter's entry from the table when its wait ends (if the requeuer has not).
struct Queued<'a> {
    table: &'a Table,
    e: Arc<Entry>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut w = self.table.lock();
        if let Some(i) = w.iter().position(|x| Arc::ptr_eq(x, &self.e)) {
            w.remove(i);
        }
    }
}

/// The guest's futex word at `addr`, for atomic access by cetbox.
///
/// # Safety
/// `addr` must be a 4-aligned guest address checked (readable, or writable for a store)
/// under the mapping lock, held for as long as the reference is used: guest memory is host
/// memory at the same address, mapped while the lock prevents any change. Other threads
/// access the word only atomically or as guest stores, which race with it as with the
/// kernel's own futex accesses.
pub(crate) unsafe fn atomic_at<'a>(addr: u64) -> &'a AtomicU32 {
    // SAFETY: see the function's contract.
    unsafe { &*(addr as *const AtomicU32) }
}

/// Reads the absolute timeout at `utime` (0: none) as the futex syscall does before anything
/// else (kernel/futex/syscalls.c: EFAULT, then EINVAL from `futex_init_timeout`).
pub(crate) fn read_deadline(t: &Thread, utime: u64) -> Result<Option<[i64; 2]>, Errno> {
    if utime == 0 {
        return Ok(None);
    }
    let sec = t.mem().read_u64(utime)? as i64;
    let nsec = t.mem().read_u64(utime + 8)? as i64;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Some([sec, nsec]))
}

/// FUTEX_WAIT_REQUEUE_PI on a private futex (kernel/futex/requeue.c `futex_wait_requeue_pi`).
pub(crate) fn wait(
    t: &Thread,
    uaddr: u64,
    op: u32,
    val: u32,
    utime: u64,
    uaddr2: u64,
) -> SysResult {
    let deadline = read_deadline(t, utime)?;
    if uaddr == uaddr2 {
        return Err(Errno::EINVAL);
    }
    // get_futex_key of uaddr2, then of uaddr (futex_wait_setup): a private key needs an
    // aligned user address, not its page.
    if uaddr2 & 3 != 0 {
        return Err(Errno::EINVAL);
    }
    if !super::fs::access_ok(uaddr2, 4) || !super::fs::access_ok(uaddr, 4) {
        return Err(Errno::EFAULT);
    }
    let table = &t.proc.requeue_pi;
    let e = Arc::new(Entry {
        tid: t.tid,
        uaddr,
        uaddr2,
        state: AtomicU32::new(WAITING),
    });
    // The word is compared and the waiter queued as one step for requeuers and wakers, which
    // take the same locks (futex_wait_setup under the hash bucket lock).
    t.mem()
        .with_checked(uaddr, 4, Access::Read, || {
            // SAFETY: checked readable under the mapping lock, held by with_checked.
            if unsafe { atomic_at(uaddr) }.load(Ordering::SeqCst) != val {
                return Err(Errno::EAGAIN);
            }
            table.lock().push(e.clone());
            Ok(())
        })
        .unwrap_or(Err(Errno::EFAULT))?;
    let queued = Queued {
        table,
        e: e.clone(),
    };
    let clock_flag = op & FUTEX_CLOCK_REALTIME;
    let ts = deadline.unwrap_or_default();
    loop {
        let timeout: Arg = if deadline.is_some() {
            HostPtr::of(&ts).into()
        } else {
            Arg::from(0u64)
        };
        // The thread's own word, on which only the requeuer wakes it; guest wakes never reach
        // it (cetbox memory, see `sys_futex`).
        let r = Waiter::of(t).call_or_skip(
            libc::SYS_futex,
            [
                HostPtr::of(&e.state).into(),
                Arg::from((FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | clock_flag) as u64),
                Arg::from(WAITING as u64),
                timeout,
                Arg::from(0u64),
                Arg::from(u32::MAX as u64),
            ],
        );
        let mut w = table.lock();
        match e.state.load(Ordering::Acquire) {
            // Woken before a requeue (handle_early_requeue_pi_wakeup): a timeout, or a signal
            // (the call restarts, comparing the word again); otherwise a spurious wake-up of
            // the host wait, which waits on.
            WAITING => match r {
                Some(Err(Errno::ETIMEDOUT)) => {
                    // Leave the table before its lock is let go, so no requeuer can
                    // hand the lock to (or requeue) a thread that is returning.
                    w.retain(|x| !Arc::ptr_eq(x, &queued.e));
                    drop(w);
                    drop(queued);
                    return Err(Errno::ETIMEDOUT);
                }
                None | Some(Err(Errno::EINTR)) => {
                    // Leave the table before its lock is let go, so no requeuer can
                    // hand the lock to (or requeue) a thread that is returning.
                    w.retain(|x| !Arc::ptr_eq(x, &queued.e));
                    drop(w);
                    drop(queued);
                    return Err(crate::signals::ERESTARTNOINTR);
                }
                _ => continue,
            },
            // The requeuer took the lock for this thread (Q_REQUEUE_PI_LOCKED): the lock is
            // held whatever else woke the thread.
            LOCKED => return Ok(0),
            _ => break,
        }
    }
    drop(queued);
    // Requeued (Q_REQUEUE_PI_DONE): wait for uaddr2 as rt_mutex_wait_proxy_lock does, with
    // the call's deadline on its clock (LOCK_PI2 takes FUTEX_CLOCK_REALTIME as this call
    // does), the first host call under the registration the requeuer made for it.
    let first = pi_inflight::adopt(t, uaddr2);
    let lock_op = FUTEX_LOCK_PI2 | (op & (FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME));
    let deadline = deadline.map(|d| (d[0], d[1]));
    match super::process::lock_pi(t, FUTEX_LOCK_PI2, uaddr2, lock_op, deadline, Some(first)) {
        Ok(_) => Ok(0),
        // A signal while requeued: futex_wait_requeue_pi answers -EWOULDBLOCK instead of
        // restarting ("restarting the syscall would do the same").
        Err(e) if e == crate::signals::ERESTARTNOINTR => Err(Errno::EAGAIN),
        r => r,
    }
}

/// Whether thread `tid` exists (futex's attach_to_pi_owner: ESRCH for an owner TID no task
/// has, kernel/futex/pi.c `handle_exit_race`).
fn task_exists(tid: u32) -> bool {
    // PIDFD_THREAD (O_EXCL, Linux 6.9): a pidfd for any thread, not only a leader.
    // cetbox's own descriptor for a moment (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    // SAFETY: pidfd_open takes integers only; the descriptor it returns is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid as libc::c_long, libc::O_EXCL) };
    if fd >= 0 {
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// FUTEX_CMP_REQUEUE_PI on a private futex (kernel/futex/requeue.c `futex_requeue` with
/// requeue_pi, `futex_proxy_trylock_atomic`; pi.c `futex_lock_pi_atomic`).
pub(crate) fn requeue(
    t: &Thread,
    uaddr: u64,
    nr_wake: u32,
    nr_requeue: u64,
    uaddr2: u64,
    cmpval: u32,
) -> SysResult {
    let nr_requeue = nr_requeue as u32 as i32;
    if (nr_wake as i32) < 0 || nr_requeue < 0 || uaddr == uaddr2 || nr_wake != 1 {
        return Err(Errno::EINVAL);
    }
    if !super::fs::access_ok(uaddr, 4) {
        return Err(Errno::EFAULT);
    }
    if uaddr2 & 3 != 0 {
        return Err(Errno::EINVAL);
    }
    if !super::fs::access_ok(uaddr2, 4) {
        return Err(Errno::EFAULT);
    }
    let table = &t.proc.requeue_pi;
    let mut woken: Vec<Arc<Entry>> = Vec::new();
    let res = t.mem().with_locked(|ok| -> SysResult {
        if !ok(uaddr, 4, Access::Read) {
            return Err(Errno::EFAULT);
        }
        // SAFETY: checked readable just above, under the mapping lock (with_locked).
        if unsafe { atomic_at(uaddr) }.load(Ordering::SeqCst) != cmpval {
            return Err(Errno::EAGAIN);
        }
        // futex_proxy_trylock_atomic reads uaddr2 first, waiters or not.
        if !ok(uaddr2, 4, Access::Read) {
            return Err(Errno::EFAULT);
        }
        // Waiters of a plain FUTEX_WAIT on uaddr wait in the host: the host's own
        // CMP_REQUEUE_PI finds them (EINVAL: not a requeue-PI waiter) and, finding none,
        // changes nothing (it writes uaddr2 only for a requeue-PI waiter of its own, and
        // cetbox leaves it none on a private futex).
        crate::hostcall::call(
            libc::SYS_futex,
            [
                Arg::from(uaddr),
                Arg::from((FUTEX_CMP_REQUEUE_PI | FUTEX_PRIVATE_FLAG) as u64),
                Arg::from(1u64),
                Arg::from(nr_requeue as u64),
                Arg::from(uaddr2),
                Arg::from(cmpval as u64),
            ],
        )?;
        let mut w = table.lock();
        let queue: Vec<Arc<Entry>> = w.iter().filter(|e| e.uaddr == uaddr).cloned().collect();
        let Some(top) = queue.first().cloned() else {
            return Ok(0);
        };
        if top.uaddr2 != uaddr2 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: checked readable above under the mapping lock, held until `with_locked`
        // returns; every store below follows a check that it is writable.
        let word = unsafe { atomic_at(uaddr2) };
        // futex_lock_pi_atomic for the top waiter, FUTEX_WAITERS forced when more are to be
        // requeued; a changed word is read again (lock_pi_update_atomic's -EAGAIN: retry).
        let acquired = loop {
            let v = word.load(Ordering::SeqCst);
            if v & FUTEX_TID_MASK == top.tid as u32 {
                return Err(Errno(libc::EDEADLK));
            }
            if !ok(uaddr2, 4, Access::Write) {
                return Err(Errno::EFAULT);
            }
            if v & FUTEX_TID_MASK == 0 {
                let waiters = if nr_requeue != 0 { FUTEX_WAITERS } else { 0 };
                let new = (v & FUTEX_OWNER_DIED) | top.tid as u32 | waiters;
                if word
                    .compare_exchange(v, new, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    break true;
                }
                continue;
            }
            if word
                .compare_exchange(v, v | FUTEX_WAITERS, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            if !task_exists(v & FUTEX_TID_MASK) {
                if word.load(Ordering::SeqCst) != v | FUTEX_WAITERS {
                    continue;
                }
                return Err(Errno::ESRCH);
            }
            break false;
        };
        let mut count: i64 = 0;
        let mut result = Ok(());
        let mut give = |e: &Arc<Entry>, state: u32, w: &mut Vec<Arc<Entry>>| {
            e.state.store(state, Ordering::Release);
            w.retain(|x| !Arc::ptr_eq(x, e));
            woken.push(e.clone());
        };
        if acquired {
            give(&top, LOCKED, &mut w);
            count = 1;
        }
        for e in queue.iter().skip(acquired as usize) {
            // futex_requeue: `task_count - nr_wake >= nr_requeue` with nr_wake 1.
            if count > nr_requeue as i64 {
                break;
            }
            if e.uaddr2 != uaddr2 {
                result = Err(Errno::EINVAL);
                break;
            }
            // rt_mutex_start_proxy_lock's deadlock detection for a waiter that owns the lock
            // itself (longer chains are found by the waiter's own LOCK_PI).
            if word.load(Ordering::SeqCst) & FUTEX_TID_MASK == e.tid as u32 {
                result = Err(Errno(libc::EDEADLK));
                break;
            }
            // Checked writable above, under the mapping lock still held.
            pi_inflight::register_for(t, e.tid, uaddr2);
            give(e, REQUEUED, &mut w);
            count += 1;
        }
        result.map(|()| count as u64)
    });
    for e in &woken {
        // A host call on cetbox's own word: wakes the thread waiting on it.
        let _ = crate::hostcall::call(
            libc::SYS_futex,
            [
                HostPtr::of(&e.state).into(),
                Arg::from((FUTEX_WAKE | FUTEX_PRIVATE_FLAG) as u64),
                Arg::from(1u64),
                Arg::from(0u64),
                Arg::from(0u64),
                Arg::from(0u64),
            ],
        );
    }
    res
}
