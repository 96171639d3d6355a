//! The translator's run loop: stopping, chaining, code changes and the undefined-flag rule,
//! each checked against the interpreter or against values derived from the guest code.

use cetbox_cpu::{Cpu, CpuConfig, Engine, Exception, Exit, Interpreter};
use cetbox_jit::Translator;
use cetbox_mem::{AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
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

/// Holds `LOCK` for the rest of a test (a test that failed while holding it does not stop the
/// others).
fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `n` fresh read-write pages of the shared address space, of `kind`, with the pages whose
/// indices `inaccessible` lists made PROT_NONE (not unmapped: a code page mapped later would
/// take their place): the first page's address.
fn pages(n: u64, kind: VmaKind, inaccessible: &[u64]) -> u64 {
    let mem = space();
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let at = mem
        .map(&MapRequest::anonymous(0, n * PAGE_SIZE, rw, kind))
        .expect("pages");
    for &k in inaccessible {
        mem.protect(at + k * PAGE_SIZE, PAGE_SIZE, 0)
            .expect("inaccessible page");
    }
    at
}

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

/// Runs the code at `at` on `cpu` through `t`, which must end at the UD2 after it.
fn run_to_ud2(t: &mut Translator, cpu: &mut Cpu, at: u64) {
    cpu.rip = at;
    let exit = t.run(cpu, &AtomicBool::new(false));
    assert!(ends_in_ud2(&exit), "{exit:?}");
}

/// Runs `code` in the translator on another thread, sets `stop` once its blocks have been
/// entered `entered` times (the count is the signal: no sleep), and returns the exit, the CPU
/// as `run` left it, the code's address and the translator's counters; fails if `run` does not
/// return within a minute.
fn stop_when_entered(code: &[u8], entered: u64) -> (Exit, Cpu, u64, Arc<cetbox_jit::Stats>) {
    let (mut cpu, at) = machine(code);
    let mut t = Translator::translate_everything();
    let stats = t.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let exit = t.run(&mut cpu, &s2);
        tx.send((exit, cpu)).unwrap();
    });
    while stats.entered.load(Ordering::Relaxed) < entered {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let (exit, cpu) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the translated loop did not stop");
    h.join().unwrap();
    (exit, cpu, at, stats)
}

/// A translated loop with no exit (`add rax, 1; jmp back`) runs chained inside the code
/// cache; setting `stop` from another thread must still end `run`, at an instruction
/// boundary, with RAX and the retired count consistent (two instructions per iteration).
#[test]
fn tight_translated_loop_stops_when_asked() {
    let _serial = serial();
    let code = [0x48, 0x83, 0xc0, 0x01, 0xeb, 0xfa];
    // Stopped once the loop runs as translated code.
    let (exit, cpu, at, stats) = stop_when_entered(&code, 1);
    let (rip, rax, icount) = (cpu.rip, cpu.gpr[0], cpu.icount);
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
    let mut code = vec![0xb8, 1, 0, 0, 0]; // mov eax, 1
    code.extend(UD2);
    let (mut cpu, at) = machine(&code);
    let mut t = Translator::translate_everything();
    run_to_ud2(&mut t, &mut cpu, at);
    assert_eq!(cpu.gpr[0], 1);
    cpu.mem.force_write(at + 1, &[2]).expect("patch");
    run_to_ud2(&mut t, &mut cpu, at);
    assert_eq!(cpu.gpr[0], 2, "stale translation ran");
    assert_eq!(t.stats().translated.load(Ordering::Relaxed), 2);
}

