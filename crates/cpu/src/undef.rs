//! Results the Intel SDM leaves undefined follow the host CPU cetbox runs on: a guest sees what
//! a native run of the same program on the same machine sees (and what a translator executing
//! host instructions produces anyway). The host is identified once, at first use, by its CPUID
//! vendor.
//!
//! - AMD (and Hygon) hosts: the rules the interpreter encodes at each instruction, measured on
//!   the AMD EPYC development machine by the differential test (crates/cpu/tests/differential.rs).
//! - Every other host (Intel, Zhaoxin, ...): the undefined bits are taken from the host itself,
//!   by executing the same instruction on the same operands and incoming flags. Only the bits
//!   the SDM calls undefined are taken; every defined bit stays the interpreter's own result.
//!
//! The instructions concerned are those whose undefined results differ between vendors (SDM
//! Vol. 2, "Flags Affected" of each): SHL/SHR/SAR (AF for a non-zero count, OF for counts other
//! than 1, CF for 8/16-bit counts >= the width), ROL/ROR/RCL/RCR (OF for counts other than 1),
//! SHLD/SHRD (AF, OF for counts other than 1; result and every flag for 16-bit counts above 16),
//! MUL/IMUL (SF, ZF, AF, PF) and DIV/IDIV (all six).

use crate::flags::{AF, CF, OF, PF, SF, ZF};
use std::sync::OnceLock;

/// The arithmetic flags a host instruction may be given (no TF, DF, AC or IF changes).
const ARITH: u64 = CF | PF | AF | ZF | SF | OF;

/// Whether the host is an AMD (or Hygon) processor, whose undefined results the interpreter
/// encodes directly.
pub fn host_is_amd() -> bool {
    static AMD: OnceLock<bool> = OnceLock::new();
    *AMD.get_or_init(|| {
        // CPUID leaf 0 exists on every x86-64 processor.
        let r = core::arch::x86_64::__cpuid(0);
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&r.ebx.to_le_bytes());
        v[4..8].copy_from_slice(&r.edx.to_le_bytes());
        v[8..].copy_from_slice(&r.ecx.to_le_bytes());
        &v == b"AuthenticAMD" || &v == b"HygonGenuine"
    })
}

/// Runs `$mn $ops` on the host with the arithmetic flags `$fin` and operand `{a}` (register
/// class `$class`, type `$t`, initial value `$a`), plus the operands after `;`; yields
/// (the final value of a, the host's rflags).
macro_rules! host_op {
    ($mn:literal, $ops:literal, $class:ident, $t:ty, $a:expr, $fin:expr; $($rest:tt)*) => {{
        let mut a = $a as $t;
        let fout: u64;
        // SAFETY: the instruction only reads and writes the named registers and RFLAGS; the
        // flags loaded are arithmetic flags and the reserved bit, so no trap or direction
        // change happens; the stack is used for PUSHF/POPF only (no `nostack`). Callers never
        // ask for a divide that faults.
        unsafe {
            core::arch::asm!(
                "push {fin}",
                "popfq",
                concat!($mn, " ", $ops),
                "pushfq",
                "pop {fout}",
                fin = in(reg) ($fin & ARITH) | 0x2,
                a = inout($class) a,
                fout = lateout(reg) fout,
                $($rest)*
            );
        }
        (a as u64, fout)
    }};
}

/// The host's (result, rflags) for shift/rotate `op` (0 SHL, 1 SHR, 2 SAR, 3 ROL, 4 ROR,
/// 5 RCL, 6 RCR) of the `size`-byte value `a` by `count`, with incoming flags `fin`.
pub fn shift(op: u8, size: u32, a: u64, count: u32, fin: u64) -> (u64, u64) {
    let c = count as u8;
    macro_rules! sized {
        ($mn:literal) => {
            match size {
                1 => host_op!($mn, "{a}, cl", reg_byte, u8, a, fin; in("cl") c),
                2 => host_op!($mn, "{a:x}, cl", reg, u16, a, fin; in("cl") c),
                4 => host_op!($mn, "{a:e}, cl", reg, u32, a, fin; in("cl") c),
                _ => host_op!($mn, "{a:r}, cl", reg, u64, a, fin; in("cl") c),
            }
        };
    }
    match op {
        0 => sized!("shl"),
        1 => sized!("shr"),
        2 => sized!("sar"),
        3 => sized!("rol"),
        4 => sized!("ror"),
        5 => sized!("rcl"),
        _ => sized!("rcr"),
    }
}

