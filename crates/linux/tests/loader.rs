//! Loader, memory-syscall and /proc tests. Expected values come from the ELF files themselves
//! (parsed here independently), from Linux's documented formats and from the brief's rules.
//!
//! Only one AddressSpace can exist per process, so every test that loads a program re-runs
//! this test binary for just that test, with CETBOX_LOADER_CHILD naming it.

use cetbox_linux::loader::{self, stack as st};
use cetbox_linux::syscalls::mem as m;
use cetbox_linux::{Options, Process, Thread};
use cetbox_mem::{VmaKind, PAGE_SIZE};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

// ------------------------------------------------------------------ helpers

fn workdir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("cetbox-loader-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Compiles `src` with gcc and `flags`; returns the binary's path.
fn build(name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let dir = workdir();
    let out = dir.join(name);
    if out.exists() {
        return out;
    }
    // Tests run in parallel and may build the same program: each compiles to its own name
    // and renames, so no test ever sees a half-written binary.
    let tag = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let c = dir.join(format!("{name}-{tag}.c"));
    let tmp = dir.join(format!("{name}.tmp{tag}"));
    std::fs::write(&c, src).unwrap();
    let st = output_within(
        Command::new("gcc").args(flags).arg("-o").arg(&tmp).arg(&c),
        std::time::Duration::from_secs(300),
    )
    .status;
    assert!(st.success(), "gcc failed for {name}");
    std::fs::rename(&tmp, &out).unwrap();
    out
}

const C_PROG: &str =
    "int big[5000]; int init = 42;\nint main(int c, char **v){ return init + big[c]; }\n";
const NOSTDLIB: &str = "void _start(void){ __asm__ volatile(\"mov $60,%%eax; xor %%edi,%%edi; syscall\" ::: \"memory\"); }\n";

fn static_bin() -> PathBuf {
    build("prog_static", C_PROG, &["-static", "-O1"])
}

/// Runs `cmd` like `Command::output`, killing it and failing the test if it has not finished
/// within `limit` (a hang must fail fast, not stall the suite).
fn output_within(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

fn run_child(name: &str) {
    let out = output_within(
        Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env("CETBOX_LOADER_CHILD", name),
        std::time::Duration::from_secs(120),
    );
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && so.contains("1 passed"),
        "child {name} failed:\n{so}\n{se}"
    );
}

/// Runs `body` in a fresh process (fresh address space).
macro_rules! child_test {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            if std::env::var("CETBOX_LOADER_CHILD").as_deref() == Ok(stringify!($name)) {
                let f: fn() = $body;
                f();
            } else {
                run_child(stringify!($name));
            }
        }
    };
}

