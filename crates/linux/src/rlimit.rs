//! The guest's memory resource limits: RLIMIT_AS, RLIMIT_DATA and RLIMIT_STACK.
//!
//! They govern the guest's mappings, never cetbox's own memory: were they passed to the host,
//! a guest lowering RLIMIT_AS to 1 GiB would make cetbox's own allocations (and its page-table
//! and guest-placement reservations) fail and abort it. So cetbox keeps them here, starting
//! from the values it inherited, raises its own host soft limits to the hard ones at start-up,
//! and enforces the guest's limits on guest mappings as Linux's `may_expand_vm`
//! (mm/mmap.c) and `check_data_rlimit` do. A raise of a hard limit still goes to the host
//! first, so an unprivileged guest gets EPERM as on Linux. Forked children inherit them
//! with the rest of cetbox's memory; execve keeps them.

use crate::errno::Errno;
use cetbox_mem::{AddressSpace, Vma};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

pub const INFINITY: u64 = u64::MAX;
const RESOURCES: [i32; 3] = [
    libc::RLIMIT_AS as i32,
    libc::RLIMIT_DATA as i32,
    libc::RLIMIT_STACK as i32,
];

// Statics on purpose: Linux keeps rlimits per process (signal_struct), shared by its threads,
// copied by fork and kept by execve; a static of the host process has exactly that lifetime
// (the host fork copies it, and nothing of a fork child needs resetting). `INIT` makes the
// start-up snapshot of the inherited limits once per host process.
static LIMITS: [[AtomicU64; 2]; 3] = [const { [const { AtomicU64::new(INFINITY) }; 2] }; 3];
static INIT: Once = Once::new();

fn slot(resource: i32) -> Option<usize> {
    RESOURCES.iter().position(|&r| r == resource)
}

fn host_get(resource: i32) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to fill.
    (unsafe { libc::getrlimit(resource as _, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

fn host_set(resource: i32, soft: u64, hard: u64) -> Result<(), Errno> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `r` is a valid rlimit.
    if unsafe { libc::setrlimit(resource as _, &r) } != 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Whether the process has CAP_SYS_RESOURCE in its effective set (capget).
fn has_cap_sys_resource() -> bool {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_SYS_RESOURCE: u32 = 24;
    let mut header = [LINUX_CAPABILITY_VERSION_3, 0u32];
    // Two __user_cap_data_struct {effective, permitted, inheritable}.
    let mut data = [0u32; 6];
    // SAFETY: capget with a valid header and room for two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr()) };
    r == 0 && data[0] & (1 << CAP_SYS_RESOURCE) != 0
}

/// Takes over the limits cetbox inherited as the guest's and lifts cetbox's own soft limits
/// to the hard ones. Idempotent; called at start-up (and by every accessor).
pub fn init() {
    INIT.call_once(|| {
        for (i, &res) in RESOURCES.iter().enumerate() {
            if let Some((soft, hard)) = host_get(res) {
                LIMITS[i][0].store(soft, Ordering::Relaxed);
                LIMITS[i][1].store(hard, Ordering::Relaxed);
                if res != libc::RLIMIT_STACK as i32 && soft != hard {
                    let _ = host_set(res, hard, hard);
                }
            }
        }
    });
}

/// The guest's (soft, hard) limit for `resource`, or None if the host's applies.
pub fn get(resource: i32) -> Option<(u64, u64)> {
    init();
    let i = slot(resource)?;
    Some((
        LIMITS[i][0].load(Ordering::Relaxed),
        LIMITS[i][1].load(Ordering::Relaxed),
    ))
}

/// Sets the guest's limit for a resource kept here (Linux's do_prlimit: EINVAL if soft >
/// hard, EPERM to raise the hard limit without CAP_SYS_RESOURCE, which the host decides).
/// Returns false if the resource is not one kept here.
pub fn set(resource: i32, soft: u64, hard: u64) -> Result<bool, Errno> {
    init();
    let Some(i) = slot(resource) else {
        return Ok(false);
    };
    if soft > hard {
        return Err(Errno::EINVAL);
    }
    if hard > LIMITS[i][1].load(Ordering::Relaxed) {
        // Raising a hard limit needs CAP_SYS_RESOURCE (kernel/sys.c, do_prlimit).
        if !has_cap_sys_resource() {
            return Err(Errno::EPERM);
        }
        let (hs, hh) = host_get(resource).unwrap_or((INFINITY, INFINITY));
        if hard > hh {
            host_set(resource, hs, hard)?;
        }
    }
    LIMITS[i][0].store(soft, Ordering::Relaxed);
    LIMITS[i][1].store(hard, Ordering::Relaxed);
    Ok(true)
}

/// The guest's soft limit for `resource` (INFINITY if none).
pub fn soft(resource: i32) -> u64 {
    get(resource).map_or(INFINITY, |l| l.0)
}

/// RLIMIT_STACK (soft), or None when unlimited.
pub fn stack_rlimit() -> Option<u64> {
    // The guest's RLIMIT_STACK, not cetbox's.
    match soft(libc::RLIMIT_STACK as i32) {
        INFINITY => None,
        r => Some(r),
    }
}

/// Linux's is_data_mapping: private, writable, not a stack.
pub fn is_data(prot: u32, shared: bool, growsdown: bool) -> bool {
    prot & libc::PROT_WRITE as u32 != 0 && !shared && !growsdown
}

/// Linux's may_expand_vm: whether the guest may add `add` bytes of mappings (`data` ones
/// counting against RLIMIT_DATA too), `replaced` bytes of existing mappings going away.
pub fn may_expand(mem: &AddressSpace, add: u64, data: bool, replaced: (u64, u64)) -> bool {
    let (as_lim, data_lim) = (soft(libc::RLIMIT_AS as i32), soft(libc::RLIMIT_DATA as i32));
    if as_lim == INFINITY && (data_lim == INFINITY || !data) {
        return true;
    }
    let vmas = mem.vmas();
    let total: u64 = vmas.iter().map(Vma::len).sum();
    if total.saturating_sub(replaced.0).saturating_add(add) > as_lim {
        return false;
    }
    if data && data_lim != INFINITY {
        let in_data: u64 = vmas
            .iter()
            .filter(|v| is_data(v.prot, v.shared, v.growsdown))
            .map(Vma::len)
            .sum();
        if in_data.saturating_sub(replaced.1).saturating_add(add) > data_lim {
            return false;
        }
    }
    true
}

/// The bytes of existing mappings in [start, end), in total and in data mappings (what a
/// MAP_FIXED mapping there replaces).
pub fn overlap(mem: &AddressSpace, start: u64, end: u64) -> (u64, u64) {
    let mut total = 0;
    let mut data = 0;
    for v in mem.vmas() {
        let (s, e) = (v.start.max(start), v.end.min(end));
        if s < e {
            total += e - s;
            if is_data(v.prot, v.shared, v.growsdown) {
                data += e - s;
            }
        }
    }
    (total, data)
}
