//! Forms of x86-64-v2 and x86-64-v3 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, AVX, AVX2, FMA3,
//! F16C, BMI1, BMI2, LZCNT, MOVBE, CRC32), generated for every iced `Code` of those levels
//! from its operand description, so no form is forgotten: a register form and a memory form
//! for each code, vector operands spread over low and high registers (VEX.R/X/B/vvvv and
//! REX), random immediates, random YMM upper halves, unaligned memory operands where the form
//! allows them, and misaligned-operand fault forms for the forms that require alignment.

use super::enc::*;
use super::forms::{Fix, Form, Lane};
use super::gen::{Ctx, Rng};
use super::Case;
use cetbox_cpu::exec::hostop::needs_alignment;
use cetbox_cpu::level::{level_needed, CpuLevel};
use iced_x86::{
    Code, Encoder, EncodingKind, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind, Register,
};
use rand::Rng as _;

/// The memory operand's base register.
const MEMB: u8 = R14;

/// Random upper halves for every YMM register, half the time copied from XMM registers (which
/// hold the lane type's edge values).
fn ymm_hi(rng: &mut Rng, case: &mut Case, _: &Ctx) {
    for i in 0..16 {
        case.input.ymm_hi[i] = if rng.gen_bool(0.5) {
            case.input.xmm(rng.gen_range(0..16))
        } else {
            rng.gen()
        };
    }
}

/// Gather indices (YMM5): dword or qword elements small enough that base + index * 8 stays in
/// the data page.
fn gather_idx_d(rng: &mut Rng, case: &mut Case, _: &Ctx) {
    let mut b = [0u8; 32];
    for j in 0..8 {
        b[4 * j..4 * j + 4].copy_from_slice(&rng.gen_range(-16i32..300).to_le_bytes());
    }
    case.input
        .set_xmm(5, u128::from_le_bytes(b[..16].try_into().unwrap()));
    case.input.ymm_hi[5] = u128::from_le_bytes(b[16..].try_into().unwrap());
}

fn gather_idx_q(rng: &mut Rng, case: &mut Case, _: &Ctx) {
    let mut b = [0u8; 32];
    for j in 0..4 {
        b[8 * j..8 * j + 8].copy_from_slice(&rng.gen_range(-16i64..300).to_le_bytes());
    }
    case.input
        .set_xmm(5, u128::from_le_bytes(b[..16].try_into().unwrap()));
    case.input.ymm_hi[5] = u128::from_le_bytes(b[16..].try_into().unwrap());
}

fn vreg(ymm: bool, n: u8) -> Register {
    let base = if ymm { Register::YMM0 } else { Register::XMM0 };
    Register::values().nth(base as usize + n as usize).unwrap()
}

fn gpr(kind: K, n: u8) -> Register {
    let base = match kind {
        K::r64_reg | K::r64_or_mem | K::r64_vvvv => Register::RAX,
        K::r32_reg | K::r32_or_mem | K::r32_vvvv => Register::EAX,
        K::r16_reg | K::r16_or_mem => Register::AX,
        _ => {
            // r8: AL..BL, then SPL.. with REX.
            return if n < 4 {
                Register::values()
                    .nth(Register::AL as usize + n as usize)
                    .unwrap()
            } else {
                Register::values()
                    .nth(Register::SPL as usize + n as usize - 4)
                    .unwrap()
            };
        }
    };
    Register::values().nth(base as usize + n as usize).unwrap()
}

fn lane_of(m: Mnemonic) -> Lane {
    let s = format!("{m:?}").to_lowercase();
    if s.starts_with("vcvtph2ps") || s.starts_with("vcvtps2ph") {
        return Lane::F32;
    }
    if s.ends_with("ps") || s.ends_with("ss") {
        Lane::F32
    } else if s.ends_with("pd") || s.ends_with("sd") {
        Lane::F64
    } else {
        Lane::Int
    }
}

/// Vector register sets: operand k of a form gets `sets[variant][k]`.
const VSETS: [[u8; 4]; 3] = [[1, 2, 3, 4], [9, 14, 7, 12], [6, 6, 11, 0]];
/// GPR sets (never RSP or the memory base R14).
const GSETS: [[u8; 3]; 3] = [[RSI, RDX, R9], [R10, RBP, RBX], [RDI, RDI, R11]];

