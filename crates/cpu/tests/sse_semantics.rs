//! Unit tests for the SSE/SSE2/MMX instruction semantics. Expected values are worked out by
//! hand from the SDM's definitions (or computed with Rust's own IEEE arithmetic, which is
//! independent of the emulator), never taken from the emulator's output.

mod common;

use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use common::Env;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The data pages of `Env` and, after them, an unmapped page.
struct SseEnv {
    env: Env,
    hole: u64,
}

impl std::ops::Deref for SseEnv {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

fn env() -> &'static SseEnv {
    static ENV: OnceLock<SseEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let env = Env::new(3);
        let hole = env.data + 2 * 4096;
        env.mem.unmap(hole, 4096).expect("unmap");
        SseEnv { env, hole }
    })
}

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh CPU whose RAX points at the (zeroed) data area.
fn cpu() -> Cpu {
    let e = env();
    e.mem.write_bytes(e.data, &[0u8; 8192]).unwrap();
    let mut c = Cpu::new(e.mem.clone(), Arc::new(CpuConfig::default()));
    c.gpr[0] = e.data;
    c
}

/// Executes one instruction; returns the exception it raised, if any.
fn exec(c: &mut Cpu, code: &[u8]) -> Option<Exception> {
    let e = env();
    let mut buf = code.to_vec();
    buf.resize(16, 0x90);
    e.mem.write_bytes(e.code, &buf).unwrap();
    c.rip = e.code;
    match Interpreter::new().step(c) {
        None => {
            assert_eq!(c.rip, e.code + code.len() as u64, "rip after {code:02x?}");
            None
        }
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

/// ModRM for two registers.
const fn rr(reg: u8, rm: u8) -> u8 {
    0xc0 | (reg << 3) | rm
}

/// ModRM for `reg, [rax]`.
const fn mrax(reg: u8) -> u8 {
    reg << 3
}

fn x(c: &Cpu, r: usize) -> u128 {
    c.sse.xmm[r]
}

fn f32x4(v: [f32; 4]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |a, (k, f)| a | (f.to_bits() as u128) << (32 * k))
}

fn u32x4(v: [u32; 4]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |a, (k, f)| a | (*f as u128) << (32 * k))
}

fn f64x2(lo: f64, hi: f64) -> u128 {
    lo.to_bits() as u128 | (hi.to_bits() as u128) << 64
}

fn u16x8(v: [u16; 8]) -> u128 {
    v.iter()
        .enumerate()
        .fold(0, |a, (k, f)| a | (*f as u128) << (16 * k))
}

fn bytes(v: [u8; 16]) -> u128 {
    u128::from_le_bytes(v)
}

const MXCSR_DEFAULT: u32 = 0x1f80;
const IE: u32 = 1;
const DE: u32 = 2;
const ZE: u32 = 4;
const UE: u32 = 0x10;
const PE: u32 = 0x20;

// ---------------------------------------------------------------------------------------------
// Moves and alignment

#[test]
fn movaps_aligned_and_misaligned() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env()
        .mem
        .write_u128(d + 16, 0x0011_2233_4455_6677_8899_aabb_ccdd_eeffu128)
        .unwrap();
    c.gpr[0] = d + 16;
    ok(&mut c, &[0x0f, 0x28, mrax(1)]); // movaps xmm1, [rax]
    assert_eq!(x(&c, 1), 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
    c.gpr[0] = d + 8;
    c.sse.xmm[2] = 5;
    assert_eq!(
        exec(&mut c, &[0x0f, 0x28, mrax(2)]),
        Some(Exception::Alignment)
    );
    assert_eq!(x(&c, 2), 5);
    // movdqa [rax], xmm1 misaligned: #GP and memory untouched.
    assert_eq!(
        exec(&mut c, &[0x66, 0x0f, 0x7f, mrax(1)]),
        Some(Exception::Alignment)
    );
    assert_eq!(env().mem.read_u64(d + 8).unwrap(), 0);
    // movups/movdqu accept any alignment.
    c.gpr[0] = d + 17;
    ok(&mut c, &[0x0f, 0x10, mrax(3)]);
    assert_eq!(x(&c, 3), 0x0000_1122_3344_5566_7788_99aa_bbcc_ddee);
    c.gpr[0] = d + 3;
    ok(&mut c, &[0xf3, 0x0f, 0x7f, mrax(1)]);
    assert_eq!(env().mem.read_u128(d + 3).unwrap(), x(&c, 1));
    // An arithmetic instruction with a misaligned m128 also faults; a scalar one does not.
    c.gpr[0] = d + 4;
    assert_eq!(
        exec(&mut c, &[0x66, 0x0f, 0xfe, mrax(1)]),
        Some(Exception::Alignment)
    );
    assert_eq!(exec(&mut c, &[0xf3, 0x0f, 0x58, mrax(1)]), None);
    // movntdq requires alignment too.
    c.gpr[0] = d + 8;
    assert_eq!(
        exec(&mut c, &[0x66, 0x0f, 0xe7, mrax(1)]),
        Some(Exception::Alignment)
    );
}