/// An 8-byte load that runs from one page into the next (`mov rax, [rbx]`): into a mapped page
/// it runs on the translated fast path (both pages' entries checked inline, no interpreter
/// step) and reads what the interpreter reads; into an inaccessible page both engines raise
/// the same page fault, at the first byte of that page.
#[test]
fn loads_crossing_into_the_next_page() {
    let _serial = serial();
    // The third page inaccessible; the first two hold distinct qwords.
    let data = pages(3, VmaKind::Normal, &[2]);
    let init: Vec<u8> = (0..2 * PAGE_SIZE / 8)
        .flat_map(|i| 0x0101_0101_0101_0101u64.wrapping_mul(i + 1).to_le_bytes())
        .collect();
    let mut code = vec![0x48, 0x8b, 0x03]; // mov rax, [rbx]
    code.extend(UD2);
    for (addr, faults) in [
        (data + PAGE_SIZE - 4, false),
        (data + PAGE_SIZE - 1, false),
        (data + 2 * PAGE_SIZE - 4, true),
    ] {
        let mut regs = [0u64; 16];
        regs[3] = addr;
        // The flags a new CPU starts with.
        let (a, b, ea, eb, _, _, stats) = run_both_from(&code, regs, 0x202, data, &init);
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

/// Runs `code` (in a fresh code page) in the interpreter and then in the translator (which
/// translates everything at once) from the same registers, flags and `len` bytes of memory
/// at `mem_at` (restored to `init` before each run); returns both CPUs, both exits, the
/// memory each left, and the translator's counters.
#[allow(clippy::type_complexity)]
fn run_both_from(
    code: &[u8],
    regs: [u64; 16],
    rflags: u64,
    mem_at: u64,
    init: &[u8],
) -> (
    Cpu,
    Cpu,
    Exit,
    Exit,
    Vec<u8>,
    Vec<u8>,
    Arc<cetbox_jit::Stats>,
) {
    run_both_with(code, regs, rflags, mem_at, init, &|_| {})
}

/// `run_both_from` with `prep` applied to the CPU before both runs.
#[allow(clippy::type_complexity)]
fn run_both_with(
    code: &[u8],
    regs: [u64; 16],
    rflags: u64,
    mem_at: u64,
    init: &[u8],
    prep: &dyn Fn(&mut Cpu),
) -> (
    Cpu,
    Cpu,
    Exit,
    Exit,
    Vec<u8>,
    Vec<u8>,
    Arc<cetbox_jit::Stats>,
) {
    let (mut a, _) = machine(code);
    a.gpr = regs;
    a.set_rflags(rflags);
    prep(&mut a);
    let mut b = a.fork(a.mem.clone());
    b.icount = 0;
    let stop = AtomicBool::new(false);
    a.mem.force_write(mem_at, init).expect("memory");
    let ea = Interpreter::new().run(&mut a, &stop);
    let mut ma = vec![0; init.len()];
    a.mem.read_bytes(mem_at, &mut ma).expect("read back");
    b.mem.force_write(mem_at, init).expect("memory");
    let mut t = Translator::translate_everything();
    let eb = t.run(&mut b, &stop);
    let mut mb = vec![0; init.len()];
    b.mem.read_bytes(mem_at, &mut mb).expect("read back");
    (a, b, ea, eb, ma, mb, t.stats())
}

/// Every arithmetic flag set, so a flag the translator lost would show.
const ALL_FLAGS: u64 = 0x202 | 0x8d5;

/// A block that pushes three registers, stores to `[rsp + 8]` and pops twice, with the guest's
/// flags dead throughout (XOR rewrites them before any read), has its stack slots checked once
/// (`stack.rs`): on a mapped stack it runs with no interpreter step but the final UD2. With
/// the page below the stack inaccessible so that the third PUSH faults, both engines stop at
/// that PUSH with the same page fault, the same registers (RSP after two pushes), the same
/// flags as on entry and the two pushed values in memory: the range check failing before the
/// first PUSH must not lose the flags it clobbered, nor skip the two pushes that succeed.
#[test]
fn stack_slots_checked_once_per_block_fault_exactly() {
    let _serial = serial();
    // The first page a guard page.
    let stack = pages(3, VmaKind::Normal, &[0]);
    let code = [
        0x53, // push rbx
        0x55, // push rbp
        0x51, // push rcx
        0x48, 0x89, 0x44, 0x24, 0x08, // mov [rsp+8], rax
        0x5a, // pop rdx
        0x5e, // pop rsi
        0x31, 0xc0, // xor eax, eax
        0x0f, 0x0b, // ud2
    ];
    let mut regs = [0u64; 16];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = 0x1111_1111_1111_1111 * (i as u64 + 1);
    }
    let page1 = stack + PAGE_SIZE;
    let init = vec![0xa5u8; 2 * PAGE_SIZE as usize];
    // Mid-page: translated throughout.
    regs[4] = page1 + 2048;
    let (a, b, ea, eb, ma, mb, stats) = run_both_from(&code, regs, ALL_FLAGS, page1, &init);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(ma, mb, "stack contents");
    assert_eq!(a.gpr[4], page1 + 2048 - 8);
    assert_eq!(
        stats.interpreted.load(Ordering::Relaxed),
        1,
        "only the UD2 runs in the interpreter"
    );
    // Two slots above the guard page: the third PUSH faults at the guard page's last slot.
    regs[4] = page1 + 16;
    let (a, b, ea, eb, ma, mb, _) = run_both_from(&code, regs, ALL_FLAGS, page1, &init);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, page1 - 8),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(b.gpr[4], page1, "two pushes done");
    assert_eq!(b.rip, a.rip);
    assert_eq!(b.rflags() & 0x8d5, 0x8d5, "flags as on entry");
    assert_eq!(ma, mb, "stack contents");
    assert_eq!(&mb[..8], &regs[5].to_le_bytes(), "RBP pushed");
    assert_eq!(&mb[8..16], &regs[3].to_le_bytes(), "RBX pushed");
}

/// A block that reads `[rsp]` and writes `[rsp + 8]` on a read-only stack page: the block's
/// one stack check needs write permission and fails before the read, yet the read must still
/// happen (in the interpreter) and the write fault with the write error code at `rsp + 8`,
/// exactly as in the interpreter.
#[test]
fn stack_check_of_a_block_on_a_read_only_page() {
    let _serial = serial();
    let mem = space();
    let page = pages(1, VmaKind::Normal, &[]);
    let init: Vec<u8> = (0..PAGE_SIZE as usize).map(|i| i as u8).collect();
    mem.force_write(page, &init).expect("fill");
    mem.protect(page, PAGE_SIZE, libc::PROT_READ as u32)
        .expect("read-only");
    let code = [
        0x48, 0x8b, 0x04, 0x24, // mov rax, [rsp]
        0x48, 0x89, 0x5c, 0x24, 0x08, // mov [rsp+8], rbx
        0x0f, 0x0b, // ud2
    ];
    let mut regs = [5u64; 16];
    regs[4] = page + 64;
    let (a, b, ea, eb, ma, mb, _) = run_both_from(&code, regs, ALL_FLAGS, page, &init);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => {
            assert_eq!(f.addr, page + 72);
            assert_eq!(f.error_code() & 2, 2, "a write fault");
        }
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(
        b.gpr[0],
        u64::from_le_bytes(init[64..72].try_into().unwrap())
    );
    assert_eq!(ma, mb);
}