/// Builds the form for `code` (memory variant when `mem`), or None if the code has no such
/// variant.
fn build(code: Code, mem: bool, variant: usize, misaligned: bool) -> Option<Form> {
    let oc = code.op_code();
    let mut i = Instruction::with(code);
    let mut xmms = vec![];
    let mut gprs = vec![];
    let mut has_mem = false;
    let mut imm = false;
    let mut vsib: Option<(bool, bool)> = None; // (qword index, ymm index)
    let (mut vk, mut gk) = (0usize, 0usize);
    for n in 0..oc.op_count() {
        let k = oc.op_kind(n);
        match k {
            K::xmm_reg
            | K::xmm_rm
            | K::xmm_vvvv
            | K::xmm_is4
            | K::ymm_reg
            | K::ymm_rm
            | K::ymm_vvvv
            | K::ymm_is4 => {
                let ymm = matches!(k, K::ymm_reg | K::ymm_rm | K::ymm_vvvv | K::ymm_is4);
                let r = VSETS[variant][vk];
                vk += 1;
                i.set_op_kind(n, OpKind::Register);
                i.set_op_register(n, vreg(ymm, r));
                xmms.push(r);
            }
            K::xmm_or_mem | K::ymm_or_mem => {
                if mem {
                    i.set_op_kind(n, OpKind::Memory);
                    has_mem = true;
                } else {
                    let r = VSETS[variant][vk];
                    vk += 1;
                    i.set_op_kind(n, OpKind::Register);
                    i.set_op_register(n, vreg(k == K::ymm_or_mem, r));
                    xmms.push(r);
                }
            }
            K::r64_reg | K::r32_reg | K::r16_reg | K::r64_vvvv | K::r32_vvvv => {
                let r = GSETS[variant][gk];
                gk += 1;
                i.set_op_kind(n, OpKind::Register);
                i.set_op_register(n, gpr(k, r));
                gprs.push(r);
            }
            K::r64_or_mem | K::r32_or_mem | K::r16_or_mem | K::r8_or_mem => {
                if mem {
                    i.set_op_kind(n, OpKind::Memory);
                    has_mem = true;
                } else {
                    let r = GSETS[variant][gk];
                    gk += 1;
                    i.set_op_kind(n, OpKind::Register);
                    i.set_op_register(n, gpr(k, r));
                    gprs.push(r);
                }
            }
            K::mem => {
                if !mem {
                    return None;
                }
                i.set_op_kind(n, OpKind::Memory);
                has_mem = true;
            }
            K::mem_vsib32x | K::mem_vsib32y | K::mem_vsib64x | K::mem_vsib64y => {
                if !mem {
                    return None;
                }
                i.set_op_kind(n, OpKind::Memory);
                has_mem = true;
                let q = matches!(k, K::mem_vsib64x | K::mem_vsib64y);
                let y = matches!(k, K::mem_vsib32y | K::mem_vsib64y);
                vsib = Some((q, y));
            }
            K::imm8 => {
                i.set_op_kind(n, OpKind::Immediate8);
                i.set_immediate8(0x5a);
                imm = true;
            }
            _ => return None,
        }
    }
    if mem && !has_mem {
        return None;
    }
    let disp: i32 = if misaligned { 1 } else { 0x20 };
    if has_mem {
        i.set_memory_base(Register::R14);
        i.set_memory_displacement64(disp as i64 as u64);
        i.set_memory_displ_size(1);
        if let Some((_, y)) = vsib {
            i.set_memory_index(vreg(y, 5));
            i.set_memory_index_scale(8);
            xmms.retain(|&r| r != 5);
        }
    }
    if vsib.is_some() && xmms.contains(&5) {
        return None;
    }
    let mut e = Encoder::new(64);
    let len = e.encode(&i, 0).ok()?;
    let bytes = e.take_buffer()[..len].to_vec();
    let lane = lane_of(code.mnemonic());
    let mut f = Form::new(bytes).w(8).regs(&gprs);
    // The implicit operands: XMM0 (BLENDV, PCMPxSTRM), RAX/RDX lengths of PCMPESTRx.
    let implicit_x0 = matches!(
        code.mnemonic(),
        Mnemonic::Blendvps
            | Mnemonic::Blendvpd
            | Mnemonic::Pblendvb
            | Mnemonic::Pcmpistrm
            | Mnemonic::Pcmpestrm
            | Mnemonic::Pcmpestrm64
    );
    if implicit_x0 && !xmms.contains(&0) {
        xmms.push(0);
    }
    if !xmms.is_empty() {
        f = f.xmm(&xmms, lane);
    }
    if lane != Lane::Int {
        f = f.fp();
    }
    if matches!(
        code.mnemonic(),
        Mnemonic::Pcmpestri | Mnemonic::Pcmpestrm | Mnemonic::Pcmpestri64 | Mnemonic::Pcmpestrm64
    ) {
        f = f
            .regs(&[RAX, RDX])
            .fix(Fix::Range(RAX, -20, 20))
            .fix(Fix::Range(RDX, -20, 20));
    }
    if has_mem {
        let size = i.memory_size().size() as u8;
        let aligned = needs_alignment(&i, size as usize);
        if misaligned && !aligned {
            return None;
        }
        let align = if aligned { size as u64 } else { 0 };
        f = f.mem(MEMB, disp, size.max(1), align);
        if let Some((q, _)) = vsib {
            f = f.fix(Fix::Ptr(R14, 0x100, 0x180)).fix(Fix::Custom(if q {
                gather_idx_q
            } else {
                gather_idx_d
            }));
        }
    }
    if imm && !misaligned {
        f = f.imm(1);
    }
    f = f.fix(Fix::Custom(ymm_hi));
    if let Some((q, _)) = vsib {
        // ymm_hi above overwrote the index's upper half: set the indices again.
        f = f.fix(Fix::Custom(if q { gather_idx_q } else { gather_idx_d }));
    }
    if misaligned {
        f = f.tag("misaligned");
    }
    Some(f.tag(&format!("{code:?}")))
}