#[test]
fn page_fault_is_precise() {
    let _g = lock();
    let mut c = cpu();
    c.gpr[0] = env().hole;
    c.sse.xmm[0] = 77;
    match exec(&mut c, &[0xf3, 0x0f, 0x6f, mrax(0)]) {
        Some(Exception::PageFault(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(x(&c, 0), 77);
}

#[test]
fn movss_movsd_merge_rules() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    c.sse.xmm[0] = u32x4([1, 2, 3, 4]);
    c.sse.xmm[1] = u32x4([9, 8, 7, 6]);
    ok(&mut c, &[0xf3, 0x0f, 0x10, rr(0, 1)]); // movss xmm0, xmm1: low lane only
    assert_eq!(x(&c, 0), u32x4([9, 2, 3, 4]));
    env().mem.write_u64(d, 0xdead_beef_1234_5678).unwrap();
    ok(&mut c, &[0xf3, 0x0f, 0x10, mrax(0)]); // movss xmm0, [rax]: zero upper
    assert_eq!(x(&c, 0), 0x1234_5678);
    c.sse.xmm[2] = u32x4([1, 2, 3, 4]);
    ok(&mut c, &[0xf2, 0x0f, 0x10, mrax(2)]); // movsd xmm2, [rax]
    assert_eq!(x(&c, 2), 0xdead_beef_1234_5678);
    c.sse.xmm[3] = u32x4([0x11, 0x22, 0x33, 0x44]);
    ok(&mut c, &[0xf2, 0x0f, 0x11, mrax(3)]); // movsd [rax], xmm3
    assert_eq!(env().mem.read_u128(d).unwrap(), 0x22_0000_0011);
    ok(&mut c, &[0xf3, 0x0f, 0x11, mrax(1)]); // movss [rax], xmm1: 4 bytes only
    assert_eq!(env().mem.read_u64(d).unwrap(), 0x22_0000_0009);
}

#[test]
fn movd_movq_zero_extend() {
    let _g = lock();
    let mut c = cpu();
    c.gpr[3] = 0xffff_ffff_8000_0001;
    c.sse.xmm[4] = !0;
    ok(&mut c, &[0x66, 0x0f, 0x6e, rr(4, 3)]); // movd xmm4, ebx
    assert_eq!(x(&c, 4), 0x8000_0001);
    c.sse.xmm[4] = !0;
    ok(&mut c, &[0x66, 0x48, 0x0f, 0x6e, rr(4, 3)]); // movq xmm4, rbx
    assert_eq!(x(&c, 4), 0xffff_ffff_8000_0001);
    c.sse.xmm[5] = 0x1111_2222_3333_4444_5555_6666_7777_8888;
    ok(&mut c, &[0x66, 0x0f, 0x7e, rr(5, 1)]); // movd ecx, xmm5
    assert_eq!(c.gpr[1], 0x7777_8888);
    ok(&mut c, &[0x66, 0x48, 0x0f, 0x7e, rr(5, 2)]); // movq rdx, xmm5
    assert_eq!(c.gpr[2], 0x5555_6666_7777_8888);
    c.sse.xmm[6] = !0;
    ok(&mut c, &[0xf3, 0x0f, 0x7e, rr(6, 5)]); // movq xmm6, xmm5
    assert_eq!(x(&c, 6), 0x5555_6666_7777_8888);
    c.sse.xmm[7] = !0;
    ok(&mut c, &[0x66, 0x0f, 0xd6, rr(5, 7)]); // movq xmm7, xmm5 (66 0F D6 form)
    assert_eq!(x(&c, 7), 0x5555_6666_7777_8888);
}

#[test]
fn partial_moves() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env().mem.write_u64(d, 0xaaaa_aaaa_bbbb_bbbb).unwrap();
    c.sse.xmm[0] = 0x1111_1111_1111_1111_2222_2222_2222_2222;
    ok(&mut c, &[0x0f, 0x16, mrax(0)]); // movhps xmm0, [rax]
    assert_eq!(x(&c, 0), 0xaaaa_aaaa_bbbb_bbbb_2222_2222_2222_2222);
    ok(&mut c, &[0x66, 0x0f, 0x12, mrax(0)]); // movlpd xmm0, [rax]
    assert_eq!(x(&c, 0), 0xaaaa_aaaa_bbbb_bbbb_aaaa_aaaa_bbbb_bbbb);
    c.sse.xmm[1] = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;
    c.gpr[0] = d + 8;
    ok(&mut c, &[0x0f, 0x17, mrax(1)]); // movhps [rax], xmm1
    assert_eq!(env().mem.read_u64(d + 8).unwrap(), 0x1234_5678_9abc_def0);
    c.sse.xmm[2] = 0x5555_5555_5555_5555_6666_6666_6666_6666;
    ok(&mut c, &[0x0f, 0x12, rr(2, 1)]); // movhlps xmm2, xmm1
    assert_eq!(x(&c, 2), 0x5555_5555_5555_5555_1234_5678_9abc_def0);
    ok(&mut c, &[0x0f, 0x16, rr(2, 1)]); // movlhps xmm2, xmm1
    assert_eq!(x(&c, 2), 0x0fed_cba9_8765_4321_1234_5678_9abc_def0);
}

#[test]
fn sign_masks() {
    let _g = lock();
    let mut c = cpu();
    c.sse.xmm[1] = f32x4([-1.0, 2.0, -0.0, 4.0]);
    c.gpr[0] = !0;
    ok(&mut c, &[0x0f, 0x50, rr(0, 1)]); // movmskps eax, xmm1
    assert_eq!(c.gpr[0], 0b0101);
    c.sse.xmm[1] = f64x2(1.0, -3.0);
    ok(&mut c, &[0x66, 0x0f, 0x50, rr(0, 1)]); // movmskpd eax, xmm1
    assert_eq!(c.gpr[0], 0b10);
    c.sse.xmm[1] = bytes([
        0x80, 0, 0xff, 0x7f, 0, 0, 0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0xc0,
    ]);
    ok(&mut c, &[0x66, 0x0f, 0xd7, rr(0, 1)]); // pmovmskb eax, xmm1
    assert_eq!(c.gpr[0], 0x8085);
}

#[test]
fn maskmovdqu_and_movnti() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env().mem.write_u128(d, u128::MAX).unwrap();
    c.gpr[7] = d;
    c.sse.xmm[0] = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    c.sse.xmm[1] = bytes([0x80, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]);
    ok(&mut c, &[0x66, 0x0f, 0xf7, rr(0, 1)]); // maskmovdqu xmm0, xmm1
    let mut want = [0xffu8; 16];
    want[0] = 1;
    want[3] = 4;
    want[15] = 16;
    assert_eq!(env().mem.read_u128(d).unwrap(), u128::from_le_bytes(want));
    // A selected byte on an unmapped page: nothing at all is written.
    c.gpr[7] = env().hole - 8;
    env().mem.write_u64(env().hole - 8, 0).unwrap();
    assert!(matches!(
        exec(&mut c, &[0x66, 0x0f, 0xf7, rr(0, 1)]),
        Some(Exception::PageFault(_))
    ));
    assert_eq!(env().mem.read_u64(env().hole - 8).unwrap(), 0);
    c.gpr[3] = 0x0102_0304_0506_0708;
    ok(&mut c, &[0x48, 0x0f, 0xc3, mrax(3)]); // movnti [rax], rbx
    assert_eq!(env().mem.read_u64(d).unwrap(), 0x0102_0304_0506_0708);
}

#[test]
fn ldmxcsr_stmxcsr() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env().mem.write_u32(d, 0x7f80 | 0x40).unwrap(); // RZ... plus DAZ
    ok(&mut c, &[0x0f, 0xae, mrax(2)]);
    assert_eq!(c.sse.mxcsr, 0x7fc0);
    env().mem.write_u32(d, 0x1_1f80).unwrap(); // reserved bit 16
    assert_eq!(
        exec(&mut c, &[0x0f, 0xae, mrax(2)]),
        Some(Exception::GeneralProtection)
    );
    assert_eq!(c.sse.mxcsr, 0x7fc0);
    ok(&mut c, &[0x0f, 0xae, mrax(3)]); // stmxcsr [rax]
    assert_eq!(env().mem.read_u32(d).unwrap(), 0x7fc0);
}

// ---------------------------------------------------------------------------------------------
// Packed integers

/// Runs `66 0F op /r` with xmm0 = a, xmm1 = b; returns xmm0.
fn int_op(op: u8, a: u128, b: u128) -> u128 {
    let mut c = cpu();
    c.sse.xmm[0] = a;
    c.sse.xmm[1] = b;
    ok(&mut c, &[0x66, 0x0f, op, rr(0, 1)]);
    x(&c, 0)
}

