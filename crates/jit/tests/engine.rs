//! The translator's run loop: stopping, chaining, code changes and the undefined-flag rule,
//! each checked against the interpreter or against values derived from the guest code.

use cetbox_cpu::{Cpu, CpuConfig, Engine, Exception, Exit, Interpreter};
use cetbox_jit::Translator;
use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

/// The one address space a process may have.
fn space() -> Arc<AddressSpace> {
    static SPACE: OnceLock<Arc<AddressSpace>> = OnceLock::new();
    SPACE
        .get_or_init(|| Arc::new(AddressSpace::new().expect("address space")))
        .clone()
}

/// Keeps the tests of this file from changing the shared code epoch under each other.
static LOCK: Mutex<()> = Mutex::new(());

fn machine(code: &[u8]) -> (Cpu, u64) {
    let mem = space();
    let rx = (libc::PROT_READ | libc::PROT_EXEC) as u32;
    let at = mem
        .map(&MapRequest::anonymous(0, PAGE_SIZE, rx, VmaKind::Normal))
        .expect("code page");
    mem.force_write(at, code).expect("code");
    let mut cpu = Cpu::new(mem, Arc::new(CpuConfig::default()));
    cpu.rip = at;
    (cpu, at)
}

const UD2: [u8; 2] = [0x0f, 0x0b];

fn ends_in_ud2(exit: &Exit) -> bool {
    matches!(exit, Exit::Exception(Exception::InvalidOpcode(_)))
}

/// A translated loop with no exit (`add rax, 1; jmp back`) runs chained inside the code
/// cache; setting `stop` from another thread must still end `run`, at an instruction
/// boundary, with RAX and the retired count consistent (two instructions per iteration).
#[test]
fn tight_translated_loop_stops_when_asked() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let code = [0x48, 0x83, 0xc0, 0x01, 0xeb, 0xfa];
    let (mut cpu, at) = machine(&code);
    let mut t = Translator::translate_everything();
    let stats = t.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let exit = t.run(&mut cpu, &s2);
        tx.send((exit, cpu.rip, cpu.gpr[0], cpu.icount)).unwrap();
    });
    // Wait until the loop is running as translated code (no sleep: the count is the signal).
    while stats.entered.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let (exit, rip, rax, icount) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the translated loop did not stop");
    h.join().unwrap();
    assert_eq!(exit, Exit::Interrupted);
    assert_eq!(rip, at, "stops at the loop head (after the JMP)");
    assert!(rax > 0);
    assert_eq!(icount, 2 * rax, "two instructions retired per iteration");
    assert_eq!(
        stats.entered.load(Ordering::Relaxed),
        1,
        "the loop ran chained"
    );
}

/// Runs `code` (ending in UD2) in both engines from the same registers; returns both CPUs.
fn both(code: &[u8], regs: [u64; 16], rflags: u64) -> (Cpu, Cpu, Arc<cetbox_jit::Stats>) {
    both_with(Translator::translate_everything(), code, regs, rflags)
}

/// `both` with a given translator.
fn both_with(
    mut t: Translator,
    code: &[u8],
    regs: [u64; 16],
    rflags: u64,
) -> (Cpu, Cpu, Arc<cetbox_jit::Stats>) {
    let (mut a, _) = machine(code);
    a.gpr = regs;
    a.set_rflags(rflags);
    let mut b = a.fork(a.mem.clone());
    b.icount = 0;
    let stop = AtomicBool::new(false);
    let ea = Interpreter::new().run(&mut a, &stop);
    let eb = t.run(&mut b, &stop);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    (a, b, t.stats())
}

fn assert_same(a: &Cpu, b: &Cpu) {
    assert_eq!(a.gpr, b.gpr);
    assert_eq!(a.rip, b.rip);
    assert_eq!(format!("{:#x}", a.rflags()), format!("{:#x}", b.rflags()));
    assert_eq!(a.icount, b.icount);
}

/// A counted loop (`mov ecx, 1000; l: add rax, rcx; dec ecx; jnz l; ud2`) chains its Jcc back
/// to itself and leaves through the not-taken exit; state and retired count match the
/// interpreter.
#[test]
fn chained_counted_loop_matches_interpreter() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut code = vec![
        0xb9, 0xe8, 0x03, 0, 0, 0x48, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xf9,
    ];
    code.extend(UD2);
    let (a, b, stats) = both(&code, [7; 16], 0x202);
    assert_same(&a, &b);
    assert_eq!(a.gpr[0], 7 + 1000 * 1001 / 2);
    assert!(stats.translated.load(Ordering::Relaxed) >= 1);
}

