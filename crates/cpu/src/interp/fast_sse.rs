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

use super::block::Op;
use super::fast::{ea, rd, wr};
use crate::exception::Result;
use crate::exec::sse::hostfp::{from_m, ldmxcsr, stmxcsr, to_m};
use crate::{Cpu, Exception};
use core::arch::x86_64::*;

/// MXCSR: the six exception flags and the six exception masks.
pub(super) const FLAGS: u32 = 0x3f;
pub(super) const MASKS: u32 = 0x1f80;

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
    /// family handler must then run the instruction). Public for engines that run guest SSE
    /// instructions natively (crates/jit), which need the same host MXCSR; `fp_sync` (which
    /// every engine calls before `run` returns) ends it.
    #[inline(always)]
    pub fn fp_enter(&mut self) -> bool {
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
pub(super) fn x(cpu: &Cpu, r: u8) -> u128 {
    cpu.sse.xmm[(r & 15) as usize]
}

#[inline(always)]
pub(super) fn set_x(cpu: &mut Cpu, r: u8, v: u128) {
    cpu.sse.xmm[(r & 15) as usize] = v;
}

#[inline(always)]
pub(super) fn ld128<const ALIGNED: bool>(cpu: &Cpu, op: &Op) -> Result<u128> {
    let a = ea(cpu, op);
    if ALIGNED && a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    Ok(cpu.mem.read_u128(a)?)
}

/// The source of a packed form: XMM register or aligned m128.
#[inline(always)]
pub(super) fn src128<const MEM: bool>(cpu: &Cpu, op: &Op) -> Result<u128> {
    if MEM {
        ld128::<true>(cpu, op)
    } else {
        Ok(x(cpu, op.r1))
    }
}

/// The source of a scalar form: XMM register or m64/m32 (zero-extended).
#[inline(always)]
pub(super) fn src_scalar<const MEM: bool, const S: u8>(cpu: &Cpu, op: &Op) -> Result<u128> {
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

pub(super) fn movx_rr(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1);
    set_x(cpu, op.r0, v);
    Ok(())
}

pub(super) fn load128<const ALIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = ld128::<ALIGNED>(cpu, op)?;
    set_x(cpu, op.r0, v);
    Ok(())
}

pub(super) fn store128<const ALIGNED: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let a = ea(cpu, op);
    if ALIGNED && a & 15 != 0 {
        return Err(Exception::Alignment);
    }
    Ok(cpu.mem.write_u128(a, x(cpu, op.r1))?)
}

/// MOVSD/MOVSS between registers: only the low lane moves.
pub(super) fn movs_rr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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
pub(super) fn load_low<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = src_scalar::<true, S>(cpu, op)?;
    set_x(cpu, op.r0, v);
    Ok(())
}

/// Stores of the low lane (MOVSD/MOVSS/MOVQ/MOVD to memory).
pub(super) fn store_low<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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
pub(super) fn movq_rr(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1) & u64::MAX as u128;
    set_x(cpu, op.r0, v);
    Ok(())
}

/// MOVD/MOVQ xmm, r32/r64.
pub(super) fn from_gpr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = if S == 8 {
        rd::<8>(cpu, op.r1)
    } else {
        rd::<4>(cpu, op.r1)
    };
    set_x(cpu, op.r0, v as u128);
    Ok(())
}

/// MOVD/MOVQ r32/r64, xmm.
pub(super) fn to_gpr<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
    let v = x(cpu, op.r1) as u64;
    if S == 8 {
        wr::<8>(cpu, op.r0, v);
    } else {
        wr::<4>(cpu, op.r0, v);
    }
    Ok(())
}

pub(super) fn pmovmskb<const S: u8>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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

pub(super) const AND: u8 = 0;
pub(super) const ANDN: u8 = 1;
pub(super) const OR: u8 = 2;
pub(super) const XOR: u8 = 3;
pub(super) const CMPEQB: u8 = 4;
pub(super) const CMPEQW: u8 = 5;
pub(super) const CMPEQD: u8 = 6;
pub(super) const MINUB: u8 = 7;
pub(super) const MAXUB: u8 = 8;
pub(super) const ADDB: u8 = 9;
pub(super) const ADDW: u8 = 10;
pub(super) const ADDD: u8 = 11;
pub(super) const ADDQ: u8 = 12;
pub(super) const SUBB: u8 = 13;
pub(super) const SUBW: u8 = 14;
pub(super) const SUBD: u8 = 15;
pub(super) const SUBQ: u8 = 16;
pub(super) const CMPGTB: u8 = 17;
pub(super) const CMPGTW: u8 = 18;
pub(super) const CMPGTD: u8 = 19;
pub(super) const UNPCKLQ: u8 = 20;
pub(super) const UNPCKHQ: u8 = 21;

#[inline(always)]
pub(super) fn lanes<const OP: u8>(a: u128, b: u128) -> u128 {
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

pub(super) fn packed<const OP: u8, const MEM: bool>(cpu: &mut Cpu, op: &Op) -> Result<()> {
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
        pub(super) enum F { $($name),* }
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
pub(super) fn float<const FOP: u8, const MEM: bool, const S: u8>(
    cpu: &mut Cpu,
    op: &Op,
) -> Result<()> {
    let b = if S == 16 {
        src128::<MEM>(cpu, op)?
    } else {
        src_scalar::<MEM, S>(cpu, op)?
    };
    if !cpu.fp_enter() {
        return super::block::generic(cpu, op);
    }
    let a = x(cpu, op.r0);
    set_x(cpu, op.r0, host::<FOP>(a, b));
    Ok(())
}
