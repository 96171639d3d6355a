//! Virtual CPUs: cetbox's own scheduling of the guest threads that registered a restartable
//! sequence area (rseq(2), `crate::rseq`) onto a fixed set of CPUs, so that what Linux
//! guarantees to such a thread holds: while it runs user code on CPU N, no other thread of
//! its process runs user code on CPU N, and whenever another one did in between (preemption)
//! or it moved (migration), the kernel updates `cpu_id` and aborts an interrupted critical
//! section before the thread's next user instruction (kernel/rseq.c, rseq_handle_notify_resume).
//!
//! Each process has one virtual CPU per CPU in cetbox's host affinity mask when the process
//! started (so `cpu_id` is always a CPU that sched_getaffinity can show). A registered thread
//! holds a lease on one virtual CPU exactly while it runs guest code: it takes one before the
//! engine runs and gives it back when the engine returns (syscall, fault, signal, stop request).
//! Threads that never registered take no lease. A thread keeps its lease across the syscalls
//! that never sleep (`crate::rseq::keep_across`), as a thread keeps its CPU natively.
//!
//! A lease is one word per virtual CPU: the tid of its holder (or of its last holder once
//! free) in the high half and the flags below in the low bits. Taking back the virtual CPU the
//! thread held last, when nobody else held it since, is one compare-and-swap of the word that
//! exact value (its own tid, no flags); giving it back is one fetch-and. Anything else
//! (another virtual CPU, one that is held, reserved or waited for) goes through the slow path
//! under `Vcpus::sched`.
//!
//! Contention: a thread that finds every virtual CPU it may use (its host affinity, which is
//! the guest's sched_setaffinity) held queues (FIFO), marks them CONTENDED and sleeps on a
//! futex word of its own; the release of a contended virtual CPU wakes one waiter, the one
//! that reserved it or else the first queued that may use it. After a time slice (`SLICE`) a
//! waiter reserves the virtual CPU whose holder has held it since the wait began (the longest
//! holder) and asks that holder to yield
//! by setting its stop flag, which makes the engine return `Exit::Interrupted` at its next
//! check point (every translated block transition, loops included); the holder gives the
//! virtual CPU back and queues again, and the reservation keeps it (and anyone else) from
//! taking that virtual CPU again before the waiter. So a thread spinning in user space on a
//! flag another thread of its virtual CPU must set cannot keep that thread out for more than a
//! slice. The wait is not guest code: it ends without the lease when the thread's stop flag is
//! set (a signal arrived, a shootdown or exit_group asks it to stop, a yield request) or the
//! process is ending, and the run loop goes round as after any interruption.

use crate::process::Process;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a thread waits for a virtual CPU before it asks a holder to yield. Linux's EEVDF
/// scheduler gives a task a base slice of 0.75 ms before another runnable task of the CPU may
/// run (kernel/sched/fair.c, sysctl_sched_base_slice, Linux 6.6+): a thread kept out of every
/// virtual CPU it may use waits about as long as it would wait natively for a busy CPU. Much
/// shorter slices would make the waiters' wake-ups and the holders' yields cost more than the
/// guest code between them; much longer ones make threads that spin waiting for one another
/// (user-space spin locks, barriers) slow.
pub const SLICE: Duration = Duration::from_micros(750);

/// The word's flags: the virtual CPU is held; a thread waits for it (its release wakes the
/// waiters); a waiter reserved it (only that waiter may take it next).
const HELD: u64 = 1;
const CONTENDED: u64 = 2;
const RESERVED: u64 = 4;
const FLAGS: u64 = HELD | CONTENDED | RESERVED;

struct Slot {
    /// The CPU number the guest sees (`cpu_id`, getcpu).
    id: u32,
    word: AtomicU64,
}

/// A thread waiting for a virtual CPU.
struct Waiter {
    tid: i32,
    /// Its futex word, bumped to wake it.
    word: Arc<AtomicU32>,
    allowed: Vec<u64>,
}

/// What the slow path changes under `Vcpus::sched`.
struct Sched {
    /// Per virtual CPU, the tid that reserved it (0: none).
    reserved: Vec<i32>,
    /// The waiting threads, first come first.
    queue: VecDeque<Waiter>,
}

