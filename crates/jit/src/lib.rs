//! The translating engine: guest blocks re-encoded as host code in a code cache.
//!
//! `Translator` implements `cetbox_cpu::Engine`. Its run loop looks up a translation for RIP;
//! if there is one it enters it through the entry trampoline; if not the interpreter runs
//! blocks until one is hot (`Interpreter::run_cold`), which is then translated; a block whose
//! first instruction the translator does not handle stays with the interpreter. Guest GPRs
//! live in the same host registers while translated code runs, guest arithmetic flags in host
//! RFLAGS, and cetbox's per-thread context is reached through the host GS base (`context`). Design, subset and next steps: docs/ARCHITECTURE.md,
//! "Translator (crates/jit)".

mod assemble;
mod cache;
pub mod context;
mod group;
mod memop;
pub mod profile;
mod select;
mod trampoline;
mod translate;

use cache::{CodeCache, INTERPRET};
use cetbox_cpu::flags::ARITH;
use cetbox_cpu::interp::ColdExit;
use cetbox_cpu::{Cpu, Engine, Exit, Interpreter};
use context::Context;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Size of each thread's code cache by default; it is flushed whole when full.
/// CETBOX_JIT_CACHE_SIZE (bytes, rounded up to whole pages) overrides it, for tests of the
/// flush and for measurements.
const CACHE_SIZE: usize = 8 << 20;

