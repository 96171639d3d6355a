//! Specialized handlers for the SSE/SSE2 forms compiled C spends its time in: 128-bit and
//! scalar moves, packed integer logic and compares (string functions), and floating-point
//! arithmetic (numeric code). XMM operands only; MMX forms keep the family handlers.
//!
//! Floating-point arithmetic runs on the host as in `exec::sse::hostfp`, but without loading
//! and restoring MXCSR around every instruction: while the guest masks every SIMD exception
//! (nothing can trap, so the only effect of an exception is its sticky flag), the first such
//! instruction loads the guest's control bits into the host MXCSR with the flags clear and
//! marks the CPU `fp_live`; later ones run bare and the host accumulates their flags.
//! `Cpu::fp_sync` folds the accumulated flags into the guest MXCSR and restores the host's
//! MXCSR; it runs before any family handler (which may read or change MXCSR) and whenever
//! `run` or `step` returns, so nothing outside sees the difference.

use crate::block::{Op, OpFn};
use crate::exception::Result;
use crate::fast::{ea, gpr, mem_operand, rd, wr};
use crate::{Cpu, Exception};
use core::arch::x86_64::*;
use iced_x86::{Code, OpKind, Register};

/// MXCSR: the six exception flags and the six exception masks.
const FLAGS: u32 = 0x3f;
const MASKS: u32 = 0x1f80;

#[inline(always)]
fn to_m(v: u128) -> __m128i {
    // SAFETY: u128 and __m128i are both 16 bytes of plain data with no invalid values.
    unsafe { core::mem::transmute::<u128, __m128i>(v) }
}

#[inline(always)]
fn from_m(v: __m128i) -> u128 {
    // SAFETY: as in `to_m`.
    unsafe { core::mem::transmute::<__m128i, u128>(v) }
}

#[inline(always)]
pub(crate) fn stmxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stores MXCSR into a local u32.
    unsafe {
        core::arch::asm!("stmxcsr [{p}]", p = in(reg) core::ptr::addr_of_mut!(v), options(nostack, preserves_flags));
    }
    v
}

#[inline(always)]
pub(crate) fn ldmxcsr(v: u32) {
    // SAFETY: loads MXCSR from a local u32; callers pass either the value saved by `stmxcsr`
    // or one with every exception masked, so no later SSE instruction of the host can trap.
    unsafe {
        core::arch::asm!("ldmxcsr [{p}]", p = in(reg) core::ptr::addr_of!(v), options(nostack, preserves_flags));
    }
}

impl Cpu {
    /// Ends live host-MXCSR mode: folds the flags the host accumulated into the guest MXCSR
    /// and restores the host's own MXCSR.
    #[inline]
    pub fn fp_sync(&mut self) {
        if self.fp_live {
            self.sse.mxcsr |= stmxcsr() & FLAGS;
            ldmxcsr(self.fp_host_csr);
            self.fp_live = false;
        }
    }

    /// Enters live mode if the guest masks every SIMD exception; false if it does not (the
    /// family handler must then run the instruction).
    #[inline(always)]
    pub(crate) fn fp_enter(&mut self) -> bool {
        if self.fp_live {
            return true;
        }
        let g = self.sse.mxcsr;
        if g & MASKS != MASKS {
            return false;
        }
        self.fp_host_csr = stmxcsr();
        // The guest's rounding, FTZ and DAZ with all exceptions masked and the flags clear.
        ldmxcsr((g & 0xffff & !FLAGS) | MASKS);
        self.fp_live = true;
        true
    }
}

// ---------------------------------------------------------------- operands

#[inline(always)]
fn x(cpu: &Cpu, r: u8) -> u128 {
    cpu.sse.xmm[(r & 15) as usize]
}

#[inline(always)]
fn set_x(cpu: &mut Cpu, r: u8, v: u128) {
    cpu.sse.xmm[(r & 15) as usize] = v;
}

#[inline(always)]
fn ld128<const ALIGNED: bool>(cpu: &Cpu, op: &Op) -> Result<u128> {
    let a = ea(cpu, op);
    if ALIGNED && a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    Ok(cpu.mem.read_u128(a)?)
}

/// The source of a packed form: XMM register or aligned m128.
#[inline(always)]
fn src128<const MEM: bool>(cpu: &Cpu, op: &Op) -> Result<u128> {
    if MEM {
        ld128::<true>(cpu, op)
    } else {
        Ok(x(cpu, op.r1))
    }
}