/// Two blocks, A (`mov eax, 1; jmp B`) translated before B (`add eax, 2; ud2`): A's exit is
/// a link site the run loop points at B's translation once B exists (`link_exit`). The second
/// run goes from A into B without returning to the run loop; after B's code is rewritten
/// (`add eax, 5`) the linked jump must not reach the stale translation.
#[test]
fn linked_exit_follows_code_changes() {
    let _serial = serial();
    let mut code = vec![0xb8, 1, 0, 0, 0, 0xeb, 0x19]; // mov eax, 1; jmp +0x19 (to 0x20)
    code.resize(0x20, 0xcc);
    code.extend([0x83, 0xc0, 0x02]); // add eax, 2
    code.extend(UD2);
    let (mut cpu, at) = machine(&code);
    let mut t = Translator::translate_everything();
    let stats = t.stats();
    let entered = || stats.entered.load(Ordering::Relaxed);
    run_to_ud2(&mut t, &mut cpu, at);
    assert_eq!(cpu.gpr[0], 3);
    assert_eq!(entered(), 2, "A, then B from the run loop");
    cpu.gpr[0] = 0;
    run_to_ud2(&mut t, &mut cpu, at);
    assert_eq!(cpu.gpr[0], 3);
    assert_eq!(entered(), 3, "A's exit is linked to B");
    cpu.mem.force_write(at + 0x22, &[5]).expect("patch");
    cpu.gpr[0] = 0;
    run_to_ud2(&mut t, &mut cpu, at);
    assert_eq!(cpu.gpr[0], 6, "the linked jump reached a stale translation");
}

/// A loop of two blocks (A: `add rax, 1; jmp B`, B: `add rcx, 1; jmp A`) whose A-to-B exit is
/// linked after the first round: it runs inside the code cache, and setting `stop` from
/// another thread still ends it at a block boundary with the retired count consistent.
#[test]
fn linked_loop_stops_when_asked() {
    let _serial = serial();
    let mut code = vec![0x48, 0x83, 0xc0, 0x01, 0xeb, 0x1a]; // add rax, 1; jmp +0x1a (0x20)
    code.resize(0x20, 0xcc);
    code.extend([0x48, 0x83, 0xc1, 0x01, 0xeb, 0xda]); // add rcx, 1; jmp -0x26 (0)

    // Stopped once A and B have been entered (the exit linked after that).
    let (exit, cpu, at, stats) = stop_when_entered(&code, 2);
    let (rip, rax, rcx, icount) = (cpu.rip, cpu.gpr[0], cpu.gpr[1], cpu.icount);
    assert_eq!(exit, Exit::Interrupted);
    assert!(
        rip == at || rip == at + 0x20,
        "at a block boundary: {rip:#x}"
    );
    assert!(rax >= 1);
    assert_eq!(
        icount,
        2 * (rax + rcx),
        "two instructions retired per block"
    );
    assert_eq!(
        stats.entered.load(Ordering::Relaxed),
        2,
        "A, then B once, then linked"
    );
}

/// Accesses through one base register (`mov rax, [rsi]; mov [rsi + 8], rbx; mov rdx,
/// [rsi + 0xff8]`, then `add rsi, 16` ends the run and `mov rcx, [rsi]` starts another) are
/// checked once per run (`group.rs`): with every page accessible the block runs with no
/// interpreter step but the final UD2. With the page after the first inaccessible, so that
/// only the third access faults, both engines stop at it with the same page fault, the same
/// registers, flags as on entry (XOR makes them dead in the block) and the store done.
#[test]
fn base_register_runs_checked_once_fault_exactly() {
    let _serial = serial();
    // The third page inaccessible.
    let data = pages(3, VmaKind::Normal, &[2]);
    let code = [
        0x48, 0x8b, 0x06, // mov rax, [rsi]
        0x48, 0x89, 0x5e, 0x08, // mov [rsi+8], rbx
        0x48, 0x8b, 0x96, 0xf8, 0x0f, 0, 0, // mov rdx, [rsi+0xff8]
        0x48, 0x83, 0xc6, 0x10, // add rsi, 16
        0x48, 0x8b, 0x0e, // mov rcx, [rsi]
        0x31, 0xff, // xor edi, edi
        0x0f, 0x0b, // ud2
    ];
    let mut regs = [0u64; 16];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = 0x0101_0101_0101_0101 * (i as u64 + 1);
    }
    let init: Vec<u8> = (0..2 * PAGE_SIZE as usize).map(|i| (i * 7) as u8).collect();
    regs[6] = data + 64;
    let (a, b, ea, eb, ma, mb, stats) = run_both_from(&code, regs, ALL_FLAGS, data, &init);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(ma, mb);
    assert_eq!(
        b.gpr[0],
        u64::from_le_bytes(init[64..72].try_into().unwrap())
    );
    assert_eq!(
        stats.interpreted.load(Ordering::Relaxed),
        1,
        "only the UD2 runs in the interpreter"
    );
    // [rsi + 0xff8] runs into the inaccessible page; the first two accesses are in the second.
    regs[6] = data + 2 * PAGE_SIZE - 0xff8 + 4;
    let (a, b, ea, eb, ma, mb, _) = run_both_from(&code, regs, ALL_FLAGS, data, &init);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, regs[6] + 0xff8),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(b.rip, a.rip);
    assert_eq!(b.rflags() & 0x8d5, 0x8d5, "flags as on entry");
    assert_eq!(ma, mb, "memory");
    let at = (regs[6] + 8 - data) as usize;
    assert_eq!(
        &mb[at..at + 8],
        &regs[3].to_le_bytes(),
        "the store was done"
    );
}

