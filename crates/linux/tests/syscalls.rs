//! Syscall tests: a guest thread in a shared address space (only one may exist per host
//! process), registers set as the SYSCALL instruction would leave them, results checked in RAX
//! and guest memory against what the host reports independently.

use cetbox_linux::process::{ExitRequest, Process, Thread};
use cetbox_linux::syscalls::{self, table};
use cetbox_linux::Options;
use cetbox_mem::{MapRequest, VmaKind};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

static PROC: OnceLock<Arc<Process>> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

struct Guest {
    t: Thread,
    _g: MutexGuard<'static, ()>,
}

fn guest() -> Guest {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = PROC.get_or_init(|| {
        // The baseline CPU (x87 and SSE state only), whose XSTATE answers these tests spell
        // out.
        let opts = Options {
            cpu_level: cetbox_cpu::CpuLevel::X86_64,
            ..Options::default()
        };
        Process::new(Arc::new(opts), None).expect("address space")
    });
    let tid = p.pid;
    Guest {
        t: Thread::new(p.clone(), tid),
        _g: g,
    }
}

const RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;
const RO: u32 = libc::PROT_READ as u32;

impl Guest {
    fn map(&self, len: u64, prot: u32) -> u64 {
        self.t
            .mem()
            .map(&MapRequest::anonymous(0, len, prot, VmaKind::Normal))
            .expect("map")
    }

    /// Runs syscall `name` with `args` and returns RAX as a signed value.
    fn sys(&mut self, name: &str, args: &[u64]) -> i64 {
        let nr = table::number(name).expect("known syscall");
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let g = &mut self.t.cpu.gpr;
        g[0] = nr;
        g[7] = a[0];
        g[6] = a[1];
        g[2] = a[2];
        g[10] = a[3];
        g[8] = a[4];
        g[9] = a[5];
        syscalls::handle(&mut self.t);
        self.t.cpu.gpr[0] as i64
    }

    /// Puts a NUL-terminated string in fresh guest memory.
    fn cstr(&self, s: &str) -> u64 {
        let a = self.map(s.len() as u64 + 1, RW);
        self.t.mem().write_bytes(a, s.as_bytes()).unwrap();
        self.t.mem().write_u8(a + s.len() as u64, 0).unwrap();
        a
    }

    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.t.mem().read_bytes(addr, &mut v).unwrap();
        v
    }
}

fn e(errno: i32) -> i64 {
    -(errno as i64)
}

const AT_FDCWD: u64 = -100i64 as u64;

