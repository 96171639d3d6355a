//! The CPU model cetbox presents: an x86-64 baseline processor (SSE2, no SSE3 or AVX, so glibc
//! picks its baseline code paths) with CET shadow stacks (CPUID.(7,0):ECX[7]) in the CET profile.
//! Leaves not listed return zeros.

use crate::CpuConfig;

pub const VENDOR: &[u8; 12] = b"GenuineIntel";
pub const BRAND: &str = "cetbox virtual x86-64 CPU with CET shadow stacks";
const MAX_BASIC: u32 = 0xb;
const MAX_EXT: u32 = 0x8000_0008;

/// Family 6, model 0x3a, stepping 9 (an Ivy Bridge signature, whose AVX we do not report).
const SIGNATURE: u32 = (0x3 << 16) | (0x6 << 8) | (0xa << 4) | 0x9;

/// CPUID.1:EDX: FPU, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, SEP, MTRR, PGE, MCA, CMOV, PAT,
/// PSE-36, CLFSH, MMX, FXSR, SSE, SSE2.
const LEAF1_EDX: u32 = (1 << 0)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26);

/// CET_SS: CPUID.(7,0):ECX bit 7.
pub const LEAF7_ECX_CET_SS: u32 = 1 << 7;

/// Returns (eax, ebx, ecx, edx) for CPUID leaf `leaf`, subleaf `sub`.
pub fn cpuid(config: &CpuConfig, leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    match leaf {
        0 => (
            MAX_BASIC,
            word(&VENDOR[0..4]),
            word(&VENDOR[8..12]),
            word(&VENDOR[4..8]),
        ),
        // EBX: CLFLUSH line 8 qwords, one logical processor, APIC id 0.
        1 => (SIGNATURE, (8 << 8) | (1 << 16), 0, LEAF1_EDX),
        // Descriptor 0xff: cache parameters are in leaf 4.
        2 => (0x0000_ff01, 0, 0, 0),
        4 => cache_leaf(sub),
        7 if sub == 0 => (0, 0, if config.cet { LEAF7_ECX_CET_SS } else { 0 }, 0),
        0xb => match sub {
            0 => (0, 1, 0x100, 0),
            1 => (0, 1, 0x201, 0),
            _ => (0, 0, sub, 0),
        },
        0x8000_0000 => (MAX_EXT, 0, 0, 0),
        // ECX: LAHF/SAHF in 64-bit mode. EDX: SYSCALL, NX, RDTSCP, LM.
        0x8000_0001 => (0, 0, 1, (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)),
        0x8000_0002..=0x8000_0004 => {
            let mut b = [0u8; 48];
            b[..BRAND.len()].copy_from_slice(BRAND.as_bytes());
            let o = (leaf - 0x8000_0002) as usize * 16;
            (
                word(&b[o..]),
                word(&b[o + 4..]),
                word(&b[o + 8..]),
                word(&b[o + 12..]),
            )
        }
        // L2: 256 KiB, 8-way, 64-byte lines.
        0x8000_0006 => (0, 0, (256 << 16) | (0x6 << 12) | 64, 0),
        // Invariant TSC.
        0x8000_0007 => (0, 0, 0, 1 << 8),
        // 48-bit virtual and physical addresses.
        0x8000_0008 => (0x3030, 0, 0, 0),
        _ => (0, 0, 0, 0),
    }
}

/// Leaf 4, deterministic cache parameters: L1d 32 KiB 8-way, L1i 32 KiB 8-way, L2 256 KiB
/// 8-way, L3 8 MiB 16-way, all with 64-byte lines, one core sharing each.
fn cache_leaf(sub: u32) -> (u32, u32, u32, u32) {
    // (type: 1 data, 2 instruction, 3 unified; level; ways; sets)
    let (ty, level, ways, sets): (u32, u32, u32, u32) = match sub {
        0 => (1, 1, 8, 64),
        1 => (2, 1, 8, 64),
        2 => (3, 2, 8, 512),
        3 => (3, 3, 16, 8192),
        _ => return (0, 0, 0, 0),
    };
    let eax = ty | (level << 5) | (1 << 8); // self-initializing
    let ebx = 63 | ((ways - 1) << 22); // line size 64, one partition
    (eax, ebx, sets - 1, if level == 3 { 1 << 1 } else { 0 })
}
