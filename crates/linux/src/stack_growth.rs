//! Stack growth on a guest page fault: what Linux's page-fault handler does before a fault
//! becomes a signal (arch/x86/mm/fault.c, `do_user_addr_fault` → `expand_stack`; mm/mmap.c,
//! `expand_downwards` and `acct_stack_growth`). The run loop asks here first and retries the
//! faulting instruction when the stack grew, invisibly to the guest; otherwise the fault
//! becomes a signal (`signals::fault`).

use crate::abi::TASK_SIZE;
use crate::process::Thread;
use cetbox_mem::{MMAP_MIN_ADDR, PAGE_SIZE, STACK_GUARD_GAP};

/// Grows the main thread's stack (a MAP_GROWSDOWN / [stack] VMA) to cover `addr` if Linux
/// would, up to RLIMIT_STACK. Returns whether the faulting access should be retried.
pub fn try_grow_stack(t: &mut Thread, addr: u64) -> bool {
    if !(MMAP_MIN_ADDR..TASK_SIZE).contains(&addr) {
        return false;
    }
    let mem = t.mem();
    if mem.find_vma(addr).is_some() {
        return false;
    }
    let vmas = mem.vmas();
    let Some(idx) = vmas.iter().position(|v| v.start > addr) else {
        return false;
    };
    let v = &vmas[idx];
    if !v.growsdown {
        return false;
    }
    let new_start = addr & !(PAGE_SIZE - 1);
    let size = v.end - new_start;
    if let Some(r) = crate::rlimit::stack_rlimit() {
        if size > r {
            return false;
        }
    }
    if idx > 0 {
        let prev = &vmas[idx - 1];
        // An accessible mapping below must stay a guard gap away.
        if !prev.growsdown && prev.prot != 0 && new_start - prev.end < STACK_GUARD_GAP {
            return false;
        }
    }
    // acct_stack_growth: the growth counts against RLIMIT_AS like any mapping.
    if !crate::rlimit::may_expand(mem, v.start - new_start, false, (0, 0)) {
        return false;
    }
    mem.grow_down(v.start, new_start).is_ok()
}
