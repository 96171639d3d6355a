//! String instructions: MOVS STOS LODS CMPS SCAS in all sizes, with REP/REPE/REPNE, the
//! direction flag, and 32-bit address size.
//!
//! REP MOVS and REP STOS run in page-sized chunks through the bulk memory API. A fault leaves
//! RSI/RDI/RCX describing the iterations already done (RIP stays at the instruction), and a
//! long REP yields after a bounded amount of work with RIP at the instruction, as an interrupt
//! would, so the run loop can notice a pending signal.

use super::Handler;
use crate::exception::Result;
use crate::flags::FlagOp;
use crate::operand::size_mask;
use crate::Cpu;
use cetbox_mem::PAGE_SIZE;
use iced_x86::{Code, Instruction, OpKind, Register};

pub fn lookup(code: Code) -> Option<Handler> {
    use Code::*;
    Some(match code {
        Movsb_m8_m8 => movs::<1>,
        Movsw_m16_m16 => movs::<2>,
        Movsd_m32_m32 => movs::<4>,
        Movsq_m64_m64 => movs::<8>,
        Stosb_m8_AL => stos::<1>,
        Stosw_m16_AX => stos::<2>,
        Stosd_m32_EAX => stos::<4>,
        Stosq_m64_RAX => stos::<8>,
        Lodsb_AL_m8 => lods::<1>,
        Lodsw_AX_m16 => lods::<2>,
        Lodsd_EAX_m32 => lods::<4>,
        Lodsq_RAX_m64 => lods::<8>,
        Cmpsb_m8_m8 => cmps::<1>,
        Cmpsw_m16_m16 => cmps::<2>,
        Cmpsd_m32_m32 => cmps::<4>,
        Cmpsq_m64_m64 => cmps::<8>,
        Scasb_AL_m8 => scas::<1>,
        Scasw_AX_m16 => scas::<2>,
        Scasd_EAX_m32 => scas::<4>,
        Scasq_RAX_m64 => scas::<8>,
        _ => return None,
    })
}

/// Iterations one call may run before yielding (re-executing the instruction later). It
/// bounds the latency of `stop`: element-by-element loops (CMPS, SCAS, LODS, overlapping or
/// 32-bit-address MOVS/STOS) cost tens of nanoseconds per element without optimisation, and a
/// yield costs one block-cache lookup.
const BUDGET: u64 = 1 << 18;

const RCX: usize = 1;
const RSI: usize = 6;
const RDI: usize = 7;

/// The address-size and direction context of one string instruction.
struct Ctx {
    /// Address mask: 32 bits with a 0x67 prefix.
    am: u64,
    /// Segment base of the source (DS may be overridden by FS or GS).
    src_base: u64,
    /// Per-element step (negative when DF is set), as a wrapping u64.
    step: u64,
    back: bool,
}

impl Ctx {
    fn new(cpu: &Cpu, i: &Instruction, size: u64) -> Ctx {
        let a32 = (0..i.op_count().min(2))
            .any(|n| matches!(i.op_kind(n), OpKind::MemoryESEDI | OpKind::MemorySegESI));
        let src_base = match i.memory_segment() {
            Register::FS => cpu.fs_base,
            Register::GS => cpu.gs_base,
            _ => 0,
        };
        let back = cpu.flags.df();
        Ctx {
            am: if a32 { 0xffff_ffff } else { u64::MAX },
            src_base,
            step: if back { size.wrapping_neg() } else { size },
            back,
        }
    }

    #[inline(always)]
    fn src(&self, cpu: &Cpu) -> u64 {
        self.src_base.wrapping_add(cpu.gpr[RSI] & self.am)
    }

    #[inline(always)]
    fn dst(&self, cpu: &Cpu) -> u64 {
        cpu.gpr[RDI] & self.am
    }

    #[inline(always)]
    fn count(&self, cpu: &Cpu) -> u64 {
        cpu.gpr[RCX] & self.am
    }