/// The code cache size: CETBOX_JIT_CACHE_SIZE when it is a number, else `CACHE_SIZE`.
fn cache_size() -> usize {
    std::env::var("CETBOX_JIT_CACHE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CACHE_SIZE)
}

/// Counters for tests and measurements.
#[derive(Default, Debug)]
pub struct Stats {
    /// Blocks translated.
    pub translated: AtomicU64,
    /// Entries into translated code.
    pub entered: AtomicU64,
    /// Blocks handed to the interpreter.
    pub interpreted: AtomicU64,
    /// Whole-cache flushes because it was full.
    pub flushes: AtomicU64,
    /// Nanoseconds spent decoding and assembling translations (with CETBOX_JIT_STATS only).
    pub translate_ns: AtomicU64,
    /// Guest instructions retired by translated code.
    pub retired_translated: AtomicU64,
    /// Guest instructions retired by the interpreter.
    pub retired_interpreted: AtomicU64,
    /// Blocks taken over at their first visit because the hot-block profile of an earlier
    /// process listed them (`profile`).
    pub hinted: AtomicU64,
}

/// Adds to a counter; only the owning thread writes a counter, so no locked add is needed.
fn add(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// Counts an event; only the owning thread writes a counter, so no locked add is needed.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The code cache with its trampolines.
struct Code {
    cache: CodeCache,
    /// Bytes at the start of the cache holding the trampolines (kept across flushes).
    fixed: usize,
    entry: u64,
    /// The shared stubs (`trampoline::Offsets`).
    stubs: trampoline::Stubs,
}

pub struct Translator {
    interp: Interpreter,
    /// Boxed so its address, the host GS base, never moves.
    ctx: Box<Context>,
    /// Created on first use, so an engine that never runs costs no mapping.
    code: Option<Code>,
    /// The code epoch the cached translations were made under.
    epoch: u64,
    /// Whether the guest's shadow stack was enabled when the cached translations were made
    /// (CALL and RET are translated differently; a change flushes the cache).
    shstk: bool,
    /// The host addresses of the code epoch and the stop flag the cached translations poll
    /// (`translate::Chain`); a change flushes the cache.
    polled: (u64, u64),
    /// Whether the guest masked every SIMD exception when the cached translations were made
    /// (SSE instructions are translated only then; a change flushes the cache).
    sse: bool,
    /// False when translated code cannot run on this host (the cache or GS could not be set
    /// up): every block is interpreted.
    enabled: bool,
    stats: Arc<Stats>,
    /// Blocks are only translated with at least this many instructions (or when they loop to
    /// themselves): a short translated block costs a trampoline round trip and, when it stops
    /// before an untranslated instruction, a second dispatch, for little work.
    min_prefix: usize,
    /// A block is translated on its `hot_after + 1`-th visit (0: at once); until then it is
    /// interpreted.
    hot_after: u32,
    /// Bytes of code cache (created on first use).
    cache_size: usize,
    /// CETBOX_JIT_STATS is set: print the counters whenever the engine returns.
    show_stats: bool,
    /// The next remembered-page slots of a read and a write site (`translate::Chain::slots`).
    slots: std::cell::Cell<(usize, usize)>,
    /// CETBOX_JIT_PERF_MAP is set: every translation is named and dumped (`dump_translation`).
    perf_map: bool,
    /// With `show_stats`: how often each guest RIP ran in the interpreter.
    fallbacks: std::collections::HashMap<u64, u64>,
    /// This engine's view of the hot-block profile of earlier processes.
    hints: profile::Hints,
    /// `CodeCache::resets` when the return cache (`context::ReturnCache`) was last emptied.
    returns_reset: u64,
    /// The address space's removal count and the host fault handlers' forget count when the
    /// remembered pages were last forgotten (`enter`); None: forget them at the next entry.
    pages_seen: Option<(u64, u64)>,
}

/// MXCSR's six exception-mask bits (Intel SDM Vol. 1 §10.2.3).
const MXCSR_MASKS: u32 = 0x1f80;

/// `Translator::hot_after` by default. Start-up decides it: with cold blocks counted in the
/// interpreter (`Interpreter::run_cold`) and blocks assembled by `assemble`, `python3 -c pass`
/// took 0.37 s of user time when blocks were translated after 20 visits, 0.29 s after 50,
/// 0.25 s after 100 and 200, 0.23 s after 500 and 2000 (4,600 blocks translated at 200;
/// 2026-12-07, this machine, loaded); loops are hot long before 200 visits, and the bench
/// workloads ran equally fast at 50, 200 and 1000. Measured again after translation became
/// 2.5 times cheaper (link sites assembled without iced's BlockEncoder): CPU time of
/// `python3 -c pass`, best of 8, 0.33 s after 50 visits, 0.31 s after 100, 0.28 s after 200,
/// 0.29 s after 300 (CETBOX_JIT_HOT=N; 2026-12-07, loaded). Again after data unmaps stopped
/// flushing translations and assembly stopped allocating (best of 8, interleaved, load
/// average 8): 0.30 s after 100, 0.29 s after 200, 0.30 s after 300 and 500. The differential
/// and robustness tests translate everything at once (`translate_everything`).
const HOT_AFTER: u32 = 200;

/// The hot threshold: CETBOX_JIT_HOT when it is a number (for measurements of start-up),
/// else `HOT_AFTER`.
fn hot_after() -> u32 {
    std::env::var("CETBOX_JIT_HOT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(HOT_AFTER)
}

/// `Translator::min_prefix` by default.
const MIN_PREFIX: usize = 4;

/// A development aid (CETBOX_JIT_PERF_MAP): names the translation of guest `rip` at host `at`
/// in /tmp/perf-PID.map (perf's map of code it cannot find in files, see perf's
/// tools/perf/Documentation/jit-interface.txt) and appends its bytes to
/// /tmp/cetbox-jit-PID.dump (records of host address, length, guest RIP, then the bytes),
/// so `perf report` names hot translations and their code can be disassembled.
fn dump_translation(rip: u64, at: u64, bytes: &[u8]) {
    use std::io::Write;
    let pid = std::process::id();
    let open = |p: String| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    };
    if let Ok(mut f) = open(format!("/tmp/perf-{pid}.map")) {
        let _ = writeln!(f, "{at:x} {:x} jit_{rip:x}", bytes.len());
    }
    if let Ok(mut f) = open(format!("/tmp/cetbox-jit-{pid}.dump")) {
        let mut rec = Vec::with_capacity(24 + bytes.len());
        rec.extend_from_slice(&at.to_le_bytes());
        rec.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        rec.extend_from_slice(&rip.to_le_bytes());
        rec.extend_from_slice(bytes);
        let _ = f.write_all(&rec);
    }
}

impl Default for Translator {
    fn default() -> Self {
        Translator::new()
    }
}

impl Translator {
    pub fn new() -> Translator {
        Translator {
            interp: Interpreter::new(),
            ctx: Box::default(),
            code: None,
            epoch: 0,
            polled: (0, 0),
            shstk: false,
            sse: false,
            enabled: true,
            stats: Arc::default(),
            min_prefix: MIN_PREFIX,
            hot_after: hot_after(),
            cache_size: cache_size(),
            show_stats: std::env::var_os("CETBOX_JIT_STATS").is_some(),
            perf_map: std::env::var_os("CETBOX_JIT_PERF_MAP").is_some(),
            slots: Default::default(),
            fallbacks: Default::default(),
            hints: profile::Hints::default(),
            returns_reset: 0,
            pages_seen: None,
        }
    }

    /// A translator that translates every block it can, however short (for tests that check
    /// single instructions).
    pub fn translate_everything() -> Translator {
        let mut t = Translator::new();
        t.min_prefix = 1;
        t.hot_after = 0;
        t
    }

    /// `self` with a code cache of `bytes` (rounded up to whole pages; too small for the
    /// trampolines means nothing is translated), for tests that fill it.
    pub fn with_cache_size(mut self, bytes: usize) -> Translator {
        self.cache_size = bytes;
        self
    }

    /// This engine's counters (shared, so a test can watch them from another thread).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    fn code(&mut self) -> Option<&mut Code> {
        if self.code.is_none() {
            let mut cache = CodeCache::new(self.cache_size).ok()?;
            let avx = std::arch::is_x86_feature_detected!("avx");
            let (bytes, offsets) = trampoline::assemble(cache.cursor(), avx).ok()?;
            let entry = cache.append(&bytes)?;
            self.code = Some(Code {
                fixed: cache.used(),
                cache,
                entry,
                stubs: offsets.at(entry),
            });
        }
        self.code.as_mut()
    }

    /// What the cache holds for the block at RIP (flushing it first if the translations
    /// were made under another code epoch or guest mode): Some(host address), Some(INTERPRET)
    /// for a block left to the interpreter, None if it has not been considered yet; None too
    /// when translated code cannot run here.
    fn lookup(&mut self, cpu: &Cpu) -> Option<u64> {
        let epoch = cpu.mem.code_epoch();
        if self.code.is_none() {
            self.code()?;
        }
        let shstk = cpu.cet.shstk_enabled();
        let sse = cpu.sse.mxcsr & MXCSR_MASKS == MXCSR_MASKS;
        let polled = (
            cpu.mem.code_epoch_cell() as *const _ as u64,
            self.ctx.stop_ptr,
        );
        let stale =
            epoch != self.epoch || shstk != self.shstk || sse != self.sse || polled != self.polled;
        self.polled = polled;
        let mode_changed = shstk != self.shstk || sse != self.sse;
        self.epoch = epoch;
        self.shstk = shstk;
        self.sse = sse;
        let code = self.code.as_mut()?;
        if stale {
            code.cache.reset(code.fixed);
            if mode_changed {
                // Blocks left to the interpreter under the old mode may translate now.
                self.interp.reset_visits();
            }
        }
        code.cache.lookup(cpu.rip)
    }

    /// Translates the block at RIP, timing it for CETBOX_JIT_STATS; None when the
    /// interpreter must run it (also recorded in the cache).
    fn translate_timed(&mut self, cpu: &Cpu) -> Option<u64> {
        let t0 = self.show_stats.then(std::time::Instant::now);
        let host = self.translate(cpu, cpu.rip, self.epoch);
        if let Some(t0) = t0 {
            add(&self.stats.translate_ns, t0.elapsed().as_nanos() as u64);
        }
        host
    }

    /// Translates the block at `rip` into the cache (flushing it when full) and records the
    /// result; None when the interpreter must run it.
    fn translate(&mut self, cpu: &Cpu, rip: u64, epoch: u64) -> Option<u64> {
        let (shstk, sse) = (self.shstk, self.sse);
        let stats = &self.stats;
        let code = self.code.as_mut()?;
        let min = self.min_prefix;
        let perf_map = self.perf_map;
        let decoded =
            translate::decode(rip, &cpu.mem, sse, cpu.config.level).filter(|b| b.worth_it(min));
        let Some(block) = decoded else {
            code.cache.insert(rip, INTERPRET);
            return None;
        };
        let mut host = None;
        for _ in 0..2 {
            let cache = &code.cache;
            let lookup = |r: u64| cache.peek(r).filter(|&h| h != INTERPRET);
            let chain = translate::Chain {
                start: rip,
                epoch,
                epoch_at: self.polled.0,
                stop_at: self.polled.1,
                lookup: &lookup,
                shstk,
                slots: &self.slots,
                stubs: &code.stubs,
            };
            let Ok(bytes) = translate::emit(&block, code.cache.cursor(), &chain) else {
                break;
            };
            if let Some(at) = code.cache.append(&bytes) {
                if perf_map {
                    dump_translation(rip, at, &bytes);
                }
                host = Some(at);
                break;
            }
            // Full: flush everything but the trampolines and try once more.
            code.cache.reset(code.fixed);
            bump(&stats.flushes);
        }
        match host {
            Some(at) => {
                code.cache.insert(rip, at);
                bump(&stats.translated);
            }
            None => code.cache.insert(rip, INTERPRET),
        }
        host
    }

    /// Runs the translation at `host` on `cpu`.
    fn enter(&mut self, cpu: &mut Cpu, host: u64) {
        let Some(code) = self.code.as_ref() else {
            return;
        };
        let entry = code.entry;
        self.ctx.lookup = code.cache.fast_table();
        let ctx: *mut Context = &mut *self.ctx;
        self.ctx.gpr = cpu.gpr;
        // Only the arithmetic flags are loaded into the host (IF and bit 1 as user mode
        // requires); DF, TF and AC stay the host's, since no translated instruction reads
        // them and TF or AC would make the host trap.
        self.ctx.rflags = (cpu.rflags() & ARITH) | 0x202;
        self.ctx.retired = 0;
        self.ctx.exit_reason = context::exit_reason::NEXT;
        self.ctx.link = 0;
        // Known only within one entry: the page table changes only while no translated code
        // of this thread runs, or (another thread's removals) with a code-epoch change that
        // makes this thread leave at its next block exit (`memop::check_shadow`).
        self.ctx.ss_page = context::NO_SS_PAGE;
        // Remembered pages (`memop::check_place`) stay from one entry to the next while
        // nothing took access away in between: every such change of the page table is
        // counted, by the address space (`removals`: munmap, mprotect, mremap, MAP_FIXED, brk,
        // shmdt, discards of populated pages, a file shrunk under a mapping; its count starts
        // from a base no other address space uses) or, for a host fault handler's, by
        // `cetbox_mem::remembered::generation`. This thread's own changes happen in Rust
        // between entries and are seen here; another thread's make the syscall layer wait
        // for this one to leave translated code, as for the pages remembered within one
        // entry, and are seen at the next. None are remembered while a userfaultfd is in use
        // (`cetbox_mem::remembered`). (Forgetting at every entry cost python3's start-up a
        // full check at most access sites of each of its 134,000 entries: docs/ARCHITECTURE.md,
        // "Start-up, third round".)
        let uffd = cpu.mem.uffd_in_use();
        let pages = (cpu.mem.removals(), cetbox_mem::remembered::generation());
        if uffd || self.pages_seen != Some(pages) {
            self.ctx.forget_pages(!uffd);
            self.pages_seen = (!uffd).then_some(pages);
        }
        // The return cache holds host addresses of translations: none may outlive a reset
        // of the cache that held them.
        if code.cache.resets() != self.returns_reset {
            self.returns_reset = code.cache.resets();
            self.ctx.returns = context::ReturnCache::default();
        }
        self.ctx.epoch_ptr = cpu.mem.code_epoch_cell() as *const _ as u64;
        let pt = cpu.mem.page_table();
        self.ctx.pt_base = pt.base_addr();
        self.ctx.pt_pages = pt.limit() >> 12;
        self.ctx.fs_base = cpu.fs_base;
        self.ctx.gs_base = cpu.gs_base;
        self.ctx.ssp = cpu.cet.ssp;
        self.ctx.xmm_ptr = cpu.sse.xmm.as_mut_ptr() as u64;
        self.ctx.ymm_hi_ptr = cpu.sse.ymm_hi.as_mut_ptr() as u64;
        // Translated SSE instructions run under the guest's MXCSR control bits, accumulating
        // its flags in the host MXCSR (live mode, folded back by `fp_sync` before `run`
        // returns); the cache holds SSE translations only while every exception is masked,
        // which is exactly when live mode is available.
        if self.sse {
            cpu.fp_enter();
        }
        bump(&self.stats.entered);
        // SAFETY: `entry` is the entry trampoline in the live code cache; it saves and
        // restores every callee-saved register and the host stack, and runs `host`, a block
        // assembled by `translate::emit` that touches only guest registers, host flags and
        // the context through GS, which `context::bind` pointed at `ctx` on this thread.
        unsafe {
            let f: extern "sysv64" fn(u64, *mut Context) = std::mem::transmute(entry);
            f(host, ctx);
        }
        cpu.gpr = self.ctx.gpr;
        let flags = (cpu.rflags() & !ARITH) | (self.ctx.rflags & ARITH);
        cpu.set_rflags(flags);
        cpu.rip = self.ctx.next_rip;
        cpu.icount += self.ctx.retired;
        add(&self.stats.retired_translated, self.ctx.retired);
        cpu.cet.ssp = self.ctx.ssp;
    }

    fn run_loop(&mut self, cpu: &mut Cpu, stop: &AtomicBool) -> Exit {
        // Translated code polls the flag at every chained block transition.
        self.ctx.stop_ptr = stop.as_ptr() as u64;
        if self.enabled && context::bind(&*self.ctx).is_err() {
            self.enabled = false;
        }
        // The host fault handler forgets this thread's remembered pages when the host takes
        // a page away under translated code (`cetbox_mem::remembered`).
        cetbox_mem::remembered::register(self.ctx.page_slots.0.as_mut_ptr(), context::PAGE_SLOTS);
        // A direct exit of the last translation that waits to be linked to the translation of
        // the RIP it left to: its jump's address, the cache's reset count then, and that RIP.
        let mut link: Option<(u64, u64, u64)> = None;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Exit::Interrupted;
            }
            let pending = link.take();
            // The interpreter raises single-step traps and alignment-check faults (#AC while
            // EFLAGS.AC is set); leave a traced or alignment-checked guest to it until the
            // flag is clear again (POPF, rt_sigreturn and ptrace are the only ways to change
            // them, and none runs translated). The flags are read from the raw bits, which
            // are always current for the non-arithmetic flags, so the lazy arithmetic flags
            // are not computed on every block.
            const INTERPRET_FLAGS: u64 = cetbox_cpu::flags::TF | cetbox_cpu::flags::AC;
            if !self.enabled || cpu.flags.bits & INTERPRET_FLAGS != 0 {
                if let Some(exit) = self.interpret_block(cpu) {
                    return exit;
                }
                continue;
            }
            let host = match self.lookup(cpu) {
                None if !self.enabled || self.code.is_none() => None,
                None if self.hot_after == 0 => self.translate_timed(cpu),
                Some(INTERPRET) if self.hot_after == 0 => None,
                None | Some(INTERPRET) => {
                    // Not hot yet, or left to the interpreter: it runs blocks until one is hot
                    // (and not one it was told to keep).
                    bump(&self.stats.interpreted);
                    let before = cpu.icount;
                    let (hints, stats) = (&mut self.hints, &self.stats);
                    let r = self.interp.run_cold(cpu, stop, self.hot_after + 1, |cpu| {
                        let hot = hints.known_hot(cpu);
                        if hot {
                            bump(&stats.hinted);
                        }
                        hot
                    });
                    add(&self.stats.retired_interpreted, cpu.icount - before);
                    match r {
                        ColdExit::Exit(exit) => return exit,
                        ColdExit::Stopped => continue,
                        ColdExit::Hot => match self.lookup(cpu) {
                            Some(INTERPRET) => {
                                self.interp.keep(cpu.rip);
                                continue;
                            }
                            Some(h) => Some(h),
                            None => {
                                let h = self.translate_timed(cpu);
                                if h.is_none() {
                                    self.interp.keep(cpu.rip);
                                    continue;
                                }
                                self.hints.record(cpu);
                                h
                            }
                        },
                    }
                }
                Some(h) => Some(h),
            };
            let Some(h) = host else {
                if let Some(exit) = self.interpret_block(cpu) {
                    return exit;
                }
                continue;
            };
            // The exit waiting for a link left to exactly this RIP (the interpreter may have
            // run other blocks since) and the cache was not emptied in between: its jump now
            // goes straight to this translation.
            if let (Some((site, resets, rip)), Some(code)) = (pending, self.code.as_mut()) {
                if rip == cpu.rip && code.cache.resets() == resets {
                    code.cache.link(site, h);
                }
            }
            self.enter(cpu, h);
            if self.ctx.link != 0 {
                let resets = self.code.as_ref().map_or(0, |c| c.cache.resets());
                link = Some((std::mem::take(&mut self.ctx.link), resets, cpu.rip));
            }
            // A memory check failed on its fast path: the interpreter runs that one
            // instruction (slow path, precise fault, or code invalidation).
            if self.ctx.exit_reason == context::exit_reason::STEP {
                bump(&self.stats.interpreted);
                if self.show_stats {
                    *self.fallbacks.entry(cpu.rip).or_default() += 1;
                }
                add(&self.stats.retired_interpreted, 1);
                if let Some(exit) = self.interp.step(cpu) {
                    return exit;
                }
            }
        }
    }

    /// Runs the one block at RIP in the interpreter.
    fn interpret_block(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        bump(&self.stats.interpreted);
        if self.show_stats {
            *self.fallbacks.entry(cpu.rip).or_default() += 1;
        }
        let before = cpu.icount;
        let exit = self.interp.run_block(cpu);
        add(&self.stats.retired_interpreted, cpu.icount - before);
        exit
    }
}

