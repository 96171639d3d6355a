//! Alignment checking (EFLAGS.AC, CR0.AM as Linux sets it) against the CPU level presented:
//! an instruction the presented CPU lacks raises #UD, not #AC, however misaligned its operand
//! (a CPU without the feature decodes no memory operand for it: Intel SDM Vol. 3A §6.15,
//! Table 6-2, #UD precedes #AC), while one the CPU has raises #AC. TZCNT's encoding runs as
//! REP BSF on a CPU without BMI1/LZCNT (SDM Vol. 2 TZCNT, "Operation"), so its misaligned
//! operand is still checked there.

mod common;

use cetbox_cpu::flags::AC;
use cetbox_cpu::{Cpu, CpuConfig, CpuLevel, Engine, Exception, Exit, Interpreter};
use common::Env;
use std::sync::{Arc, OnceLock};

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env::new(1))
}

/// Runs `code` once on a CPU of `level` with EFLAGS.AC set and RBX at the data page; the
/// exception it raises, if any.
fn run(level: CpuLevel, code: &[u8]) -> Option<Exception> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let e = env();
    let mut buf = code.to_vec();
    buf.resize(16, 0x90);
    e.mem.write_bytes(e.code, &buf).unwrap();
    let mut c = Cpu::new(
        e.mem.clone(),
        Arc::new(CpuConfig {
            level,
            ..CpuConfig::default()
        }),
    );
    c.gpr[3] = e.data;
    c.rip = e.code;
    c.flags.bits |= AC;
    match Interpreter::new().step(&mut c) {
        None => None,
        Some(Exit::Exception(x)) => {
            assert_eq!(c.rip, e.code, "rip after a fault");
            Some(x)
        }
        Some(other) => panic!("unexpected exit {other:?}"),
    }
}

fn is_ud(x: &Option<Exception>) -> bool {
    matches!(x, Some(Exception::InvalidOpcode(_)))
}

/// popcnt rax, [rbx+1] (x86-64-v2).
const POPCNT_MISALIGNED: &[u8] = &[0xf3, 0x48, 0x0f, 0xb8, 0x43, 0x01];
/// andn eax, ebx, [rbx+1] (BMI1, x86-64-v3).
const ANDN_MISALIGNED: &[u8] = &[0xc4, 0xe2, 0x60, 0xf2, 0x43, 0x01];
/// vaddss xmm0, xmm0, [rbx+1] (AVX, x86-64-v3).
const VADDSS_MISALIGNED: &[u8] = &[0xc5, 0xfa, 0x58, 0x43, 0x01];
/// tzcnt eax, [rbx+1] (BMI1; REP BSF below x86-64-v3).
const TZCNT_MISALIGNED: &[u8] = &[0xf3, 0x0f, 0xbc, 0x43, 0x01];
/// mov eax, [rbx+1] (baseline).
const MOV_MISALIGNED: &[u8] = &[0x8b, 0x43, 0x01];

#[test]
fn lacking_instruction_is_ud_before_ac() {
    let x = run(CpuLevel::X86_64, POPCNT_MISALIGNED);
    assert!(is_ud(&x), "popcnt on x86-64: {x:?}");
    let x = run(CpuLevel::X86_64, ANDN_MISALIGNED);
    assert!(is_ud(&x), "andn on x86-64: {x:?}");
    let x = run(CpuLevel::V2, ANDN_MISALIGNED);
    assert!(is_ud(&x), "andn on x86-64-v2: {x:?}");
    let x = run(CpuLevel::V2, VADDSS_MISALIGNED);
    assert!(is_ud(&x), "vaddss on x86-64-v2: {x:?}");
}

#[test]
fn present_instruction_is_ac() {
    assert_eq!(
        run(CpuLevel::V2, POPCNT_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
    assert_eq!(
        run(CpuLevel::V3, ANDN_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
    assert_eq!(
        run(CpuLevel::V3, VADDSS_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
    assert_eq!(
        run(CpuLevel::X86_64, MOV_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
    // TZCNT's encoding is REP BSF on a CPU without it: still a checked access.
    assert_eq!(
        run(CpuLevel::X86_64, TZCNT_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
    assert_eq!(
        run(CpuLevel::V3, TZCNT_MISALIGNED),
        Some(Exception::AlignmentCheck)
    );
}