/// With the shadow stack on, a RET whose stack slot is covered by its block's range check
/// (`push rbx; push rbp; pop rbp; pop rbx; [add qword [rsp], 2;] ret`, called from `call f;
/// ud2`) still compares the return address with the shadow stack's: unchanged, both engines
/// return to the UD2 with the same registers and SSP; changed by the ADD, both raise #CP
/// (near-ret) at the RET with RSP and SSP as before it and the same registers and flags.
#[test]
fn covered_ret_still_compares_with_the_shadow_stack() {
    use cetbox_cpu::CpCode;
    let _serial = serial();
    let stack = pages(1, VmaKind::Normal, &[]);
    let shadow = pages(1, VmaKind::ShadowStack, &[]);
    let ssp = shadow + PAGE_SIZE;
    let prep = move |c: &mut Cpu| {
        c.cet.u_cet = cetbox_cpu::state::U_CET_SH_STK_EN;
        c.cet.ssp = ssp;
    };
    for corrupt in [false, true] {
        let mut code = vec![0xe8, 0x0b, 0, 0, 0]; // call f (at 0x10)
        code.extend(UD2);
        code.resize(0x10, 0xcc);
        code.extend([0x53, 0x55, 0x5d, 0x5b]); // push rbx; push rbp; pop rbp; pop rbx
        if corrupt {
            code.extend([0x48, 0x83, 0x04, 0x24, 0x02]); // add qword [rsp], 2
        }
        code.push(0xc3); // ret
        let mut regs = [0x77u64; 16];
        regs[4] = stack + 2048;
        let init = vec![0u8; PAGE_SIZE as usize];
        let (a, b, ea, eb, ma, mb, _) = run_both_with(&code, regs, ALL_FLAGS, stack, &init, &prep);
        assert_eq!(ea, eb, "corrupt: {corrupt}");
        assert_same(&a, &b);
        assert_eq!(a.cet.ssp, b.cet.ssp);
        assert_eq!(ma, mb);
        if corrupt {
            assert_eq!(
                ea,
                Exit::Exception(Exception::ControlProtection(CpCode::NearRet))
            );
            assert_eq!(b.gpr[4], stack + 2048 - 8, "RSP at the RET");
            assert_eq!(b.cet.ssp, ssp - 8, "SSP at the RET");
            assert_eq!(b.rflags() & 0xfff, a.rflags() & 0xfff);
        } else {
            assert!(ends_in_ud2(&ea), "{ea:?}");
            assert_eq!(b.gpr[4], stack + 2048);
            assert_eq!(b.cet.ssp, ssp);
        }
    }
}

/// The return cache of RETs with the shadow stack on (`context::ReturnCache`) under a code
/// cache of one page, flushed on every pass of the loop: `l: call f; test cl, 1; jnz odd;
/// 64 blocks of eight `add rax, 1`; jmp join; odd: 40 such blocks; join: mov esi, 3; m: call
/// g; dec esi; jnz m; dec ecx; jnz l; ud2`, with `f: call g; ret` and `g: add rdx, 1; ret`.
/// The inner loop's RETs pop one shadow-stack slot, fill its entry and hit it within a pass;
/// the entry outlives the pass's flush unless the cache's reset empties it, and the two paths
/// make the flushes fall at different places, so the translation it names is elsewhere after
/// the flush and a stale entry would send the RET into some other block's code. The slot of
/// f's RET is also popped by the inner loop's (an entry holding the other address). Both
/// engines end at the UD2 with the same registers, SSP, flags and retired count.
#[test]
fn return_cache_across_flushes_matches_interpreter() {
    let _serial = serial();
    let stack = pages(1, VmaKind::Normal, &[]);
    let shadow = pages(1, VmaKind::ShadowStack, &[]);
    let ssp = shadow + PAGE_SIZE;
    let filler = |code: &mut Vec<u8>, blocks: usize| {
        for _ in 0..blocks {
            for _ in 0..8 {
                code.extend([0x48, 0x83, 0xc0, 0x01]); // add rax, 1
            }
            code.extend([0xeb, 0x00]); // jmp to the next block
        }
    };
    let rel32 = |code: &mut Vec<u8>, at: usize, to: usize| {
        let rel = (to as i64 - (at as i64 + 4)) as i32;
        code[at..at + 4].copy_from_slice(&rel.to_le_bytes());
    };
    let mut code = vec![0xb9, 50, 0, 0, 0]; // mov ecx, 50
    let first = code.len();
    let call_f = code.len() + 1;
    code.extend([0xe8, 0, 0, 0, 0]); // call f
    code.extend([0xf6, 0xc1, 0x01]); // test cl, 1
    let to_odd = code.len() + 2;
    code.extend([0x0f, 0x85, 0, 0, 0, 0]); // jnz odd
    filler(&mut code, 64);
    let to_join = code.len() + 1;
    code.extend([0xe9, 0, 0, 0, 0]); // jmp join
    let odd = code.len();
    filler(&mut code, 40);
    let join = code.len();
    code.extend([0xbe, 3, 0, 0, 0]); // mov esi, 3
    let inner = code.len();
    let call_g = code.len() + 1;
    code.extend([0xe8, 0, 0, 0, 0]); // call g
    code.extend([0xff, 0xce, 0x75]); // dec esi; jnz inner
    code.push((inner as i64 - (code.len() as i64 + 1)) as u8);
    code.extend([0xff, 0xc9, 0x0f, 0x85]); // dec ecx; jnz rel32 to `first`
    let back = code.len();
    code.extend([0, 0, 0, 0]);
    code.extend(UD2);
    let g = code.len();
    code.extend([0x48, 0x83, 0xc2, 0x01, 0xc3]); // g: add rdx, 1; ret
    let f = code.len();
    let f_call_g = code.len() + 1;
    code.extend([0xe8, 0, 0, 0, 0, 0xc3]); // f: call g; ret
    for (at, to) in [
        (call_f, f),
        (to_odd, odd),
        (to_join, join),
        (call_g, g),
        (back, first),
        (f_call_g, g),
    ] {
        rel32(&mut code, at, to);
    }
    assert!(code.len() <= PAGE_SIZE as usize);
    let (mut a, _) = machine(&code);
    a.gpr = [3; 16];
    a.gpr[4] = stack + 2048;
    a.set_rflags(0x202);
    a.cet.u_cet = cetbox_cpu::state::U_CET_SH_STK_EN;
    a.cet.ssp = ssp;
    let mut b = a.fork(a.mem.clone());
    b.icount = 0;
    let stop = AtomicBool::new(false);
    let ea = Interpreter::new().run(&mut a, &stop);
    let mut t = Translator::translate_everything().with_cache_size(PAGE_SIZE as usize);
    let eb = t.run(&mut b, &stop);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(a.cet.ssp, b.cet.ssp);
    assert_eq!(b.cet.ssp, ssp);
    assert_eq!(a.gpr[0], 3 + 25 * 64 * 8 + 25 * 40 * 8);
    assert_eq!(a.gpr[2], 3 + 50 * 4);
    let stats = t.stats();
    let flushes = stats.flushes.load(Ordering::Relaxed);
    assert!(flushes >= 50, "{flushes} flushes");
}

