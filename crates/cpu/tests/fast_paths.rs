//! The specialized handlers (`Cpu::step`, as blocks run them) against the family handlers
//! (`Cpu::step_reference`) from identical random states: every register, flag, XMM register,
//! MXCSR, the exit and every data byte must agree. Covers operand shapes the differential
//! test does not generate: FS/GS segments, AH..BH, RIP-relative operands, faulting and
//! misaligned addresses, and float arithmetic under assorted MXCSR values.

use cetbox_cpu::{Cpu, CpuConfig};
use cetbox_cpu::{Engine, Interpreter};
use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::Arc;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Instruction encodings, one per line of hex bytes.
const FORMS: &str = "
48 01 d8 | 01 d8 | 00 e3 | 66 01 d8 | 48 03 43 08 | 64 48 03 43 08 | 65 48 8b 04 25 10 00 00 00
48 83 c0 f0 | 80 c4 7f | 48 29 04 8b | 83 2c 8b 05 | 48 39 d8 | 48 85 c0 | a8 01 | f6 c4 01
11 d8 | 48 19 d8 | 48 21 d8 | 09 d8 | 48 31 d8 | 30 e0 | 38 63 03 | 3c 80 | 48 3d 00 00 00 80
48 13 43 08 | 1b 03 | 48 11 03 | 80 13 01 | 66 83 03 ff | 84 23 | 48 f7 03 00 ff 00 00
8a 63 03 | 88 63 03 | 66 89 43 02 | 48 8b 05 00 00 00 00 | 8b 44 8b fc | 48 89 04 cb
b8 78 56 34 12 | 48 b8 88 77 66 55 44 33 22 11 | 48 c7 c0 ff ff ff ff | c6 43 05 aa
48 c7 43 08 80 00 00 00 | b4 12 | 66 b8 34 12 | 65 c7 04 25 08 00 00 00 01 00 00 00
48 ff c0 | ff c8 | fe c4 | 48 f7 d8 | f7 d0 | ff 03 | 48 ff 0b | f6 1b | 66 ff c3
48 8d 44 8b 10 | 8d 44 8b 10 | 48 8d 05 10 00 00 00 | 48 8d 04 24 | 67 48 8d 04 18
0f b6 c4 | 48 0f b6 03 | 0f b7 c3 | 48 0f bf 03 | 48 63 c3 | 48 63 03 | 66 0f be c4 | 0f be c4
48 c1 e0 05 | c1 e8 1f | 48 c1 f8 3f | d1 e0 | 48 d3 e0 | d3 f8 | c0 e4 03 | 66 c1 e0 11
c1 e0 00 | d3 e8 | 48 d3 f8 | d0 ec | 66 d3 e0
48 0f af c3 | 0f af 03 | 48 6b c3 f9 | 69 03 78 56 34 12 | 48 69 c0 00 00 00 80
0f 94 c4 | 0f 9c 03 | 0f 97 c0 | 0f 9a c0 | 0f 90 c0 | 0f 9e c0 | 0f 93 c0 | 0f 98 c0
48 0f 44 c3 | 0f 4f 03 | 0f 42 c3 | 48 0f 4c 03 | 0f 46 c3
53 | 41 57 | 54 | 5c | 58 | 41 5f | 6a f0 | 68 78 56 34 12 | ff 33 | ff 34 24 | 8f c0
e8 00 00 00 00 | e8 10 00 00 00 | c3 | c2 10 00 | eb 05 | 74 05 | 0f 8c 00 01 00 00
7f 02 | 76 02 | 78 02 | 7b 02 | 70 02 | 72 02 | 7e 02 | 7d 02
ff e0 | ff 23 | ff d0 | ff 13 | 0f 1f 44 00 00 | 66 90 | 90
0f 28 c1 | 0f 28 03 | 0f 29 03 | 0f 10 03 | 0f 11 03 | f3 0f 6f 03 | 66 0f 6f 03 | 66 0f 7f 03
0f 2b 03 | 66 0f e7 03 | 64 0f 10 43 10
f2 0f 10 c1 | f2 0f 10 03 | f2 0f 11 03 | f3 0f 10 c1 | f3 0f 10 03 | f3 0f 11 03
f3 0f 7e c1 | f3 0f 7e 03 | 66 0f d6 03 | 66 0f d6 c1
66 0f 6e c0 | 66 48 0f 6e c0 | 66 0f 7e c0 | 66 48 0f 7e c0 | 66 0f 6e 03 | 66 0f 7e 03
66 48 0f 6e 03 | 66 48 0f 7e 03
66 0f d7 c1 | 66 48 0f d7 c1 | 66 0f ef c1 | 66 0f 74 c1 | 66 0f 74 03 | 66 0f da c1
66 0f de c1 | 66 0f f8 c1 | 66 0f d4 c1 | 66 0f 64 c1 | 66 0f 6c c1 | 66 0f 15 c1
0f 57 c1 | 66 0f 76 c1 | 66 0f df c1 | 66 0f 75 03 | 66 0f fc c1 | 66 0f fe c1 | 66 0f fb c1
66 0f eb c1 | 66 0f db 03 | 66 0f 6d c1 | 66 0f 14 03 | 66 0f 65 c1 | 66 0f 66 c1 | 66 0f f9 c1
f2 0f 58 c1 | f2 0f 59 03 | f2 0f 5e c1 | f2 0f 51 c1 | 66 0f 59 c1 | 66 0f 58 03 | 0f 58 c1
f3 0f 5c c1 | f2 0f 5d c1 | 66 0f 5f c1 | f2 0f 5c 03 | 0f 5e c1 | f3 0f 51 c1 | 66 0f 51 c1
0f 59 03 | f3 0f 5f c1 | 0f 5d c1 | 66 0f 5e c1 | 66 0f 5c c1 | f3 0f 58 03 | f3 0f 59 c1
";