/// Every v2/v3 code cetbox executes, as forms.
pub fn all(v: &mut Vec<Form>) {
    for code in Code::values() {
        let Some(level) = level_needed(code.cpuid_features()) else {
            continue;
        };
        if level < CpuLevel::V2
            || !matches!(code.encoding(), EncodingKind::Legacy | EncodingKind::VEX)
        {
            continue;
        }
        // Forms with their own tests or no register-level meaning here.
        let s = format!("{code:?}");
        if s.contains("_mm_") || s.ends_with("_mm") || s.contains("mmm64") {
            continue; // SSSE3 MMX forms: `ssse3_mmx` below
        }
        if matches!(
            code.mnemonic(),
            Mnemonic::Xsave
                | Mnemonic::Xsave64
                | Mnemonic::Xsavec
                | Mnemonic::Xsavec64
                | Mnemonic::Xsaveopt
                | Mnemonic::Xsaveopt64
                | Mnemonic::Xrstor
                | Mnemonic::Xrstor64
                | Mnemonic::Xgetbv
                | Mnemonic::Xsetbv
                | Mnemonic::Cmpxchg16b
                | Mnemonic::Vmaskmovdqu
                | Mnemonic::Vldmxcsr
                | Mnemonic::Vstmxcsr
        ) {
            continue;
        }
        // Register variants of a form without register operands (VZEROUPPER, FISTTP m) come
        // out identical: keep one of each (the table check rejects exact repeats).
        let built = (0..3)
            .map(|variant| build(code, false, variant, false))
            .chain((0..2).map(|variant| build(code, true, variant, false)))
            .chain(std::iter::once(build(code, true, 0, true)));
        let mut seen: Vec<String> = Vec::new();
        for f in built.flatten() {
            let sig = super::forms::signature(&f);
            if !seen.contains(&sig) {
                seen.push(sig);
                v.push(f);
            }
        }
    }
}

