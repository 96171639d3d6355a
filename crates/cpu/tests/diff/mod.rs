//! The randomized differential tester: one instruction, the same random starting state, run on
//! the host CPU and on cetbox's emulated CPU; every architectural result compared.
//!
//! - `enc`: a tiny encoder used to write the forms table.
//! - `forms`: the forms table (data: bytes, randomized operands, undefined flags).
//! - `gen`: random input generation with edge values.
//! - `native`: the host runner (a generated trampoline).
//! - this file: the shared state type, the harness (one address space per process), the
//!   emulated run, the comparison and the report.

#![allow(dead_code)]

pub mod block;
pub mod enc;
pub mod fault;
pub mod forms;
pub mod forms_v3;
pub mod gather_edge;
pub mod gen;
pub mod native;

use cetbox_cpu::fpstate::{fxrstor, fxsave};
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use cetbox_mem::{AddressSpace, FaultKind, MapRequest, VmaKind};
use forms::Form;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const DF: u64 = 1 << 10;
pub const OF: u64 = 1 << 11;
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// The RFLAGS bits compared.
pub const COMPARED_FLAGS: u64 = ARITH | DF;

/// Size of the data page the instruction's memory operands and stack live in.
pub const DATA_LEN: usize = 4096;
/// Where RSP points in the data page (room for pushes below and pops above).
pub const STACK_OFF: u64 = 0xc00;

/// The architectural state exchanged with the trampoline; x87, MXCSR and XMM live in an FXSAVE64
/// image so the trampoline loads and stores them with one FXRSTOR/FXSAVE.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct State {
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub rip: u64,
    pub fx: [u8; 512],
    /// YMM0-15 bits 255:128 (loaded and stored only on hosts with AVX2).
    pub ymm_hi: [u128; 16],
    /// The FS and GS segment bases (loaded and stored only on hosts with FSGSBASE).
    pub fs_base: u64,
    pub gs_base: u64,
}

impl Default for State {
    fn default() -> Self {
        let mut s = State {
            gpr: [0; 16],
            rflags: 0x202,
            rip: 0,
            fx: [0; 512],
            ymm_hi: [0; 16],
            fs_base: 0,
            gs_base: 0,
        };
        s.set_fcw(0x037f);
        s.set_mxcsr(0x1f80);
        s
    }
}

impl State {
    pub fn fcw(&self) -> u16 {
        u16::from_le_bytes([self.fx[0], self.fx[1]])
    }
    pub fn set_fcw(&mut self, v: u16) {
        self.fx[0..2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn fsw(&self) -> u16 {
        u16::from_le_bytes([self.fx[2], self.fx[3]])
    }
    pub fn set_fsw(&mut self, v: u16) {
        self.fx[2..4].copy_from_slice(&v.to_le_bytes());
    }
    /// The abridged tag byte (bit i = physical register i not empty).
    pub fn ftag(&self) -> u8 {
        self.fx[4]
    }
    pub fn set_ftag(&mut self, v: u8) {
        self.fx[4] = v;
    }
    pub fn top(&self) -> u8 {
        ((self.fsw() >> 11) & 7) as u8
    }
    /// ST(i), 80 bits (FXSAVE stores them in stack order).
    pub fn st(&self, i: usize) -> u128 {
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&self.fx[32 + 16 * i..42 + 16 * i]);
        u128::from_le_bytes(b)
    }
    pub fn set_st(&mut self, i: usize, v: u128) {
        self.fx[32 + 16 * i..42 + 16 * i].copy_from_slice(&v.to_le_bytes()[..10]);
    }
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.fx[24..28].try_into().unwrap())
    }
    pub fn set_mxcsr(&mut self, v: u32) {
        self.fx[24..28].copy_from_slice(&v.to_le_bytes());
    }
    pub fn xmm(&self, i: usize) -> u128 {
        u128::from_le_bytes(self.fx[160 + 16 * i..176 + 16 * i].try_into().unwrap())
    }
    pub fn set_xmm(&mut self, i: usize, v: u128) {
        self.fx[160 + 16 * i..176 + 16 * i].copy_from_slice(&v.to_le_bytes());
    }
}

