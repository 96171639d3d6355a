//! x87 semantics: each instruction form runs on the host FPU (the reference for this host)
//! and in the emulator from the same random state; the x87 state (FXSAVE image), the memory
//! operand, RFLAGS and AX must agree bit for bit. Plus hand-derived cases.

#![cfg(target_arch = "x86_64")]

use cetbox_cpu::fpstate::{fxrstor, fxsave, Sse, X87};
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use cetbox_mem::{AddressSpace, MapRequest, VmaKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex, OnceLock};

const DATA_LEN: usize = 128;

struct Harness {
    mem: Arc<AddressSpace>,
    code: u64,
    data: u64,
    jit: *mut u8,
}

// SAFETY: the raw JIT pointer is only used under the harness mutex.
unsafe impl Send for Harness {}

fn harness() -> &'static Mutex<Harness> {
    static H: OnceLock<Mutex<Harness>> = OnceLock::new();
    H.get_or_init(|| {
        let mem = Arc::new(AddressSpace::new().expect("address space"));
        let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
        let code = mem
            .map(&MapRequest::anonymous(0, 4096, rwx, VmaKind::Normal))
            .unwrap();
        let data = mem
            .map(&MapRequest::anonymous(0, 4096, rw, VmaKind::Normal))
            .unwrap();
        // SAFETY: a fresh private anonymous mapping owned by the test process.
        let jit = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(jit, libc::MAP_FAILED);
        Mutex::new(Harness {
            mem,
            code,
            data,
            jit: jit.cast::<u8>(),
        })
    })
}

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Img([u8; 528]);

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Data([u8; DATA_LEN]);

/// The machine state a case starts from and ends in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct State {
    /// FXSAVE image bytes 0..160 (x87 part) with FOP/FIP/FDP cleared.
    x87: [u8; 160],
    data: [u8; DATA_LEN],
    flags: u64,
    ax: u16,
}

fn x87_part(img: &[u8]) -> [u8; 160] {
    let mut a = [0u8; 160];
    a.copy_from_slice(&img[..160]);
    a[6..24].fill(0);
    // MXCSR_MASK describes the CPU model, not the x87.
    a[28..32].fill(0);
    // Register slots hold 10 significant bytes.
    for k in 0..8 {
        a[32 + 16 * k + 10..32 + 16 * k + 16].fill(0);
    }
    a
}

const FLAG_MASK: u64 = 0x8d5;

/// Runs `insn` on the host from `img` (FXSAVE image) with RDX -> data, RFLAGS = flags.
fn run_host(h: &Harness, insn: &[u8], img: &Img, data: &mut Data, flags: u64) -> State {
    let mut code = vec![
        0x51, // push rcx
        0x9d, // popfq
        0x0f, 0xae, 0x0f, // fxrstor [rdi]
    ];
    code.extend_from_slice(insn);
    code.extend_from_slice(&[
        0x0f, 0xae, 0x06, // fxsave [rsi]
        0x48, 0x89, 0x86, 0x00, 0x02, 0x00, 0x00, // mov [rsi+0x200], rax
        0x9c, // pushfq
        0x58, // pop rax
        0xdb, 0xe3, // fninit
        0xc3, // ret
    ]);
    let mut out = Img([0u8; 528]);
    out.0[..512].copy_from_slice(&img.0[..512]);
    // SAFETY: the JIT page is RWX and large enough; the stub follows the SysV ABI (it only
    // touches rax, rcx, flags, the x87/SSE state, which are caller-saved, and the two
    // buffers); fninit leaves the x87 as the ABI expects, MXCSR comes back from the image
    // (the default value).
    let rflags = unsafe {
        std::ptr::copy_nonoverlapping(code.as_ptr(), h.jit, code.len());
        let f: extern "C" fn(*const u8, *mut u8, *mut u8, u64) -> u64 = std::mem::transmute(h.jit);
        f(
            img.0.as_ptr(),
            out.0.as_mut_ptr(),
            data.0.as_mut_ptr(),
            flags,
        )
    };
    State {
        x87: x87_part(&out.0),
        data: data.0,
        flags: rflags & FLAG_MASK,
        ax: u16::from_le_bytes([out.0[512], out.0[513]]),
    }
}