    /// Advances a pointer register by `n` elements (a 32-bit address size zero-extends).
    #[inline(always)]
    fn advance(&self, cpu: &mut Cpu, reg: usize, n: u64) {
        cpu.gpr[reg] = cpu.gpr[reg].wrapping_add(self.step.wrapping_mul(n)) & self.am;
    }

    /// Whether a REP loop stops before its next element: the count is exhausted, or the
    /// budget is spent, in which case RIP goes back to the instruction so it resumes later.
    #[inline(always)]
    fn rep_stop(&self, cpu: &mut Cpu, i: &Instruction, budget: u64) -> bool {
        if self.count(cpu) == 0 {
            return true;
        }
        if budget == 0 {
            cpu.rip = i.ip();
            return true;
        }
        false
    }

    #[inline(always)]
    fn consume(&self, cpu: &mut Cpu, n: u64) {
        cpu.gpr[RCX] = cpu.gpr[RCX].wrapping_sub(n) & self.am;
    }

    /// How many elements, starting with the one at `addr` and moving in the string direction,
    /// lie within `addr`'s page. Zero if that element crosses the page end.
    #[inline(always)]
    fn in_page(&self, addr: u64, size: u64) -> u64 {
        let off = addr & (PAGE_SIZE - 1);
        if off + size > PAGE_SIZE {
            0
        } else if self.back {
            off / size + 1
        } else {
            (PAGE_SIZE - off) / size
        }
    }

    /// The lowest address of a chunk of `n` elements whose first element is at `addr`.
    #[inline(always)]
    fn chunk_start(&self, addr: u64, n: u64, size: u64) -> u64 {
        if self.back {
            addr.wrapping_sub((n - 1) * size)
        } else {
            addr
        }
    }
}

#[inline(always)]
fn is_rep(i: &Instruction) -> bool {
    i.has_rep_prefix() || i.has_repne_prefix()
}

fn acc_reg(size: u64) -> Register {
    match size {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    }
}

/// The shared loop of MOVS and STOS: `one` stores one element and advances the pointers; with
/// a REP prefix and 64-bit addresses, `bulk` first tries a chunk of up to `count` elements
/// within one page and returns how many it stored and advanced past (0: none, store one).
#[inline(always)]
fn store_loop(
    cpu: &mut Cpu,
    i: &Instruction,
    c: &Ctx,
    bulk: impl Fn(&mut Cpu, &Ctx, u64) -> u64,
    one: impl Fn(&mut Cpu, &Ctx) -> Result<()>,
) -> Result<()> {
    if !is_rep(i) {
        return one(cpu, c);
    }
    let mut budget = BUDGET;
    loop {
        if c.rep_stop(cpu, i, budget) {
            return Ok(());
        }
        if c.am == u64::MAX {
            let n = bulk(cpu, c, c.count(cpu));
            if n > 0 {
                c.consume(cpu, n);
                budget = budget.saturating_sub(n);
                continue;
            }
        }
        one(cpu, c)?;
        c.consume(cpu, 1);
        budget -= 1;
    }
}

fn movs<const SIZE: u64>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let c = Ctx::new(cpu, i, SIZE);
    let sz = SIZE as u32;
    let bulk = |cpu: &mut Cpu, c: &Ctx, count: u64| {
        let (src, dst) = (c.src(cpu), c.dst(cpu));
        let n = c.in_page(src, SIZE).min(c.in_page(dst, SIZE)).min(count);
        if n < 2 {
            return 0;
        }
        let s = c.chunk_start(src, n, SIZE);
        let d = c.chunk_start(dst, n, SIZE);
        let len = n * SIZE;
        // Element-by-element copying equals memmove unless the destination overlaps the part
        // of the source still to be read.
        let disjoint = d.wrapping_add(len) <= s || s.wrapping_add(len) <= d;
        let safe = disjoint || (!c.back && d <= s) || (c.back && d >= s);
        if !safe || cpu.mem.copy_within(d, s, len).is_err() {
            return 0;
        }
        c.advance(cpu, RSI, n);
        c.advance(cpu, RDI, n);
        n
    };
    store_loop(cpu, i, &c, bulk, |cpu, c| {
        let v = cpu.mem.read_sized(c.src(cpu), sz)?;
        cpu.mem.write_sized(c.dst(cpu), sz, v)?;
        c.advance(cpu, RSI, 1);
        c.advance(cpu, RDI, 1);
        Ok(())
    })
}