/// The source of a scalar form: XMM register or m64/m32 (zero-extended).
#[inline(always)]
fn src_scalar<const MEM: bool, const S: u8>(cpu: &Cpu, op: &Op) -> Result<u128> {
    if MEM {
        let a = ea(cpu, op);
        Ok(if S == 8 {
            cpu.mem.read_u64(a)? as u128
        } else {
            cpu.mem.read_u32(a)? as u128
        })
    } else {
        Ok(x(cpu, op.r1))
    }
}

// ---------------------------------------------------------------- moves

fn movx_rr(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1);
    set_x(cpu, op.r0, v);
    Ok(())
}

fn load128<const ALIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld128::<ALIGNED>(cpu, op)?;
    set_x(cpu, op.r0, v);
    Ok(())
}

fn store128<const ALIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let a = ea(cpu, op);
    if ALIGNED && a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    Ok(cpu.mem.write_u128(a, x(cpu, op.r1))?)
}

/// MOVSD/MOVSS between registers: only the low lane moves.
fn movs_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let m: u128 = if S == 8 {
        u64::MAX as u128
    } else {
        u32::MAX as u128
    };
    let v = x(cpu, op.r1) & m;
    let old = x(cpu, op.r0);
    set_x(cpu, op.r0, (old & !m) | v);
    Ok(())
}

/// MOVSD/MOVSS/MOVQ/MOVD loads from memory: zero-extended into the register.
fn load_low<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = src_scalar::<true, S>(cpu, op)?;
    set_x(cpu, op.r0, v);
    Ok(())
}

/// Stores of the low lane (MOVSD/MOVSS/MOVQ/MOVD to memory).
fn store_low<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let a = ea(cpu, op);
    let v = x(cpu, op.r1);
    if S == 8 {
        cpu.mem.write_u64(a, v as u64)?;
    } else {
        cpu.mem.write_u32(a, v as u32)?;
    }
    Ok(())
}

/// MOVQ xmm, xmm (either direction): the low quadword, zero-extended.
fn movq_rr(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1) & u64::MAX as u128;
    set_x(cpu, op.r0, v);
    Ok(())
}

/// MOVD/MOVQ xmm, r32/r64.
fn from_gpr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = if S == 8 {
        rd::<8>(cpu, op.r1)
    } else {
        rd::<4>(cpu, op.r1)
    };
    set_x(cpu, op.r0, v as u128);
    Ok(())
}

/// MOVD/MOVQ r32/r64, xmm.
fn to_gpr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1) as u64;
    if S == 8 {
        wr::<8>(cpu, op.r0, v);
    } else {
        wr::<4>(cpu, op.r0, v);
    }
    Ok(())
}

fn pmovmskb<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    // SAFETY: SSE2 is part of the x86-64 baseline every host has.
    let m = unsafe { _mm_movemask_epi8(to_m(x(cpu, op.r1))) } as u32 as u64;
    if S == 8 {
        wr::<8>(cpu, op.r0, m);
    } else {
        wr::<4>(cpu, op.r0, m);
    }
    Ok(())
}

// ---------------------------------------------------------------- packed integer

const AND: u8 = 0;
const ANDN: u8 = 1;
const OR: u8 = 2;
const XOR: u8 = 3;
const CMPEQB: u8 = 4;
const CMPEQW: u8 = 5;
const CMPEQD: u8 = 6;
const MINUB: u8 = 7;
const MAXUB: u8 = 8;
const ADDB: u8 = 9;
const ADDW: u8 = 10;
const ADDD: u8 = 11;
const ADDQ: u8 = 12;
const SUBB: u8 = 13;
const SUBW: u8 = 14;
const SUBD: u8 = 15;
const SUBQ: u8 = 16;
const CMPGTB: u8 = 17;
const CMPGTW: u8 = 18;
const CMPGTD: u8 = 19;
const UNPCKLQ: u8 = 20;
const UNPCKHQ: u8 = 21;