#[test]
fn packed_add_sub() {
    let _g = lock();
    let a = bytes([0xff, 0x7f, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe]);
    let b = bytes([0x01, 0x01, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03]);
    assert_eq!(
        int_op(0xfc, a, b), // paddb
        bytes([0, 0x80, 0x7f, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01])
    );
    assert_eq!(
        int_op(0xec, a, b), // paddsb: -1+1=0, 127+1 sat 127, -128-1 sat -128
        bytes([0, 0x7f, 0x80, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01])
    );
    assert_eq!(
        int_op(0xdc, a, b), // paddusb
        bytes([0xff, 0x80, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff])
    );
    assert_eq!(
        int_op(0xd8, b, a), // psubusb b - a
        bytes([0, 0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    );
    let w1 = u16x8([0x7fff, 0x8000, 5, 0xffff, 0, 0, 0, 1]);
    let w2 = u16x8([1, 1, 7, 1, 0, 0, 0, 0xffff]);
    assert_eq!(
        int_op(0xed, w1, w2),
        u16x8([0x7fff, 0x8001, 12, 0, 0, 0, 0, 0])
    ); // paddsw
    assert_eq!(
        int_op(0xe9, w1, w2),
        u16x8([0x7ffe, 0x8000, 0xfffe, 0xfffe, 0, 0, 0, 2])
    ); // psubsw
    assert_eq!(
        int_op(0xdd, w1, w2),
        u16x8([0x8000, 0x8001, 12, 0xffff, 0, 0, 0, 0xffff])
    ); // paddusw
    assert_eq!(
        int_op(0xd9, w1, w2),
        u16x8([0x7ffe, 0x7fff, 0, 0xfffe, 0, 0, 0, 0])
    ); // psubusw
    assert_eq!(
        int_op(0xd4, u32x4([!0, !0, 1, 0]), u32x4([1, 0, 2, 0])), // paddq carries within lane
        u32x4([0, 0, 3, 0])
    );
    assert_eq!(
        int_op(0xfa, u32x4([0, 5, 0, 0]), u32x4([1, 5, 0, 0])),
        u32x4([!0, 0, 0, 0])
    );
    assert_eq!(int_op(0xfb, 0, 1), u64::MAX as u128); // psubq
}

#[test]
fn packed_multiply() {
    let _g = lock();
    let a = u16x8([3, 0xffff, 0x8000, 300, 0, 0, 0, 0x7fff]);
    let b = u16x8([5, 0xffff, 0x8000, 300, 0, 0, 0, 2]);
    assert_eq!(
        int_op(0xd5, a, b),
        u16x8([15, 1, 0, 0x5f90, 0, 0, 0, 0xfffe])
    ); // pmullw
       // pmulhw: -1*-1 = 1 -> 0; -32768^2 = 0x4000_0000 -> 0x4000; 90000 = 0x15f90 -> 1.
    assert_eq!(int_op(0xe5, a, b), u16x8([0, 0, 0x4000, 1, 0, 0, 0, 0])); // pmulhw
                                                                          // pmulhuw: 0xffff^2 = 0xfffe_0001; 0x8000^2 = 0x4000_0000; 0x7fff*2 = 0xfffe.
    assert_eq!(
        int_op(0xe4, a, b),
        u16x8([0, 0xfffe, 0x4000, 1, 0, 0, 0, 0])
    ); // pmulhuw
    assert_eq!(
        int_op(
            0xf4,
            u32x4([0xffff_ffff, 7, 3, 9]),
            u32x4([0xffff_ffff, 8, 4, 9])
        ), // pmuludq
        0xffff_fffe_0000_0001u128 | (12u128 << 64)
    );
    // pmaddwd: (1*2 + -1*3) = -1; 0x8000*0x8000*2 wraps to 0x8000_0000.
    assert_eq!(
        int_op(
            0xf5,
            u16x8([1, 0xffff, 0x8000, 0x8000, 0, 0, 10, 10]),
            u16x8([2, 3, 0x8000, 0x8000, 0, 0, 10, 10])
        ),
        u32x4([0xffff_ffff, 0x8000_0000, 0, 200])
    );
}

#[test]
fn packed_logic_compare_minmax() {
    let _g = lock();
    let a = 0xf0f0_0000_ffff_1234_5678_9abc_def0_0f0fu128;
    let b = 0xff00_ff00_00ff_4321_8765_cba9_0fed_f0f0u128;
    assert_eq!(int_op(0xdb, a, b), a & b);
    assert_eq!(int_op(0xdf, a, b), !a & b);
    assert_eq!(int_op(0xeb, a, b), a | b);
    assert_eq!(int_op(0xef, a, b), a ^ b);
    let p = bytes([1, 2, 0x80, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    let q = bytes([1, 3, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
    assert_eq!(
        int_op(0x74, p, q), // pcmpeqb
        bytes([0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0])
    );
    assert_eq!(
        int_op(0x64, p, q), // pcmpgtb (signed): 0x80 < 0x7f, 0x7f > 0x80
        bytes([0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff])
    );
    assert_eq!(
        int_op(0x66, u32x4([1, 0x8000_0000, 5, 5]), u32x4([0, 1, 5, 6])),
        u32x4([!0, 0, 0, 0])
    );
    assert_eq!(
        int_op(
            0x75,
            u16x8([1, 2, 0, 0, 0, 0, 0, 0]),
            u16x8([1, 3, 0, 0, 0, 0, 0, 0])
        ),
        !0u128 ^ (0xffff << 16)
    );
    assert_eq!(
        int_op(0xda, p, q), // pminub
        bytes([1, 2, 0x7f, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8])
    );
    assert_eq!(
        int_op(0xde, p, q), // pmaxub
        bytes([1, 3, 0x80, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
    );
    let w1 = u16x8([0x8000, 5, 0xffff, 0, 0, 0, 0, 0]);
    let w2 = u16x8([0x7fff, 6, 1, 0, 0, 0, 0, 0]);
    assert_eq!(
        int_op(0xea, w1, w2),
        u16x8([0x8000, 5, 0xffff, 0, 0, 0, 0, 0])
    ); // pminsw
    assert_eq!(int_op(0xee, w1, w2), u16x8([0x7fff, 6, 1, 0, 0, 0, 0, 0])); // pmaxsw
    assert_eq!(
        int_op(0xe0, p, q), // pavgb: (a + b + 1) >> 1
        bytes([1, 3, 0x80, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
    );
    assert_eq!(
        int_op(
            0xe3,
            u16x8([0xffff, 1, 0, 0, 0, 0, 0, 0]),
            u16x8([0xffff, 2, 0, 0, 0, 0, 0, 0])
        ),
        u16x8([0xffff, 2, 0, 0, 0, 0, 0, 0])
    );
    // psadbw: |1-1|+|2-3|+|0x80-0x7f|+|0x7f-0x80| = 3 in the low qword; |9-8| = 1 in the high.
    assert_eq!(int_op(0xf6, p, q), 3 | (1u128 << 64));
}

#[test]
fn packed_shifts() {
    let _g = lock();
    let w = u16x8([0x8001, 0x4000, 0xffff, 1, 0, 0, 0, 0x1234]);
    let mut c = cpu();
    let run = |c: &mut Cpu, code: &[u8], v: u128| {
        c.sse.xmm[2] = v;
        ok(c, code);
        x(c, 2)
    };
    // Immediate forms: 66 0F 71 /6 (psllw), /2 (psrlw), /4 (psraw).
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0x71, rr(6, 2), 1], w),
        u16x8([2, 0x8000, 0xfffe, 2, 0, 0, 0, 0x2468])
    );
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0x71, rr(2, 2), 15], w),
        u16x8([1, 0, 1, 0, 0, 0, 0, 0])
    );
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0x71, rr(4, 2), 14], w),
        u16x8([0xfffe, 1, 0xffff, 0, 0, 0, 0, 0])
    );
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0x71, rr(4, 2), 200], w),
        u16x8([0xffff, 0, 0xffff, 0, 0, 0, 0, 0])
    );
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0x71, rr(6, 2), 16], w), 0);
    // Dwords and qwords.
    assert_eq!(
        run(
            &mut c,
            &[0x66, 0x0f, 0x72, rr(4, 2), 4],
            u32x4([0x8000_0000, 0x10, 0, 0])
        ),
        u32x4([0xf800_0000, 1, 0, 0])
    );
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0x73, rr(6, 2), 63], 1 | (3u128 << 64)),
        (1u128 << 63) | (1u128 << 127)
    );
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0x73, rr(2, 2), 64], !0), 0);
    // Byte shifts of the whole register.
    let v = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0x73, rr(7, 2), 3], v), v << 24);
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0x73, rr(3, 2), 5], v), v >> 40);
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0x73, rr(3, 2), 16], v), 0);
    // Count from a register: the whole low quadword counts.
    c.sse.xmm[3] = 3;
    assert_eq!(
        run(&mut c, &[0x66, 0x0f, 0xf1, rr(2, 3)], w),
        u16x8([8, 0, 0xfff8, 8, 0, 0, 0, 0x91a0])
    );
    c.sse.xmm[3] = 1u128 << 32 | 1;
    assert_eq!(run(&mut c, &[0x66, 0x0f, 0xd1, rr(2, 3)], w), 0);
    c.sse.xmm[3] = 1u128 << 64 | 1; // the high quadword is ignored
    assert_eq!(
        run(
            &mut c,
            &[0x66, 0x0f, 0xe2, rr(2, 3)],
            u32x4([0x8000_0000, 2, 0, 0])
        ),
        u32x4([0xc000_0000, 1, 0, 0])
    );
}

