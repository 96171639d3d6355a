//! XGETBV, XSAVE/XSAVEOPT/XSAVEC/XRSTOR and CMPXCHG16B on the x86-64-v3 CPU, and the level
//! gating of FISTTP (SSE3). Expected values
//! come from the SDM's definitions (Vol. 1 ch. 13: the XSAVE area layout and header rules;
//! Vol. 2 CMPXCHG16B), never from the emulator's output.

mod common;

use cetbox_cpu::flags::ZF;
use cetbox_cpu::{Cpu, CpuConfig, CpuLevel, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use common::Env;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::new(2))
}

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A v3 CPU with RBX at the zeroed data area and EDX:EAX = 7 (every XCR0 component).
fn cpu(level: CpuLevel) -> Cpu {
    let e = env();
    e.mem.write_bytes(e.data, &[0u8; 8192]).unwrap();
    let mut c = Cpu::new(
        e.mem.clone(),
        Arc::new(CpuConfig {
            level,
            ..CpuConfig::default()
        }),
    );
    c.gpr[3] = e.data;
    c.gpr[0] = 7;
    c.gpr[2] = 0;
    c
}

fn exec(c: &mut Cpu, code: &[u8]) -> Option<Exception> {
    let e = env();
    let mut buf = code.to_vec();
    buf.resize(16, 0x90);
    e.mem.write_bytes(e.code, &buf).unwrap();
    c.rip = e.code;
    match Interpreter::new().step(c) {
        None => None,
        Some(Exit::Exception(x)) => {
            assert_eq!(c.rip, e.code, "rip after a fault");
            Some(x)
        }
        Some(other) => panic!("unexpected exit {other:?}"),
    }
}

fn ok(c: &mut Cpu, code: &[u8]) {
    if let Some(x) = exec(c, code) {
        panic!("{code:02x?} raised {x:?}");
    }
}

fn rd(at: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    env().mem.read_bytes(at, &mut b).unwrap();
    b
}

fn q(at: u64) -> u64 {
    env().mem.read_u64(at).unwrap()
}

const XGETBV: &[u8] = &[0x0f, 0x01, 0xd0];
const XSAVE64: &[u8] = &[0x48, 0x0f, 0xae, 0x23];
const XSAVEOPT64: &[u8] = &[0x48, 0x0f, 0xae, 0x33];
const XSAVEC64: &[u8] = &[0x48, 0x0f, 0xc7, 0x23];
const XRSTOR64: &[u8] = &[0x48, 0x0f, 0xae, 0x2b];
const CMPXCHG16B: &[u8] = &[0x48, 0x0f, 0xc7, 0x0b];

#[test]
fn xgetbv_reads_xcr0() {
    let _g = lock();
    let mut c = cpu(CpuLevel::V3);
    c.gpr[1] = 0;
    ok(&mut c, XGETBV);
    assert_eq!((c.gpr[0], c.gpr[2]), (7, 0));
    c.gpr[1] = 1;
    assert_eq!(exec(&mut c, XGETBV), Some(Exception::GeneralProtection));
    // Below x86-64-v3 there is no XSAVE: #UD.
    let mut c = cpu(CpuLevel::V2);
    c.gpr[1] = 0;
    assert!(matches!(
        exec(&mut c, XGETBV),
        Some(Exception::InvalidOpcode(_))
    ));
    assert!(matches!(
        exec(&mut c, XSAVE64),
        Some(Exception::InvalidOpcode(_))
    ));
}

fn set_state(c: &mut Cpu) {
    for n in 0..16 {
        c.sse.xmm[n] = 0x1111_0000_0000_0000_0000_0000_0000_0000u128 * (n as u128 + 1) + n as u128;
        c.sse.ymm_hi[n] = 0xaaaa_0000_0000_0000_0000_0000_0000_0000u128 + ((n as u128) << 64);
    }
    c.sse.mxcsr = 0x3f80;
}