/// The host's (result, rflags) for SHLD (`left`) or SHRD of `a` filled from `b` by `count`.
pub fn double_shift(left: bool, size: u32, a: u64, b: u64, count: u32, fin: u64) -> (u64, u64) {
    let c = count as u8;
    macro_rules! sized {
        ($mn:literal) => {
            match size {
                2 => host_op!($mn, "{a:x}, {b:x}, cl", reg, u16, a, fin;
                    b = in(reg) b as u16, in("cl") c),
                4 => host_op!($mn, "{a:e}, {b:e}, cl", reg, u32, a, fin;
                    b = in(reg) b as u32, in("cl") c),
                _ => host_op!($mn, "{a:r}, {b:r}, cl", reg, u64, a, fin;
                    b = in(reg) b, in("cl") c),
            }
        };
    }
    if left {
        sized!("shld")
    } else {
        sized!("shrd")
    }
}

/// Which multiply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mul {
    /// One-operand MUL (rDX:rAX = rAX * src).
    Unsigned,
    /// One-operand IMUL.
    Signed,
    /// IMUL r, r/m (and r, r/m, imm, which computes the same): r = r * src, truncated.
    SignedTruncated,
}

/// The host's rflags after multiply `kind` of `a` by `b` (both `size` bytes).
pub fn mul(kind: Mul, size: u32, a: u64, b: u64, fin: u64) -> u64 {
    macro_rules! one {
        ($mn:literal) => {
            match size {
                1 => host_op!($mn, "{a}", reg_byte, u8, b, fin; inout("ax") a as u16 => _).1,
                2 => host_op!($mn, "{a:x}", reg, u16, b, fin;
                    inout("ax") a as u16 => _, out("dx") _).1,
                4 => host_op!($mn, "{a:e}", reg, u32, b, fin;
                    inout("eax") a as u32 => _, out("edx") _).1,
                _ => host_op!($mn, "{a:r}", reg, u64, b, fin; inout("rax") a => _, out("rdx") _).1,
            }
        };
    }
    match kind {
        Mul::Unsigned => one!("mul"),
        Mul::Signed => one!("imul"),
        Mul::SignedTruncated => match size {
            2 => host_op!("imul", "{a:x}, {b:x}", reg, u16, a, fin; b = in(reg) b as u16).1,
            4 => host_op!("imul", "{a:e}, {b:e}", reg, u32, a, fin; b = in(reg) b as u32).1,
            _ => host_op!("imul", "{a:r}, {b:r}", reg, u64, a, fin; b = in(reg) b).1,
        },
    }
}

/// The host's rflags after DIV (`signed` false) or IDIV of the double-width dividend `hi:lo`
/// (AX for bytes) by `d`. The caller has checked that the quotient fits (no #DE).
pub fn div(signed: bool, size: u32, hi: u64, lo: u64, d: u64, fin: u64) -> u64 {
    macro_rules! one {
        ($mn:literal) => {
            match size {
                1 => host_op!($mn, "{a}", reg_byte, u8, d, fin; inout("ax") lo as u16 => _).1,
                2 => host_op!($mn, "{a:x}", reg, u16, d, fin;
                    inout("ax") lo as u16 => _, inout("dx") hi as u16 => _).1,
                4 => host_op!($mn, "{a:e}", reg, u32, d, fin;
                    inout("eax") lo as u32 => _, inout("edx") hi as u32 => _).1,
                _ => host_op!($mn, "{a:r}", reg, u64, d, fin;
                    inout("rax") lo => _, inout("rdx") hi => _).1,
            }
        };
    }
    if signed {
        one!("idiv")
    } else {
        one!("div")
    }
}

