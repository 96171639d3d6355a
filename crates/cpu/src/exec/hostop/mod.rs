//! The instruction forms of x86-64-v2 and x86-64-v3 (SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT,
//! AVX, AVX2, FMA3, F16C, BMI1, BMI2, LZCNT, MOVBE) executed exactly by running the very
//! instruction on the host CPU (`thunk`), with the guest's registers loaded into the host's and
//! its memory operand redirected to a buffer.
//!
//! The memory operand is handled here, against the software page table, before anything runs:
//! the SDM's alignment rule (#GP(0), `Exception::Alignment`) first, then the read of the
//! operand's bytes into the buffer, or the check that a destination is writable. The thunk then
//! runs on a copy of the state; the SIMD exception masks are applied to the flags it raised
//! (`float::settle`, #XM with nothing committed); only then are memory, registers, flags and
//! MXCSR committed. Faults are therefore precise.
//!
//! Forms whose memory access is per element (gathers, masked moves) are in `vsib` and
//! `maskmov`; VLDMXCSR/VSTMXCSR, whose effect is on MXCSR itself, are here in Rust.

mod maskmov;
pub mod thunk;
mod vsib;

use super::sse::float::{host_csr, settle};
use super::Handler;
use crate::exception::Result;
use crate::fpstate::MXCSR_MASK;
use crate::level::{level_needed, CpuLevel};
use crate::{Cpu, Exception, UdReason};
use iced_x86::{
    Code, EncodingKind, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};
use std::cell::RefCell;
use thunk::Ctx;

/// CF PF AF ZF SF OF.
const ARITH: u64 = 0x8d5;

/// The handler for a v2/v3 form, or None (the form is not of those levels, or needs state the
/// thunk does not carry: MMX or x87 registers).
pub fn lookup(code: Code) -> Option<Handler> {
    match code {
        Code::VEX_Vldmxcsr_m32 => return Some(vldmxcsr),
        Code::VEX_Vstmxcsr_m32 => return Some(vstmxcsr),
        _ => {}
    }
    if !matches!(code.encoding(), EncodingKind::Legacy | EncodingKind::VEX) {
        return None;
    }
    let level = level_needed(code.cpuid_features())?;
    if level < CpuLevel::V2 {
        return None;
    }
    if let Some(h) = vsib::lookup(code).or_else(|| maskmov::lookup(code)) {
        return Some(h);
    }
    match code.mnemonic() {
        // XSAVE and friends, CMPXCHG16B and FISTTP (x87 state) live elsewhere.
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
        | Mnemonic::Fisttp
        | Mnemonic::Monitor
        | Mnemonic::Mwait => return None,
        _ => {}
    }
    if uses_mmx(code) {
        return None;
    }
    Some(exec)
}

/// SSSE3's MMX-register forms (PSHUFB mm, PALIGNR mm, ...): their state is in the x87 unit.
fn uses_mmx(code: Code) -> bool {
    let s = format!("{code:?}");
    s.contains("_mm_") || s.ends_with("_mm") || s.contains("_mmm64")
}

/// #UD for a form above the configured level, naming the instruction and its level. For
/// TZCNT and LZCNT, whose encodings an older CPU executes as REP BSF/BSR, None: run them so.
fn above_level(cpu: &Cpu, i: &Instruction) -> Option<Exception> {
    let need = level_needed(i.cpuid_features()).unwrap_or(CpuLevel::V3);
    if need <= cpu.config.level {
        return None;
    }
    Some(Exception::InvalidOpcode(UdReason::Unimplemented(format!(
        "{i} ({:?}) is an {} instruction; the CPU presented is {} (see --cpu)",
        i.code(),
        need.name(),
        cpu.config.level.name()
    ))))
}

/// YMM register number of an XMM or YMM register.
pub(crate) fn vec_index(r: Register) -> usize {
    if r.is_ymm() {
        (r as usize - Register::YMM0 as usize) & 15
    } else {
        (r as usize - Register::XMM0 as usize) & 15
    }
}

