//! Process trees under cetbox: `cetbox run /bin/sh -c '...'` (dash), `/bin/bash -c`, make and
//! the usual text tools, run natively and under cetbox in identical scratch directories; stdout,
//! stderr and the exit status or terminating signal must agree byte for byte. Every process the
//! shell starts (fork, vfork, posix_spawn, exec, #! scripts) stays under cetbox, which a
//! separate test checks directly.

mod common;

use common::{parallel_map, run, Outcome, Spec, Status, TempDir};
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Case {
    name: &'static str,
    /// The interpreter: /bin/sh, /bin/bash, /usr/bin/make...
    prog: &'static str,
    args: Vec<String>,
    /// Files created in the scratch directory first: (relative path, contents, executable).
    files: Vec<(&'static str, Vec<u8>, bool)>,
}

fn sh(name: &'static str, script: &str) -> Case {
    Case {
        name,
        prog: "/bin/sh",
        args: vec!["-c".into(), script.into()],
        files: Vec::new(),
    }
}

fn bash(name: &'static str, script: &str) -> Case {
    Case {
        prog: "/bin/bash",
        ..sh(name, script)
    }
}

fn with_files(mut c: Case, files: &[(&'static str, &str, bool)]) -> Case {
    c.files = files
        .iter()
        .map(|(p, s, x)| (*p, s.as_bytes().to_vec(), *x))
        .collect();
    c
}

const MAKEFILE: &str = "\
SRCS := $(sort $(wildcard in/*.txt))
OUTS := $(SRCS:in/%.txt=out/%.up)
all: $(OUTS) summary count
out/%.up: in/%.txt | out
\ttr a-z A-Z < $< > $@
out:
\tmkdir -p $@
summary: $(OUTS)
\tcat $^ | sort -r > $@
\t@echo \"lines: $(shell cat $^ | wc -l)\"
count: summary
\tawk '{ n += length($$0) } END { print \"chars\", n }' summary > $@
\t@cat $@
check: all
\t@test -f summary && echo summary ok
\t-@false
\t@echo status $$?
\t@$(MAKE) --no-print-directory -s again
again:
\t@echo recursive make
fail:
\t@echo failing; exit 3
.PHONY: all check again fail
";

fn cases() -> Vec<Case> {
    let tree = [
        ("in/a.txt", "alpha\nbeta\n", false),
        ("in/b.txt", "gamma\n", false),
        ("in/c.txt", "delta\nepsilon\nzeta\n", false),
        ("in/sub/d.log", "error: one\nok\nerror: two\n", false),
    ];
    vec![
        sh("pipeline", "printf 'b\\na\\nc\\n' | sort | tr a-z A-Z | head -n 2; echo done"),
        sh(
            "redirections",
            "echo one > f; echo two >> f; cat < f; exec 3>g; echo three >&3; exec 3>&-; cat g; \
             ls nonexist 2>/dev/null || echo failed; { echo out; echo err >&2; } 2>&1 | cat; \
             echo to-stderr >&2; cat <>f >/dev/null; exec 4<f; read l <&4; echo read $l",
        ),
        sh(
            "subshells",
            "x=1; (x=2; echo in $x); echo out $x; (exit 7); echo $?; (cd /; pwd); pwd >/dev/null; \
             echo $( (echo nested; (echo deeper)) | wc -l)",
        ),
        sh(
            "here-documents",
            "cat <<EOF\nhello $((1+2)) ${UNSET:-default}\nEOF\ncat <<'E'\n$HOME `x`\nE\n\
             while read a b; do echo \"$b-$a\"; done <<EOF\n1 one\n2 two\nEOF",
        ),
        sh(
            "command substitution",
            "a=$(echo foo | sed s/o/0/g); b=`expr 3 \\* 4`; echo $a $b; \
             echo \"$(printf '%s\\n' x y | wc -l)\"; echo $(seq 3); n=$(exit 9); echo $?",
        ),
        sh(
            "exit codes",
            "sh -c 'exit 42'; echo $?; false | true; echo $?; ! true; echo $?; \
             sh -c 'kill -TERM $$'; echo $?; sh -c 'kill -9 $$'; echo $?; \
             sh -c 'kill -SEGV $$'; echo $?; ./nonexist; echo $?; exit 3",
        ),
        sh("set -e", "set -e; true; echo a; (false); echo never"),
        sh(
            "set -e in subshell",
            "(set -e; echo a; false; echo never); echo sub $?; set -e; false || echo ok; \
             if false; then :; fi; echo end",
        ),
        sh(
            "background jobs",
            // The background job waits on a FIFO until the foreground has printed: an
            // ordering by synchronization, not by a sleep.
            "mkfifo go; (read x < go; echo bg1) & p=$!; echo fg; echo now > go; wait $p; echo waited $?; \
             (exit 5) & wait $!; echo $?; sleep 5 & k=$!; kill $k; wait $k; echo killed $?; \
             for i in 1 2 3; do (echo job $i > j$i) & done; wait; cat j1 j2 j3",
        ),
        sh(
            "signals in pipelines",
            "yes | head -n 3; echo $?; yes | sed 2q; sh -c 'kill -INT $$' | cat; echo $?; \
             trap 'echo trapped' USR1; kill -USR1 $$; echo after; trap - USR1; \
             trap 'echo bye' EXIT; (trap 'echo sub-term; exit 4' TERM; kill -TERM $(sh -c 'echo $PPID'); \
             sleep 1; echo unreached); echo sub $?",
        ),
        sh(
            "exec",
            "sh -c 'exec echo replaced; echo never'; sh -c 'exec /bin/sh -c \"echo inner; exit 4\"'; \
             echo $?; sh -c 'exec 2>&1; exec ls /nonexistent-dir'; echo $?; \
             (exec /nonexistent-prog) 2>/dev/null; echo $?; (exec ./plain) 2>/dev/null; echo $?",
        ),
        with_files(
            sh(
                "#! scripts",
                "./s.sh a 'b c'; echo $?; ./t.sh; echo $?; ./n.sh; echo $?; ./plain; echo $?; \
                 ./noexec.sh; echo $?; ./awk.sh < s.sh; echo $?; ./bad-interp.sh; echo $?; \
                 sh -c ./s.sh; echo $?",
            ),
            &[
                ("s.sh", "#!/bin/sh\necho script \"$0\" \"$@\" $#\nexit 3\n", true),
                ("t.sh", "#! /bin/sh -e\nfalse\necho never\n", true),
                ("n.sh", "echo no shebang line\n", true),
                ("plain", "not executable\n", false),
                ("noexec.sh", "#!/bin/sh\necho x\n", false),
                ("awk.sh", "#!/usr/bin/awk -f\nEND { print NR, \"lines\" }\n", true),
                ("bad-interp.sh", "#!/nonexistent/interp\n", true),
            ],
        ),
        with_files(
            sh(
                "text tools",
                "find . -type f | sort; find in -name '*.txt' -exec wc -l {} + | sort; \
                 grep -rn error in | sort; grep -c . in/a.txt; sed -n '2p;$p' in/c.txt; \
                 cp in/a.txt a2; sed -i 's/alpha/ALPHA/' a2; cat a2; \
                 awk -F: '/error/ { n++; print $2 } END { print n }' in/sub/d.log; \
                 ls in | xargs -n1 echo item; sort in/*.txt | uniq -c | sort -rn | head -3; \
                 cut -c1-3 in/c.txt | tr '\\n' ,; echo; wc -c < in/c.txt; \
                 head -c 5 in/a.txt | od -c | head -1; diff in/a.txt in/b.txt; echo diff $?; \
                 mkdir -p x/y && touch x/y/z && rm -r x && echo removed; \
                 find in -newer in/a.txt -o -name '*.log' -print | sort; basename $(pwd) >/dev/null",
            ),
            &tree,
        ),
        bash(
            "bash features",
            "arr=(1 2 3); echo ${#arr[@]}; for i in {1..4}; do echo $i; done | paste -sd+ | bc; \
             yes | head -1; echo ${PIPESTATUS[@]}; diff <(echo a) <(echo a) && echo same; \
             read x < <(echo procsub); echo $x; coproc cat; echo hi >&${COPROC[1]}; \
             read -r l <&${COPROC[0]}; echo got $l; kill $COPROC_PID; wait $COPROC_PID; echo rc=$?; \
             f() { local v=$1; echo \"f:$v\"; return 4; }; f z; echo $?; \
             mapfile -t L < <(seq 3); echo \"${L[*]}\"; set -o pipefail; false | true; echo pf=$?; \
             timeout 0.2 sleep 5; echo to=$?; \
             ( trap 'echo term; exit 9' TERM; kill -TERM $BASHPID; sleep 1 ); echo $?; \
             sleep 5 & kill %1; wait; echo jobs-done; \
             seq 1 5 | while read n; do echo $((n*n)); done | tail -1; \
             declare -A h=([k]=v); echo ${h[k]}; printf -v s '%05d' 42; echo $s; \
             [[ abc =~ ^a(b)c$ ]] && echo ${BASH_REMATCH[1]}",
        ),
        with_files(
            Case {
                name: "make",
                prog: "/usr/bin/make",
                args: vec!["check".into()],
                files: Vec::new(),
            },
            &[tree[0], tree[1], tree[2], ("Makefile", MAKEFILE, false)],
        ),
        with_files(
            Case {
                name: "make failure",
                prog: "/usr/bin/make",
                args: vec!["fail".into()],
                files: Vec::new(),
            },
            &[("Makefile", MAKEFILE, false)],
        ),
        with_files(
            Case {
                name: "make -j2 -k",
                prog: "/usr/bin/make",
                args: vec!["-j2".into(), "-s".into(), "-k".into(), "all".into()],
                files: Vec::new(),
            },
            &[tree[0], tree[1], tree[2], ("Makefile", MAKEFILE, false)],
        ),
    ]
}

fn cetbox_args() -> Vec<String> {
    std::env::var("CETBOX_GUEST_CETBOX_ARGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn populate(dir: &Path, files: &[(&'static str, Vec<u8>, bool)]) {
    use std::os::unix::fs::PermissionsExt;
    for (p, data, exec) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, data).expect("write");
        let mode = if *exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

/// Runs `prog args` natively and under cetbox, each in its own fresh copy of `files`.
fn both(
    prog: &Path,
    args: &[String],
    files: &[(&'static str, Vec<u8>, bool)],
) -> (Outcome, Outcome) {
    both_with(prog, args, files, &cetbox_args())
}

/// `both` with the given options for `cetbox run`.
fn both_with(
    prog: &Path,
    args: &[String],
    files: &[(&'static str, Vec<u8>, bool)],
    cetbox_opts: &[String],
) -> (Outcome, Outcome) {
    let mut outs = Vec::new();
    for under in [false, true] {
        let dir = TempDir::new("shell");
        populate(&dir.path, files);
        let mut spec = Spec::new(prog).args(args.iter().cloned());
        spec.cwd = Some(dir.path.clone());
        spec.timeout = Duration::from_secs(60);
        let spec = if under {
            let mut s = spec.under_cetbox(cetbox_opts);
            s.timeout = Duration::from_secs(120);
            s
        } else {
            spec
        };
        outs.push(run(&spec));
    }
    let b = outs.pop().expect("two runs");
    let a = outs.pop().expect("two runs");
    (a, b)
}

fn check(name: &str, native: &Outcome, emulated: &Outcome) -> (String, bool, String) {
    common::check(name, native, emulated)
}

fn report(results: Vec<(String, bool, String)>) {
    let mut failed = Vec::new();
    for (line, pass, details) in &results {
        println!("{line}");
        if !pass {
            println!("{}", details.trim_end());
            failed.push(format!("{line}\n{}", details.trim_end()));
        }
    }
    let summary = format!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    println!("{summary}");
    assert!(failed.is_empty(), "{summary}\n{}", failed.join("\n"));
}

#[test]
fn shell_scripts_match_native() {
    let results = parallel_map(cases(), common::worker_threads(), |c| {
        let (native, emulated) = both(Path::new(c.prog), &c.args, &c.files);
        check(c.name, &native, &emulated)
    });
    report(results);
}

/// Scripts that report shadow-stack violations under `--shstk=on` when the shell (and the C
/// library it loads) is not built for shadow stacks: dash and bash leave a failing or exiting
/// command, a subshell or a trap through longjmp, and glibc's vfork without CET code returns
/// twice on one shadow stack. `common::audit_problems` checks that these and only these
/// report, and never in an object marked SHSTK.
const SHSTK_EXPECTED: &[&str] = &[
    "redirections",
    "subshells",
    "here-documents",
    "command substitution",
    "exit codes",
    "background jobs",
    "signals in pipelines",
    "exec",
    "#! scripts",
    "text tools",
    "bash features",
    "make",
    "make failure",
    "make -j2 -k",
];

/// Every script again with shadow stacks on (audit mode): output identical to the native
/// run, violations exactly in the listed scripts.
#[test]
fn shell_scripts_with_shadow_stacks_on() {
    let results = parallel_map(cases(), common::worker_threads(), |c| {
        let report_dir = TempDir::new("shell-report");
        let report_file = report_dir.path.join("cet.jsonl");
        let mut args = cetbox_args();
        args.extend(common::shstk_audit_args(&report_file));
        let (native, emulated) = both_with(Path::new(c.prog), &c.args, &c.files, &args);
        let (mut line, mut pass, mut details) = check(c.name, &native, &emulated);
        let found = common::violations_in(&report_file);
        let listed = SHSTK_EXPECTED.contains(&c.name);
        let prog = std::fs::canonicalize(c.prog).expect("the shell exists");
        for p in common::audit_problems(c.name, &prog, listed, &found) {
            pass = false;
            details.push_str(&format!("    {p}\n"));
            line = line.replacen("ok  ", "FAIL", 1);
        }
        (line, pass, details)
    });
    report(results);
}

/// Compiles `src` with the system compiler into the target directory (dynamically linked).
fn compile(name: &str, src: &str, cxx: bool) -> PathBuf {
    let dir = common::target_dir().join("shell-test-bin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let key = common::fnv1a(&[src.as_bytes(), &[cxx as u8]]);
    let out = dir.join(format!("{name}-{key:016x}"));
    if out.exists() {
        return out;
    }
    let ext = if cxx { "cc" } else { "c" };
    let source = dir.join(format!("{name}-{key:016x}.{ext}"));
    std::fs::write(&source, src).expect("write source");
    let tmp = dir.join(format!("{name}-{key:016x}.tmp{}", std::process::id()));
    let st = common::output_within(
        std::process::Command::new(if cxx { "g++" } else { "gcc" })
            .args(["-O2", "-o"])
            .arg(&tmp)
            .arg(&source),
        common::TOOL_TIMEOUT,
    )
    .status;
    assert!(st.success(), "cannot compile {name}");
    std::fs::rename(&tmp, &out).expect("rename");
    out
}

const CXX_EXCEPTIONS: &str = r#"
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <unistd.h>
#include <sys/wait.h>

struct Guard {
    std::string n;
    ~Guard() { std::printf("unwind %s\n", n.c_str()); }
};

static int depth(int n) {
    Guard g{"level " + std::to_string(n)};
    if (n == 0) throw std::runtime_error("bottom reached");
    return depth(n - 1) + 1;
}

int main() {
    try {
        depth(3);
    } catch (const std::exception &e) {
        std::printf("caught: %s\n", e.what());
    }
    try {
        std::vector<int> v(3);
        v.at(10) = 1;
    } catch (const std::out_of_range &) {
        std::printf("out_of_range\n");
    }
    std::map<std::string, std::unique_ptr<int>> m;
    for (int i = 0; i < 5; i++) m["k" + std::to_string(i)] = std::make_unique<int>(i * i);
    int sum = 0;
    for (auto &kv : m) sum += *kv.second;
    std::printf("sum %d\n", sum);
    std::fflush(stdout);
    // An exception thrown and caught in a forked child.
    pid_t p = fork();
    if (p == 0) {
        try { throw 42; } catch (int x) { std::printf("child caught %d\n", x); }
        std::fflush(stdout);
        _exit(7);
    }
    int st = 0;
    waitpid(p, &st, 0);
    std::printf("child status %d\n", WEXITSTATUS(st));
    throw std::logic_error("uncaught");
}
"#;

/// A dynamically linked C++ program (libstdc++, libgcc_s unwinding) behaves as natively,
/// including an uncaught exception (std::terminate, SIGABRT).
#[test]
fn dynamic_cxx_exceptions() {
    let bin = compile("cxx-exceptions", CXX_EXCEPTIONS, true);
    let (native, emulated) = both(&bin, &[], &[]);
    assert_eq!(native.status, Status::Signaled(libc::SIGABRT));
    report(vec![check("dynamic C++ exceptions", &native, &emulated)]);
}

const PROBE: &str = r#"
#include <stdio.h>
#include <string.h>
/* Linux maps a vDSO into every process; cetbox gives its guests none. */
int main(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int vdso = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "[vdso]")) vdso = 1;
    printf("%s\n", vdso ? "native" : "cetbox");
    return 0;
}
"#;

/// Every process of the tree started by `cetbox run` runs under cetbox: a probe started
/// through sh, bash, make (posix_spawn), xargs, find -exec, env, a #! script, exec and nested
/// shells reports that it is emulated; natively it reports the opposite.
#[test]
fn process_tree_stays_under_cetbox() {
    let probe = compile("tree-probe", PROBE, false);
    let p = probe.display().to_string();
    let script = format!(
        "{p}; sh -c '{p}'; bash -c '{p}; exit'; echo | xargs {p}; find /dev/null -exec {p} \\;; \
         env {p}; ./probe.sh; (exec {p}); printf 'all:\\n\\t@{p}\\n' | make -s -f -; \
         sh -c 'sh -c \"{p} & wait\"'; {p} | cat; v=$({p}); echo $v"
    );
    let files = vec![(
        "probe.sh",
        format!("#!/bin/sh\nexec {p}\n").into_bytes(),
        true,
    )];
    let (native, emulated) = both(Path::new("/bin/sh"), &["-c".into(), script], &files);
    let nat = String::from_utf8_lossy(&native.stdout).into_owned();
    let emu = String::from_utf8_lossy(&emulated.stdout).into_owned();
    let n = nat.lines().count();
    assert_eq!(
        n,
        12,
        "native run: {nat}\n{}",
        String::from_utf8_lossy(&native.stderr)
    );
    assert!(
        nat.lines().all(|l| l == "native"),
        "the host has no vDSO? {nat}"
    );
    assert_eq!(
        emu,
        "cetbox\n".repeat(n),
        "under cetbox: {emu}\nstderr: {}",
        String::from_utf8_lossy(&emulated.stderr)
    );
    assert_eq!(emulated.status, Status::Exited(0));
}