pub const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Where the data page is placed (the first free candidate): outside the address space's host
/// reservation and far below where the host places its own mappings, so the unmapped pages
/// around it (see `Harness::new`) stay unmapped on the host too for the life of the process.
const DATA_CANDIDATES: [u64; 4] = [
    0x0000_2a5a_0000_0000,
    0x0000_2b5b_0000_0000,
    0x0000_1c5c_0000_0000,
    0x0000_0e5e_0000_0000,
];

/// The byte at offset k of the read-only page after the data page (a fixed pattern: reads that
/// straddle into it see known bytes on both sides).
pub fn ro_byte(k: usize) -> u8 {
    (k as u8).wrapping_mul(0x9d) ^ 0x5a
}

/// The process-wide test fixture: the one address space, a code mapping holding the trampoline
/// and the test instruction, and a data page. Around the data page: an unmapped page below it,
/// a read-only page above it and an unmapped page above that (guest and host alike), so memory
/// operands at and across the page ends fault as on Linux (SEGV_MAPERR or SEGV_ACCERR, the
/// page-fault error code, the first faulting address) or read across.
pub struct Harness {
    pub mem: Arc<AddressSpace>,
    pub code: u64,
    pub data: u64,
}

static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

/// Locks the harness (tests in this binary run in parallel threads; the trampoline and the
/// pages are shared).
pub fn harness() -> MutexGuard<'static, Harness> {
    HARNESS
        .get_or_init(|| Mutex::new(Harness::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl Harness {
    fn new() -> Harness {
        let mem = Arc::new(AddressSpace::new().expect("address space"));
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u32;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
        let code = mem
            .map(&MapRequest::anonymous(
                0,
                native::CODE_LEN,
                rx,
                VmaKind::Normal,
            ))
            .expect("code mapping");
        let data = DATA_CANDIDATES
            .iter()
            .find_map(|&at| {
                let mut req = MapRequest::anonymous(at - 4096, 4 * 4096, rw, VmaKind::Normal);
                req.fixed = true;
                req.noreplace = true;
                mem.map(&req).ok().map(|a| a + 4096)
            })
            .expect("data mapping");
        let ro = data + DATA_LEN as u64;
        // SAFETY: the read-only page is ours (mapped just above), not yet in use.
        unsafe {
            let p = std::slice::from_raw_parts_mut(ro as *mut u8, 4096);
            for (k, b) in p.iter_mut().enumerate() {
                *b = ro_byte(k);
            }
        }
        mem.protect(ro, 4096, libc::PROT_READ as u32)
            .expect("read-only page");
        mem.unmap(data - 4096, 4096).expect("unmap below");
        mem.protect(ro + 4096, 4096, libc::PROT_NONE as u32)
            .expect("PROT_NONE page");
        // SAFETY: these host pages belong to the guest mappings just changed; the guest's page
        // table says read-only, unmapped and PROT_NONE, and the host must fault the same way
        // (the host side of guest memory is otherwise read-write, and unmapped pages outside
        // the reservation are kept as zero pages).
        unsafe {
            let r1 = libc::mprotect(ro as *mut libc::c_void, 4096, libc::PROT_READ);
            let r2 = libc::munmap((data - 4096) as *mut libc::c_void, 4096);
            let r3 = libc::mprotect((ro + 4096) as *mut libc::c_void, 4096, libc::PROT_NONE);
            assert_eq!((r1, r2, r3), (0, 0, 0), "host page set-up");
        }
        // SAFETY: the code mapping is ours; only the host side becomes RWX, the guest page
        // table still says R+X.
        let r = unsafe {
            libc::mprotect(
                code as *mut libc::c_void,
                native::CODE_LEN as usize,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            )
        };
        assert_eq!(r, 0, "mprotect RWX");
        native::build(code);
        Harness { mem, code, data }
    }

    pub fn insn_addr(&self) -> u64 {
        self.code + native::INSN
    }

    /// Landing-pad addresses for `form` (pad 0 = fall-through).
    pub fn pads(&self, form: &Form) -> Vec<u64> {
        let next = self.insn_addr() + form.bytes.len() as u64;
        let mut v = vec![next];
        for &e in &form.exits {
            let a = next.wrapping_add(e as u64);
            v.push(a);
        }
        // Pads must stay inside the test region and clear of the instruction and each other.
        let lo = self.code + native::REGION_START;
        let hi = self.code + native::REGION_END;
        for (k, &a) in v.iter().enumerate() {
            assert!(
                a >= lo && a + native::PAD_LEN as u64 <= hi,
                "{}: pad out of region",
                form.name
            );
            let insn = self.insn_addr();
            assert!(
                a >= insn + form.bytes.len() as u64 || a + native::PAD_LEN as u64 <= insn,
                "{}: pad overlaps the instruction",
                form.name
            );
            for &b in &v[..k] {
                assert!(
                    a.abs_diff(b) >= native::PAD_LEN as u64,
                    "{}: pads overlap",
                    form.name
                );
            }
        }
        v
    }

    #[allow(clippy::mut_from_ref)] // the page is not owned by `self`: see the SAFETY comment
    fn data_slice(&self) -> &mut [u8] {
        // SAFETY: the data page is ours for the life of the process; the harness lock
        // serializes every user.
        unsafe { std::slice::from_raw_parts_mut(self.data as *mut u8, DATA_LEN) }
    }

    pub fn set_code(&self, bytes: &[u8]) {
        // SAFETY: the instruction slot is inside the code mapping, host-writable.
        unsafe { native::write(self.insn_addr(), bytes) };
    }
}

/// One test case: an input state and the data page contents.
#[derive(Clone)]
pub struct Case {
    pub input: State,
    pub mem: Vec<u8>,
    /// The instruction bytes for this case (immediates may be randomized).
    pub bytes: Vec<u8>,
}

/// What a program learns about a fault: si_code and si_addr of the signal, and the trap
/// number and hardware error code of its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    pub trapno: u64,
    pub err: u64,
    pub code: i32,
    pub addr: u64,
}

impl std::fmt::Display for FaultInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trapno {} err {:#x} si_code {} si_addr {:#x}",
            self.trapno, self.err, self.code, self.addr
        )
    }
}

