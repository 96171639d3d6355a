//! SSE floating-point operations executed on the host CPU.
//!
//! Rounding, exception flags, denormal handling and NaN selection must be bit-exact with real
//! hardware; the only implementation that is exact by construction is the hardware itself.
//! Every function here loads a caller-chosen MXCSR, runs one instruction on values held in
//! host registers (never guest memory), reads MXCSR back, and restores the host's MXCSR.
//!
//! The caller always passes an MXCSR with every exception masked, so the host instruction can
//! never trap; unmasked guest exceptions are decided afterwards from the flags returned.

/// The host's MXCSR (STMXCSR, SDM Vol. 2B).
#[inline(always)]
pub(crate) fn stmxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stores MXCSR into a local u32.
    unsafe {
        core::arch::asm!("stmxcsr [{p}]", p = in(reg) core::ptr::addr_of_mut!(v), options(nostack, preserves_flags));
    }
    v
}

/// Loads the host's MXCSR (LDMXCSR, SDM Vol. 2B).
#[inline(always)]
pub(crate) fn ldmxcsr(v: u32) {
    // SAFETY: loads MXCSR from a local u32; callers pass either the value saved by `stmxcsr`
    // or one with every exception masked, so no later SSE instruction of the host can trap.
    unsafe {
        core::arch::asm!("ldmxcsr [{p}]", p = in(reg) core::ptr::addr_of!(v), options(nostack, preserves_flags));
    }
}

/// Binary (or two-operand unary) operations of the form `OP xmm_a, xmm_b`: the result is
/// what the host leaves in `a`, so scalar forms keep `a`'s upper lanes as the guest's do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bin {
    Addps,
    Addpd,
    Addss,
    Addsd,
    Subps,
    Subpd,
    Subss,
    Subsd,
    Mulps,
    Mulpd,
    Mulss,
    Mulsd,
    Divps,
    Divpd,
    Divss,
    Divsd,
    Minps,
    Minpd,
    Minss,
    Minsd,
    Maxps,
    Maxpd,
    Maxss,
    Maxsd,
    Sqrtps,
    Sqrtpd,
    Sqrtss,
    Sqrtsd,
    Rcpps,
    Rcpss,
    Rsqrtps,
    Rsqrtss,
    Cvtps2pd,
    Cvtpd2ps,
    Cvtss2sd,
    Cvtsd2ss,
    Cvtdq2ps,
    Cvtps2dq,
    Cvttps2dq,
    Cvtdq2pd,
    Cvtpd2dq,
    Cvttpd2dq,
    /// Compare with predicate 0..=7 (only the low 3 bits are used by legacy SSE).
    Cmpps(u8),
    Cmppd(u8),
    Cmpss(u8),
    Cmpsd(u8),
}

/// COMISS/UCOMISS/COMISD/UCOMISD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Comiss,
    Ucomiss,
    Comisd,
    Ucomisd,
}

/// Float to integer conversions; the suffix is the destination width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToInt {
    Cvtss2si32,
    Cvtss2si64,
    Cvttss2si32,
    Cvttss2si64,
    Cvtsd2si32,
    Cvtsd2si64,
    Cvttsd2si32,
    Cvttsd2si64,
}

/// Integer to float conversions; the suffix is the source width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromInt {
    Cvtsi2ss32,
    Cvtsi2ss64,
    Cvtsi2sd32,
    Cvtsi2sd64,
}

