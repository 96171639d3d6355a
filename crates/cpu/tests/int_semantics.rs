//! Integer instruction semantics, checked against values worked out by hand from the SDM
//! (and, for flags the SDM leaves undefined, from what the reference AMD host does).
//!
//! All tests share one address space (only one may exist per process) and run one at a time.

use cetbox_cpu::flags::{AF, CF, DF, OF, PF, SF, ZF};
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

const ARITH: u64 = CF | PF | AF | ZF | SF | OF;

struct Space {
    mem: Arc<AddressSpace>,
    code: u64,
    /// Five pages: 0-3 read-write, 4 read-only.
    data: u64,
}

fn space() -> &'static Space {
    static S: OnceLock<Space> = OnceLock::new();
    S.get_or_init(|| {
        let mem = Arc::new(AddressSpace::new().expect("address space"));
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u32;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
        let code = mem
            .map(&MapRequest::anonymous(0, PAGE_SIZE, rx, VmaKind::Normal))
            .expect("code page");
        let data = mem
            .map(&MapRequest::anonymous(
                0,
                5 * PAGE_SIZE,
                rw,
                VmaKind::Normal,
            ))
            .expect("data pages");
        mem.protect(data + 4 * PAGE_SIZE, PAGE_SIZE, libc::PROT_READ as u32)
            .expect("protect");
        Space { mem, code, data }
    })
}

fn lock() -> MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh CPU with zeroed data pages; RSP points into page 3.
struct T {
    _g: MutexGuard<'static, ()>,
    cpu: Cpu,
    d: u64,
}

fn t() -> T {
    let g = lock();
    let s = space();
    s.mem
        .force_write(s.data, &vec![0u8; 5 * PAGE_SIZE as usize])
        .unwrap();
    let mut cpu = Cpu::new(s.mem.clone(), Arc::new(CpuConfig::default()));
    cpu.gpr[4] = s.data + 4 * PAGE_SIZE - 64;
    T {
        _g: g,
        cpu,
        d: s.data,
    }
}

impl T {
    /// Executes one instruction; returns the exception it raised, if any.
    fn run(&mut self, bytes: &[u8]) -> Option<Exception> {
        let s = space();
        s.mem.force_write(s.code, bytes).unwrap();
        self.cpu.rip = s.code;
        match Interpreter::new().step(&mut self.cpu) {
            None => {
                assert_eq!(
                    self.cpu.rip,
                    s.code + bytes.len() as u64,
                    "rip after {bytes:x?}"
                );
                None
            }
            Some(Exit::Exception(e)) => {
                assert_eq!(
                    self.cpu.rip, s.code,
                    "a fault leaves RIP at the instruction"
                );
                Some(e)
            }
            Some(other) => panic!("unexpected exit {other:?}"),
        }
    }
    fn ok(&mut self, bytes: &[u8]) {
        if let Some(e) = self.run(bytes) {
            panic!("{bytes:x?} raised {e:?}");
        }
    }
    fn flags(&self) -> u64 {
        self.cpu.rflags() & ARITH
    }
    fn set_flags(&mut self, f: u64) {
        self.cpu.set_rflags(0x202 | f);
    }
    fn w64(&self, a: u64, v: u64) {
        space().mem.write_u64(a, v).unwrap();
    }
    fn r64(&self, a: u64) -> u64 {
        space().mem.read_u64(a).unwrap()
    }
    fn w32(&self, a: u64, v: u32) {
        space().mem.write_u32(a, v).unwrap();
    }
    fn r32(&self, a: u64) -> u32 {
        space().mem.read_u32(a).unwrap()
    }
    fn wb(&self, a: u64, v: &[u8]) {
        space().mem.write_bytes(a, v).unwrap();
    }
    fn rb(&self, a: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        space().mem.read_bytes(a, &mut v).unwrap();
        v
    }
}

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

// ------------------------------------------------------------------ ALU

#[test]
fn add_carry_out_and_zero_extension() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0x1_ffff_ffff;
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0x01, 0xc8]); // add eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0);
    assert_eq!(t.flags(), CF | ZF | AF | PF);
}

#[test]
fn add_signed_overflow_8bit_keeps_upper_bytes() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0x1234_5670;
    t.cpu.gpr[RCX] = 0x10;
    t.ok(&[0x00, 0xc8]); // add al, cl: 0x70 + 0x10 = 0x80
    assert_eq!(t.cpu.gpr[RAX], 0x1234_5680);
    assert_eq!(t.flags(), OF | SF); // 0x80 has odd parity; no nibble carry
}

#[test]
fn adc_at_carry_boundaries() {
    let mut t = t();
    // 0xff + 0 + CF = 0x100: carry out, zero, nibble carry.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0xff;
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0x10, 0xc8]); // adc al, cl
    assert_eq!(t.cpu.gpr[RAX] & 0xff, 0);
    assert_eq!(t.flags(), CF | ZF | AF | PF);
    // 0x7f + 0 + 1 = 0x80: signed overflow only from the carry-in.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x7f;
    t.ok(&[0x10, 0xc8]);
    assert_eq!(t.cpu.gpr[RAX] & 0xff, 0x80);
    assert_eq!(t.flags(), OF | SF | AF);
    // 64-bit: MAX + MAX + 1 = MAX with carry.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = u64::MAX;
    t.cpu.gpr[RCX] = u64::MAX;
    t.ok(&[0x48, 0x11, 0xc8]); // adc rax, rcx
    assert_eq!(t.cpu.gpr[RAX], u64::MAX);
    assert_eq!(t.flags(), CF | SF | PF | AF);
    // Without carry-in: 1 + 2 = 3.
    t.set_flags(0);
    t.cpu.gpr[RAX] = 1;
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0x48, 0x11, 0xc8]);
    assert_eq!(t.cpu.gpr[RAX], 3);
    assert_eq!(t.flags(), PF);
}

#[test]
fn sbb_at_borrow_boundaries() {
    let mut t = t();
    // 0 - 0xffffffff - 1 = 0 with borrow.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0;
    t.cpu.gpr[RCX] = 0xffff_ffff;
    t.ok(&[0x19, 0xc8]); // sbb eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0);
    assert_eq!(t.flags(), CF | ZF | AF | PF);
    // 0x80 - 0 - 1 = 0x7f: signed overflow from the borrow-in.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x80;
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0x18, 0xc8]); // sbb al, cl
    assert_eq!(t.cpu.gpr[RAX], 0x7f);
    assert_eq!(t.flags(), OF | AF);
    // x - x - 1 = -1 borrows.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 5;
    t.cpu.gpr[RCX] = 5;
    t.ok(&[0x48, 0x19, 0xc8]);
    assert_eq!(t.cpu.gpr[RAX], u64::MAX);
    assert_eq!(t.flags(), CF | SF | AF | PF);
}

#[test]
fn cmp_imm8_sign_extended() {
    let mut t = t();
    t.cpu.gpr[RAX] = 5;
    t.ok(&[0x48, 0x83, 0xf8, 0xff]); // cmp rax, -1
    assert_eq!(t.cpu.gpr[RAX], 5);
    // 5 - 0xffff...ff = 6 with borrow.
    assert_eq!(t.flags(), CF | AF | PF);
    t.ok(&[0x48, 0x3d, 0x05, 0, 0, 0]); // cmp rax, 5
    assert_eq!(t.flags(), ZF | PF);
}

#[test]
fn logic_clears_cf_of() {
    let mut t = t();
    t.set_flags(CF | OF);
    t.cpu.gpr[RAX] = 0xf0;
    t.cpu.gpr[RCX] = 0x0f;
    t.ok(&[0x85, 0xc8]); // test eax, ecx
    assert_eq!(t.flags(), ZF | PF);
    t.ok(&[0x09, 0xc8]); // or eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0xff);
    assert_eq!(t.flags(), PF);
    t.cpu.gpr[RAX] = 0xffff_ffff_8000_0000;
    t.ok(&[0x31, 0xc0]); // xor eax, eax
    assert_eq!(t.cpu.gpr[RAX], 0);
    assert_eq!(t.flags(), ZF | PF);
    t.cpu.gpr[RAX] = 0x8000_0000_0000_0001;
    t.ok(&[0x48, 0x25, 0x01, 0x00, 0x00, 0x80]); // and rax, 0xffffffff80000001
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0001);
    assert_eq!(t.flags(), SF);
}