/// The undefined flags shift/rotate `op` leaves unchanged when its count is an immediate
/// rather than CL. Intel processors differ between the two forms (ROL/ROR by an immediate
/// other than 1 keep OF; by CL they write it), and an immediate cannot be passed to a host
/// instruction at run time, so this is probed once per operation: the immediate form (count
/// 7) and the CL form run on the same inputs, and a flag the immediate form never changed
/// while the CL form did is "kept". Register and memory destinations are probed separately
/// (on Intel they differ too).
pub fn imm_keeps(op: u8, mem: bool) -> u64 {
    static KEEPS: OnceLock<[[u64; 7]; 2]> = OnceLock::new();
    KEEPS.get_or_init(|| [probe_imm(false), probe_imm(true)])[mem as usize][op as usize]
}

fn probe_imm(mem: bool) -> [u64; 7] {
    {
        let mut out = [0u64; 7];
        for (k, slot) in out.iter_mut().enumerate() {
            let mut kept = OF | AF;
            let mut cl_changes = 0;
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..64 {
                // xorshift: deterministic inputs
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let fin = x.rotate_left(11) & ARITH;
                let (_, imm) = if mem {
                    shift_imm7_mem(k as u8, x, fin)
                } else {
                    shift_imm7(k as u8, x, fin)
                };
                let (_, cl) = shift(k as u8, 8, x, 7, fin);
                kept &= !((imm ^ fin) & (OF | AF));
                cl_changes |= (cl ^ fin) & (OF | AF);
            }
            *slot = kept & cl_changes;
        }
        out
    }
}

/// `op` of the 64-bit memory operand holding `a` by the immediate 7 on the host.
fn shift_imm7_mem(op: u8, a: u64, fin: u64) -> (u64, u64) {
    let mut cell = a;
    let p = &mut cell as *mut u64;
    let flags = match op {
        0 => host_op!("shl", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        1 => host_op!("shr", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        2 => host_op!("sar", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        3 => host_op!("rol", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        4 => host_op!("ror", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        5 => host_op!("rcl", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
        _ => host_op!("rcr", "qword ptr [{a}], 7", reg, u64, p, fin;).1,
    };
    (cell, flags)
}

/// `op` of the 64-bit `a` by the immediate 7 on the host.
fn shift_imm7(op: u8, a: u64, fin: u64) -> (u64, u64) {
    match op {
        0 => host_op!("shl", "{a:r}, 7", reg, u64, a, fin;),
        1 => host_op!("shr", "{a:r}, 7", reg, u64, a, fin;),
        2 => host_op!("sar", "{a:r}, 7", reg, u64, a, fin;),
        3 => host_op!("rol", "{a:r}, 7", reg, u64, a, fin;),
        4 => host_op!("ror", "{a:r}, 7", reg, u64, a, fin;),
        5 => host_op!("rcl", "{a:r}, 7", reg, u64, a, fin;),
        _ => host_op!("rcr", "{a:r}, 7", reg, u64, a, fin;),
    }
}

/// Replaces the bits `which` of `bits` with the host's `host`.
#[inline]
pub fn take(bits: u64, which: u64, host: u64) -> u64 {
    (bits & !which) | (host & which)
}

/// The undefined flags of a shift or rotate by the masked, non-zero `count` of a `w`-bit
/// operand (op as in `shift`).
pub fn shift_undefined(op: u8, w: u32, count: u32) -> u64 {
    let mut u = 0;
    if count != 1 {
        u |= OF;
    }
    if op <= 2 {
        u |= AF;
        if op <= 1 && count >= w {
            u |= CF;
        }
    }
    u
}

/// Flags undefined after MUL/IMUL.
pub const MUL_UNDEFINED: u64 = SF | ZF | AF | PF;
/// Flags undefined after DIV/IDIV (and after a 16-bit SHLD/SHRD by more than 16): all six.
pub const DIV_UNDEFINED: u64 = ARITH;