/// The virtual CPUs of one process (`Process::vcpus`); a fork child gets a new set with the
/// same CPU numbers and no holder.
pub struct Vcpus {
    slots: Box<[Slot]>,
    /// Bumped by every sched_setaffinity: threads recompute which virtual CPUs they may use.
    affinity_gen: AtomicU64,
    sched: Mutex<Sched>,
}

/// A thread's side of its lease (kept in its rseq registration).
#[derive(Clone, Debug)]
pub struct Lease {
    /// The virtual CPU held, or last held (its index, which is also the thread's mm_cid).
    pub vcpu: usize,
    pub held: bool,
    /// The rseq fields must be written (and an interrupted section aborted) at the next
    /// acquisition even if it is not a preemption or migration: set by registration and fork.
    pub notify: bool,
    /// The virtual CPUs the thread may use (bit per index), valid for `allowed_gen`.
    allowed: Vec<u64>,
    allowed_gen: u64,
    /// The futex word the thread sleeps on while it waits (made at its first wait).
    wake: Option<Arc<AtomicU32>>,
}

fn allows(allowed: &[u64], i: usize) -> bool {
    allowed
        .get(i / 64)
        .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
}

impl Lease {
    /// A lease that has never been held; `home` is the virtual CPU tried first.
    pub fn new(home: usize) -> Lease {
        Lease {
            vcpu: home,
            held: false,
            notify: true,
            allowed: Vec::new(),
            allowed_gen: u64::MAX,
            wake: None,
        }
    }

    fn allows(&self, i: usize) -> bool {
        allows(&self.allowed, i)
    }
}