#[test]
fn alu_memory_forms_and_lock() {
    let mut t = t();
    let a = t.d + 0x100;
    t.cpu.gpr[RBX] = a;
    t.w32(a, 0xffff_fffe);
    t.cpu.gpr[RAX] = 3;
    t.ok(&[0xf0, 0x01, 0x03]); // lock add [rbx], eax
    assert_eq!(t.r32(a), 1);
    assert_eq!(t.flags(), CF | AF);
    t.ok(&[0x83, 0x2b, 0x01]); // sub dword [rbx], 1
    assert_eq!(t.r32(a), 0);
    assert_eq!(t.flags(), ZF | PF);
    t.ok(&[0xf0, 0x48, 0x83, 0x33, 0xff]); // lock xor qword [rbx], -1
    assert_eq!(t.r64(a), u64::MAX);
    t.ok(&[0xf0, 0xfe, 0x03]); // lock inc byte [rbx]
    assert_eq!(t.r64(a), 0xffff_ffff_ffff_ff00);
    assert_eq!(t.flags(), ZF | PF | AF);
    t.cpu.gpr[RCX] = 0xff01;
    t.ok(&[0x3a, 0x0b]); // cmp cl, [rbx]: 1 - 0 = 1
    assert_eq!(t.flags(), 0);
    t.ok(&[0x66, 0x3b, 0x0b]); // cmp cx, [rbx]: 0xff01 - 0xff00
    assert_eq!(t.flags(), 0);
    // A read-only destination faults and changes nothing.
    t.cpu.gpr[RBX] = t.d + 4 * PAGE_SIZE;
    t.set_flags(CF);
    let e = t.run(&[0x01, 0x03]);
    assert!(matches!(e, Some(Exception::PageFault(_))));
    assert_eq!(t.flags(), CF);
    // Locked form too.
    let e = t.run(&[0xf0, 0x01, 0x03]);
    assert!(matches!(e, Some(Exception::PageFault(_))));
}

#[test]
fn inc_dec_keep_carry_neg_not() {
    let mut t = t();
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x7fff_ffff;
    t.ok(&[0xff, 0xc0]); // inc eax
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000);
    assert_eq!(t.flags(), CF | OF | SF | AF | PF);
    t.set_flags(0);
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0x48, 0xff, 0xc9]); // dec rcx
    assert_eq!(t.cpu.gpr[RCX], u64::MAX);
    assert_eq!(t.flags(), SF | AF | PF);
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0xf7, 0xd9]); // neg ecx
    assert_eq!(t.flags(), ZF | PF);
    t.cpu.gpr[RCX] = 0x8000_0000;
    t.ok(&[0xf7, 0xd9]);
    assert_eq!(t.cpu.gpr[RCX], 0x8000_0000);
    assert_eq!(t.flags(), CF | OF | SF | PF);
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0xf6, 0xd9]); // neg cl
    assert_eq!(t.cpu.gpr[RCX], 0xff);
    assert_eq!(t.flags(), CF | SF | AF | PF);
    t.set_flags(ZF);
    t.ok(&[0x48, 0xf7, 0xd1]); // not rcx
    assert_eq!(t.cpu.gpr[RCX], !0xffu64);
    assert_eq!(t.flags(), ZF);
}

// ------------------------------------------------------------------ shifts

#[test]
fn shift_by_one_flags() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0xc000_0000;
    t.ok(&[0xd1, 0xe0]); // shl eax, 1
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000);
    assert_eq!(t.flags() & !AF, CF | SF | PF);
    t.cpu.gpr[RAX] = 0x8000_0001;
    t.ok(&[0xd1, 0xe8]); // shr eax, 1
    assert_eq!(t.cpu.gpr[RAX], 0x4000_0000);
    assert_eq!(t.flags() & !AF, CF | OF | PF);
    t.cpu.gpr[RAX] = 0x8000_0001;
    t.ok(&[0xd1, 0xf8]); // sar eax, 1
    assert_eq!(t.cpu.gpr[RAX], 0xc000_0000);
    assert_eq!(t.flags() & !AF, CF | SF | PF);
    t.cpu.gpr[RAX] = 0x4000_0000_0000_0000;
    t.ok(&[0x48, 0xd1, 0xe0]); // shl rax, 1: sign change -> OF
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0000);
    assert_eq!(t.flags() & !AF, OF | SF | PF);
}

#[test]
fn shift_counts_0_31_63_and_masking() {
    let mut t = t();
    // Count 0 (after masking) leaves flags alone but still writes a 32-bit register.
    t.set_flags(CF | ZF | OF);
    t.cpu.gpr[RAX] = 0xdead_beef_0000_0001;
    t.cpu.gpr[RCX] = 32; // masked to 0 for 32-bit
    t.ok(&[0xd3, 0xe0]); // shl eax, cl
    assert_eq!(t.cpu.gpr[RAX], 1);
    assert_eq!(t.flags(), CF | ZF | OF);
    // 64-bit counts use six bits: 64 masks to 0.
    t.cpu.gpr[RAX] = 5;
    t.cpu.gpr[RCX] = 64;
    t.ok(&[0x48, 0xd3, 0xe0]);
    assert_eq!(t.cpu.gpr[RAX], 5);
    assert_eq!(t.flags(), CF | ZF | OF);
    t.cpu.gpr[RCX] = 63;
    t.cpu.gpr[RAX] = 3;
    t.ok(&[0x48, 0xd3, 0xe0]); // shl rax, 63
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0000);
    assert_eq!(t.flags() & (CF | ZF | SF), CF | SF); // bit 1 shifted out last
    t.cpu.gpr[RAX] = 0x8000_0000_0000_0000;
    t.ok(&[0x48, 0xd3, 0xf8]); // sar rax, 63
    assert_eq!(t.cpu.gpr[RAX], u64::MAX);
    assert_eq!(t.flags() & (CF | ZF | SF), SF);
    t.cpu.gpr[RAX] = 0x8000_0000;
    t.ok(&[0xc1, 0xe8, 31]); // shr eax, 31
    assert_eq!(t.cpu.gpr[RAX], 1);
    // OF is undefined for counts other than 1 (SDM Vol. 2B, SAL/SAR/SHL/SHR "Flags
    // Affected"); it follows the host (crate::undef), so only the defined flags are checked.
    assert_eq!(t.flags() & (CF | ZF | SF), 0);
    t.cpu.gpr[RAX] = 0x8000_0000;
    t.ok(&[0xc1, 0xf8, 31]); // sar eax, 31
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff);
    // 8-bit shifts by more than the width: SHL/SHR give 0, SAR fills with the sign.
    t.cpu.gpr[RAX] = 0x1180;
    t.cpu.gpr[RCX] = 10;
    t.ok(&[0xd2, 0xf8]); // sar al, cl
    assert_eq!(t.cpu.gpr[RAX], 0x11ff);
    assert!(t.cpu.flags.cf());
    t.cpu.gpr[RAX] = 0x1101;
    t.cpu.gpr[RCX] = 8;
    t.ok(&[0xd2, 0xe0]); // shl al, 8: bit 0 is the last one out
    assert_eq!(t.cpu.gpr[RAX], 0x1100);
    assert_eq!(t.flags() & (CF | ZF), CF | ZF);
    // Memory form.
    let a = t.d;
    t.cpu.gpr[RBX] = a;
    t.w64(a, 0x8000_0000_0000_0001);
    t.ok(&[0x48, 0xd1, 0x23]); // shl qword [rbx], 1
    assert_eq!(t.r64(a), 2);
    assert_eq!(t.flags() & (CF | OF), CF | OF);
}