fn new_thread(sysroot: Option<PathBuf>) -> Thread {
    let opts = Options {
        sysroot,
        ..Default::default()
    };
    let p = Process::new(Arc::new(opts), None).unwrap();
    let pid = p.pid;
    Thread::new(p, pid)
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// An independent minimal ELF64 reader for expected values.
struct Raw {
    bytes: Vec<u8>,
    e_type: u16,
    entry: u64,
    phoff: u64,
    phnum: u16,
    /// (type, flags, offset, vaddr, filesz, memsz)
    ph: Vec<(u32, u32, u64, u64, u64, u64)>,
}

fn raw(p: &Path) -> Raw {
    let b = std::fs::read(p).unwrap();
    let phoff = le64(&b, 32);
    let phnum = le16(&b, 56);
    let ph = (0..phnum as usize)
        .map(|i| {
            let o = phoff as usize + i * 56;
            (
                le32(&b, o),
                le32(&b, o + 4),
                le64(&b, o + 8),
                le64(&b, o + 16),
                le64(&b, o + 32),
                le64(&b, o + 40),
            )
        })
        .collect();
    Raw {
        e_type: le16(&b, 16),
        entry: le64(&b, 24),
        phoff,
        phnum,
        ph,
        bytes: b,
    }
}

fn copy_patched(src: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    patch(&mut b);
    let p = workdir().join(name);
    std::fs::write(&p, &b).unwrap();
    set_mode(&p, 0o755);
    p
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn probe_err(p: &Path) -> loader::LoadError {
    match loader::probe(p.to_str().unwrap(), &[b"x".to_vec()], None) {
        Ok(()) => panic!("{} loaded but should not", p.display()),
        Err(e) => e,
    }
}

fn auxv_get(auxv: &[(u64, u64)], k: u64) -> Option<u64> {
    auxv.iter().find(|(a, _)| *a == k).map(|(_, v)| *v)
}

fn read_cstr(t: &Thread, a: u64) -> Vec<u8> {
    t.mem().read_cstr(a, 1 << 16).unwrap().unwrap()
}

fn call(
    f: fn(&mut Thread, [u64; 6]) -> cetbox_linux::SysResult,
    t: &mut Thread,
    a: &[u64],
) -> Result<u64, i32> {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    f(t, args).map_err(|e| e.0)
}

// ------------------------------------------------------------------ bad inputs (no address space)

#[test]
fn missing_directory_and_permissions() {
    let e = probe_err(Path::new("/nonexistent/cetbox/prog"));
    assert_eq!(e.errno, libc::ENOENT);
    assert!(!e.message.contains('\n'));
    let e = probe_err(workdir());
    assert_eq!(e.errno, libc::EACCES);
    assert!(e.message.contains("directory"), "{}", e.message);
    let p = copy_patched(&static_bin(), "noexec", |_| {});
    set_mode(&p, 0o644);
    // root may execute anything with an x bit only; 0644 has none.
    assert_eq!(probe_err(&p).errno, libc::EACCES);
}

#[test]
fn not_elf_and_truncated() {
    let text = workdir().join("text");
    std::fs::write(&text, b"hello world\n").unwrap();
    set_mode(&text, 0o755);
    assert_eq!(probe_err(&text).errno, libc::ENOEXEC);
    let empty = workdir().join("empty");
    std::fs::write(&empty, b"").unwrap();
    set_mode(&empty, 0o755);
    assert_eq!(probe_err(&empty).errno, libc::ENOEXEC);

    let bin = static_bin();
    let r = raw(&bin);
    let short = copy_patched(&bin, "trunc40", |b| b.truncate(40));
    assert_eq!(probe_err(&short).errno, libc::ENOEXEC);
    // Header intact, program headers cut off: Linux's short read gives EIO.
    let phcut = copy_patched(&bin, "truncph", |b| b.truncate(r.phoff as usize + 20));
    let e = probe_err(&phcut);
    assert_eq!(e.errno, libc::EIO, "{}", e.message);
    // Program headers intact, segment data cut off.
    let half = copy_patched(&bin, "trunchalf", |b| b.truncate(b.len() / 2));
    let e = probe_err(&half);
    assert_eq!(e.errno, libc::ENOEXEC, "{}", e.message);
    assert!(e.message.contains("truncated"), "{}", e.message);
}

#[test]
fn wrong_class_machine_type() {
    let bin = static_bin();
    let c32 = copy_patched(&bin, "class32", |b| b[4] = 1);
    let e = probe_err(&c32);
    assert_eq!(e.errno, libc::ENOEXEC);
    assert!(e.message.contains("32-bit"), "{}", e.message);
    let arm = copy_patched(&bin, "aarch64", |b| {
        b[18..20].copy_from_slice(&183u16.to_le_bytes())
    });
    let e = probe_err(&arm);
    assert_eq!(e.errno, libc::ENOEXEC);
    assert!(e.message.contains("AArch64"), "{}", e.message);
    let rel = copy_patched(&bin, "etrel", |b| {
        b[16..18].copy_from_slice(&1u16.to_le_bytes())
    });
    assert_eq!(probe_err(&rel).errno, libc::ENOEXEC);
    let be = copy_patched(&bin, "bigend", |b| b[5] = 2);
    assert_eq!(probe_err(&be).errno, libc::ENOEXEC);
    let phent = copy_patched(&bin, "phent", |b| {
        b[54..56].copy_from_slice(&32u16.to_le_bytes())
    });
    assert_eq!(probe_err(&phent).errno, libc::ENOEXEC);
    let nophdr = copy_patched(&bin, "phnum0", |b| {
        b[56..58].copy_from_slice(&0u16.to_le_bytes())
    });
    assert_eq!(probe_err(&nophdr).errno, libc::ENOEXEC);
}

#[test]
fn malformed_segments() {
    let bin = static_bin();
    let r = raw(&bin);
    let loads: Vec<usize> = (0..r.phnum as usize).filter(|&i| r.ph[i].0 == 1).collect();
    let ph = |i: usize| r.phoff as usize + i * 56;
    // p_filesz > p_memsz.
    let i = loads[0];
    let p = copy_patched(&bin, "filesz", |b| {
        let o = ph(i);
        let mem = le64(b, o + 40);
        b[o + 32..o + 40].copy_from_slice(&(mem + 0x1000).to_le_bytes());
    });
    let e = probe_err(&p);
    assert_eq!(e.errno, libc::ENOEXEC);
    assert!(e.message.contains("p_filesz"), "{}", e.message);
    // A segment moved onto the previous one.
    let j = loads[1];
    let p = copy_patched(&bin, "overlap", |b| {
        let v0 = le64(b, ph(loads[0]) + 16);
        let off1 = le64(b, ph(j) + 8);
        b[ph(j) + 16..ph(j) + 24].copy_from_slice(&(v0 + (off1 & 0xfff)).to_le_bytes());
    });
    assert_eq!(probe_err(&p).errno, libc::ENOEXEC);
    // An absurd address.
    let p = copy_patched(&bin, "absurd", |b| {
        b[ph(j) + 16..ph(j) + 24].copy_from_slice(&0xffff_ffff_ffff_0000u64.to_le_bytes());
    });
    assert_eq!(probe_err(&p).errno, libc::ENOEXEC);
    // Misaligned offset vs address.
    let p = copy_patched(&bin, "congruent", |b| {
        let v = le64(b, ph(j) + 16);
        b[ph(j) + 16..ph(j) + 24].copy_from_slice(&(v + 8).to_le_bytes());
    });
    assert_eq!(probe_err(&p).errno, libc::ENOEXEC);
}

#[test]
fn interpreter_errors() {
    let dyn_bin = build("prog_dyn", C_PROG, &["-O1"]);
    let empty_root = workdir().join("emptyroot");
    std::fs::create_dir_all(&empty_root).unwrap();
    // An interpreter absent from the sysroot is the host's (crates/linux/src/sysroot.rs).
    loader::probe(dyn_bin.to_str().unwrap(), &[], Some(&empty_root)).unwrap();
    // An interpreter that exists nowhere: ENOENT.
    let r = raw(&dyn_bin);
    let interp = r.ph.iter().find(|p| p.0 == 3).unwrap();
    let p = copy_patched(&dyn_bin, "nointerp", |b| {
        b[interp.2 as usize + 1] = b'X';
    });
    let e = probe_err(&p);
    assert_eq!(e.errno, libc::ENOENT);
    assert!(e.message.contains("interpreter"), "{}", e.message);
    // A sysroot whose "interpreter" is not ELF: ELIBBAD.
    let name = &r.bytes[interp.2 as usize..(interp.2 + interp.4 - 1) as usize];
    let fake_root = workdir().join("fakeroot");
    let fake = fake_root.join(std::str::from_utf8(&name[1..]).unwrap());
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::write(&fake, b"#!/bin/sh\n").unwrap();
    set_mode(&fake, 0o755);
    let e = loader::probe(dyn_bin.to_str().unwrap(), &[], Some(&fake_root)).unwrap_err();
    assert_eq!(e.errno, libc::ELIBBAD, "{}", e.message);
    // PT_INTERP without its NUL.
    let p = copy_patched(&dyn_bin, "interpnul", |b| {
        let end = (interp.2 + interp.4 - 1) as usize;
        b[end] = b'x';
    });
    assert_eq!(probe_err(&p).errno, libc::ENOEXEC);
}

#[test]
fn scripts() {
    let bin = static_bin();
    let dir = workdir();
    let s = dir.join("s1");
    std::fs::write(&s, format!("#!{} -a b\nrest\n", bin.display())).unwrap();
    set_mode(&s, 0o755);
    let p = loader::prepare(
        s.to_str().unwrap(),
        &[b"s1".to_vec(), b"x".to_vec(), b"y".to_vec()],
        None,
    )
    .unwrap();
    assert_eq!(
        p.argv,
        vec![
            bin.to_str().unwrap().as_bytes().to_vec(),
            b"-a b".to_vec(),
            s.to_str().unwrap().as_bytes().to_vec(),
            b"x".to_vec(),
            b"y".to_vec()
        ]
    );
    assert_eq!(p.execfn, s.to_str().unwrap().as_bytes());
    assert!(p.interp.is_none());

    let missing = dir.join("s_missing");
    std::fs::write(&missing, "#!/nonexistent/interp\n").unwrap();
    set_mode(&missing, 0o755);
    assert_eq!(probe_err(&missing).errno, libc::ENOENT);
    let blank = dir.join("s_blank");
    std::fs::write(&blank, "#!   \n").unwrap();
    set_mode(&blank, 0o755);
    assert_eq!(probe_err(&blank).errno, libc::ENOEXEC);

    // A chain of five scripts ending in an ELF loads; six scripts is ELOOP.
    let mut prev = bin.clone();
    let mut chain = Vec::new();
    for i in 0..6 {
        let p = dir.join(format!("chain{i}"));
        std::fs::write(&p, format!("#!{}\n", prev.display())).unwrap();
        set_mode(&p, 0o755);
        chain.push(p.clone());
        prev = p;
    }
    assert!(loader::probe(chain[4].to_str().unwrap(), &[], None).is_ok());
    assert_eq!(probe_err(&chain[5]).errno, libc::ELOOP);
}

#[test]
fn property_notes() {
    // The note of an object built with -fcf-protection=full: X86_FEATURE_1_AND = IBT | SHSTK
    // (Linux Extensions to gABI, https://gitlab.com/x86-psABIs/Linux-ABI).
    let note: [u8; 32] = [
        4, 0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, b'G', b'N', b'U', 0, 2, 0, 0, 0xc0, 4, 0, 0, 0, 3, 0,
        0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(
        cetbox_linux::objects::properties::feature_1_and_from_notes(&note),
        Some(3)
    );
    let mut n2 = note;
    n2[24] = 1;
    assert_eq!(
        cetbox_linux::objects::properties::feature_1_and_from_notes(&n2),
        Some(1)
    );
    assert_eq!(
        cetbox_linux::objects::properties::feature_1_and_from_notes(&note[..20]),
        None
    );
    let mut cf = build("prog_cf", C_PROG, &["-static", "-fcf-protection=full"]);
    loader::prepare(cf.to_str().unwrap(), &[], None).unwrap();
    // glibc's own objects decide; the properties must at least be read without error.
    assert!(cetbox_linux::objects::read_file_properties(&cf).is_ok());
    cf.pop();
}

#[test]
fn arg_limits() {
    let big = vec![b'a'; st::MAX_ARG_STRLEN];
    assert_eq!(
        st::check_arg_size(&[big], &[], Some(8 << 20)),
        Err(libc::E2BIG)
    );
    assert!(st::check_arg_size(&[b"ok".to_vec()], &[], Some(8 << 20)).is_ok());
}

// ------------------------------------------------------------------ loading

fn check_common(t: &Thread, path: &Path, argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Vec<(u64, u64)> {
    let sp = t.cpu.gpr[4];
    assert_eq!(sp % 16, 0, "rsp must be 16-aligned");
    for (i, g) in t.cpu.gpr.iter().enumerate() {
        if i != 4 {
            assert_eq!(*g, 0, "gpr {i} must be zero");
        }
    }
    assert_eq!(t.cpu.rflags() & 0xfff, 0x202);
    let mem = t.mem();
    assert_eq!(mem.read_u64(sp).unwrap(), argv.len() as u64);
    for (i, a) in argv.iter().enumerate() {
        let p = mem.read_u64(sp + 8 + 8 * i as u64).unwrap();
        assert_eq!(&read_cstr(t, p), a);
    }
    let envp_at = sp + 8 + 8 * (argv.len() as u64 + 1);
    assert_eq!(mem.read_u64(envp_at - 8).unwrap(), 0);
    for (i, e) in envp.iter().enumerate() {
        let p = mem.read_u64(envp_at + 8 * i as u64).unwrap();
        assert_eq!(&read_cstr(t, p), e);
    }
    let mut a = envp_at + 8 * (envp.len() as u64 + 1);
    assert_eq!(mem.read_u64(a - 8).unwrap(), 0);
    let mut auxv = Vec::new();
    loop {
        let k = mem.read_u64(a).unwrap();
        let v = mem.read_u64(a + 8).unwrap();
        auxv.push((k, v));
        a += 16;
        if k == 0 {
            break;
        }
    }
    assert_eq!(auxv, t.proc.image().auxv);
    assert!(
        auxv_get(&auxv, 33).is_none(),
        "no vDSO: AT_SYSINFO_EHDR omitted"
    );
    assert_eq!(auxv_get(&auxv, st::AT_PAGESZ), Some(4096));
    assert_eq!(auxv_get(&auxv, st::AT_CLKTCK), Some(100));
    assert_eq!(auxv_get(&auxv, st::AT_PHENT), Some(56));
    assert_eq!(auxv_get(&auxv, st::AT_SECURE), Some(0));
    assert_eq!(auxv_get(&auxv, st::AT_FLAGS), Some(0));
    // SAFETY: no preconditions.
    assert_eq!(
        auxv_get(&auxv, st::AT_UID),
        // SAFETY: getuid has no preconditions.
        Some(unsafe { libc::getuid() } as u64)
    );
    let hw = auxv_get(&auxv, st::AT_HWCAP).unwrap();
    assert_ne!(hw & (1 << 26), 0, "SSE2");
    assert_ne!(hw & (1 << 24), 0, "FXSR");
    assert!(auxv_get(&auxv, st::AT_MINSIGSTKSZ).unwrap() >= 1024);
    let execfn = auxv_get(&auxv, st::AT_EXECFN).unwrap();
    assert_eq!(read_cstr(t, execfn), path.to_str().unwrap().as_bytes());
    let top = t.proc.image().stack_top;
    assert_eq!(execfn + path.to_str().unwrap().len() as u64 + 1, top - 8);
    assert_eq!(
        read_cstr(t, auxv_get(&auxv, st::AT_PLATFORM).unwrap()),
        b"x86_64"
    );
    let mut rnd = [0u8; 16];
    mem.read_bytes(auxv_get(&auxv, st::AT_RANDOM).unwrap(), &mut rnd)
        .unwrap();
    assert_eq!(auxv.last(), Some(&(0, 0)));
    // The stack VMA.
    let v = mem.find_vma(sp).unwrap();
    assert_eq!(v.kind, VmaKind::Stack);
    assert!(v.growsdown);
    assert_eq!(v.end, top);
    assert!(v.len() >= 128 * 1024);
    assert!(mem.mmap_base() + 8 * 1024 * 1024 <= v.start);
    // The program headers in memory equal the file's.
    let r = raw(path);
    let phdr = auxv_get(&auxv, st::AT_PHDR).unwrap();
    let mut ph = vec![0u8; r.phnum as usize * 56];
    mem.read_bytes(phdr, &mut ph).unwrap();
    assert_eq!(
        &ph[..],
        &r.bytes[r.phoff as usize..r.phoff as usize + ph.len()]
    );
    assert_eq!(auxv_get(&auxv, st::AT_PHNUM), Some(r.phnum as u64));
    auxv
}

/// Checks every PT_LOAD of `r` mapped at `bias`: contents, zeroed bss, protections.
fn check_segments(t: &Thread, r: &Raw, bias: u64) {
    let mem = t.mem();
    for p in r.ph.iter().filter(|p| p.0 == 1) {
        let (flags, off, va, fsz, msz) = (p.1, p.2, p.3 + bias, p.4, p.5);
        let mut got = vec![0u8; fsz as usize];
        mem.read_bytes(va, &mut got).unwrap();
        assert!(
            got == r.bytes[off as usize..(off + fsz) as usize],
            "segment at {va:#x}"
        );
        if msz > fsz {
            let mut z = vec![1u8; (msz - fsz) as usize];
            mem.read_bytes(va + fsz, &mut z).unwrap();
            assert!(z.iter().all(|&b| b == 0), "bss at {:#x} not zero", va + fsz);
        }
        let v = mem.find_vma(va).unwrap();
        let want = (if flags & 4 != 0 { 1 } else { 0 })
            | (if flags & 2 != 0 { 2 } else { 0 })
            | (if flags & 1 != 0 { 4 } else { 0 });
        assert_eq!(v.prot, want, "prot of segment at {va:#x}");
    }
}

child_test!(load_static, || {
    let bin = static_bin();
    let mut t = new_thread(None);
    let argv = vec![b"prog".to_vec(), b"arg one".to_vec(), Vec::new()];
    let envp = vec![b"A=1".to_vec(), b"B=two".to_vec()];
    loader::load(&mut t, bin.to_str().unwrap(), &argv, &envp).unwrap();
    let r = raw(&bin);
    assert_eq!(r.e_type, 2);
    assert_eq!(t.cpu.rip, r.entry);
    let auxv = check_common(&t, &bin, &argv, &envp);
    assert_eq!(auxv_get(&auxv, st::AT_ENTRY), Some(r.entry));
    assert_eq!(auxv_get(&auxv, st::AT_BASE), Some(0));
    check_segments(&t, &r, 0);
    let img = t.proc.image().clone();
    let end =
        r.ph.iter()
            .filter(|p| p.0 == 1)
            .map(|p| p.3 + p.5)
            .max()
            .unwrap();
    assert!(img.brk_start >= end && img.brk_start < end + 0x10000);
    assert_eq!(img.brk_start % PAGE_SIZE, 0);
    assert_eq!(
        img.exe,
        std::fs::canonicalize(&bin).unwrap().to_str().unwrap()
    );
    // argv and env ranges for /proc/self/cmdline and environ.
    let mut cmd = vec![0u8; (img.arg_end - img.arg_start) as usize];
    t.mem().read_bytes(img.arg_start, &mut cmd).unwrap();
    assert_eq!(cmd, b"prog\0arg one\0\0");
    assert_eq!(img.env_start, img.arg_end);
    let mut env = vec![0u8; (img.env_end - img.env_start) as usize];
    t.mem().read_bytes(img.env_start, &mut env).unwrap();
    assert_eq!(env, b"A=1\0B=two\0");

    // Stack growth: just below the VMA grows, far below does not.
    let sv = t.mem().find_vma(t.cpu.gpr[4]).unwrap();
    assert!(cetbox_linux::stack_growth::try_grow_stack(
        &mut t,
        sv.start - 3 * PAGE_SIZE + 8
    ));
    let sv2 = t.mem().find_vma(t.cpu.gpr[4]).unwrap();
    assert_eq!(sv2.start, sv.start - 3 * PAGE_SIZE);
    assert_eq!(sv2.end, sv.end);
    assert!(!cetbox_linux::stack_growth::try_grow_stack(
        &mut t,
        sv.end - (1 << 40)
    ));

    procfs_checks(&mut t, &bin);
    mmap_checks(&mut t);
    brk_checks(&mut t);
    mremap_checks(&mut t);
});

child_test!(load_static_pie, || {
    let bin = build("prog_spie", C_PROG, &["-static-pie", "-O1"]);
    let mut t = new_thread(None);
    let argv = vec![b"spie".to_vec()];
    loader::load(&mut t, bin.to_str().unwrap(), &argv, &[]).unwrap();
    let r = raw(&bin);
    assert_eq!(r.e_type, 3);
    let auxv = check_common(&t, &bin, &argv, &[]);
    let entry = auxv_get(&auxv, st::AT_ENTRY).unwrap();
    let bias = entry - r.entry;
    assert_eq!(bias % PAGE_SIZE, 0);
    assert_eq!(t.cpu.rip, entry);
    // Top-down in the mmap area, below mmap_base.
    assert!(bias < t.mem().mmap_base() && bias > t.mem().mmap_base() - (64 << 20));
    assert_eq!(auxv_get(&auxv, st::AT_BASE), Some(0));
    check_segments(&t, &r, bias);
});

child_test!(load_dynamic, || {
    let bin = build("prog_dyn", C_PROG, &["-O1"]);
    let mut t = new_thread(None);
    let argv = vec![b"dyn".to_vec()];
    loader::load(&mut t, bin.to_str().unwrap(), &argv, &[b"X=y".to_vec()]).unwrap();
    let r = raw(&bin);
    let auxv = check_common(&t, &bin, &argv, &[b"X=y".to_vec()]);
    let entry = auxv_get(&auxv, st::AT_ENTRY).unwrap();
    let bias = entry - r.entry;
    check_segments(&t, &r, bias);
    // The interpreter: RIP is its entry, AT_BASE its load address.
    let interp = r.ph.iter().find(|p| p.0 == 3).unwrap();
    let ipath =
        std::str::from_utf8(&r.bytes[interp.2 as usize..(interp.2 + interp.4 - 1) as usize])
            .unwrap()
            .to_string();
    let ir = raw(Path::new(&ipath));
    let base = auxv_get(&auxv, st::AT_BASE).unwrap();
    assert_ne!(base, 0);
    assert_eq!(base % PAGE_SIZE, 0);
    assert_eq!(t.cpu.rip, base + ir.entry);
    check_segments(&t, &ir, base);
    let maps = String::from_utf8(cetbox_linux::procfs::maps(&t)).unwrap();
    let canon = std::fs::canonicalize(&ipath).unwrap();
    assert!(maps.contains(canon.to_str().unwrap()), "{maps}");
});

child_test!(load_script_and_nostdlib, || {
    let ns = build("nostdlib", NOSTDLIB, &["-nostdlib", "-static", "-O1"]);
    let s = workdir().join("script_ns");
    std::fs::write(&s, format!("#!{} opt\n", ns.display())).unwrap();
    set_mode(&s, 0o755);
    let mut t = new_thread(None);
    loader::load(
        &mut t,
        s.to_str().unwrap(),
        &[b"script_ns".to_vec(), b"z".to_vec()],
        &[],
    )
    .unwrap();
    let r = raw(&ns);
    assert_eq!(t.cpu.rip, r.entry);
    let img = t.proc.image().clone();
    assert_eq!(
        img.argv,
        vec![
            ns.to_str().unwrap().as_bytes().to_vec(),
            b"opt".to_vec(),
            s.to_str().unwrap().as_bytes().to_vec(),
            b"z".to_vec()
        ]
    );
    // AT_EXECFN is the script, /proc/self/exe the interpreter.
    let execfn = auxv_get(&img.auxv, st::AT_EXECFN).unwrap();
    assert_eq!(read_cstr(&t, execfn), s.to_str().unwrap().as_bytes());
    assert_eq!(
        img.exe,
        std::fs::canonicalize(&ns).unwrap().to_str().unwrap()
    );
    // The first instruction bytes are mov $60,%eax.
    assert_eq!(t.mem().read_u8(t.cpu.rip).unwrap(), 0xb8);
    // A program without PT_GNU_STACK PF_X gets a non-executable stack.
    let sv = t.mem().find_vma(t.cpu.gpr[4]).unwrap();
    assert_eq!(sv.prot, 3);
});

child_test!(exec_stack, || {
    let bin = build("prog_execstack", C_PROG, &["-static", "-z", "execstack"]);
    let mut t = new_thread(None);
    loader::load(&mut t, bin.to_str().unwrap(), &[b"e".to_vec()], &[]).unwrap();
    let sv = t.mem().find_vma(t.cpu.gpr[4]).unwrap();
    assert_eq!(sv.prot, 7);
});

// ------------------------------------------------------------------ syscalls (run inside load_static)

const RW: u64 = 3;
const PRIV_ANON: u64 = 0x22;

fn mmap_checks(t: &mut Thread) {
    use m::{sys_mmap as mmap, sys_mprotect as mprotect, sys_munmap as munmap};
    let base = t.mem().mmap_base();
    let a = call(mmap, t, &[0, 3 * PAGE_SIZE, RW, PRIV_ANON, u64::MAX, 0]).unwrap();
    assert!(a < base && a.is_multiple_of(PAGE_SIZE));
    let b = call(mmap, t, &[0, PAGE_SIZE, RW, PRIV_ANON, u64::MAX, 0]).unwrap();
    assert_eq!(
        b + PAGE_SIZE,
        a,
        "top-down: directly below the previous mapping"
    );
    // Adjacent compatible anonymous mappings merge.
    let v = t.mem().find_vma(b).unwrap();
    assert_eq!((v.start, v.end), (b, a + 3 * PAGE_SIZE));
    t.mem().write_u64(a, 0x1234).unwrap();

    // Errors, in Linux's order.
    assert_eq!(
        call(mmap, t, &[0, 0, RW, PRIV_ANON, u64::MAX, 0]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mmap, t, &[0, 4096, RW, PRIV_ANON, u64::MAX, 7]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mmap, t, &[0, 4096, RW, 0x20, u64::MAX, 0]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mmap, t, &[a + 1, 4096, RW, PRIV_ANON | 0x10, u64::MAX, 0]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mmap, t, &[0x1000, 4096, RW, PRIV_ANON | 0x10, u64::MAX, 0]),
        Err(libc::EPERM)
    );
    assert_eq!(
        call(
            mmap,
            t,
            &[0x7fff_ffff_0000, 0x20000, RW, PRIV_ANON | 0x10, u64::MAX, 0]
        ),
        Err(libc::ENOMEM)
    );
    assert_eq!(
        call(mmap, t, &[a, 4096, RW, PRIV_ANON | 0x100000, u64::MAX, 0]),
        Err(libc::EEXIST)
    );
    assert_eq!(
        call(mmap, t, &[0, 4096, RW, 0x02, 9999, 0]),
        Err(libc::EBADF)
    );
    assert_eq!(
        call(mmap, t, &[0, 4096, RW, PRIV_ANON | 0x40000, u64::MAX, 0]),
        Err(libc::ENOMEM)
    );
    assert_eq!(
        call(
            mmap,
            t,
            &[0, 4096, RW, PRIV_ANON | 0x40000 | (5 << 26), u64::MAX, 0]
        ),
        Err(libc::EINVAL)
    );
    // MAP_FIXED replaces; MAP_FIXED_NOREPLACE in a free place works.
    let f = call(
        mmap,
        t,
        &[a + PAGE_SIZE, PAGE_SIZE, 1, PRIV_ANON | 0x10, u64::MAX, 0],
    )
    .unwrap();
    assert_eq!(f, a + PAGE_SIZE);
    assert_eq!(t.mem().find_vma(f).unwrap().prot, 1);
    assert_eq!(t.mem().read_u64(a).unwrap(), 0x1234);
    let free = b - 64 * PAGE_SIZE;
    assert_eq!(
        call(
            mmap,
            t,
            &[free, 4096, RW, PRIV_ANON | 0x100000, u64::MAX, 0]
        ),
        Ok(free)
    );
    // A hint that is free is honoured.
    let hint = b - 32 * PAGE_SIZE;
    assert_eq!(
        call(mmap, t, &[hint, 4096, RW, PRIV_ANON, u64::MAX, 0]),
        Ok(hint)
    );

    // Files: read-only fd with MAP_SHARED + PROT_WRITE is EACCES; directory is ENODEV.
    let exe = t.proc.image().exe.clone();
    let file = std::fs::File::open(&exe).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file) as u64;
    assert_eq!(
        call(mmap, t, &[0, 4096, RW, 0x01, fd, 0]),
        Err(libc::EACCES)
    );
    assert_eq!(
        call(mmap, t, &[0, 4096, 1, 0x03 | 0x8000_0000, fd, 0]),
        Err(libc::EOPNOTSUPP)
    );
    let dir = std::fs::File::open("/").unwrap();
    let dfd = std::os::fd::AsRawFd::as_raw_fd(&dir) as u64;
    assert_eq!(
        call(mmap, t, &[0, 4096, 1, 0x02, dfd, 0]),
        Err(libc::ENODEV)
    );
    let fm = call(mmap, t, &[0, 8192, 1, 0x02, fd, 4096]).unwrap();
    let bytes = std::fs::read(&exe).unwrap();
    let mut got = vec![0u8; 16];
    t.mem().read_bytes(fm, &mut got).unwrap();
    assert_eq!(&got[..], &bytes[4096..4112]);
    let line = cetbox_linux::procfs::maps_line(&t.mem().find_vma(fm).unwrap(), (0, 0));
    assert!(line.ends_with(&format!("{exe}\n")), "{line}");
    assert!(line.contains(" r--p 00001000 "), "{line}");
    assert_eq!(line.find('/'), Some(73), "{line}");

    // mprotect splits and re-merges.
    let p = call(mmap, t, &[0, 3 * PAGE_SIZE, RW, PRIV_ANON, u64::MAX, 0]).unwrap();
    let n_before = t.mem().vmas().len();
    assert_eq!(call(mprotect, t, &[p + PAGE_SIZE, PAGE_SIZE, 1]), Ok(0));
    assert_eq!(t.mem().vmas().len(), n_before + 2);
    assert!(t.mem().write_u8(p + PAGE_SIZE, 1).is_err());
    assert!(t.mem().write_u8(p, 1).is_ok());
    assert_eq!(call(mprotect, t, &[p + PAGE_SIZE, PAGE_SIZE, RW]), Ok(0));
    assert_eq!(t.mem().vmas().len(), n_before);
    assert_eq!(call(mprotect, t, &[p + 1, PAGE_SIZE, 1]), Err(libc::EINVAL));
    assert_eq!(call(mprotect, t, &[p, PAGE_SIZE, 0x10]), Err(libc::EINVAL));
    assert_eq!(call(mprotect, t, &[p, 0, 1]), Ok(0));
    assert_eq!(
        call(mprotect, t, &[0x10000, PAGE_SIZE, 1]),
        Err(libc::ENOMEM)
    );
    assert_eq!(
        call(mprotect, t, &[p, PAGE_SIZE, 1 | 0x0100_0000]),
        Err(libc::EINVAL)
    );
    // GROWSDOWN on the stack extends the change down to the VMA start.
    let sp = t.cpu.gpr[4] & !(PAGE_SIZE - 1);
    assert_eq!(call(mprotect, t, &[sp, PAGE_SIZE, RW | 0x0100_0000]), Ok(0));

    // munmap splits; errors.
    assert_eq!(call(munmap, t, &[p + PAGE_SIZE, PAGE_SIZE]), Ok(0));
    assert!(t.mem().find_vma(p + PAGE_SIZE).is_none());
    assert_eq!(t.mem().find_vma(p).unwrap().end, p + PAGE_SIZE);
    assert_eq!(
        t.mem().find_vma(p + 2 * PAGE_SIZE).unwrap().start,
        p + 2 * PAGE_SIZE
    );
    assert_eq!(call(munmap, t, &[p + 1, PAGE_SIZE]), Err(libc::EINVAL));
    assert_eq!(call(munmap, t, &[p, 0]), Err(libc::EINVAL));
    assert_eq!(call(munmap, t, &[p + PAGE_SIZE, PAGE_SIZE]), Ok(0));

    // madvise(MADV_DONTNEED) zeroes private anonymous memory.
    t.mem().write_u64(p, 77).unwrap();
    assert_eq!(call(m::sys_madvise, t, &[p, PAGE_SIZE, 4]), Ok(0));
    assert_eq!(t.mem().read_u64(p).unwrap(), 0);
    assert_eq!(
        call(m::sys_madvise, t, &[p, PAGE_SIZE, 999]),
        Err(libc::EINVAL)
    );
    assert!(
        t.mem().find_vma(p + PAGE_SIZE).is_none(),
        "{:x?}",
        t.mem().vmas()
    );
    assert_eq!(
        call(m::sys_madvise, t, &[p, 2 * PAGE_SIZE, 0]),
        Err(libc::ENOMEM)
    );
    // mincore writes one byte per page.
    let vec = call(mmap, t, &[0, PAGE_SIZE, RW, PRIV_ANON, u64::MAX, 0]).unwrap();
    assert_eq!(call(m::sys_mincore, t, &[p, PAGE_SIZE, vec]), Ok(0));
    assert_eq!(
        vec,
        p + PAGE_SIZE,
        "the highest free hole is the one just made"
    );
    assert_eq!(
        call(m::sys_mincore, t, &[0x10000, PAGE_SIZE, vec]),
        Err(libc::ENOMEM)
    );
    assert_eq!(
        call(m::sys_mincore, t, &[p, PAGE_SIZE, 0x10]),
        Err(libc::EFAULT)
    );
    assert_eq!(call(m::sys_mlockall, t, &[0]), Err(libc::EINVAL));
    assert_eq!(call(m::sys_mlockall, t, &[1]), Ok(0));
    assert_eq!(call(m::sys_msync, t, &[p, PAGE_SIZE, 5]), Err(libc::EINVAL));
    assert_eq!(call(m::sys_msync, t, &[p, PAGE_SIZE, 8]), Err(libc::EINVAL));
    assert_eq!(call(m::sys_msync, t, &[p, PAGE_SIZE, 4]), Ok(0));
}

fn brk_checks(t: &mut Thread) {
    use m::sys_brk as brk;
    let start = t.proc.image().brk_start;
    assert_eq!(call(brk, t, &[0]), Ok(start));
    assert_eq!(call(brk, t, &[start + 10000]), Ok(start + 10000));
    let v = t.mem().find_vma(start).unwrap();
    assert_eq!(v.kind, VmaKind::Heap);
    assert_eq!(v.end, start + 3 * PAGE_SIZE);
    t.mem().write_u8(start + 9999, 1).unwrap();
    assert_eq!(call(brk, t, &[start + 20000]), Ok(start + 20000));
    assert_eq!(t.mem().find_vma(start).unwrap().end, start + 5 * PAGE_SIZE);
    // Below the start: the current break.
    assert_eq!(call(brk, t, &[start - 1]), Ok(start + 20000));
    // Shrinking unmaps.
    assert_eq!(call(brk, t, &[start + 100]), Ok(start + 100));
    assert!(t.mem().find_vma(start + PAGE_SIZE).is_none());
    let maps = String::from_utf8(cetbox_linux::procfs::maps(t)).unwrap();
    assert!(maps.lines().any(|l| l.ends_with("[heap]")), "{maps}");
    // An absurd break fails, returning the current one.
    assert_eq!(call(brk, t, &[1 << 46]), Ok(start + 100));
}

fn mremap_checks(t: &mut Thread) {
    use m::{sys_mmap as mmap, sys_mremap as mremap};
    let a = call(mmap, t, &[0, 2 * PAGE_SIZE, RW, PRIV_ANON, u64::MAX, 0]).unwrap();
    t.mem().write_u64(a, 0xabcdef).unwrap();
    t.mem().write_u64(a + PAGE_SIZE, 0x55).unwrap();
    // Shrink in place.
    assert_eq!(call(mremap, t, &[a, 2 * PAGE_SIZE, PAGE_SIZE, 0]), Ok(a));
    assert!(t.mem().find_vma(a + PAGE_SIZE).is_none());
    // Grow in place (the space above is free now).
    assert_eq!(call(mremap, t, &[a, PAGE_SIZE, 2 * PAGE_SIZE, 0]), Ok(a));
    assert_eq!(t.mem().read_u64(a + PAGE_SIZE).unwrap(), 0);
    // Block growth with a mapping above, then move.
    let blk = call(
        mmap,
        t,
        &[
            a + 2 * PAGE_SIZE,
            PAGE_SIZE,
            1,
            PRIV_ANON | 0x10,
            u64::MAX,
            0,
        ],
    )
    .unwrap();
    assert_eq!(blk, a + 2 * PAGE_SIZE);
    assert_eq!(
        call(mremap, t, &[a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 0]),
        Err(libc::ENOMEM)
    );
    let nb = call(mremap, t, &[a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, 1]).unwrap();
    assert_ne!(nb, a);
    assert_eq!(t.mem().read_u64(nb).unwrap(), 0xabcdef);
    assert!(t.mem().find_vma(a).is_none());
    assert_eq!(t.mem().find_vma(nb).unwrap().end, nb + 4 * PAGE_SIZE);
    // MREMAP_FIXED to a chosen place.
    let dest = nb - 64 * PAGE_SIZE;
    assert_eq!(
        call(mremap, t, &[nb, 4 * PAGE_SIZE, 4 * PAGE_SIZE, 3, dest]),
        Ok(dest)
    );
    assert_eq!(t.mem().read_u64(dest).unwrap(), 0xabcdef);
    // DONTUNMAP leaves the old range mapped and empty.
    let d2 = call(mremap, t, &[dest, 4 * PAGE_SIZE, 4 * PAGE_SIZE, 1 | 4, 0]).unwrap();
    assert_eq!(t.mem().read_u64(d2).unwrap(), 0xabcdef);
    assert_eq!(t.mem().read_u64(dest).unwrap(), 0);
    // Errors.
    assert_eq!(
        call(mremap, t, &[dest, PAGE_SIZE, PAGE_SIZE, 8]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mremap, t, &[dest, PAGE_SIZE, PAGE_SIZE, 2, 0]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mremap, t, &[dest, PAGE_SIZE, 2 * PAGE_SIZE, 5]),
        Err(libc::EINVAL)
    );
    assert_eq!(
        call(mremap, t, &[dest + 1, PAGE_SIZE, PAGE_SIZE, 0]),
        Err(libc::EINVAL)
    );
    assert_eq!(call(mremap, t, &[dest, PAGE_SIZE, 0, 0]), Err(libc::EINVAL));
    assert_eq!(
        call(mremap, t, &[0x20000, PAGE_SIZE, PAGE_SIZE, 0]),
        Err(libc::EFAULT)
    );
}

fn procfs_checks(t: &mut Thread, bin: &Path) {
    use cetbox_linux::procfs;
    let canon = std::fs::canonicalize(bin).unwrap();
    let pid = t.proc.pid;
    assert_eq!(
        procfs::readlink(t, b"/proc/self/exe").unwrap(),
        canon.to_str().unwrap().as_bytes()
    );
    assert_eq!(
        procfs::readlink(t, format!("/proc/{pid}/exe").as_bytes()).unwrap(),
        canon.to_str().unwrap().as_bytes()
    );
    assert!(procfs::readlink(t, b"/proc/thread-self/exe").is_some());
    assert!(procfs::readlink(t, b"/proc/1/exe").is_none() || pid == 1);
    assert_eq!(
        procfs::readlink(t, b"/proc/self").unwrap(),
        pid.to_string().as_bytes()
    );

    let read_all = |fd: i32| -> Vec<u8> {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        // SAFETY: the fd was just returned by procfs::open and is owned here.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let fd = procfs::open(t, b"/proc/self/maps", libc::O_RDONLY)
        .unwrap()
        .unwrap() as i32;
    let maps = String::from_utf8(read_all(fd)).unwrap();
    let mut n_exe = 0;
    for l in maps.lines() {
        // start-end perms offset dev inode [name at column 73]
        let f: Vec<&str> = l.split_whitespace().collect();
        assert!(f.len() >= 5, "{l}");
        let (s, e) = f[0].split_once('-').unwrap();
        assert!(
            s.len() >= 8
                && u64::from_str_radix(s, 16).is_ok()
                && u64::from_str_radix(e, 16).is_ok()
        );
        assert_eq!(f[1].len(), 4);
        assert_eq!(f[2].len(), 8);
        assert_eq!(f[3].len(), 5);
        if f.len() > 5 {
            assert_eq!(l.find(f[5]), Some(73), "{l}");
        } else {
            // An unnamed (anonymous) mapping: device 00:00, inode 0, and the trailing space
            // Linux's show_vma_header_prefix leaves when no name follows (fs/proc/task_mmu.c).
            assert!(l.ends_with(" 00:00 0 "), "{l:?}");
        }
        if l.ends_with(canon.to_str().unwrap()) {
            n_exe += 1;
        }
    }
    assert!(n_exe >= 2, "{maps}");
    assert!(maps.lines().any(|l| l.ends_with("[stack]")), "{maps}");
    assert_eq!(
        procfs::open(t, b"/proc/self/maps", libc::O_RDWR).unwrap(),
        Err(cetbox_linux::Errno::EACCES)
    );

    let fd = procfs::open(t, b"/proc/self/cmdline", libc::O_RDONLY)
        .unwrap()
        .unwrap() as i32;
    assert_eq!(read_all(fd), b"prog\0arg one\0\0");
    let fd = procfs::open(t, b"/proc/self/auxv", libc::O_RDONLY)
        .unwrap()
        .unwrap() as i32;
    let aux = read_all(fd);
    let img_aux = t.proc.image().auxv.clone();
    assert_eq!(aux.len(), img_aux.len() * 16);
    assert_eq!(le64(&aux, 0), img_aux[0].0);
    let fd = procfs::open(t, b"/proc/self/status", libc::O_RDONLY)
        .unwrap()
        .unwrap() as i32;
    let status = String::from_utf8(read_all(fd)).unwrap();
    assert!(status.starts_with("Name:\tprog_static\n"), "{status}");
    assert!(status.contains(&format!("\nTgid:\t{pid}\n")));
    assert!(
        status.ends_with("x86_Thread_features:\t\nx86_Thread_features_locked:\t\n"),
        "{status}"
    );
    assert!(status.contains("\nVmStk:\t"));
    t.shstk.features = 1;
    t.shstk.locked = u64::MAX;
    let status = String::from_utf8(procfs::status(t)).unwrap();
    assert!(status
        .ends_with("x86_Thread_features:\tshstk \nx86_Thread_features_locked:\tshstk wrss \n"));
    t.shstk = Default::default();

    // smaps: a shadow-stack VMA shows rw-p in maps and `ss` last in VmFlags.
    let mut req = cetbox_mem::MapRequest::anonymous(0, 2 * PAGE_SIZE, 3, VmaKind::ShadowStack);
    req.addr = 0;
    let ss = t.mem().map(&req).unwrap();
    let sm = String::from_utf8(procfs::smaps(t)).unwrap();
    let start = format!("{ss:08x}-");
    // The shadow stack's block: its header line through its own VmFlags line (the last line
    // of every smaps entry), and nothing of the next entry.
    let block: Vec<&str> = sm
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&start))
        .collect();
    let end = block
        .iter()
        .position(|l| l.starts_with("VmFlags:"))
        .expect("the block ends with VmFlags");
    let block = &block[..=end];
    assert!(
        block[0].ends_with(" rw-p 00000000 00:00 0 \n"),
        "{}",
        block[0]
    );
    assert_eq!(block[1], "Size:                  8 kB\n");
    assert_eq!(
        block.iter().filter(|l| l.contains(" kB\n")).count(),
        block.len() - 3,
        "every line between the header and THPeligible/VmFlags is a size: {block:?}"
    );
    assert_eq!(block[end], "VmFlags: rd wr mr mw me ac ss \n");
    let stack_flags = cetbox_linux::procfs::vm_flags(&t.mem().find_vma(t.cpu.gpr[4]).unwrap());
    assert_eq!(stack_flags, "VmFlags: rd wr mr mw me gd ac \n");
    // /proc/self/mem: forced writes reach read-only and shadow-stack pages.
    assert_eq!(
        cetbox_linux::procfs::mem_access(t, ss, &mut 0x1122u64.to_le_bytes(), true),
        Ok(8)
    );
    assert_eq!(t.mem().read_u64(ss).unwrap(), 0x1122);
    assert!(
        t.mem().write_u64(ss, 1).is_err(),
        "still a shadow-stack page"
    );
    let mut b = [0u8; 8];
    assert_eq!(
        cetbox_linux::procfs::mem_access(t, 0x10000, &mut b, false),
        Err(cetbox_linux::Errno::EIO)
    );
    t.mem().unmap(ss, 2 * PAGE_SIZE).unwrap();
}
