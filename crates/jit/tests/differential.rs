//! The differential instruction test through the translator: every form of the table in
//! crates/cpu/tests/diff (the harness is shared, not copied) runs from the same random
//! starting state natively, in the interpreter (`Engine::step`) and through `Translator::run`;
//! the translator must agree with the interpreter on every GPR, RIP, the compared flags and the
//! data page, and with the host wherever it ran translated code. Forms the translator does not
//! handle run in the interpreter inside the translator, so they are still compared, and the
//! test reports how many forms really ran as translated code (and fails if
//! the subset this engine claims to translate did not).
//!
//! The landing pads are replaced by UD2 while the translator runs, so a block ends right after
//! the instruction (or at the branch target); `#UD` at a pad is read as "reached that pad".
//!
//! Environment: `CETBOX_DIFF_SEED`, `CETBOX_DIFF_CASES` (default 300), `CETBOX_DIFF_FILTER`
//! as in crates/cpu/tests/differential.rs.

#[path = "../../cpu/tests/diff/mod.rs"]
#[allow(unused_imports)]
mod diff;

use cetbox_cpu::{Cpu, CpuConfig, Engine, Exception, Exit};
use cetbox_jit::Translator;
use diff::forms::{self, Form};
use diff::{compare, gen, harness, native, run_emu, run_native, signal_of, CompareOpts};
use diff::{Case, Harness, Outcome, State};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

const UD2: [u8; 2] = [0x0f, 0x0b];

/// Runs `case` through the translator; the landing pads hold UD2.
fn run_jit(h: &Harness, case: &Case, pads: &[u64], t: &mut Translator) -> Outcome {
    let mut cpu = Cpu::new(h.mem.clone(), Arc::new(CpuConfig::default()));
    cpu.gpr = case.input.gpr;
    cpu.set_rflags(case.input.rflags);
    assert!(cetbox_cpu::fpstate::fxrstor(
        &mut cpu.x87,
        &mut cpu.sse,
        &case.input.fx
    ));
    cpu.sse.ymm_hi = case.input.ymm_hi;
    cpu.fs_base = case.input.fs_base;
    cpu.gs_base = case.input.gs_base;
    cpu.rip = h.insn_addr();
    t.invalidate();
    let stop = AtomicBool::new(false);
    let exit = t.run(&mut cpu, &stop);
    let mut fault = None;
    let (signal, what) = match exit {
        Exit::Exception(Exception::InvalidOpcode(_)) if pads.contains(&cpu.rip) => {
            (None, String::new())
        }
        Exit::Exception(e) => {
            fault = Some(diff::fault::linux_fault(
                &e,
                cpu.rip,
                cpu.sse.mxcsr,
                cpu.x87.status_word(),
                cpu.x87.fcw,
            ));
            (Some(signal_of(&e)), format!("{e:?}"))
        }
        x => (Some(-2), format!("exit {x:?}")),
    };
    let mut st = State {
        gpr: cpu.gpr,
        rflags: cpu.rflags(),
        rip: cpu.rip,
        ..Default::default()
    };
    cetbox_cpu::fpstate::fxsave(&cpu.x87, &cpu.sse, &mut st.fx);
    st.ymm_hi = cpu.sse.ymm_hi;
    st.fs_base = cpu.fs_base;
    st.gs_base = cpu.gs_base;
    // SAFETY: the data page is the harness's, which we hold locked.
    let mem = unsafe { std::slice::from_raw_parts(h.data as *const u8, diff::DATA_LEN) };
    Outcome {
        st,
        mem: mem.to_vec(),
        signal,
        fault,
        what,
    }
}

