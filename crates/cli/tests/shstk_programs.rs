//! Shadow stacks on whole programs: attacks that must be stopped, correct programs that must keep
//! working unchanged, incompatible patterns that must be caught, and a coroutine library that is
//! correct under shadow stacks. The guest programs live in `tests/shstk/` (and a selection of
//! `tests/guest/`). Expected results come from the primary sources (Intel SDM Vol. 2B RET,
//! RSTORSSP, SAVEPREVSSP; Linux arch/x86/kernel/cet.c, do_user_cp_fault(), and
//! arch/x86/mm/fault.c; glibc sysdeps/x86_64/__longjmp.S and the x86_64 *context.S files) or from
//! the same program run natively, never from cetbox.

mod common;

use common::{compare, run, Outcome, Spec, Status, Stdin, TempDir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Building

/// Compiles `source` with `compiler` and `flags` once per test run (and reuses a binary built
/// from identical inputs by an earlier run).
fn build(compiler: &str, source: &Path, flags: &[&str], link: &[&str]) -> PathBuf {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    static SLOTS: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let src = std::fs::read(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    // Headers next to the source (cet.h) are part of the key.
    let header = std::fs::read(source.with_file_name("cet.h")).unwrap_or_default();
    let key = common::fnv1a(&[
        &src,
        &header,
        compiler.as_bytes(),
        flags.join(" ").as_bytes(),
        link.join(" ").as_bytes(),
    ]);
    let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
    let area = source
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{area}__{stem}-{key:016x}");
    let slot = {
        let mut m = SLOTS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.entry(name.clone()).or_default().clone()
    };
    let res = slot.get_or_init(|| {
        let dir = common::target_dir().join("shstk-programs");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = dir.join(&name);
        if out.exists() {
            return Ok(out);
        }
        let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
        let o = common::output_within(
            Command::new(compiler)
                .args(flags)
                .arg("-o")
                .arg(&tmp)
                .arg(source)
                .args(link),
            common::TOOL_TIMEOUT,
        );
        if !o.status.success() {
            return Err(format!(
                "{compiler} {} {} failed:\n{}",
                flags.join(" "),
                source.display(),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
        Ok(out)
    });
    match res {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn shstk_src(file: &str) -> PathBuf {
    common::repo_root().join("tests/shstk").join(file)
}

/// The programs of tests/shstk/ and the flags they are built with.
fn program(name: &str) -> PathBuf {
    let attack_flags = [
        "-O0",
        "-g",
        "-static",
        "-fno-stack-protector",
        "-fcf-protection=none",
        "-mno-red-zone",
    ];
    match name {
        "attacks" => build("gcc", &shstk_src("attacks.c"), &attack_flags, &[]),
        "incompat" => build("gcc", &shstk_src("incompat.c"), &attack_flags, &[]),
        "coro" => build(
            "gcc",
            &shstk_src("coro.c"),
            &["-O0", "-g", "-static", "-fcf-protection=none"],
            &[],
        ),
        "works" => build(
            "gcc",
            &shstk_src("works.c"),
            &["-O2", "-g", "-static"],
            &["-lpthread"],
        ),
        "unwind" => build(
            "g++",
            &shstk_src("unwind.cc"),
            &["-O2", "-g", "-static", "-std=gnu++17"],
            &[],
        ),
        _ => panic!("unknown program {name}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Running

const TIMEOUT: Duration = Duration::from_secs(60);

fn spec(prog: &Path, args: &[&str]) -> Spec {
    let mut s = Spec::new(prog).args(args.iter().copied());
    s.timeout = TIMEOUT;
    s
}

fn native(prog: &Path, args: &[&str]) -> Outcome {
    run(&spec(prog, args))
}

fn cetbox(prog: &Path, args: &[&str], options: &[&str]) -> Outcome {
    let opts: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    let o = run(&spec(prog, args).under_cetbox(&opts));
    assert!(
        !text(&o.stderr).contains("panicked"),
        "cetbox panicked:\n{}",
        text(&o.stderr)
    );
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(o: &Outcome) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// A run that was stopped by a near-RET #CP with no handler: Linux kills the process with
/// SIGSEGV (Linux arch/x86/kernel/cet.c, do_user_cp_fault()) and cetbox's report names the
/// violation.
fn assert_killed_by_cp(o: &Outcome, what: &str) {
    assert_eq!(
        o.status,
        Status::Signaled(11),
        "{what}: expected death by SIGSEGV\n{}",
        describe(o)
    );
    assert!(
        text(&o.stderr).contains("#CP near-ret"),
        "{what}: the report must name the #CP near-ret violation\n{}",
        describe(o)
    );
}

/// With --on-violation=continue the program completes exactly as natively (stdout and status),
/// and the violation is reported on stderr.
fn assert_continues_like_native(prog: &Path, args: &[&str], what: &str) {
    let n = native(prog, args);
    let c = cetbox(prog, args, &["--shstk=on", "--on-violation=continue"]);
    assert_eq!(
        text(&c.stdout),
        text(&n.stdout),
        "{what}: stdout differs from the native run\n{}",
        describe(&c)
    );
    assert_eq!(
        c.status,
        n.status,
        "{what}: status differs from the native run\n{}",
        describe(&c)
    );
    let err = text(&c.stderr);
    assert!(
        err.contains("#CP near-ret") && err.contains("continues"),
        "{what}: the violation must be reported and execution continued\n{err}"
    );
}

/// Native and `cetbox run --shstk=on` agree byte for byte on stdout, stderr and status.
fn assert_same_as_native(prog: &Path, args: &[&str], what: &str) -> Outcome {
    let d1 = TempDir::new("shstk-native");
    let d2 = TempDir::new("shstk-cetbox");
    let mut s = spec(prog, args);
    s.cwd = Some(d1.path.clone());
    let n = run(&s);
    s.cwd = Some(d2.path.clone());
    let c = run(&s.under_cetbox(&["--shstk=on".to_string()]));
    assert!(
        matches!(n.status, Status::Exited(_) | Status::Signaled(_)),
        "{what}: native run did not complete: {}",
        n.status
    );
    if let Some(d) = compare("native", &n, "cetbox --shstk=on", &c) {
        panic!("{what}: differs under shadow stacks\n{d}");
    }
    c
}

// ---------------------------------------------------------------------------------------------
// 1. Attacks that must be stopped

/// Without shadow stacks the attack reaches the function nobody calls; with them the hijacking
/// RET raises #CP(1) and the process dies of SIGSEGV before the marker; a SA_SIGINFO handler
/// sees SEGV_CPERR (10), si_addr 0, trapno 21 (#CP), err 1 (NEAR-RET), at a RET instruction.
fn attack(case: &str, marker: &str, ret_in: Option<&str>, expected_return_in: &str) {
    let prog = program("attacks");
    let want = format!("{marker}\n");
    let n = native(&prog, &[case]);
    assert_eq!(
        (text(&n.stdout), &n.status),
        (want.clone(), &Status::Exited(66)),
        "native run: the attack must work without shadow stacks"
    );
    let off = cetbox(&prog, &[case], &["--shstk=off"]);
    assert_eq!(
        (text(&off.stdout), &off.status),
        (want.clone(), &Status::Exited(66)),
        "--shstk=off: the attack must work\n{}",
        describe(&off)
    );

    let on = cetbox(&prog, &[case], &["--shstk=on"]);
    assert_killed_by_cp(&on, case);
    assert!(
        !text(&on.stdout).contains("ATTACK SUCCEEDED"),
        "{case}: the attack ran under shadow stacks\n{}",
        describe(&on)
    );
    assert_eq!(
        text(&on.stdout),
        "",
        "{case}: nothing may print before the fault"
    );
    let err = text(&on.stderr);
    if let Some(f) = ret_in {
        assert!(
            err.contains(&format!(" {f}+")),
            "{case}: the report must locate the faulting RET in {f}\n{err}"
        );
    }
    // The expected value is the genuine return address, i.e. the call site in the caller.
    let line = err
        .lines()
        .find(|l| l.contains("on the shadow stack"))
        .unwrap_or_else(|| panic!("{case}: no shadow-stack value in the report\n{err}"));
    assert!(
        line.contains(&format!(" {expected_return_in}+")),
        "{case}: the shadow-stack entry must be the return into {expected_return_in}\n{err}"
    );

    let caught = cetbox(&prog, &[case, "catch"], &["--shstk=on"]);
    assert_eq!(
        (text(&caught.stdout), &caught.status),
        (
            "caught SIGSEGV si_code=10 si_addr=0 trapno=21 err=1 at_ret=1\n".to_string(),
            &Status::Exited(0)
        ),
        "{case}: the SIGSEGV handler must see the #CP\n{}",
        describe(&caught)
    );
}

#[test]
fn attack_buffer_overflow_is_stopped() {
    attack(
        "overflow",
        "ATTACK SUCCEEDED: overflow",
        Some("greet"),
        "overflow",
    );
}

#[test]
fn attack_stack_pivot_rop_chain_is_stopped() {
    attack("pivot", "ATTACK SUCCEEDED: pivot arg=0x1337", None, "pivot");
}

#[test]
fn attack_push_ret_jump_to_uncalled_function_is_stopped() {
    attack("pushret", "ATTACK SUCCEEDED: pushret", None, "pushret");
}

#[test]
fn attack_overwritten_saved_return_address_is_stopped() {
    attack("jop", "ATTACK SUCCEEDED: jop", Some("victim"), "jop");
}

// ---------------------------------------------------------------------------------------------
// 2. Correct programs keep working with --shstk=on

/// A program from tests/guest/, built, with how it is run.
struct GuestProgram {
    bin: PathBuf,
    args: Vec<String>,
    stdin: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// A program from tests/guest/, built as guest.rs builds it (directives `//! key: value`).
fn guest(id: &str) -> GuestProgram {
    let root = common::repo_root().join("tests/guest");
    let source = ["c", "cc"]
        .iter()
        .map(|e| root.join(format!("{id}.{e}")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no tests/guest/{id}.c or .cc"));
    let cxx = source.extension().is_some_and(|e| e == "cc");
    let src = std::fs::read_to_string(&source).unwrap();
    let mut opt = "-O2".to_string();
    let mut static_pie = false;
    let mut cflags: Vec<String> = Vec::new();
    let mut args = Vec::new();
    let mut stdin = None;
    let mut env = Vec::new();
    for line in src.lines() {
        let Some(rest) = line.trim_start().strip_prefix("//!") else {
            continue;
        };
        let (k, v) = rest.split_once(':').expect("directive");
        let v = v.trim();
        match k.trim() {
            "opt" => opt = v.to_string(),
            "link" => static_pie = v == "static-pie",
            "cflags" => cflags.extend(v.split_whitespace().map(String::from)),
            // None of the selected programs quotes its arguments.
            "args" => args = v.split_whitespace().map(String::from).collect(),
            "stdin" => stdin = Some(source.parent().unwrap().join(v)),
            "env" => {
                let (a, b) = v.split_once('=').expect("KEY=VALUE");
                env.push((a.to_string(), b.to_string()));
            }
            other => panic!("{id}: unknown directive {other}"),
        }
    }
    let mut flags: Vec<&str> = vec![&opt, if cxx { "-std=gnu++17" } else { "-std=gnu11" }, "-w"];
    flags.extend(cflags.iter().map(String::as_str));
    flags.push(if static_pie { "-static-pie" } else { "-static" });
    let link: &[&str] = if cxx { &["-lm"] } else { &["-lm", "-lpthread"] };
    let bin = build(if cxx { "g++" } else { "gcc" }, &source, &flags, link);
    GuestProgram {
        bin,
        args,
        stdin,
        env,
    }
}

fn guest_same_as_native(id: &str) {
    let GuestProgram {
        bin,
        args,
        stdin,
        env,
    } = guest(id);
    let d1 = TempDir::new("shstk-guest");
    let d2 = TempDir::new("shstk-guest");
    let mut s = Spec::new(&bin).args(args);
    s.env.extend(env);
    s.stdin = stdin.map(Stdin::File).unwrap_or(Stdin::Null);
    s.timeout = TIMEOUT;
    s.cwd = Some(d1.path.clone());
    let n = run(&s);
    s.cwd = Some(d2.path.clone());
    let c = run(&s.under_cetbox(&["--shstk=on".to_string()]));
    assert!(
        matches!(n.status, Status::Exited(_) | Status::Signaled(_)),
        "{id}: native run did not complete: {}",
        n.status
    );
    if let Some(d) = compare("native", &n, "cetbox --shstk=on", &c) {
        panic!("{id}: differs under shadow stacks\n{d}");
    }
}

macro_rules! guest_cases {
    ($($name:ident: $id:literal;)*) => {
        $(
            #[test]
            fn $name() {
                guest_same_as_native($id);
            }
        )*
    };
}

guest_cases! {
    guest_recursion: "misc/recursion";
    guest_qsort_bsearch: "libc/qsort_bsearch";
    guest_qsort_strings: "libc/qsort_strings";
    guest_sigaction_basic: "signals/sigaction_basic";
    guest_altstack: "signals/altstack";
    guest_raise_mask: "signals/raise_mask";
    guest_sigreturn_regs: "signals/sigreturn_regs";
    guest_fault_skip: "signals/fault_skip";
    guest_segv_recover: "signals/segv_recover";
    guest_cxx_exceptions: "cxx/exceptions";
    guest_cxx_exception_ptr: "cxx/exception_ptr";
    guest_cxx_terminate: "cxx/terminate";
    guest_cxx_virtual_rtti: "cxx/virtual_rtti";
    guest_printf_double: "stdio/printf_double";
    guest_varargs: "misc/varargs";
}

#[test]
fn guest_pthreads() {
    guest_same_as_native("misc/pthreads");
}

#[test]
fn guest_mask_inherit() {
    guest_same_as_native("signals/mask_inherit");
}

#[test]
fn guest_fork_wait() {
    guest_same_as_native("misc/fork_wait");
}

fn works(case: &str, expected_tail: &str) {
    let c = assert_same_as_native(&program("works"), &[case], case);
    assert_eq!(c.status, Status::Exited(0));
    assert!(
        text(&c.stdout).ends_with(expected_tail),
        "{case}: unexpected end of output\n{}",
        describe(&c)
    );
}

#[test]
fn deep_recursion_100k_frames() {
    works("deeprec", "done\n");
}

#[test]
fn nested_signal_handlers() {
    // Trail per round, from the handler code: USR1 'A', nested USR2 "B9b", fib(12)%10=3, USR2
    // again "B9b", 'a'; then eight nested HUPs "12345678" unwinding with fib(d+5)%10 for d=8..1;
    // then ALRM 'T', nested USR1 (as above), 't'.
    let round = "AB9b3B9ba1234567873495413TAB9b3B9bat work=987";
    let mut want = String::new();
    for r in 0..3 {
        want.push_str(&format!("round {r}: {round}\n"));
    }
    want.push_str("unblocked: |B9b\ndone\n");
    let c = assert_same_as_native(&program("works"), &["nested"], "nested");
    assert_eq!(text(&c.stdout), want);
}

#[test]
fn sigaltstack_handlers_with_deep_calls() {
    works(
        "altstack",
        "on alt stack 1, deep calls stayed there 1, results 0xfbb8f639de3966ab 0x87fc25be280b12d\n\
         after: 0xba9f575111cef0a5\ndone\n",
    );
}

#[test]
fn threads_recurse_and_join() {
    works("threads", "done\n");
}

#[test]
fn fork_child_returns_through_copied_frames() {
    let c = assert_same_as_native(&program("works"), &["fork"], "fork");
    assert_eq!(
        text(&c.stdout),
        "child: d=177 work=233\nchild back in main: 0x6728a0f61\nparent: d=177 child exited 23\ndone\n"
    );
}

fn function_has_cet(bin: &Path, func: &str) -> bool {
    common::function_has_cet(bin, func)
}

#[test]
fn cxx_exceptions_through_50_frames_with_rethrow() {
    let prog = program("unwind");
    if function_has_cet(&prog, "_Unwind_RaiseException") {
        // A CET-aware unwinder pops one entry per unwound frame: identical behaviour.
        let c = assert_same_as_native(&prog, &[], "unwind");
        let out = text(&c.stdout);
        assert!(out.starts_with(
            "caught: boom at 50, depth 50\ndestructors: 51 of 51; ~50 ~40 ~30 ~20 ~10 ~0 \n"
        ));
        assert!(out.contains("round 2: outer caught boom at 50; destructors 82 of 82"));
        assert!(out.contains("rethrown exception_ptr: boom at 30\n"));
        assert!(out.contains("caught outer\nfinal plain(3000)"));
    } else {
        // An unwinder that leaves the shadow stack alone: the first RET after the catch meets a
        // stale entry → #CP(1).
        let c = cetbox(&prog, &[], &["--shstk=on"]);
        assert_killed_by_cp(&c, "unwind with a non-CET libgcc");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Incompatible patterns that must be caught

#[test]
fn non_cet_longjmp_then_return_is_cp() {
    let prog = program("incompat");
    let n = native(&prog, &["longjmp"]);
    assert_eq!(
        text(&n.stdout),
        "uses_setjmp returned 70 after 4 frames\ndone\n"
    );
    // This glibc's (2.36) __longjmp has no shadow-stack code; the test checks, so that the
    // expectation follows the library actually linked.
    let on = cetbox(&prog, &["longjmp"], &["--shstk=on"]);
    if function_has_cet(&prog, "__longjmp") {
        assert_eq!(text(&on.stdout), text(&n.stdout), "CET-aware longjmp");
        return;
    }
    assert_killed_by_cp(&on, "longjmp then return");
    assert_eq!(
        text(&on.stdout),
        "",
        "the RET out of uses_setjmp comes before any output"
    );
    assert!(
        text(&on.stderr).contains(" uses_setjmp+"),
        "the report must name uses_setjmp\n{}",
        describe(&on)
    );
    assert_continues_like_native(&prog, &["longjmp"], "longjmp");
}

#[test]
fn stack_switch_without_rstorssp_is_cp() {
    let prog = program("incompat");
    let n = native(&prog, &["switch"]);
    assert_eq!(
        text(&n.stdout),
        "task step 1: fib=89\nmain: back from task (1 steps)\ntask step 2: fib=144\n\
         main: back from task (2 steps)\ntask step 3: fib=233\nmain: back from task (3 steps)\ndone\n"
    );
    let on = cetbox(&prog, &["switch"], &["--shstk=on"]);
    assert_killed_by_cp(&on, "stack switch");
    assert_eq!(
        text(&on.stdout),
        "",
        "the first RET onto the other stack must fault"
    );
    assert_continues_like_native(&prog, &["switch"], "switch");
}

#[test]
fn calls_on_another_stack_without_switching_shadow_stacks_are_fine() {
    let c = assert_same_as_native(&program("incompat"), &["stackcall"], "stackcall");
    assert_eq!(
        text(&c.stdout),
        "running on the other stack: 1, fib=610\nback on the main stack: 1\ndone\n"
    );
}

/// Real programs from tests/guest/ that use this glibc's longjmp and then return.
fn guest_incompatible(id: &str) {
    let GuestProgram { bin, args, .. } = guest(id);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let on = cetbox(&bin, &a, &["--shstk=on"]);
    assert_killed_by_cp(&on, id);
    assert_continues_like_native(&bin, &a, id);
}

#[test]
fn guest_setjmp_longjmp_is_incompatible() {
    guest_incompatible("misc/setjmp");
}

#[test]
fn guest_siglongjmp_out_of_altstack_handler_is_incompatible() {
    guest_incompatible("signals/altstack_nested");
}

// ---------------------------------------------------------------------------------------------
// 4. A coroutine library with its own shadow stacks (RSTORSSP + SAVEPREVSSP)

const CORO_EXPECTED: &str = "generator: 1 2 3 4 5 6 7 8 9 10
generator done=1 sum=55
round robin: a1 b1 c1 a2 b2 c2 a3 b3 c:done a:done b4 b5 b:done
ping-pong:
  ping 1
  pong 1 (from ping)
  ping 1 got 100
  main got 1
  ping 2
  pong 2 (from ping)
  ping 2 got 200
  main got 2
  ping 3
  pong 3 (from ping)
  ping 3 got 300
  main got 3
ping done=1 pong done=0
deep: 1010 20 1030 60 1090 180 1270 540
200 short coroutines: total 500
signals in a coroutine: 1 2 3
";

#[test]
fn coroutines_with_own_shadow_stacks() {
    let prog = program("coro");
    // The program enables shadow stacks itself (plain `cetbox run`).
    let c = cetbox(&prog, &["demo"], &[]);
    assert_eq!(
        text(&c.stdout),
        format!("{CORO_EXPECTED}shadow stacks: on, coroutines on their own shadow stacks: 1\n"),
        "{}",
        describe(&c)
    );
    assert_eq!(c.status, Status::Exited(0));
    assert!(
        !text(&c.stderr).contains("violation"),
        "no violation may be reported\n{}",
        text(&c.stderr)
    );
    // Natively (no CET) the library skips the shadow-stack steps and prints the same sequence.
    let n = native(&prog, &["demo"]);
    assert_eq!(
        text(&n.stdout),
        format!("{CORO_EXPECTED}shadow stacks: off, coroutines on their own shadow stacks: 1\n")
    );
}

#[test]
fn coroutine_switch_without_saveprevssp_is_cp_near_ret() {
    // RSTORSSP leaves the previous-ssp token on top of the new shadow stack (Intel SDM Vol. 2B,
    // RSTORSSP); without SAVEPREVSSP the switch's RET compares it with the return address:
    // #CP(1).
    let c = cetbox(&program("coro"), &["skip_saveprevssp"], &[]);
    assert_eq!(
        text(&c.stdout),
        "SIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x1 rip=insn\n",
        "{}",
        describe(&c)
    );
    assert_eq!(c.status, Status::Exited(0));
}

#[test]
fn coroutine_switch_without_restore_token_is_cp_rstorssp() {
    // Entering with RSTORSSP + INCSSPQ leaves no restore token on the old stack; switching back
    // finds none: RSTORSSP raises #CP(4) (Intel SDM Vol. 2B, RSTORSSP).
    let c = cetbox(&program("coro"), &["skip_restore_token"], &[]);
    assert_eq!(
        text(&c.stdout),
        "coroutine running, switching back\nSIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x4 rip=insn\n",
        "{}",
        describe(&c)
    );
    assert_eq!(c.status, Status::Exited(0));
    assert!(
        text(&c.stderr).contains("#CP rstorssp"),
        "{}",
        text(&c.stderr)
    );
}
