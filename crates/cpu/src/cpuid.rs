//! The CPU model cetbox presents: a processor of the configured microarchitecture level
//! (`level.rs`: x86-64 baseline, x86-64-v2 or x86-64-v3) and nothing beyond it (no AVX-512,
//! TSX, AMX, ERMS...), with CET shadow stacks (CPUID.(7,0):ECX[7]) in the CET profile. Bit
//! positions: Intel SDM Vol. 2A, CPUID, Tables 3-8 to 3-10 and leaf 0DH. Leaves not listed
//! return zeros.

use crate::level::CpuLevel;
use crate::CpuConfig;

pub const VENDOR: &[u8; 12] = b"GenuineIntel";
pub const BRAND: &str = "cetbox virtual x86-64 CPU with CET shadow stacks";
const MAX_BASIC: u32 = 0xd;
const MAX_EXT: u32 = 0x8000_0008;

/// Family 6, model 0x3a, stepping 9 (an Ivy Bridge signature, whose AVX we do not report):
/// the baseline and x86-64-v2 CPUs.
const SIGNATURE: u32 = (0x3 << 16) | (0x6 << 8) | (0xa << 4) | 0x9;
/// Family 6, model 0x8c, stepping 1 (Tiger Lake, the first Intel CPU with shadow stacks,
/// whose AVX-512 we do not report): the x86-64-v3 CPU.
const SIGNATURE_V3: u32 = (0x8 << 16) | (0x6 << 8) | (0xc << 4) | 0x1;

/// CPUID.1:ECX of x86-64-v2: SSE3 (0), SSSE3 (9), CX16 (13), SSE4.1 (19), SSE4.2 (20),
/// POPCNT (23).
const LEAF1_ECX_V2: u32 = (1 << 0) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 23);
/// CPUID.1:ECX added by x86-64-v3: FMA (12), MOVBE (22), XSAVE (26), OSXSAVE (27, the OS
/// has set CR4.OSXSAVE), AVX (28), F16C (29).
const LEAF1_ECX_V3: u32 = (1 << 12) | (1 << 22) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 29);
/// CPUID.(7,0):EBX of x86-64-v3: BMI1 (3), AVX2 (5), BMI2 (8).
const LEAF7_EBX_V3: u32 = (1 << 3) | (1 << 5) | (1 << 8);
/// CPUID.80000001H:ECX: LAHF/SAHF in 64-bit mode (0); ABM/LZCNT (5) from x86-64-v3.
const EXT1_ECX_LZCNT: u32 = 1 << 5;

/// The XSAVE area: the 512-byte legacy region and the 64-byte header, then the AVX component
/// (YMM0-15 bits 255:128, 256 bytes) at offset 576 in both the standard and the compacted
/// format (SDM Vol. 1 §13.4).
pub const XSAVE_AVX_OFFSET: u32 = 576;
pub const XSAVE_AVX_SIZE: u32 = 256;
pub const XSAVE_SIZE_V3: u32 = XSAVE_AVX_OFFSET + XSAVE_AVX_SIZE;

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
        1 => {
            let (sig, ecx) = match config.level {
                CpuLevel::X86_64 => (SIGNATURE, 0),
                CpuLevel::V2 => (SIGNATURE, LEAF1_ECX_V2),
                CpuLevel::V3 => (SIGNATURE_V3, LEAF1_ECX_V2 | LEAF1_ECX_V3),
            };
            (sig, (8 << 8) | (1 << 16), ecx, LEAF1_EDX)
        }
        // Descriptor 0xff: cache parameters are in leaf 4.
        2 => (0x0000_ff01, 0, 0, 0),
        4 => cache_leaf(sub),
        7 if sub == 0 => (
            0,
            if config.level >= CpuLevel::V3 {
                LEAF7_EBX_V3
            } else {
                0
            },
            if config.cet { LEAF7_ECX_CET_SS } else { 0 },
            0,
        ),
        0xd if config.level >= CpuLevel::V3 => xsave_leaf(config, sub),
        0xb => match sub {
            0 => (0, 1, 0x100, 0),
            1 => (0, 1, 0x201, 0),
            _ => (0, 0, sub, 0),
        },
        0x8000_0000 => (MAX_EXT, 0, 0, 0),
        // ECX: LAHF/SAHF in 64-bit mode. EDX: SYSCALL, NX, RDTSCP, LM.
        0x8000_0001 => (
            0,
            0,
            1 | if config.level >= CpuLevel::V3 {
                EXT1_ECX_LZCNT
            } else {
                0
            },
            (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29),
        ),
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

/// Leaf 0DH, processor extended state enumeration, for a CPU with x87, SSE and AVX state.
fn xsave_leaf(config: &CpuConfig, sub: u32) -> (u32, u32, u32, u32) {
    match sub {
        // EAX/EDX: XCR0 bits the CPU supports; EBX: size for the components XCR0 enables (the
        // operating system enables all of them); ECX: size for all supported components.
        0 => (config.xcr0() as u32, XSAVE_SIZE_V3, XSAVE_SIZE_V3, 0),
        // EAX: XSAVEOPT (0), XSAVEC and the compacted format (1); no XGETBV with ECX=1, no
        // XSAVES. EBX: the compacted size of XCR0's components.
        1 => (0b11, XSAVE_SIZE_V3, 0, 0),
        // Component 2 (AVX): size and offset in the standard format; ECX 0: user state, not
        // 64-byte aligned in the compacted format.
        2 => (XSAVE_AVX_SIZE, XSAVE_AVX_OFFSET, 0, 0),
        _ => (0, 0, 0, 0),
    }
}