/// Runs one form; returns (mismatch description, whether any case ran translated code).
fn run_form(h: &Harness, form: &Form, seed: u64, cases: u32) -> (Option<String>, bool) {
    let pads = h.pads(form);
    let mut rng = gen::form_rng(seed, &form.name);
    let ctx = gen::Ctx {
        data: h.data,
        pads: pads.clone(),
    };
    let mut t = Translator::translate_everything();
    let stats = t.stats();
    // Against the host, architecturally undefined flags are not compared (the interpreter
    // defines them its own way, and the translator never lets a host-defined undefined flag
    // escape a block); against the interpreter, everything is.
    let host_opts = CompareOpts { ignore_undef: true };
    let opts = CompareOpts::default();
    for k in 0..cases {
        let case = gen::make_case(&mut rng, form, &ctx);
        native::place(h.code, &form.bytes, &pads);
        h.set_code(&case.bytes);
        let n = run_native(h, &case, &pads);
        let e = run_emu(h, &case);
        for &p in &pads {
            // SAFETY: the pads are inside the harness's code mapping, which we hold locked.
            unsafe { native::write(p, &UD2) };
        }
        // The data page as the case starts (run_emu left its result there).
        // SAFETY: as above, the data page is ours while locked.
        unsafe {
            native::write(h.data, &case.mem);
        }
        let before = stats.entered.load(Ordering::Relaxed);
        let j = run_jit(h, &case, &pads, &mut t);
        // Cases the translator left entirely to the interpreter are the interpreter's own
        // differential test's business (crates/cpu/tests/differential.rs); here they are only
        // compared with the interpreter run.
        let mut d = if stats.entered.load(Ordering::Relaxed) > before {
            compare(form, h.data, &n, &j, host_opts)
        } else {
            Vec::new()
        };
        d.extend(
            compare(form, h.data, &e, &j, opts)
                .into_iter()
                .map(|l| format!("vs interpreter: {l}")),
        );
        if !d.is_empty() {
            let msg = format!(
                "FAIL {}: case {k} (CETBOX_DIFF_SEED={seed:#x}) bytes {}\n  {}",
                form.name,
                diff::hex(&case.bytes),
                d.join("\n  ")
            );
            return (Some(msg), stats.entered.load(Ordering::Relaxed) > 0);
        }
    }
    native::place(h.code, &form.bytes, &pads);
    (None, stats.entered.load(Ordering::Relaxed) > 0)
}

#[test]
fn translator_matches_host_and_interpreter() {
    let seed = env_u64("CETBOX_DIFF_SEED").unwrap_or(0xce7b_0c5e_ed00_0002);
    let base = env_u64("CETBOX_DIFF_CASES").unwrap_or(300) as u32;
    let filter = std::env::var("CETBOX_DIFF_FILTER").unwrap_or_default();
    let h = harness();
    let mut failed = Vec::new();
    let mut translated = Vec::new();
    let mut total = 0;
    for f in forms::all() {
        if !filter.is_empty() && !filter.split(',').any(|p| f.name.contains(p.trim())) {
            continue;
        }
        total += 1;
        let cases = ((base as f32 * f.weight) as u32).max(20);
        let (fail, ran) = run_form(&h, &f, seed, cases);
        if ran {
            translated.push(f.name.clone());
        }
        if let Some(m) = fail {
            println!("{m}");
            failed.push(f.name.clone());
        }
    }
    println!(
        "{} forms, {} ran as translated code, {} failed",
        total,
        translated.len(),
        failed.len()
    );
    for n in &translated {
        println!("  translated: {n}");
    }
    assert!(failed.is_empty(), "mismatches: {failed:?}");
    if filter.is_empty() {
        // The register-only integer subset of the table must really have been translated.
        assert!(
            translated.len() >= 40,
            "only {} forms ran translated",
            translated.len()
        );
    }
}

/// The SIMD forms with unmasked MXCSR exceptions (crates/cpu/tests/diff forms::unmasked_sse:
/// #XM, its si_code and the MXCSR flags compared) through the translator too, which leaves
/// them to the interpreter while any exception is unmasked; it must agree with it and the host.
#[test]
fn translator_matches_with_unmasked_sse() {
    let seed = env_u64("CETBOX_DIFF_SEED").unwrap_or(0xce7b_0c5e_ed00_0003);
    let base = env_u64("CETBOX_DIFF_CASES").unwrap_or(100) as u32;
    let h = harness();
    let forms = forms::unmasked_sse();
    assert!(forms.len() > 400, "{} forms", forms.len());
    let mut failed = Vec::new();
    for f in &forms {
        let cases = ((base as f32 * f.weight) as u32).max(20);
        if let (Some(m), _) = run_form(&h, f, seed, cases) {
            println!("{m}");
            failed.push(f.name.clone());
        }
    }
    println!(
        "{} forms with unmasked exceptions, {} failed",
        forms.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "mismatches: {failed:?}");
}