/// A scratch directory removed when dropped.
struct Tmp(std::path::PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Tmp {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

fn tmpdir(tag: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("cetbox-sys-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

/// A file holding `data` inside a scratch directory (kept alive by the returned guard).
fn file_with(tag: &str, data: &[u8]) -> (Tmp, std::path::PathBuf) {
    let d = tmpdir(tag);
    let p = d.join("f");
    std::fs::write(&p, data).unwrap();
    (d, p)
}

#[test]
fn syscall_table() {
    use cetbox_linux::errno::Errno;
    // Row i is syscall i, so no number can appear twice or be missing.
    for (i, row) in table::TABLE.iter().enumerate() {
        assert_eq!(row.nr as usize, i, "row {i} holds syscall {}", row.nr);
        assert!(
            row.run.is_none() || !row.name.is_empty(),
            "handler without a name at {i}"
        );
        assert!(row.args.len() <= 6, "{}: more than six arguments", row.name);
        assert!(
            row.args.bytes().all(|c| b"PDFNOBX".contains(&c)),
            "{}: unknown argument format {:?}",
            row.name,
            row.args
        );
    }
    // No name twice.
    let mut names: Vec<&str> = table::TABLE
        .iter()
        .map(|r| r.name)
        .filter(|n| !n.is_empty())
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a name appears twice");
    // Spot checks against the ABI (arch/x86/entry/syscalls/syscall_64.tbl).
    assert_eq!(table::name(0), "read");
    assert_eq!(table::name(231), "exit_group");
    assert_eq!(table::name(400), "syscall_0x190");
    assert_eq!(table::number("map_shadow_stack"), Some(453));
    assert_eq!(table::number("futex_waitv"), Some(449));
    assert_eq!(table::number("mseal"), Some(462));
    assert_eq!(
        table::get(257).unwrap().args.len(),
        4,
        "openat takes four arguments"
    );
    assert!(table::get(0).unwrap().restartable());
    assert!(!table::get(3).unwrap().restartable());
    assert!(table::get(11).unwrap().unmaps(&[0; 6]));
    assert!(!table::get(9).unwrap().unmaps(&[0; 6]));
    assert!(table::get(9)
        .unwrap()
        .unmaps(&[0, 0, 0, libc::MAP_FIXED as u64, 0, 0]));
    assert_eq!(Errno(1).name(), "EPERM");
    assert_eq!(Errno(14).name(), "EFAULT");
    assert_eq!(Errno(133).name(), "EHWPOISON");
}

#[test]
fn read_efault_and_short_count() {
    let mut g = guest();
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let (_d, path) = file_with("efault", &data);
    let p = g.cstr(path.to_str().unwrap());
    let fd = g.sys("openat", &[AT_FDCWD, p, libc::O_RDONLY as u64]);
    assert!(fd >= 0, "openat: {fd}");
    let fd = fd as u64;
    // Unmapped buffer: an address nothing maps (the first page).
    assert_eq!(g.sys("read", &[fd, 0x1000, 16]), e(libc::EFAULT));
    // Read-only buffer.
    let ro = g.map(4096, RO);
    assert_eq!(g.sys("read", &[fd, ro, 16]), e(libc::EFAULT));
    // Buffer whose second page is read-only: Linux copies up to the bad page.
    let two = g.map(8192, RW);
    g.t.mem().protect(two + 4096, 4096, RO).unwrap();
    assert_eq!(g.sys("read", &[fd, two + 4096 - 100, 1000]), 100);
    assert_eq!(g.bytes(two + 4096 - 100, 100), data[..100].to_vec());
    // Zero-length reads touch nothing.
    assert_eq!(g.sys("read", &[fd, 0x1000, 0]), 0);
    assert_eq!(g.sys("close", &[fd]), 0);
}

#[test]
fn bad_descriptors() {
    let mut g = guest();
    let b = g.map(4096, RW);
    assert_eq!(g.sys("read", &[9999, b, 1]), e(libc::EBADF));
    assert_eq!(g.sys("close", &[-1i64 as u64]), e(libc::EBADF));
    assert_eq!(g.sys("fstat", &[9998, b]), e(libc::EBADF));
    // A descriptor cetbox keeps for itself is invisible to the guest.
    // SAFETY: plain descriptor calls on our own process.
    let own = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 900) };
    assert!(own >= 900);
    assert!(syscalls::fs::register_private_fd(own));
    assert_eq!(g.sys("close", &[own as u64]), e(libc::EBADF));
    assert_eq!(g.sys("write", &[own as u64, b, 1]), e(libc::EBADF));
    assert_eq!(g.sys("dup2", &[1, own as u64]), e(libc::EBADF));
    // close_range over it leaves it open.
    let hi = g.sys("fcntl", &[1, libc::F_DUPFD as u64, own as u64 - 1]);
    assert_eq!(hi, own as i64 - 1);
    assert_eq!(
        g.sys("close_range", &[own as u64 - 1, own as u64 + 1, 0]),
        0
    );
    // SAFETY: F_GETFD on a descriptor number.
    assert!(unsafe { libc::fcntl(own, libc::F_GETFD) } >= 0);
    // SAFETY: as above.
    assert!(unsafe { libc::fcntl(own - 1, libc::F_GETFD) } < 0);
    syscalls::fs::unregister_private_fd(own);
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(own) };
}

#[test]
fn enoent_and_path_faults() {
    let mut g = guest();
    let p = g.cstr("/nonexistent-cetbox/x");
    assert_eq!(
        g.sys("openat", &[AT_FDCWD, p, libc::O_RDONLY as u64]),
        e(libc::ENOENT)
    );
    assert_eq!(g.sys("open", &[0x1000, 0]), e(libc::EFAULT));
    let b = g.map(4096, RW);
    assert_eq!(g.sys("stat", &[p, b]), e(libc::ENOENT));
    // A path without NUL within PATH_MAX.
    let long = g.map(8192, RW);
    g.t.mem().write_bytes(long, &[b'a'; 8192]).unwrap();
    assert_eq!(g.sys("open", &[long, 0]), e(libc::ENAMETOOLONG));
}

#[test]
fn newfstatat_layout() {
    let mut g = guest();
    let (_d, path) = file_with("stat", &[7u8; 1234]);
    let md = std::fs::metadata(&path).unwrap();
    let p = g.cstr(path.to_str().unwrap());
    let b = g.map(4096, RW);
    assert_eq!(g.sys("newfstatat", &[AT_FDCWD, p, b, 0]), 0);
    let m = g.t.mem();
    assert_eq!(m.read_u64(b).unwrap(), md.dev());
    assert_eq!(m.read_u64(b + 8).unwrap(), md.ino());
    assert_eq!(m.read_u64(b + 16).unwrap(), md.nlink());
    assert_eq!(m.read_u32(b + 24).unwrap(), md.mode());
    assert_eq!(m.read_u32(b + 28).unwrap(), md.uid());
    assert_eq!(m.read_u64(b + 48).unwrap(), 1234);
    assert_eq!(m.read_u64(b + 88).unwrap() as i64, md.mtime());
    // The whole 144-byte struct must be writable.
    let ro = g.map(4096, RO);
    assert_eq!(g.sys("newfstatat", &[AT_FDCWD, p, ro, 0]), e(libc::EFAULT));
    let edge = g.map(8192, RW);
    g.t.mem().protect(edge + 4096, 4096, RO).unwrap();
    assert_eq!(
        g.sys("newfstatat", &[AT_FDCWD, p, edge + 4096 - 100, 0]),
        e(libc::EFAULT)
    );
    assert_eq!(g.sys("newfstatat", &[AT_FDCWD, p, edge + 4096 - 144, 0]), 0);
}

#[test]
fn statx_size() {
    let mut g = guest();
    let (_d, path) = file_with("statx", &[1u8; 4321]);
    let p = g.cstr(path.to_str().unwrap());
    let b = g.map(4096, RW);
    let mask = (libc::STATX_SIZE | libc::STATX_MODE) as u64;
    assert_eq!(g.sys("statx", &[AT_FDCWD, p, 0, mask, b]), 0);
    let m = g.t.mem();
    assert_ne!(m.read_u32(b).unwrap() & libc::STATX_SIZE, 0);
    assert_eq!(m.read_u64(b + 40).unwrap(), 4321);
    assert_eq!(
        m.read_u16(b + 28).unwrap() as u32 & libc::S_IFMT,
        libc::S_IFREG
    );
    assert_eq!(
        g.sys("statx", &[AT_FDCWD, p, 0, mask, 0x1000]),
        e(libc::EFAULT)
    );
}

#[test]
fn getdents64_lists_directory() {
    let mut g = guest();
    let d = tmpdir("dents");
    for n in ["a", "bb", "ccc"] {
        std::fs::write(d.join(n), n).unwrap();
    }
    let p = g.cstr(d.to_str().unwrap());
    let fd = g.sys(
        "openat",
        &[AT_FDCWD, p, (libc::O_RDONLY | libc::O_DIRECTORY) as u64],
    );
    assert!(fd >= 0);
    let b = g.map(4096, RW);
    let mut names = Vec::new();
    loop {
        let n = g.sys("getdents64", &[fd as u64, b, 4096]);
        assert!(n >= 0, "getdents64: {n}");
        if n == 0 {
            break;
        }
        let data = g.bytes(b, n as usize);
        let mut off = 0;
        while off < data.len() {
            let reclen = u16::from_le_bytes([data[off + 16], data[off + 17]]) as usize;
            let name = &data[off + 19..off + reclen];
            let z = name.iter().position(|&c| c == 0).unwrap();
            names.push(String::from_utf8(name[..z].to_vec()).unwrap());
            off += reclen;
        }
    }
    names.sort();
    assert_eq!(names, [".", "..", "a", "bb", "ccc"]);
    // A buffer too small for one record.
    assert_eq!(g.sys("lseek", &[fd as u64, 0, 0]), 0);
    assert_eq!(g.sys("getdents64", &[fd as u64, b, 8]), e(libc::EINVAL));
    assert_eq!(g.sys("close", &[fd as u64]), 0);
}

#[test]
fn pipe_round_trip_and_vectors() {
    let mut g = guest();
    let fds = g.map(4096, RW);
    assert_eq!(g.sys("pipe2", &[fds, libc::O_CLOEXEC as u64]), 0);
    let r = g.t.mem().read_u32(fds).unwrap() as u64;
    let w = g.t.mem().read_u32(fds + 4).unwrap() as u64;
    let src = g.cstr("hello, pipe");
    assert_eq!(g.sys("write", &[w, src, 11]), 11);
    let dst = g.map(4096, RW);
    assert_eq!(g.sys("read", &[r, dst, 100]), 11);
    assert_eq!(g.bytes(dst, 11), b"hello, pipe");
    // writev with two pieces, readv into two.
    let iov = g.map(4096, RW);
    let m = g.t.mem();
    m.write_u64(iov, src).unwrap();
    m.write_u64(iov + 8, 5).unwrap();
    m.write_u64(iov + 16, src + 7).unwrap();
    m.write_u64(iov + 24, 4).unwrap();
    assert_eq!(g.sys("writev", &[w, iov, 2]), 9);
    let m = g.t.mem();
    m.write_u64(iov + 32, dst).unwrap();
    m.write_u64(iov + 40, 3).unwrap();
    m.write_u64(iov + 48, dst + 100).unwrap();
    m.write_u64(iov + 56, 100).unwrap();
    assert_eq!(g.sys("readv", &[r, iov + 32, 2]), 9);
    assert_eq!(g.bytes(dst, 3), b"hel");
    assert_eq!(g.bytes(dst + 100, 6), b"lopipe");
    // An iovec array that is not readable, and too many entries.
    assert_eq!(g.sys("writev", &[w, 0x1000, 1]), e(libc::EFAULT));
    assert_eq!(g.sys("writev", &[w, iov, 1025]), e(libc::EINVAL));
    // A bad pipe result pointer creates nothing.
    let ro = g.map(4096, RO);
    assert_eq!(g.sys("pipe", &[ro]), e(libc::EFAULT));
    g.sys("close", &[r]);
    g.sys("close", &[w]);
}

#[test]
fn lseek_and_pread() {
    let mut g = guest();
    let (_d, path) = file_with("lseek", b"0123456789");
    let p = g.cstr(path.to_str().unwrap());
    let fd = g.sys("open", &[p, libc::O_RDONLY as u64]) as u64;
    assert_eq!(g.sys("lseek", &[fd, 0, libc::SEEK_END as u64]), 10);
    assert_eq!(g.sys("lseek", &[fd, 5, libc::SEEK_SET as u64]), 5);
    let b = g.map(4096, RW);
    assert_eq!(g.sys("read", &[fd, b, 3]), 3);
    assert_eq!(g.bytes(b, 3), b"567");
    assert_eq!(g.sys("pread64", &[fd, b, 2, 1]), 2);
    assert_eq!(g.bytes(b, 2), b"12");
    assert_eq!(g.sys("lseek", &[fd, -1i64 as u64, 0]), e(libc::EINVAL));
    assert_eq!(g.sys("lseek", &[fd, 0, 99]), e(libc::EINVAL));
    g.sys("close", &[fd]);
}

#[test]
fn fcntl_and_dup() {
    let mut g = guest();
    let fd = g.sys("dup", &[1]);
    assert!(fd > 2);
    assert_eq!(g.sys("fcntl", &[fd as u64, libc::F_GETFD as u64]), 0);
    assert_eq!(
        g.sys(
            "fcntl",
            &[fd as u64, libc::F_SETFD as u64, libc::FD_CLOEXEC as u64]
        ),
        0
    );
    assert_eq!(
        g.sys("fcntl", &[fd as u64, libc::F_GETFD as u64]),
        libc::FD_CLOEXEC as i64
    );
    let ro = g.map(4096, RO);
    assert_eq!(
        g.sys("fcntl", &[fd as u64, libc::F_GETLK as u64, ro]),
        e(libc::EFAULT)
    );
    assert_eq!(g.sys("fcntl", &[fd as u64, 0x7777]), e(libc::EINVAL));
    let d3 = g.sys("dup3", &[fd as u64, 200, libc::O_CLOEXEC as u64]);
    assert_eq!(d3, 200);
    g.sys("close", &[200]);
    g.sys("close", &[fd as u64]);
}

#[test]
fn cwd_and_readlink() {
    let mut g = guest();
    let b = g.map(4096, RW);
    let n = g.sys("getcwd", &[b, 4096]);
    let cwd = std::env::current_dir().unwrap();
    let want = cwd.to_str().unwrap().as_bytes();
    assert_eq!(n as usize, want.len() + 1);
    assert_eq!(g.bytes(b, want.len()), want);
    assert_eq!(g.sys("getcwd", &[b, 1]), e(libc::ERANGE));
    let d = tmpdir("link");
    std::os::unix::fs::symlink("target-name", d.join("l")).unwrap();
    let p = g.cstr(d.join("l").to_str().unwrap());
    assert_eq!(g.sys("readlink", &[p, b, 4096]), 11);
    assert_eq!(g.bytes(b, 11), b"target-name");
    // Truncated to the buffer, without NUL.
    assert_eq!(g.sys("readlink", &[p, b, 3]), 3);
    assert_eq!(g.sys("readlink", &[p, b, 0]), e(libc::EINVAL));
}

#[test]
fn uname_machine() {
    let mut g = guest();
    let b = g.map(4096, RW);
    assert_eq!(g.sys("uname", &[b]), 0);
    let u = g.bytes(b, 390);
    assert_eq!(&u[..6], b"Linux\0");
    assert_eq!(&u[260..267], b"x86_64\0");
    assert_eq!(g.sys("uname", &[0x1000]), e(libc::EFAULT));
}

#[test]
fn clocks() {
    let mut g = guest();
    let b = g.map(4096, RW);
    assert_eq!(
        g.sys("clock_gettime", &[libc::CLOCK_MONOTONIC as u64, b]),
        0
    );
    let (s1, n1) = (
        g.t.mem().read_u64(b).unwrap(),
        g.t.mem().read_u64(b + 8).unwrap(),
    );
    assert!(n1 < 1_000_000_000);
    assert_eq!(
        g.sys("clock_gettime", &[libc::CLOCK_MONOTONIC as u64, b + 16]),
        0
    );
    let (s2, n2) = (
        g.t.mem().read_u64(b + 16).unwrap(),
        g.t.mem().read_u64(b + 24).unwrap(),
    );
    assert!((s2, n2) >= (s1, n1));
    assert_eq!(
        g.sys("clock_gettime", &[libc::CLOCK_MONOTONIC as u64, 0x1000]),
        e(libc::EFAULT)
    );
    assert_eq!(g.sys("clock_gettime", &[999, b]), e(libc::EINVAL));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t = g.sys("time", &[0]);
    assert!((t - now).abs() <= 2);
    // A 1 ms sleep, relative and absolute.
    g.t.mem().write_u64(b + 32, 0).unwrap();
    g.t.mem().write_u64(b + 40, 1_000_000).unwrap();
    assert_eq!(g.sys("nanosleep", &[b + 32, 0]), 0);
    g.t.mem().write_u64(b + 40, 2_000_000_000).unwrap();
    assert_eq!(g.sys("nanosleep", &[b + 32, 0]), e(libc::EINVAL));
}

#[test]
fn rlimits() {
    let mut g = guest();
    let b = g.map(4096, RW);
    // SAFETY: rlimit is plain integers; all-zero is a valid value.
    let mut want: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit fills the struct.
    unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut want) };
    assert_eq!(g.sys("prlimit64", &[0, libc::RLIMIT_STACK as u64, 0, b]), 0);
    assert_eq!(g.t.mem().read_u64(b).unwrap(), want.rlim_cur);
    assert_eq!(g.t.mem().read_u64(b + 8).unwrap(), want.rlim_max);
    assert_eq!(g.sys("getrlimit", &[libc::RLIMIT_STACK as u64, b + 16]), 0);
    assert_eq!(g.t.mem().read_u64(b + 16).unwrap(), want.rlim_cur);
    let ro = g.map(4096, RO);
    assert_eq!(
        g.sys("getrlimit", &[libc::RLIMIT_STACK as u64, ro]),
        e(libc::EFAULT)
    );
}