#[test]
fn rotates() {
    let mut t = t();
    t.set_flags(ZF | SF);
    t.cpu.gpr[RAX] = 0x81;
    t.ok(&[0xd0, 0xc0]); // rol al, 1
    assert_eq!(t.cpu.gpr[RAX], 0x03);
    // Only CF and OF change: OF = MSB(result) ^ CF.
    assert_eq!(t.flags(), ZF | SF | CF | OF);
    t.set_flags(0);
    t.cpu.gpr[RAX] = 0x01;
    t.ok(&[0xd0, 0xc8]); // ror al, 1
    assert_eq!(t.cpu.gpr[RAX], 0x80);
    assert_eq!(t.flags(), CF | OF);
    // ROL by a multiple of the width (masked count non-zero): value kept, CF = LSB.
    t.cpu.gpr[RAX] = 0x01;
    t.cpu.gpr[RCX] = 16;
    t.set_flags(0);
    t.ok(&[0xd2, 0xc0]); // rol al, cl
    assert_eq!(t.cpu.gpr[RAX], 0x01);
    assert!(t.cpu.flags.cf());
    t.cpu.gpr[RAX] = 0x1234_5678_9abc_def0;
    t.ok(&[0x48, 0xc1, 0xc0, 0x10]); // rol rax, 16
    assert_eq!(t.cpu.gpr[RAX], 0x5678_9abc_def0_1234);
    t.ok(&[0x48, 0xc1, 0xc8, 0x10]); // ror rax, 16
    assert_eq!(t.cpu.gpr[RAX], 0x1234_5678_9abc_def0);
}

#[test]
fn rcl_rcr() {
    let mut t = t();
    t.set_flags(0);
    t.cpu.gpr[RAX] = 0x80;
    t.ok(&[0xd0, 0xd0]); // rcl al, 1
    assert_eq!(t.cpu.gpr[RAX], 0x00);
    assert_eq!(t.flags(), CF | OF);
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x01;
    t.ok(&[0xd0, 0xd8]); // rcr al, 1: CF in at the top, bit 0 out
    assert_eq!(t.cpu.gpr[RAX], 0x80);
    assert_eq!(t.flags(), CF | OF);
    // 8-bit rotates through 9 bits: a count of 9 is a full turn.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x5a;
    t.cpu.gpr[RCX] = 9;
    t.ok(&[0xd2, 0xd0]); // rcl al, cl
    assert_eq!(t.cpu.gpr[RAX], 0x5a);
    assert!(t.cpu.flags.cf());
    // 16-bit: count 17 is a full turn; 18 is one step.
    t.set_flags(0);
    t.cpu.gpr[RAX] = 0x8001;
    t.cpu.gpr[RCX] = 18;
    t.ok(&[0x66, 0xd3, 0xd8]); // rcr ax, cl (18 mod 17 = 1)
    assert_eq!(t.cpu.gpr[RAX], 0x4000);
    assert!(t.cpu.flags.cf());
    // RCL by 2 with CF=1: 0x40 -> (0x40 << 2) | (CF << 1) = 0x102 -> al = 0x02, CF = bit 8 = 1.
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0x40;
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0xd2, 0xd0]);
    assert_eq!(t.cpu.gpr[RAX], 0x02);
    assert!(t.cpu.flags.cf());
    // 64-bit RCL by 63: bit 0 moves to bit 63, CF takes old bit 1.
    t.set_flags(0);
    t.cpu.gpr[RAX] = 3;
    t.cpu.gpr[RCX] = 63;
    t.ok(&[0x48, 0xd3, 0xd0]);
    // 65-bit value 0:...011 rotated left 63 = rotated right 2: bit0 -> 63, bit1 -> 64 (CF),
    // old CF (0) -> bit 62.
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0000);
    assert!(t.cpu.flags.cf());
}

#[test]
fn shld_shrd() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0x1234_5678;
    t.cpu.gpr[RDX] = 0x9abc_def0;
    t.ok(&[0x0f, 0xa4, 0xd0, 0x08]); // shld eax, edx, 8
    assert_eq!(t.cpu.gpr[RAX], 0x3456_789a);
    // CF = bit 24 of the original (0x12 bit 0 = 0); 0x9a has even parity.
    assert_eq!(t.flags() & (CF | ZF | SF | PF), PF);
    t.cpu.gpr[RAX] = 0x1234_5678;
    t.ok(&[0x0f, 0xac, 0xd0, 0x04]); // shrd eax, edx, 4
    assert_eq!(t.cpu.gpr[RAX], 0x0123_4567);
    assert!(t.cpu.flags.cf()); // bit 3 of 0x...78
    t.cpu.gpr[RAX] = 0x1;
    t.cpu.gpr[RDX] = 0x8000_0000_0000_0000;
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0x48, 0x0f, 0xad, 0xd0]); // shrd rax, rdx, cl
    assert_eq!(t.cpu.gpr[RAX], 0);
    // CF = old bit 0; OF = sign change (0 -> 0: none).
    assert_eq!(t.flags() & (CF | ZF | OF), CF | ZF);
    t.cpu.gpr[RAX] = 0x4000_0000_0000_0000;
    t.cpu.gpr[RDX] = 0;
    t.ok(&[0x48, 0x0f, 0xa5, 0xd0]); // shld rax, rdx, cl (1): sign change
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0000);
    assert_eq!(t.flags() & (CF | OF | SF), OF | SF);
    // Count 0: nothing changes except the 32-bit zero extension.
    t.set_flags(ZF);
    t.cpu.gpr[RAX] = 0xffff_ffff_0000_0001;
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0x0f, 0xa5, 0xd0]);
    assert_eq!(t.cpu.gpr[RAX], 1);
    assert_eq!(t.flags(), ZF);
}

// ------------------------------------------------------------------ multiply / divide

#[test]
fn mul_and_imul() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0x8000_0000;
    t.cpu.gpr[RCX] = 4;
    t.cpu.gpr[RDX] = 0xffff_ffff_ffff_ffff;
    t.ok(&[0xf7, 0xe1]); // mul ecx
    assert_eq!((t.cpu.gpr[RDX], t.cpu.gpr[RAX]), (2, 0));
    assert_eq!(t.flags() & (CF | OF), CF | OF);
    t.cpu.gpr[RAX] = 0x10;
    t.cpu.gpr[RCX] = 0x10;
    t.ok(&[0xf6, 0xe1]); // mul cl
    assert_eq!(t.cpu.gpr[RAX], 0x100);
    assert_eq!(t.flags() & (CF | OF), CF | OF);
    t.cpu.gpr[RAX] = 3;
    t.cpu.gpr[RCX] = 5;
    t.ok(&[0x48, 0xf7, 0xe1]); // mul rcx
    assert_eq!((t.cpu.gpr[RDX], t.cpu.gpr[RAX]), (0, 15));
    assert_eq!(t.flags() & (CF | OF), 0);
    t.cpu.gpr[RAX] = 0xffff_ffff;
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0xf7, 0xe9]); // imul ecx: -1 * 1
    assert_eq!((t.cpu.gpr[RDX], t.cpu.gpr[RAX]), (0xffff_ffff, 0xffff_ffff));
    assert_eq!(t.flags() & (CF | OF), 0);
    t.cpu.gpr[RAX] = 1 << 62;
    t.cpu.gpr[RCX] = 4;
    t.ok(&[0x48, 0xf7, 0xe9]); // imul rcx
    assert_eq!((t.cpu.gpr[RDX], t.cpu.gpr[RAX]), (1, 0));
    assert_eq!(t.flags() & (CF | OF), CF | OF);
    t.cpu.gpr[RAX] = 0x4000_0000;
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0x0f, 0xaf, 0xc1]); // imul eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000);
    assert_eq!(t.flags() & (CF | OF), CF | OF);
    t.cpu.gpr[RCX] = 5;
    t.ok(&[0x48, 0x6b, 0xc1, 0xfd]); // imul rax, rcx, -3
    assert_eq!(t.cpu.gpr[RAX], (-15i64) as u64);
    assert_eq!(t.flags() & (CF | OF), 0);
    t.cpu.gpr[RCX] = 0x100;
    t.ok(&[0x66, 0x69, 0xc1, 0x00, 0x01]); // imul ax, cx, 0x100: 0x10000 overflows
    assert_eq!(t.cpu.gpr[RAX] & 0xffff, 0);
    assert_eq!(t.flags() & (CF | OF), CF | OF);
}