fn new_cpu(h: &Harness) -> Cpu {
    Cpu::new(h.mem.clone(), Arc::new(CpuConfig::default()))
}

/// Runs `insn` in the emulator from the same state.
fn run_emu(
    h: &Harness,
    insn: &[u8],
    img: &Img,
    data: &Data,
    flags: u64,
    ax: u16,
) -> (State, Option<Exit>) {
    let mut cpu = new_cpu(h);
    let mut x = X87::default();
    let mut s = Sse::default();
    let mut i512 = [0u8; 512];
    i512.copy_from_slice(&img.0[..512]);
    assert!(fxrstor(&mut x, &mut s, &i512));
    cpu.x87 = x;
    cpu.sse = s;
    h.mem.write_bytes(h.code, insn).unwrap();
    h.mem.write_bytes(h.data, &data.0).unwrap();
    cpu.rip = h.code;
    cpu.gpr[2] = h.data;
    cpu.gpr[0] = ax as u64;
    cpu.set_rflags(flags);
    let exit = Interpreter::new().step(&mut cpu);
    let mut out = [0u8; 512];
    fxsave(&cpu.x87, &cpu.sse, &mut out);
    let mut d = [0u8; DATA_LEN];
    h.mem.read_bytes(h.data, &mut d).unwrap();
    (
        State {
            x87: x87_part(&out),
            data: d,
            flags: cpu.rflags() & FLAG_MASK,
            ax: cpu.gpr[0] as u16,
        },
        exit,
    )
}

// ---------------------------------------------------------------- random values

fn rand80(r: &mut StdRng) -> u128 {
    let sign = (r.gen::<bool>() as u128) << 79;
    let mant: u64 = match r.gen_range(0..6) {
        0 => r.gen::<u64>() | 1 << 63,
        // Few significant bits: exact results and ties.
        1 => (r.gen::<u64>() & 0xffff_0000_0000_0000) | 1 << 63,
        2 => (1 << 63) | (r.gen::<u64>() & 0x7ff) << r.gen_range(0..53),
        3 => u64::MAX - (r.gen::<u64>() & 0xff),
        _ => r.gen::<u64>() | 1 << 63,
    };
    let v = |e: u16, m: u64| sign | (e as u128) << 64 | m as u128;
    match r.gen_range(0..40) {
        0 => sign,                                                         // zero
        1 => v(0, mant >> r.gen_range(1..64)),                             // denormal
        2 => v(0, mant),                                                   // pseudo-denormal
        3 => v(0x7fff, 1 << 63),                                           // infinity
        4 => v(0x7fff, (1 << 63) | (1 << 62) | (mant & 0xffff)),           // QNaN
        5 => v(0x7fff, (1 << 63) | (mant & 0x3fff_ffff_ffff_ffff).max(1)), // SNaN
        6 => v(r.gen_range(1..0x7fff), mant & !(1 << 63)),                 // unnormal
        7 => v(0x7fff, mant & 0x7fff_ffff_ffff_ffff),                      // pseudo-NaN/inf
        8 => 0xffff_c000_0000_0000_0000,                                   // indefinite
        9..=11 => v(r.gen_range(1..0x7fff), mant),                         // anywhere
        12..=13 => v(r.gen_range(1..64), mant),                            // near the bottom
        14..=15 => v(r.gen_range(0x7fc0..0x7fff), mant),                   // near the top
        16..=17 => v(r.gen_range(0x3f80..0x3f82) + r.gen_range(0..3), mant),
        18..=20 => v(r.gen_range(0x3bfe..0x3c02), mant), // near the f64 limits
        21..=22 => v(r.gen_range(0x4400..0x4402), mant),
        23..=24 => v(r.gen_range(0x3f6a..0x3f82), mant), // f32 limits
        25..=26 => v(r.gen_range(0x407d..0x4081), mant),
        27..=28 => v(r.gen_range(0x3ffe..0x4040), mant), // integers
        _ => v(r.gen_range(0x3fe0..0x4020), mant),       // ordinary
    }
}