/// The result of one run, native or emulated.
#[derive(Clone)]
pub struct Outcome {
    pub st: State,
    pub mem: Vec<u8>,
    /// The signal the instruction raised (the emulator's exception mapped to Linux's signal).
    pub signal: Option<i32>,
    /// The details of that signal (for the emulator, what Linux would report).
    pub fault: Option<FaultInfo>,
    /// A description of the exception or panic (emulator only).
    pub what: String,
}

/// Runs `case` on the host.
pub fn run_native(h: &Harness, case: &Case, pads: &[u64]) -> Outcome {
    h.data_slice().copy_from_slice(&case.mem);
    let n = native::run(h.code, &case.input);
    let mut st = n.out;
    let what;
    if let Some(sig) = n.signal {
        st.rip = native::fault_rip();
        what = format!("signal {sig}");
    } else {
        st.rip = pads.get(n.pad as usize).copied().unwrap_or(u64::MAX);
        what = String::new();
    }
    Outcome {
        st,
        mem: h.data_slice().to_vec(),
        signal: n.signal,
        fault: n.fault,
        what,
    }
}

/// The signal Linux delivers for an exception.
pub fn signal_of(e: &Exception) -> i32 {
    match e {
        Exception::DivideError | Exception::X87Fault | Exception::SimdFault(_) => libc::SIGFPE,
        Exception::InvalidOpcode(_) => libc::SIGILL,
        Exception::Breakpoint | Exception::Debug => libc::SIGTRAP,
        Exception::PageFault(f) if f.kind == FaultKind::BeyondEof => libc::SIGBUS,
        Exception::AlignmentCheck => libc::SIGBUS,
        _ => libc::SIGSEGV,
    }
}