#[test]
fn div_and_idiv() {
    let mut t = t();
    t.cpu.gpr[RDX] = 1;
    t.cpu.gpr[RAX] = 0;
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0xf7, 0xf1]); // div ecx
    assert_eq!((t.cpu.gpr[RAX], t.cpu.gpr[RDX]), (0x8000_0000, 0));
    t.cpu.gpr[RAX] = 0x0100;
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0xf6, 0xf1]); // div cl
    assert_eq!(t.cpu.gpr[RAX], 0x0080);
    t.cpu.gpr[RDX] = 0xffff_ffff;
    t.cpu.gpr[RAX] = 0xffff_fff9; // -7
    t.cpu.gpr[RCX] = 2;
    t.ok(&[0xf7, 0xf9]); // idiv ecx
    assert_eq!((t.cpu.gpr[RAX], t.cpu.gpr[RDX]), (0xffff_fffd, 0xffff_ffff));
    t.cpu.gpr[RDX] = 0;
    t.cpu.gpr[RAX] = 100;
    t.cpu.gpr[RCX] = (-7i64) as u64;
    t.ok(&[0x48, 0xf7, 0xf9]); // idiv rcx: 100 / -7 = -14 rem 2
    assert_eq!((t.cpu.gpr[RAX], t.cpu.gpr[RDX]), ((-14i64) as u64, 2));
}

#[test]
fn divide_errors() {
    let mut t = t();
    let check = |t: &mut T, bytes: &[u8], rax: u64, rdx: u64, rcx: u64| {
        t.cpu.gpr[RAX] = rax;
        t.cpu.gpr[RDX] = rdx;
        t.cpu.gpr[RCX] = rcx;
        assert_eq!(t.run(bytes), Some(Exception::DivideError), "{bytes:x?}");
        assert_eq!((t.cpu.gpr[RAX], t.cpu.gpr[RDX]), (rax, rdx));
    };
    check(&mut t, &[0xf7, 0xf1], 5, 0, 0); // div ecx by 0
    check(&mut t, &[0xf7, 0xf1], 0, 2, 2); // quotient 2^32
    check(&mut t, &[0xf6, 0xf1], 0x200, 0, 2); // div cl: quotient 0x100
    check(&mut t, &[0x48, 0xf7, 0xf9], 1 << 63, u64::MAX, u64::MAX); // idiv MIN / -1
    check(&mut t, &[0xf7, 0xf9], 0x8000_0000, 0xffff_ffff, 0xffff_ffff); // idiv ecx
    check(&mut t, &[0xf6, 0xf9], 0xff80, 0, 0xff); // idiv cl: -128 / -1
    check(&mut t, &[0x48, 0xf7, 0xf9], 0, 0, 0); // idiv by 0
                                                 // The largest quotients that fit do not fault.
    t.cpu.gpr[RAX] = 0xff80;
    t.cpu.gpr[RCX] = 0x01;
    t.ok(&[0xf6, 0xf9]); // -128 / 1
    assert_eq!(t.cpu.gpr[RAX] & 0xffff, 0x0080);
}

// ------------------------------------------------------------------ bit operations

#[test]
fn bt_register_forms() {
    let mut t = t();
    t.set_flags(ZF);
    t.cpu.gpr[RAX] = 0b10;
    t.cpu.gpr[RCX] = 33; // masked to bit 1 for a 32-bit operand
    t.ok(&[0x0f, 0xa3, 0xc8]); // bt eax, ecx
    assert!(t.cpu.flags.cf());
    assert!(t.cpu.flags.zf(), "ZF is kept");
    t.ok(&[0x0f, 0xb3, 0xc8]); // btr eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0);
    assert!(t.cpu.flags.cf());
    t.ok(&[0x48, 0x0f, 0xba, 0xf8, 0x41]); // btc rax, 65 -> bit 1
    assert_eq!(t.cpu.gpr[RAX], 2);
    assert!(!t.cpu.flags.cf());
    t.cpu.gpr[RCX] = 63;
    t.ok(&[0x48, 0x0f, 0xab, 0xc8]); // bts rax, rcx
    assert_eq!(t.cpu.gpr[RAX], 0x8000_0000_0000_0002);
}

#[test]
fn bt_memory_with_signed_register_offsets() {
    let mut t = t();
    let base = t.d + 0x200;
    t.cpu.gpr[RBX] = base;
    t.w64(base - 8, 0x8000_0000_0000_0000);
    t.cpu.gpr[RCX] = u64::MAX; // bit -1: bit 63 of the qword before
    t.ok(&[0x48, 0x0f, 0xa3, 0x0b]); // bt [rbx], rcx
    assert!(t.cpu.flags.cf());
    t.cpu.gpr[RCX] = (-9i64) as u64; // dword at -4, bit 23
    t.ok(&[0x0f, 0xab, 0x0b]); // bts [rbx], ecx
    assert!(!t.cpu.flags.cf());
    assert_eq!(t.r32(base - 4), 0x8080_0000);
    t.cpu.gpr[RCX] = 35;
    t.w32(base + 4, 0xff);
    t.ok(&[0xf0, 0x0f, 0xb3, 0x0b]); // lock btr [rbx], ecx: dword +4, bit 3
    assert!(t.cpu.flags.cf());
    assert_eq!(t.r32(base + 4), 0xf7);
    // 16-bit offsets are signed 16-bit values: 0x7ff8 is word 2047, bit 8.
    t.cpu.gpr[RCX] = 0xffff_0000_0000_7ff8;
    t.ok(&[0x66, 0x0f, 0xbb, 0x0b]); // btc [rbx], cx
    assert_eq!(t.rb(base + 4095, 1), vec![1]);
    t.cpu.gpr[RCX] = 0xfff0; // -16: the word before, bit 0
    t.ok(&[0x66, 0x0f, 0xbb, 0x0b]);
    assert_eq!(t.rb(base - 2, 1), vec![0x81]); // 0x80 from the BTS above
                                               // Immediate offsets stay within the operand.
    t.w32(base, 0);
    t.ok(&[0x0f, 0xba, 0x2b, 0x24]); // bts dword [rbx], 36 -> bit 4
    assert_eq!(t.r32(base), 0x10);
}

