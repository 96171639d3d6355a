//! The MXCSR flags of the host-thunk forms that combine lanes (SSE3 horizontal add and
//! subtract, ADDSUB, FMA3 in every order and sign, DPPS/DPPD) when the guest unmasks numeric
//! overflow or underflow.
//!
//! The thunk runs with every exception masked; an overflowing or tiny lane then reports PE for
//! the infinity, MAX, denormal or zero it delivers, where the unmasked hardware reports PE
//! only when the result rounded with an unbounded exponent is inexact, and UE for an exact
//! tiny result too (`float::lane_rule`, Intel SDM Vol. 1 §4.9.1.5, §11.5.2.4, §11.5.2.5). So
//! each rounding step of each lane is recomputed by its scalar form and judged alone, and the
//! lanes' flags are ORed (§11.5.3). Lane pairings and the FMA operand orders are those of
//! each instruction's "Operation" section in the SDM Vol. 2.

use super::float::{lane_rule_fma, lane_rule_op, FLAGS};
use super::hostfp::Bin;
use super::unbounded::Op;
use crate::Cpu;
use iced_x86::{Instruction, Mnemonic, OpKind};

/// An operand as its 256 bits (register, or the memory operand's bytes as read for the thunk).
fn value(cpu: &Cpu, i: &Instruction, n: u32, mem: &[u8]) -> [u8; 32] {
    let mut b = [0u8; 32];
    if i.op_kind(n) == OpKind::Memory {
        let k = mem.len().min(32);
        b[..k].copy_from_slice(&mem[..k]);
    } else {
        let r = i.op_register(n).number() & 15;
        b[..16].copy_from_slice(&cpu.sse.xmm[r].to_le_bytes());
        b[16..].copy_from_slice(&cpu.sse.ymm_hi[r].to_le_bytes());
    }
    b
}

/// Lane `k` of width `w` bytes as the low bits of a u128.
fn lane(v: &[u8; 32], w: usize, k: usize) -> u128 {
    let mut b = [0u8; 16];
    b[..w].copy_from_slice(&v[w * k..w * (k + 1)]);
    u128::from_le_bytes(b)
}

/// Flags of `a OP b` for one lane of `w` bytes.
fn step(guest: u32, w: usize, op: Op, a: u128, b: u128) -> Option<(u128, u32)> {
    let bin = match (op, w) {
        (Op::Add, 4) => Bin::Addss,
        (Op::Add, _) => Bin::Addsd,
        (Op::Sub, 4) => Bin::Subss,
        (Op::Sub, _) => Bin::Subsd,
        (Op::Mul, 4) => Bin::Mulss,
        (Op::Mul, _) => Bin::Mulsd,
        (Op::Div, 4) => Bin::Divss,
        (Op::Div, _) => Bin::Divsd,
        (Op::Round, _) => return None,
    };
    lane_rule_op(bin, guest, a, b)
}

/// The flags the instruction reports under the guest's MXCSR as (flags of the steps that
/// completed, flags of the last step computed: `float::settle_after`), or None when it is not
/// one of these forms (or there is no x86 host): the thunk's own flags stand.
pub(crate) fn flags(cpu: &Cpu, i: &Instruction, mem: &[u8]) -> Option<(u32, u32)> {
    use Mnemonic::*;
    let guest = cpu.sse.mxcsr;
    let m = i.mnemonic();
    let name = format!("{m:?}").to_lowercase();
    let double = name.ends_with("pd") || name.ends_with("sd");
    let w = if double { 8 } else { 4 };
    let vex = i.code().encoding() == iced_x86::EncodingKind::VEX;
    // The two sources of the two-source forms: legacy `op0, op1`, VEX `op1, op2`.
    let (s1, s2) = if vex { (1, 2) } else { (0, 1) };
    let bytes = i.op0_register().size().max(16);
    let lanes_per_128 = 16 / w;
    let halves = bytes / 16;
    let mut out = 0u32;
    match m {
        Haddps | Haddpd | Hsubps | Hsubpd | Vhaddps | Vhaddpd | Vhsubps | Vhsubpd => {
            let op = if name.contains("hadd") {
                Op::Add
            } else {
                Op::Sub
            };
            let (a, b) = (value(cpu, i, s1, mem), value(cpu, i, s2, mem));
            for h in 0..halves {
                for (src, _) in [(&a, 0), (&b, 1)] {
                    for k in 0..lanes_per_128 / 2 {
                        let base = h * lanes_per_128 + 2 * k;
                        let (x, y) = (lane(src, w, base), lane(src, w, base + 1));
                        out |= step(guest, w, op, x, y)?.1;
                    }
                }
            }
        }
        Addsubps | Addsubpd | Vaddsubps | Vaddsubpd => {
            let (a, b) = (value(cpu, i, s1, mem), value(cpu, i, s2, mem));
            for k in 0..bytes / w {
                let op = if k % 2 == 0 { Op::Sub } else { Op::Add };
                out |= step(guest, w, op, lane(&a, w, k), lane(&b, w, k))?.1;
            }
        }
        Dpps | Dppd | Vdpps | Vdppd => {
            let (a, b) = (value(cpu, i, s1, mem), value(cpu, i, s2, mem));
            let dp = DotProduct {
                guest,
                w,
                halves,
                imm: i.immediate8() as u32,
            };
            return dp.flags(&a, &b);
        }
        _ => return fma(cpu, i, mem, &name, w, bytes).map(|f| (0, f)),
    }
    Some((0, out & FLAGS))
}