/// The CPUs in this host thread's affinity mask, ascending.
fn host_affinity(tid: i32) -> Vec<u32> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of::<cpu_set_t>() bytes into `set`.
    let r = unsafe { libc::sched_getaffinity(tid, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set within its size (i < CPU_SETSIZE).
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .map(|i| i as u32)
        .collect()
}

impl Vcpus {
    /// One virtual CPU per CPU of cetbox's host affinity mask now.
    pub fn from_host() -> Vcpus {
        let mut ids = host_affinity(0);
        if ids.is_empty() {
            ids.push(0);
        }
        Vcpus::with_ids(&ids)
    }

    /// Virtual CPUs with the given CPU numbers, none held.
    pub fn with_ids(ids: &[u32]) -> Vcpus {
        Vcpus {
            slots: ids
                .iter()
                .map(|&id| Slot {
                    id,
                    word: AtomicU64::new(0),
                })
                .collect(),
            affinity_gen: AtomicU64::new(0),
            sched: Mutex::new(Sched {
                reserved: vec![0; ids.len()],
                queue: VecDeque::new(),
            }),
        }
    }

    /// The CPU numbers, by index.
    pub fn ids(&self) -> Vec<u32> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// How many virtual CPUs there are.
    pub fn count(&self) -> usize {
        self.slots.len()
    }

    /// The CPU number of virtual CPU `i`.
    pub fn cpu_id(&self, i: usize) -> u32 {
        self.slots.get(i).map_or(0, |s| s.id)
    }

    /// A thread's affinity may have changed (sched_setaffinity).
    pub fn affinity_changed(&self) {
        self.affinity_gen.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes a virtual CPU for thread `tid`, waiting if all it may use are held. Returns
    /// whether this is a preemption or migration (another virtual CPU than last time, or the
    /// same one after another thread held it), or None if the wait was interrupted (`stop`
    /// set, or the process ending): then nothing is held.
    pub fn acquire(
        &self,
        tid: i32,
        lease: &mut Lease,
        stop: &AtomicBool,
        proc: &Process,
    ) -> Option<bool> {
        let me = (tid as u32 as u64) << 32;
        if lease.allowed_gen == self.affinity_gen.load(Ordering::Relaxed)
            && lease.allows(lease.vcpu)
        {
            if let Some(s) = self.slots.get(lease.vcpu) {
                if s.word
                    .compare_exchange(me, me | HELD, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    lease.held = true;
                    return Some(false);
                }
            }
        }
        self.acquire_slow(tid, lease, stop, proc)
    }

    /// Whether a waiter reserved virtual CPU `i` (asked its holder to yield).
    pub fn yield_requested(&self, i: usize) -> bool {
        self.slots
            .get(i)
            .is_some_and(|s| s.word.load(Ordering::Relaxed) & RESERVED != 0)
    }

    /// Gives back virtual CPU `i`, held by the caller; wakes one waiter if any marked it.
    pub fn release(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            let old = s.word.fetch_and(!(HELD | CONTENDED), Ordering::Release);
            if old & CONTENDED != 0 {
                let g = self.sched();
                self.wake_one(&g, i);
            }
        }
    }

    /// Under the lock: wakes the waiter that reserved virtual CPU `i`, or else the first
    /// queued one that may use it.
    fn wake_one(&self, g: &Sched, i: usize) {
        let r = g.reserved.get(i).copied().unwrap_or(0);
        let w = g
            .queue
            .iter()
            .find(|w| r != 0 && w.tid == r)
            .or_else(|| g.queue.iter().find(|w| allows(&w.allowed, i)));
        if let Some(w) = w {
            w.word.fetch_add(1, Ordering::SeqCst);
            // SAFETY: FUTEX_WAKE on a word this process owns (kept alive by the Arc); no
            // memory is written.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    w.word.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                );
            }
        }
    }

    fn sched(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Recomputes the virtual CPUs `tid` may use if an affinity changed since.
    fn refresh_allowed(&self, tid: i32, lease: &mut Lease) {
        let gen = self.affinity_gen.load(Ordering::SeqCst);
        if lease.allowed_gen == gen {
            return;
        }
        let host = host_affinity(tid);
        let n = self.slots.len();
        let mut allowed = vec![0u64; n.div_ceil(64)];
        for (i, s) in self.slots.iter().enumerate() {
            if host.contains(&s.id) {
                allowed[i / 64] |= 1 << (i % 64);
            }
        }
        if allowed.iter().all(|&w| w == 0) {
            // An affinity outside the CPUs the process started with: any virtual CPU (the
            // guarantee that matters, mutual exclusion per virtual CPU, still holds).
            for i in 0..n {
                allowed[i / 64] |= 1 << (i % 64);
            }
        }
        lease.allowed = allowed;
        lease.allowed_gen = gen;
    }

    /// The allowed virtual CPUs, the last held first, then the following ones in turn.
    fn order(&self, lease: &Lease) -> impl Iterator<Item = usize> + '_ {
        let n = self.slots.len();
        let first = lease.vcpu.min(n.saturating_sub(1));
        let allowed: Vec<bool> = (0..n).map(|i| lease.allows(i)).collect();
        (0..n)
            .map(move |k| (first + k) % n)
            .filter(move |&i| allowed[i])
    }

    /// Under the lock: takes a free allowed virtual CPU not reserved for another thread;
    /// returns its index and its previous holder's tid. Drops this thread's other
    /// reservations.
    fn try_take(&self, g: &mut Sched, tid: i32, lease: &Lease) -> Option<(usize, i32)> {
        let me = (tid as u32 as u64) << 32;
        for i in self.order(lease) {
            let s = &self.slots[i];
            let mut cur = s.word.load(Ordering::Acquire);
            loop {
                if cur & HELD != 0 || (cur & RESERVED != 0 && g.reserved[i] != tid) {
                    break;
                }
                // Other waiters that may use it: this holder's release must wake one.
                let others = g
                    .queue
                    .iter()
                    .any(|w| w.tid != tid && allows(&w.allowed, i));
                let mut new = me | HELD;
                if others {
                    new |= CONTENDED;
                }
                match s
                    .word
                    .compare_exchange(cur, new, Ordering::Acquire, Ordering::Acquire)
                {
                    Ok(_) => {
                        if g.reserved[i] == tid {
                            g.reserved[i] = 0;
                        }
                        self.drop_reservations(g, tid);
                        g.queue.retain(|w| w.tid != tid);
                        return Some((i, (cur >> 32) as u32 as i32));
                    }
                    Err(now) => cur = now,
                }
            }
        }
        None
    }

    /// Under the lock: drops every reservation `tid` holds (waking the waiters, which may
    /// take those virtual CPUs now).
    fn drop_reservations(&self, g: &mut Sched, tid: i32) {
        for i in 0..g.reserved.len() {
            if g.reserved[i] == tid {
                g.reserved[i] = 0;
                let old = self.slots[i].word.fetch_and(!RESERVED, Ordering::SeqCst);
                if old & HELD == 0 {
                    self.wake_one(g, i);
                }
            }
        }
    }

    /// After a slice of waiting: reserves a held virtual CPU (the one held by the same thread
    /// since the wait began, if any; one this thread reserved already, else any other not
    /// reserved) and asks its holder to yield.
    fn request_yield(
        &self,
        g: &mut Sched,
        tid: i32,
        lease: &Lease,
        at_start: &[u64],
        proc: &Process,
    ) {
        let reserved = &mut g.reserved;
        let mine = (0..self.slots.len()).find(|&i| reserved[i] == tid);
        let pick = mine.or_else(|| {
            let candidates: Vec<usize> = self
                .order(lease)
                .filter(|&i| {
                    let w = self.slots[i].word.load(Ordering::Acquire);
                    reserved[i] == 0 && w & HELD != 0
                })
                .collect();
            candidates
                .iter()
                .copied()
                .find(|&i| {
                    let w = self.slots[i].word.load(Ordering::Acquire) & !FLAGS;
                    at_start
                        .get(i)
                        .is_some_and(|&s| s & !FLAGS == w && s & HELD != 0)
                })
                .or_else(|| candidates.first().copied())
        });
        let Some(i) = pick else { return };
        reserved[i] = tid;
        let w = self.slots[i].word.fetch_or(RESERVED, Ordering::SeqCst);
        if w & HELD == 0 {
            // Released meanwhile: the caller takes it at its next look.
            return;
        }
        let holder = (w >> 32) as u32 as i32;
        if let Some(s) = proc.threads.registry().by_tid.get(&holder) {
            s.stop.store(true, Ordering::SeqCst);
        }
    }

    fn acquire_slow(
        &self,
        tid: i32,
        lease: &mut Lease,
        stop: &AtomicBool,
        proc: &Process,
    ) -> Option<bool> {
        let word = lease
            .wake
            .get_or_insert_with(|| Arc::new(AtomicU32::new(0)))
            .clone();
        let start = Instant::now();
        let mut at_start: Vec<u64> = Vec::new();
        let mut last_request = start;
        loop {
            if stop.load(Ordering::Acquire) || proc.threads.exiting() {
                let mut g = self.sched();
                self.drop_reservations(&mut g, tid);
                g.queue.retain(|w| w.tid != tid);
                // A release may have woken this thread, first in line, just before it gave
                // up: pass that wake-up on, or the next waiter would sleep out its slice
                // beside a free virtual CPU.
                for (i, s) in self.slots.iter().enumerate() {
                    if s.word.load(Ordering::Acquire) & (HELD | RESERVED) == 0 {
                        self.wake_one(&g, i);
                    }
                }
                return None;
            }
            self.refresh_allowed(tid, lease);
            let mut g = self.sched();
            if let Some((i, prev)) = self.try_take(&mut g, tid, lease) {
                let moved = i != lease.vcpu || prev != tid;
                lease.vcpu = i;
                lease.held = true;
                return Some(moved);
            }
            match g.queue.iter_mut().find(|w| w.tid == tid) {
                Some(w) => w.allowed.clone_from(&lease.allowed),
                None => g.queue.push_back(Waiter {
                    tid,
                    word: word.clone(),
                    allowed: lease.allowed.clone(),
                }),
            }
            let seen = word.load(Ordering::SeqCst);
            // Everything allowed is held or reserved: mark them so their releases wake one
            // waiter.
            let mut freed = false;
            for i in self.order(lease) {
                let old = self.slots[i].word.fetch_or(CONTENDED, Ordering::SeqCst);
                // Released since the look above, and not kept for another waiter.
                freed |= old & (HELD | RESERVED) == 0;
            }
            if at_start.is_empty() {
                at_start = self
                    .slots
                    .iter()
                    .map(|s| s.word.load(Ordering::Acquire))
                    .collect();
            }
            let now = Instant::now();
            if now.duration_since(last_request) >= SLICE {
                self.request_yield(&mut g, tid, lease, &at_start, proc);
                last_request = now;
                continue;
            }
            drop(g);
            if freed {
                continue;
            }
            let left = SLICE.saturating_sub(now.duration_since(last_request));
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: left.as_nanos().max(1000) as libc::c_long,
            };
            // SAFETY: FUTEX_WAIT reads this thread's own word and the timeout above; it
            // returns at once if the word is no longer `seen`, on a wake, a signal or the
            // timeout.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    seen,
                    &ts as *const libc::timespec,
                );
            }
        }
    }
}
