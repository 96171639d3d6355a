//! CoreMark (tests/third_party/coremark, unmodified, posix port) computes CRCs over its list,
//! matrix and state-machine work and checks them against the known values in its own
//! core_main.c. Built static with a small iteration count, it must print the same validation
//! lines (seeds, CRCs, parameters) natively, under the translator (shadow stacks off and on)
//! and under the interpreter, and none of them may report a CRC error. Its timing lines (ticks,
//! seconds, iterations per second, and the verdict that depends on running 10 s or more) are
//! left out of the comparison: they measure the machine, not the computation.

mod common;

use common::{output_within, run, Spec, TempDir, TOOL_TIMEOUT};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Builds CoreMark as its posix port's makefile does (core_portme.mak: -O2, FLAGS_STR), static.
fn build(out: &Path) {
    let src = common::repo_root().join("tests/third_party/coremark");
    let mut cmd = Command::new("gcc");
    cmd.current_dir(&src)
        .args(["-O2", "-static", "-Iposix", "-I."])
        .arg("-DFLAGS_STR=\"-O2 -static\"")
        .arg("-DPERFORMANCE_RUN=1")
        .args([
            "core_list_join.c",
            "core_main.c",
            "core_matrix.c",
            "core_state.c",
            "core_util.c",
            "posix/core_portme.c",
        ])
        .arg("-o")
        .arg(out);
    let o = output_within(&mut cmd, TOOL_TIMEOUT);
    assert!(
        o.status.success(),
        "building CoreMark: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether a line of CoreMark's report depends on elapsed time (core_main.c prints these
/// from the measured ticks, and "Errors detected" / "Correct operation validated" follow from
/// the 10 s minimum whenever the CRCs are right).
fn timing_line(line: &str) -> bool {
    [
        "Total ticks",
        "Total time (secs)",
        "Iterations/Sec",
        "ERROR! Must execute for at least 10 secs",
        "Errors detected",
        "Correct operation validated",
        "CoreMark 1.0 :",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// The report without its timing lines.
fn validation_lines(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !timing_line(l))
        .map(str::to_owned)
        .collect()
}

#[test]
fn coremark_validates_under_both_engines() {
    let dir = TempDir::new("coremark");
    let prog = dir.path.join("coremark");
    build(&prog);
    // SEED_ARG (core_portme.h): seed1 seed2 seed3 iterations. 0,0,0x66 is the performance
    // run's data set and 0x3415,0x3415,0x66 the validation run's (the makefile's PARAM1 and
    // PARAM2), each with its own known CRCs in core_main.c.
    for (seeds, header) in [
        (
            ["0x0", "0x0", "0x66"],
            "2K performance run parameters for coremark.",
        ),
        (
            ["0x3415", "0x3415", "0x66"],
            "2K validation run parameters for coremark.",
        ),
    ] {
        let spec = Spec::new(&prog).args(seeds.iter().copied().chain(["200"]));
        let mut native = spec.clone();
        native.timeout = Duration::from_secs(60);
        let native = run(&native);
        let expected = validation_lines(&native.stdout);
        assert!(
            expected.first().map(String::as_str) == Some(header),
            "native CoreMark did not recognize its seeds: {expected:?}"
        );
        assert!(
            expected.iter().any(|l| l.starts_with("[0]crcfinal")),
            "native CoreMark printed no final CRC: {expected:?}"
        );
        for opts in [
            &["--engine=jit", "--shstk=off"][..],
            &["--engine=jit", "--shstk=on"],
            &["--engine=interp", "--shstk=on"],
        ] {
            let extra: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
            let mut emulated = spec.under_cetbox(&extra);
            emulated.timeout = Duration::from_secs(300);
            let out = run(&emulated);
            assert_eq!(
                out.status,
                native.status,
                "{opts:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got = validation_lines(&out.stdout);
            // core_main.c prints "[n]ERROR! list crc ..." (and matrix, state) when a CRC
            // differs from its known value.
            assert!(
                !got.iter().any(|l| l.contains("ERROR!")),
                "{opts:?}: CoreMark reports a CRC error: {got:?}"
            );
            assert_eq!(
                got, expected,
                "{opts:?}: validation lines differ from native"
            );
        }
    }
}