#[test]
fn unpack_pack_shuffle() {
    let _g = lock();
    let a = bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    let b = bytes([
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    ]);
    assert_eq!(
        int_op(0x60, a, b),
        bytes([0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23])
    );
    assert_eq!(
        int_op(0x68, a, b),
        bytes([8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31])
    );
    assert_eq!(
        int_op(0x61, a, b),
        bytes([0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23])
    );
    assert_eq!(
        int_op(0x62, a, b),
        bytes([0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23])
    );
    assert_eq!(
        int_op(0x6c, a, b),
        bytes([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23])
    );
    assert_eq!(
        int_op(0x6d, a, b),
        bytes([8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31])
    );
    let w1 = u16x8([1, 0xffff, 0x7fff, 0x8000, 127, 128, 0xff80, 0xff7f]);
    let w2 = u16x8([255, 256, 0, 0xfffe, 0, 0, 0, 0]);
    assert_eq!(
        int_op(0x63, w1, w2), // packsswb
        bytes([1, 0xff, 0x7f, 0x80, 127, 127, 0x80, 0x80, 127, 127, 0, 0xfe, 0, 0, 0, 0])
    );
    assert_eq!(
        int_op(0x67, w1, w2), // packuswb
        bytes([1, 0, 0xff, 0, 127, 128, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0])
    );
    assert_eq!(
        int_op(
            0x6b,
            u32x4([1, 0xffff_ffff, 0x10000, 0x8000_0000]),
            u32x4([0x7fff, 0x8000, 0xffff_8000, 0xffff_7fff])
        ),
        u16x8([1, 0xffff, 0x7fff, 0x8000, 0x7fff, 0x7fff, 0x8000, 0x8000])
    );
    let mut c = cpu();
    c.sse.xmm[1] = u32x4([10, 11, 12, 13]);
    ok(&mut c, &[0x66, 0x0f, 0x70, rr(0, 1), 0x1b]); // pshufd xmm0, xmm1, 0b00011011
    assert_eq!(x(&c, 0), u32x4([13, 12, 11, 10]));
    c.sse.xmm[1] = u16x8([0, 1, 2, 3, 4, 5, 6, 7]);
    ok(&mut c, &[0xf2, 0x0f, 0x70, rr(0, 1), 0x00]); // pshuflw
    assert_eq!(x(&c, 0), u16x8([0, 0, 0, 0, 4, 5, 6, 7]));
    ok(&mut c, &[0xf3, 0x0f, 0x70, rr(0, 1), 0xe4 ^ 0xff]); // pshufhw, 0b00011011
    assert_eq!(x(&c, 0), u16x8([0, 1, 2, 3, 7, 6, 5, 4]));
    c.sse.xmm[0] = u32x4([0, 1, 2, 3]);
    c.sse.xmm[1] = u32x4([4, 5, 6, 7]);
    ok(&mut c, &[0x0f, 0xc6, rr(0, 1), 0b01_00_11_10]); // shufps
    assert_eq!(x(&c, 0), u32x4([2, 3, 4, 5]));
    c.sse.xmm[0] = u32x4([0, 1, 2, 3]);
    ok(&mut c, &[0x66, 0x0f, 0xc6, rr(0, 1), 0b01]); // shufpd
    assert_eq!(x(&c, 0), u32x4([2, 3, 4, 5]));
    c.sse.xmm[0] = u32x4([0, 1, 2, 3]);
    ok(&mut c, &[0x0f, 0x15, rr(0, 1)]); // unpckhps
    assert_eq!(x(&c, 0), u32x4([2, 6, 3, 7]));
    c.sse.xmm[0] = u32x4([0, 1, 2, 3]);
    ok(&mut c, &[0x0f, 0x14, rr(0, 1)]); // unpcklps
    assert_eq!(x(&c, 0), u32x4([0, 4, 1, 5]));
}

#[test]
fn pextrw_pinsrw() {
    let _g = lock();
    let mut c = cpu();
    c.sse.xmm[1] = u16x8([0, 1, 2, 3, 4, 5, 6, 0xfedc]);
    c.gpr[0] = !0;
    ok(&mut c, &[0x66, 0x0f, 0xc5, rr(0, 1), 15]); // pextrw eax, xmm1, 15 (uses 15 & 7)
    assert_eq!(c.gpr[0], 0xfedc);
    c.gpr[2] = 0xabcd_1234;
    ok(&mut c, &[0x66, 0x0f, 0xc4, rr(1, 2), 2]); // pinsrw xmm1, edx, 2
    assert_eq!(x(&c, 1), u16x8([0, 1, 0x1234, 3, 4, 5, 6, 0xfedc]));
}

// ---------------------------------------------------------------------------------------------
// Floating point

fn fp(c: &mut Cpu, code: &[u8], a: u128, b: u128) -> u128 {
    c.sse.xmm[0] = a;
    c.sse.xmm[1] = b;
    ok(c, code);
    x(c, 0)
}