/// SSSE3's MMX-register forms (0F 38 00..0B, 1C..1E; PALIGNR 0F 3A 0F): register and memory
/// forms with MMX operands (x87 stack entries randomized, so the MMX transition of TOP and
/// the tag word is compared too), PALIGNR with a random immediate (counts of 8..15 and 16 and
/// more included).
pub fn ssse3_mmx(v: &mut Vec<Form>) {
    let m = Rm::M(MEMB, 0x18);
    for o in [
        0x00u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x1c, 0x1d, 0x1e,
    ] {
        v.push(Form::new(modrm(&[], false, false, &[0x0f, 0x38, o], 1, Rm::R(2), &[])).x87(3));
        v.push(Form::new(modrm(&[], false, false, &[0x0f, 0x38, o], 5, Rm::R(5), &[])).x87(3));
        v.push(
            Form::new(modrm(&[], false, false, &[0x0f, 0x38, o], 3, m, &[]))
                .x87(3)
                .mem(MEMB, 0x18, 8, 0),
        );
    }
    v.push(
        Form::new(modrm(
            &[],
            false,
            false,
            &[0x0f, 0x3a, 0x0f],
            1,
            Rm::R(2),
            &[0],
        ))
        .x87(3)
        .imm(1),
    );
    v.push(
        Form::new(modrm(&[], false, false, &[0x0f, 0x3a, 0x0f], 6, m, &[0]))
            .x87(3)
            .mem(MEMB, 0x18, 8, 0)
            .imm(1),
    );
}

/// Whether `m` is a floating-point operation whose SIMD exceptions the unmasked test covers:
/// FMA3 (every order and sign, ps/pd/ss/sd, ADDSUB/SUBADD), SSE3 horizontal operations and
/// ADDSUB, DPPS/DPPD, SQRT, MIN/MAX, CMP and COMI, every conversion (F16C included) and
/// ROUND, legacy and VEX.
fn unmasked_mnemonic(m: Mnemonic) -> bool {
    let s = format!("{m:?}").to_lowercase();
    let s = s.strip_prefix('v').unwrap_or(&s);
    let fp = s.ends_with("ps") || s.ends_with("pd") || s.ends_with("ss") || s.ends_with("sd");
    s.starts_with("fmadd")
        || s.starts_with("fmsub")
        || s.starts_with("fnmadd")
        || s.starts_with("fnmsub")
        || (fp
            && [
                "hadd", "hsub", "addsub", "dp", "sqrt", "min", "max", "cmp", "round",
            ]
            .iter()
            .any(|p| s.starts_with(p)))
        || ["comis", "ucomis"].iter().any(|p| s.starts_with(p))
        || (s.starts_with("cvt") && !s.contains("pi"))
        || (fp
            && ["add", "sub", "mul", "div"]
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|r| r.len() == 2)))
}

/// The lane type of a conversion's source (the generator's inputs): CVTxx2yy reads xx.
fn source_lane(m: Mnemonic, lane: Lane) -> Lane {
    let s = format!("{m:?}").to_lowercase();
    let s = s.strip_prefix('v').unwrap_or(&s);
    let Some(rest) = s.strip_prefix("cvtt").or_else(|| s.strip_prefix("cvt")) else {
        return lane;
    };
    match rest.get(..2) {
        Some("ps" | "ss" | "ph") => Lane::F32,
        Some("pd" | "sd") => Lane::F64,
        Some("dq" | "si") => Lane::Int,
        _ => lane,
    }
}

/// The floating-point forms of every level with random MXCSR exceptions unmasked (a register
/// form and a memory form of each code), so #XM, its si_code and the MXCSR flags it leaves
/// are compared (crates/cpu/tests/differential.rs `sse_unmasked_exceptions`).
pub fn unmasked(v: &mut Vec<Form>) {
    for code in Code::values() {
        if !matches!(code.encoding(), EncodingKind::Legacy | EncodingKind::VEX)
            || !unmasked_mnemonic(code.mnemonic())
        {
            continue;
        }
        let s = format!("{code:?}");
        if s.contains("_mm_") || s.ends_with("_mm") || s.contains("mmm64") {
            continue; // CVTPI2PS and friends: MMX operands
        }
        if level_needed(code.cpuid_features()).is_none() {
            continue; // AVX-512 and others the CPU model never has
        }
        for mem in [false, true] {
            if let Some(mut f) = build(code, mem, 0, false) {
                f.lane = source_lane(code.mnemonic(), f.lane);
                v.push(f.unmasked().weight(0.5));
            }
        }
    }
}
