//! The CPU levels (`--cpu=x86-64|x86-64-v2|x86-64-v3`): programs built for each level run as
//! natively; a lower level stops a program at its first instruction of a higher one with SIGILL
//! and one diagnostic; CPUID, XCR0 and AT_MINSIGSTKSZ are the values the SDM and Linux give for
//! the presented CPU; YMM state in signal frames; glibc's view of the CPU; the bench workloads
//! built for v2 and v3.

mod common;

use common::{check, run, Spec, Status, TempDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn build(dir: &Path, src: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    common::gcc(src, &out, flags, &["-lm"]);
    out
}

/// tests/cpu/NAME.c built with `flags` in a scratch directory (kept alive with the binary).
fn cpu_program(name: &str, flags: &[&str]) -> (TempDir, PathBuf) {
    let d = TempDir::new("cpu-levels");
    let p = build(&d.path, &cpu_src(name), name, flags);
    (d, p)
}

/// tests/cpu/v2ops.c and v3ops.c, each built for its level.
fn level_programs() -> (TempDir, PathBuf, PathBuf) {
    let d = TempDir::new("cpu-levels");
    let v2 = build(
        &d.path,
        &cpu_src("v2ops"),
        "v2ops",
        &["-O2", "-static", "-march=x86-64-v2", "-mcx16"],
    );
    let v3 = build(
        &d.path,
        &cpu_src("v3ops"),
        "v3ops",
        &["-O2", "-static", "-march=x86-64-v3"],
    );
    (d, v2, v3)
}

fn cpu_src(name: &str) -> PathBuf {
    common::repo_root().join(format!("tests/cpu/{name}.c"))
}

fn cetbox(prog: &Path, extra: &[&str], args: &[&str]) -> common::Outcome {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut s = Spec::new(prog)
        .args(args.iter().copied())
        .under_cetbox(&extra);
    s.timeout = Duration::from_secs(120);
    run(&s)
}

fn native(prog: &Path, args: &[&str]) -> common::Outcome {
    let mut s = Spec::new(prog).args(args.iter().copied());
    s.timeout = Duration::from_secs(60);
    run(&s)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn same_as_native(label: &str, prog: &Path, extra: &[&str], args: &[&str]) {
    let n = native(prog, args);
    let e = cetbox(prog, extra, args);
    let (line, pass, details) = check(label, &n, &e);
    assert!(pass, "{line}\n{details}");
}

#[test]
fn level_programs_match_native() {
    let (_d, v2, v3) = level_programs();
    same_as_native("v2ops default", &v2, &[], &[]);
    same_as_native("v2ops --cpu=x86-64-v2", &v2, &["--cpu=x86-64-v2"], &[]);
    same_as_native("v3ops default", &v3, &[], &[]);
    same_as_native("v3ops --cpu=x86-64-v3", &v3, &["--cpu=x86-64-v3"], &[]);
}

#[test]
fn lower_level_is_sigill_with_one_diagnostic() {
    let (_d, v2, v3) = level_programs();
    for (prog, cpu, level) in [
        (&v3, "--cpu=x86-64", "x86-64-v3"),
        (&v3, "--cpu=x86-64-v2", "x86-64-v3"),
        (&v2, "--cpu=x86-64", "x86-64-v2"),
    ] {
        let o = cetbox(prog, &[cpu], &[]);
        assert_eq!(o.status, Status::Signaled(4), "{cpu}: {}", text(&o.stderr));
        let e = text(&o.stderr);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with("cetbox: unsupported instruction at 0x")
                && e.contains(&format!("is an {level} instruction")),
            "{e}"
        );
    }
}

/// SSSE3's MMX-register forms (tests/cpu/ssse3_mmx.c, every opcode with a register and a
/// memory source) run as natively at the default level and are #UD under `--cpu=x86-64`:
/// SIGILL with one diagnostic naming the instruction and its level (x86-64-v2).
#[test]
fn ssse3_mmx_forms_are_sigill_on_the_baseline() {
    let (_d, p) = cpu_program("ssse3_mmx", &["-O2", "-static"]);
    const NAMES: [&str; 16] = [
        "pshufb",
        "phaddw",
        "phaddd",
        "phaddsw",
        "pmaddubsw",
        "phsubw",
        "phsubd",
        "phsubsw",
        "psignb",
        "psignw",
        "psignd",
        "pmulhrsw",
        "pabsb",
        "pabsw",
        "pabsd",
        "palignr",
    ];
    for n in 0..32 {
        let arg = n.to_string();
        same_as_native(&format!("ssse3_mmx {n}"), &p, &[], &[&arg]);
        let o = cetbox(&p, &["--cpu=x86-64"], &[&arg]);
        let e = text(&o.stderr);
        assert_eq!(o.status, Status::Signaled(4), "form {n}: {e}");
        assert!(o.stdout.is_empty(), "form {n}: {}", text(&o.stdout));
        assert_eq!(e.lines().count(), 1, "form {n}: {e}");
        assert!(
            e.starts_with("cetbox: unsupported instruction at 0x")
                && e.contains(NAMES[n % 16])
                && e.contains("is an x86-64-v2 instruction")
                && e.contains("the CPU presented is x86-64"),
            "form {n}: {e}"
        );
    }
}

fn bits(v: &[u32]) -> u32 {
    v.iter().fold(0, |a, b| a | (1 << b))
}

#[test]
fn cpuid_xcr0_and_minsigstksz_per_level() {
    let (_d, p) = cpu_program("cpuid_level", &["-O2", "-static"]);
    // CPUID.1:EDX, the baseline: FPU DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT
    // PSE36 CLFSH MMX FXSR SSE SSE2.
    let edx = bits(&[
        0, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 23, 24, 25, 26,
    ]);
    // x86-64-v2: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT; v3 adds FMA MOVBE XSAVE OSXSAVE AVX F16C
    // (SDM Vol. 2A Table 3-10).
    let v2 = bits(&[0, 9, 13, 19, 20, 23]);
    let v3 = v2 | bits(&[12, 22, 26, 27, 28, 29]);
    // CPUID.(7,0):EBX BMI1 AVX2 BMI2; ECX CET_SS.
    let l7 = bits(&[3, 5, 8]);
    let expect = |ecx: u32, ebx7: u32, ext: u32, leafd: &str, xcr0: &str, min: u32| {
        format!(
            "leaf1 ecx {ecx:08x} edx {edx:08x}\nleaf7 ebx {ebx7:08x} ecx 00000080 edx 00000000\n\
             ext1 ecx {ext:08x}\n{leafd}{xcr0}AT_MINSIGSTKSZ {min}\n"
        )
    };
    let zero_d = "leafd.0 00000000 00000000 00000000 00000000\n\
                  leafd.1 00000000 00000000 00000000 00000000\n\
                  leafd.2 00000000 00000000 00000000 00000000\n";
    // Leaf 0xD for XCR0 = x87|SSE|AVX: 832 bytes (576 + 256); XSAVEOPT and XSAVEC; the AVX
    // component is 256 bytes at 576.
    let v3_d = "leafd.0 00000007 00000340 00000340 00000000\n\
                leafd.1 00000003 00000340 00000000 00000000\n\
                leafd.2 00000100 00000240 00000000 00000000\n";
    // AT_MINSIGSTKSZ: 1152 with FXSR only, 1472 with the 832-byte XSAVE area (Linux's
    // init_sigframe_size: 440 + 15 + (xstate + 4 + 112) + 63, rounded up to 16).
    let cases = [
        ("--cpu=x86-64", expect(0, 0, 1, zero_d, "", 1152)),
        ("--cpu=x86-64-v2", expect(v2, 0, 1, zero_d, "", 1152)),
        (
            "--cpu=x86-64-v3",
            expect(v3, l7, 0x21, v3_d, "xcr0 0000000000000007\n", 1472),
        ),
    ];
    for (cpu, want) in &cases {
        let o = cetbox(&p, &[cpu], &[]);
        assert_eq!(o.status, Status::Exited(0), "{cpu}");
        assert_eq!(&text(&o.stdout), want, "{cpu}");
    }
    // The default is x86-64-v3 (on a host that has it), and --no-cet clears only CET_SS.
    let o = cetbox(&p, &[], &[]);
    assert_eq!(text(&o.stdout), cases[2].1);
    let o = cetbox(&p, &["--no-cet"], &[]);
    assert_eq!(
        text(&o.stdout),
        cases[2].1.replace("ecx 00000080", "ecx 00000000")
    );
}

#[test]
fn bad_cpu_name_is_a_usage_error() {
    let (_d, p) = cpu_program("cpuid_level", &["-O2", "-static"]);
    let o = cetbox(&p, &["--cpu=x86-64-v4"], &[]);
    assert_eq!(o.status, Status::Exited(2), "{}", text(&o.stderr));
}

#[test]
fn ymm_state_in_signal_frames() {
    let (_d, p) = cpu_program("ymm_signal", &["-O2", "-static", "-march=x86-64-v3"]);
    // What the handler sees and changes is the same natively and under cetbox; the expected
    // values are also spelled out (from the program's own inputs).
    same_as_native("ymm_signal", &p, &[], &[]);
    let o = cetbox(&p, &[], &[]);
    assert_eq!(
        text(&o.stdout),
        "signal 10: magic1 46505853 magic2 46505845 extended==xsize+4 1 xfeatures&7 7 \
         xstate_bv&7 7\n\
         ymm3 in handler: 1 2 3 4 | 5 6 7 8\n\
         ymm3 after return: 11 22 33 44 | 100 200 300 400\n\
         hits 1\n"
    );
}

#[test]
fn v3_frame_fits_a_minsigstksz_altstack() {
    let (_d, p) = cpu_program("altstack", &["-O2", "-static"]);
    for cpu in ["--cpu=x86-64-v3", "--cpu=x86-64"] {
        let o = cetbox(&p, &[cpu], &[]);
        assert_eq!(o.status, Status::Exited(0), "{cpu}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stdout),
            "size-1 refused: 1\nhandler ran on the alternate stack: 1\n",
            "{cpu}"
        );
    }
}

/// glibc's own view: ld.so lists x86-64-v3 as supported under the default CPU and not under
/// --cpu=x86-64-v2, and its diagnostics show the ISA level bits and the AVX preference that
/// select the AVX2 string functions.
#[test]
fn glibc_sees_the_level() {
    let ld = Path::new("/lib64/ld-linux-x86-64.so.2");
    assert!(
        ld.exists(),
        "the dynamic loader is part of the test environment"
    );
    let o = cetbox(ld, &[], &["--help"]);
    let out = text(&o.stdout);
    assert!(out.contains("x86-64-v3 (supported, searched)"), "{out}");
    assert!(out.contains("x86-64-v2 (supported, searched)"), "{out}");
    assert!(!out.contains("x86-64-v4 (supported"), "{out}");
    let o = cetbox(ld, &["--cpu=x86-64-v2"], &["--help"]);
    let out = text(&o.stdout);
    assert!(!out.contains("x86-64-v3 (supported"), "{out}");
    assert!(out.contains("x86-64-v2 (supported, searched)"), "{out}");
    let o = cetbox(ld, &[], &["--list-diagnostics"]);
    let out = text(&o.stdout);
    for want in [
        "x86.cpu_features.isa_1=0x7",
        "x86.cpu_features.preferred.AVX_Fast_Unaligned_Load=0x1",
        "x86.cpu_features.preferred.Prefer_No_AVX512=0x1",
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing:\n{out}");
    }
}

/// The bench workloads (bench/*.c) at small sizes, built for x86-64-v2 and x86-64-v3.
#[test]
fn bench_workloads_built_for_v2_and_v3() {
    let d = TempDir::new("cpu-levels");
    let root = common::repo_root().join("bench");
    for (name, arg) in [
        ("fib", "24"),
        ("hash", "3"),
        ("qsort", "20000"),
        ("nbody", "20000"),
        ("memstr", "200"),
    ] {
        for march in ["-march=x86-64-v2", "-march=x86-64-v3"] {
            let p = build(
                &d.path,
                &root.join(format!("{name}.c")),
                &format!("{name}{march}"),
                &["-O2", "-static", march],
            );
            same_as_native(&format!("{name} {march}"), &p, &[], &[arg]);
        }
    }
}