#[test]
fn float_arithmetic_matches_ieee() {
    let _g = lock();
    let mut c = cpu();
    let a = [1.5f32, -2.25, 1e30, 3.0];
    let b = [0.1f32, 4.0, 1e30, 7.0];
    let pairs = |f: fn(f32, f32) -> f32| {
        f32x4([f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3])])
    };
    assert_eq!(
        fp(&mut c, &[0x0f, 0x58, rr(0, 1)], f32x4(a), f32x4(b)),
        pairs(|x, y| x + y)
    );
    assert_eq!(
        fp(&mut c, &[0x0f, 0x5c, rr(0, 1)], f32x4(a), f32x4(b)),
        pairs(|x, y| x - y)
    );
    assert_eq!(
        fp(&mut c, &[0x0f, 0x59, rr(0, 1)], f32x4(a), f32x4(b)),
        pairs(|x, y| x * y)
    );
    assert_eq!(
        fp(&mut c, &[0x0f, 0x5e, rr(0, 1)], f32x4(a), f32x4(b)),
        pairs(|x, y| x / y)
    );
    // 1e30 * 1e30 overflows to +inf: OE and PE; 1.5 + 0.1 is inexact too.
    assert_eq!(c.sse.mxcsr & 0x3f, 0x28 | PE);
    // Scalar forms keep the upper lanes of the destination.
    let r = fp(&mut c, &[0xf3, 0x0f, 0x58, rr(0, 1)], f32x4(a), f32x4(b));
    assert_eq!(r, f32x4([a[0] + b[0], a[1], a[2], a[3]]));
    let r = fp(
        &mut c,
        &[0xf2, 0x0f, 0x5e, rr(0, 1)],
        f64x2(1.0, 9.0),
        f64x2(3.0, 5.0),
    );
    assert_eq!(r, f64x2(1.0 / 3.0, 9.0));
    let r = fp(&mut c, &[0x66, 0x0f, 0x51, rr(0, 1)], 0, f64x2(2.0, 1e-300));
    assert_eq!(r, f64x2(2f64.sqrt(), 1e-300f64.sqrt()));
    let r = fp(
        &mut c,
        &[0x66, 0x0f, 0x59, rr(0, 1)],
        f64x2(0.1, -3.0),
        f64x2(0.2, 1e10),
    );
    assert_eq!(r, f64x2(0.1 * 0.2, -3.0e10));
    // From memory.
    let d = env().data;
    env().mem.write_u32(d, 2.5f32.to_bits()).unwrap();
    let r = fp(
        &mut c,
        &[0xf3, 0x0f, 0x59, mrax(0)],
        f32x4([3.0, 1.0, 1.0, 1.0]),
        0,
    );
    assert_eq!(r, f32x4([7.5, 1.0, 1.0, 1.0]));
}

#[test]
fn rounding_modes() {
    let _g = lock();
    let mut c = cpu();
    let third = |c: &mut Cpu, rc: u32, sign: f32| {
        c.sse.mxcsr = MXCSR_DEFAULT | rc << 13;
        fp(
            c,
            &[0xf3, 0x0f, 0x5e, rr(0, 1)],
            f32x4([sign, 0.0, 0.0, 0.0]),
            f32x4([3.0, 0.0, 0.0, 0.0]),
        ) as u32
    };
    assert_eq!(third(&mut c, 0, 1.0), 0x3eaa_aaab); // nearest
    assert_eq!(third(&mut c, 1, 1.0), 0x3eaa_aaaa); // down
    assert_eq!(third(&mut c, 2, 1.0), 0x3eaa_aaab); // up
    assert_eq!(third(&mut c, 3, 1.0), 0x3eaa_aaaa); // toward zero
    assert_eq!(third(&mut c, 1, -1.0), 0xbeaa_aaab);
    assert_eq!(third(&mut c, 2, -1.0), 0xbeaa_aaaa);
    assert_eq!(c.sse.mxcsr & 0x3f, PE);
    // cvtss2si follows RC; cvttss2si always truncates.
    let cvt = |c: &mut Cpu, rc: u32, v: f32, code: &[u8]| {
        c.sse.mxcsr = MXCSR_DEFAULT | rc << 13;
        c.sse.xmm[1] = v.to_bits() as u128;
        c.gpr[0] = !0;
        ok(c, code);
        c.gpr[0]
    };
    let cvtss2si = [0xf3, 0x0f, 0x2d, rr(0, 1)];
    let cvttss2si = [0xf3, 0x0f, 0x2c, rr(0, 1)];
    assert_eq!(cvt(&mut c, 0, 2.5, &cvtss2si), 2);
    assert_eq!(cvt(&mut c, 0, 3.5, &cvtss2si), 4);
    assert_eq!(cvt(&mut c, 1, -2.5, &cvtss2si), 0xffff_fffd); // -3, zero-extended
    assert_eq!(cvt(&mut c, 2, 2.1, &cvtss2si), 3);
    assert_eq!(cvt(&mut c, 2, -2.7, &cvttss2si), 0xffff_fffe);
    assert_eq!(cvt(&mut c, 0, 3e9, &cvtss2si), 0x8000_0000);
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    assert_eq!(
        cvt(&mut c, 0, -3e9, &[0xf3, 0x48, 0x0f, 0x2d, rr(0, 1)]),
        -3_000_000_000i64 as u64
    );
    // cvtsd2si r64 of NaN: integer indefinite.
    c.sse.mxcsr = MXCSR_DEFAULT;
    c.sse.xmm[1] = f64::NAN.to_bits() as u128;
    ok(&mut c, &[0xf2, 0x48, 0x0f, 0x2d, rr(0, 1)]);
    assert_eq!(c.gpr[0], 0x8000_0000_0000_0000);
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    c.sse.xmm[1] = f64x2(-7.9, 0.0);
    ok(&mut c, &[0xf2, 0x48, 0x0f, 0x2c, rr(0, 1)]); // cvttsd2si rax
    assert_eq!(c.gpr[0], -7i64 as u64);
}

#[test]
fn nan_rules_and_flags() {
    let _g = lock();
    let mut c = cpu();
    let addss = [0xf3, 0x0f, 0x58, rr(0, 1)];
    // inf + -inf: the default NaN, IE only.
    let r = fp(
        &mut c,
        &addss,
        f32::INFINITY.to_bits() as u128,
        f32::NEG_INFINITY.to_bits() as u128,
    );
    assert_eq!(r as u32, 0xffc0_0000);
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    // Two QNaNs: the first (destination) operand's.
    c.sse.mxcsr = MXCSR_DEFAULT;
    assert_eq!(
        fp(&mut c, &addss, 0x7fc0_0001, 0xffc0_0002) as u32,
        0x7fc0_0001
    );
    assert_eq!(c.sse.mxcsr & 0x3f, 0);
    // A QNaN and a number: the NaN, whichever side it is on.
    assert_eq!(
        fp(&mut c, &addss, 1.0f32.to_bits() as u128, 0xffc0_0002) as u32,
        0xffc0_0002
    );
    // An SNaN is quieted and raises IE.
    assert_eq!(
        fp(&mut c, &addss, 1.0f32.to_bits() as u128, 0x7f80_0001) as u32,
        0x7fc0_0001
    );
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    // Double: default NaN 0xfff8...; 0/0.
    c.sse.mxcsr = MXCSR_DEFAULT;
    let r = fp(&mut c, &[0xf2, 0x0f, 0x5e, rr(0, 1)], 0, 0);
    assert_eq!(r as u64, 0xfff8_0000_0000_0000);
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    // 1/0: +inf and ZE.
    c.sse.mxcsr = MXCSR_DEFAULT;
    let r = fp(
        &mut c,
        &[0xf2, 0x0f, 0x5e, rr(0, 1)],
        1.0f64.to_bits() as u128,
        0,
    );
    assert_eq!(r as u64, f64::INFINITY.to_bits());
    assert_eq!(c.sse.mxcsr & 0x3f, ZE);
    // Flags are sticky.
    let _ = fp(&mut c, &addss, 1.0f32.to_bits() as u128, 0x7f80_0001);
    assert_eq!(c.sse.mxcsr & 0x3f, ZE | IE);
    // minss/maxss return the second operand when either is NaN, and for +0 vs -0.
    c.sse.mxcsr = MXCSR_DEFAULT;
    let minss = [0xf3, 0x0f, 0x5d, rr(0, 1)];
    assert_eq!(
        fp(&mut c, &minss, 0x7fc0_0000, 1.0f32.to_bits() as u128) as u32,
        1.0f32.to_bits()
    );
    assert_eq!(
        fp(&mut c, &minss, 1.0f32.to_bits() as u128, 0x7fc0_0000) as u32,
        0x7fc0_0000
    );
    assert_eq!(fp(&mut c, &minss, 0, 0x8000_0000) as u32, 0x8000_0000);
    assert_eq!(
        fp(&mut c, &[0xf3, 0x0f, 0x5f, rr(0, 1)], 0x8000_0000, 0) as u32,
        0
    );
    assert_eq!(
        fp(
            &mut c,
            &minss,
            2.0f32.to_bits() as u128,
            1.0f32.to_bits() as u128
        ) as u32,
        1.0f32.to_bits()
    );
}