/// Runs `case` in the emulator. A panic in a handler is reported as a failure, not a crash.
pub fn run_emu(h: &Harness, case: &Case) -> Outcome {
    h.data_slice().copy_from_slice(&case.mem);
    let mut cpu = Cpu::new(h.mem.clone(), Arc::new(CpuConfig::default()));
    cpu.gpr = case.input.gpr;
    cpu.set_rflags(case.input.rflags);
    let ok = fxrstor(&mut cpu.x87, &mut cpu.sse, &case.input.fx);
    assert!(ok, "input MXCSR invalid");
    cpu.sse.ymm_hi = case.input.ymm_hi;
    cpu.fs_base = case.input.fs_base;
    cpu.gs_base = case.input.gs_base;
    cpu.rip = h.insn_addr();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Interpreter::new().step(&mut cpu)
    }));
    let mut st = State::default();
    let mut fault = None;
    let (signal, what) = match r {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (Some(-1), format!("PANIC: {msg}"))
        }
        Ok(None) => (None, String::new()),
        Ok(Some(Exit::Exception(e))) => {
            fault = Some(fault::linux_fault(
                &e,
                cpu.rip,
                cpu.sse.mxcsr,
                cpu.x87.status_word(),
                cpu.x87.fcw,
            ));
            (Some(signal_of(&e)), format!("{e:?}"))
        }
        Ok(Some(x)) => (Some(-2), format!("exit {x:?}")),
    };
    st.gpr = cpu.gpr;
    st.rflags = cpu.rflags();
    st.rip = cpu.rip;
    fxsave(&cpu.x87, &cpu.sse, &mut st.fx);
    st.ymm_hi = cpu.sse.ymm_hi;
    st.fs_base = cpu.fs_base;
    st.gs_base = cpu.gs_base;
    Outcome {
        st,
        mem: h.data_slice().to_vec(),
        signal,
        fault,
        what,
    }
}

/// Options that change what is compared.
#[derive(Clone, Copy, Default)]
pub struct CompareOpts {
    /// Do not compare architecturally undefined flags.
    pub ignore_undef: bool,
}

