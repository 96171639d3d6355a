//! The shadow-stack syscall: map_shadow_stack (453). The arch_prctl codes are routed from
//! arch_prctl to `crate::shstk::arch_prctl`.

use super::SyscallFn;

pub const MAP_SHADOW_STACK: u64 = 453;

pub fn lookup(nr: u64) -> Option<SyscallFn> {
    match nr {
        MAP_SHADOW_STACK => Some(crate::shstk::map_shadow_stack),
        _ => None,
    }
}