/// A translated RET to an address outside user space, the same on the stack and the shadow
/// stack (so the compare passes), with an empty return cache (every entry holds the address
/// u64::MAX with host address 0): to u64::MAX, which matches an empty entry's address and
/// must be taken as a miss, not entered, the RET completes and the fetch there faults, in
/// both engines with the same registers, RSP and SSP popped; to a non-canonical address it
/// is #GP at the RET, with RSP, SSP and the registers as before it.
#[test]
fn ret_to_non_canonical_address_on_both_stacks_faults_in_both_engines() {
    let _serial = serial();
    let stack = pages(1, VmaKind::Normal, &[]);
    let shadow = pages(1, VmaKind::ShadowStack, &[]);
    let ssp = shadow + PAGE_SIZE - 8;
    for target in [u64::MAX, 0x8000_0000_0000_0000u64] {
        let prep = move |c: &mut Cpu| {
            c.cet.u_cet = cetbox_cpu::state::U_CET_SH_STK_EN;
            c.cet.ssp = ssp;
            c.mem
                .force_write(ssp, &target.to_le_bytes())
                .expect("shadow stack");
        };
        let code = [0x48, 0x83, 0xc0, 0x01, 0xc3]; // add rax, 1; ret
        let mut regs = [0x55u64; 16];
        regs[4] = stack + 2048;
        let mut init = vec![0u8; PAGE_SIZE as usize];
        init[2048..2056].copy_from_slice(&target.to_le_bytes());
        let (a, b, ea, eb, ma, mb, _) = run_both_with(&code, regs, ALL_FLAGS, stack, &init, &prep);
        assert_eq!(ea, eb, "{target:#x}");
        assert_same(&a, &b);
        assert_eq!(a.cet.ssp, b.cet.ssp);
        assert_eq!(ma, mb);
        if target == u64::MAX {
            assert!(
                matches!(ea, Exit::Exception(Exception::PageFault(f)) if f.addr == target),
                "{ea:?}"
            );
            assert_eq!(b.gpr[4], stack + 2056, "RSP after the RET");
            assert_eq!(b.cet.ssp, ssp + 8, "SSP after the RET");
        } else {
            assert_eq!(ea, Exit::Exception(Exception::GeneralProtection));
            assert_eq!(b.gpr[4], stack + 2048, "RSP at the RET");
            assert_eq!(b.cet.ssp, ssp, "SSP at the RET");
        }
    }
}

/// Memory operands checked with the address computed in RAX alone (no address register; the
/// instruction then runs on its own operand): an operand based on RAX after the check saved
/// the guest's flags (so RAX no longer holds the guest's value and is read back), indexed
/// operands, and a misaligned load that the alignment test sends to the out-of-line check of
/// both pages. In mapped memory all run translated (only the final UD2 in the interpreter)
/// and match the interpreter; a load that crosses into an inaccessible page and one based on
/// RAX that lands in it fault exactly as in the interpreter (address, registers, flags as
/// after the ADD, retired count).
#[test]
fn rax_based_and_indexed_operands_fault_exactly() {
    let _serial = serial();
    // The third page inaccessible.
    let data = pages(3, VmaKind::Normal, &[2]);
    let code = [
        0x48, 0x83, 0xc7, 0x01, // add rdi, 1
        0x48, 0x8b, 0x14, 0xc8, // mov rdx, [rax + rcx*8]
        0x43, 0x0f, 0xb7, 0x5c, 0x48, 0x06, // movzx ebx, word [r8 + r9*2 + 6]
        0x4a, 0x8b, 0x74, 0x15, 0x03, // mov rsi, [rbp + r10 + 3]
        0x48, 0x83, 0xd7, 0x00, // adc rdi, 0
        0x0f, 0x0b, // ud2
    ];
    let init: Vec<u8> = (0..2 * PAGE_SIZE as usize)
        .map(|i| (i * 13 + 5) as u8)
        .collect();
    let mut regs = [0u64; 16];
    regs[0] = data + 0x100; // rax
    regs[1] = 3; // rcx
    regs[8] = data + 0x200; // r8
    regs[9] = 5; // r9
    regs[5] = data + 0x300; // rbp
    regs[10] = 0x10; // r10
    regs[7] = u64::MAX; // rdi: the ADD carries
    let (a, b, ea, eb, ma, mb, stats) = run_both_from(&code, regs, ALL_FLAGS, data, &init);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(ma, mb);
    assert_eq!(
        b.gpr[2],
        u64::from_le_bytes(init[0x118..0x120].try_into().unwrap())
    );
    assert_eq!(b.gpr[7], 1, "ADC saw the ADD's carry");
    assert_eq!(
        stats.interpreted.load(Ordering::Relaxed),
        1,
        "only the UD2 runs in the interpreter"
    );
    // The misaligned load runs from the second page into the inaccessible third.
    let mut r = regs;
    r[5] = data + 2 * PAGE_SIZE - 0x10 - 3 - 4;
    let (a, b, ea, eb, ma, mb, _) = run_both_from(&code, r, ALL_FLAGS, data, &init);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, data + 2 * PAGE_SIZE),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(ma, mb);
    assert_eq!(
        b.gpr[2],
        u64::from_le_bytes(init[0x118..0x120].try_into().unwrap()),
        "the load before it done"
    );
    assert_eq!(b.gpr[6], r[6], "RSI as before the faulting load");
    // The RAX-based load lands in the inaccessible page.
    let mut r = regs;
    r[0] = data + 2 * PAGE_SIZE + 0x40 - 3 * 8;
    let (a, b, ea, eb, _, _, _) = run_both_from(&code, r, ALL_FLAGS, data, &init);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => {
            assert_eq!(f.addr, data + 2 * PAGE_SIZE + 0x40)
        }
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(b.gpr[0], r[0], "RAX as before the load");
}