/// Every difference between the native and the emulated outcome, one line each (empty = pass).
pub fn compare(form: &Form, data: u64, n: &Outcome, e: &Outcome, opts: CompareOpts) -> Vec<String> {
    let mut d = Vec::new();
    if n.signal != e.signal {
        d.push(format!(
            "fault: native {} / emulator {}",
            sig_name(n.signal),
            if e.what.is_empty() {
                sig_name(e.signal)
            } else {
                format!("{} ({})", sig_name(e.signal), e.what)
            }
        ));
        if e.signal.is_some() && n.signal.is_none() {
            return d; // the emulator stopped: the rest is noise
        }
    } else if n.fault != e.fault {
        // The same signal: what the kernel says about it must agree too (#GP vs #PF,
        // SEGV_MAPERR vs SEGV_ACCERR, the faulting address, the error code).
        let show = |f: &Option<FaultInfo>| f.map_or("none".to_string(), |f| f.to_string());
        d.push(format!(
            "fault details: native {} / emulator {} ({})",
            show(&n.fault),
            show(&e.fault),
            e.what
        ));
    }
    for (i, name) in GPR_NAMES.iter().enumerate() {
        if n.st.gpr[i] != e.st.gpr[i] {
            d.push(format!(
                "{name}: native {:#018x} emulator {:#018x}",
                n.st.gpr[i], e.st.gpr[i]
            ));
        }
    }
    if (n.st.fs_base, n.st.gs_base) != (e.st.fs_base, e.st.gs_base) {
        d.push(format!(
            "fs/gs base: native {:#x}/{:#x} emulator {:#x}/{:#x}",
            n.st.fs_base, n.st.gs_base, e.st.fs_base, e.st.gs_base
        ));
    }
    if n.st.rip != e.st.rip {
        d.push(format!(
            "rip: native {:#x} emulator {:#x}",
            n.st.rip, e.st.rip
        ));
    }
    let mut mask = COMPARED_FLAGS & !form.skip;
    if opts.ignore_undef {
        mask &= !form.undef;
    }
    let (nf, ef) = (n.st.rflags & mask, e.st.rflags & mask);
    if nf != ef {
        let undef = (nf ^ ef) & form.undef != 0 && (nf ^ ef) & !form.undef == 0;
        d.push(format!(
            "rflags: native {} emulator {} (differ: {}){}",
            flag_str(nf),
            flag_str(ef),
            flag_str(nf ^ ef),
            if undef {
                " [architecturally undefined only]"
            } else {
                ""
            }
        ));
    }
    if n.st.mxcsr() != e.st.mxcsr() {
        d.push(format!(
            "mxcsr: native {:#06x} emulator {:#06x}",
            n.st.mxcsr(),
            e.st.mxcsr()
        ));
    }
    for i in 0..16 {
        if n.st.xmm(i) != e.st.xmm(i) {
            d.push(format!(
                "xmm{i}: native {:#034x} emulator {:#034x}",
                n.st.xmm(i),
                e.st.xmm(i)
            ));
        }
        if n.st.ymm_hi[i] != e.st.ymm_hi[i] {
            d.push(format!(
                "ymm{i}[255:128]: native {:#034x} emulator {:#034x}",
                n.st.ymm_hi[i], e.st.ymm_hi[i]
            ));
        }
    }
    if n.st.fcw() != e.st.fcw() {
        d.push(format!(
            "fcw: native {:#06x} emulator {:#06x}",
            n.st.fcw(),
            e.st.fcw()
        ));
    }
    if n.st.fsw() != e.st.fsw() {
        d.push(format!(
            "fsw: native {:#06x} emulator {:#06x}",
            n.st.fsw(),
            e.st.fsw()
        ));
    }
    if n.st.ftag() != e.st.ftag() {
        d.push(format!(
            "ftag: native {:#04x} emulator {:#04x}",
            n.st.ftag(),
            e.st.ftag()
        ));
    }
    for i in 0..8 {
        let phys = (n.st.top() as usize + i) & 7;
        if n.st.ftag() & (1 << phys) != 0 && n.st.st(i) != e.st.st(i) {
            d.push(format!(
                "st{i}: native {:#022x} emulator {:#022x}",
                n.st.st(i),
                e.st.st(i)
            ));
        }
    }
    if let Some(off) = (0..DATA_LEN).find(|&k| n.mem[k] != e.mem[k]) {
        let last = (0..DATA_LEN).rev().find(|&k| n.mem[k] != e.mem[k]).unwrap();
        let lo = off & !15;
        let hi = (last | 15).min(lo + 31);
        d.push(format!(
            "memory differs at data+{off:#x} (addr {:#x}) .. data+{last:#x}:\n      native   {}\n      emulator {}",
            data + off as u64,
            hex(&n.mem[lo..=hi]),
            hex(&e.mem[lo..=hi])
        ));
    }
    d
}

pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn sig_name(s: Option<i32>) -> String {
    match s {
        None => "none".into(),
        Some(-1) => "panic".into(),
        Some(-2) => "unexpected exit".into(),
        Some(libc::SIGSEGV) => "SIGSEGV".into(),
        Some(libc::SIGFPE) => "SIGFPE".into(),
        Some(libc::SIGILL) => "SIGILL".into(),
        Some(libc::SIGBUS) => "SIGBUS".into(),
        Some(libc::SIGTRAP) => "SIGTRAP".into(),
        Some(x) => format!("signal {x}"),
    }
}

pub fn flag_str(f: u64) -> String {
    let mut s = String::new();
    for (b, n) in [
        (OF, "O"),
        (DF, "D"),
        (SF, "S"),
        (ZF, "Z"),
        (AF, "A"),
        (PF, "P"),
        (CF, "C"),
    ] {
        s.push_str(if f & b != 0 { n } else { "-" });
    }
    s
}

