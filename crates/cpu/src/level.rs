//! The microarchitecture levels cetbox can present: the x86-64 psABI's baseline, x86-64-v2 and
//! x86-64-v3 (System V AMD64 ABI, "Micro-architecture levels"; the names gcc's -march and
//! glibc-hwcaps use). Every CPU with CET shadow stacks (Tiger Lake, Zen 3 and later) is at
//! least x86-64-v3.

use iced_x86::CpuidFeature;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuLevel {
    /// x86-64 baseline: SSE2, CMOV, CX8, FXSR, MMX, SYSCALL.
    X86_64,
    /// + CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSSE3, SSE4.1, SSE4.2.
    V2,
    /// + AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE, XSAVE (with OSXSAVE).
    V3,
}

impl Default for CpuLevel {
    fn default() -> Self {
        CpuLevel::DEFAULT
    }
}

impl CpuLevel {
    /// What `cetbox run` presents without `--cpu` (when the host can back it): the highest
    /// level whose instructions, state and signal frames are complete and tested.
    pub const DEFAULT: CpuLevel = CpuLevel::V3;

    pub const ALL: [CpuLevel; 3] = [CpuLevel::X86_64, CpuLevel::V2, CpuLevel::V3];

    /// The name gcc's -march and glibc-hwcaps use.
    pub fn name(self) -> &'static str {
        match self {
            CpuLevel::X86_64 => "x86-64",
            CpuLevel::V2 => "x86-64-v2",
            CpuLevel::V3 => "x86-64-v3",
        }
    }

    pub fn from_name(s: &str) -> Option<CpuLevel> {
        Self::ALL.into_iter().find(|l| l.name() == s)
    }

    /// The host features cetbox needs to present this level: the new instruction forms run on
    /// the host CPU (`exec::hostop`), so each must exist there.
    pub fn missing_host_features(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! need {
            ($($f:tt),*) => {$(
                if !std::arch::is_x86_feature_detected!($f) {
                    v.push($f);
                }
            )*};
        }
        if self >= CpuLevel::V2 {
            need!("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cmpxchg16b");
        }
        if self >= CpuLevel::V3 {
            need!("avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "lzcnt", "movbe", "xsave");
        }
        v
    }

    /// The highest level the host can back.
    pub fn host_max() -> CpuLevel {
        *Self::ALL
            .iter()
            .rev()
            .find(|l| l.missing_host_features().is_empty())
            .unwrap_or(&CpuLevel::X86_64)
    }
}

/// The level that introduces an instruction's CPUID feature, or None when no level cetbox
/// models has it (AVX-512, TSX, AMX, SHA, AES, ...: #UD on every level). Features of the
/// baseline (and CET, handled by its own unit) map to the baseline.
pub fn level_of(f: CpuidFeature) -> Option<CpuLevel> {
    use CpuidFeature as F;
    Some(match f {
        F::INTEL8086
        | F::INTEL8086_ONLY
        | F::INTEL186
        | F::INTEL286
        | F::INTEL386
        | F::INTEL486
        | F::X64
        | F::CPUID
        | F::FPU
        | F::FPU287
        | F::FPU387
        | F::CMOV
        | F::CX8
        | F::FXSR
        | F::MMX
        | F::SSE
        | F::SSE2
        | F::SYSCALL
        | F::RDTSCP
        | F::TSC
        | F::CLFSH
        | F::MULTIBYTENOP
        | F::PAUSE
        | F::CET_SS
        | F::CET_IBT => CpuLevel::X86_64,
        F::SSE3 | F::SSSE3 | F::SSE4_1 | F::SSE4_2 | F::POPCNT | F::CMPXCHG16B => CpuLevel::V2,
        F::AVX
        | F::AVX2
        | F::FMA
        | F::F16C
        | F::BMI1
        | F::BMI2
        | F::LZCNT
        | F::MOVBE
        | F::XSAVE
        | F::XSAVEOPT
        | F::XSAVEC => CpuLevel::V3,
        _ => return None,
    })
}

/// The level an instruction needs: the highest of its CPUID features' levels, or None.
pub fn level_needed(features: &[CpuidFeature]) -> Option<CpuLevel> {
    let mut l = CpuLevel::X86_64;
    for &f in features {
        l = l.max(level_of(f)?);
    }
    Some(l)
}
