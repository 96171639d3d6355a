//! Shadow-stack acceptance tests: the CPU vectors and the Linux behaviours (13.x, 14.x) of
//! docs/acceptance.md, each a guest program run under cetbox in its own
//! process. There is no CET hardware here to compare with, so every expected output below is
//! written from the primary sources docs/acceptance.md names, not taken from cetbox.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Every cetbox run here takes well under a second; a hang fails after this.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds a test program from tests/shstk/ once per test run.
fn program(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::collections::HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/shstk");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shstk");
        std::fs::create_dir_all(&out).unwrap();
        let mut m = std::collections::HashMap::new();
        for p in ["vectors", "abi"] {
            let exe = out.join(p);
            let st = common::output_within(
                Command::new("gcc")
                    .args([
                        "-O0",
                        "-g",
                        "-static",
                        "-fcf-protection=none",
                        "-mno-red-zone",
                        "-o",
                    ])
                    .arg(&exe)
                    .arg(src.join(format!("{p}.c"))),
                common::TOOL_TIMEOUT,
            )
            .status;
            assert!(st.success(), "building {p}.c failed");
            m.insert(p.to_string(), exe);
        }
        m
    });
    built[name].clone()
}

/// Runs `prog case` under cetbox; returns stdout and how it ended ("exit N" or "signal N").
fn run(prog: &str, case: &str) -> (String, String) {
    let (out, how, _) = run_full(prog, case);
    (out, how)
}

/// Like `run`, also returning stderr (where violation reports go).
fn run_full(prog: &str, case: &str) -> (String, String, String) {
    use std::os::unix::process::ExitStatusExt;
    let out = common::output_within(
        Command::new(env!("CARGO_BIN_EXE_cetbox"))
            .args(["run", "--"])
            .arg(program(prog))
            .arg(case)
            .env_clear()
            .env("PATH", "/usr/bin:/bin"),
        RUN_TIMEOUT,
    );
    let how = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("signal {s}"),
        _ => "?".into(),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "cetbox panicked:\n{stderr}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        how,
        stderr,
    )
}

/// Every kind of shadow-stack violation is reported with its own description and details.
#[test]
fn reports_name_each_violation_kind() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "vectors",
            "v07",
            &[
                "return address does not match the shadow stack (#CP near-ret)",
                "return address on the shadow stack:",
                "SIGSEGV (SEGV_CPERR) delivered to the guest's handler",
            ],
        ),
        (
            "vectors",
            "v14",
            &[
                "RSTORSSP found no valid restore token (#CP rstorssp)",
                "holds 0x0: bit 0 (64-bit mode) is clear",
            ],
        ),
        (
            "vectors",
            "v26",
            &["far return or IRET frame does not match the shadow stack (#CP far/iret)"],
        ),
        (
            "vectors",
            "v11b",
            &[
                "shadow-stack access to memory that is not a writable shadow stack",
                "faulting address: 0x",
            ],
        ),
        (
            "vectors",
            "v08",
            &[
                "ordinary write to shadow-stack memory",
                "faulting address: 0x",
            ],
        ),
        (
            "vectors",
            "v27",
            &[
                "signal delivery could not push the shadow-stack signal frame",
                "killed by SIGSEGV",
            ],
        ),
        (
            "abi",
            "badsigret",
            &[
                "rt_sigreturn found no valid shadow-stack signal token",
                "last shadow-stack switch: signal delivery",
            ],
        ),
        ("abi", "s03", &[]),
    ];
    for (prog, case, wanted) in cases {
        let (_, _, err) = run_full(prog, case);
        if wanted.is_empty() {
            assert!(
                !err.contains("violation"),
                "{prog} {case}: a correct program got a report:\n{err}"
            );
        }
        for w in *wanted {
            assert!(err.contains(w), "{prog} {case}: report lacks {w:?}:\n{err}");
        }
        assert!(
            err.contains("shadow stacks enabled by arch_prctl(ARCH_SHSTK_ENABLE)")
                || wanted.is_empty(),
            "{prog} {case}:\n{err}"
        );
    }
}