#[inline(always)]
fn lanes<const OP: u8>(a: u128, b: u128) -> u128 {
    let (a, b) = (to_m(a), to_m(b));
    // SAFETY: SSE2 is part of the x86-64 baseline every host has.
    from_m(unsafe {
        match OP {
            AND => _mm_and_si128(a, b),
            ANDN => _mm_andnot_si128(a, b),
            OR => _mm_or_si128(a, b),
            XOR => _mm_xor_si128(a, b),
            CMPEQB => _mm_cmpeq_epi8(a, b),
            CMPEQW => _mm_cmpeq_epi16(a, b),
            CMPEQD => _mm_cmpeq_epi32(a, b),
            MINUB => _mm_min_epu8(a, b),
            MAXUB => _mm_max_epu8(a, b),
            ADDB => _mm_add_epi8(a, b),
            ADDW => _mm_add_epi16(a, b),
            ADDD => _mm_add_epi32(a, b),
            ADDQ => _mm_add_epi64(a, b),
            SUBB => _mm_sub_epi8(a, b),
            SUBW => _mm_sub_epi16(a, b),
            SUBD => _mm_sub_epi32(a, b),
            SUBQ => _mm_sub_epi64(a, b),
            CMPGTB => _mm_cmpgt_epi8(a, b),
            CMPGTW => _mm_cmpgt_epi16(a, b),
            CMPGTD => _mm_cmpgt_epi32(a, b),
            UNPCKLQ => _mm_unpacklo_epi64(a, b),
            _ => _mm_unpackhi_epi64(a, b),
        }
    })
}

fn packed<const OP: u8, const MEM: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = src128::<MEM>(cpu, op)?;
    let a = x(cpu, op.r0);
    set_x(cpu, op.r0, lanes::<OP>(a, b));
    Ok(())
}

// ---------------------------------------------------------------- floating point

macro_rules! host_ops {
    ($($name:ident = $ins:literal),* $(,)?) => {
        #[derive(Clone, Copy)]
        #[repr(u8)]
        enum F { $($name),* }
        /// Runs the host instruction `f` on (a, b) under the live MXCSR; returns the new `a`.
        #[inline(always)]
        fn host<const FOP: u8>(a: u128, b: u128) -> u128 {
            let mut a = to_m(a);
            let b = to_m(b);
            $(
                if FOP == F::$name as u8 {
                    // SAFETY: one SSE instruction on registers; the live MXCSR masks every
                    // exception, so it cannot trap; its only side effect is MXCSR's flags.
                    unsafe {
                        core::arch::asm!(concat!($ins, " {a}, {b}"), a = inout(xmm_reg) a, b = in(xmm_reg) b, options(nomem, nostack, preserves_flags));
                    }
                }
            )*
            from_m(a)
        }
    };
}

host_ops!(
    Addsd = "addsd",
    Subsd = "subsd",
    Mulsd = "mulsd",
    Divsd = "divsd",
    Sqrtsd = "sqrtsd",
    Minsd = "minsd",
    Maxsd = "maxsd",
    Addss = "addss",
    Subss = "subss",
    Mulss = "mulss",
    Divss = "divss",
    Sqrtss = "sqrtss",
    Minss = "minss",
    Maxss = "maxss",
    Addpd = "addpd",
    Subpd = "subpd",
    Mulpd = "mulpd",
    Divpd = "divpd",
    Sqrtpd = "sqrtpd",
    Minpd = "minpd",
    Maxpd = "maxpd",
    Addps = "addps",
    Subps = "subps",
    Mulps = "mulps",
    Divps = "divps",
    Sqrtps = "sqrtps",
    Minps = "minps",
    Maxps = "maxps",
);

/// A float operation with an XMM or memory source of `S` bytes (16 = aligned m128).
fn float<const FOP: u8, const MEM: bool, const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let b = if S == 16 {
        src128::<MEM>(cpu, op)?
    } else {
        src_scalar::<MEM, S>(cpu, op)?
    };
    if !cpu.fp_enter() {
        return crate::block::generic(cpu, op);
    }
    let a = x(cpu, op.r0);
    set_x(cpu, op.r0, host::<FOP>(a, b));
    Ok(())
}

// ---------------------------------------------------------------- selection

fn xmm(r: Register) -> Option<u8> {
    let n = r as u32;
    (Register::XMM0 as u32..=Register::XMM15 as u32)
        .contains(&n)
        .then(|| (n - Register::XMM0 as u32) as u8)
}

/// (operand 0 is memory, operand 1 is memory) after resolving an (xmm|mem, xmm|mem) form.
fn xmm_operands(op: &mut Op) -> Option<(bool, bool)> {
    let i = op.insn;
    if i.op_count() != 2 {
        return None;
    }
    let mut mem = [false; 2];
    for n in 0..2 {
        match i.op_kind(n) {
            OpKind::Register => {
                let r = xmm(i.op_register(n))?;
                if n == 0 {
                    op.r0 = r;
                } else {
                    op.r1 = r;
                }
            }
            OpKind::Memory => {
                if !mem_operand(op) {
                    return None;
                }
                mem[n as usize] = true;
            }
            _ => return None,
        }
    }
    Some((mem[0], mem[1]))
}