#[test]
fn xsave_standard_layout_and_roundtrip() {
    let _g = lock();
    let mut c = cpu(CpuLevel::V3);
    set_state(&mut c);
    let d = env().data;
    // A stale bit outside RFBM in XSTATE_BV is kept by XSAVE (RFBM = SSE|AVX here).
    env().mem.write_u64(d + 512, 1).unwrap();
    c.gpr[0] = 6;
    ok(&mut c, XSAVE64);
    // MXCSR at 24, XMM at 160, YMM upper halves at 576 (SDM Vol. 1 §13.4, §13.5).
    assert_eq!(env().mem.read_u32(d + 24).unwrap(), 0x3f80);
    for n in 0..16u64 {
        assert_eq!(
            env().mem.read_u128(d + 160 + 16 * n).unwrap(),
            c.sse.xmm[n as usize]
        );
        assert_eq!(
            env().mem.read_u128(d + 576 + 16 * n).unwrap(),
            c.sse.ymm_hi[n as usize]
        );
    }
    // x87 (not in RFBM) untouched: FCW bytes still zero.
    assert_eq!(rd(d, 2), vec![0, 0]);
    assert_eq!(q(d + 512), 1 | 6);
    // XRSTOR brings everything back after the registers are clobbered.
    let saved = c.sse.clone();
    c.sse.xmm = [0; 16];
    c.sse.ymm_hi = [0; 16];
    c.sse.mxcsr = 0x1f80;
    c.gpr[0] = 6;
    env().mem.write_u64(d + 512, 6).unwrap();
    ok(&mut c, XRSTOR64);
    assert_eq!(c.sse.xmm, saved.xmm);
    assert_eq!(c.sse.ymm_hi, saved.ymm_hi);
    assert_eq!(c.sse.mxcsr, 0x3f80);
    // XSTATE_BV[2] clear: the AVX component is initialized (upper halves zero).
    env().mem.write_u64(d + 512, 2).unwrap();
    ok(&mut c, XRSTOR64);
    assert_eq!(c.sse.ymm_hi, [0; 16]);
    assert_eq!(c.sse.xmm, saved.xmm);
}

#[test]
fn xsavec_compacted_header_and_xrstor() {
    let _g = lock();
    let mut c = cpu(CpuLevel::V3);
    set_state(&mut c);
    let d = env().data;
    c.gpr[0] = 7;
    ok(&mut c, XSAVEC64);
    // XCOMP_BV = bit 63 | RFBM; XSTATE_BV = RFBM & XINUSE (x87 is in its initial state).
    assert_eq!(q(d + 520), (1 << 63) | 7);
    assert_eq!(q(d + 512), 6);
    assert_eq!(env().mem.read_u128(d + 576).unwrap(), c.sse.ymm_hi[0]);
    let saved = c.sse.clone();
    c.sse.xmm[3] = 0;
    c.sse.ymm_hi[15] = 0;
    ok(&mut c, XRSTOR64);
    assert_eq!(c.sse.xmm, saved.xmm);
    assert_eq!(c.sse.ymm_hi, saved.ymm_hi);
    // XSAVEOPT with AVX in its initial state does not write the AVX area.
    c.sse.ymm_hi = [0; 16];
    env().mem.write_bytes(d + 576, &[0x55; 256]).unwrap();
    env().mem.write_u64(d + 520, 0).unwrap();
    ok(&mut c, XSAVEOPT64);
    assert_eq!(rd(d + 576, 4), vec![0x55; 4]);
    assert_eq!(q(d + 512) & 4, 0);
}