#[test]
fn arch_prctl_fs_gs() {
    let mut g = guest();
    let b = g.map(4096, RW);
    assert_eq!(g.sys("arch_prctl", &[0x1002, 0x1234_5000]), 0);
    assert_eq!(g.t.cpu.fs_base, 0x1234_5000);
    assert_eq!(g.sys("arch_prctl", &[0x1003, b]), 0);
    assert_eq!(g.t.mem().read_u64(b).unwrap(), 0x1234_5000);
    assert_eq!(
        g.sys("arch_prctl", &[0x1002, 0x8000_0000_0000]),
        e(libc::EPERM)
    );
    assert_eq!(g.t.cpu.fs_base, 0x1234_5000);
    assert_eq!(g.sys("arch_prctl", &[0x1001, 0x7fff_ffff_e000]), 0);
    assert_eq!(g.t.cpu.gs_base, 0x7fff_ffff_e000);
    assert_eq!(
        g.sys("arch_prctl", &[0x1001, 0x7fff_ffff_f000]),
        e(libc::EPERM)
    );
    assert_eq!(g.sys("arch_prctl", &[0x1004, 0x1000]), e(libc::EFAULT));
    // The option is an int: upper bits are ignored.
    assert_eq!(g.sys("arch_prctl", &[0x1_0000_1003, b + 8]), 0);
    assert_eq!(g.t.mem().read_u64(b + 8).unwrap(), 0x1234_5000);
    // XSTATE: x87 and SSE only.
    assert_eq!(g.sys("arch_prctl", &[0x1021, b]), 0);
    assert_eq!(g.t.mem().read_u64(b).unwrap(), 3);
    assert_eq!(g.sys("arch_prctl", &[0x1023, 18]), e(libc::EOPNOTSUPP));
    assert_eq!(g.sys("arch_prctl", &[0x1023, 1]), 0);
    assert_eq!(g.sys("arch_prctl", &[0x1023, 64]), e(libc::EINVAL));
    assert_eq!(g.sys("arch_prctl", &[0x1011, 0]), 1);
    assert_eq!(g.sys("arch_prctl", &[0x9999, 0]), e(libc::EINVAL));
}

