//! Decode-time selection of the specialized SSE executors (`super::fast_sse`).

use super::block::{Op, OpFn};
use super::fast_sse::*;
use super::select::{gpr, mem_operand};
use iced_x86::{Code, OpKind, Register};

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
