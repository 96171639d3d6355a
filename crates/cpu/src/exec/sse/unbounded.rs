//! Whether an SSE result rounded to its precision with an unbounded exponent range is inexact.
//!
//! An SSE operation whose numeric overflow or underflow is unmasked delivers no result, but it
//! still reports PE exactly when the result, rounded to the destination's significand width
//! with an unbounded exponent (the "biased" result of Intel SDM Vol. 1 §4.9.1.6, §8.5.4,
//! §8.5.5), differs from the infinitely precise one; measured on the host: DBL_MAX / 0.5
//! (exact) reports OE alone, -4.7e7 * FLT_MAX rounded up reports OE and PE. The host's SSE
//! unit, run with every exception masked, rounds to a bounded exponent instead (infinity,
//! MAX, a denormal or zero), whose inexactness is a different question.
//!
//! The host's x87 unit answers it: its 15-bit exponent holds every sum, product and quotient
//! of single or double operands without overflow or underflow, and its precision control
//! rounds the significand once to 24 or 53 bits (SDM Vol. 1 §8.1.5.2) under the same rounding
//! control encoding as MXCSR.RC (§8.1.5.3, §10.2.3.3), setting its own PE (§8.5.6).

/// The operation of one lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `b` alone rounded to the precision (CVTSD2SS, CVTPD2PS).
    Round,
}

/// `a OP b` (values widened exactly to f64) rounded to 24 (`double` false) or 53 bits under
/// rounding control `rc` (0-3): whether that rounding is inexact. None without an x86 host.
#[cfg(target_arch = "x86_64")]
pub(crate) fn inexact(op: Op, double: bool, rc: u32, a: f64, b: f64) -> Option<bool> {
    use core::arch::asm;
    // All x87 exceptions masked (bits 0-5), bit 6 reserved as FNINIT leaves it, precision
    // control 00 (24 bits) or 10 (53 bits), rounding control.
    let cw: u16 = 0x7f | if double { 0b10 << 8 } else { 0 } | ((rc as u16 & 3) << 10);
    let one = 1.0f64;
    let (first, second) = match op {
        Op::Round => (&b, &one),
        _ => (&a, &b),
    };
    let mut save: u16 = 0;
    let sw: u16;
    macro_rules! x87 {
        ($ins:literal) => {
            // SAFETY: reads and writes only through pointers to locals (the control words and
            // the two operands); the x87 stack is left as found (one push, one pop) and the
            // host's control word is restored; every x87 exception is masked while it runs, so
            // nothing traps; the x87 registers are declared clobbered. Status flags are cleared
            // before and after, so nothing of this computation leaks into later x87 code.
            unsafe {
                asm!(
                    "fnstcw word ptr [{save}]",
                    "fldcw word ptr [{cw}]",
                    "fnclex",
                    "fld qword ptr [{x}]",
                    concat!($ins, " qword ptr [{y}]"),
                    "fnstsw ax",
                    "fstp st(0)",
                    "fnclex",
                    "fldcw word ptr [{save}]",
                    save = in(reg) core::ptr::addr_of_mut!(save),
                    cw = in(reg) core::ptr::addr_of!(cw),
                    x = in(reg) first as *const f64,
                    y = in(reg) second as *const f64,
                    out("ax") sw,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
        };
    }
    match op {
        Op::Add => x87!("fadd"),
        Op::Sub => x87!("fsub"),
        Op::Mul | Op::Round => x87!("fmul"),
        Op::Div => x87!("fdiv"),
    }
    // FSW.PE is bit 5.
    Some(sw & 0x20 != 0)
}

/// Without an x86 host there is no x87 unit to ask.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn inexact(_: Op, _: bool, _: u32, _: f64, _: f64) -> Option<bool> {
    None
}