fn stos<const SIZE: u64>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let c = Ctx::new(cpu, i, SIZE);
    let sz = SIZE as u32;
    let v = cpu.gpr[0] & size_mask(sz);
    let bulk = move |cpu: &mut Cpu, c: &Ctx, count: u64| {
        let dst = c.dst(cpu);
        let n = c.in_page(dst, SIZE).min(count);
        if n < 2 || cpu.mem.fill(c.chunk_start(dst, n, SIZE), n, sz, v).is_err() {
            return 0;
        }
        c.advance(cpu, RDI, n);
        n
    };
    store_loop(cpu, i, &c, bulk, move |cpu, c| {
        cpu.mem.write_sized(c.dst(cpu), sz, v)?;
        c.advance(cpu, RDI, 1);
        Ok(())
    })
}

fn lods<const SIZE: u64>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let c = Ctx::new(cpu, i, SIZE);
    let sz = SIZE as u32;
    let rep = is_rep(i);
    let mut budget = BUDGET;
    loop {
        if rep && c.rep_stop(cpu, i, budget) {
            return Ok(());
        }
        let v = cpu.mem.read_sized(c.src(cpu), sz)?;
        cpu.set_reg(acc_reg(SIZE), v);
        c.advance(cpu, RSI, 1);
        if !rep {
            return Ok(());
        }
        c.consume(cpu, 1);
        budget -= 1;
    }
}

/// The shared loop of CMPS and SCAS: `next` loads one pair (a, b) to compare as a - b and
/// advances the pointers.
#[inline(always)]
fn compare_loop<const SIZE: u64>(
    cpu: &mut Cpu,
    i: &Instruction,
    c: &Ctx,
    next: impl Fn(&mut Cpu, &Ctx) -> Result<(u64, u64)>,
) -> Result<()> {
    let sz = SIZE as u32;
    let (repe, repne) = (i.has_repe_prefix(), i.has_repne_prefix());
    if !repe && !repne {
        let (a, b) = next(cpu, c)?;
        cpu.flags
            .set_lazy(FlagOp::Sub, sz, a, b, a.wrapping_sub(b) & size_mask(sz));
        return Ok(());
    }
    let mut budget = BUDGET;
    loop {
        if c.rep_stop(cpu, i, budget) {
            return Ok(());
        }
        let (a, b) = next(cpu, c)?;
        c.consume(cpu, 1);
        budget -= 1;
        cpu.flags
            .set_lazy(FlagOp::Sub, sz, a, b, a.wrapping_sub(b) & size_mask(sz));
        if (a == b) != repe {
            return Ok(());
        }
    }
}

fn cmps<const SIZE: u64>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let c = Ctx::new(cpu, i, SIZE);
    compare_loop::<SIZE>(cpu, i, &c, |cpu, c| {
        let a = cpu.mem.read_sized(c.src(cpu), SIZE as u32)?;
        let b = cpu.mem.read_sized(c.dst(cpu), SIZE as u32)?;
        c.advance(cpu, RSI, 1);
        c.advance(cpu, RDI, 1);
        Ok((a, b))
    })
}

fn scas<const SIZE: u64>(cpu: &mut Cpu, i: &Instruction) -> Result<()> {
    let c = Ctx::new(cpu, i, SIZE);
    let a = cpu.gpr[0] & size_mask(SIZE as u32);
    compare_loop::<SIZE>(cpu, i, &c, move |cpu, c| {
        let b = cpu.mem.read_sized(c.dst(cpu), SIZE as u32)?;
        c.advance(cpu, RDI, 1);
        Ok((a, b))
    })
}
