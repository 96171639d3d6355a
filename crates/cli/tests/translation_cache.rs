//! The translator's hot-block profile across processes (crates/jit/src/profile,
//! docs/ARCHITECTURE.md "The hot-block profile"): guest-visible behaviour is the same with the
//! profile cold, warm, disabled, forged, damaged, rewritten by a guest, written by many
//! processes at once, or in a directory that cannot be written; a warm profile makes blocks
//! translate at their first visit (fewer instructions interpreted).

mod common;

use cetbox_jit::profile::format::{decode, encode, file_name, FileKey, MAX_ENTRIES};
use common::{check, run, Outcome, Spec, TempDir};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest `NAME: N` figure in CETBOX_JIT_STATS lines (cumulative per thread).
fn stat(stderr: &[u8], name: &str) -> u64 {
    let key = format!(" {name}: ");
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("cetbox jit: "))
        .filter_map(|l| l.split(key.as_str()).nth(1))
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The run without cetbox's statistics lines on stderr (the guest's own output stays).
fn guest_view(mut o: Outcome) -> Outcome {
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    o.stderr = text
        .lines()
        .filter(|l| !l.starts_with("cetbox jit: ") && !l.contains(" blocks at 0x"))
        .flat_map(|l| [l, "\n"])
        .collect::<String>()
        .into_bytes();
    o
}

/// The two guests: a C program run directly, and a shell that runs other programs (exec
/// and fork, dynamically linked, several files with profiles).
fn programs(dir: &TempDir) -> Vec<Spec> {
    let src = common::repo_root().join("tests/guest/misc/checksums.c");
    let prog = dir.path.join("checksums");
    common::gcc(&src, &prog, &["-O0"], &["-lm"]);
    let sh = Spec::new("/bin/sh").args([
        "-c",
        "for i in 1 2 3; do /bin/echo \"line $i\"; done; /bin/true && exec /bin/ls -d /",
    ]);
    vec![Spec::new(&prog), sh]
}

/// `spec` under cetbox with the profile in `cache` ("off" to disable), statistics on.
fn under(spec: &Spec, cache: &str, extra: &[&str]) -> Spec {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut s = spec.under_cetbox(&extra);
    s.env
        .push(("CETBOX_TRANSLATION_CACHE".into(), cache.into()));
    s.env.push(("CETBOX_JIT_STATS".into(), "1".into()));
    s.timeout = Duration::from_secs(120);
    s
}

fn same_as_native(label: &str, native: &Outcome, emulated: Outcome) -> Outcome {
    let (line, ok, diff) = check(label, native, &guest_view(emulated.clone()));
    assert!(ok, "{line}\n{diff}");
    emulated
}

/// The file and program keys a profile file holds in its header (format.rs), to decode it
/// as what it claims to be.
fn claimed_keys(bytes: &[u8]) -> Option<(FileKey, FileKey)> {
    let w =
        |i: usize| u64::from_le_bytes(bytes.get(8 + 8 * i..16 + 8 * i)?.try_into().ok()?).into();
    let w: Vec<u64> = (0..14).map(w).collect::<Option<_>>()?;
    let key = |w: &[u64]| FileKey {
        dev: w[0],
        ino: w[1],
        size: w[2],
        mtime: (w[3] as i64, w[4] as i64),
        ctime: (w[5] as i64, w[6] as i64),
    };
    Some((key(&w[..7]), key(&w[7..])))
}

/// Every entry of `dir`: a complete, valid profile named as its key says, and nothing else
/// (no temporary file left behind).
fn all_profiles_valid(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let bytes = std::fs::read(e.path()).unwrap();
        let (key, program) =
            claimed_keys(&bytes).unwrap_or_else(|| panic!("{:?}: no header", e.path()));
        assert!(
            decode(&key, &program, &bytes).is_some(),
            "{:?}: invalid",
            e.path()
        );
        assert_eq!(e.file_name().to_string_lossy(), file_name(&key, &program));
        n += 1;
    }
    n
}

fn key_of(path: &Path) -> FileKey {
    let m = std::fs::metadata(path).unwrap();
    FileKey::of(path, m.dev(), m.ino()).unwrap()
}

#[test]
fn cold_warm_and_disabled_runs_are_identical() {
    let dir = TempDir::new("tcache");
    for (i, spec) in programs(&dir).iter().enumerate() {
        let native = run(spec);
        let cache = dir.path.join(format!("cache{i}"));
        let c = cache.to_str().unwrap();
        let cold = same_as_native("cold", &native, run(&under(spec, c, &[])));
        // (The shell's later /bin/echo processes already use what the first one wrote.)
        if i == 0 {
            assert_eq!(stat(&cold.stderr, "hinted"), 0, "cold run used a profile");
        }
        assert!(all_profiles_valid(&cache) > 0, "no profile was written");
        if i == 0 {
            let k = key_of(&spec.program);
            let offsets = cetbox_jit::profile::store::load(&cache, &k, &k);
            assert!(
                !offsets.is_empty(),
                "the program's own hot blocks were not recorded"
            );
        }
        let warm = same_as_native("warm", &native, run(&under(spec, c, &[])));
        assert!(stat(&warm.stderr, "hinted") > 0, "warm run used no profile");
        let (ci, wi) = (
            stat(&cold.stderr, "retired_interpreted"),
            stat(&warm.stderr, "retired_interpreted"),
        );
        assert!(wi < ci, "warm run interpreted {wi} instructions, cold {ci}");
        // Disabled by the option (with a directory named) and by the variable: no profile is
        // read or written.
        let unused = dir.path.join(format!("unused{i}"));
        let u = unused.to_str().unwrap();
        let off = same_as_native(
            "--no-translation-cache",
            &native,
            run(&under(spec, u, &["--no-translation-cache"])),
        );
        assert_eq!(stat(&off.stderr, "hinted"), 0);
        assert!(
            !unused.exists(),
            "--no-translation-cache created {unused:?}"
        );
        let off = same_as_native("variable off", &native, run(&under(spec, "off", &[])));
        assert_eq!(stat(&off.stderr, "hinted"), 0);
        // Also with --engine=interp (which has no use for it) and, for the C program (the
        // distribution's dash longjmps, a violation under --shstk=on), --shstk=on.
        same_as_native(
            "interp",
            &native,
            run(&under(spec, c, &["--engine=interp"])),
        );
        if i == 0 {
            same_as_native("shstk", &native, run(&under(spec, c, &["--shstk=on"])));
        }
    }
}