fn rand_fcw(r: &mut StdRng, allow_unmasked: bool) -> u16 {
    let rc = r.gen_range(0..4u16) << 10;
    let pc = [0u16, 2, 3][r.gen_range(0..3)] << 8;
    let mask = if allow_unmasked && r.gen_range(0..4) == 0 {
        r.gen::<u16>() & 0x3f
    } else {
        0x3f
    };
    0x40 | rc | pc | mask
}

/// A random FXSAVE image: random registers, `nonempty` of the stack non-empty from ST0 up.
fn rand_img(r: &mut StdRng, fcw: u16, nonempty: usize) -> Img {
    let mut img = Img([0u8; 528]);
    let top = r.gen_range(0..8u16);
    let excs = r.gen::<u16>() & fcw & 0x3f; // no pending unmasked exception
    let cc = r.gen::<u16>() & 0x4700;
    let fsw = excs | cc | top << 11;
    img.0[0..2].copy_from_slice(&fcw.to_le_bytes());
    img.0[2..4].copy_from_slice(&fsw.to_le_bytes());
    let mut tags = 0u8;
    for k in 0..nonempty {
        tags |= 1 << ((top as usize + k) & 7);
    }
    // Occasionally an extra register (or a hole) elsewhere.
    if r.gen_range(0..5) == 0 {
        tags ^= 1 << r.gen_range(0..8);
    }
    img.0[4] = tags;
    img.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    img.0[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    for k in 0..8 {
        let v = rand80(r);
        img.0[32 + 16 * k..32 + 16 * k + 10].copy_from_slice(&v.to_le_bytes()[..10]);
    }
    img
}

fn rand_data(r: &mut StdRng) -> Data {
    let mut d = Data([0u8; DATA_LEN]);
    // Offset 0 gets a value of the kind the instruction reads, in several widths.
    let v = rand80(r);
    match r.gen_range(0..4) {
        0 => {
            // An f32 from the random value's class.
            let f = r.gen::<u32>();
            let special = [
                0u32,
                0x8000_0000,
                0x7f80_0000,
                0xff80_0000,
                0x7fc0_0000,
                0x7f80_0001,
                0x0000_0001,
                0x007f_ffff,
            ];
            let f = if r.gen_range(0..3) == 0 {
                special[r.gen_range(0..special.len())]
            } else {
                f
            };
            d.0[0..4].copy_from_slice(&f.to_le_bytes());
            let g = r.gen::<u64>();
            d.0[4..12].copy_from_slice(&g.to_le_bytes());
        }
        1 => {
            let special = [
                0u64,
                1 << 63,
                0x7ff0 << 48,
                0xfff0 << 48,
                0x7ff8 << 48,
                (0x7ff0 << 48) | 1,
                1,
                0x000f_ffff_ffff_ffff,
            ];
            let g = if r.gen_range(0..3) == 0 {
                special[r.gen_range(0..special.len())]
            } else {
                r.gen()
            };
            d.0[0..8].copy_from_slice(&g.to_le_bytes());
        }
        2 => {
            let ints = [
                0u64,
                1,
                u64::MAX,
                0x8000,
                0x7fff,
                0x8000_0000,
                0x7fff_ffff,
                1 << 63,
                (1 << 63) - 1,
            ];
            let g = if r.gen_range(0..2) == 0 {
                ints[r.gen_range(0..ints.len())]
            } else {
                r.gen::<u64>() >> r.gen_range(0..64)
            };
            d.0[0..8].copy_from_slice(&g.to_le_bytes());
        }
        _ => d.0[0..10].copy_from_slice(&v.to_le_bytes()[..10]),
    }
    for b in d.0[16..].iter_mut() {
        *b = r.gen();
    }
    d
}

struct Form {
    name: &'static str,
    bytes: &'static [u8],
    /// Non-empty stack entries to start with (at most).
    depth: usize,
}

const fn f(name: &'static str, bytes: &'static [u8], depth: usize) -> Form {
    Form { name, bytes, depth }
}

const FORMS: &[Form] = &[
    f("fadd st0,st1", &[0xd8, 0xc1], 2),
    f("fmul st0,st1", &[0xd8, 0xc9], 2),
    f("fsub st0,st1", &[0xd8, 0xe1], 2),
    f("fsubr st0,st1", &[0xd8, 0xe9], 2),
    f("fdiv st0,st1", &[0xd8, 0xf1], 2),
    f("fdivr st0,st1", &[0xd8, 0xf9], 2),
    f("fadd st2,st0", &[0xdc, 0xc2], 3),
    f("fmul st2,st0", &[0xdc, 0xca], 3),
    f("dc e2", &[0xdc, 0xe2], 3),
    f("dc ea", &[0xdc, 0xea], 3),
    f("dc f2", &[0xdc, 0xf2], 3),
    f("dc fa", &[0xdc, 0xfa], 3),
    f("faddp", &[0xde, 0xc1], 2),
    f("fmulp", &[0xde, 0xc9], 2),
    f("de e1", &[0xde, 0xe1], 2),
    f("de e9", &[0xde, 0xe9], 2),
    f("de f1", &[0xde, 0xf1], 2),
    f("de f9", &[0xde, 0xf9], 2),
    f("fadd m32", &[0xd8, 0x02], 1),
    f("fmul m32", &[0xd8, 0x0a], 1),
    f("fsub m32", &[0xd8, 0x22], 1),
    f("fsubr m32", &[0xd8, 0x2a], 1),
    f("fdiv m32", &[0xd8, 0x32], 1),
    f("fdivr m32", &[0xd8, 0x3a], 1),
    f("fadd m64", &[0xdc, 0x02], 1),
    f("fmul m64", &[0xdc, 0x0a], 1),
    f("fsub m64", &[0xdc, 0x22], 1),
    f("fsubr m64", &[0xdc, 0x2a], 1),
    f("fdiv m64", &[0xdc, 0x32], 1),
    f("fdivr m64", &[0xdc, 0x3a], 1),
    f("fiadd m32", &[0xda, 0x02], 1),
    f("fimul m32", &[0xda, 0x0a], 1),
    f("fisub m32", &[0xda, 0x22], 1),
    f("fidivr m32", &[0xda, 0x3a], 1),
    f("fiadd m16", &[0xde, 0x02], 1),
    f("fidiv m16", &[0xde, 0x32], 1),
    f("fsqrt", &[0xd9, 0xfa], 1),
    f("frndint", &[0xd9, 0xfc], 1),
    f("fscale", &[0xd9, 0xfd], 2),
    f("fxtract", &[0xd9, 0xf4], 1),
    f("fprem", &[0xd9, 0xf8], 2),
    f("fprem1", &[0xd9, 0xf5], 2),
    f("fchs", &[0xd9, 0xe0], 1),
    f("fabs", &[0xd9, 0xe1], 1),
    f("ftst", &[0xd9, 0xe4], 1),
    f("fxam", &[0xd9, 0xe5], 1),
    f("fcom st1", &[0xd8, 0xd1], 2),
    f("fcomp st1", &[0xd8, 0xd9], 2),
    f("fcompp", &[0xde, 0xd9], 2),
    f("fucom st1", &[0xdd, 0xe1], 2),
    f("fucomp st1", &[0xdd, 0xe9], 2),
    f("fucompp", &[0xda, 0xe9], 2),
    f("fcom m32", &[0xd8, 0x12], 1),
    f("fcomp m64", &[0xdc, 0x1a], 1),
    f("ficom m32", &[0xda, 0x12], 1),
    f("ficomp m16", &[0xde, 0x1a], 1),
    f("fcomi", &[0xdb, 0xf1], 2),
    f("fcomip", &[0xdf, 0xf1], 2),
    f("fucomi", &[0xdb, 0xe9], 2),
    f("fucomip", &[0xdf, 0xe9], 2),
    f("fld m32", &[0xd9, 0x02], 1),
    f("fld m64", &[0xdd, 0x02], 1),
    f("fld m80", &[0xdb, 0x2a], 1),
    f("fld st1", &[0xd9, 0xc1], 2),
    f("fild m16", &[0xdf, 0x02], 1),
    f("fild m32", &[0xdb, 0x02], 1),
    f("fild m64", &[0xdf, 0x2a], 1),
    f("fld1", &[0xd9, 0xe8], 1),
    f("fldz", &[0xd9, 0xee], 1),
    f("fldpi", &[0xd9, 0xeb], 1),
    f("fldl2e", &[0xd9, 0xea], 1),
    f("fldl2t", &[0xd9, 0xe9], 1),
    f("fldlg2", &[0xd9, 0xec], 1),
    f("fldln2", &[0xd9, 0xed], 1),
    f("fst m32", &[0xd9, 0x12], 1),
    f("fstp m32", &[0xd9, 0x1a], 1),
    f("fst m64", &[0xdd, 0x12], 1),
    f("fstp m64", &[0xdd, 0x1a], 1),
    f("fstp m80", &[0xdb, 0x3a], 1),
    f("fst st2", &[0xdd, 0xd2], 1),
    f("fstp st2", &[0xdd, 0xda], 2),
    f("fist m16", &[0xdf, 0x12], 1),
    f("fist m32", &[0xdb, 0x12], 1),
    f("fistp m16", &[0xdf, 0x1a], 1),
    f("fistp m32", &[0xdb, 0x1a], 1),
    f("fistp m64", &[0xdf, 0x3a], 1),
    f("fisttp m16", &[0xdf, 0x0a], 1),
    f("fisttp m32", &[0xdb, 0x0a], 1),
    f("fisttp m64", &[0xdd, 0x0a], 1),
    f("fbld", &[0xdf, 0x22], 1),
    f("fbstp", &[0xdf, 0x32], 1),
    f("fxch st1", &[0xd9, 0xc9], 2),
    f("ffree st1", &[0xdd, 0xc1], 2),
    f("fincstp", &[0xd9, 0xf7], 2),
    f("fdecstp", &[0xd9, 0xf6], 2),
    f("fcmovb", &[0xda, 0xc1], 2),
    f("fcmove", &[0xda, 0xc9], 2),
    f("fcmovbe", &[0xda, 0xd1], 2),
    f("fcmovu", &[0xda, 0xd9], 2),
    f("fcmovnb", &[0xdb, 0xc1], 2),
    f("fcmovne", &[0xdb, 0xc9], 2),
    f("fcmovnbe", &[0xdb, 0xd1], 2),
    f("fcmovnu", &[0xdb, 0xd9], 2),
    f("fnstsw ax", &[0xdf, 0xe0], 2),
    f("fnstsw m16", &[0xdd, 0x3a], 2),
    f("fnstcw", &[0xd9, 0x3a], 2),
    f("fldcw", &[0xd9, 0x2a], 2),
    f("fninit", &[0xdb, 0xe3], 2),
    f("fnclex", &[0xdb, 0xe2], 2),
    f("fnstenv", &[0xd9, 0x32], 3),
    f("fnstenv16", &[0x66, 0xd9, 0x32], 3),
    f("fldenv", &[0xd9, 0x22], 3),
    f("fnsave", &[0xdd, 0x32], 3),
    f("frstor", &[0xdd, 0x22], 3),
    f("fnop", &[0xd9, 0xd0], 1),
    f("fsin", &[0xd9, 0xfe], 1),
    f("fcos", &[0xd9, 0xff], 1),
    f("fsincos", &[0xd9, 0xfb], 1),
    f("fptan", &[0xd9, 0xf2], 1),
    f("fpatan", &[0xd9, 0xf3], 2),
    f("f2xm1", &[0xd9, 0xf0], 1),
    f("fyl2x", &[0xd9, 0xf1], 2),
    f("fyl2xp1", &[0xd9, 0xf9], 2),
];

/// Fixes the parts of a random case that would make the host fault or that the test cannot
/// set up: FLDENV/FRSTOR images must not unmask a pending exception, FLDCW likewise.
fn sanitize(form: &Form, data: &mut Data, r: &mut StdRng) {
    match form.name {
        "fldcw" => {
            let cw = rand_fcw(r, false) | (r.gen::<u16>() & 0xe080);
            data.0[0..2].copy_from_slice(&cw.to_le_bytes());
        }
        "fldenv" | "frstor" => {
            let cw = rand_fcw(r, false) | (r.gen::<u16>() & 0xe080);
            data.0[0..2].copy_from_slice(&cw.to_le_bytes());
            let sw = r.gen::<u16>() & !0x80ff | (r.gen::<u16>() & 0x7f);
            data.0[4..6].copy_from_slice(&sw.to_le_bytes());
            if form.name == "frstor" {
                for k in 0..8 {
                    let v = rand80(r);
                    data.0[28 + 10 * k..38 + 10 * k].copy_from_slice(&v.to_le_bytes()[..10]);
                }
            }
        }
        _ => {}
    }
}

fn differential(seed: u64, cases: usize, allow_unmasked: bool) {
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    let mut big = [0u8; 128];
    let only = std::env::var("X87_FORM").ok();
    // A name that matches no form would run nothing and pass: refuse it.
    if let Some(o) = &only {
        assert!(
            FORMS.iter().any(|f| f.name == o.as_str()),
            "X87_FORM={o:?} names no form; the forms are: {:?}",
            FORMS.iter().map(|f| f.name).collect::<Vec<_>>()
        );
    }
    for form in FORMS {
        if only.as_deref().is_some_and(|o| o != form.name) {
            continue;
        }
        let mut fails = 0;
        // One generator per form, so a single form reruns the same cases (X87_FORM=name).
        let h64 = form
            .name
            .bytes()
            .fold(seed, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
        let mut r = StdRng::seed_from_u64(h64);
        for _ in 0..cases {
            let fcw = rand_fcw(&mut r, allow_unmasked);
            let depth = if r.gen_range(0..8) == 0 {
                r.gen_range(0..=8)
            } else {
                form.depth
            };
            let img = rand_img(&mut r, fcw, depth);
            let mut data = rand_data(&mut r);
            sanitize(form, &mut data, &mut r);
            let flags = 0x202 | (r.gen::<u64>() & FLAG_MASK);
            let ax = r.gen::<u16>();
            let (emu, exit) = run_emu(&h, form.bytes, &img, &data, flags, ax);
            let mut hd = data;
            let host = run_host(&h, form.bytes, &img, &mut hd, flags);
            let mut emu = emu;
            let mut host = host;
            if form.name != "fnstsw ax" {
                host.ax = 0;
                emu.ax = 0;
            }
            if exit.is_some() || emu != host {
                fails += 1;
                if fails <= 3 {
                    big.copy_from_slice(&img.0[..128]);
                    failures.push(format!(
                        "{}: exit {:?}\n  fcw {:04x} fsw {:04x} tags {:02x}\n  in : {}\n  data {}\n  host: {}\n  emu : {}",
                        form.name,
                        exit,
                        fcw,
                        u16::from_le_bytes([img.0[2], img.0[3]]),
                        img.0[4],
                        regs(&img.0),
                        hex(&data.0[..28]),
                        show(&host),
                        show(&emu),
                    ));
                }
            }
        }
        if fails > 0 {
            failures.push(format!("{}: {fails}/{cases} mismatches", form.name));
        }
    }
    if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn regs(img: &[u8]) -> String {
    let top = (u16::from_le_bytes([img[2], img[3]]) >> 11) & 7;
    (0..8)
        .map(|k| {
            let mut b = [0u8; 16];
            b[..10].copy_from_slice(&img[32 + 16 * k..42 + 16 * k]);
            let v = u128::from_le_bytes(b);
            let empty = img[4] & (1 << ((top as usize + k) & 7)) == 0;
            format!("{}{:020x}", if empty { "-" } else { "" }, v)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn show(s: &State) -> String {
    format!(
        "fcw {:04x} fsw {:04x} tags {:02x} flags {:03x} ax {:04x}\n        {}\n        data {}",
        u16::from_le_bytes([s.x87[0], s.x87[1]]),
        u16::from_le_bytes([s.x87[2], s.x87[3]]),
        s.x87[4],
        s.flags,
        s.ax,
        regs(&s.x87),
        hex(&s.data[..28])
    ) + &format!("\n        raw {}", hex(&s.x87[..32]))
}

/// Cases per form; X87_CASES overrides (for long soak runs).
fn cases(default: usize) -> usize {
    std::env::var("X87_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn differential_masked() {
    differential(1, cases(600), false);
}

#[test]
fn differential_unmasked() {
    differential(2, cases(200), true);
}

// ---------------------------------------------------------------- hand-derived cases

/// Runs `insn` with ST0..ST(n-1) = `stack` (ST0 first) under `fcw`; returns the CPU.
fn run_with(insn: &[u8], stack: &[u128], fcw: u16) -> (Cpu, Option<Exit>) {
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    let mut cpu = new_cpu(&h);
    cpu.x87.fcw = fcw;
    for v in stack.iter().rev() {
        cpu.x87.top = cpu.x87.top.wrapping_sub(1) & 7;
        let p = cpu.x87.top as usize;
        cpu.x87.st[p] = *v;
        cpu.x87.ftw &= !(3 << (2 * p));
    }
    h.mem.write_bytes(h.code, insn).unwrap();
    cpu.rip = h.code;
    cpu.gpr[2] = h.data;
    let e = Interpreter::new().step(&mut cpu);
    (cpu, e)
}

fn st0(cpu: &Cpu) -> u128 {
    cpu.x87.st[cpu.x87.top as usize] & ((1 << 80) - 1)
}

const ONE: u128 = 0x3fff_8000_0000_0000_0000;
const THREE: u128 = 0x4000_c000_0000_0000_0000;

#[test]
fn one_third_in_each_precision_and_rounding() {
    // 1/3 = 0.0101...b: the 64 significant bits are 0xaaaa...aaaa (exponent -2) and the bits
    // after them are 1010..., more than half an ulp: nearest and up round up, zero truncates.
    let (c, _) = run_with(&[0xd8, 0xf1], &[ONE, THREE], 0x037f);
    assert_eq!(st0(&c), 0x3ffd_aaaa_aaaa_aaaa_aaab);
    assert_eq!(c.x87.fsw & 0x0220, 0x0220, "PE and C1 (rounded up)");
    let (c, _) = run_with(&[0xd8, 0xf1], &[ONE, THREE], 0x0f7f); // toward zero
    assert_eq!(st0(&c), 0x3ffd_aaaa_aaaa_aaaa_aaaa);
    assert_eq!(c.x87.fsw & 0x0220, 0x0020);
    // PC = 24 bits: 0xaaaaaa then 1010...: nearest rounds up to 0xaaaaab.
    let (c, _) = run_with(&[0xd8, 0xf1], &[ONE, THREE], 0x007f);
    assert_eq!(st0(&c), 0x3ffd_aaaa_ab00_0000_0000);
    // PC = 53 bits: 0x15555555555555 (53 bits) then 0101...: nearest truncates.
    let (c, _) = run_with(&[0xd8, 0xf1], &[ONE, THREE], 0x027f);
    assert_eq!(st0(&c), 0x3ffd_aaaa_aaaa_aaaa_a800);
}

#[test]
fn stack_faults_and_indefinite() {
    // FADD with an empty ST1: IE|SF, C1 = 0, ST0 = indefinite.
    let (c, _) = run_with(&[0xd8, 0xc1], &[ONE], 0x037f);
    assert_eq!(st0(&c), 0xffff_c000_0000_0000_0000);
    assert_eq!(c.x87.fsw & 0x0241, 0x0041);
    // FLD1 onto a full stack: IE|SF with C1 = 1.
    let (c, _) = run_with(&[0xd9, 0xe8], &[ONE; 8], 0x037f);
    assert_eq!(c.x87.fsw & 0x0241, 0x0241);
    assert_eq!(st0(&c), 0xffff_c000_0000_0000_0000);
}

#[test]
fn unmasked_exception_faults_at_next_waiting_instruction() {
    // 1/0 with ZE unmasked: ZE, ES, B set, ST0 unchanged; the next FADD raises #MF.
    let (mut c, e) = run_with(&[0xd8, 0xf1], &[ONE, 0], 0x037b);
    assert!(e.is_none());
    assert_eq!(st0(&c), ONE);
    assert_eq!(c.x87.fsw & 0x8084, 0x8084);
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    h.mem.write_bytes(h.code, &[0xd8, 0xc1]).unwrap();
    c.rip = h.code;
    assert_eq!(
        Interpreter::new().step(&mut c),
        Some(Exit::Exception(Exception::X87Fault))
    );
    assert_eq!(c.rip, h.code);
    // FNSTSW AX does not wait.
    h.mem.write_bytes(h.code, &[0xdf, 0xe0]).unwrap();
    assert_eq!(Interpreter::new().step(&mut c), None);
    assert_eq!(c.gpr[0] as u16 & 0x8084, 0x8084);
}

#[test]
fn fistp_rounding_and_overflow() {
    // 2.5 -> 2 (nearest even), 3 (up); 2^63 overflows to the integer indefinite.
    let two_half: u128 = 0x4000_a000_0000_0000_0000;
    let (c, _) = run_with(&[0xdf, 0x3a], &[two_half], 0x037f);
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(h.mem.read_u64(h.data).unwrap(), 2);
    drop(h);
    assert_eq!(c.x87.fsw & 0x0220, 0x0020);
    let (_, _) = run_with(&[0xdf, 0x3a], &[two_half], 0x0b7f);
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(h.mem.read_u64(h.data).unwrap(), 3);
    drop(h);
    let (c, _) = run_with(&[0xdf, 0x3a], &[0x403e_8000_0000_0000_0000], 0x037f);
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(h.mem.read_u64(h.data).unwrap(), 1 << 63);
    assert_eq!(c.x87.fsw & 1, 1);
}

#[test]
fn fxsave_alignment_and_tags() {
    let h = harness().lock().unwrap_or_else(|e| e.into_inner());
    let mut c = new_cpu(&h);
    // fxsave [rdx + 8]: misaligned.
    h.mem
        .write_bytes(h.code, &[0x0f, 0xae, 0x42, 0x08])
        .unwrap();
    c.rip = h.code;
    c.gpr[2] = h.data;
    assert!(matches!(
        Interpreter::new().step(&mut c),
        Some(Exit::Exception(_))
    ));
}