#[test]
fn process_identity_and_exit() {
    let mut g = guest();
    assert_eq!(g.sys("getpid", &[]), std::process::id() as i64);
    let tid = g.t.tid as i64;
    assert_eq!(g.sys("gettid", &[]), tid);
    assert_eq!(g.sys("set_tid_address", &[0x5000]), tid);
    assert_eq!(g.t.clear_child_tid, 0x5000);
    assert_eq!(g.sys("set_robust_list", &[0x6000, 23]), e(libc::EINVAL));
    assert_eq!(g.sys("set_robust_list", &[0x6000, 24]), 0);
    let b = g.map(4096, RW);
    assert_eq!(g.sys("get_robust_list", &[0, b, b + 8]), 0);
    assert_eq!(g.t.mem().read_u64(b).unwrap(), 0x6000);
    assert_eq!(g.t.mem().read_u64(b + 8).unwrap(), 24);
    // rseq (kernel/rseq.c): registered, then EBUSY for the same arguments, unregistered.
    let area = b + 64;
    assert_eq!(g.sys("rseq", &[area, 32, 0, 0x53053053]), 0);
    assert_eq!(g.sys("rseq", &[area, 32, 0, 0x53053053]), e(libc::EBUSY));
    assert_eq!(g.sys("rseq", &[area, 32, 1, 0x53053053]), 0);
    let name = g.cstr("worker-thread-name-long");
    assert_eq!(g.sys("prctl", &[libc::PR_SET_NAME as u64, name]), 0);
    assert_eq!(g.sys("prctl", &[libc::PR_GET_NAME as u64, b]), 0);
    assert_eq!(g.bytes(b, 16), b"worker-thread-n\0");
    assert_eq!(g.sys("prctl", &[0x7fff_0000]), e(libc::EINVAL));
    assert_eq!(g.sys("prctl", &[libc::PR_GET_TID_ADDRESS as u64, b]), 0);
    assert_eq!(g.t.mem().read_u64(b).unwrap(), 0x5000);
    assert!(g.t.exit.is_none());
    g.sys("exit_group", &[3]);
    assert_eq!(g.t.exit, Some(ExitRequest::Group(3)));
}

