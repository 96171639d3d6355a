//! The interpreter: the reference engine. Guest code is decoded once into blocks of
//! pre-decoded instructions (`block`), each paired with a form-specialized executor (`fast`,
//! `fast_sse`, chosen at decode time by `select`, `select_sse`) or with the family handler of
//! the instruction semantics in `crate::exec`.

mod align;
pub(crate) mod block;
pub(crate) mod fast;
pub(crate) mod fast_sse;
mod select;
mod select_hostop;
mod select_sse;

use crate::engine::{Engine, Exit};
use crate::{Cpu, Exception};
use block::{BlockCache, Op, EMPTY};
use std::sync::atomic::{AtomicBool, Ordering};

/// The interpreting engine; its state is the decoded-block cache (and, for `run_block`, the
/// block it ran last, whose successor prediction the next call uses).
#[derive(Default)]
pub struct Interpreter {
    cache: BlockCache,
    prev: Option<u32>,
}

impl Interpreter {
    pub fn new() -> Interpreter {
        Interpreter::default()
    }
}

impl Interpreter {
    /// Runs the one decoded block at RIP (as `run` would, without polling a stop flag) and
    /// returns what `run` would have returned after it, or None to continue. For engines that
    /// hand the interpreter the blocks they do not handle themselves; the caller polls `stop`
    /// between blocks and calls `Cpu::fp_sync` before it returns to the operating system.
    pub fn run_block(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        let mut prev = self.prev.take();
        let cache = &mut self.cache;
        let idx = match next_block(cpu, cache, &mut prev, None) {
            Ok(Found::Block(i)) => i,
            Ok(_) => return None,
            Err(exit) => return Some(exit),
        };
        let exit = exec_block(cpu, &cache.blocks[idx as usize], cache.epoch);
        self.prev = exit.is_none().then_some(idx);
        exit
    }
}

/// Why `Interpreter::run_cold` returned.
#[derive(Debug, PartialEq, Eq)]
pub enum ColdExit {
    /// The guest left to the operating system or raised an exception, as from `run`.
    Exit(Exit),
    /// The block at RIP was about to start for the `hot`-th time; it has not run.
    Hot,
    /// The stop flag is set (RIP is at a block boundary).
    Stopped,
}

/// `Block::visits` of a block `run_cold` never stops at again (`Interpreter::keep`).
const KEEP: u32 = u32::MAX;

impl Interpreter {
    /// Runs blocks from RIP, as `run` does, for an engine that takes over blocks once they
    /// are hot: it stops before a block that is about to start for the `hot`-th time
    /// (`hot` >= 1), and before it again on every later arrival, until `keep` says
    /// otherwise. Counting here rather than in the caller keeps cold code (most of a
    /// process's start-up) in the interpreter's own loop, with its successor prediction,
    /// instead of a round trip through the caller's lookup per block. The counts live in
    /// the decoded blocks, so they start again from 0 whenever the block cache is cleared
    /// (a code change), exactly when the caller's translations are dropped as well.
    ///
    /// `known_hot` is asked once per block, before it is decoded (or, for a block decoded
    /// by `run_block`, or whose count `reset_visits` reset, before its next start), whether
    /// the block is already known to be hot (a profile of earlier runs); if so it counts as
    /// hot at once. Its answer only moves the moment the caller takes the block over. A block
    /// known to be hot before it is decoded is not decoded: its caller decodes it for itself,
    /// and the cache holds a placeholder that makes later arrivals return `Hot` at once; it is
    /// decoded in place only if the caller gives it back (`keep`) or `run_block` runs it.
    pub fn run_cold(
        &mut self,
        cpu: &mut Cpu,
        stop: &AtomicBool,
        hot: u32,
        mut known_hot: impl FnMut(&Cpu) -> bool,
    ) -> ColdExit {
        let cache = &mut self.cache;
        let mut prev = self.prev.take();
        loop {
            if stop.load(Ordering::Relaxed) {
                return ColdExit::Stopped;
            }
            // Whether `known_hot` was asked (and said no) before the block was decoded now.
            let mut asked = false;
            let mut ask = |cpu: &Cpu| {
                asked = true;
                known_hot(cpu)
            };
            let idx = match next_block(cpu, cache, &mut prev, Some(&mut ask)) {
                Ok(Found::Block(i)) => i,
                Ok(Found::Stepped) => continue,
                Ok(Found::Hinted) => {
                    self.prev = prev;
                    return ColdExit::Hot;
                }
                Err(exit) => return ColdExit::Exit(exit),
            };
            let block = &mut cache.blocks[idx as usize];
            if block.visits != KEEP {
                if block.visits + 1 >= hot || (block.visits == 0 && !asked && known_hot(cpu)) {
                    block.visits = hot - 1;
                    self.prev = prev;
                    return ColdExit::Hot;
                }
                block.visits += 1;
            }
            if let Some(exit) = exec_block(cpu, &cache.blocks[idx as usize], cache.epoch) {
                return ColdExit::Exit(exit);
            }
            prev = Some(idx);
        }
    }