/// A human-readable dump of the input state the form's operands depend on.
pub fn describe_input(form: &Form, case: &Case, data: u64) -> String {
    let s = &case.input;
    let mut o = String::new();
    for row in 0..4 {
        o.push_str("      ");
        for c in 0..4 {
            let i = row * 4 + c;
            let _ = write!(o, "{:>3}={:#018x} ", GPR_NAMES[i], s.gpr[i]);
        }
        o.push('\n');
    }
    let _ = writeln!(o, "      rflags={:#x} [{}]", s.rflags, flag_str(s.rflags));
    if form.fp || !form.xmms.is_empty() {
        let _ = writeln!(o, "      mxcsr={:#06x}", s.mxcsr());
        for &x in &form.xmms {
            let _ = writeln!(o, "      xmm{x}={:#034x}", s.xmm(x as usize));
        }
    }
    if form.x87 > 0 {
        let _ = writeln!(
            o,
            "      fcw={:#06x} fsw={:#06x} ftag={:#04x}",
            s.fcw(),
            s.fsw(),
            s.ftag()
        );
        for i in 0..8 {
            if s.ftag() & (1 << ((s.top() as usize + i) & 7)) != 0 {
                let _ = writeln!(o, "      st{i}={:#022x}", s.st(i));
            }
        }
    }
    if let Some(m) = &form.mem {
        let a = s.gpr[m.base as usize];
        if a >= data && a < data + DATA_LEN as u64 {
            let off = (a - data) as usize;
            let lo = (off as i64 + m.disp as i64).clamp(0, DATA_LEN as i64 - 16) as usize;
            let _ = writeln!(
                o,
                "      mem[{}+{:#x}] = {}",
                GPR_NAMES[m.base as usize],
                m.disp,
                hex(&case.mem[lo..lo + 16])
            );
        }
    }
    let sp = (STACK_OFF as usize - 16)..(STACK_OFF as usize + 16);
    let _ = writeln!(o, "      stack[rsp-16..rsp+16] = {}", hex(&case.mem[sp]));
    o
}

/// Disassembles `bytes` at `ip` (GNU syntax).
pub fn disasm(bytes: &[u8], ip: u64) -> String {
    use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};
    let mut dec = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() {
        return "(invalid)".into();
    }
    let mut s = String::new();
    GasFormatter::new().format(&insn, &mut s);
    s
}

/// The input state as an outcome, to show what the native run changed.
fn input_outcome(h: &Harness, case: &Case) -> Outcome {
    let mut st = case.input;
    st.rip = h.insn_addr();
    Outcome {
        st,
        mem: case.mem.clone(),
        signal: None,
        fault: None,
        what: String::new(),
    }
}

/// Per-form result.
pub struct FormResult {
    pub name: String,
    pub cases: u32,
    pub fails: u32,
    pub first: Option<String>,
}

/// Runs every case of `form` and reports the first mismatch.
pub fn run_form(h: &Harness, form: &Form, seed: u64, cases: u32, opts: CompareOpts) -> FormResult {
    let pads = h.pads(form);
    native::place(h.code, &form.bytes, &pads);
    let mut rng = gen::form_rng(seed, &form.name);
    let ctx = gen::Ctx {
        data: h.data,
        pads: pads.clone(),
    };
    let mut fails = 0;
    let mut first = None;
    for k in 0..cases {
        let case = gen::make_case(&mut rng, form, &ctx);
        h.set_code(&case.bytes);
        let n = run_native(h, &case, &pads);
        let e = run_emu(h, &case);
        let d = compare(form, h.data, &n, &e, opts);
        if !d.is_empty() {
            fails += 1;
            if first.is_none() {
                let mut s = String::new();
                let _ = writeln!(
                    s,
                    "  FAIL {}: case {k} (CETBOX_DIFF_SEED={seed:#x})\n    bytes: {}   {}",
                    form.name,
                    hex(&case.bytes),
                    disasm(&case.bytes, h.insn_addr())
                );
                if !form.note.is_empty() {
                    let _ = writeln!(s, "    note: {}", form.note);
                }
                let _ = writeln!(
                    s,
                    "    input (data page at {:#x}, rsp = data+{STACK_OFF:#x}):\n{}",
                    h.data,
                    describe_input(form, &case, h.data)
                );
                for line in d {
                    let _ = writeln!(s, "    {line}");
                }
                if e.signal.is_some() && n.signal.is_none() {
                    let _ = writeln!(s, "    native result (what changed):");
                    for line in compare(form, h.data, &input_outcome(h, &case), &n, opts) {
                        let line = line
                            .replace("native", "before")
                            .replace("emulator", "after");
                        let _ = writeln!(s, "      {line}");
                    }
                }
                first = Some(s);
            }
        }
    }
    FormResult {
        name: form.name.clone(),
        cases,
        fails,
        first,
    }
}