#[test]
fn denormals_ftz_daz() {
    let _g = lock();
    let mut c = cpu();
    let mulss = [0xf3, 0x0f, 0x59, rr(0, 1)];
    let tiny_a = 0x0d80_0000u128; // 2^-100
    let tiny_b = 0x3080_0000u128; // 2^-30
                                  // 2^-130 is an exact denormal: 1 << 19; no flags (masked UE needs inexactness).
    assert_eq!(fp(&mut c, &mulss, tiny_a, tiny_b) as u32, 0x0008_0000);
    assert_eq!(c.sse.mxcsr & 0x3f, 0);
    // 2^-100 * 2^-60 = 2^-160 is below the smallest denormal: rounds to 0, UE and PE.
    let r = fp(&mut c, &mulss, tiny_a, 0x2180_0000);
    assert_eq!(r as u32, 0);
    assert_eq!(c.sse.mxcsr & 0x3f, UE | PE);
    // FTZ flushes an inexact tiny result to zero.
    c.sse.mxcsr = MXCSR_DEFAULT | 0x8000;
    let third_tiny = fp(
        &mut c,
        &[0xf3, 0x0f, 0x5e, rr(0, 1)],
        0x0080_0000,
        3.0f32.to_bits() as u128,
    );
    assert_eq!(third_tiny as u32, 0);
    assert_eq!(c.sse.mxcsr & 0x3f, UE | PE);
    // A denormal input raises DE, unless DAZ treats it as zero.
    c.sse.mxcsr = MXCSR_DEFAULT;
    assert_eq!(fp(&mut c, &[0xf3, 0x0f, 0x58, rr(0, 1)], 1, 0) as u32, 1);
    assert_eq!(c.sse.mxcsr & 0x3f, DE);
    c.sse.mxcsr = MXCSR_DEFAULT | 0x40;
    assert_eq!(fp(&mut c, &[0xf3, 0x0f, 0x58, rr(0, 1)], 1, 0) as u32, 0);
    assert_eq!(c.sse.mxcsr & 0x3f, 0);
}

#[test]
fn unmasked_exceptions_fault_without_committing() {
    let _g = lock();
    let mut c = cpu();
    // ZE unmasked: 1/0 faults, xmm0 keeps its value, ZE recorded.
    c.sse.mxcsr = MXCSR_DEFAULT & !0x200;
    c.sse.xmm[0] = 1.0f32.to_bits() as u128;
    c.sse.xmm[1] = 0;
    assert_eq!(
        exec(&mut c, &[0xf3, 0x0f, 0x5e, rr(0, 1)]),
        Some(Exception::SimdFault(ZE))
    );
    assert_eq!(x(&c, 0), 1.0f32.to_bits() as u128);
    assert_eq!(c.sse.mxcsr & 0x3f, ZE);
    // A masked exception alone does not fault.
    c.sse.mxcsr = MXCSR_DEFAULT & !0x200;
    assert_eq!(exec(&mut c, &[0xf3, 0x0f, 0x58, rr(0, 0)]), None);
    // PE unmasked: 1/3 faults, packed destination untouched.
    c.sse.mxcsr = MXCSR_DEFAULT & !0x1000;
    c.sse.xmm[0] = f32x4([1.0, 1.0, 1.0, 1.0]);
    c.sse.xmm[1] = f32x4([1.0, 1.0, 3.0, 1.0]);
    assert_eq!(
        exec(&mut c, &[0x0f, 0x5e, rr(0, 1)]),
        Some(Exception::SimdFault(PE))
    );
    assert_eq!(x(&c, 0), f32x4([1.0, 1.0, 1.0, 1.0]));
    // UE unmasked: even an exact tiny result traps.
    c.sse.mxcsr = MXCSR_DEFAULT & !0x800;
    c.sse.xmm[0] = 0x0d80_0000;
    c.sse.xmm[1] = 0x3080_0000;
    assert!(
        matches!(exec(&mut c, &[0xf3, 0x0f, 0x59, rr(0, 1)]), Some(Exception::SimdFault(f)) if f & UE != 0)
    );
    assert_eq!(x(&c, 0), 0x0d80_0000);
    // IE unmasked: comiss with a QNaN faults, ucomiss does not.
    c.sse.mxcsr = MXCSR_DEFAULT & !0x80;
    c.sse.xmm[0] = 0x7fc0_0000;
    c.sse.xmm[1] = 0;
    assert_eq!(
        exec(&mut c, &[0x0f, 0x2f, rr(0, 1)]),
        Some(Exception::SimdFault(IE))
    );
    assert_eq!(exec(&mut c, &[0x0f, 0x2e, rr(0, 1)]), None);
}

#[test]
fn compares() {
    let _g = lock();
    let mut c = cpu();
    let a = f32x4([1.0, 2.0, f32::NAN, 3.0]);
    let b = f32x4([2.0, 2.0, 1.0, 1.0]);
    const T: u32 = !0;
    let want = [
        [0, T, 0, 0], // eq
        [T, 0, 0, 0], // lt
        [T, T, 0, 0], // le
        [0, 0, T, 0], // unord
        [T, 0, T, T], // neq
        [0, T, T, T], // nlt
        [0, 0, T, T], // nle
        [T, T, 0, T], // ord
    ];
    for (p, w) in want.iter().enumerate() {
        assert_eq!(
            fp(&mut c, &[0x0f, 0xc2, rr(0, 1), p as u8], a, b),
            u32x4(*w),
            "cmpps {p}"
        );
    }
    // cmpsd keeps the upper lane.
    let r = fp(
        &mut c,
        &[0xf2, 0x0f, 0xc2, rr(0, 1), 1],
        f64x2(1.0, 5.0),
        f64x2(2.0, 0.0),
    );
    assert_eq!(r, (u64::MAX as u128) | (5.0f64.to_bits() as u128) << 64);
    // comiss / ucomiss flags.
    let comi = |c: &mut Cpu, code: &[u8], a: u128, b: u128| {
        c.sse.xmm[0] = a;
        c.sse.xmm[1] = b;
        c.set_rflags(0x202 | 0x8d5); // every arithmetic flag set
        ok(c, code);
        c.rflags() & 0x8d5
    };
    let comiss = [0x0f, 0x2f, rr(0, 1)];
    let one = 1.0f32.to_bits() as u128;
    let two = 2.0f32.to_bits() as u128;
    assert_eq!(comi(&mut c, &comiss, one, two), 0x01); // less: CF
    assert_eq!(comi(&mut c, &comiss, two, one), 0x00); // greater
    assert_eq!(comi(&mut c, &comiss, one, one), 0x40); // equal: ZF
    c.sse.mxcsr = MXCSR_DEFAULT;
    assert_eq!(
        comi(&mut c, &[0x0f, 0x2e, rr(0, 1)], 0x7fc0_0000, one),
        0x45
    ); // unordered
    assert_eq!(c.sse.mxcsr & 0x3f, 0);
    assert_eq!(comi(&mut c, &comiss, 0x7fc0_0000, one), 0x45);
    assert_eq!(c.sse.mxcsr & 0x3f, IE);
    let comisd = [0x66, 0x0f, 0x2f, rr(0, 1)];
    assert_eq!(comi(&mut c, &comisd, f64x2(-1.0, 0.0), f64x2(-2.0, 0.0)), 0);
}