#[test]
fn futex_single_thread() {
    let mut g = guest();
    let b = g.map(4096, RW);
    g.t.mem().write_u32(b, 7).unwrap();
    let private = 128u64;
    // Value mismatch.
    assert_eq!(g.sys("futex", &[b, private, 8, 0]), e(libc::EAGAIN));
    // Match with a 5 ms timeout.
    g.t.mem().write_u64(b + 16, 0).unwrap();
    g.t.mem().write_u64(b + 24, 5_000_000).unwrap();
    assert_eq!(g.sys("futex", &[b, private, 7, b + 16]), e(libc::ETIMEDOUT));
    assert_eq!(g.sys("futex", &[b, private | 1, 1]), 0);
    assert_eq!(g.sys("futex", &[b + 1, private, 7, 0]), e(libc::EINVAL));
    assert_eq!(g.sys("futex", &[0x1000, private, 7, 0]), e(libc::EFAULT));
    // A wake on memory that is not the guest's wakes nobody.
    assert_eq!(g.sys("futex", &[0x1000, private | 1, 1]), 0);
}

#[test]
fn getrandom_flags() {
    let mut g = guest();
    let b = g.map(4096, RW);
    assert_eq!(g.sys("getrandom", &[b, 64, 0]), 64);
    assert_eq!(g.sys("getrandom", &[b, 64, 6]), e(libc::EINVAL));
    assert_eq!(g.sys("getrandom", &[b, 64, 8]), e(libc::EINVAL));
    assert_eq!(g.sys("getrandom", &[0x1000, 64, 0]), e(libc::EFAULT));
}

