//! Randomized differential testing of the emulated CPU against the host CPU.
//!
//! Every form in `diff/forms.rs` runs from the same random starting state natively (through a
//! generated trampoline) and in `Cpu::step`; all GPRs, RIP, CF PF AF ZF SF OF DF, XMM0-15,
//! MXCSR, the x87 state and the data page must agree.
//!
//! Environment:
//! - `CETBOX_DIFF_FILTER=a,b`: only forms whose name contains one of the substrings (for
//!   `sse_unmasked_exceptions`, only when one of them names some of its forms).
//! - `CETBOX_DIFF_SEED=n`: the seed (decimal or 0x-hex); printed with every failure.
//! - `CETBOX_DIFF_CASES=n`: cases per form (default 2000; forms may scale it).
//! - `CETBOX_DIFF_IGNORE_UNDEF=1`: do not compare architecturally undefined flags.
//! - `CETBOX_DIFF_SHOW=n`: print the first mismatch of at most n failing forms (default 40).

mod diff;

use diff::forms::{self, Fix, Form};
use diff::{compare, gen, harness, run_form, run_native, CompareOpts, Outcome};
use std::time::Instant;

const DEFAULT_SEED: u64 = 0xce7b_0c5e_ed00_0001;
const DEFAULT_CASES: u32 = 2000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

fn opts() -> CompareOpts {
    CompareOpts {
        ignore_undef: std::env::var("CETBOX_DIFF_IGNORE_UNDEF").is_ok_and(|v| v == "1"),
    }
}

fn cases_for(f: &Form, base: u32) -> u32 {
    ((base as f32 * f.weight) as u32).max(20)
}