#[test]
fn bsf_bsr_tzcnt_lzcnt_bswap() {
    let mut t = t();
    // The baseline CPU: no BMI1, LZCNT or POPCNT.
    t.cpu.config = Arc::new(CpuConfig {
        level: cetbox_cpu::CpuLevel::X86_64,
        ..CpuConfig::default()
    });
    t.cpu.gpr[RCX] = 0x80;
    t.ok(&[0x0f, 0xbc, 0xc1]); // bsf eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 7);
    assert!(!t.cpu.flags.zf());
    t.cpu.gpr[RCX] = 0x8000_0000_0000_0001;
    t.ok(&[0x48, 0x0f, 0xbd, 0xc1]); // bsr rax, rcx
    assert_eq!(t.cpu.gpr[RAX], 63);
    // Zero source: ZF set, destination untouched (all 64 bits).
    t.cpu.gpr[RAX] = 0xdead_beef_1234_5678;
    t.cpu.gpr[RCX] = 0xffff_ffff_0000_0000;
    t.ok(&[0x0f, 0xbc, 0xc1]);
    assert_eq!(t.cpu.gpr[RAX], 0xdead_beef_1234_5678);
    assert_eq!(t.flags(), ZF | PF);
    // Without BMI1/ABM, F3 0F BC/BD are BSF/BSR.
    t.ok(&[0xf3, 0x0f, 0xbc, 0xc1]);
    assert_eq!(t.cpu.gpr[RAX], 0xdead_beef_1234_5678);
    assert!(t.cpu.flags.zf());
    assert!(!t.cpu.flags.cf());
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0xf3, 0x0f, 0xbd, 0xc1]); // "lzcnt" = bsr: 0, not 31
    assert_eq!(t.cpu.gpr[RAX], 0);
    // POPCNT is outside the model.
    assert!(matches!(
        t.run(&[0xf3, 0x0f, 0xb8, 0xc1]),
        Some(Exception::InvalidOpcode(_))
    ));
    // On x86-64-v3 they are TZCNT, LZCNT and POPCNT.
    t.cpu.config = Arc::new(CpuConfig::default());
    t.cpu.gpr[RCX] = 1;
    t.ok(&[0xf3, 0x0f, 0xbd, 0xc1]); // lzcnt eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 31);
    t.cpu.gpr[RCX] = 0;
    t.ok(&[0xf3, 0x0f, 0xbc, 0xc1]); // tzcnt eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 32);
    assert!(t.cpu.flags.cf());
    t.cpu.gpr[RCX] = 0xf0f0;
    t.ok(&[0xf3, 0x0f, 0xb8, 0xc1]); // popcnt eax, ecx
    assert_eq!(t.cpu.gpr[RAX], 8);
    t.cpu.gpr[RAX] = 0xffff_ffff_1122_3344;
    t.ok(&[0x0f, 0xc8]); // bswap eax
    assert_eq!(t.cpu.gpr[RAX], 0x4433_2211);
    t.cpu.gpr[RAX] = 0x0102_0304_0506_0708;
    t.ok(&[0x48, 0x0f, 0xc8]);
    assert_eq!(t.cpu.gpr[RAX], 0x0807_0605_0403_0201);
}

// ------------------------------------------------------------------ data movement

#[test]
fn mov_forms() {
    let mut t = t();
    t.ok(&[0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]); // mov rax, imm64
    assert_eq!(t.cpu.gpr[RAX], 0x1122_3344_5566_7788);
    t.ok(&[0xb8, 0x01, 0, 0, 0]); // mov eax, 1 zero-extends
    assert_eq!(t.cpu.gpr[RAX], 1);
    t.ok(&[0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff]); // mov rax, -1 (imm32 sign-extended)
    assert_eq!(t.cpu.gpr[RAX], u64::MAX);
    t.cpu.gpr[RCX] = 0x1234;
    t.ok(&[0x88, 0xcc]); // mov ah, cl
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_34ff);
    let a = t.d + 0x40;
    t.w64(a, 0x1122_3344_5566_7788);
    let mut moffs = vec![0xa0]; // mov al, [moffs64]
    moffs.extend_from_slice(&a.to_le_bytes());
    t.ok(&moffs);
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_3488);
    let mut st = vec![0x48, 0xa3]; // mov [moffs64], rax
    st.extend_from_slice(&(a + 8).to_le_bytes());
    t.ok(&st);
    assert_eq!(t.r64(a + 8), 0xffff_ffff_ffff_3488);
    t.cpu.gpr[RBX] = a;
    t.ok(&[0x66, 0xc7, 0x43, 0x02, 0xcd, 0xab]); // mov word [rbx+2], 0xabcd
    assert_eq!(t.r64(a), 0x1122_3344_abcd_7788);
    t.ok(&[0x8b, 0x0b]); // mov ecx, [rbx]
    assert_eq!(t.cpu.gpr[RCX], 0xabcd_7788);
}

#[test]
fn movzx_movsx_movsxd() {
    let mut t = t();
    t.cpu.gpr[RCX] = 0x8081;
    t.ok(&[0x48, 0x0f, 0xbe, 0xc1]); // movsx rax, cl
    assert_eq!(t.cpu.gpr[RAX], (-127i64) as u64);
    t.ok(&[0x0f, 0xbf, 0xc1]); // movsx eax, cx
    assert_eq!(t.cpu.gpr[RAX], 0xffff_8081);
    t.ok(&[0x0f, 0xb7, 0xc1]); // movzx eax, cx
    assert_eq!(t.cpu.gpr[RAX], 0x8081);
    t.cpu.gpr[RAX] = u64::MAX;
    t.ok(&[0x66, 0x0f, 0xb6, 0xc1]); // movzx ax, cl
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_0081);
    t.cpu.gpr[RCX] = 0x1_8000_0000;
    t.ok(&[0x48, 0x63, 0xc1]); // movsxd rax, ecx
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_8000_0000);
}

#[test]
fn lea_address_sizes_and_segments() {
    let mut t = t();
    t.cpu.gpr[RBX] = 0x1000;
    t.cpu.gpr[RCX] = 3;
    t.ok(&[0x48, 0x8d, 0x44, 0x8b, 0x08]); // lea rax, [rbx+rcx*4+8]
    assert_eq!(t.cpu.gpr[RAX], 0x1014);
    t.cpu.gpr[RBX] = 0xffff_fff0;
    t.cpu.gpr[RCX] = 0x10;
    t.ok(&[0x67, 0x48, 0x8d, 0x44, 0x0b, 0x08]); // lea rax, [ebx+ecx+8]: wraps at 4 GiB
    assert_eq!(t.cpu.gpr[RAX], 8);
    t.ok(&[0x66, 0x8d, 0x44, 0x0b, 0x08]); // lea ax, [rbx+rcx+8]: low 16 bits
    assert_eq!(t.cpu.gpr[RAX], 0x0008);
    t.cpu.fs_base = 0x7000_0000;
    t.cpu.gpr[RBX] = 0x20;
    t.ok(&[0x64, 0x48, 0x8d, 0x03]); // lea rax, fs:[rbx]: no segment base
    assert_eq!(t.cpu.gpr[RAX], 0x20);
    let s = space();
    t.ok(&[0x48, 0x8d, 0x05, 0x10, 0, 0, 0]); // lea rax, [rip+0x10]
    assert_eq!(t.cpu.gpr[RAX], s.code + 7 + 0x10);
}

#[test]
fn xchg_cmov_setcc() {
    let mut t = t();
    let a = t.d + 0x80;
    t.cpu.gpr[RBX] = a;
    t.w64(a, 0x1111_2222_3333_4444);
    t.cpu.gpr[RAX] = 0xaaaa_bbbb_cccc_dddd;
    t.ok(&[0x87, 0x03]); // xchg [rbx], eax
    assert_eq!(t.cpu.gpr[RAX], 0x3333_4444);
    assert_eq!(t.r64(a), 0x1111_2222_cccc_dddd);
    t.cpu.gpr[RCX] = 7;
    t.ok(&[0x48, 0x87, 0xc8]); // xchg rax, rcx
    assert_eq!((t.cpu.gpr[RAX], t.cpu.gpr[RCX]), (7, 0x3333_4444));
    // CMOV with a 32-bit destination zero-extends even when not taken.
    t.set_flags(ZF);
    t.cpu.gpr[RAX] = 0xffff_ffff_0000_0001;
    t.ok(&[0x0f, 0x45, 0xc1]); // cmovne eax, ecx (not taken)
    assert_eq!(t.cpu.gpr[RAX], 1);
    t.ok(&[0x48, 0x0f, 0x44, 0xc1]); // cmove rax, rcx (taken)
    assert_eq!(t.cpu.gpr[RAX], 0x3333_4444);
    t.cpu.gpr[RAX] = 0xffff_ffff_0000_0001;
    t.ok(&[0x48, 0x0f, 0x45, 0xc1]); // cmovne rax, rcx: 64-bit not taken keeps all bits
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_0000_0001);
    // The memory source is read even when the condition is false.
    t.cpu.gpr[RBX] = 0x10;
    assert!(matches!(
        t.run(&[0x0f, 0x45, 0x03]),
        Some(Exception::PageFault(_))
    ));
    t.set_flags(CF);
    t.cpu.gpr[RAX] = 0xff00;
    t.ok(&[0x0f, 0x92, 0xc0]); // setb al
    t.ok(&[0x0f, 0x94, 0xc4]); // sete ah
    assert_eq!(t.cpu.gpr[RAX], 0x0001);
    t.set_flags(SF);
    t.ok(&[0x0f, 0x9c, 0xc0]); // setl al: SF != OF
    assert_eq!(t.cpu.gpr[RAX] & 0xff, 1);
}