/// (xmm, r/m) or (r/m, xmm) with a GPR: resolves it; returns (gpr side is memory, gpr size).
fn gpr_xmm(op: &mut Op, gpr_at: u32) -> Option<(bool, u8)> {
    let i = op.insn;
    let x_at = 1 - gpr_at;
    let xr = xmm(i.op_register(x_at))?;
    if i.op_kind(x_at) != OpKind::Register {
        return None;
    }
    let (mem, size) = match i.op_kind(gpr_at) {
        OpKind::Register => {
            let (g, s) = gpr(i.op_register(gpr_at))?;
            if gpr_at == 0 {
                op.r0 = g;
            } else {
                op.r1 = g;
            }
            (false, s)
        }
        OpKind::Memory => {
            if !mem_operand(op) {
                return None;
            }
            (true, i.memory_size().size() as u8)
        }
        _ => return None,
    };
    if gpr_at == 0 {
        op.r1 = xr;
    } else {
        op.r0 = xr;
    }
    Some((mem, size))
}

pub fn select(op: &mut Op) -> Option<OpFn> {
    use Code::*;
    let code = op.insn.code();
    macro_rules! pk {
        ($k:expr) => {{
            let (m0, m1) = xmm_operands(op)?;
            if m0 {
                return None;
            }
            return Some(if m1 {
                packed::<{ $k }, true>
            } else {
                packed::<{ $k }, false>
            });
        }};
    }
    macro_rules! fl {
        ($f:ident, $s:literal) => {{
            let (m0, m1) = xmm_operands(op)?;
            if m0 {
                return None;
            }
            return Some(if m1 {
                float::<{ F::$f as u8 }, true, $s>
            } else {
                float::<{ F::$f as u8 }, false, $s>
            });
        }};
    }
    match code {
        Movaps_xmm_xmmm128 | Movapd_xmm_xmmm128 | Movdqa_xmm_xmmm128 | Movaps_xmmm128_xmm
        | Movapd_xmmm128_xmm | Movdqa_xmmm128_xmm | Movntps_m128_xmm | Movntpd_m128_xmm
        | Movntdq_m128_xmm => {
            let (m0, m1) = xmm_operands(op)?;
            Some(match (m0, m1) {
                (false, false) => movx_rr,
                (false, true) => load128::<true>,
                _ => store128::<true>,
            })
        }
        Movups_xmm_xmmm128 | Movupd_xmm_xmmm128 | Movdqu_xmm_xmmm128 | Movups_xmmm128_xmm
        | Movupd_xmmm128_xmm | Movdqu_xmmm128_xmm => {
            let (m0, m1) = xmm_operands(op)?;
            Some(match (m0, m1) {
                (false, false) => movx_rr,
                (false, true) => load128::<false>,
                _ => store128::<false>,
            })
        }
        Movsd_xmm_xmmm64 | Movsd_xmmm64_xmm | Movss_xmm_xmmm32 | Movss_xmmm32_xmm => {
            let (m0, m1) = xmm_operands(op)?;
            let s8 = matches!(code, Movsd_xmm_xmmm64 | Movsd_xmmm64_xmm);
            Some(match (m0, m1, s8) {
                (false, false, true) => movs_rr::<8>,
                (false, false, false) => movs_rr::<4>,
                (false, true, true) => load_low::<8>,
                (false, true, false) => load_low::<4>,
                (_, _, true) => store_low::<8>,
                (_, _, false) => store_low::<4>,
            })
        }
        Movq_xmm_xmmm64 | Movq_xmmm64_xmm => {
            let (m0, m1) = xmm_operands(op)?;
            Some(match (m0, m1) {
                (false, false) => movq_rr,
                (false, true) => load_low::<8>,
                _ => store_low::<8>,
            })
        }
        Movd_xmm_rm32 | Movq_xmm_rm64 => {
            let (mem, s) = gpr_xmm(op, 1)?;
            Some(match (mem, s) {
                (false, 4) => from_gpr::<4>,
                (false, 8) => from_gpr::<8>,
                (true, 4) => load_low::<4>,
                (true, 8) => load_low::<8>,
                _ => return None,
            })
        }
        Movd_rm32_xmm | Movq_rm64_xmm => {
            let (mem, s) = gpr_xmm(op, 0)?;
            Some(match (mem, s) {
                (false, 4) => to_gpr::<4>,
                (false, 8) => to_gpr::<8>,
                (true, 4) => store_low::<4>,
                (true, 8) => store_low::<8>,
                _ => return None,
            })
        }
        Pmovmskb_r32_xmm | Pmovmskb_r64_xmm => {
            let i = op.insn;
            let (g, s) = gpr(i.op0_register())?;
            op.r0 = g;
            op.r1 = xmm(i.op1_register())?;
            Some(if s == 8 { pmovmskb::<8> } else { pmovmskb::<4> })
        }
        Pand_xmm_xmmm128 | Andps_xmm_xmmm128 | Andpd_xmm_xmmm128 => pk!(AND),
        Pandn_xmm_xmmm128 | Andnps_xmm_xmmm128 | Andnpd_xmm_xmmm128 => pk!(ANDN),
        Por_xmm_xmmm128 | Orps_xmm_xmmm128 | Orpd_xmm_xmmm128 => pk!(OR),
        Pxor_xmm_xmmm128 | Xorps_xmm_xmmm128 | Xorpd_xmm_xmmm128 => pk!(XOR),
        Pcmpeqb_xmm_xmmm128 => pk!(CMPEQB),
        Pcmpeqw_xmm_xmmm128 => pk!(CMPEQW),
        Pcmpeqd_xmm_xmmm128 => pk!(CMPEQD),
        Pminub_xmm_xmmm128 => pk!(MINUB),
        Pmaxub_xmm_xmmm128 => pk!(MAXUB),
        Paddb_xmm_xmmm128 => pk!(ADDB),
        Paddw_xmm_xmmm128 => pk!(ADDW),
        Paddd_xmm_xmmm128 => pk!(ADDD),
        Paddq_xmm_xmmm128 => pk!(ADDQ),
        Psubb_xmm_xmmm128 => pk!(SUBB),
        Psubw_xmm_xmmm128 => pk!(SUBW),
        Psubd_xmm_xmmm128 => pk!(SUBD),
        Psubq_xmm_xmmm128 => pk!(SUBQ),
        Pcmpgtb_xmm_xmmm128 => pk!(CMPGTB),
        Pcmpgtw_xmm_xmmm128 => pk!(CMPGTW),
        Pcmpgtd_xmm_xmmm128 => pk!(CMPGTD),
        Punpcklqdq_xmm_xmmm128 | Unpcklpd_xmm_xmmm128 => pk!(UNPCKLQ),
        Punpckhqdq_xmm_xmmm128 | Unpckhpd_xmm_xmmm128 => pk!(UNPCKHQ),
        Addsd_xmm_xmmm64 => fl!(Addsd, 8),
        Subsd_xmm_xmmm64 => fl!(Subsd, 8),
        Mulsd_xmm_xmmm64 => fl!(Mulsd, 8),
        Divsd_xmm_xmmm64 => fl!(Divsd, 8),
        Sqrtsd_xmm_xmmm64 => fl!(Sqrtsd, 8),
        Minsd_xmm_xmmm64 => fl!(Minsd, 8),
        Maxsd_xmm_xmmm64 => fl!(Maxsd, 8),
        Addss_xmm_xmmm32 => fl!(Addss, 4),
        Subss_xmm_xmmm32 => fl!(Subss, 4),
        Mulss_xmm_xmmm32 => fl!(Mulss, 4),
        Divss_xmm_xmmm32 => fl!(Divss, 4),
        Sqrtss_xmm_xmmm32 => fl!(Sqrtss, 4),
        Minss_xmm_xmmm32 => fl!(Minss, 4),
        Maxss_xmm_xmmm32 => fl!(Maxss, 4),
        Addpd_xmm_xmmm128 => fl!(Addpd, 16),
        Subpd_xmm_xmmm128 => fl!(Subpd, 16),
        Mulpd_xmm_xmmm128 => fl!(Mulpd, 16),
        Divpd_xmm_xmmm128 => fl!(Divpd, 16),
        Sqrtpd_xmm_xmmm128 => fl!(Sqrtpd, 16),
        Minpd_xmm_xmmm128 => fl!(Minpd, 16),
        Maxpd_xmm_xmmm128 => fl!(Maxpd, 16),
        Addps_xmm_xmmm128 => fl!(Addps, 16),
        Subps_xmm_xmmm128 => fl!(Subps, 16),
        Mulps_xmm_xmmm128 => fl!(Mulps, 16),
        Divps_xmm_xmmm128 => fl!(Divps, 16),
        Sqrtps_xmm_xmmm128 => fl!(Sqrtps, 16),
        Minps_xmm_xmmm128 => fl!(Minps, 16),
        Maxps_xmm_xmmm128 => fl!(Maxps, 16),
        _ => None,
    }
}