#[test]
fn unknown_syscall() {
    let mut g = guest();
    assert_eq!(g.sys_nr(100_000), e(libc::ENOSYS));
}

impl Guest {
    fn sys_nr(&mut self, nr: u64) -> i64 {
        self.t.cpu.gpr[0] = nr;
        syscalls::handle(&mut self.t);
        self.t.cpu.gpr[0] as i64
    }
}

/// pidfd_getfd cannot reach a descriptor cetbox keeps for itself (it answers EBADF, as for a
/// closed one), while the guest's own descriptors are duplicated as on Linux.
#[test]
fn pidfd_getfd_does_not_reach_private_descriptors() {
    let mut g = guest();
    // SAFETY: plain descriptor calls on our own process.
    let own = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 901) };
    assert!(own >= 901);
    assert!(syscalls::fs::register_private_fd(own));
    let pidfd = g.sys("pidfd_open", &[std::process::id() as u64, 0]);
    assert!(pidfd >= 0, "{pidfd}");
    assert_eq!(
        g.sys("pidfd_getfd", &[pidfd as u64, own as u64, 0]),
        e(libc::EBADF)
    );
    let dup = g.sys("pidfd_getfd", &[pidfd as u64, 2, 0]);
    assert!(dup >= 0, "{dup}");
    syscalls::fs::unregister_private_fd(own);
    // SAFETY: closing descriptors this test opened.
    unsafe {
        libc::close(own);
        libc::close(dup as i32);
        libc::close(pidfd as i32);
    }
}