#[test]
fn conversions() {
    let _g = lock();
    let mut c = cpu();
    c.sse.mxcsr = MXCSR_DEFAULT;
    // cvtsi2sd xmm0, rbx keeps the upper lane.
    c.sse.xmm[0] = f64x2(0.0, 7.0);
    c.gpr[3] = (-5i64) as u64;
    ok(&mut c, &[0xf2, 0x48, 0x0f, 0x2a, rr(0, 3)]);
    assert_eq!(x(&c, 0), f64x2(-5.0, 7.0));
    // cvtsi2ss from a 64-bit integer that is not representable: rounded, PE.
    c.gpr[3] = (1u64 << 40) + 1;
    ok(&mut c, &[0xf3, 0x48, 0x0f, 0x2a, rr(0, 3)]);
    assert_eq!(x(&c, 0) as u32, ((1u64 << 40) as f32).to_bits());
    assert_eq!(c.sse.mxcsr & 0x3f, PE);
    // cvtsi2ss from a 32-bit register uses only 32 bits.
    c.gpr[3] = 0xffff_ffff_ffff_fffe;
    ok(&mut c, &[0xf3, 0x0f, 0x2a, rr(0, 3)]);
    assert_eq!(x(&c, 0) as u32, (-2.0f32).to_bits());
    // cvtss2sd / cvtsd2ss.
    let r = fp(
        &mut c,
        &[0xf3, 0x0f, 0x5a, rr(0, 1)],
        f64x2(0.0, 9.0),
        0.1f32.to_bits() as u128,
    );
    assert_eq!(r, f64x2(0.1f32 as f64, 9.0));
    let r = fp(
        &mut c,
        &[0xf2, 0x0f, 0x5a, rr(0, 1)],
        u32x4([0, 1, 2, 3]),
        f64x2(0.1, 0.0),
    );
    assert_eq!(r, u32x4([(0.1f64 as f32).to_bits(), 1, 2, 3]));
    // cvtps2pd / cvtpd2ps (which zeroes the upper half).
    let r = fp(
        &mut c,
        &[0x0f, 0x5a, rr(0, 1)],
        0,
        f32x4([1.5, -0.25, 9.0, 9.0]),
    );
    assert_eq!(r, f64x2(1.5, -0.25));
    let r = fp(&mut c, &[0x66, 0x0f, 0x5a, rr(0, 1)], !0, f64x2(1e300, 0.3));
    assert_eq!(
        r,
        u32x4([f32::INFINITY.to_bits(), (0.3f64 as f32).to_bits(), 0, 0])
    );
    // cvtdq2ps, cvtps2dq (nearest even), cvttps2dq, with out-of-range -> 0x80000000.
    let r = fp(
        &mut c,
        &[0x0f, 0x5b, rr(0, 1)],
        0,
        u32x4([1, (-3i32) as u32, 16_777_217, 0]),
    );
    assert_eq!(r, f32x4([1.0, -3.0, 16_777_216.0, 0.0]));
    let v = f32x4([2.5, -1.5, 3e9, f32::NAN]);
    assert_eq!(
        fp(&mut c, &[0x66, 0x0f, 0x5b, rr(0, 1)], 0, v),
        u32x4([2, (-2i32) as u32, 0x8000_0000, 0x8000_0000])
    );
    assert_eq!(
        fp(&mut c, &[0xf3, 0x0f, 0x5b, rr(0, 1)], 0, v),
        u32x4([2, (-1i32) as u32, 0x8000_0000, 0x8000_0000])
    );
    // cvtdq2pd, cvtpd2dq, cvttpd2dq (upper half zeroed).
    assert_eq!(
        fp(
            &mut c,
            &[0xf3, 0x0f, 0xe6, rr(0, 1)],
            0,
            u32x4([7, (-8i32) as u32, 9, 9])
        ),
        f64x2(7.0, -8.0)
    );
    assert_eq!(
        fp(&mut c, &[0xf2, 0x0f, 0xe6, rr(0, 1)], !0, f64x2(-2.5, 3.5)),
        u32x4([(-2i32) as u32, 4, 0, 0])
    );
    assert_eq!(
        fp(&mut c, &[0x66, 0x0f, 0xe6, rr(0, 1)], !0, f64x2(-2.5, 3.5)),
        u32x4([(-2i32) as u32, 3, 0, 0])
    );
}

#[test]
fn reciprocal_estimates_are_close() {
    let _g = lock();
    let mut c = cpu();
    let v = [3.0f32, 0.5, 1000.0, 7.0];
    let r = fp(&mut c, &[0x0f, 0x53, rr(0, 1)], 0, f32x4(v)); // rcpps
    for (k, &vk) in v.iter().enumerate() {
        let got = f32::from_bits((r >> (32 * k)) as u32);
        assert!(((got * vk) - 1.0).abs() < 1.5 / 4096.0, "rcp {vk}: {got}");
    }
    let r = fp(
        &mut c,
        &[0xf3, 0x0f, 0x52, rr(0, 1)],
        f32x4([0.0, 8.0, 8.0, 8.0]),
        f32x4(v),
    ); // rsqrtss
    let got = f32::from_bits(r as u32);
    assert!((got * v[0].sqrt() - 1.0).abs() < 1.5 / 4096.0);
    assert_eq!(r >> 32, f32x4([0.0, 8.0, 8.0, 8.0]) >> 32);
}

#[test]
fn float_logic() {
    let _g = lock();
    let mut c = cpu();
    let a = f32x4([-1.0, 2.0, -3.0, 4.0]);
    let m = u32x4([0x7fff_ffff; 4]);
    assert_eq!(
        fp(&mut c, &[0x0f, 0x54, rr(0, 1)], a, m),
        f32x4([1.0, 2.0, 3.0, 4.0])
    ); // andps
    assert_eq!(
        fp(&mut c, &[0x0f, 0x55, rr(0, 1)], m, a),
        u32x4([0x8000_0000, 0, 0x8000_0000, 0])
    ); // andnps
    assert_eq!(fp(&mut c, &[0x66, 0x0f, 0x57, rr(0, 1)], a, a), 0); // xorpd
    assert_eq!(fp(&mut c, &[0x0f, 0x56, rr(0, 1)], 1, 2), 3); // orps
}

// ---------------------------------------------------------------------------------------------
// MMX