#[test]
fn push_pop_forms() {
    let mut t = t();
    let sp = t.cpu.gpr[RSP];
    t.cpu.gpr[RAX] = 0x1122_3344_5566_7788;
    t.ok(&[0x50]); // push rax
    assert_eq!(t.cpu.gpr[RSP], sp - 8);
    assert_eq!(t.r64(sp - 8), 0x1122_3344_5566_7788);
    t.ok(&[0x59]); // pop rcx
    assert_eq!(t.cpu.gpr[RCX], 0x1122_3344_5566_7788);
    assert_eq!(t.cpu.gpr[RSP], sp);
    t.ok(&[0x6a, 0xff]); // push -1
    assert_eq!(t.r64(sp - 8), u64::MAX);
    t.ok(&[0x68, 0x00, 0x00, 0x00, 0x80]); // push 0x80000000 (sign-extended)
    assert_eq!(t.r64(sp - 16), 0xffff_ffff_8000_0000);
    assert_eq!(t.cpu.gpr[RSP], sp - 16);
    t.ok(&[0x66, 0x50]); // push ax
    assert_eq!(t.cpu.gpr[RSP], sp - 18);
    assert_eq!(t.rb(sp - 18, 2), vec![0x88, 0x77]);
    t.ok(&[0x66, 0x5a]); // pop dx
    assert_eq!(t.cpu.gpr[RDX] & 0xffff, 0x7788);
    assert_eq!(t.cpu.gpr[RSP], sp - 16);
    // push rsp pushes the old value; pop rsp loads the popped value.
    t.ok(&[0x54]);
    assert_eq!(t.r64(sp - 24), sp - 16);
    t.ok(&[0x5c]);
    assert_eq!(t.cpu.gpr[RSP], sp - 16);
    // pop [rsp+8]: the address uses the incremented RSP.
    t.w64(sp - 16, 0xabcd);
    t.ok(&[0x8f, 0x44, 0x24, 0x08]);
    assert_eq!(t.cpu.gpr[RSP], sp - 8);
    assert_eq!(t.r64(sp), 0xabcd);
    t.cpu.gpr[RBX] = sp;
    t.ok(&[0xff, 0x33]); // push qword [rbx]
    assert_eq!(t.r64(sp - 16), 0xabcd);
    // A push that faults changes nothing.
    t.cpu.gpr[RSP] = 0x10;
    assert!(matches!(t.run(&[0x50]), Some(Exception::PageFault(_))));
    assert_eq!(t.cpu.gpr[RSP], 0x10);
}

#[test]
fn pushf_popf_lahf_sahf() {
    let mut t = t();
    t.set_flags(CF | ZF);
    t.ok(&[0x9c]); // pushfq
    let sp = t.cpu.gpr[RSP];
    assert_eq!(t.r64(sp), 0x202 | CF | ZF);
    // POPFQ changes only the user-writable flags: not IF (bit 9), IOPL (12-13), VM, VIF/VIP.
    t.w64(sp, 0xffff_ffff & !(1 << 8));
    t.ok(&[0x9d]); // popfq
    let f = t.cpu.rflags();
    assert_eq!(f & ARITH, ARITH);
    assert_ne!(f & DF, 0);
    assert_ne!(f & (1 << 18), 0, "AC");
    assert_ne!(f & (1 << 21), 0, "ID");
    assert_eq!(f & (3 << 12), 0, "IOPL");
    assert_eq!(f & (1 << 9), 1 << 9, "IF");
    assert_eq!(f & (1 << 17), 0, "VM");
    t.set_flags(SF | AF | CF | OF);
    t.cpu.gpr[RAX] = 0xffff;
    t.ok(&[0x9f]); // lahf
    assert_eq!(t.cpu.gpr[RAX], 0x93ff);
    t.cpu.gpr[RAX] = 0x4400; // ZF | PF
    t.ok(&[0x9e]); // sahf
    assert_eq!(t.flags(), ZF | PF | OF, "OF is not in AH");
}

#[test]
fn sign_extensions_and_flag_bits() {
    let mut t = t();
    t.cpu.gpr[RAX] = 0xffff_ffff_ffff_0080;
    t.ok(&[0x66, 0x98]); // cbw
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_ff80);
    t.cpu.gpr[RAX] = 0xffff_ffff_0000_8000;
    t.ok(&[0x98]); // cwde
    assert_eq!(t.cpu.gpr[RAX], 0xffff_8000);
    t.ok(&[0x48, 0x98]); // cdqe
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_8000);
    t.cpu.gpr[RDX] = 0x1234_5678_0000_0000;
    t.ok(&[0x66, 0x99]); // cwd
    assert_eq!(t.cpu.gpr[RDX], 0x1234_5678_0000_ffff);
    t.ok(&[0x99]); // cdq
    assert_eq!(t.cpu.gpr[RDX], 0xffff_ffff);
    t.cpu.gpr[RAX] = 1;
    t.ok(&[0x48, 0x99]); // cqo
    assert_eq!(t.cpu.gpr[RDX], 0);
    t.set_flags(ZF);
    t.ok(&[0xf9]); // stc
    assert_eq!(t.flags(), ZF | CF);
    t.ok(&[0xf5]); // cmc
    assert_eq!(t.flags(), ZF);
    t.ok(&[0xf5]);
    t.ok(&[0xf8]); // clc
    assert_eq!(t.flags(), ZF);
    t.ok(&[0xfd]); // std
    assert!(t.cpu.flags.df());
    t.ok(&[0xfc]); // cld
    assert!(!t.cpu.flags.df());
}

#[test]
fn enter_leave_xlat_segments() {
    let mut t = t();
    let sp = t.cpu.gpr[RSP];
    t.cpu.gpr[RBP] = 0x1234;
    t.ok(&[0xc8, 0x20, 0x00, 0x00]); // enter 0x20, 0
    assert_eq!(t.r64(sp - 8), 0x1234);
    assert_eq!(t.cpu.gpr[RBP], sp - 8);
    assert_eq!(t.cpu.gpr[RSP], sp - 8 - 0x20);
    t.ok(&[0xc9]); // leave
    assert_eq!(t.cpu.gpr[RBP], 0x1234);
    assert_eq!(t.cpu.gpr[RSP], sp);
    // Nested level 2: pushes rbp, the display entry at [rbp-8], then the new frame.
    let outer = t.d + 0x800;
    t.w64(outer - 8, 0x5555);
    t.cpu.gpr[RBP] = outer;
    t.ok(&[0xc8, 0x08, 0x00, 0x02]); // enter 8, 2
    assert_eq!(t.r64(sp - 8), outer);
    assert_eq!(t.r64(sp - 16), 0x5555);
    assert_eq!(t.r64(sp - 24), sp - 8);
    assert_eq!(t.cpu.gpr[RBP], sp - 8);
    assert_eq!(t.cpu.gpr[RSP], sp - 24 - 8);
    // XLAT: AL = [RBX + AL].
    let table = t.d + 0x300;
    t.wb(table + 0xfe, &[0x42]);
    t.cpu.gpr[RBX] = table;
    t.cpu.gpr[RAX] = 0x11fe;
    t.ok(&[0xd7]);
    assert_eq!(t.cpu.gpr[RAX], 0x1142);
    // Segment registers: reading gives the selector; only reloading the same one works.
    t.cpu.gpr[RAX] = u64::MAX;
    t.ok(&[0x8c, 0xe0]); // mov eax, fs
    assert_eq!(t.cpu.gpr[RAX], 0);
    t.ok(&[0x8c, 0xd0]); // mov eax, ss
    assert_eq!(t.cpu.gpr[RAX], 0x2b);
    t.ok(&[0x8e, 0xd0]); // mov ss, eax (same selector)
    t.cpu.gpr[RAX] = 0x2b;
    assert_eq!(t.run(&[0x8e, 0xe0]), Some(Exception::GeneralProtection)); // mov fs, eax
}

