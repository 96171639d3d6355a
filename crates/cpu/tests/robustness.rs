//! Robustness: no guest input may crash, hang or escape the emulator.
//!
//! A deterministic randomized test runs millions of single steps of random and valid-but-random
//! instructions from random architectural states (pointers into mapped, read-only, shadow-stack
//! and unmapped pages, edge values, non-canonical addresses) and asserts that no step panics or
//! runs for long. A second test runs `Cpu::run` on random code ending in a backward jump and
//! checks that setting the stop flag interrupts it promptly. Every bug these tests found has a
//! regression case in `regressions`.
//!
//! Knobs (environment): ROBUST_SEED (u64), ROBUST_ITERS (state randomizations for `fuzz_step`;
//! always run in full, never cut short by a clock). Step costs are measured in thread CPU time.
//!
//! All tests share one address space (only one may exist per process) and run one at a time.
//!
//! The same file is compiled by crates/jit/tests/robustness.rs as a module: every engine is
//! created through `crate::new_engine`, which that crate's root defines as the translator, so
//! the translator is held to the same tests.

use cetbox_cpu::exec::handler_for;
use cetbox_cpu::state::{U_CET_SH_STK_EN, U_CET_WR_SHSTK_EN};
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit, UdReason};
use cetbox_cpu::{Engine, Interpreter};
use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE, USER_LIMIT};
use iced_x86::{Code, Decoder, DecoderOptions, OpKind, Register};
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::time::Duration;

/// The engine under test (the interpreter here; see the module documentation).
#[allow(dead_code)]
pub fn new_engine() -> Box<dyn Engine> {
    Box::new(Interpreter::new())
}

// ------------------------------------------------------------------------------------ layout

/// Fixed guest layout below 4 GiB (so 32-bit address-size forms reach it too).
const BASE: u64 = 0x1000_0000;
const CODE: u64 = BASE;
// BASE + 0x1000: unmapped gap after the code page.
const D0: u64 = BASE + 0x2000; // read-write
const D1: u64 = BASE + 0x3000; // read-write, adjacent to D0
const RO: u64 = BASE + 0x4000; // read-only, adjacent to D1
                               // BASE + 0x5000: gap
const D2: u64 = BASE + 0x6000; // read-write, adjacent to the shadow stack
const SS: u64 = BASE + 0x7000; // shadow stack
                               // BASE + 0x8000: gap
/// A read-write page at the very top of user space (if the host lets us map it).
const TOP: u64 = USER_LIMIT - PAGE_SIZE;

const PAGES: [u64; 9] = [
    CODE,
    BASE + 0x1000,
    D0,
    D1,
    RO,
    BASE + 0x5000,
    D2,
    SS,
    BASE + 0x8000,
];

const RX: u32 = (libc::PROT_READ | libc::PROT_EXEC) as u32;
const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;
const R: u32 = libc::PROT_READ as u32;

/// A mapping request for exactly [addr, addr + len) that never replaces anything.
fn fixed(addr: u64, len: u64, prot: u32, kind: VmaKind) -> MapRequest {
    let mut r = MapRequest::anonymous(addr, len, prot, kind);
    r.fixed = true;
    r.noreplace = true;
    r
}

struct Space {
    mem: Arc<AddressSpace>,
    top_mapped: bool,
}

fn space() -> &'static Space {
    static S: OnceLock<Space> = OnceLock::new();
    S.get_or_init(|| {
        let mem = Arc::new(AddressSpace::new().expect("address space"));
        let map =
            |addr: u64, prot: u32, kind: VmaKind| mem.map(&fixed(addr, PAGE_SIZE, prot, kind));
        map(CODE, RX, VmaKind::Normal).expect("code page");
        map(D0, RW, VmaKind::Normal).expect("D0");
        map(D1, RW, VmaKind::Normal).expect("D1");
        map(RO, R, VmaKind::Normal).expect("RO");
        map(D2, RW, VmaKind::Normal).expect("D2");
        map(SS, RW, VmaKind::ShadowStack).expect("shadow stack");
        let top_mapped = map(TOP, RW, VmaKind::Normal).is_ok();
        Space { mem, top_mapped }
    })
}

fn lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------------ rng

/// xoshiro256** seeded by splitmix64: deterministic and fast.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed;
        let mut s = [0u64; 4];
        for v in &mut s {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *v = x ^ (x >> 31);
        }
        Rng(s)
    }
    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------------------------ values

const EDGES: [u64; 24] = [
    0x33, // user CS, for far-return frames
    0x2b, // user SS
    0,
    1,
    2,
    u64::MAX,
    1 << 63,
    (1 << 63) - 1,
    0x8000_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    0xffff_ffff_8000_0000,
    USER_LIMIT - 8,
    USER_LIMIT - 1,
    USER_LIMIT,
    USER_LIMIT + 8,
    0xffff_8000_0000_0000,
    0xffff_ffff_ffff_fff8,
    0x0000_7fff_ffff_fff0,
    0x0000_8000_0000_0000 - 16,
    0x00ff_ffff_ffff_ffff,
    0x80,
    0xffff,
];