fn forms() -> Vec<Vec<u8>> {
    FORMS
        .split(['|', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                .collect()
        })
        .collect()
}

/// Interesting float lanes: zeros, denormals, infinities, NaNs, ordinary values.
fn float_bits(r: &mut Rng) -> u64 {
    const F64: [u64; 10] = [
        0,
        0x8000_0000_0000_0000,
        0x0000_0000_0000_0001,
        0x000f_ffff_ffff_ffff,
        0x7ff0_0000_0000_0000,
        0x7ff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0x3ff0_0000_0000_0000,
        0xbff8_0000_0000_0000,
        0x4009_21fb_5444_2d18,
    ];
    const F32: [u32; 8] = [
        0,
        0x8000_0000,
        1,
        0x007f_ffff,
        0x7f80_0000,
        0x7fc0_0000,
        0x3f80_0000,
        0xc040_0000,
    ];
    match r.below(4) {
        0 => F64[r.below(10) as usize],
        1 => (F32[r.below(8) as usize] as u64) | ((F32[r.below(8) as usize] as u64) << 32),
        _ => r.next(),
    }
}

struct State {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
    xmm: [u128; 16],
    mxcsr: u32,
    fs: u64,
    gs: u64,
    exit: String,
    data: Vec<u8>,
}

fn snapshot(cpu: &Cpu, exit: String, data: u64, len: usize) -> State {
    let mut buf = vec![0u8; len];
    cpu.mem.read_bytes(data, &mut buf).expect("data readable");
    State {
        gpr: cpu.gpr,
        rip: cpu.rip,
        rflags: cpu.rflags(),
        xmm: cpu.sse.xmm,
        mxcsr: cpu.sse.mxcsr,
        fs: cpu.fs_base,
        gs: cpu.gs_base,
        exit,
        data: buf,
    }
}