/// The default policy: a loop is interpreted until its block is hot, then translated; the
/// state, the retired count and its split between the engines add up.
#[test]
fn hot_loop_is_translated_after_interpreted_visits() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut code = vec![
        0xb9, 0xe8, 0x03, 0, 0, 0x48, 0x01, 0xc8, 0xff, 0xc9, 0x75, 0xf9,
    ];
    code.extend(UD2);
    let (a, b, stats) = both_with(Translator::new(), &code, [7; 16], 0x202);
    assert_same(&a, &b);
    assert_eq!(a.gpr[0], 7 + 1000 * 1001 / 2);
    assert_eq!(stats.translated.load(Ordering::Relaxed), 1, "the loop body");
    let interpreted = stats.retired_interpreted.load(Ordering::Relaxed);
    let translated = stats.retired_translated.load(Ordering::Relaxed);
    assert!(
        interpreted >= 3 * 100,
        "cold visits are interpreted: {interpreted}"
    );
    assert!(
        translated >= 3 * 500,
        "hot visits run translated: {translated}"
    );
    assert_eq!(interpreted + translated, b.icount);
}

/// A hot loop the translator leaves to the interpreter (its block starts with FNOP: x87 is
/// not translated) runs inside the interpreter's own loop once refused, instead of coming
/// back to the translator on every visit: a handful of interpreter calls for 1000 iterations
/// (`mov ecx, 1000; l: fnop; mov rax, rcx; mul rcx; add rbx, rax; dec ecx; jnz l; ud2`).
#[test]
fn hot_untranslatable_loop_stays_in_the_interpreter() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut code = vec![
        0xb9, 0xe8, 0x03, 0, 0, 0xd9, 0xd0, 0x48, 0x89, 0xc8, 0x48, 0xf7, 0xe1, 0x48, 0x01, 0xc3,
        0xff, 0xc9, 0x75, 0xf1,
    ];
    code.extend(UD2);
    let mut regs = [0; 16];
    regs[3] = 5;
    let (a, b, stats) = both_with(Translator::new(), &code, regs, 0x202);
    assert_same(&a, &b);
    // RBX: 5 + the sum of i*i for i in 1..=1000.
    assert_eq!(a.gpr[3], 5 + 1000 * 1001 * 2001 / 6);
    assert_eq!(stats.translated.load(Ordering::Relaxed), 0);
    let calls = stats.interpreted.load(Ordering::Relaxed);
    assert!(calls <= 4, "{calls} interpreter calls for one loop");
}

/// A code cache too small for the working set (one page: the trampolines and a few blocks)
/// is flushed whole again and again while a loop runs through 64 blocks 50 times; every
/// translation made after a flush is fresh, so the result, RIP, flags and retired count are
/// still the interpreter's. The blocks: `add rax, 1` eight times and a JMP to the next; the
/// last one ends `dec ecx; jnz first`.
#[test]
fn full_code_cache_is_flushed_and_still_correct() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut code = vec![0xb9, 50, 0, 0, 0]; // mov ecx, 50
    let first = code.len();
    for b in 0..64 {
        for _ in 0..8 {
            code.extend([0x48, 0x83, 0xc0, 0x01]);
        }
        if b < 63 {
            code.extend([0xeb, 0x00]); // jmp to the next block
        } else {
            code.extend([0xff, 0xc9, 0x0f, 0x85]); // dec ecx; jnz rel32 to `first`
            let rel = first as i64 - (code.len() as i64 + 4);
            code.extend((rel as i32).to_le_bytes());
        }
    }
    code.extend(UD2);
    assert!(code.len() <= PAGE_SIZE as usize);
    let t = Translator::translate_everything().with_cache_size(PAGE_SIZE as usize);
    let (a, b, stats) = both_with(t, &code, [3; 16], 0x202);
    assert_same(&a, &b);
    assert_eq!(a.gpr[0], 3 + 50 * 64 * 8);
    let flushes = stats.flushes.load(Ordering::Relaxed);
    assert!(flushes >= 50, "{flushes} flushes");
    assert!(stats.translated.load(Ordering::Relaxed) > 64);
}