/// DPPS/DPPD (and VDPPS/VDPPD per 128-bit half), Intel SDM Vol. 2A "DPPS"/"DPPD" Operation:
/// the products of the lanes imm8[7:4] selects (+0.0 for the others), then the sums of pairs
/// (DPPS: p0 + p1 and p2 + p3), then (DPPS) their sum, each rounded. "Exceptions are
/// determined separately for each add and multiply operation, in the order of their
/// execution": the steps run as three stages (all products, the pair sums, the final sums;
/// both halves of a 256-bit form in each). A stage that raises an unmasked exception stops
/// the instruction, reporting its own flags as a packed operation does (`float::settle`:
/// only IE, DE, ZE if one of those is unmasked) together with the flags of the stages that
/// completed. A denormal product is a denormal operand of its sum (DE). Measured on the host
/// (an AVX2 Intel CPU) with each step run as its scalar instruction under the guest's MXCSR:
/// no difference in 1,000,000 random and edge cases of DPPS and DPPD with random MXCSR, where
/// dropping the completed stages' flags on a fault differs in 153 and also dropping the sums'
/// DE in 441; crates/cpu/tests/differential.rs `sse_unmasked_exceptions` compares every form.
struct DotProduct {
    guest: u32,
    w: usize,
    halves: usize,
    imm: u32,
}

impl DotProduct {
    fn flags(&self, a: &[u8; 32], b: &[u8; 32]) -> Option<(u32, u32)> {
        let (guest, w) = (self.guest, self.w);
        let unmasked = !(guest >> 7) & FLAGS;
        let lanes = 16 / w;
        // Stage 1: the products.
        let mut prods = [[0u128; 4]; 2];
        let mut stage = 0u32;
        for (h, p) in prods.iter_mut().enumerate().take(self.halves) {
            for (k, pk) in p.iter_mut().enumerate().take(lanes) {
                if self.imm & (0x10 << k) != 0 {
                    let n = h * lanes + k;
                    let (r, f) = step(guest, w, Op::Mul, lane(a, w, n), lane(b, w, n))?;
                    *pk = r;
                    stage |= f;
                }
            }
        }
        if stage & unmasked != 0 {
            return Some((0, stage));
        }
        let done = stage;
        // Stage 2: the pair sums (DPPD's only sum).
        let mut pairs = [[0u128; 2]; 2];
        stage = 0;
        for (h, s) in pairs.iter_mut().enumerate().take(self.halves) {
            let p = &prods[h];
            for (j, sj) in s.iter_mut().enumerate().take(lanes / 2) {
                let (r, f) = step(guest, w, Op::Add, p[2 * j], p[2 * j + 1])?;
                *sj = r;
                stage |= f;
            }
        }
        if lanes == 2 || stage & unmasked != 0 {
            return Some((done, stage));
        }
        let done = done | stage;
        // Stage 3 (DPPS): the sum of the pair sums.
        stage = 0;
        for s in pairs.iter().take(self.halves) {
            stage |= step(guest, w, Op::Add, s[0], s[1])?.1;
        }
        Some((done, stage))
    }
}

/// FMA3: VFMADD/VFMSUB/VFNMADD/VFNMSUB/VFMADDSUB/VFMSUBADD 132/213/231, ps/pd/ss/sd.
fn fma(cpu: &Cpu, i: &Instruction, mem: &[u8], name: &str, w: usize, bytes: usize) -> Option<u32> {
    let guest = cpu.sse.mxcsr;
    let rest = name.strip_prefix("vf")?;
    let (kind, rest) = ["maddsub", "msubadd", "nmadd", "nmsub", "madd", "msub"]
        .iter()
        .find_map(|k| rest.strip_prefix(k).map(|r| (*k, r)))?;
    let order = rest.get(..3)?;
    let scalar = rest.ends_with("ss") || rest.ends_with("sd");
    let (d, s2, s3) = (
        value(cpu, i, 0, mem),
        value(cpu, i, 1, mem),
        value(cpu, i, 2, mem),
    );
    // (multiplicand, multiplier, addend) per the operand order.
    let (a, b, c) = match order {
        "132" => (&d, &s3, &s2),
        "213" => (&s2, &d, &s3),
        "231" => (&s2, &s3, &d),
        _ => return None,
    };
    let lanes = if scalar { 1 } else { bytes / w };
    let mut out = 0u32;
    for k in 0..lanes {
        // (negate the product, subtract the addend) for this lane.
        let (neg, sub) = match kind {
            "madd" => (false, false),
            "msub" => (false, true),
            "nmadd" => (true, false),
            "nmsub" => (true, true),
            // Even lanes subtract for MADDSUB, add for MSUBADD.
            "maddsub" => (false, k % 2 == 0),
            _ => (false, k % 2 == 1),
        };
        out |= lane_rule_fma(
            w == 8,
            guest,
            lane(a, w, k),
            lane(b, w, k),
            lane(c, w, k),
            neg,
            sub,
        )?;
    }
    Some(out & FLAGS)
}