#[test]
fn fast_forms_match_family_handlers() {
    let mem = Arc::new(AddressSpace::new().expect("address space"));
    let rwx = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let rx = (libc::PROT_READ | libc::PROT_EXEC) as u32;
    let code = mem
        .map(&MapRequest::anonymous(0, PAGE_SIZE, rx, VmaKind::Normal))
        .expect("code page");
    // Pages 0-3 read-write, page 4 read-only.
    let data = mem
        .map(&MapRequest::anonymous(
            0,
            5 * PAGE_SIZE,
            rwx,
            VmaKind::Normal,
        ))
        .expect("data pages");
    mem.protect(data + 4 * PAGE_SIZE, PAGE_SIZE, libc::PROT_READ as u32)
        .expect("protect");
    let rw_len = 4 * PAGE_SIZE as usize;
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    let forms = forms();
    for bytes in &forms {
        let mut code_page = bytes.clone();
        code_page.resize(16, 0x90);
        mem.force_write(code, &code_page).expect("code");
        for case in 0..300 {
            // One random starting state, run both ways.
            let mut gpr = [0u64; 16];
            for g in gpr.iter_mut() {
                *g = match r.below(4) {
                    0 => r.below(256),
                    1 => data + r.below(5 * PAGE_SIZE),
                    _ => r.next(),
                };
            }
            gpr[3] = data + r.below(5 * PAGE_SIZE - 16); // rbx: base
            gpr[1] = r.below(64); // rcx: index / count
            gpr[4] = (data + PAGE_SIZE + r.below(2 * PAGE_SIZE)) & !(r.below(2) * 7); // rsp
            if r.below(4) == 0 {
                gpr[0] = data + r.below(PAGE_SIZE); // rax as a jump or call target
            }
            let flags = (r.next() & 0xcd5) | 2;
            let mut xmm = [0u128; 16];
            for x in xmm.iter_mut() {
                *x = float_bits(&mut r) as u128 | (float_bits(&mut r) as u128) << 64;
            }
            let mxcsr = match r.below(6) {
                0 => 0x0000,
                1 => 0x1f80 | (r.below(4) as u32) << 13,
                2 => 0x9fc0,
                3 => 0x1f80 | (r.below(0x3f) as u32),
                4 => 0x1d80,
                _ => 0x1f80,
            };
            let mut fill = vec![0u8; rw_len];
            for b in fill.iter_mut() {
                *b = r.next() as u8;
            }
            // Some canonical return addresses on the stack.
            let sp_off = (gpr[4] - data) as usize;
            if r.below(2) == 0 && sp_off + 8 <= rw_len {
                fill[sp_off..sp_off + 8].copy_from_slice(&(code + r.below(64)).to_le_bytes());
            }
            let fs = data + r.below(PAGE_SIZE);
            let gs = data + r.below(PAGE_SIZE);
            let mut states = Vec::new();
            for reference in [false, true] {
                mem.force_write(data, &fill).expect("data");
                let mut cpu = Cpu::new(mem.clone(), Arc::new(CpuConfig::default()));
                cpu.gpr = gpr;
                cpu.rip = code;
                cpu.set_rflags(flags);
                cpu.sse.xmm = xmm;
                cpu.sse.mxcsr = mxcsr;
                cpu.fs_base = fs;
                cpu.gs_base = gs;
                let exit = if reference {
                    cetbox_cpu::interp::step_reference(&mut cpu)
                } else {
                    Interpreter::new().step(&mut cpu)
                };
                states.push(snapshot(&cpu, format!("{exit:?}"), data, rw_len));
            }
            let (a, b) = (&states[0], &states[1]);
            let mut diffs = Vec::new();
            if a.exit != b.exit {
                diffs.push(format!("exit {} vs {}", a.exit, b.exit));
            }
            for k in 0..16 {
                if a.gpr[k] != b.gpr[k] {
                    diffs.push(format!("gpr{k} {:#x} vs {:#x}", a.gpr[k], b.gpr[k]));
                }
                if a.xmm[k] != b.xmm[k] {
                    diffs.push(format!("xmm{k} {:#x} vs {:#x}", a.xmm[k], b.xmm[k]));
                }
            }
            if a.rip != b.rip {
                diffs.push(format!("rip {:#x} vs {:#x}", a.rip, b.rip));
            }
            if a.rflags != b.rflags {
                diffs.push(format!("rflags {:#x} vs {:#x}", a.rflags, b.rflags));
            }
            if a.mxcsr != b.mxcsr {
                diffs.push(format!("mxcsr {:#x} vs {:#x}", a.mxcsr, b.mxcsr));
            }
            if (a.fs, a.gs) != (b.fs, b.gs) {
                diffs.push("segment bases".into());
            }
            if a.data != b.data {
                diffs.push("data bytes".into());
            }
            if !diffs.is_empty() {
                failures.push(format!(
                    "{:02x?} case {case} (mxcsr {mxcsr:#x}): {}",
                    bytes,
                    diffs.join(", ")
                ));
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} forms differ:\n{}",
        failures.len(),
        forms.len(),
        failures.join("\n")
    );
}