    /// Forgets every block's visit count (and `keep`).
    pub fn reset_visits(&mut self) {
        for b in &mut self.cache.blocks {
            b.visits = 0;
        }
    }

    /// Tells `run_cold` to run the block at RIP from now on instead of stopping before it
    /// when it is hot (its caller will not take it over); a placeholder is then decoded when
    /// `run_cold` next arrives there. No effect if the block is not in the cache.
    pub fn keep(&mut self, rip: u64) {
        if let Some(&i) = self.cache.peek(rip) {
            self.cache.blocks[i as usize].visits = KEEP;
        }
    }
}

/// What `next_block` found at RIP.
enum Found {
    /// The decoded block with this arena index.
    Block(u32),
    /// A placeholder (`run_cold` only): the block is known to be hot and was not decoded.
    Hinted,
    /// One instruction ran instead of a block (EFLAGS.TF or AC).
    Stepped,
}

/// The block at RIP: from the successor prediction of `prev` (the block that just ran) when it
/// knows RIP, else from the cache (decoding it if needed), teaching `prev` its new successor.
/// `hinted`: `run_cold`'s question, asked before decoding a block that is not in the cache
/// (a yes enters a placeholder); a placeholder found is `Hinted` to `run_cold` unless it was
/// kept, and is otherwise decoded in place.
#[inline(always)]
fn find(
    cache: &mut BlockCache,
    prev: Option<u32>,
    cpu: &Cpu,
    mut hinted: Option<&mut dyn FnMut(&Cpu) -> bool>,
) -> Result<Found, Exception> {
    let rip = cpu.rip;
    let cold = hinted.is_some();
    let ask = || hinted.as_mut().is_some_and(|h| h(cpu));
    let i = match prev {
        None => cache.get(rip, &cpu.mem, ask)?.0,
        Some(p) => {
            let s = &cache.blocks[p as usize].succ;
            if s[0].0 == rip && rip != EMPTY {
                s[0].1
            } else if s[1].0 == rip && rip != EMPTY {
                s[1].1
            } else {
                let (i, cleared) = cache.get(rip, &cpu.mem, ask)?;
                if !cleared {
                    let s = &mut cache.blocks[p as usize].succ;
                    s[1] = s[0];
                    s[0] = (rip, i);
                }
                i
            }
        }
    };
    let block = &cache.blocks[i as usize];
    if block.is_placeholder() {
        if cold && block.visits != KEEP {
            return Ok(Found::Hinted);
        }
        cache.decode_placeholder(i, rip, &cpu.mem)?;
    }
    Ok(Found::Block(i))
}

impl Engine for Interpreter {
    fn run(&mut self, cpu: &mut Cpu, stop: &AtomicBool) -> Exit {
        let exit = run_blocks(cpu, &mut self.cache, stop);
        cpu.fp_sync();
        exit
    }

    fn step(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        step(cpu, false)
    }

    fn invalidate(&mut self) {
        self.cache.clear();
        self.prev = None;
    }

    fn fork(&self) -> Box<dyn Engine> {
        Box::new(Interpreter::new())
    }

    fn name(&self) -> &'static str {
        "interp"
    }
}

fn run_blocks(cpu: &mut Cpu, cache: &mut BlockCache, stop: &AtomicBool) -> Exit {
    // The block that just ran, whose successor cache the next lookup may use and fill.
    let mut prev: Option<u32> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Exit::Interrupted;
        }
        let idx = match next_block(cpu, cache, &mut prev, None) {
            Ok(Found::Block(i)) => i,
            Ok(_) => continue,
            Err(exit) => return exit,
        };
        if let Some(exit) = exec_block(cpu, &cache.blocks[idx as usize], cache.epoch) {
            return exit;
        }
        prev = Some(idx);
    }
}