// ------------------------------------------------------------------ CMPXCHG / XADD

#[test]
fn cmpxchg_success_and_failure() {
    let mut t = t();
    let a = t.d + 0x40;
    t.cpu.gpr[RBX] = a;
    for lock in [false, true] {
        let mut code = vec![];
        if lock {
            code.push(0xf0);
        }
        code.extend_from_slice(&[0x0f, 0xb1, 0x0b]); // cmpxchg [rbx], ecx
        t.w64(a, 0xaaaa_aaaa_0000_0005);
        t.cpu.gpr[RAX] = 0xffff_ffff_0000_0005;
        t.cpu.gpr[RCX] = 9;
        t.ok(&code);
        assert_eq!(t.r64(a), 0xaaaa_aaaa_0000_0009);
        assert_eq!(t.flags(), ZF | PF);
        assert_eq!(
            t.cpu.gpr[RAX], 0xffff_ffff_0000_0005,
            "RAX untouched on success"
        );
        t.cpu.gpr[RAX] = 3;
        t.ok(&code);
        assert_eq!(t.r64(a), 0xaaaa_aaaa_0000_0009);
        assert_eq!(t.cpu.gpr[RAX], 9);
        // 3 - 9 borrows.
        assert_eq!(t.flags(), CF | SF | AF | PF);
    }
    // The unlocked form writes the destination even on failure: a read-only page faults.
    t.cpu.gpr[RBX] = t.d + 4 * PAGE_SIZE;
    t.cpu.gpr[RAX] = 1;
    assert!(matches!(
        t.run(&[0x0f, 0xb1, 0x0b]),
        Some(Exception::PageFault(_))
    ));
    assert_eq!(t.cpu.gpr[RAX], 1);
    // Byte and 64-bit register forms.
    t.cpu.gpr[RAX] = 0x11;
    t.cpu.gpr[RCX] = 0x11;
    t.cpu.gpr[RDX] = 0x22;
    t.ok(&[0x0f, 0xb0, 0xd1]); // cmpxchg cl, dl
    assert_eq!(t.cpu.gpr[RCX], 0x22);
    t.cpu.gpr[RAX] = 1 << 40;
    t.ok(&[0x48, 0x0f, 0xb1, 0xd1]); // cmpxchg rcx, rdx (fails)
    assert_eq!(t.cpu.gpr[RAX], 0x22);
    assert!(!t.cpu.flags.zf());
}

#[test]
fn cmpxchg8b() {
    let mut t = t();
    let a = t.d + 0x48;
    t.cpu.gpr[RBX] = 0x5555_6666;
    t.cpu.gpr[RCX] = 0x7777_8888;
    t.cpu.gpr[RSI] = a;
    t.w64(a, 0x1111_2222_3333_4444);
    t.cpu.gpr[RAX] = 0x3333_4444;
    t.cpu.gpr[RDX] = 0x1111_2222;
    t.set_flags(CF);
    t.ok(&[0xf0, 0x0f, 0xc7, 0x0e]); // lock cmpxchg8b [rsi]
    assert_eq!(t.r64(a), 0x7777_8888_5555_6666);
    assert_eq!(t.flags(), CF | ZF, "only ZF changes");
    t.ok(&[0x0f, 0xc7, 0x0e]); // fails now
    assert_eq!((t.cpu.gpr[RDX], t.cpu.gpr[RAX]), (0x7777_8888, 0x5555_6666));
    assert_eq!(t.flags(), CF);
    // CMPXCHG16B needs a 16-byte-aligned operand (#GP(0) otherwise)...
    assert_eq!(
        t.run(&[0x48, 0x0f, 0xc7, 0x0e]),
        Some(Exception::GeneralProtection)
    );
    // ...and is outside the baseline model (no CX16).
    t.cpu.config = Arc::new(CpuConfig {
        level: cetbox_cpu::CpuLevel::X86_64,
        ..CpuConfig::default()
    });
    assert!(matches!(
        t.run(&[0x48, 0x0f, 0xc7, 0x0e]),
        Some(Exception::InvalidOpcode(_))
    ));
}

#[test]
fn xadd_forms() {
    let mut t = t();
    let a = t.d + 0x40;
    t.cpu.gpr[RBX] = a;
    t.w32(a, 0xffff_ffff);
    t.cpu.gpr[RAX] = 1;
    t.ok(&[0xf0, 0x0f, 0xc1, 0x03]); // lock xadd [rbx], eax
    assert_eq!(t.r32(a), 0);
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff);
    assert_eq!(t.flags(), CF | ZF | AF | PF);
    t.cpu.gpr[RCX] = 5;
    t.cpu.gpr[RDX] = 7;
    t.ok(&[0x48, 0x0f, 0xc1, 0xd1]); // xadd rcx, rdx
    assert_eq!((t.cpu.gpr[RCX], t.cpu.gpr[RDX]), (12, 5));
}

// ------------------------------------------------------------------ strings

#[test]
fn rep_movsb_overlapping_forward_replicates() {
    let mut t = t();
    let s = t.d + 0x100;
    t.wb(s, b"abcdefgh");
    t.cpu.gpr[RSI] = s;
    t.cpu.gpr[RDI] = s + 1;
    t.cpu.gpr[RCX] = 6;
    t.ok(&[0xf3, 0xa4]);
    assert_eq!(t.rb(s, 8), b"aaaaaaah");
    assert_eq!(t.cpu.gpr[RCX], 0);
    assert_eq!((t.cpu.gpr[RSI], t.cpu.gpr[RDI]), (s + 6, s + 7));
}

#[test]
fn rep_movsb_across_pages() {
    let mut t = t();
    let src = t.d + 100;
    let dst = t.d + 2 * PAGE_SIZE - 300;
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    t.wb(src, &data);
    t.cpu.gpr[RSI] = src;
    t.cpu.gpr[RDI] = dst;
    t.cpu.gpr[RCX] = 5000;
    t.ok(&[0xf3, 0xa4]);
    assert_eq!(t.rb(dst, 5000), data);
    assert_eq!(
        (t.cpu.gpr[RCX], t.cpu.gpr[RSI], t.cpu.gpr[RDI]),
        (0, src + 5000, dst + 5000)
    );
    // Overlapping forward copy with dst < src is an ordinary memmove.
    t.cpu.gpr[RSI] = dst + 8;
    t.cpu.gpr[RDI] = dst;
    t.cpu.gpr[RCX] = 600;
    t.ok(&[0xf3, 0x48, 0xa5]); // rep movsq
    let mut expect = data.clone();
    expect.copy_within(8..8 + 4800, 0);
    assert_eq!(t.rb(dst, 5000), expect);
}

#[test]
fn rep_movs_backward() {
    let mut t = t();
    let s = t.d + PAGE_SIZE - 16; // crosses into page 1
    let vals: Vec<u8> = (1..=32).collect();
    t.wb(s, &vals);
    t.set_flags(0);
    t.cpu.set_rflags(t.cpu.rflags() | DF);
    // Move the 32 bytes up by 8 with DF=1, last qword first.
    t.cpu.gpr[RSI] = s + 24;
    t.cpu.gpr[RDI] = s + 32;
    t.cpu.gpr[RCX] = 4;
    t.ok(&[0xf3, 0x48, 0xa5]);
    let mut expect = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
    expect.extend(1..=32u8);
    assert_eq!(t.rb(s, 40), expect);
    assert_eq!((t.cpu.gpr[RSI], t.cpu.gpr[RDI]), (s - 8, s));
    // Backward overlap with dst < src replicates.
    t.wb(s, b"abcdefgh");
    t.cpu.gpr[RSI] = s + 7;
    t.cpu.gpr[RDI] = s + 6;
    t.cpu.gpr[RCX] = 3;
    t.ok(&[0xf3, 0xa4]);
    assert_eq!(t.rb(s, 8), b"abcdhhhh");
}

