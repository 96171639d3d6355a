//! Multi-instruction blocks: a few random forms back to back, run natively as one straight-line
//! block and in the emulator with `Cpu::run` (block decoding, successor chaining and the fast
//! paths), so those are compared with the host and not only with single steps.

use super::forms::Form;
use super::{gen, native, Harness, Outcome, State};
use cetbox_cpu::fpstate::{fxrstor, fxsave};
use cetbox_cpu::{Cpu, CpuConfig, Exception, Exit};
use cetbox_cpu::{Engine, Interpreter};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, InstructionInfoFactory, Mnemonic, OpAccess, Register,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Forms that can sit anywhere in a straight-line block: no memory operand or register fix-up
/// the generator would have to apply mid-block, no control flow, no fault by design, no x87
/// stack set-up, results that depend only on the state (no RDTSC-like reads), memory touched
/// only through the stack pointer, which no form may change other than by pushing and popping
/// (so RSP stays in the data page for the whole block).
pub fn block_forms(all: &[Form]) -> Vec<Form> {
    let mut info = InstructionInfoFactory::new();
    all.iter()
        .filter(|f| {
            let mut d = Decoder::with_ip(64, &f.bytes, 0, DecoderOptions::NONE);
            let i = d.decode();
            let used = info.info(&i);
            let stack_only = used
                .used_memory()
                .iter()
                .all(|m| m.base() == Register::RSP && m.index() == Register::None);
            let writes_rsp = used.used_registers().iter().any(|r| {
                r.register().full_register() == Register::RSP
                    && matches!(
                        r.access(),
                        OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite
                    )
            }) && !matches!(i.mnemonic(), Mnemonic::Push | Mnemonic::Pop)
                || (i.mnemonic() == Mnemonic::Pop
                    && i.op0_register().full_register() == Register::RSP);
            stack_only
                && !writes_rsp
                && !matches!(
                    i.mnemonic(),
                    Mnemonic::Popf | Mnemonic::Popfq | Mnemonic::Leave | Mnemonic::Enter
                )
                && f.mem.is_none()
                && f.fixes.is_empty()
                && f.exits.is_empty()
                && f.x87 == 0
                && !f.unmasked
                && i.flow_control() == FlowControl::Next
                && !matches!(
                    i.mnemonic(),
                    Mnemonic::Rdtsc
                        | Mnemonic::Rdtscp
                        | Mnemonic::Cpuid
                        | Mnemonic::Rdpid
                        | Mnemonic::Xgetbv
                        | Mnemonic::Rdrand
                        | Mnemonic::Rdseed
                )
                && !f.name.contains('[')
        })
        .cloned()
        .collect()
}

/// Runs the code in the instruction slot with `Cpu::run` until the UD2 at `end`.
pub fn run_emu_block(h: &Harness, input: &State, mem: &[u8], end: u64) -> Outcome {
    h.data_slice().copy_from_slice(mem);
    // SAFETY: `end` is a landing pad in the harness's code region, host-writable; the harness
    // lock serializes its users, and the next native run rewrites the pads.
    unsafe { native::write(end, &[0x0f, 0x0b]) };
    let mut cpu = Cpu::new(h.mem.clone(), Arc::new(CpuConfig::default()));
    cpu.gpr = input.gpr;
    cpu.set_rflags(input.rflags);
    assert!(
        fxrstor(&mut cpu.x87, &mut cpu.sse, &input.fx),
        "input MXCSR invalid"
    );
    cpu.rip = h.insn_addr();
    let stop = AtomicBool::new(false);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Interpreter::new().run(&mut cpu, &stop)
    }));
    let (signal, what) = match r {
        Err(_) => (Some(-1), "PANIC".to_string()),
        Ok(Exit::Exception(Exception::InvalidOpcode(_))) if cpu.rip == end => (None, String::new()),
        Ok(x) => (Some(-2), format!("stopped early: {x:?} at {:#x}", cpu.rip)),
    };
    let mut st = State {
        gpr: cpu.gpr,
        rflags: cpu.rflags(),
        rip: cpu.rip,
        ..Default::default()
    };
    fxsave(&cpu.x87, &cpu.sse, &mut st.fx);
    Outcome {
        st,
        mem: h.data_slice().to_vec(),
        signal,
        fault: None,
        what,
    }
}

/// One random block of `len` forms from `pool`: (the combined form, input state, data page).
pub fn make_block(
    h: &Harness,
    pool: &[Form],
    rng: &mut gen::Rng,
    len: usize,
) -> (Form, gen::Ctx, super::Case) {
    use rand::Rng as _;
    let mut bytes = Vec::new();
    let mut names = Vec::new();
    let mut skip = 0;
    let mut first = None;
    for _ in 0..len {
        let f = &pool[rng.gen_range(0..pool.len())];
        let ctx = gen::Ctx {
            data: h.data,
            pads: h.pads(f),
        };
        let c = gen::make_case(rng, f, &ctx);
        bytes.extend_from_slice(&c.bytes);
        names.push(f.name.clone());
        skip |= f.skip;
        if first.is_none() {
            first = Some(c);
        }
    }
    let mut case = first.expect("len > 0");
    case.bytes = bytes.clone();
    let mut form = pool[0].clone();
    form.name = names.join("; ");
    form.bytes = bytes;
    form.undef = 0;
    form.skip = skip;
    let ctx = gen::Ctx {
        data: h.data,
        pads: vec![h.insn_addr() + case.bytes.len() as u64],
    };
    (form, ctx, case)
}