#[test]
fn forged_and_damaged_profiles_change_nothing() {
    let dir = TempDir::new("tcache-forged");
    let specs = programs(&dir);
    let spec = &specs[0];
    let native = run(spec);
    let cache = dir.path.join("cache");
    let c = cache.to_str().unwrap();
    same_as_native("cold", &native, run(&under(spec, c, &[])));
    // A well-formed forgery (a forger can compute the checksum): every offset of the program
    // listed as hot, so every block it visits in its first 64 KiB is translated at once.
    let key = key_of(&spec.program);
    let all: Vec<u32> = (0..MAX_ENTRIES as u32).collect();
    std::fs::write(cache.join(file_name(&key, &key)), encode(&key, &key, &all)).unwrap();
    let forged = same_as_native("forged", &native, run(&under(spec, c, &[])));
    assert!(stat(&forged.stderr, "hinted") > 0);
    // Damaged and hostile entries in place of every profile: garbage, truncated, a FIFO, a
    // symbolic link to /dev/zero, a directory. None may hang, fail or change the run.
    let names: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for (round, what) in ["garbage", "truncated", "fifo", "symlink", "directory"]
        .iter()
        .enumerate()
    {
        for p in &names {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir_all(p);
            match *what {
                "garbage" => std::fs::write(p, vec![0xa5u8; 4096 + round]).unwrap(),
                "truncated" => std::fs::write(p, &encode(&key, &key, &all)[..100]).unwrap(),
                "fifo" => {
                    let cp = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                    // SAFETY: mkfifo with a NUL-terminated path.
                    assert_eq!(unsafe { libc::mkfifo(cp.as_ptr(), 0o600) }, 0);
                }
                "symlink" => std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
                _ => std::fs::create_dir(p).unwrap(),
            }
        }
        same_as_native(what, &native, run(&under(spec, c, &[])));
    }
}

#[test]
fn a_guest_that_rewrites_the_cache_changes_nothing() {
    // The profile directory is reachable by guests running as the same user; what they
    // write there can only change when blocks are translated.
    let dir = TempDir::new("tcache-guest");
    let specs = programs(&dir);
    let spec = &specs[0];
    let native = run(spec);
    let cache = dir.path.join("cache");
    let c = cache.to_str().unwrap();
    same_as_native("cold", &native, run(&under(spec, c, &[])));
    let script = format!(
        "set -e; cd '{c}'; for f in *; do printf 'CBHOTv1\\000forged by a guest' > \"$f\"; done; \
         mkfifo 0123456789abcdef; ln -s /dev/zero fedcba9876543210; echo tampered"
    );
    let tamper = Spec::new("/bin/sh").args(["-c", script.as_str()]);
    let t = run(&under(&tamper, "off", &[]));
    assert_eq!(t.stdout, b"tampered\n", "{:?}", guest_view(t.clone()));
    let after = same_as_native("after tampering", &native, run(&under(spec, c, &[])));
    assert_eq!(
        stat(&after.stderr, "hinted"),
        0,
        "a rewritten profile was used"
    );
    // The next run's profile replaced the forged one.
    let warm = same_as_native("warm again", &native, run(&under(spec, c, &[])));
    assert!(stat(&warm.stderr, "hinted") > 0);
}

#[test]
fn many_processes_at_once_leave_valid_profiles() {
    let dir = TempDir::new("tcache-many");
    let specs = programs(&dir);
    let cache = dir.path.join("cache");
    let c = cache.to_str().unwrap().to_string();
    for spec in &specs {
        let native = run(spec);
        let runs: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| run(&under(spec, &c, &[]))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in runs {
            same_as_native("concurrent", &native, o);
        }
    }
    assert!(all_profiles_valid(&cache) > 0);
}

#[test]
fn an_unusable_cache_directory_is_silent() {
    let dir = TempDir::new("tcache-unusable");
    let specs = programs(&dir);
    let file = dir.path.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let under_file = file.join("cache");
    for spec in &specs {
        let native = run(spec);
        // No statistics: stderr must be exactly the native one (no diagnostic).
        let mut s = spec.under_cetbox(&[]);
        s.env.push((
            "CETBOX_TRANSLATION_CACHE".into(),
            under_file.to_str().unwrap().into(),
        ));
        let (line, ok, diff) = check("unusable cache", &native, &run(&s));
        assert!(ok, "{line}\n{diff}");
    }
}