#[test]
fn rep_stos() {
    let mut t = t();
    let d = t.d + 50;
    t.cpu.gpr[RAX] = 0x1122_3344_5566_77ab;
    t.cpu.gpr[RDI] = d;
    t.cpu.gpr[RCX] = 6000;
    t.ok(&[0xf3, 0xaa]); // rep stosb
    assert!(t.rb(d, 6000).iter().all(|&b| b == 0xab));
    assert_eq!(t.rb(d + 6000, 1), vec![0]);
    assert_eq!((t.cpu.gpr[RCX], t.cpu.gpr[RDI]), (0, d + 6000));
    t.cpu.gpr[RDI] = d + 1;
    t.cpu.gpr[RCX] = 700;
    t.ok(&[0xf3, 0x48, 0xab]); // rep stosq (misaligned, crossing a page)
    for k in 0..700 {
        assert_eq!(t.r64(d + 1 + 8 * k), 0x1122_3344_5566_77ab);
    }
    t.cpu.gpr[RDI] = d;
    t.cpu.gpr[RCX] = 3;
    t.ok(&[0xf3, 0x66, 0xab]); // rep stosw
    assert_eq!(t.rb(d, 7), vec![0xab, 0x77, 0xab, 0x77, 0xab, 0x77, 0x33]);
    t.cpu.gpr[RDI] = d;
    t.ok(&[0xab]); // stosd, no REP
    assert_eq!(t.r32(d), 0x5566_77ab);
    assert_eq!(t.cpu.gpr[RDI], d + 4);
}

#[test]
fn rep_fault_midway_leaves_progress() {
    let mut t = t();
    let ro = t.d + 4 * PAGE_SIZE;
    let src = t.d;
    t.wb(src, &[7u8; 64]);
    t.cpu.gpr[RSI] = src;
    t.cpu.gpr[RDI] = ro - 10;
    t.cpu.gpr[RCX] = 20;
    let e = t.run(&[0xf3, 0xa4]);
    match e {
        Some(Exception::PageFault(f)) => assert_eq!(f.addr, ro),
        other => panic!("{other:?}"),
    }
    assert_eq!(t.cpu.gpr[RCX], 10);
    assert_eq!(t.cpu.gpr[RSI], src + 10);
    assert_eq!(t.cpu.gpr[RDI], ro);
    assert_eq!(t.rb(ro - 10, 10), vec![7u8; 10]);
    // Same for STOSQ: two qwords fit.
    t.cpu.gpr[RDI] = ro - 16;
    t.cpu.gpr[RCX] = 5;
    assert!(matches!(
        t.run(&[0xf3, 0x48, 0xab]),
        Some(Exception::PageFault(_))
    ));
    assert_eq!((t.cpu.gpr[RCX], t.cpu.gpr[RDI]), (3, ro));
}

#[test]
fn repe_cmpsb_stops_at_difference() {
    let mut t = t();
    let a = t.d + 0x10;
    let b = t.d + 0x100;
    t.wb(a, b"hello");
    t.wb(b, b"help!");
    t.cpu.gpr[RSI] = a;
    t.cpu.gpr[RDI] = b;
    t.cpu.gpr[RCX] = 5;
    t.ok(&[0xf3, 0xa6]);
    // Stops after comparing 'l' with 'p' (4th byte): 0x6c - 0x70 = 0xfc borrows.
    assert_eq!(t.cpu.gpr[RCX], 1);
    assert_eq!((t.cpu.gpr[RSI], t.cpu.gpr[RDI]), (a + 4, b + 4));
    assert_eq!(t.flags(), CF | SF | PF);
    // Equal strings run to the end with ZF set.
    t.wb(b, b"hello");
    t.cpu.gpr[RSI] = a;
    t.cpu.gpr[RDI] = b;
    t.cpu.gpr[RCX] = 5;
    t.ok(&[0xf3, 0xa6]);
    assert_eq!(t.cpu.gpr[RCX], 0);
    assert_eq!(t.flags(), ZF | PF);
    // A zero count changes neither registers nor flags.
    t.set_flags(CF);
    t.ok(&[0xf3, 0xa6]);
    assert_eq!(t.flags(), CF);
    assert_eq!(t.cpu.gpr[RSI], a + 5);
    // CMPSQ without REP.
    t.w64(a, 5);
    t.w64(b, 6);
    t.cpu.gpr[RSI] = a;
    t.cpu.gpr[RDI] = b;
    t.ok(&[0x48, 0xa7]);
    assert_eq!(t.flags(), CF | SF | AF | PF);
    assert_eq!((t.cpu.gpr[RSI], t.cpu.gpr[RDI]), (a + 8, b + 8));
}

#[test]
fn repne_scasb_strlen() {
    let mut t = t();
    let s = t.d + 0x20;
    t.wb(s, b"strlen\0");
    t.cpu.gpr[RDI] = s;
    t.cpu.gpr[RCX] = u64::MAX;
    t.cpu.gpr[RAX] = 0;
    t.ok(&[0xf2, 0xae]);
    // 7 bytes scanned: RCX = -1 - 7, RDI past the NUL.
    assert_eq!(t.cpu.gpr[RCX], (-8i64) as u64);
    assert_eq!(t.cpu.gpr[RDI], s + 7);
    assert!(t.cpu.flags.zf());
    // REPE SCASD stops at the first different dword.
    t.wb(s, &[1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    t.cpu.gpr[RDI] = s;
    t.cpu.gpr[RCX] = 3;
    t.cpu.gpr[RAX] = 1;
    t.ok(&[0xf3, 0xaf]);
    assert_eq!((t.cpu.gpr[RCX], t.cpu.gpr[RDI]), (0, s + 12));
    assert!(!t.cpu.flags.zf());
}

#[test]
fn lods_and_address_size_32() {
    let mut t = t();
    let s = t.d + 0x30;
    t.wb(s, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    t.cpu.gpr[RSI] = s;
    t.cpu.gpr[RAX] = u64::MAX;
    t.ok(&[0xac]); // lodsb
    assert_eq!(t.cpu.gpr[RAX], 0xffff_ffff_ffff_ff11);
    t.ok(&[0xad]); // lodsd zero-extends
    assert_eq!(t.cpu.gpr[RAX], 0x5544_3322);
    assert_eq!(t.cpu.gpr[RSI], s + 5);
    t.cpu.set_rflags(t.cpu.rflags() | DF);
    t.ok(&[0xac]); // lodsb backwards
    assert_eq!(t.cpu.gpr[RAX], 0x5544_3366);
    assert_eq!(t.cpu.gpr[RSI], s + 4);
    // 0x67: ESI/EDI/ECX, and the count's upper half is ignored and cleared.
    let low = t.d & 0xffff_ffff;
    if low == t.d {
        t.cpu.set_rflags(t.cpu.rflags() & !DF);
        t.cpu.gpr[RSI] = 0xdead_0000_0000_0000 | (s & 0xffff_ffff);
        t.cpu.gpr[RDI] = s + 0x100;
        t.cpu.gpr[RCX] = 0x1_0000_0002;
        t.ok(&[0x67, 0xf3, 0xa4]);
        assert_eq!(t.cpu.gpr[RCX], 0);
        assert_eq!(t.cpu.gpr[RSI], s + 2);
        assert_eq!(t.rb(s + 0x100, 2), vec![0x11, 0x22]);
    }
}