/// A value a guest might hold in a register: mostly pointers around the interesting pages.
fn value(r: &mut Rng) -> u64 {
    match r.below(100) {
        0..=44 => pointer(r),
        45..=59 => r.pick(&EDGES),
        60..=69 => r.below(64),
        70..=74 => (r.below(64) as i64).wrapping_neg() as u64,
        _ => r.next(),
    }
}

/// A pointer at, inside, or just around one of the layout's pages.
fn pointer(r: &mut Rng) -> u64 {
    let page = if r.chance(5) { TOP } else { r.pick(&PAGES) };
    match r.below(6) {
        0 => page.wrapping_add(r.below(PAGE_SIZE)),
        1 => page.wrapping_add(r.below(PAGE_SIZE) & !7),
        // page boundaries -1..+16 on either side
        2 => page.wrapping_add(r.below(18)).wrapping_sub(1),
        3 => page.wrapping_add(PAGE_SIZE).wrapping_sub(1 + r.below(17)),
        4 => page.wrapping_add(PAGE_SIZE - 512 + r.below(512)),
        _ => page,
    }
}

/// An 80-bit x87 register value: specials and random bit patterns.
fn x87_value(r: &mut Rng) -> u128 {
    let mant = match r.below(4) {
        0 => 0,
        1 => 1 << 63,
        2 => r.next() & !(1 << 63),
        _ => r.next(),
    };
    let exp: u128 = match r.below(5) {
        0 => 0,
        1 => 0x7fff,
        2 => 0x3fff + r.below(64) as u128 - 32,
        _ => r.below(0x8000) as u128,
    };
    let sign: u128 = r.below(2) as u128;
    mant as u128 | exp << 64 | sign << 79
}

fn xmm_value(r: &mut Rng) -> u128 {
    let lane64 = |r: &mut Rng| -> u64 {
        match r.below(8) {
            0 => 0,
            1 => 0x7ff0_0000_0000_0000,                        // inf
            2 => 0x7ff8_0000_0000_0000 | r.below(1 << 20),     // qNaN
            3 => 0x7ff0_0000_0000_0001,                        // sNaN
            4 => r.below(1 << 52),                             // denormal
            5 => 0x7f80_0000_7fc0_0000 | (r.next() & 1 << 63), // f32 inf | f32 qNaN
            6 => value(r),
            _ => r.next(),
        }
    };
    lane64(r) as u128 | (lane64(r) as u128) << 64
}

/// Random architectural state.
fn randomize(cpu: &mut Cpu, r: &mut Rng) {
    for g in cpu.gpr.iter_mut() {
        *g = value(r);
    }
    if r.chance(80) {
        // A usable stack most of the time.
        cpu.gpr[4] = r.pick(&[D0, D1, D2, RO, SS]) + 8 + (r.below(PAGE_SIZE / 8 - 2) * 8);
        if r.chance(20) {
            cpu.gpr[4] = r.pick(&[D0, D2, SS]) + r.below(24);
        }
    }
    let mut fl = r.next() & 0x0000_0000_0025_4dd5; // CF PF AF ZF SF TF? DF OF AC ID
    if !r.chance(5) {
        fl &= !0x100; // TF rarely
    }
    cpu.set_rflags(fl);
    cpu.fs_base = if r.chance(60) { 0 } else { value(r) };
    cpu.gs_base = if r.chance(60) { 0 } else { value(r) };
    for x in cpu.sse.xmm.iter_mut() {
        *x = xmm_value(r);
    }
    cpu.sse.mxcsr = match r.below(3) {
        0 => 0x1f80,
        1 => r.next() as u32 & 0xffff,
        _ => (r.next() as u32 & 0xffff) | 0x1f80,
    };
    for s in cpu.x87.st.iter_mut() {
        *s = x87_value(r);
    }
    cpu.x87.top = r.below(8) as u8;
    cpu.x87.ftw = if r.chance(30) {
        0xffff
    } else {
        r.next() as u16
    };
    cpu.x87.fcw = match r.below(3) {
        0 => 0x037f,
        1 => r.next() as u16,
        _ => 0x037f & !(r.next() as u16 & 0x3f),
    };
    cpu.x87.fsw = if r.chance(20) {
        r.next() as u16 & !0x3800
    } else {
        0
    };
    cpu.cet.u_cet = match r.below(6) {
        0 => 0,
        1 | 2 => U_CET_SH_STK_EN,
        3 | 4 => U_CET_SH_STK_EN | U_CET_WR_SHSTK_EN,
        _ => U_CET_WR_SHSTK_EN,
    };
    cpu.cet.ssp = match r.below(10) {
        0..=5 => SS + 8 + r.below(PAGE_SIZE / 8 - 1) * 8,
        6 => SS + r.below(PAGE_SIZE),
        7 => SS + PAGE_SIZE - 8 * r.below(3),
        _ => value(r),
    };
}