/// One instruction while EFLAGS.TF or EFLAGS.AC is set: single-stepped, with the single-step
/// trap after it when TF is set (`trace_step`) and its accesses checked for alignment before
/// it when AC is (in `step`).
/// The decoded block to run next, at RIP (`prev` is the block that just ran, None after
/// anything else). Under EFLAGS.TF or AC it runs one instruction instead (single-step traps
/// and alignment checks are per instruction) and answers Ok(None); decoded blocks are
/// dropped first when the code epoch changed. `hinted`: `run_cold`'s question (`find`).
#[inline(always)]
fn next_block(
    cpu: &mut Cpu,
    cache: &mut BlockCache,
    prev: &mut Option<u32>,
    hinted: Option<&mut dyn FnMut(&Cpu) -> bool>,
) -> Result<Found, Exit> {
    if cpu.flags.bits & (crate::flags::TF | crate::flags::AC) != 0 {
        *prev = None;
        return match slow_step(cpu) {
            Some(exit) => Err(exit),
            None => Ok(Found::Stepped),
        };
    }
    let epoch = cpu.mem.code_epoch();
    if epoch != cache.epoch {
        cache.clear();
        cache.epoch = epoch;
        *prev = None;
    }
    find(cache, *prev, cpu, hinted).map_err(Exit::Exception)
}

fn slow_step(cpu: &mut Cpu) -> Option<Exit> {
    if cpu.flags.bits & crate::flags::TF != 0 {
        Some(trace_step(cpu))
    } else {
        step(cpu, false)
    }
}

/// One instruction with EFLAGS.TF set at its start: the single-step trap (#DB, a trap
/// reported after the instruction) follows it unless it faulted (a fault is reported
/// instead) or was SYSCALL (which clears TF through the FMASK MSR Linux programs; the
/// kernel returns with TF restored, so the instruction after it traps). TF set by POPF
/// first takes effect for the next instruction (Intel SDM Vol. 3B §18.3.1.4).
fn trace_step(cpu: &mut Cpu) -> Exit {
    match step(cpu, false) {
        Some(exit) => exit,
        None => Exit::Exception(Exception::Debug),
    }
}

/// Executes one decoded block from its first instruction; None when it ran to its end or left
/// through a taken branch or a code change.
#[inline(always)]
fn exec_block(cpu: &mut Cpu, block: &block::Block, epoch: u64) -> Option<Exit> {
    let ops = &block.ops[..];
    // How many instructions retired, from an op's position (computed only when the
    // block is left early, so the loop itself keeps no counter).
    let base = ops.as_ptr() as usize;
    let retired = |op: &Op| ((op as *const Op as usize - base) / size_of::<Op>()) as u64 + 1;
    let mut done = ops.len() as u64;
    for op in ops {
        let next = op.next_ip;
        cpu.rip = next;
        if let Err(e) = (op.run)(cpu, op) {
            if !e.is_trap() {
                cpu.rip = op.insn.ip();
            }
            cpu.icount += retired(op);
            return Some(Exit::Exception(e));
        }
        // A taken branch, or a store that changed guest code (possibly the rest of this
        // very block, as self-modifying code does): continue from a fresh decode.
        if cpu.rip != next || cpu.mem.code_epoch() != epoch {
            done = retired(op);
            break;
        }
    }
    cpu.icount += done;
    if block.ends_in_syscall && cpu.rip == block.ops[block.ops.len() - 1].next_ip {
        return Some(Exit::Syscall);
    }
    None
}

/// Executes one instruction at RIP with the same pre-decoding as the block cache, so single
/// steps run the same code as blocks. `reference` runs the family handler instead of the
/// form-specialized executor: the reference the fast paths are tested against.
fn step(cpu: &mut Cpu, reference: bool) -> Option<Exit> {
    let rip = cpu.rip;
    let mut buf = [0u8; 16];
    let n = match cpu.mem.fetch(rip, &mut buf) {
        Ok(n) => n,
        Err(f) => return Some(Exit::Exception(Exception::from(f))),
    };
    let mut dec = iced_x86::Decoder::with_ip(64, &buf[..n], rip, iced_x86::DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() && dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
        // As `run` reports it: the instruction runs into a page that may not be executed.
        return Some(Exit::Exception(block::straddle_fault(
            &cpu.mem,
            rip + n as u64,
        )));
    }
    if cpu.flags.bits & crate::flags::AC != 0 {
        if let Err(e) = align::check(cpu, &insn) {
            return Some(Exit::Exception(e));
        }
    }
    let op = Op::new(insn);
    cpu.rip = op.next_ip;
    cpu.icount += 1;
    let r = if reference {
        cpu.fp_sync();
        (op.exec)(cpu, &op.insn)
    } else {
        (op.run)(cpu, &op)
    };
    cpu.fp_sync();
    if let Err(e) = r {
        if !e.is_trap() {
            cpu.rip = rip;
        }
        return Some(Exit::Exception(e));
    }
    if op.insn.code() == iced_x86::Code::Syscall {
        return Some(Exit::Syscall);
    }
    None
}

/// `Engine::step` through the family handlers alone, bypassing the specialized forms.
#[doc(hidden)]
pub fn step_reference(cpu: &mut Cpu) -> Option<Exit> {
    step(cpu, true)
}