/// RIP-relative operands of code in the low 2 GiB run as absolute `[disp32]` operands after
/// their check: a load, and a read-modify-write of another qword, match the interpreter
/// (registers, memory, retired count) with only the UD2 interpreted; with the data page made
/// inaccessible, the load faults at its target in both engines.
#[test]
fn rip_relative_operands_as_absolute_addresses() {
    let _serial = serial();
    let mem = space();
    let low = |prot: u32| {
        let mut req = MapRequest::anonymous(0, PAGE_SIZE, prot, VmaKind::Normal);
        req.low_2g = true;
        mem.map(&req).expect("a low page")
    };
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    let code_at = low((libc::PROT_READ | libc::PROT_EXEC) as u32);
    let data = low(rw);
    assert!(code_at < 1 << 31 && data < 1 << 31);
    let rel = |insn_end: u64, target: u64| ((target as i64 - insn_end as i64) as i32).to_le_bytes();
    // mov rax, [rip + (data + 8)]; add [rip + (data + 16)], rax; ud2
    let mut code = vec![0x48, 0x8b, 0x05];
    code.extend(rel(code_at + 7, data + 8));
    code.extend([0x48, 0x01, 0x05]);
    code.extend(rel(code_at + 14, data + 16));
    code.extend(UD2);
    mem.force_write(code_at, &code).expect("code");
    let init: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37)).collect();
    let run = |t: Option<&mut Translator>| {
        let mut cpu = Cpu::new(mem.clone(), Arc::new(CpuConfig::default()));
        cpu.rip = code_at;
        cpu.set_rflags(ALL_FLAGS);
        mem.force_write(data, &init).expect("data");
        let stop = AtomicBool::new(false);
        let exit = match t {
            Some(t) => t.run(&mut cpu, &stop),
            None => Interpreter::new().run(&mut cpu, &stop),
        };
        let mut m = vec![0; init.len()];
        let _ = mem.read_bytes(data, &mut m);
        (exit, cpu, m)
    };
    let (ea, a, ma) = run(None);
    let mut t = Translator::translate_everything();
    let (eb, b, mb) = run(Some(&mut t));
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(ma, mb);
    assert_eq!(
        b.gpr[0],
        u64::from_le_bytes(init[8..16].try_into().unwrap())
    );
    assert_eq!(t.stats().interpreted.load(Ordering::Relaxed), 1);
    mem.protect(data, PAGE_SIZE, 0).expect("inaccessible");
    let (ea, a, _) = run(None);
    let mut t = Translator::translate_everything();
    let (eb, b, _) = run(Some(&mut t));
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, data + 8),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
}

/// A loop whose body holds a Jcc (`l: test cl, 1; jz e; add rax, rcx; e: add rbx, rcx; dec
/// ecx; jnz l`) is translated as a trace that goes on past the JZ (a side exit to `e`): state
/// and retired count match the interpreter, and the 1000 iterations run chained inside the
/// cache (a few entries from the run loop, while each side exit is linked).
#[test]
fn trace_side_exits_match_interpreter_and_stay_chained() {
    let _serial = serial();
    let mut code = vec![
        0xb9, 0xe8, 0x03, 0, 0, // mov ecx, 1000
        0xf6, 0xc1, 0x01, // l: test cl, 1
        0x74, 0x03, // jz e
        0x48, 0x01, 0xc8, // add rax, rcx
        0x48, 0x01, 0xcb, // e: add rbx, rcx
        0xff, 0xc9, // dec ecx
        0x75, 0xf1, // jnz l
    ];
    code.extend(UD2);
    let (a, b, stats) = both(&code, [0; 16], 0x202);
    assert_same(&a, &b);
    assert_eq!(a.gpr[0], 500 * 500, "the odd counts");
    assert_eq!(a.gpr[3], 1000 * 1001 / 2);
    let entered = stats.entered.load(Ordering::Relaxed);
    assert!(entered <= 6, "{entered} entries for a chained loop");
}