/// Fills the data pages with pointers, edge values, random bytes and shadow-stack tokens.
fn fill_memory(mem: &AddressSpace, r: &mut Rng, top: bool) {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    let mut pages = vec![D0, D1, RO, D2, SS];
    if top {
        pages.push(TOP);
    }
    for p in pages {
        let mode = r.below(4);
        for slot in page.chunks_mut(8) {
            let v = match mode {
                0 => 0,
                1 => r.next(),
                _ => match r.below(4) {
                    // A restore token: the address just above it with bit 0 as the mode.
                    0 if p == SS => (SS + r.below(PAGE_SIZE / 8) * 8) | r.below(2),
                    1 => value(r),
                    2 => xmm_value(r) as u64,
                    _ => r.next(),
                },
            };
            slot.copy_from_slice(&v.to_le_bytes());
        }
        mem.force_write(p, &page).expect("force_write data page");
    }
}

// ------------------------------------------------------------------------------------ corpus

/// Byte strings that decode to each implemented instruction form.
struct Corpus {
    by_code: Vec<(Code, Vec<Vec<u8>>)>,
    implemented: usize,
}

const PREFIXES: [u8; 11] = [
    0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x64, 0x65, 0x36,
];

/// Random prefixes, an opcode from a random map, and random operand bytes.
fn candidate(r: &mut Rng, out: &mut [u8; 16]) {
    if r.chance(30) {
        // A VEX-encoded instruction (x86-64-v3): the three-byte prefix with a valid map
        // (0F, 0F38, 0F3A) or the two-byte one, then random opcode, ModRM and the rest.
        for b in out.iter_mut() {
            *b = r.next() as u8;
        }
        if r.chance(50) {
            out[0] = 0xc4;
            out[1] = (out[1] & 0xe0) | (1 + r.below(3)) as u8;
        } else {
            out[0] = 0xc5;
        }
        return;
    }
    let mut n = 0;
    for _ in 0..r.below(4) {
        out[n] = r.pick(&PREFIXES);
        n += 1;
    }
    if r.chance(50) {
        out[n] = 0x40 | r.below(16) as u8;
        n += 1;
    }
    match r.below(8) {
        0..=2 => {}
        3 | 4 => {
            out[n] = 0x0f;
            n += 1;
        }
        5 => {
            out[n] = 0x0f;
            out[n + 1] = 0x38;
            n += 2;
        }
        6 => {
            out[n] = 0x0f;
            out[n + 1] = 0x3a;
            n += 2;
        }
        _ => {
            out[n] = 0xd8 + r.below(8) as u8;
            n += 1;
        }
    }
    for b in out[n..].iter_mut() {
        *b = r.next() as u8;
    }
}

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let mut r = Rng::new(0x00c0_4905);
        let mut map: HashMap<Code, Vec<Vec<u8>>> = HashMap::new();
        let implemented: Vec<Code> = Code::values()
            .filter(|&c| handler_for(c).is_some())
            .collect();
        let mut buf = [0u8; 16];
        for _ in 0..3_000_000 {
            candidate(&mut r, &mut buf);
            let mut d = Decoder::with_ip(64, &buf, CODE, DecoderOptions::NONE);
            let insn = d.decode();
            if insn.is_invalid() || handler_for(insn.code()).is_none() {
                continue;
            }
            let v = map.entry(insn.code()).or_default();
            if v.len() < 16 {
                v.push(buf[..insn.len()].to_vec());
            }
        }
        // Forms random bytes rarely hit: exact encodings and the waiting x87 forms.
        const SEEDS: &[&[u8]] = &[
            &[0xf3, 0x0f, 0x1e, 0xfa],       // endbr64
            &[0xf3, 0x0f, 0x01, 0xe8],       // setssbsy
            &[0xf3, 0x48, 0x0f, 0x1e, 0xc8], // rdsspq rax
            &[0xf3, 0x0f, 0x01, 0xea],       // saveprevssp
            &[0x9b, 0xdf, 0xe0],             // fstsw ax
            &[0x9b, 0xdb, 0xe2],             // fclex
            &[0x9b, 0xdb, 0xe3],             // finit
            &[0x9b, 0xd9, 0x30],             // fstenv [rax]
            &[0x9b, 0xd9, 0x38],             // fstcw [rax]
            &[0x9b, 0xdd, 0x30],             // fsave [rax]
            &[0x9b, 0xdd, 0x38],             // fstsw [rax]
            &[0xf3, 0x48, 0xa5],             // rep movsq
            &[0x67, 0xf3, 0xa4],             // rep movsb (32-bit addresses)
            &[0xf3, 0x48, 0xab],             // rep stosq
            &[0xf3, 0xa6],                   // repe cmpsb
            &[0xf2, 0xae],                   // repne scasb
            &[0xf3, 0xac],                   // rep lodsb
            &[0xc8, 0x10, 0x00, 0x1f],       // enter 16, 31
            &[0x48, 0x0f, 0xc7, 0x08],       // cmpxchg8b [rax]
            &[0xf0, 0x48, 0x0f, 0xc1, 0x01], // lock xadd [rcx], rax
            &[0x0f, 0xae, 0x00],             // fxsave [rax]
            &[0x0f, 0xae, 0x08],             // fxrstor [rax]
        ];
        for seed in SEEDS {
            let mut d = Decoder::with_ip(64, seed, CODE, DecoderOptions::NONE);
            let insn = d.decode();
            if !insn.is_invalid() && handler_for(insn.code()).is_some() {
                map.entry(insn.code()).or_default().push(seed.to_vec());
            }
        }
        let mut by_code: Vec<(Code, Vec<Vec<u8>>)> = map.into_iter().collect();
        by_code.sort_by_key(|(c, _)| *c as u32);
        let missing: Vec<Code> = implemented
            .iter()
            .copied()
            .filter(|c| {
                by_code
                    .binary_search_by_key(&(*c as u32), |(k, _)| *k as u32)
                    .is_err()
            })
            .collect();
        eprintln!(
            "corpus: {} of {} implemented forms found by random generation; missing: {:?}",
            by_code.len(),
            implemented.len(),
            missing
        );
        Corpus {
            by_code,
            implemented: implemented.len(),
        }
    })
}