fn check(prog: &str, case: &str, expected: &str, how: &str) {
    let (out, got_how) = run(prog, case);
    assert_eq!(
        out.trim_end(),
        expected.trim_end(),
        "{prog} {case}: stdout differs (ended with {got_how})"
    );
    assert_eq!(
        got_how, how,
        "{prog} {case}: wrong termination; stdout:\n{out}"
    );
}

macro_rules! cases {
    ($($name:ident: $prog:literal $case:literal => $expected:expr $(, $how:literal)?;)*) => {
        $(
            #[test]
            fn $name() {
                #[allow(unused_mut, unused_assignments)]
                let mut how = "exit 0";
                $(how = $how;)?
                check($prog, $case, $expected, how);
            }
        )*
    };
}

const ILL: &str = "SIGILL ILL_ILLOPN addr=expected trapno=6 err=0 rip=insn";
const GP: &str = "SIGSEGV SI_KERNEL addr=0 trapno=13 err=0 rip=insn";

cases! {
    // docs/acceptance.md, CPU vectors 1-28. RDSSP is a NOP while disabled.
    vector_01_rdssp_off_keeps_zero: "vectors" "v01" => "rax=0";
    vector_02_rdssp_off_keeps_one: "vectors" "v02" => "rax=0x1";
    vector_03_rdsspd_off_keeps_upper_half: "vectors" "v03" => "rax=0xffffffff12345678";
    vector_04_incssp_off_is_ud: "vectors" "v04" => ILL;
    vector_05_call_ret_balanced: "vectors" "v05" => "ssp_same=1 entry_is_return=1";
    vector_06_zero_displacement_call_does_not_push: "vectors" "v06" => "ssp_same=1 rax_is_label=1";
    vector_07_modified_return_is_cp1: "vectors" "v07" =>
        "SIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x1 rip=insn\nrsp=same\nssp=same";
    vector_08_store_to_shadow_stack_is_accerr: "vectors" "v08" =>
        "SIGSEGV SEGV_ACCERR addr=expected trapno=14 err=0x7 rip=insn";
    vector_09_load_from_shadow_stack_allowed: "vectors" "v09" => "read_ok=1 top_is_return_to_main=1";
    vector_10_wrss_without_enable_is_ud: "vectors" "v10" => ILL;
    vector_11a_wrss_to_shadow_stack: "vectors" "v11a" => "value=0x1234";
    vector_11b_wrss_to_normal_page_is_accerr: "vectors" "v11b" =>
        "SIGSEGV SEGV_ACCERR addr=expected trapno=14 err=0x47 rip=insn";
    vector_11c_wrss_misaligned_is_gp: "vectors" "v11c" => GP;
    vector_12_incssp_uses_low_8_bits: "vectors" "v12" => "delta=8";
    vector_13_rstorssp_saveprevssp_switch: "vectors" "v13" =>
        "token_ok=1\nafter_rstorssp ssp_is_token=1 slot_is_prev=1 cf=0\n\
         after_saveprevssp ssp_is_top=1 old_has_restore_token=1\nback ssp_is_old=1 new_has_restore_token=1";
    vector_14_rstorssp_bad_token_is_cp4: "vectors" "v14" =>
        "SIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x4 rip=insn\nssp=same\nmem=same";
    vector_15_setssbsy_is_ud: "vectors" "v15" => ILL;
    vector_16_wruss_is_gp: "vectors" "v16" => GP;
    vector_17_ret_imm_moves_ssp_by_8: "vectors" "v17" => "rsp_restored=1 ssp_same=1";
    vector_18_unbounded_recursion_is_maperr: "vectors" "v18" => "SIGSEGV SEGV_MAPERR";
    vector_19_signal_tokens: "vectors" "v19" => "handler_ssp_is_s_minus_16=1 token=1 restorer=1 after_is_s=1";
    vector_20_notrack_is_plain: "vectors" "v20" => "notrack=20 plain=20";
    vector_21_incssp_past_empty_top_faults: "vectors" "v21" =>
        "SIGSEGV SEGV_MAPERR addr=expected trapno=14 err=0x44 rip=insn";
    vector_22_rstorssp_misaligned_is_gp: "vectors" "v22" => GP;
    vector_23_saveprevssp_with_cf_is_gp: "vectors" "v23" => GP;
    vector_24_rdsspd_on_zero_extends: "vectors" "v24" => "ssp_above_4g=1 rax_is_low32=1";
    vector_25_lock_endbr64_is_ud: "vectors" "v25" => ILL;
    vector_26_user_iretq_is_cp2: "vectors" "v26" => "SIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x2 rip=insn";
    vector_27_signal_with_misaligned_ssp_kills: "vectors" "v27" => "", "signal 11";
    // docs/acceptance.md, CPU vectors 29-33: the rest of the disabled-state table.
    vector_29_rstorssp_off_is_ud: "vectors" "v29" => ILL;
    vector_30_saveprevssp_off_is_ud: "vectors" "v30" => ILL;
    vector_31_clrssbsy_is_ud_even_with_shadow_stacks: "vectors" "v31" => ILL;
    vector_32_endbr_is_a_nop_on: "vectors" "v32" => "endbr_nop rax=0x3232";
    vector_32_endbr_is_a_nop_off: "vectors" "v32off" => "endbr_nop rax=0x3232";
    vector_33_wrss_with_shadow_stacks_off_is_ud: "vectors" "v33" => ILL;
    vector_28_reserved_nop_has_no_effect: "vectors" "v28" => "rax=0x1111 rdx=0x2222 ssp_same=1";

    // docs/acceptance.md, Linux behaviours 13.x (the upstream selftest's).
    abi_13_01_enable_disable_reenable_wrss: "abi" "s01" => "enable=0 disable=0 reenable=0 wrss=0 ssp_nonzero=1";
    abi_13_02_map_shadow_stack_token: "abi" "s02" => "token_ok=1";
    abi_13_03_pivot_and_return: "abi" "s03" => "on the new stack: 42\nmoved=1 back=1";
    abi_13_04_reads_wrss_madvise: "abi" "s04" => "first=0 after_wrss=1 madvise=0 zeroed=0 again=1";
    abi_13_05_cp_is_recoverable: "abi" "s05" => "SIGSEGV SEGV_CPERR\nreturned after repair";
    abi_13_06_proc_self_mem_forced_access: "abi" "s06" =>
        "pread=8 pwrite=8 value=119 next=3\nSIGSEGV SEGV_ACCERR addr=expected trapno=14 err=0x7 rip=insn";
    abi_13_07_fork_copies_the_shadow_stack: "abi" "s07" => "child_exit=0 parent_sees_child_value=0";
    abi_13_08a_mprotect_read_only_faults: "abi" "s08a" =>
        "mprotect=0\nSIGSEGV SEGV_ACCERR addr=expected trapno=14 err=0x47 rip=insn";
    abi_13_08b_mprotect_back_to_writable: "abi" "s08b" => "mprotect=0,0 value=9";
    abi_13_10_guard_gap_below_existing: "abi" "s10" => "gap=4096";
    abi_13_11_gap_below_new_shadow_stack: "abi" "s11" => "adjacent=0";
    // The child's SIGSEGV handler exits with si_code: 10 is SEGV_CPERR, the #CP from returning
    // with SSP moved past an entry by the tracer.
    abi_13_12_ptrace_shstk_regset: "abi" "s12" =>
        "stopped=1 sig=5 get=0 len=8 nonzero=1 set0=-1 set9=-1 unaligned=-1 kernel=-1 set=0\nchild: exited=1 status=10";
    abi_13_13_ia32_handler_faults_with_shadow_stacks: "abi" "s13" =>
        "below_4g=1 sigaction32=0\nSIGSEGV SI_KERNEL rip_is_32bit_handler=1\nrecovered";
    abi_13_14_no_uprobes: "abi" "s14" => "uprobe_type_absent=1";
    abi_13_15_clean_exit: "abi" "s15" => "clean";
    // The translator's remembered shadow-stack page does not outlive a syscall that takes it
    // away (tests/shstk/abi.c, w01).
    abi_shadow_page_made_read_only_under_hot_call: "abi" "w01" => "armed", "signal 11";
    // SSP as the spec moves it through hot (translated) CALLs and RETs, read back by RDSSP at
    // every depth (tests/shstk/abi.c, w02), and at a #CP raised by a hot RET (w03).
    abi_ssp_through_translated_calls: "abi" "w02" => "sum=78000 bad=0";
    abi_cp_at_translated_ret: "abi" "w03" =>
        "SIGSEGV SEGV_CPERR addr=0 trapno=21 err=0x1 rip=insn\nrsp=same\nssp=same";

    // docs/acceptance.md, Linux behaviours 14.x and the further Linux checks.
    abi_02_11_generic_prctl_and_04_05_mremap: "abi" "misc" =>
        "prctl74=-22 prctl75=-22 prctl76=-22\nmoved=1 kept=4 wrss_after=5\nmapping size=0 perms=rw-p\nss_flag=1";
    abi_14_01_check_order: "abi" "x01" => "enable3=-22 lock=0 enable_locked=-1 lockwrss=0 enable3_locked=-1";
    abi_14_02_self_unlock_enables: "abi" "x02" => "unlock=0 status=1 unlock0=-22";
    abi_14_03_disable_bypasses_wrss_lock: "abi" "x03" => "lock=0 disable=0 status=0";
    abi_14_04_wrss_needs_shstk: "abi" "x04" => "enable_wrss=-1 disable_wrss=-1";
    abi_14_05_old_codes_and_truncation: "abi" "x05" =>
        "0x3001=-22 0x3002=-22 0x3003=-22 0x3004=-22 0x3005=-22 truncated_status=0 value=0";
    abi_14_05b_07b_int80_never_reaches_shadow_stack_code: "abi" "int80" => "arch_prctl32=-22 map_shadow_stack32=-38";
    abi_14_06_status_efault: "abi" "x06" => "status_bad_pointer=-14";
    // The traced child prints its own status lines after the tracer locked SHSTK|WRSS and
    // unlocked SHSTK.
    abi_14_06b_ptrace_arch_prctl: "abi" "x06p" =>
        "x86_Thread_features:\\tshstk_\nx86_Thread_features_locked:\\twrss_\n\
         status=0 features=1 lock=0 unlock=0 enable=-1 errno_einval=1 child_exit=0";
    abi_14_07_map_shadow_stack_errors: "abi" "x07" =>
        "flags2=-22 size4=-28 low=-34 overflow=-75 unaligned_top=-22 unaligned_addr=-22 overlap=-17\n\
         token_in_second_page=1 zero_after=1";
    abi_14_08_proc_status_and_smaps: "abi" "x08" =>
        "x86_Thread_features:\\t\nx86_Thread_features_locked:\\t\n\
         enable=0 vmstk_grew_by_shstk_size=1\n\
         x86_Thread_features:\\tshstk_\nx86_Thread_features_locked:\\tshstk_wrss_\n\
         mapping size=0 perms=rw-p\nss_flag=1";
    abi_14_10_vfork_child_keeps_parent_shadow_stack: "abi" "x10" => "child_exit=7\nmapping size=0 perms=rw-p\nss_flag=1";
    abi_14_11_exec_resets_shadow_stacks: "abi" "x11" =>
        "status=0 rdssp_nop=1\nx86_Thread_features:\\t\nx86_Thread_features_locked:\\t";
    abi_14_12_null_restorer_fails_delivery: "abi" "x12" => "rt_sigaction=0\nSIGSEGV SI_KERNEL";
    abi_14_13_forged_token_moves_ssp: "abi" "x13" => "ssp_is_forged=1";
    abi_07_04_bad_sigreturn_token_forces_sigsegv: "abi" "badsigret" => "SIGSEGV SI_KERNEL addr=0";
    abi_14_15_rlimit_sizes: "abi" "x15" => "rlimit0=-22 infinity=0\nmapping size=0 perms=rw-p\nss_flag=1";
}
