//! arch_prctl: FS/GS bases, CPUID faulting, XSTATE permissions, LAM, and (through
//! `crate::shstk`) the shadow-stack codes.

use crate::errno::{Errno, SysResult};
use crate::process::Thread;

use crate::abi::TASK_SIZE as TASK_SIZE_MAX;
pub use crate::abi::{
    ARCH_ENABLE_TAGGED_ADDR, ARCH_FORCE_TAGGED_SVA, ARCH_GET_CPUID, ARCH_GET_FS, ARCH_GET_GS,
    ARCH_GET_MAX_TAG_BITS, ARCH_GET_UNTAG_MASK, ARCH_GET_XCOMP_GUEST_PERM, ARCH_GET_XCOMP_PERM,
    ARCH_GET_XCOMP_SUPP, ARCH_REQ_XCOMP_GUEST_PERM, ARCH_REQ_XCOMP_PERM, ARCH_SET_CPUID,
    ARCH_SET_FS, ARCH_SET_GS,
};
/// The user XSTATE features of the emulated CPU: x87 and SSE, plus AVX on x86-64-v3 (never
/// AMX).
fn xfeatures(t: &Thread) -> u64 {
    crate::signals::frame::xstate_layout(&t.cpu.config).1
}
/// XFEATURE_MAX of current kernels (APX, index 19, is the last user feature).
const XFEATURE_MAX: u64 = 20;

fn put_u64(t: &Thread, addr: u64, v: u64) -> SysResult {
    if addr.checked_add(8).is_none_or(|e| e > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT);
    }
    t.mem().write_u64(addr, v)?;
    Ok(0)
}

pub(crate) fn sys_arch_prctl(t: &mut Thread, a: [u64; 6]) -> SysResult {
    // The option is an int: the upper 32 bits are ignored.
    let code = a[0] as u32;
    let arg = a[1];
    if let Some(r) = crate::shstk::arch_prctl(t, code as u64, arg) {
        return r;
    }
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if arg >= TASK_SIZE_MAX {
                return Err(Errno::EPERM);
            }
            if code == ARCH_SET_FS {
                t.cpu.fs_base = arg;
            } else {
                t.cpu.gs_base = arg;
            }
            Ok(0)
        }
        ARCH_GET_FS => put_u64(t, arg, t.cpu.fs_base),
        ARCH_GET_GS => put_u64(t, arg, t.cpu.gs_base),
        // CPUID always executes (the CPU model has no CPUID faulting).
        ARCH_GET_CPUID => Ok(1),
        // Linux answers ENODEV, whatever the argument, on CPUs without CPUID faulting; the
        // emulated CPU is one of them.
        ARCH_SET_CPUID => Err(Errno::ENODEV),
        ARCH_GET_XCOMP_SUPP | ARCH_GET_XCOMP_PERM | ARCH_GET_XCOMP_GUEST_PERM => {
            put_u64(t, arg, xfeatures(t))
        }
        ARCH_REQ_XCOMP_PERM | ARCH_REQ_XCOMP_GUEST_PERM => {
            if arg >= XFEATURE_MAX {
                Err(Errno::EINVAL)
            } else if xfeatures(t) & (1 << arg) == 0 {
                // AMX (18) and other features the CPU lacks.
                Err(Errno::EOPNOTSUPP)
            } else {
                Ok(0)
            }
        }
        // No linear-address masking: the untag mask is all ones and no tag bits exist.
        ARCH_GET_UNTAG_MASK => put_u64(t, arg, u64::MAX),
        ARCH_GET_MAX_TAG_BITS => put_u64(t, arg, 0),
        ARCH_ENABLE_TAGGED_ADDR => Err(Errno::ENODEV),
        ARCH_FORCE_TAGGED_SVA => Ok(0),
        // ARCH_MAP_VDSO_* (CRIU's vDSO remapping) and unknown codes.
        _ => Err(Errno::EINVAL),
    }
}