// ------------------------------------------------------------------------------------ panics

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records panic messages (with their location) instead of printing them, so the test can print
/// one report per distinct bug with the state that reproduces it.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = LAST_PANIC.with(|p| p.borrow().is_some());
            if !quiet {
                prev(info);
                return;
            }
            let loc = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                String::new()
            };
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{loc}: {msg}")));
        }));
    });
}

/// Runs `f`, returning the panic message if it panicked.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    LAST_PANIC.with(|p| *p.borrow_mut() = Some(String::new()));
    let r = catch_unwind(AssertUnwindSafe(f));
    let msg = LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    r.map_err(|_| msg)
}

fn dump(cpu: &Cpu, bytes: &[u8], rip: u64) -> String {
    let mut d = Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE);
    let insn = d.decode();
    let mut s = format!(
        "bytes {:02x?} at rip {rip:#x}: {insn} ({:?})\n",
        bytes,
        insn.code()
    );
    for (k, g) in cpu.gpr.iter().enumerate() {
        s += &format!("  gpr[{k}] = {g:#x}\n");
    }
    s += &format!(
        "  rflags {:#x} fs_base {:#x} gs_base {:#x} ssp {:#x} u_cet {:#x} cet {}\n",
        cpu.rflags(),
        cpu.fs_base,
        cpu.gs_base,
        cpu.cet.ssp,
        cpu.cet.u_cet,
        cpu.config.cet
    );
    s += &format!(
        "  mxcsr {:#x} fcw {:#x} fsw {:#x} top {} ftw {:#x} st {:x?}\n  xmm {:x?}\n",
        cpu.sse.mxcsr, cpu.x87.fcw, cpu.x87.fsw, cpu.x87.top, cpu.x87.ftw, cpu.x87.st, cpu.sse.xmm
    );
    s
}

// ------------------------------------------------------------------------------------ tests

/// The most CPU time a single step may use. REP string instructions yield after a bounded
/// number of iterations; anything else is a handful of memory accesses. Measured in the
/// thread's own CPU time (CLOCK_THREAD_CPUTIME_ID), which does not grow while the thread waits
/// for a core, so a loaded machine cannot make a correct step look slow.
const STEP_LIMIT: Duration = Duration::from_millis(500);

/// A thread's CPU-time clock (clock_getcpuclockid(3)/pthread_getcpuclockid(3)).
fn cpu_clock_of_this_thread() -> libc::clockid_t {
    let mut id: libc::clockid_t = 0;
    // SAFETY: pthread_self() is a valid thread; `id` is a valid out-pointer.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) };
    assert_eq!(rc, 0, "pthread_getcpuclockid");
    id
}