/// An instruction whose undefined flags survive to the end of a translated block (SHL's AF,
/// with AF set beforehand so a stale bit would show) leaves them exactly as the interpreter
/// does: the CPU model takes undefined results from the host (crates/cpu/src/undef.rs), which
/// is what native execution gives. Run with AF set and clear on entry.
#[test]
fn undefined_flags_of_a_translated_block_match_the_interpreter() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let regs = [0x1234_5678_9abc_def1; 16];
    for entry_flags in [0x202 | 0x10, 0x202] {
        for shl in [[0xc1, 0xe0, 0x03], [0xc1, 0xe0, 0x01]] {
            // shl eax, 3 / shl eax, 1
            let mut code = shl.to_vec();
            code.extend(UD2);
            let (a, b, stats) = both(&code, regs, entry_flags);
            assert_same(&a, &b);
            assert_eq!(
                stats.entered.load(Ordering::Relaxed),
                1,
                "SHL is translated"
            );
        }
    }
}

/// A write to translated code (here through the address space, as a guest store or ptrace
/// would) changes the code epoch; the next run must execute the new instruction.
#[test]
fn writing_translated_code_invalidates_it() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut code = vec![0xb8, 1, 0, 0, 0]; // mov eax, 1
    code.extend(UD2);
    let (mut cpu, at) = machine(&code);
    let mut t = Translator::translate_everything();
    let stop = AtomicBool::new(false);
    assert!(ends_in_ud2(&t.run(&mut cpu, &stop)));
    assert_eq!(cpu.gpr[0], 1);
    cpu.mem.force_write(at + 1, &[2]).expect("patch");
    cpu.rip = at;
    assert!(ends_in_ud2(&t.run(&mut cpu, &stop)));
    assert_eq!(cpu.gpr[0], 2, "stale translation ran");
    assert_eq!(t.stats().translated.load(Ordering::Relaxed), 2);
}

/// An 8-byte load that runs from one page into the next (`mov rax, [rbx]`): into a mapped page
/// it runs on the translated fast path (both pages' entries checked inline, no interpreter
/// step) and reads what the interpreter reads; into an inaccessible page both engines raise
/// the same page fault, at the first byte of that page.
#[test]
fn loads_crossing_into_the_next_page() {
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mem = space();
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let data = mem
        .map(&MapRequest::anonymous(
            0,
            3 * PAGE_SIZE,
            rw,
            VmaKind::Normal,
        ))
        .expect("data pages");
    // The third page inaccessible (not unmapped: the code page mapped later would take its
    // place).
    mem.protect(data + 2 * PAGE_SIZE, PAGE_SIZE, 0)
        .expect("protect the third");
    for (i, b) in (0..2 * PAGE_SIZE).step_by(8).enumerate() {
        mem.write_u64(
            data + b,
            0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1),
        )
        .expect("fill");
    }
    let mut code = vec![0x48, 0x8b, 0x03]; // mov rax, [rbx]
    code.extend(UD2);
    for (addr, faults) in [
        (data + PAGE_SIZE - 4, false),
        (data + PAGE_SIZE - 1, false),
        (data + 2 * PAGE_SIZE - 4, true),
    ] {
        let mut regs = [0u64; 16];
        regs[3] = addr;
        let (mut a, _) = machine(&code);
        a.gpr = regs;
        let mut b = a.fork(a.mem.clone());
        let stop = AtomicBool::new(false);
        let ea = Interpreter::new().run(&mut a, &stop);
        let mut t = Translator::translate_everything();
        let stats = t.stats();
        let eb = t.run(&mut b, &stop);
        assert_eq!(ea, eb, "at {addr:#x}");
        assert_eq!(a.gpr, b.gpr, "at {addr:#x}");
        assert_eq!(a.rip, b.rip, "at {addr:#x}");
        if faults {
            match &ea {
                Exit::Exception(Exception::PageFault(f)) => {
                    assert_eq!(f.addr, data + 2 * PAGE_SIZE, "fault address")
                }
                other => panic!("expected a page fault, got {other:?}"),
            }
        } else {
            assert!(ends_in_ud2(&ea), "{ea:?}");
            // Only the UD2 after it runs in the interpreter; a failed inline check would add
            // one interpreter step for the load.
            assert_eq!(
                stats.interpreted.load(Ordering::Relaxed),
                1,
                "the crossing load left the fast path"
            );
        }
    }
}