#[test]
fn mmx_aliases_x87_and_transitions() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env().mem.write_u64(d, 0x0102_0304_05ff_0708).unwrap();
    c.x87.top = 5;
    c.x87.ftw = 0xffff;
    ok(&mut c, &[0x0f, 0x6f, mrax(1)]); // movq mm1, [rax]
    assert_eq!(c.x87.st[1], (0xffffu128 << 64) | 0x0102_0304_05ff_0708);
    assert_eq!(c.x87.top, 0);
    assert_eq!(c.x87.ftw, 0);
    c.x87.st[2] = 0x0101_0101_0101_0101;
    ok(&mut c, &[0x0f, 0xfc, rr(1, 2)]); // paddb mm1, mm2
    assert_eq!(c.x87.st[1] as u64, 0x0203_0405_0600_0809);
    ok(&mut c, &[0x0f, 0xd7, rr(0, 1)]); // pmovmskb eax, mm1: no sign bits
    assert_eq!(c.gpr[0], 0);
    c.x87.st[3] = 0x8000_0000_ffff_0001;
    ok(&mut c, &[0x0f, 0xe5, rr(3, 3)]); // pmulhw mm3, mm3
    assert_eq!(c.x87.st[3] as u64, 0x4000_0000_0000_0000);
    c.gpr[3] = 0xdead_beef;
    ok(&mut c, &[0x0f, 0x6e, rr(4, 3)]); // movd mm4, ebx
    assert_eq!(c.x87.st[4] as u64, 0xdead_beef);
    ok(&mut c, &[0x0f, 0x7e, rr(4, 1)]); // movd ecx, mm4
    assert_eq!(c.gpr[1], 0xdead_beef);
    ok(&mut c, &[0x0f, 0x77]); // emms
    assert_eq!(c.x87.ftw, 0xffff);
    // movq2dq xmm0, mm4 zero-extends; movdq2q mm5, xmm7 takes the low half.
    c.sse.xmm[0] = !0;
    ok(&mut c, &[0xf3, 0x0f, 0xd6, rr(0, 4)]);
    assert_eq!(x(&c, 0), 0xdead_beef);
    c.sse.xmm[7] = (5u128 << 64) | 6;
    ok(&mut c, &[0xf2, 0x0f, 0xd6, rr(5, 7)]);
    assert_eq!(c.x87.st[5] as u64, 6);
    // pshufw and the MMX shift by an immediate.
    c.x87.st[6] = 0x0004_0003_0002_0001;
    ok(&mut c, &[0x0f, 0x70, rr(0, 6), 0x1b]); // pshufw mm0, mm6
    assert_eq!(c.x87.st[0] as u64, 0x0001_0002_0003_0004);
    ok(&mut c, &[0x0f, 0x73, rr(6, 0), 16]); // psllq mm0, 16
    assert_eq!(c.x87.st[0] as u64, 0x0002_0003_0004_0000);
}

#[test]
fn mmx_pending_x87_exception() {
    let _g = lock();
    let mut c = cpu();
    c.x87.fcw = 0x037e; // IM clear
    c.x87.fsw = 0x0001; // IE set
    c.x87.top = 4;
    assert_eq!(
        exec(&mut c, &[0x0f, 0xfc, rr(1, 2)]),
        Some(Exception::X87Fault)
    );
    assert_eq!(c.x87.top, 4);
    // SSE instructions without MMX operands do not care.
    assert_eq!(exec(&mut c, &[0x66, 0x0f, 0xfc, rr(1, 2)]), None);
}

#[test]
fn cvtpi2ps_forms() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    env()
        .mem
        .write_u64(d, ((-3i32 as u32 as u64) << 32) | 5)
        .unwrap();
    c.sse.xmm[0] = f32x4([0.0, 0.0, 8.0, 9.0]);
    c.x87.top = 2;
    c.x87.ftw = 0xffff;
    ok(&mut c, &[0x0f, 0x2a, mrax(0)]); // cvtpi2ps xmm0, [rax]: no MMX transition
    assert_eq!(x(&c, 0), f32x4([5.0, -3.0, 8.0, 9.0]));
    assert_eq!((c.x87.top, c.x87.ftw), (2, 0xffff));
    c.x87.st[1] = 7;
    ok(&mut c, &[0x0f, 0x2a, rr(0, 1)]); // cvtpi2ps xmm0, mm1: transition
    assert_eq!(x(&c, 0), f32x4([7.0, 0.0, 8.0, 9.0]));
    assert_eq!((c.x87.top, c.x87.ftw), (0, 0));
    c.sse.xmm[1] = f32x4([1.5, -2.5, 1e20, 1e20]);
    ok(&mut c, &[0x0f, 0x2d, rr(2, 1)]); // cvtps2pi mm2, xmm1: only the low lanes count
    assert_eq!(c.x87.st[2] as u64, ((-2i32 as u32 as u64) << 32) | 2);
    assert_eq!(c.sse.mxcsr & 0x3f, PE);
}

#[test]
fn mmx_width_forms() {
    let _g = lock();
    let mut c = cpu();
    let d = env().data;
    let mm = |c: &Cpu, k: usize| c.x87.st[k] as u64;
    // packsswb mm1, mm2: four words of each, saturated to bytes.
    c.x87.st[1] = 0xfff0_0005_ff00_0100;
    c.x87.st[2] = 0x0004_0003_0002_0001;
    ok(&mut c, &[0x0f, 0x63, rr(1, 2)]);
    assert_eq!(mm(&c, 1), 0x0403_0201_f005_807f);
    // punpcklbw mm3, m32 reads four bytes.
    c.x87.st[3] = 0x8877_6655_4433_2211;
    env().mem.write_u64(d, 0xeeee_eeee_ddcc_bbaa).unwrap();
    ok(&mut c, &[0x0f, 0x60, mrax(3)]);
    assert_eq!(mm(&c, 3), 0xdd44_cc33_bb22_aa11);
    // psadbw mm4, mm5: |0xff - 0| + |0 - 1| = 256.
    c.x87.st[4] = 0xff;
    c.x87.st[5] = 0x0100_0000_0000_0000;
    ok(&mut c, &[0x0f, 0xf6, rr(4, 5)]);
    assert_eq!(mm(&c, 4), 256);
    // pmuludq mm6, mm7 multiplies the low dwords only.
    c.x87.st[6] = 0x1234_5678_ffff_ffff;
    c.x87.st[7] = 0x9999_9999_0000_0002;
    ok(&mut c, &[0x0f, 0xf4, rr(6, 7)]);
    assert_eq!(mm(&c, 6), 0x1_ffff_fffe);
    // pextrw eax, mm6, 5 selects word 5 & 3 = 1; pinsrw mm6, ecx, 7 replaces word 3.
    ok(&mut c, &[0x0f, 0xc5, rr(0, 6), 5]);
    assert_eq!(c.gpr[0], 0xffff);
    c.gpr[1] = 0x5555_abcd;
    ok(&mut c, &[0x0f, 0xc4, rr(6, 1), 7]);
    assert_eq!(mm(&c, 6), 0xabcd_0001_ffff_fffe);
    // paddsw on four words.
    c.x87.st[0] = 0x7fff_8000_0001_0002;
    c.x87.st[1] = 0x0001_ffff_0001_0002;
    ok(&mut c, &[0x0f, 0xed, rr(0, 1)]);
    assert_eq!(mm(&c, 0), 0x7fff_8000_0002_0004);
    // maskmovq mm2, mm3 stores the selected bytes at [rdi].
    env().mem.write_u64(d, 0).unwrap();
    c.gpr[7] = d;
    c.x87.st[2] = 0x0807_0605_0403_0201;
    c.x87.st[3] = 0x8000_0000_0000_ff00;
    ok(&mut c, &[0x0f, 0xf7, rr(2, 3)]);
    assert_eq!(env().mem.read_u64(d).unwrap(), 0x0800_0000_0000_0200);
    assert_eq!(
        c.x87.st[0] >> 64,
        0xffff,
        "MMX writes set the exponent bits"
    );
}
