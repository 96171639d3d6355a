//! `Interpreter::run_cold` and its `known_hot` question (crates/cpu/src/interp/mod.rs): a
//! block the question calls hot before it was ever decoded is handed to the caller without
//! being decoded, later arrivals there return `Hot` without asking again, and the block is
//! decoded only when the caller gives it back (`keep`) or `run_block` runs it. Expected counts
//! follow from the program: A: MOV ECX, 3; JMP B (32 bytes before the end of a page, so the
//! decoder's 16-byte windows stay in it; a block of 2 instructions), B: DEC ECX; JNZ B (the start of the next page, 2 instructions per pass),
//! C: SYSCALL. That B was not decoded shows in the code epoch: decoding marks the page as
//! code (`AddressSpace::mark_code`), and a write to a marked page changes the epoch.
//!
//! The address space is one per process (`cetbox_mem`), so the cases run one after another
//! in one test, each on pages of its own.

use cetbox_cpu::interp::ColdExit;
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit, Interpreter};
use cetbox_mem::{Access, AddressSpace, MapRequest, VmaKind, PAGE_SIZE};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Two read-execute pages holding the program (A near the end of the first, B and C at the
/// start of the second) and a read-write page after them, fresh in `mem`.
fn program(mem: &Arc<AddressSpace>) -> (Cpu, u64, u64, u64) {
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u32;
    let code = mem
        .map(&MapRequest::anonymous(
            0,
            3 * PAGE_SIZE,
            rwx,
            VmaKind::Normal,
        ))
        .expect("pages");
    let b = code + PAGE_SIZE;
    let a = b - 32;
    // A: mov ecx, 3; jmp B (rel8 25). B: dec ecx; jnz B (rel8 -4). C: syscall.
    mem.force_write(a, &[0xb9, 3, 0, 0, 0, 0xeb, 25])
        .expect("A");
    mem.force_write(b, &B_AND_C).expect("B");
    let rx = (libc::PROT_READ | libc::PROT_EXEC) as u32;
    mem.protect(code, 2 * PAGE_SIZE, rx).expect("code pages");
    let rw = (libc::PROT_READ | libc::PROT_WRITE) as u32;
    mem.protect(code + 2 * PAGE_SIZE, PAGE_SIZE, rw)
        .expect("data page");
    let mut cpu = Cpu::new(mem.clone(), Arc::new(CpuConfig::default()));
    cpu.rip = a;
    (cpu, a, b, b + 4)
}

/// Blocks B and C.
const B_AND_C: [u8; 6] = [0xff, 0xc9, 0x75, 0xfc, 0x0f, 0x05];

/// A never-reached hot threshold: only the question makes a block hot.
const HOT: u32 = 1000;

#[test]
fn cold_hints() {
    let mem = Arc::new(AddressSpace::new().expect("address space"));
    a_block_known_hot_is_handed_over_undecoded_and_decoded_when_kept(&mem);
    run_block_decodes_a_placeholder_and_runs_it(&mem);
    a_kept_placeholder_that_cannot_be_fetched_faults_instead_of_looping(&mem);
}

fn a_block_known_hot_is_handed_over_undecoded_and_decoded_when_kept(mem: &Arc<AddressSpace>) {
    let (mut cpu, a, b, c) = program(mem);
    let stop = AtomicBool::new(false);
    let mut interp = Interpreter::new();
    let mut asked = Vec::new();
    let mut ask = |cpu: &Cpu| {
        asked.push(cpu.rip);
        cpu.rip == b
    };
    assert_eq!(
        interp.run_cold(&mut cpu, &stop, HOT, &mut ask),
        ColdExit::Hot
    );
    assert_eq!((cpu.rip, cpu.icount, cpu.gpr[1]), (b, 2, 3));
    // Not decoded: rewriting B's page (with the same bytes) leaves the code epoch alone.
    let epoch = cpu.mem.code_epoch();
    cpu.mem.force_write(b, &B_AND_C).expect("rewrite B");
    assert_eq!(cpu.mem.code_epoch(), epoch, "B's page was decoded");
    // The caller did not take B over: arriving there again is `Hot` at once, not asked again.
    assert_eq!(
        interp.run_cold(&mut cpu, &stop, HOT, &mut ask),
        ColdExit::Hot
    );
    assert_eq!((cpu.rip, cpu.icount), (b, 2));
    // Given back: decoded and run from then on, never handed over again.
    interp.keep(b);
    let exit = interp.run_cold(&mut cpu, &stop, HOT, &mut ask);
    assert_eq!(exit, ColdExit::Exit(Exit::Syscall));
    // SYSCALL left its return address in RCX (Intel SDM Vol. 2B, SYSCALL).
    assert_eq!((cpu.rip, cpu.icount, cpu.gpr[1]), (c + 2, 9, c + 2));
    assert_eq!(asked, vec![a, b, c], "each block asked about once");
}

fn run_block_decodes_a_placeholder_and_runs_it(mem: &Arc<AddressSpace>) {
    let (mut cpu, _a, b, _c) = program(mem);
    let stop = AtomicBool::new(false);
    let mut interp = Interpreter::new();
    let mut asks = 0;
    let mut ask = |cpu: &Cpu| {
        asks += 1;
        cpu.rip == b
    };
    assert_eq!(
        interp.run_cold(&mut cpu, &stop, HOT, &mut ask),
        ColdExit::Hot
    );
    assert_eq!(interp.run_block(&mut cpu), None);
    // B ran once: DEC ECX, JNZ taken back to B.
    assert_eq!((cpu.rip, cpu.icount, cpu.gpr[1]), (b, 4, 2));
    // A block `run_block` decoded is asked about before its first start in `run_cold`.
    assert_eq!(
        interp.run_cold(&mut cpu, &stop, HOT, &mut ask),
        ColdExit::Hot
    );
    assert_eq!((cpu.rip, cpu.icount), (b, 4));
    assert_eq!(asks, 3);
}

fn a_kept_placeholder_that_cannot_be_fetched_faults_instead_of_looping(mem: &Arc<AddressSpace>) {
    let (mut cpu, _a, b, _c) = program(mem);
    let data = b + PAGE_SIZE;
    let stop = AtomicBool::new(false);
    let mut interp = Interpreter::new();
    // The question calls the non-executable page hot (as a stale or forged profile might).
    let mut ask = |cpu: &Cpu| cpu.rip == data;
    cpu.rip = data;
    assert_eq!(
        interp.run_cold(&mut cpu, &stop, HOT, &mut ask),
        ColdExit::Hot
    );
    interp.keep(data);
    match interp.run_cold(&mut cpu, &stop, HOT, &mut ask) {
        ColdExit::Exit(Exit::Exception(Exception::PageFault(f))) => {
            assert_eq!((f.addr, f.access), (data, Access::Fetch));
        }
        other => panic!("expected a fetch fault at {data:#x}, got {other:?}"),
    }
    assert_eq!((cpu.rip, cpu.icount), (data, 0));
}