/// The 256-bit value of vector register n as bytes.
pub(crate) fn ymm_bytes(cpu: &Cpu, n: usize) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&cpu.sse.xmm[n].to_le_bytes());
    b[16..].copy_from_slice(&cpu.sse.ymm_hi[n].to_le_bytes());
    b
}

pub(crate) fn set_ymm_bytes(cpu: &mut Cpu, n: usize, b: &[u8; 32]) {
    cpu.sse.xmm[n] = u128::from_le_bytes(b[..16].try_into().unwrap());
    cpu.sse.ymm_hi[n] = u128::from_le_bytes(b[16..].try_into().unwrap());
}

/// Level check shared by the per-element families.
pub(crate) fn check_level(cpu: &Cpu, i: &Instruction) -> Result<()> {
    match above_level(cpu, i) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether a memory operand of this form must be aligned to its size (SDM Vol. 1 §11.4.1,
/// §14.9): legacy SSE 128-bit operands except the explicitly unaligned loads and the SSE4.2
/// string compares; among VEX forms only the aligned and non-temporal moves.
fn needs_alignment(i: &Instruction, size: usize) -> bool {
    use Mnemonic::*;
    match i.encoding() {
        EncodingKind::Legacy => {
            size == 16
                && !matches!(
                    i.mnemonic(),
                    Lddqu
                        | Pcmpestri
                        | Pcmpestri64
                        | Pcmpestrm
                        | Pcmpestrm64
                        | Pcmpistri
                        | Pcmpistrm
                )
        }
        _ => matches!(
            i.mnemonic(),
            Vmovaps | Vmovapd | Vmovdqa | Vmovntps | Vmovntpd | Vmovntdq | Vmovntdqa
        ),
    }
}

/// What the thunk cache needs to know about a form, computed once per encoding.
#[derive(Clone, Copy)]
struct Shape {
    /// The instruction accesses memory other than through an explicit operand (never run).
    implicit_mem: bool,
    base: Option<usize>,
    rsp_as: Option<usize>,
    access: OpAccess,
}

thread_local! {
    static INFO: RefCell<InstructionInfoFactory> = RefCell::new(InstructionInfoFactory::new());
    static SHAPES: RefCell<std::collections::HashMap<Instruction, Shape>> =
        RefCell::new(std::collections::HashMap::new());
}

/// The instruction with its memory operand's addressing erased: the cache key (what the thunk
/// depends on) and the input to `shape`.
fn normalized(i: &Instruction) -> Instruction {
    let mut k = *i;
    k.set_memory_base(Register::None);
    k.set_memory_index(Register::None);
    k.set_memory_index_scale(1);
    k.set_memory_displacement64(0);
    k.set_memory_displ_size(0);
    k.set_segment_prefix(Register::None);
    k.set_ip(0);
    k
}

/// Picks the registers the thunk repurposes: GPRs the instruction does not use (explicitly or
/// implicitly), never RSP or RDI (which carries the context until the last load).
fn shape(k: &Instruction) -> Shape {
    let (used, access, any_mem) = INFO.with(|f| {
        let mut f = f.borrow_mut();
        let info = f.info(k);
        let mut used = [false; 16];
        for u in info.used_registers() {
            if let Some(n) = thunk::gpr_number(u.register()) {
                used[n] = true;
            }
        }
        let access = info
            .used_memory()
            .first()
            .map(|m| m.access())
            .unwrap_or(OpAccess::None);
        (used, access, !info.used_memory().is_empty())
    });
    let has_mem = (0..k.op_count()).any(|n| k.op_kind(n) == OpKind::Memory);
    let mut free = [11usize, 10, 9, 8, 3, 5, 12, 13, 14, 15, 6, 1, 2, 0]
        .into_iter()
        .filter(|&n| !used[n]);
    let base = if has_mem { free.next() } else { None };
    let rsp_as = if used[4] { free.next() } else { None };
    Shape {
        implicit_mem: any_mem && !has_mem,
        base,
        rsp_as,
        access: if has_mem { access } else { OpAccess::None },
    }
}

/// Executes a v2/v3 form through its host thunk.
pub fn exec(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    if let Some(e) = above_level(cpu, i) {
        return match i.mnemonic() {
            Mnemonic::Tzcnt => super::bits::bsf(cpu, i),
            Mnemonic::Lzcnt => super::bits::bsr(cpu, i),
            _ => Err(e),
        };
    }
    let key = normalized(i);
    let sh = SHAPES.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() > 1 << 16 {
            s.clear();
        }
        *s.entry(key).or_insert_with(|| shape(&key))
    });
    let unsupported = || {
        Exception::InvalidOpcode(UdReason::Unimplemented(format!(
            "{i} ({:?}): cannot be run on the host",
            i.code()
        )))
    };
    if sh.implicit_mem {
        return Err(unsupported());
    }
    let mut ctx = Ctx::default();
    // The memory operand: alignment, then the access itself, before anything runs.
    let (addr, size) = if has_memory(i) {
        let size = i.memory_size().size();
        if sh.base.is_none() || size == 0 || size > ctx.buf.len() {
            return Err(unsupported());
        }
        let addr = cpu.ea(i);
        if needs_alignment(i, size) && addr % size as u64 != 0 {
            return Err(Exception::Alignment);
        }
        match sh.access {
            OpAccess::Read => cpu.mem.read_bytes(addr, &mut ctx.buf[..size])?,
            OpAccess::Write => cpu
                .mem
                .check(addr, size as u64, cetbox_mem::Access::Write)?,
            OpAccess::ReadWrite => {
                cpu.mem.read_bytes(addr, &mut ctx.buf[..size])?;
                cpu.mem
                    .check(addr, size as u64, cetbox_mem::Access::Write)?
            }
            _ => return Err(unsupported()),
        }
        (addr, size)
    } else {
        (0, 0)
    };
    ctx.gpr = cpu.gpr;
    let old_flags = cpu.rflags();
    ctx.rflags = (old_flags & ARITH) | 2;
    let guest_csr = cpu.sse.mxcsr;
    ctx.mxcsr = host_csr(guest_csr);
    for n in 0..16 {
        ctx.ymm[n] = [cpu.sse.xmm[n], cpu.sse.ymm_hi[n]];
    }
    let avx = cpu.config.level >= CpuLevel::V3;
    let ran = thunk::run(
        &key,
        &|| {
            let r = thunk::rewrite(&key, sh.base, sh.rsp_as);
            thunk::generate(&r, sh.base, sh.rsp_as, avx)
        },
        &mut ctx,
    );
    if !ran {
        return Err(unsupported());
    }
    settle(cpu, ctx.mxcsr & 0x3f)?;
    if matches!(sh.access, OpAccess::Write | OpAccess::ReadWrite) && size > 0 {
        cpu.mem.write_bytes(addr, &ctx.buf[..size])?;
    }
    cpu.gpr = ctx.gpr;
    cpu.set_rflags((old_flags & !ARITH) | (ctx.rflags & ARITH));
    for n in 0..16 {
        cpu.sse.xmm[n] = ctx.ymm[n][0];
        cpu.sse.ymm_hi[n] = ctx.ymm[n][1];
    }
    Ok(())
}

fn has_memory(i: &Instruction) -> bool {
    (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory)
}

/// VLDMXCSR m32 (SDM Vol. 2B): #GP(0) if a reserved bit is set.
fn vldmxcsr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    let v = cpu.mem.read_u32(cpu.ea(i))?;
    if v & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection);
    }
    cpu.sse.mxcsr = v;
    Ok(())
}

/// VSTMXCSR m32.
fn vstmxcsr(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    cpu.mem.write_u32(cpu.ea(i), cpu.sse.mxcsr)?;
    Ok(())
}