#[test]
fn xsave_faults() {
    let _g = lock();
    let mut c = cpu(CpuLevel::V3);
    let d = env().data;
    // Misaligned area: #GP(0), for saves and restores.
    c.gpr[3] = d + 16;
    assert_eq!(exec(&mut c, XSAVE64), Some(Exception::GeneralProtection));
    assert_eq!(exec(&mut c, XRSTOR64), Some(Exception::GeneralProtection));
    c.gpr[3] = d;
    // Standard form: XSTATE_BV bits beyond XCR0, or nonzero header bytes 8..63: #GP(0).
    env().mem.write_u64(d + 512, 1 << 5).unwrap();
    assert_eq!(exec(&mut c, XRSTOR64), Some(Exception::GeneralProtection));
    env().mem.write_u64(d + 512, 0).unwrap();
    env().mem.write_u64(d + 540, 1).unwrap();
    assert_eq!(exec(&mut c, XRSTOR64), Some(Exception::GeneralProtection));
    env().mem.write_u64(d + 540, 0).unwrap();
    // Compacted: XSTATE_BV not a subset of XCOMP_BV.
    env().mem.write_u64(d + 512, 4).unwrap();
    env().mem.write_u64(d + 520, (1 << 63) | 2).unwrap();
    assert_eq!(exec(&mut c, XRSTOR64), Some(Exception::GeneralProtection));
    // A reserved MXCSR bit: #GP(0), nothing loaded.
    env().mem.write_u64(d + 512, 2).unwrap();
    env().mem.write_u64(d + 520, 0).unwrap();
    env().mem.write_u32(d + 24, 1 << 20).unwrap();
    c.sse.xmm[0] = 5;
    assert_eq!(exec(&mut c, XRSTOR64), Some(Exception::GeneralProtection));
    assert_eq!(c.sse.xmm[0], 5);
}

#[test]
fn cmpxchg16b() {
    let _g = lock();
    let mut c = cpu(CpuLevel::V3);
    let d = env().data;
    env().mem.write_u64(d + 32, 0x1111).unwrap();
    env().mem.write_u64(d + 40, 0x2222).unwrap();
    c.gpr[3] = 0xaaaa; // RBX: new low
    c.gpr[1] = 0xbbbb; // RCX: new high
    c.gpr[0] = 0x1111; // RAX
    c.gpr[2] = 0x2222; // RDX
    c.gpr[7] = d + 32; // [rdi]
    let insn = [0x48, 0x0f, 0xc7, 0x0f]; // cmpxchg16b [rdi]
    ok(&mut c, &insn);
    assert!(c.rflags() & ZF != 0);
    assert_eq!((q(d + 32), q(d + 40)), (0xaaaa, 0xbbbb));
    // Mismatch: ZF clear, RDX:RAX loaded, memory unchanged.
    ok(&mut c, &insn);
    assert!(c.rflags() & ZF == 0);
    assert_eq!((c.gpr[0], c.gpr[2]), (0xaaaa, 0xbbbb));
    assert_eq!((q(d + 32), q(d + 40)), (0xaaaa, 0xbbbb));
    // Misaligned: #GP(0).
    c.gpr[7] = d + 40;
    assert_eq!(exec(&mut c, &insn), Some(Exception::GeneralProtection));
    // Baseline CPU: #UD.
    let mut c = cpu(CpuLevel::X86_64);
    c.gpr[7] = d + 32;
    assert!(matches!(
        exec(&mut c, &insn),
        Some(Exception::InvalidOpcode(_))
    ));
    let _ = CMPXCHG16B;
}

#[test]
fn fisttp_is_an_sse3_instruction() {
    let _g = lock();
    // fisttp dword [rbx]: ST(0) = 2.75 truncates to 2 (FISTTP always truncates).
    let insn = [0xdb, 0x0b];
    let mut c = cpu(CpuLevel::V2);
    c.x87.top = 7;
    c.x87.st[7] = 0x4000_b000_0000_0000_0000; // 2.75 as an 80-bit value
    c.x87.ftw = 0x3fff; // ST(0) (physical 7) valid
    ok(&mut c, &insn);
    assert_eq!(env().mem.read_u32(env().data).unwrap(), 2);
    // The baseline CPU has no SSE3: #UD.
    let mut c = cpu(CpuLevel::X86_64);
    c.x87.top = 7;
    c.x87.st[7] = 0x4000_b000_0000_0000_0000;
    c.x87.ftw = 0x3fff;
    assert!(matches!(
        exec(&mut c, &insn),
        Some(Exception::InvalidOpcode(_))
    ));
}