/// A range check never spans a side exit: `mov rax, [rsi]; test rax, rax; jz out; mov rdx,
/// [rsi + 0xff8]; ...` with the second load's page inaccessible. When the JZ is taken the
/// second load does not happen, so nothing may fail a check for it (only the UD2 runs in the
/// interpreter); when it is not taken the second load faults exactly as in the interpreter.
#[test]
fn range_checks_end_at_side_exits() {
    let _serial = serial();
    let data = pages(2, VmaKind::Normal, &[1]);
    let code = [
        0x48, 0x8b, 0x06, // mov rax, [rsi]
        0x48, 0x85, 0xc0, // test rax, rax
        0x74, 0x13, // jz out
        0x48, 0x8b, 0x96, 0xf8, 0x0f, 0, 0, // mov rdx, [rsi + 0xff8]
        0x48, 0x83, 0xc2, 0x01, // add rdx, 1
        0x48, 0x83, 0xc2, 0x01, // add rdx, 1
        0x48, 0x83, 0xc2, 0x01, // add rdx, 1
        0x0f, 0x0b, // out: ud2
    ];
    let mut regs = [0u64; 16];
    regs[6] = data + 0x10;
    let zero = vec![0u8; 32];
    let (a, b, ea, eb, _, _, stats) = run_both_from(&code, regs, ALL_FLAGS, data, &zero);
    assert!(ends_in_ud2(&ea), "{ea:?}");
    assert_eq!(ea, eb);
    assert_same(&a, &b);
    assert_eq!(
        stats.interpreted.load(Ordering::Relaxed),
        1,
        "only the UD2 runs in the interpreter"
    );
    let ones = vec![1u8; 32];
    let (a, b, ea, eb, _, _, _) = run_both_from(&code, regs, ALL_FLAGS, data, &ones);
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, data + 0x10 + 0xff8),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_same(&a, &b);
}

/// A loop body longer than a block (70 `add rax, 1`, then `dec ecx; jnz l`, 100 times) is
/// split at 64 instructions into blocks that chain to each other: state and retired count
/// match the interpreter and the loop runs inside the cache (a block cut by the size cap used
/// to leave to the run loop on every pass).
#[test]
fn blocks_cut_by_the_size_cap_chain() {
    let _serial = serial();
    let mut code = vec![0xb9, 100, 0, 0, 0]; // mov ecx, 100
    for _ in 0..70 {
        code.extend([0x48, 0x83, 0xc0, 0x01]); // add rax, 1
    }
    code.extend([0xff, 0xc9]); // dec ecx
    let back = -(70 * 4 + 2 + 2i32);
    code.extend([0x0f, 0x85]); // jnz l (rel32)
    code.extend((back - 4).to_le_bytes());
    code.extend(UD2);
    let (a, b, stats) = both(&code, [0; 16], 0x202);
    assert_same(&a, &b);
    assert_eq!(a.gpr[0], 7000);
    let entered = stats.entered.load(Ordering::Relaxed);
    assert!(entered <= 6, "{entered} entries for a chained loop");
}

/// A translated loop that reads through an array (`l: add rax, [rsi]; add rsi, 8; dec ecx;
/// jnz l; ud2`) remembers the array's page at its read site after the first iteration
/// (`memop::check_place`) and compares each later address with it. When the array runs into
/// an inaccessible page, the read that reaches it must not match the remembered page: both
/// engines stop at that read with the same page fault, the sum of the elements before it,
/// RSI at the page and the same count left. The same with the elements misaligned by 4, so
/// that the read which reaches the page straddles both (its low bits must keep it from
/// matching). And the loop runs translated: a page checked in full only once.
#[test]
fn remembered_read_page_loop_faults_at_the_next_page() {
    let _serial = serial();
    // The readable page 8 KiB-aligned, so that even a comparison that dropped address bit 12
    // would find the inaccessible page "remembered".
    let three = pages(3, VmaKind::Normal, &[]);
    let data = if three.is_multiple_of(2 * PAGE_SIZE) {
        three
    } else {
        three + PAGE_SIZE
    };
    let page1 = data + PAGE_SIZE;
    space()
        .protect(page1, PAGE_SIZE, 0)
        .expect("inaccessible page");
    let code = [
        0x48, 0x03, 0x06, // l: add rax, [rsi]
        0x48, 0x83, 0xc6, 0x08, // add rsi, 8
        0xff, 0xc9, // dec ecx
        0x75, 0xf5, // jnz l
        0x0f, 0x0b, // ud2
    ];
    let init: Vec<u8> = (0..PAGE_SIZE as usize).map(|i| (i * 13) as u8).collect();
    for skew in [0u64, 4] {
        let mut regs = [0u64; 16];
        regs[1] = 1000;
        regs[6] = page1 - 64 * 8 + skew;
        let (a, b, ea, eb, ma, mb, stats) = run_both_from(&code, regs, ALL_FLAGS, data, &init);
        match &ea {
            Exit::Exception(Exception::PageFault(f)) => {
                assert!(f.addr == page1, "fault at {:#x}", f.addr)
            }
            other => panic!("expected a page fault, got {other:?}"),
        }
        assert_eq!(ea, eb);
        assert_same(&a, &b);
        assert_eq!(ma, mb);
        let elems = if skew == 0 { 64 } else { 63 };
        assert_eq!(b.gpr[1], 1000 - elems, "iterations done");
        assert_eq!(b.gpr[6], page1 - 64 * 8 + skew + 8 * elems);
        let sum = (0..elems as usize)
            .map(|k| {
                let o = PAGE_SIZE as usize - 512 + skew as usize + 8 * k;
                u64::from_le_bytes(init[o..o + 8].try_into().unwrap())
            })
            .fold(0u64, u64::wrapping_add);
        assert_eq!(b.gpr[0], sum, "the sum of the elements read");
        assert!(
            stats.retired_translated.load(Ordering::Relaxed) >= 4 * (elems - 1),
            "the loop ran translated"
        );
    }
}