/// The CPU time consumed so far on `clock` (a thread CPU-time clock).
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; a thread CPU clock of a live thread is valid.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The calling thread's CPU time.
fn thread_cpu_time() -> Duration {
    cpu_time(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn new_cpus(mem: &Arc<AddressSpace>) -> [Cpu; 2] {
    [
        Cpu::new(mem.clone(), Arc::new(CpuConfig::default())),
        Cpu::new(
            mem.clone(),
            Arc::new(CpuConfig {
                cet: false,
                level: cetbox_cpu::CpuLevel::X86_64,
            }),
        ),
    ]
}

/// Points the memory operand of the instruction in `bytes` at an interesting address (most
/// random register values would make it fault before the handler does anything).
fn aim(cpu: &mut Cpu, r: &mut Rng, bytes: &[u8], rip: u64) {
    let mut d = Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE);
    let insn = d.decode();
    if insn.is_invalid() || !(0..insn.op_count()).any(|n| insn.op_kind(n) == OpKind::Memory) {
        return;
    }
    let gpr = |reg: Register| -> Option<usize> {
        let f = reg.full_register();
        (f.is_gpr64()).then(|| (f as u32 - Register::RAX as u32) as usize)
    };
    let mut target = pointer(r).wrapping_sub(insn.memory_displacement64());
    match insn.memory_segment() {
        Register::FS => target = target.wrapping_sub(cpu.fs_base),
        Register::GS => target = target.wrapping_sub(cpu.gs_base),
        _ => {}
    }
    let index = insn.memory_index();
    if let Some(k) = gpr(index) {
        let v = if r.chance(80) { r.below(8) } else { value(r) };
        cpu.gpr[k] = v;
        target = target.wrapping_sub(v.wrapping_mul(insn.memory_index_scale() as u64));
    }
    if let Some(k) = gpr(insn.memory_base()) {
        if Some(k) != gpr(index) {
            cpu.gpr[k] = target;
        }
    }
}

/// Chooses instruction bytes: fully random, or one to four implemented forms back to back.
fn code_bytes(r: &mut Rng, c: &Corpus, out: &mut Vec<u8>) {
    out.clear();
    if r.chance(15) {
        for _ in 0..16 {
            out.push(r.next() as u8);
        }
        return;
    }
    for _ in 0..1 + r.below(4) {
        let (_, ex) = &c.by_code[r.below(c.by_code.len() as u64) as usize];
        out.extend_from_slice(&ex[r.below(ex.len() as u64) as usize]);
    }
}

#[test]
fn fuzz_step() {
    let _g = lock();
    install_hook();
    let s = space();
    let c = corpus();
    assert!(
        c.by_code.len() * 10 >= c.implemented * 9,
        "the generator reaches too few forms"
    );
    let seed = env_u64("ROBUST_SEED", 0x5eed_cafe);
    let iters = env_u64("ROBUST_ITERS", 2_000_000);
    let mut r = Rng::new(seed);
    let mut cpus = new_cpus(&s.mem);
    let mut bytes = Vec::new();
    let mut failures: HashMap<String, String> = HashMap::new();
    let (mut steps, mut slowest) = (0u64, Duration::ZERO);
    let mut slowest_at = String::new();
    let mut outcomes: HashMap<&'static str, u64> = HashMap::new();
    let mut it = 0;
    // Always the full count: a time budget would silently test less on a slower machine.
    while it < iters {
        if it % 64 == 0 {
            fill_memory(&s.mem, &mut r, s.top_mapped);
        }
        code_bytes(&mut r, c, &mut bytes);
        // Mostly at the page start; sometimes so the code runs into the unmapped next page.
        let at = if r.chance(90) {
            CODE + r.below(64)
        } else {
            CODE + PAGE_SIZE - 1 - r.below(bytes.len() as u64 + 2).min(PAGE_SIZE - 1)
        };
        let room = (CODE + PAGE_SIZE - at) as usize;
        let wrote = &bytes[..bytes.len().min(room)];
        s.mem.force_write(at, wrote).expect("write code");
        let cpu = &mut cpus[r.below(2) as usize];
        randomize(cpu, &mut r);
        if r.chance(70) {
            aim(cpu, &mut r, wrote, at);
        }
        cpu.rip = at;
        for _ in 0..4 {
            let rip = cpu.rip;
            let off = rip.wrapping_sub(CODE);
            let here: Vec<u8> = if off < PAGE_SIZE {
                let mut b = vec![0u8; 16.min((PAGE_SIZE - off) as usize)];
                let _ = s.mem.read_bytes(rip, &mut b);
                b
            } else {
                Vec::new()
            };
            let before = dump(cpu, &here, rip);
            let t0 = thread_cpu_time();
            let res = guarded(|| crate::new_engine().step(cpu));
            let dt = thread_cpu_time().saturating_sub(t0);
            steps += 1;
            if dt > slowest {
                slowest = dt;
                slowest_at = before.lines().next().unwrap_or("").to_string();
            }
            let stop = match res {
                Err(msg) => {
                    failures
                        .entry(msg)
                        .or_insert_with(|| format!("seed {seed} iteration {it}\n{before}"));
                    true
                }
                Ok(exit) => {
                    if dt > STEP_LIMIT {
                        failures
                            .entry(format!("slow step ({dt:?})"))
                            .or_insert_with(|| format!("seed {seed} iteration {it}\n{before}"));
                    }
                    let kind = match &exit {
                        None => "ok",
                        Some(Exit::Syscall) => "syscall",
                        Some(Exit::Interrupted) => "interrupted",
                        Some(Exit::Exception(e)) => match e {
                            Exception::PageFault(_) => "#PF",
                            Exception::GeneralProtection => "#GP",
                            Exception::InvalidOpcode(UdReason::Architectural) => "#UD",
                            Exception::InvalidOpcode(_) => "#UD (unimplemented)",
                            Exception::ControlProtection(_) => "#CP",
                            Exception::Alignment => "#GP alignment",
                            Exception::AlignmentCheck => "#AC",
                            Exception::X87Fault => "#MF",
                            Exception::SimdFault(_) => "#XM",
                            Exception::DivideError => "#DE",
                            Exception::Breakpoint => "#BP",
                            Exception::SystemCallGate => "int 0x80",
                            Exception::Debug => "#DB",
                        },
                    };
                    *outcomes.entry(kind).or_default() += 1;
                    exit.is_some()
                }
            };
            if stop {
                break;
            }
        }
        it += 1;
    }
    let mut outcomes: Vec<_> = outcomes.into_iter().collect();
    outcomes.sort();
    eprintln!("fuzz_step: {it} states, {steps} steps, slowest step {slowest:?} ({slowest_at}); {outcomes:?}");
    if !failures.is_empty() {
        let mut report = String::new();
        for (msg, state) in &failures {
            report += &format!("PANIC {msg}\n{state}\n");
        }
        panic!("{} distinct failures:\n{report}", failures.len());
    }
}

/// `Cpu::run` on random code that loops forever must return `Interrupted` soon after `stop`.
#[test]
fn run_is_interruptible() {
    let _g = lock();
    install_hook();
    let s = space();
    let c = corpus();
    let mut r = Rng::new(env_u64("ROBUST_SEED", 0x5eed_cafe) ^ 0x1234);
    let mut cpus = new_cpus(&s.mem);
    let mut worst = Duration::ZERO;
    let mut bytes = Vec::new();
    let rounds = env_u64("ROBUST_RUN_ROUNDS", 300);
    for round in 0..rounds {
        fill_memory(&s.mem, &mut r, s.top_mapped);
        // Straight-line random forms, then a jump back to the start.
        let mut code = Vec::new();
        while code.len() < 200 {
            code_bytes(&mut r, c, &mut bytes);
            if r.chance(10) {
                bytes.truncate(1);
            }
            code.extend_from_slice(&bytes);
        }
        let rel = -(code.len() as i64 + 5);
        code.push(0xe9);
        code.extend_from_slice(&(rel as i32).to_le_bytes());
        s.mem.force_write(CODE, &code).expect("write code");
        let cpu = &mut cpus[r.below(2) as usize];
        randomize(cpu, &mut r);
        let start_state = cpu.gpr;
        cpu.rip = CODE;
        let stop = Arc::new(AtomicBool::new(false));
        // The lag is measured in this (running) thread's CPU time, read by the stopper just
        // before it sets the flag and by this thread when run returns: the work done after the
        // request, independent of how long either thread waited for a core.
        let clock = cpu_clock_of_this_thread();
        let stopper = {
            let stop = stop.clone();
            let ms = 1 + r.below(5);
            std::thread::spawn(move || {
                // The delay only varies where in the code the stop lands; nothing depends on it.
                std::thread::sleep(Duration::from_millis(ms));
                let at = cpu_time(clock);
                stop.store(true, Ordering::SeqCst);
                at
            })
        };
        let res = guarded(|| loop {
            match crate::new_engine().run(cpu, &stop) {
                Exit::Interrupted => return thread_cpu_time(),
                // Keep the guest busy: restart after anything else.
                Exit::Syscall | Exit::Exception(_) => {
                    cpu.rip = CODE;
                    cpu.gpr[4] = D1;
                }
            }
        });
        let stopped_at = stopper.join().expect("stopper thread");
        match res {
            Err(msg) => panic!(
                "round {round}: run panicked: {msg}\ncode {:02x?}\ninitial gprs {:x?}",
                code, start_state
            ),
            Ok(returned) => {
                let lag = returned.saturating_sub(stopped_at);
                worst = worst.max(lag);
                assert!(
                    lag < STEP_LIMIT,
                    "round {round}: run used {lag:?} of CPU time to notice stop\ncode {code:02x?}"
                );
            }
        }
    }
    eprintln!("run_is_interruptible: {rounds} rounds, worst stop latency {worst:?} of CPU time");
}

// ------------------------------------------------------------------------------------ regressions

/// One input that once crashed or hung the emulator.
struct Case {
    name: &'static str,
    bytes: &'static [u8],
    setup: fn(&mut Cpu),
}

/// A same-privilege far-return frame at RSP = D1 and shadow stacks on with SSP at the top of
/// the 64-bit space: the shadow frame addresses used to overflow.
fn far_return_ssp_at_top(cpu: &mut Cpu) {
    let mut frame = Vec::new();
    for v in [CODE, 0x33, 0x202, D1, 0x2b] {
        frame.extend_from_slice(&v.to_le_bytes());
    }
    cpu.mem.force_write(D1, &frame).expect("frame");
    cpu.gpr[4] = D1;
    cpu.cet.u_cet = U_CET_SH_STK_EN;
    cpu.cet.ssp = 0xffff_ffff_ffff_fff8;
}

const REGRESSIONS: &[Case] = &[
    Case {
        name: "retfq with SSP near 2^64",
        bytes: &[0x48, 0xcb],
        setup: far_return_ssp_at_top,
    },
    Case {
        name: "iretq with SSP near 2^64",
        bytes: &[0x48, 0xcf],
        setup: far_return_ssp_at_top,
    },
];

#[test]
fn regressions() {
    let _g = lock();
    install_hook();
    let s = space();
    let mut failed = Vec::new();
    for case in REGRESSIONS {
        let mut r = Rng::new(7);
        fill_memory(&s.mem, &mut r, s.top_mapped);
        s.mem.force_write(CODE, case.bytes).expect("write code");
        for cpu in new_cpus(&s.mem).iter_mut() {
            cpu.gpr[4] = D1;
            (case.setup)(cpu);
            cpu.rip = CODE;
            let t0 = thread_cpu_time();
            match guarded(|| crate::new_engine().step(cpu)) {
                Err(msg) => failed.push(format!("{}: panicked: {msg}", case.name)),
                Ok(_) if thread_cpu_time().saturating_sub(t0) > STEP_LIMIT => failed.push(format!(
                    "{}: took {:?} of CPU time",
                    case.name,
                    thread_cpu_time().saturating_sub(t0)
                )),
                Ok(_) => {}
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Guest-reachable misuse of the memory API (syscall arguments, odd sizes) must fail cleanly.
#[test]
fn mem_regressions() {
    let _g = lock();
    install_hook();
    let s = space();
    let mem = &s.mem;
    let r = guarded(|| {
        // A path pointer in the last page of the 64-bit space (open(2) and friends).
        assert!(mem.read_cstr(0xffff_ffff_ffff_f800, 4096).is_err());
        assert!(mem.read_cstr(u64::MAX, 16).is_err());
        // map_shadow_stack(0, 2^64 - 4096): the length plus the guard gap overflows.
        let huge = MapRequest::anonymous(0, 0u64.wrapping_sub(PAGE_SIZE), RW, VmaKind::ShadowStack);
        assert!(mem.map(&huge).is_err());
        // A forced write whose end passes 2^64 (/proc/self/mem at a huge offset).
        assert!(mem.force_write(u64::MAX - 3, &[0u8; 8]).is_err());
        // Stack growth "down" to an address above the stack.
        assert!(mem.grow_down(D0, D0 + PAGE_SIZE).is_err());
        // A zero or odd width behaves as 8 bytes: no division by zero, all bytes checked.
        let mut seen = 0;
        let old = mem.atomic_rmw(D0 + 8, 0, &mut |v| {
            seen = v;
            Some(v)
        });
        assert_eq!(old.ok(), mem.read_u64(D0 + 8).ok());
        assert!(mem
            .atomic_rmw(D1 + PAGE_SIZE - 4, 0, &mut |v| Some(v))
            .is_err());
        assert!(mem
            .atomic_rmw(D1 + PAGE_SIZE - 4, 3, &mut |v| Some(v))
            .is_err());
        // A shadow-stack access of an odd width is checked over all 8 bytes it touches: the
        // page after the shadow stack is unmapped on the host.
        assert!(mem.shadow_read(SS + PAGE_SIZE - 2, 2).is_err());
        assert!(mem.shadow_write(SS + PAGE_SIZE - 2, 2, 0).is_err());
        // A misaligned shadow-stack compare-exchange works without a misaligned atomic.
        assert!(mem.shadow_cmpxchg(SS + 4, |v| v).is_ok());
        let _ = seen;
    });
    assert!(r.is_ok(), "{r:?}");
}

/// A forced write (/proc/self/mem) to a shared read-only file mapping, which the host maps
/// read-only, must fail instead of crashing the host process.
#[test]
fn force_write_shared_readonly_file() {
    let _g = lock();
    let s = space();
    let path = std::env::temp_dir().join(format!("cetbox-robust-{}", std::process::id()));
    std::fs::write(&path, vec![0x5au8; PAGE_SIZE as usize]).expect("temp file");
    let f = std::fs::File::open(&path).expect("open temp file");
    use std::os::fd::AsRawFd;
    let at = BASE + 0x9000;
    let mut req = fixed(at, PAGE_SIZE, R, VmaKind::Normal);
    req.shared = true;
    req.fd = Some(f.as_raw_fd());
    req.file_size = PAGE_SIZE;
    req.backing = cetbox_mem::Backing::File {
        path: path.display().to_string(),
        dev: 0,
        inode: 0,
        offset: 0,
    };
    s.mem.map(&req).expect("shared file mapping");
    let r = s.mem.force_write(at + 16, &[1, 2, 3]);
    assert!(
        r.is_err(),
        "forced write to a shared read-only mapping succeeded"
    );
    assert_eq!(s.mem.read_u8(at + 16).ok(), Some(0x5a));
    s.mem.unmap(at, PAGE_SIZE).expect("unmap");
    let _ = std::fs::remove_file(&path);
}

/// A REP string instruction with RCX = -1 over a large mapping does a bounded amount of work
/// per step and yields with RIP at itself (so `run` can notice `stop`), in every copy path.
#[test]
fn rep_is_bounded() {
    let _g = lock();
    install_hook();
    let s = space();
    const BIG: u64 = BASE + 0x100_0000;
    const LEN: u64 = 32 << 20;
    static MAPPED: OnceLock<()> = OnceLock::new();
    MAPPED.get_or_init(|| {
        s.mem
            .map(&fixed(BIG, LEN, RW, VmaKind::Normal))
            .expect("big mapping");
    });
    let cases: &[(&str, &[u8], u64, u64, bool)] = &[
        // name, bytes, rsi, rdi, direction flag
        ("rep lodsb", &[0xf3, 0xac], BIG, BIG, false),
        ("repe cmpsb", &[0xf3, 0xa6], BIG, BIG + LEN / 2, false),
        ("repne scasb", &[0xf2, 0xae], BIG, BIG, false),
        ("rep movsb", &[0xf3, 0xa4], BIG, BIG + LEN / 2, false),
        ("rep movsb overlapping", &[0xf3, 0xa4], BIG, BIG + 1, false),
        (
            "rep movsb backwards",
            &[0xf3, 0xa4],
            BIG + LEN / 2 - 1,
            BIG + LEN - 1,
            true,
        ),
        (
            "rep movsb a32",
            &[0x67, 0xf3, 0xa4],
            BIG,
            BIG + LEN / 2,
            false,
        ),
        ("rep stosb", &[0xf3, 0xaa], 0, BIG, false),
        ("rep stosq a32", &[0x67, 0xf3, 0x48, 0xab], 0, BIG, false),
        ("rep movsq", &[0xf3, 0x48, 0xa5], BIG, BIG + LEN / 2, false),
    ];
    let mut worst = Duration::ZERO;
    for &(name, bytes, rsi, rdi, df) in cases {
        s.mem.force_write(CODE, bytes).expect("code");
        let mut cpu = Cpu::new(s.mem.clone(), Arc::new(CpuConfig::default()));
        cpu.gpr[0] = 1; // AL: never found by SCAS in zeroed memory
        cpu.gpr[1] = u64::MAX;
        cpu.gpr[6] = rsi;
        cpu.gpr[7] = rdi;
        cpu.set_rflags(if df { 0x402 } else { 0x2 });
        cpu.rip = CODE;
        let t0 = thread_cpu_time();
        let r = guarded(|| crate::new_engine().step(&mut cpu));
        let dt = thread_cpu_time().saturating_sub(t0);
        worst = worst.max(dt);
        assert!(r.is_ok(), "{name}: {r:?}");
        assert_eq!(cpu.rip, CODE, "{name}: did not yield at the instruction");
        // A 32-bit address size counts in ECX (and writes it zero-extended).
        let start = if bytes[0] == 0x67 {
            0xffff_ffff
        } else {
            u64::MAX
        };
        let done = start - cpu.gpr[1];
        assert!(
            done > 0 && done <= 1 << 20,
            "{name}: {done} iterations in one step"
        );
        assert!(dt < STEP_LIMIT, "{name}: one step took {dt:?}");
        eprintln!("  {name}: {done} iterations in {dt:?}");
    }
    eprintln!("rep_is_bounded: slowest step {worst:?}");
}

/// Entering code at more distinct addresses than the block cache keeps makes it start over
/// (bounded host memory) and keeps working.
#[test]
fn block_cache_is_bounded() {
    let _g = lock();
    install_hook();
    let s = space();
    // Above rep_is_bounded's 32 MiB at BASE + 16 MiB, which stays mapped once made: at
    // BASE + 32 MiB this mapping collided with it whenever that test had run first.
    const AT: u64 = BASE + 0x400_0000;
    const PAGES_N: u64 = 20;
    s.mem
        .map(&fixed(AT, PAGES_N * PAGE_SIZE, RX, VmaKind::Normal))
        .expect("code mapping");
    // NOPs with a SYSCALL closing every 32 bytes, so each entry runs one short block.
    let mut code = vec![0x90u8; (PAGES_N * PAGE_SIZE) as usize];
    for chunk in code.chunks_mut(32) {
        chunk[30] = 0x0f;
        chunk[31] = 0x05;
    }
    s.mem.force_write(AT, &code).expect("code");
    let mut cpu = Cpu::new(s.mem.clone(), Arc::new(CpuConfig::default()));
    let stop = AtomicBool::new(false);
    let res = guarded(|| {
        for addr in AT..AT + PAGES_N * PAGE_SIZE - 32 {
            cpu.rip = addr;
            let exit = crate::new_engine().run(&mut cpu, &stop);
            assert!(
                matches!(exit, Exit::Syscall | Exit::Exception(_)),
                "{addr:#x}: {exit:?}"
            );
        }
    });
    s.mem.unmap(AT, PAGES_N * PAGE_SIZE).expect("unmap");
    assert!(res.is_ok(), "{res:?}");
}

/// An instruction running into the unmapped page after the code page faults there (#PF on
/// fetch at the page boundary) under `step` exactly as under `run`.
#[test]
fn straddling_instruction_faults_alike() {
    let _g = lock();
    let s = space();
    // mov rax, imm64 with only its first 4 bytes on the page.
    let at = CODE + PAGE_SIZE - 4;
    s.mem
        .force_write(at, &[0x48, 0xb8, 0x11, 0x22])
        .expect("code");
    let mut cpu = Cpu::new(s.mem.clone(), Arc::new(CpuConfig::default()));
    cpu.rip = at;
    let stepped = crate::new_engine().step(&mut cpu);
    cpu.rip = at;
    let ran = crate::new_engine().run(&mut cpu, &AtomicBool::new(false));
    match &stepped {
        Some(Exit::Exception(Exception::PageFault(f))) => {
            assert_eq!(f.addr, CODE + PAGE_SIZE);
            assert_eq!(f.access, cetbox_mem::Access::Fetch);
        }
        other => panic!("step: {other:?}"),
    }
    assert_eq!(stepped, Some(ran));
    assert_eq!(cpu.rip, at);
}