/// Runs `forms`, prints the table, returns the names of failing forms.
fn run_all(forms: &[Form], title: &str) -> Vec<String> {
    let seed = env_u64("CETBOX_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let base = env_u64("CETBOX_DIFF_CASES")
        .map(|v| v as u32)
        .unwrap_or(DEFAULT_CASES);
    let show = env_u64("CETBOX_DIFF_SHOW").unwrap_or(40) as usize;
    let h = harness();
    let t0 = Instant::now();
    let mut failed = Vec::new();
    let mut details = Vec::new();
    let mut total_cases = 0u64;
    println!("== {title}: {} forms, seed {seed:#x}", forms.len());
    println!("{:<58} {:>6}  result", "form", "cases");
    for f in forms {
        let n = cases_for(f, base);
        let r = run_form(&h, f, seed, n, opts());
        total_cases += n as u64;
        if r.fails == 0 {
            println!("{:<58} {:>6}  pass", r.name, r.cases);
        } else {
            println!(
                "{:<58} {:>6}  FAIL ({} of {})",
                r.name, r.cases, r.fails, r.cases
            );
            failed.push(r.name.clone());
            if let Some(d) = r.first {
                details.push(d);
            }
        }
    }
    if !details.is_empty() {
        println!("\n== first mismatch of each failing form (up to {show}):");
        for d in details.iter().take(show) {
            println!("{d}");
        }
    }
    println!(
        "== {title}: {} forms, {} cases, {} passed, {} failed, {:.1}s (seed {seed:#x})",
        forms.len(),
        total_cases,
        forms.len() - failed.len(),
        failed.len(),
        t0.elapsed().as_secs_f64()
    );
    failed
}

/// The forms of `all` CETBOX_DIFF_FILTER selects (all without it). A filter that selects
/// nothing would run zero forms and pass, so it fails instead.
fn filtered(all: Vec<Form>) -> Vec<Form> {
    match std::env::var("CETBOX_DIFF_FILTER") {
        Ok(f) if !f.is_empty() => {
            let pats: Vec<String> = f.split(',').map(|s| s.trim().to_lowercase()).collect();
            let v: Vec<Form> = all
                .into_iter()
                .filter(|x| {
                    pats.iter()
                        .any(|p| x.name.to_lowercase().contains(p.as_str()))
                })
                .collect();
            assert!(
                !v.is_empty(),
                "CETBOX_DIFF_FILTER={f:?} selects no form: nothing would be tested"
            );
            v
        }
        _ => all,
    }
}

/// The whole table (or the CETBOX_DIFF_FILTER subset): fails if any form mismatches.
#[test]
fn differential() {
    let forms = filtered(forms::all());
    let failed = run_all(&forms, "differential");
    assert!(
        failed.is_empty(),
        "{} of {} forms mismatch the host CPU (first: {:?}); rerun with \
         CETBOX_DIFF_FILTER=<name substring> and --nocapture for details",
        failed.len(),
        forms.len(),
        &failed[..failed.len().min(10)]
    );
}

/// Blocks of 2 to 6 random straight-line forms run natively as one block and in the emulator
/// with `Cpu::run` (blocks, chaining, fast paths): every result must agree, undefined flags
/// included (they follow the host, and a later instruction may read them).
#[test]
fn blocks_match_the_host() {
    let seed = env_u64("CETBOX_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let blocks = env_u64("CETBOX_DIFF_BLOCKS").unwrap_or(20000);
    let h = harness();
    let pool = diff::block::block_forms(&forms::all());
    assert!(pool.len() > 300, "too few block forms: {}", pool.len());
    let mut rng = gen::form_rng(seed, "blocks");
    let mut failures = Vec::new();
    for k in 0..blocks {
        let len = 2 + (k % 5) as usize;
        let (form, ctx, case) = diff::block::make_block(&h, &pool, &mut rng, len);
        let end = ctx.pads[0];
        diff::native::place(h.code, &case.bytes, &ctx.pads);
        let n = run_native(&h, &case, &ctx.pads);
        let e = diff::block::run_emu_block(&h, &case.input, &case.mem, end);
        let d = compare(&form, h.data, &n, &e, CompareOpts::default());
        if !d.is_empty() {
            failures.push(format!(
                "block {k}: {}\n    bytes {:02x?}\n    {}",
                form.name,
                case.bytes,
                d.join("\n    ")
            ));
        }
    }
    println!(
        "blocks_match_the_host: {blocks} blocks of 2-6 forms from {} forms, {} failed",
        pool.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {blocks} blocks differ (seed {seed:#x}); first:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
}

/// SSE and AVX arithmetic with unmasked exceptions (#XM compared in full, the MXCSR flags it
/// leaves included): overflow and underflow lanes with OE or UE unmasked report PE only when
/// rounding with an unbounded exponent is inexact, lane by lane.
#[test]
fn sse_unmasked_exceptions() {
    // CETBOX_DIFF_FILTER narrows this table too when it names some of its forms.
    let all = forms::unmasked_sse();
    let named = std::env::var("CETBOX_DIFF_FILTER").is_ok_and(|f| {
        f.split(',').any(|p| {
            let p = p.trim().to_lowercase();
            !p.is_empty() && all.iter().any(|x| x.name.to_lowercase().contains(&p))
        })
    });
    let forms = if named { filtered(all) } else { all };
    let failed = run_all(&forms, "SSE with unmasked exceptions");
    assert!(
        failed.is_empty(),
        "{} forms mismatch: {failed:?}",
        failed.len()
    );
}

/// Runs `count` cases of `f` (generated from `seed`) natively, calling `each` with every case
/// and the host's outcome.
fn for_native_cases(
    h: &diff::Harness,
    f: &Form,
    seed: u64,
    count: usize,
    mut each: impl FnMut(&diff::Case, &Outcome),
) {
    let pads = h.pads(f);
    diff::native::place(h.code, &f.bytes, &pads);
    let ctx = gen::Ctx {
        data: h.data,
        pads: pads.clone(),
    };
    let mut rng = gen::form_rng(seed, &f.name);
    for _ in 0..count {
        let case = gen::make_case(&mut rng, f, &ctx);
        h.set_code(&case.bytes);
        each(&case, &run_native(h, &case, &pads));
    }
}

/// The widened cases are not vacuous: on the host, the page-edge forms fault with both
/// SEGV_MAPERR and SEGV_ACCERR and also run through without a fault, FS/GS-prefixed forms run
/// with non-zero segment bases, and the x87 forms with unmasked exceptions both raise #MF (at
/// FWAIT, with a pending exception) and leave an exception pending without a fault.
#[test]
fn widened_cases_fault_and_pass() {
    let all = forms::all();
    let h = harness();
    let pick = |name: &str| {
        all.iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no form {name}"))
            .clone()
    };
    let tally = |f: &Form| {
        let mut seen = std::collections::BTreeMap::new();
        for_native_cases(&h, f, 0x3d6e, 200, |case, n| {
            let key = match n.fault {
                Some(x) => format!(
                    "signal {} si_code {} trapno {}",
                    n.signal.unwrap_or(0),
                    x.code,
                    x.trapno
                ),
                None => "no fault".to_string(),
            };
            *seen.entry(key).or_insert(0) += 1;
            if f.seg.is_some() && case.input.fs_base != 0 && case.input.gs_base != 0 {
                *seen.entry("non-zero bases".to_string()).or_insert(0) += 1;
            }
        });
        seen
    };
    let edge = tally(&pick("add %esi,0x10(%r14) [page edge]"));
    for k in [
        "no fault",
        "signal 11 si_code 1 trapno 14",
        "signal 11 si_code 2 trapno 14",
    ] {
        assert!(edge.contains_key(k), "page edge: {k} never seen: {edge:?}");
    }
    let seg = if diff::native::host_fsgsbase() {
        let seg = tally(&pick("add %esi,%fs:0x10(%r14)"));
        assert!(
            seg.contains_key("non-zero bases") && seg.len() == 2,
            "fs: {seg:?}"
        );
        seg
    } else {
        println!("NOT RUN: FS/GS-prefixed forms (the host has no FSGSBASE)");
        Default::default()
    };
    let fwait = tally(&pick("fwait [x87 unmasked]"));
    for k in ["no fault", "signal 8 si_code 3 trapno 16"] {
        assert!(fwait.contains_key(k), "fwait: {k} never seen: {fwait:?}");
    }
    println!("page edge: {edge:?}\nfs: {seg:?}\nfwait: {fwait:?}");
}

/// The gather page-edge cases (diff/gather_edge.rs) are not vacuous: on the host, a gather
/// faults with SEGV_MAPERR (the unmapped page below the data page) and SEGV_ACCERR (the
/// PROT_NONE page above the read-only one), after some elements were gathered (the frame's
/// destination changed) and before any, on an element straddling the page below's end and at
/// the PROT_NONE page's first byte, and also runs to completion.
#[test]
fn gather_edges_fault_part_way() {
    let f = forms::all()
        .into_iter()
        .find(|f| f.name.starts_with("vpgatherdd %ymm2,") && f.name.ends_with("[page edge]"))
        .expect("the VPGATHERDD ymm page-edge form");
    let h = harness();
    let mut seen = std::collections::BTreeMap::new();
    for_native_cases(&h, &f, 0x9a7e, 300, |case, n| {
        let mut note = |k: &'static str| *seen.entry(k).or_insert(0) += 1;
        let Some(x) = n.fault else {
            note("completed");
            return;
        };
        note(match x.code {
            1 => "SEGV_MAPERR",
            2 => "SEGV_ACCERR",
            _ => "another si_code",
        });
        let dest = |st: &diff::State| (st.xmm(1), st.ymm_hi[1]);
        note(if dest(&n.st) != dest(&case.input) {
            "fault after an element"
        } else {
            "fault before any element"
        });
        if x.addr > h.data - 4 && x.addr < h.data {
            note("straddling the page below");
        }
        if x.addr == h.data + 2 * diff::DATA_LEN as u64 {
            note("at the PROT_NONE page");
        }
    });
    println!("{seen:?}");
    for k in [
        "completed",
        "SEGV_MAPERR",
        "SEGV_ACCERR",
        "fault after an element",
        "fault before any element",
        "straddling the page below",
        "at the PROT_NONE page",
    ] {
        assert!(seen.contains_key(k), "{k} never seen: {seen:?}");
    }
    assert!(!seen.contains_key("another si_code"), "{seen:?}");
}

/// Control flow, NOPs and the trapping instructions are implemented on every branch: they must
/// pass, which checks the trampoline, the landing pads and the fault recovery.
#[test]
fn harness_control_flow_passes() {
    let mut v = Vec::new();
    forms::control(&mut v);
    v.push(Form::new(vec![0x0f, 0x0b]).tag("ud2 raises SIGILL"));
    v.push(Form::new(vec![0xcc]).tag("int3 traps"));
    let failed = run_all(&v, "harness self-check (control flow, NOPs)");
    assert!(failed.is_empty(), "harness self-check failed: {failed:?}");
}

/// Problems of a forms table: names that are not unique (repro and CETBOX_DIFF_FILTER go by
/// name) and forms that repeat another one exactly (cases spent twice on the same thing).
fn table_problems(forms: &[Form]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut sigs: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for f in forms {
        if !names.insert(f.name.as_str()) {
            problems.push(format!("duplicate form name {}", f.name));
        }
        if let Some(first) = sigs.insert(forms::signature(f), &f.name) {
            problems.push(format!("{} repeats {first} exactly", f.name));
        }
    }
    problems
}

/// Every form decodes to exactly its bytes, names are unique, no form repeats another, pads
/// fit; and the check itself reports a repeated form and a repeated name.
#[test]
fn forms_table_is_valid() {
    let all = forms::all();
    let h = harness();
    let problems = table_problems(&all);
    assert!(problems.is_empty(), "{problems:#?}");
    for f in &all {
        let _ = h.pads(f);
    }
    assert!(
        all.len() > 500,
        "forms table unexpectedly small: {}",
        all.len()
    );
    // The check can fail: the same form twice (renamed as all() renames), and one name twice.
    let mut broken = all.clone();
    let mut again = all[7].clone();
    again.name = format!("{} #2", again.name);
    broken.push(again);
    let mut renamed = all[8].clone();
    renamed.bytes = all[9].bytes.clone();
    renamed.name = all[3].name.clone();
    broken.push(renamed);
    let found = table_problems(&broken);
    assert!(
        found.iter().any(|p| p.contains("repeats"))
            && found.iter().any(|p| p.starts_with("duplicate")),
        "{found:?}"
    );
    println!("{} forms", all.len());
}

/// The `k`-th case of `f` generated from `seed` (counting from 0; the ones before it run too),
/// the host's outcome of it, and the form's landing pads.
fn native_case(f: &Form, seed: u64, k: usize) -> (diff::Case, Outcome, Vec<u64>) {
    let h = harness();
    let mut last = None;
    for_native_cases(&h, f, seed, k + 1, |c, n| {
        last = Some((c.clone(), n.clone()))
    });
    let (case, n) = last.expect("k + 1 cases ran");
    (case, n, h.pads(f))
}

/// A deliberately wrong expectation must be caught: the native runner against itself agrees,
/// and every kind of perturbation of one side is reported.
#[test]
fn harness_detects_mismatch() {
    // add %esi,%ebx
    let f = Form::new(vec![0x01, 0xf3]).w(4).regs(&[3, 6]);
    let (case, a, pads) = native_case(&f, 7, 3);
    let data = harness().data;
    // Runs a case of `f` again: other tests share the harness's code page between our turns
    // of its lock, so the instruction is placed again each time.
    let rerun = |c: &diff::Case| {
        let h = harness();
        diff::native::place(h.code, &f.bytes, &pads);
        h.set_code(&c.bytes);
        run_native(&h, c, &pads)
    };
    // Determinism: the same input twice gives the same output.
    let b = rerun(&case);
    assert!(compare(&f, data, &a, &b, CompareOpts::default()).is_empty());
    // The instruction really ran: EBX = EBX + ESI, upper half cleared.
    let want = (case.input.gpr[3] as u32).wrapping_add(case.input.gpr[6] as u32) as u64;
    assert_eq!(a.st.gpr[3], want);

    // A perturbed input register changes the result and is reported.
    let mut c2 = case.clone();
    c2.input.gpr[6] ^= 1;
    let p = rerun(&c2);
    let d = compare(&f, data, &a, &p, CompareOpts::default());
    assert!(d.iter().any(|l| l.starts_with("rbx:")), "{d:?}");
    assert!(d.iter().any(|l| l.starts_with("rsi:")), "{d:?}");

    let check = |what: &str, mutate: &dyn Fn(&mut Outcome), prefix: &str| {
        let mut e = a.clone();
        mutate(&mut e);
        let d = compare(&f, data, &a, &e, CompareOpts::default());
        assert!(
            d.iter().any(|l| l.starts_with(prefix)),
            "perturbing {what} was not reported: {d:?}"
        );
    };
    check("r15", &|e| e.st.gpr[15] ^= 1 << 63, "r15:");
    check("rip", &|e| e.st.rip += 1, "rip:");
    for bit in [
        diff::CF,
        diff::PF,
        diff::AF,
        diff::ZF,
        diff::SF,
        diff::OF,
        diff::DF,
    ] {
        check("a flag", &|e| e.st.rflags ^= bit, "rflags:");
    }
    check(
        "xmm7",
        &|e| {
            let v = e.st.xmm(7);
            e.st.set_xmm(7, v ^ (1 << 100));
        },
        "xmm7:",
    );
    check(
        "mxcsr",
        &|e| {
            let v = e.st.mxcsr();
            e.st.set_mxcsr(v ^ 0x2000);
        },
        "mxcsr:",
    );
    check(
        "fsw",
        &|e| {
            let v = e.st.fsw();
            e.st.set_fsw(v ^ 0x0100);
        },
        "fsw:",
    );
    check("memory", &|e| e.mem[0xfff] ^= 0x80, "memory");
    check("a fault", &|e| e.signal = Some(libc::SIGSEGV), "fault:");

    // The full run_form path reports a failing form too: an instruction whose result differs
    // from a NOP's, run against a form whose bytes say NOP, by swapping the native code.
    let nop = Form::new(vec![0x0f, 0x1f, 0xc3]).w(4).regs(&[3]); // nop ebx
    let (case, _, pads) = native_case(&nop, 9, 0);
    let h = harness();
    // Native runs `inc ebx` (ff c3) in the same slot; the emulator runs the NOP.
    let mut inc = case.clone();
    inc.bytes = vec![0xff, 0xc3, 0x90];
    let pads3: Vec<u64> = vec![pads[0]];
    diff::native::place(h.code, &[0x90, 0x90, 0x90], &pads3);
    h.set_code(&inc.bytes);
    let n = run_native(&h, &inc, &pads3);
    h.set_code(&nop.bytes);
    let e = diff::run_emu(&h, &case);
    let d = compare(&nop, h.data, &n, &e, CompareOpts::default());
    assert!(d.iter().any(|l| l.starts_with("rbx:")), "{d:?}");
}

/// Native faults are recovered and classified (no crash), which lets fault forms be compared.
#[test]
fn harness_recovers_native_faults() {
    let div0 = Form::new(vec![0xf7, 0xf3]).fix(Fix::Set(3, 0)); // div ebx, ebx = 0
    let (_, n, _) = native_case(&div0, 1, 0);
    assert_eq!(n.signal, Some(libc::SIGFPE));
    let ud2 = Form::new(vec![0x0f, 0x0b]);
    let (_, n, _) = native_case(&ud2, 1, 0);
    assert_eq!(n.signal, Some(libc::SIGILL));
    // mov (%rbx),%eax with rbx = 8: unmapped.
    let bad = Form::new(vec![0x8b, 0x03]).fix(Fix::Set(3, 8));
    let (case, n, _) = native_case(&bad, 1, 0);
    assert_eq!(n.signal, Some(libc::SIGSEGV));
    // A fault leaves the registers as they were.
    assert_eq!(n.st.gpr, case.input.gpr);
    assert_eq!(n.st.rip, harness().insn_addr());
}

/// A harness check that needs no emulator semantics: every form runs natively without an
/// unexpected signal (a generator bug would fail the form forever) and deterministically (a
/// host that is not would need the flag in the form's `skip`). Also prints, for information,
/// which architecturally undefined flags the host derives from the incoming flags.
#[test]
fn native_runs_are_sane() {
    let forms = filtered(forms::all());
    let h = harness();
    let mut bad = Vec::new();
    let mut keeps = Vec::new();
    for f in &forms {
        let pads = h.pads(f);
        diff::native::place(h.code, &f.bytes, &pads);
        let ctx = gen::Ctx {
            data: h.data,
            pads: pads.clone(),
        };
        let expect_fault = [
            "divide by zero",
            "quotient overflow",
            "misaligned",
            "page fault",
        ]
        .iter()
        .any(|t| f.name.contains(t));
        let mut rng = gen::form_rng(0x5a17, &f.name);
        let mut dep = 0u64;
        for _ in 0..40 {
            let case = gen::make_case(&mut rng, f, &ctx);
            h.set_code(&case.bytes);
            let a = run_native(&h, &case, &pads);
            let b = run_native(&h, &case, &pads);
            if !compare(f, h.data, &a, &b, CompareOpts::default()).is_empty() {
                bad.push(format!("{}: host not deterministic", f.name));
                break;
            }
            // Page-edge forms: `edge` ones, and the gathers placing their own elements.
            let may_fault = f.name.contains("unmasked exceptions")
                || f.edge
                || f.name.contains("[page edge]")
                || f.x87_unmasked;
            if !may_fault && a.signal.is_some() != expect_fault {
                bad.push(format!(
                    "{}: native signal {} (fault expected: {expect_fault})",
                    f.name,
                    diff::sig_name(a.signal)
                ));
                break;
            }
            if f.undef != 0 {
                let mut c2 = case.clone();
                c2.input.rflags ^= diff::ARITH;
                let b = run_native(&h, &c2, &pads);
                dep |= (a.st.rflags ^ b.st.rflags) & f.undef;
            }
        }
        if dep != 0 {
            keeps.push(format!("{:<50} {}", f.name, diff::flag_str(dep)));
        }
    }
    println!("undefined flags the host takes from the incoming flags (for some inputs):");
    for k in &keeps {
        println!("  {k}");
    }
    for b in &bad {
        println!("BAD {b}");
    }
    assert!(
        bad.is_empty(),
        "{} forms have harness problems: {:?}",
        bad.len(),
        bad
    );
}