/// The shootdown protocol's view of a remembered page: a translated loop reads one page
/// (`l: add rax, [rsi]; inc qword [rdi]; jmp l`, so its read site remembers the page) until
/// another thread stops it, as `thread_group::shootdown` does, makes the page PROT_NONE while
/// it is out, and lets it run again. The next entry must have forgotten the page: the first
/// read after it faults (protection fault at the page, RIP at the read, the registers as they
/// were at the stop), as the interpreter faults from the same state.
#[test]
fn remembered_read_page_is_forgotten_after_a_stop_and_mprotect() {
    let _serial = serial();
    let data = pages(2, VmaKind::Normal, &[]);
    let counter = data + PAGE_SIZE;
    let code = [
        0x48, 0x03, 0x06, // l: add rax, [rsi]
        0x48, 0xff, 0x07, // inc qword [rdi]
        0xeb, 0xf8, // jmp l
    ];
    let (mut cpu, at) = machine(&code);
    cpu.mem.force_write(data, &7u64.to_le_bytes()).unwrap();
    cpu.mem.force_write(counter, &0u64.to_le_bytes()).unwrap();
    cpu.gpr[6] = data;
    cpu.gpr[7] = counter;
    let mut t = Translator::translate_everything();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let exit = t.run(&mut cpu, &s2);
        tx.send((exit, cpu, t)).unwrap();
    });
    // Thousands of translated iterations (the count is the signal: no sleep).
    let mem = space();
    while mem.read_u64(counter).unwrap() < 10_000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    let (exit, mut cpu, mut t) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the translated loop did not stop");
    h.join().unwrap();
    assert_eq!(exit, Exit::Interrupted);
    mem.protect(data, PAGE_SIZE, 0).expect("mprotect");
    let mut reference = cpu.fork(cpu.mem.clone());
    // Both resume at the read or at the INC; the interpreter shows where the fault must be.
    // The same stop flag as before (the translations poll its address: another flag would
    // flush them, and the read site would get a new slot).
    stop.store(false, Ordering::SeqCst);
    let ea = Interpreter::new().run(&mut reference, &AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let exit = t.run(&mut cpu, &stop);
        tx.send((exit, cpu)).unwrap();
    });
    let (eb, cpu) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the read of the PROT_NONE page did not fault");
    h.join().unwrap();
    match &ea {
        Exit::Exception(Exception::PageFault(f)) => assert_eq!(f.addr, data),
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(ea, eb);
    assert_eq!(cpu.rip, at, "at the read");
    assert_eq!(cpu.gpr, reference.gpr);
    assert_eq!(
        format!("{:#x}", cpu.rflags()),
        format!("{:#x}", reference.rflags())
    );
}

/// The write side of `remembered_read_page_loop_faults_at_the_next_page`: a translated loop
/// storing through an array (`l: mov [rsi], rax; add rsi, 8; dec ecx; jnz l; ud2`) remembers
/// its page at the store site; the store that reaches the next page, read-only, must not match
/// it (aligned, and misaligned by 4 so that it straddles both pages): both engines stop there
/// with the same write fault, the same registers and the same memory (every earlier store
/// done, nothing of the faulting one).
#[test]
fn remembered_write_page_loop_faults_at_the_next_page() {
    let _serial = serial();
    // The writable page 8 KiB-aligned, as in the read test.
    let three = pages(3, VmaKind::Normal, &[]);
    let data = if three.is_multiple_of(2 * PAGE_SIZE) {
        three
    } else {
        three + PAGE_SIZE
    };
    let page1 = data + PAGE_SIZE;
    space()
        .protect(page1, PAGE_SIZE, libc::PROT_READ as u32)
        .expect("read-only page");
    // Read once, so that both engines' faults find it populated (the P bit of the error code:
    // the first engine's run would populate it for the second).
    space().read_u64(page1).expect("readable");
    let code = [
        0x48, 0x89, 0x06, // l: mov [rsi], rax
        0x48, 0x83, 0xc6, 0x08, // add rsi, 8
        0xff, 0xc9, // dec ecx
        0x75, 0xf5, // jnz l
        0x0f, 0x0b, // ud2
    ];
    let init = vec![0u8; 2 * PAGE_SIZE as usize];
    for skew in [0u64, 4] {
        let mut regs = [0u64; 16];
        regs[0] = 0x0102_0304_0506_0708;
        regs[1] = 1000;
        regs[6] = page1 - 64 * 8 + skew;
        let (a, b, ea, eb, ma, mb, stats) = run_both_from(&code, regs, ALL_FLAGS, data, &init);
        match &ea {
            Exit::Exception(Exception::PageFault(f)) => {
                assert!(f.addr == page1, "fault at {:#x}", f.addr)
            }
            other => panic!("expected a page fault, got {other:?}"),
        }
        assert_eq!(ea, eb);
        assert_same(&a, &b);
        assert_eq!(ma, mb, "memory");
        let elems = if skew == 0 { 64 } else { 63 };
        assert_eq!(b.gpr[1], 1000 - elems, "iterations done");
        assert!(
            mb[PAGE_SIZE as usize..].iter().all(|&x| x == 0),
            "read-only page untouched"
        );
        assert!(
            stats.retired_translated.load(Ordering::Relaxed) >= 4 * (elems - 1),
            "the loop ran translated"
        );
    }
}