/// Bit-for-bit conversions between an XMM value and the intrinsic vector type.
#[cfg(target_arch = "x86_64")]
pub(crate) use imp::{from_m, to_m};

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::{Bin, Cmp, FromInt, ToInt};
    use core::arch::asm;
    use core::arch::x86_64::__m128i;

    /// The MXCSR the host instruction runs under: the caller's, with every exception masked
    /// and no reserved bit set, whatever the caller passed (these functions are safe to call).
    #[inline(always)]
    fn safe_csr(csr: u32) -> u32 {
        (csr & 0xffff) | 0x1f80
    }

    #[inline(always)]
    pub(crate) fn to_m(v: u128) -> __m128i {
        // SAFETY: u128 and __m128i are both 16 bytes of plain data with no invalid values.
        unsafe { core::mem::transmute::<u128, __m128i>(v) }
    }

    #[inline(always)]
    pub(crate) fn from_m(v: __m128i) -> u128 {
        // SAFETY: as in `to_m`.
        unsafe { core::mem::transmute::<__m128i, u128>(v) }
    }

    /// Runs the instruction template (pieces of an `asm!` string over `{a}` and `{b}`) on
    /// (a, b) under MXCSR `csr`; returns (a, MXCSR after).
    macro_rules! under_csr {
        ([$($piece:expr),*], $csr:expr, $a:expr, $b:expr) => {{
            let mut a = to_m($a);
            let b = to_m($b);
            let mut csr: u32 = safe_csr($csr);
            let mut save: u32 = 0;
            // SAFETY: the asm reads and writes only the two local u32s through pointers to
            // them, and registers it declares; the host MXCSR is saved first and restored
            // last. `safe_csr` masks every exception (so the instruction cannot trap) and
            // keeps only bits 0-15, all defined on x86-64 hosts (so LDMXCSR cannot #GP).
            unsafe {
                asm!(
                    "stmxcsr [{s}]",
                    "ldmxcsr [{c}]",
                    concat!($($piece),*),
                    "stmxcsr [{c}]",
                    "ldmxcsr [{s}]",
                    a = inout(xmm_reg) a,
                    b = in(xmm_reg) b,
                    c = in(reg) core::ptr::addr_of_mut!(csr),
                    s = in(reg) core::ptr::addr_of_mut!(save),
                    options(nostack),
                );
            }
            (from_m(a), csr)
        }};
    }

    /// `INS a, b` under MXCSR `csr`; returns (a, MXCSR after).
    macro_rules! bin {
        ($ins:literal, $csr:expr, $a:expr, $b:expr) => {
            under_csr!([$ins, " {a}, {b}"], $csr, $a, $b)
        };
    }

    /// `CMPxx a, b, imm` for a constant predicate.
    macro_rules! cmp {
        ($ins:literal, $p:expr, $csr:expr, $a:expr, $b:expr) => {{
            match $p & 7 {
                0 => under_csr!([$ins, " {a}, {b}, 0"], $csr, $a, $b),
                1 => under_csr!([$ins, " {a}, {b}, 1"], $csr, $a, $b),
                2 => under_csr!([$ins, " {a}, {b}, 2"], $csr, $a, $b),
                3 => under_csr!([$ins, " {a}, {b}, 3"], $csr, $a, $b),
                4 => under_csr!([$ins, " {a}, {b}, 4"], $csr, $a, $b),
                5 => under_csr!([$ins, " {a}, {b}, 5"], $csr, $a, $b),
                6 => under_csr!([$ins, " {a}, {b}, 6"], $csr, $a, $b),
                _ => under_csr!([$ins, " {a}, {b}, 7"], $csr, $a, $b),
            }
        }};
    }

    pub fn bin(op: Bin, csr: u32, a: u128, b: u128) -> Option<(u128, u32)> {
        Some(match op {
            Bin::Addps => bin!("addps", csr, a, b),
            Bin::Addpd => bin!("addpd", csr, a, b),
            Bin::Addss => bin!("addss", csr, a, b),
            Bin::Addsd => bin!("addsd", csr, a, b),
            Bin::Subps => bin!("subps", csr, a, b),
            Bin::Subpd => bin!("subpd", csr, a, b),
            Bin::Subss => bin!("subss", csr, a, b),
            Bin::Subsd => bin!("subsd", csr, a, b),
            Bin::Mulps => bin!("mulps", csr, a, b),
            Bin::Mulpd => bin!("mulpd", csr, a, b),
            Bin::Mulss => bin!("mulss", csr, a, b),
            Bin::Mulsd => bin!("mulsd", csr, a, b),
            Bin::Divps => bin!("divps", csr, a, b),
            Bin::Divpd => bin!("divpd", csr, a, b),
            Bin::Divss => bin!("divss", csr, a, b),
            Bin::Divsd => bin!("divsd", csr, a, b),
            Bin::Minps => bin!("minps", csr, a, b),
            Bin::Minpd => bin!("minpd", csr, a, b),
            Bin::Minss => bin!("minss", csr, a, b),
            Bin::Minsd => bin!("minsd", csr, a, b),
            Bin::Maxps => bin!("maxps", csr, a, b),
            Bin::Maxpd => bin!("maxpd", csr, a, b),
            Bin::Maxss => bin!("maxss", csr, a, b),
            Bin::Maxsd => bin!("maxsd", csr, a, b),
            Bin::Sqrtps => bin!("sqrtps", csr, a, b),
            Bin::Sqrtpd => bin!("sqrtpd", csr, a, b),
            Bin::Sqrtss => bin!("sqrtss", csr, a, b),
            Bin::Sqrtsd => bin!("sqrtsd", csr, a, b),
            Bin::Rcpps => bin!("rcpps", csr, a, b),
            Bin::Rcpss => bin!("rcpss", csr, a, b),
            Bin::Rsqrtps => bin!("rsqrtps", csr, a, b),
            Bin::Rsqrtss => bin!("rsqrtss", csr, a, b),
            Bin::Cvtps2pd => bin!("cvtps2pd", csr, a, b),
            Bin::Cvtpd2ps => bin!("cvtpd2ps", csr, a, b),
            Bin::Cvtss2sd => bin!("cvtss2sd", csr, a, b),
            Bin::Cvtsd2ss => bin!("cvtsd2ss", csr, a, b),
            Bin::Cvtdq2ps => bin!("cvtdq2ps", csr, a, b),
            Bin::Cvtps2dq => bin!("cvtps2dq", csr, a, b),
            Bin::Cvttps2dq => bin!("cvttps2dq", csr, a, b),
            Bin::Cvtdq2pd => bin!("cvtdq2pd", csr, a, b),
            Bin::Cvtpd2dq => bin!("cvtpd2dq", csr, a, b),
            Bin::Cvttpd2dq => bin!("cvttpd2dq", csr, a, b),
            Bin::Cmpps(p) => cmp!("cmpps", p, csr, a, b),
            Bin::Cmppd(p) => cmp!("cmppd", p, csr, a, b),
            Bin::Cmpss(p) => cmp!("cmpss", p, csr, a, b),
            Bin::Cmpsd(p) => cmp!("cmpsd", p, csr, a, b),
        })
    }

    /// The low lane of `a * b + c` rounded once (VFMADD213SS/SD) under MXCSR `csr`: (result,
    /// MXCSR after); None on a host without FMA.
    pub fn fma(double: bool, csr: u32, a: u128, b: u128, c: u128) -> Option<(u128, u32)> {
        if !std::arch::is_x86_feature_detected!("fma") {
            return None;
        }
        let mut a = to_m(a);
        let b = to_m(b);
        let c = to_m(c);
        let mut csr: u32 = safe_csr(csr);
        let mut save: u32 = 0;
        macro_rules! run {
            ($ins:literal) => {
                // SAFETY: as in `bin!` (the host has FMA: checked above).
                unsafe {
                    asm!(
                        "stmxcsr [{s}]",
                        "ldmxcsr [{cs}]",
                        concat!($ins, " {a}, {b}, {c}"),
                        "stmxcsr [{cs}]",
                        "ldmxcsr [{s}]",
                        a = inout(xmm_reg) a,
                        b = in(xmm_reg) b,
                        c = in(xmm_reg) c,
                        cs = in(reg) core::ptr::addr_of_mut!(csr),
                        s = in(reg) core::ptr::addr_of_mut!(save),
                        options(nostack),
                    );
                }
            };
        }
        if double {
            run!("vfmadd213sd");
        } else {
            run!("vfmadd213ss");
        }
        Some((from_m(a), csr))
    }

    /// Returns (ZF, PF, CF, MXCSR after).
    pub fn compare(op: Cmp, csr: u32, a: u128, b: u128) -> Option<(bool, bool, bool, u32)> {
        macro_rules! comi {
            ($ins:literal) => {{
                let a = to_m(a);
                let b = to_m(b);
                let mut csr: u32 = safe_csr(csr);
                let mut save: u32 = 0;
                let (z, p, c): (u8, u8, u8);
                // SAFETY: as in `bin!`; the host flags it changes are declared clobbered by
                // default (no `preserves_flags`).
                unsafe {
                    asm!(
                        "stmxcsr [{s}]",
                        "ldmxcsr [{c}]",
                        concat!($ins, " {a}, {b}"),
                        "setz {z}",
                        "setp {p}",
                        "setc {cf}",
                        "stmxcsr [{c}]",
                        "ldmxcsr [{s}]",
                        a = in(xmm_reg) a,
                        b = in(xmm_reg) b,
                        z = out(reg_byte) z,
                        p = out(reg_byte) p,
                        cf = out(reg_byte) c,
                        c = in(reg) core::ptr::addr_of_mut!(csr),
                        s = in(reg) core::ptr::addr_of_mut!(save),
                        options(nostack),
                    );
                }
                (z != 0, p != 0, c != 0, csr)
            }};
        }
        Some(match op {
            Cmp::Comiss => comi!("comiss"),
            Cmp::Ucomiss => comi!("ucomiss"),
            Cmp::Comisd => comi!("comisd"),
            Cmp::Ucomisd => comi!("ucomisd"),
        })
    }

    /// Returns (integer result zero-extended from its width, MXCSR after).
    pub fn to_int(op: ToInt, csr: u32, a: u128) -> Option<(u64, u32)> {
        macro_rules! cvt {
            ($ins:literal, $reg:literal) => {{
                let a = to_m(a);
                let mut csr: u32 = safe_csr(csr);
                let mut save: u32 = 0;
                let r: u64;
                // SAFETY: as in `bin!`.
                unsafe {
                    asm!(
                        "stmxcsr [{s}]",
                        "ldmxcsr [{c}]",
                        concat!($ins, " {r", $reg, "}, {a}"),
                        "stmxcsr [{c}]",
                        "ldmxcsr [{s}]",
                        a = in(xmm_reg) a,
                        r = out(reg) r,
                        c = in(reg) core::ptr::addr_of_mut!(csr),
                        s = in(reg) core::ptr::addr_of_mut!(save),
                        options(nostack),
                    );
                }
                (r, csr)
            }};
        }
        Some(match op {
            ToInt::Cvtss2si32 => cvt!("cvtss2si", ":e"),
            ToInt::Cvtss2si64 => cvt!("cvtss2si", ""),
            ToInt::Cvttss2si32 => cvt!("cvttss2si", ":e"),
            ToInt::Cvttss2si64 => cvt!("cvttss2si", ""),
            ToInt::Cvtsd2si32 => cvt!("cvtsd2si", ":e"),
            ToInt::Cvtsd2si64 => cvt!("cvtsd2si", ""),
            ToInt::Cvttsd2si32 => cvt!("cvttsd2si", ":e"),
            ToInt::Cvttsd2si64 => cvt!("cvttsd2si", ""),
        })
    }

    /// Converts `v` into the low lane of `a`; returns (a, MXCSR after).
    pub fn from_int(op: FromInt, csr: u32, a: u128, v: u64) -> Option<(u128, u32)> {
        macro_rules! cvt {
            ($ins:literal, $reg:literal) => {{
                let mut a = to_m(a);
                let mut csr: u32 = safe_csr(csr);
                let mut save: u32 = 0;
                // SAFETY: as in `bin!`.
                unsafe {
                    asm!(
                        "stmxcsr [{s}]",
                        "ldmxcsr [{c}]",
                        concat!($ins, " {a}, {v", $reg, "}"),
                        "stmxcsr [{c}]",
                        "ldmxcsr [{s}]",
                        a = inout(xmm_reg) a,
                        v = in(reg) v,
                        c = in(reg) core::ptr::addr_of_mut!(csr),
                        s = in(reg) core::ptr::addr_of_mut!(save),
                        options(nostack),
                    );
                }
                (from_m(a), csr)
            }};
        }
        Some(match op {
            FromInt::Cvtsi2ss32 => cvt!("cvtsi2ss", ":e"),
            FromInt::Cvtsi2ss64 => cvt!("cvtsi2ss", ""),
            FromInt::Cvtsi2sd32 => cvt!("cvtsi2sd", ":e"),
            FromInt::Cvtsi2sd64 => cvt!("cvtsi2sd", ""),
        })
    }
}

/// Without an x86 host there is no exact reference to run; the float handlers report the
/// instruction as unimplemented instead of guessing.
#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::{Bin, Cmp, FromInt, ToInt};

    pub fn bin(_: Bin, _: u32, _: u128, _: u128) -> Option<(u128, u32)> {
        None
    }
    pub fn compare(_: Cmp, _: u32, _: u128, _: u128) -> Option<(bool, bool, bool, u32)> {
        None
    }
    pub fn fma(_: bool, _: u32, _: u128, _: u128, _: u128) -> Option<(u128, u32)> {
        None
    }
    pub fn to_int(_: ToInt, _: u32, _: u128) -> Option<(u64, u32)> {
        None
    }
    pub fn from_int(_: FromInt, _: u32, _: u128, _: u64) -> Option<(u128, u32)> {
        None
    }
}

pub use imp::{bin, compare, fma, from_int, to_int};
