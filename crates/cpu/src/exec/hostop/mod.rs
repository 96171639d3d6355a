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
pub use vsib::{gather_layout, GatherLayout};

use super::sse::float::{host_csr, settle_after, vex_unmasked};
use super::sse::hostfp::{ldmxcsr, stmxcsr};
use super::Handler;
use crate::exception::Result;
use crate::fpstate::MXCSR_MASK;
use crate::level::{level_needed, CpuLevel};
use crate::{Cpu, Exception, UdReason};
use iced_x86::{
    Code, EncodingKind, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
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
    if code.mnemonic() == Mnemonic::Fisttp {
        return Some(fisttp);
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

/// SSSE3's MMX-register forms (PSHUFB mm, PALIGNR mm, ...): their state is in the x87 unit;
/// they are executed in Rust (`sse::ssse3_mmx`).
fn uses_mmx(code: Code) -> bool {
    let s = format!("{code:?}");
    s.contains("_mm_") || s.ends_with("_mm") || s.contains("_mmm64")
}

/// #UD for a form above the configured level, naming the instruction and its level. For
/// TZCNT and LZCNT, whose encodings an older CPU executes as REP BSF/BSR, None: run them so.
pub(crate) fn above_level(cpu: &Cpu, i: &Instruction) -> Option<Exception> {
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
/// string compares; among VEX forms only the aligned and non-temporal moves. Public for the
/// differential tests, which build aligned and misaligned memory operands by it (the host
/// CPU's faults then check the rule).
pub fn needs_alignment(i: &Instruction, size: usize) -> bool {
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

/// Everything about a form that does not depend on the operands' values, computed once per
/// encoding and kept for the life of the process (decoded blocks point at it).
#[derive(Clone, Copy)]
pub struct Prepared {
    has_mem: bool,
    /// The memory operand's size and whether it must be aligned to it.
    mem_size: u8,
    aligned: bool,
    access: OpAccess,
    plan: thunk::Plan,
    need: CpuLevel,
    /// The compiled thunk; None when it could not be compiled or the page budget is spent
    /// (then `code` is run from the scratch page).
    thunk: Option<thunk::ThunkFn>,
    /// False for forms that access memory other than through an explicit operand (never run
    /// on the host) or leave no GPR free for the buffer address.
    compiles: bool,
}

thread_local! {
    static INFO: RefCell<InstructionInfoFactory> = RefCell::new(InstructionInfoFactory::new());
}

/// Distinct encodings whose preparation is kept (each is a few dozen bytes).
const MAX_PREPARED: usize = 1 << 18;
static PREPARED: Mutex<Option<HashMap<Instruction, &'static Prepared>>> = Mutex::new(None);

/// The instruction with its memory operand's addressing erased: the cache key (what the thunk
/// depends on) and the input to `prepare`.
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

fn host_avx() -> bool {
    static AVX: OnceLock<bool> = OnceLock::new();
    *AVX.get_or_init(|| std::arch::is_x86_feature_detected!("avx"))
}

/// Analyses a normalized instruction: the registers it uses (explicitly or implicitly), the
/// GPRs the thunk may repurpose (never RSP, nor RDI which carries the context until the last
/// load), and compiles its thunk.
fn prepare(k: &Instruction) -> Prepared {
    let (vecs, gprs, access, any_mem) = INFO.with(|f| {
        let mut f = f.borrow_mut();
        let info = f.info(k);
        let (mut vecs, mut gprs) = (0u16, 0u16);
        for u in info.used_registers() {
            let r = u.register();
            if let Some(n) = thunk::gpr_number(r) {
                gprs |= 1 << n;
            } else if r.is_xmm() || r.is_ymm() || r.is_zmm() {
                // A VEX.128 write is reported as a write of the whole ZMM register (it zeroes
                // the upper bits).
                vecs |= 1 << (r.number() & 15);
            }
        }
        let access = info
            .used_memory()
            .first()
            .map(|m| m.access())
            .unwrap_or(OpAccess::None);
        (vecs, gprs, access, !info.used_memory().is_empty())
    });
    // VZEROUPPER and VZEROALL act on every vector register.
    let vecs = if matches!(k.mnemonic(), Mnemonic::Vzeroupper | Mnemonic::Vzeroall) {
        0xffff
    } else {
        vecs
    };
    let has_mem = has_memory(k);
    let mut free = [11usize, 10, 9, 8, 3, 5, 12, 13, 14, 15, 6, 1, 2, 0]
        .into_iter()
        .filter(|&n| gprs & (1 << n) == 0);
    let base = if has_mem { free.next() } else { None };
    let rsp_as = if gprs & (1 << 4) != 0 {
        free.next()
    } else {
        None
    };
    let plan = thunk::Plan {
        base,
        rsp_as,
        vecs,
        gprs: gprs & !(1 << 4),
        flags: k.rflags_read() != 0 || k.rflags_modified() != 0,
    };
    let implicit_mem = any_mem && !has_mem;
    let compiles = !implicit_mem && (!has_mem || base.is_some());
    let thunk = if compiles {
        let r = thunk::rewrite(k, base, rsp_as);
        // Err: over the page budget; the scratch page runs it (`run_prepared`).
        thunk::get(k, &|| thunk::generate(&r, &plan, host_avx())).unwrap_or_default()
    } else {
        None
    };
    let mem_size = if has_mem { k.memory_size().size() } else { 0 };
    Prepared {
        has_mem,
        mem_size: mem_size.min(255) as u8,
        aligned: has_mem && needs_alignment(k, mem_size),
        access: if has_mem { access } else { OpAccess::None },
        plan,
        need: level_needed(k.cpuid_features()).unwrap_or(CpuLevel::V3),
        thunk,
        compiles,
    }
}

/// The preparation of `i`, kept for the process when the table has room.
fn prepared(i: &Instruction) -> Prepared {
    let key = normalized(i);
    let mut g = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(p) = map.get(&key) {
        return **p;
    }
    drop(g);
    let p = prepare(&key);
    let mut g = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if map.len() < MAX_PREPARED {
        map.entry(key).or_insert_with(|| Box::leak(Box::new(p)));
    }
    p
}

/// The preparation of a form that runs through a host thunk, kept for the life of the process
/// (an engine may point at it from its decoded code: `interp::select_hostop`); None for the
/// forms with handlers of their own (VLDMXCSR, VSTMXCSR, FISTTP, gathers, masked moves), for
/// other forms, and when the table is full.
pub(crate) fn kept_preparation(i: &Instruction) -> Option<&'static Prepared> {
    let code = i.code();
    let thunk_form = lookup(code).is_some()
        && !matches!(code, Code::VEX_Vldmxcsr_m32 | Code::VEX_Vstmxcsr_m32)
        && code.mnemonic() != Mnemonic::Fisttp
        && vsib::lookup(code).is_none()
        && maskmov::lookup(code).is_none();
    if !thunk_form {
        return None;
    }
    let key = normalized(i);
    let _ = prepared(i);
    let g = PREPARED.lock().unwrap_or_else(|e| e.into_inner());
    let p: &'static Prepared = g.as_ref()?.get(&key)?;
    Some(p)
}

/// Executes a v2/v3 form through its host thunk.
pub fn exec(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let p = prepared(i);
    run_prepared(cpu, i, &p)
}

/// Executes `i` with its preparation `p` (from [`kept_preparation`] or `prepared`).
pub(crate) fn run_prepared(cpu: &mut Cpu, i: &Instruction, p: &Prepared) -> Result<()> {
    if p.need > cpu.config.level {
        return match i.mnemonic() {
            Mnemonic::Tzcnt => super::bits::bsf(cpu, i),
            Mnemonic::Lzcnt => super::bits::bsr(cpu, i),
            _ => {
                Err(above_level(cpu, i)
                    .unwrap_or(Exception::InvalidOpcode(UdReason::Architectural)))
            }
        };
    }
    let unsupported = || {
        Exception::InvalidOpcode(UdReason::Unimplemented(format!(
            "{i} ({:?}): cannot be run on the host",
            i.code()
        )))
    };
    if !p.compiles {
        return Err(unsupported());
    }
    let mut ctx = Ctx::default();
    // The memory operand: alignment, then the access itself, before anything runs.
    let (addr, size) = if p.has_mem {
        let size = p.mem_size as usize;
        if size == 0 || size > ctx.buf.len() {
            return Err(unsupported());
        }
        let addr = cpu.ea(i);
        if p.aligned && !addr.is_multiple_of(size as u64) {
            return Err(Exception::Alignment);
        }
        match p.access {
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
    let old_flags = if p.plan.flags { cpu.rflags() } else { 0 };
    ctx.rflags = (old_flags & ARITH) | 2;
    for n in 0..16 {
        if p.plan.vecs & (1 << n) != 0 {
            ctx.ymm[n] = [cpu.sse.xmm[n], cpu.sse.ymm_hi[n]];
        }
    }
    // MXCSR: when the guest masks every SIMD exception, the host MXCSR holds the guest's
    // control bits and accumulates its flags (`fastsse` live mode), as for the SSE fast paths.
    // Otherwise the thunk runs under the guest's control bits with exceptions masked, and the
    // guest's masks are applied to the flags it raised (#XM with nothing committed).
    let live = cpu.fp_enter();
    let saved = if live {
        0
    } else {
        let saved = stmxcsr();
        ldmxcsr(host_csr(cpu.sse.mxcsr));
        saved
    };
    let ran = match p.thunk {
        Some(f) => {
            thunk::call(f, &mut ctx);
            true
        }
        None => {
            // Over the page budget (or a refused mapping): compile into the scratch page.
            let r = thunk::rewrite(&normalized(i), p.plan.base, p.plan.rsp_as);
            thunk::generate(&r, &p.plan, host_avx())
                .is_some_and(|code| thunk::run_scratch(&code, &mut ctx))
        }
    };
    if !live {
        let raised = stmxcsr() & 0x3f;
        ldmxcsr(saved);
        if !ran {
            return Err(unsupported());
        }
        // Lanes that overflow or underflow with OE or UE unmasked report what the host's
        // unmasked run would (sse::float::vex_unmasked); the thunk ran with all masked.
        let (done, raised) = vex_unmasked(cpu, i, &ctx.buf[..size]).unwrap_or((0, raised));
        settle_after(cpu, done, raised)?;
    } else if !ran {
        return Err(unsupported());
    }
    if matches!(p.access, OpAccess::Write | OpAccess::ReadWrite) && size > 0 {
        cpu.mem.write_bytes(addr, &ctx.buf[..size])?;
    }
    cpu.gpr = ctx.gpr;
    if p.plan.flags {
        cpu.set_rflags((old_flags & !ARITH) | (ctx.rflags & ARITH));
    }
    for n in 0..16 {
        if p.plan.vecs & (1 << n) != 0 {
            cpu.sse.xmm[n] = ctx.ymm[n][0];
            cpu.sse.ymm_hi[n] = ctx.ymm[n][1];
        }
    }
    Ok(())
}

fn has_memory(i: &Instruction) -> bool {
    (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Memory)
}

/// FISTTP (SSE3, so x86-64-v2): the x87 unit executes it once the level allows it.
fn fisttp(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    check_level(cpu, i)?;
    match super::x87::lookup(i.code()) {
        Some(h) => h(cpu, i),
        None => Err(Exception::InvalidOpcode(UdReason::Architectural)),
    }
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
