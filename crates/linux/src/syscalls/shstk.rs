//! The shadow-stack syscall: map_shadow_stack (453). The arch_prctl codes are routed from
//! arch_prctl to `crate::shstk::arch_prctl`.

pub const MAP_SHADOW_STACK: u64 = 453;