impl Drop for Translator {
    fn drop(&mut self) {
        cetbox_mem::remembered::unregister(self.ctx.page_slots.0.as_mut_ptr());
    }
}

impl Engine for Translator {
    fn run(&mut self, cpu: &mut Cpu, stop: &AtomicBool) -> Exit {
        let exit = self.run_loop(cpu, stop);
        cpu.fp_sync();
        if self.show_stats {
            // A development aid (CETBOX_JIT_STATS): what ran translated and what fell back.
            // One write (under PIPE_BUF), so the lines of processes sharing stderr do not
            // interleave.
            let mut text = format!("cetbox jit: {:?}\n", self.stats);
            let mut top: Vec<(u64, u64)> = self.fallbacks.iter().map(|(&r, &n)| (n, r)).collect();
            top.sort_unstable_by(|a, b| b.cmp(a));
            for (n, rip) in top.into_iter().take(12) {
                let mut buf = [0u8; 16];
                let len = cpu.mem.fetch(rip, &mut buf).unwrap_or(0);
                let insn = iced_x86::Decoder::with_ip(64, &buf[..len], rip, 0).decode();
                text.push_str(&format!("  {n:>10} blocks at {rip:#x}: {insn}\n"));
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
        }
        exit
    }

    fn step(&mut self, cpu: &mut Cpu) -> Option<Exit> {
        self.interp.step(cpu)
    }

    fn invalidate(&mut self) {
        self.interp.invalidate();
        self.pages_seen = None;
        self.hints = profile::Hints::default();
        if let Some(code) = self.code.as_mut() {
            code.cache.reset(code.fixed);
        }
    }

    fn fork(&self) -> Box<dyn Engine> {
        Box::new(Translator::new())
    }

    fn retire(&mut self) {
        // The host fault handler of the ending host thread must not reach these slots once
        // another thread runs this engine; the next entry forgets them and the return cache
        // (whose entries are checked against the guest's return address, so only a matter of
        // hygiene) on its new thread.
        cetbox_mem::remembered::unregister(self.ctx.page_slots.0.as_mut_ptr());
        self.pages_seen = None;
        self.ctx.returns = context::ReturnCache::default();
    }

    fn name(&self) -> &'static str {
        "jit"
    }
}
