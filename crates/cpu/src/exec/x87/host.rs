//! The transcendental instructions (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X,
//! FYL2XP1), whose exact results are each x87 implementation's own approximations.
//!
//! On an x86-64 host the same instruction runs on the host FPU, so results match native runs
//! bit for bit. Elsewhere an f64-based fallback computes them approximately (documented: not
//! bit-exact, about 53 bits of accuracy).

use iced_x86::Code;

/// What the host produced: `results[0]` is the host's ST0 after the instruction and
/// `results[1]` its ST1; `pushed` says the instruction pushed (FPTAN, FSINCOS in range);
/// `fsw` holds its exception flags and condition codes.
pub struct HostOut {
    pub results: [u128; 2],
    pub pushed: bool,
    pub fsw: u16,
}

/// Runs `code` with ST0 = `a` and ST1 = `b` under the guest's FCW, masks included, so an
/// unmasked OE/UE yields the bias-adjusted result the hardware stores. The exception flags
/// are read and cleared right after the instruction, so no later instruction can trap.
#[cfg(target_arch = "x86_64")]
pub fn run(code: Code, fcw: u16, a: u128, b: u128) -> HostOut {
    let a_bytes = a.to_le_bytes();
    let b_bytes = b.to_le_bytes();
    let cw: [u16; 2] = [fcw, fcw | 0x3f];
    let mut env = [0u8; 32];
    let mut out = [[0u8; 16]; 3];
    let mut sw = [0u16; 2];
    macro_rules! exec {
        ($insn:literal) => {
            // SAFETY: the block saves the host x87 environment (control word, status word,
            // tags, TOP) with FNSTENV and restores it with FLDENV, so the empty x87 stack and
            // control word the Rust ABI expects are intact afterwards. Nothing traps: no
            // exception is pending when the instruction starts (FNCLEX, and FLD m80 raises
            // none with room on the stack), and FNCLEX clears whatever it raised before the
            // stores (waiting instructions), which run with every exception masked. It only reads the 10-byte operands and
            // writes the output buffers, all of which are live locals of sufficient size, and
            // declares every x87 register clobbered.
            unsafe {
                core::arch::asm!(
                    "fnstenv [{env}]",
                    "fldcw [{cw}]",
                    "fnclex",
                    "fld tbyte ptr [{b}]",
                    "fld tbyte ptr [{a}]",
                    "fnstsw word ptr [{sw}]",
                    $insn,
                    "fnstsw word ptr [{sw} + 2]",
                    "fnclex",
                    "fldcw [{cw} + 2]",
                    "fstp tbyte ptr [{o}]",
                    "fstp tbyte ptr [{o} + 16]",
                    "fstp tbyte ptr [{o} + 32]",
                    "fldenv [{env}]",
                    env = in(reg) env.as_mut_ptr(),
                    cw = in(reg) cw.as_ptr(),
                    a = in(reg) a_bytes.as_ptr(),
                    b = in(reg) b_bytes.as_ptr(),
                    sw = in(reg) sw.as_mut_ptr(),
                    o = in(reg) out.as_mut_ptr(),
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                )
            }
        };
    }
    match code {
        Code::Fsin => exec!("fsin"),
        Code::Fcos => exec!("fcos"),
        Code::Fsincos => exec!("fsincos"),
        Code::Fptan => exec!("fptan"),
        Code::Fpatan => exec!("fpatan"),
        Code::F2xm1 => exec!("f2xm1"),
        Code::Fyl2x => exec!("fyl2x"),
        _ => exec!("fyl2xp1"),
    }
    let top = |s: u16| (s >> 11) & 7;
    let pushed = top(sw[1]) == (top(sw[0]).wrapping_sub(1) & 7);
    let rd = |k: usize| {
        let mut x = [0u8; 16];
        x[..10].copy_from_slice(&out[k][..10]);
        u128::from_le_bytes(x)
    };
    HostOut {
        results: [rd(0), rd(1)],
        pushed,
        fsw: sw[1] & !0x3880,
    }
}

/// Approximate fallback for hosts without an x87: computes in f64.
#[cfg(not(target_arch = "x86_64"))]
pub fn run(code: Code, fcw: u16, a: u128, b: u128) -> HostOut {
    use super::soft::{self, Env, C2, IE, PE};
    let env = Env::from_fcw(fcw | 0x3f);
    let to_f64 = |v: u128| -> f64 {
        let o = soft::to_ieee(v, soft::F64, &env);
        f64::from_bits(o.val.unwrap_or(0) as u64)
    };
    let from_f64 = |x: f64| -> u128 { soft::from_ieee(x.to_bits(), 52, 11).0 };
    let (x, y) = (to_f64(a), to_f64(b));
    let mut fsw = PE;
    let mut pushed = false;
    let res = match code {
        Code::Fsin | Code::Fcos | Code::Fptan | Code::Fsincos
            if x.abs() >= 9.223372036854775808e18 =>
        {
            fsw = C2;
            [a, b]
        }
        Code::Fsin => [from_f64(x.sin()), b],
        Code::Fcos => [from_f64(x.cos()), b],
        Code::Fsincos => {
            pushed = true;
            [from_f64(x.cos()), from_f64(x.sin())]
        }
        Code::Fptan => {
            pushed = true;
            [soft::pack(false, 0x3fff, 1 << 63), from_f64(x.tan())]
        }
        Code::Fpatan => [from_f64(x.atan2(y)), 0],
        Code::F2xm1 => [from_f64(x.exp2() - 1.0), b],
        Code::Fyl2x => [from_f64(y * x.log2()), 0],
        _ => [from_f64(y * x.ln_1p() / std::f64::consts::LN_2), 0],
    };
    if f64::from_bits(res[0] as u64).is_nan() && !x.is_nan() {
        fsw |= IE;
    }
    HostOut {
        results: res,
        pushed,
        fsw,
    }
}
