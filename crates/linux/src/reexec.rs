//! execve from a multi-threaded guest process, or from a thread that is not the thread-group
//! leader: cetbox execs *itself* on the host with the guest's new program, so the host kernel
//! does what Linux's de_thread does for the guest.
//!
//! Linux (fs/exec.c, begin_new_exec -> de_thread) kills every other thread of the group
//! (zap_other_threads), waits for them to die, and if the exec'ing thread was not the leader
//! it takes over the leader's pid (exchange_tids): afterwards gettid() == getpid() and
//! /proc/self/task holds one entry. A guest thread is a host thread with the same tid, so the
//! only way to give the exec'ing thread the leader's tid is to have the host kernel do the
//! same thing to cetbox: a host execve from that thread. The exec'ing thread therefore hands
//! the new image's description (the `Handover`) to a fresh cetbox through a memfd and
//! execs `cetbox resume FD`; the fresh cetbox loads the program exactly as the in-place exec
//! would have and runs it.
//!
//! What follows the exec rules: the host keeps the pid, parent, descriptors without
//! FD_CLOEXEC, cwd, rlimits, the blocked mask and the signals pending in the host kernel; the
//! guest's ignored signals stay ignored (handed over explicitly, since Rust's runtime ignores
//! SIGPIPE for itself); signals cetbox had already collected for the guest are queued back
//! into the host kernel (rt_tgsigqueueinfo / rt_sigqueueinfo to ourselves, with every signal
//! blocked) so they are pending across the exec, as on Linux, and the guest's mask is restored
//! in the new image. Caught signals are reset, the alternate stack and the shadow-stack state
//! are dropped (a new process state), and the --shstk policy applies again, as for any exec.
//! The killed threads' private pending signals die with them, as in Linux.

use crate::errno::{Errno, SysResult};
use crate::loader;
use crate::options::{Options, ShstkPolicy, ViolationPolicy};
use crate::process::{Process, Thread};
use crate::signals;
use std::sync::Arc;

/// Everything the fresh cetbox needs to start the guest's new program.
#[derive(Clone, Debug, Default)]
pub struct Handover {
    pub opts: Options,
    /// The host path to load and the name the program is given (AT_EXECFN).
    pub path: Vec<u8>,
    pub execfn: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The exec'ing thread's blocked mask.
    pub mask: u64,
    /// Signals the guest ignores (SIG_IGN survives exec).
    pub ignored: u64,
    /// The front end's own state (report destination, --error-exitcode tally), opaque here.
    pub observer: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Handover {
    /// One `key hex-bytes` line per field (argv and envp entries repeat their key).
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        let mut put = |k: &str, v: &[u8]| {
            s.push_str(k);
            s.push(' ');
            s.push_str(&hex(v));
            s.push('\n');
        };
        let o = &self.opts;
        put(
            "shstk",
            match o.shstk {
                ShstkPolicy::Off => b"off",
                ShstkPolicy::On => b"on",
                ShstkPolicy::Auto => b"auto",
            },
        );
        put(
            "on_violation",
            match o.on_violation {
                ViolationPolicy::Kill => b"kill",
                ViolationPolicy::Continue => b"continue",
            },
        );
        put("trace", if o.trace_syscalls { b"1" } else { b"0" });
        put("no_cet", if o.no_cet { b"1" } else { b"0" });
        put("cpu_level", o.cpu_level.name().as_bytes());
        put(
            "engine",
            match o.engine {
                crate::options::EngineKind::Interp => b"interp",
                crate::options::EngineKind::Jit => b"jit",
            },
        );
        if let Some(r) = &o.sysroot {
            put("sysroot", r.as_os_str().as_encoded_bytes());
        }
        if let Some(e) = &o.self_exe {
            put("self_exe", e.as_os_str().as_encoded_bytes());
        }
        if let Some(d) = &o.translation_cache {
            put("translation_cache", d.as_os_str().as_encoded_bytes());
        }
        put("path", &self.path);
        put("execfn", &self.execfn);
        for a in &self.argv {
            put("arg", a);
        }
        for e in &self.envp {
            put("env", e);
        }
        put("mask", &self.mask.to_le_bytes());
        put("ignored", &self.ignored.to_le_bytes());
        put("observer", self.observer.as_bytes());
        s.into_bytes()
    }

    pub fn decode(text: &[u8]) -> Option<Handover> {
        use std::os::unix::ffi::OsStringExt;
        let mut h = Handover::default();
        let text = std::str::from_utf8(text).ok()?;
        let u64_of = |v: &[u8]| Some(u64::from_le_bytes(v.try_into().ok()?));
        for line in text.lines() {
            let (k, v) = line.split_once(' ')?;
            let v = unhex(v)?;
            match k {
                "shstk" => {
                    h.opts.shstk = match &v[..] {
                        b"on" => ShstkPolicy::On,
                        b"auto" => ShstkPolicy::Auto,
                        _ => ShstkPolicy::Off,
                    }
                }
                "on_violation" => {
                    h.opts.on_violation = if v == b"continue" {
                        ViolationPolicy::Continue
                    } else {
                        ViolationPolicy::Kill
                    }
                }
                "trace" => h.opts.trace_syscalls = v == b"1",
                "no_cet" => h.opts.no_cet = v == b"1",
                "engine" => {
                    h.opts.engine = if v == b"jit" {
                        crate::options::EngineKind::Jit
                    } else {
                        crate::options::EngineKind::Interp
                    }
                }
                "cpu_level" => {
                    h.opts.cpu_level =
                        cetbox_cpu::CpuLevel::from_name(std::str::from_utf8(&v).ok()?)?
                }
                "sysroot" => h.opts.sysroot = Some(std::ffi::OsString::from_vec(v).into()),
                "self_exe" => h.opts.self_exe = Some(std::ffi::OsString::from_vec(v).into()),
                "translation_cache" => {
                    h.opts.translation_cache = Some(std::ffi::OsString::from_vec(v).into())
                }
                "path" => h.path = v,
                "execfn" => h.execfn = v,
                "arg" => h.argv.push(v),
                "env" => h.envp.push(v),
                "mask" => h.mask = u64_of(&v)?,
                "ignored" => h.ignored = u64_of(&v)?,
                "observer" => h.observer = String::from_utf8(v).ok()?,
                _ => return None,
            }
        }
        Some(h)
    }
}

/// Whether an execve by `t` must go through a host exec: another guest thread exists, or `t`
/// is not the thread-group leader.
pub fn needed(t: &Thread) -> bool {
    t.tid != t.proc.pid || t.proc.threads.live() > 1
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor cetbox owns.
    unsafe { libc::close(fd) };
}

/// The exec'ing thread's side: hands `h` over and execs cetbox. Returns only if the host
/// execve failed (nothing of the guest changed then, except that a vfork parent was
/// released, as Linux does only later; the errno is the host's).
pub fn exec(t: &mut Thread, mut h: Handover) -> SysResult {
    let Some(self_exe) = t.proc.opts.self_exe.clone() else {
        return Err(Errno::ENOEXEC);
    };
    h.mask = t.signals.mask;
    h.ignored = (1..=signals::NSIG as i32)
        .filter(|&s| t.proc.signals.action(s).handler == signals::SIG_IGN)
        .fold(0, |m, s| m | signals::bit(s));
    h.observer = t.proc.observer.before_reexec();
    // The handover in a memfd the fresh cetbox reads (kept across exec, at a high number).
    let fd = match crate::memfd::holding(c"cetbox-exec", 0, &h.encode()) {
        Ok(fd) => std::os::fd::IntoRawFd::into_raw_fd(fd),
        Err(crate::memfd::Failed::Create(e)) => return Err(e),
        Err(crate::memfd::Failed::Write) => return Err(Errno::ENOMEM),
    };
    let Ok(exe) = std::ffi::CString::new(self_exe.as_os_str().as_encoded_bytes()) else {
        close(fd);
        return Err(Errno::ENOEXEC);
    };
    let fd_arg = std::ffi::CString::new(fd.to_string()).unwrap_or_default();
    let argv = [
        c"cetbox".as_ptr(),
        c"resume".as_ptr(),
        fd_arg.as_ptr(),
        std::ptr::null(),
    ];
    // cetbox's own environment only: the guest's is in the handover (the host's dynamic
    // linker must not see the guest's LD_* variables).
    let env_strings: Vec<std::ffi::CString> = ["PATH", "RUST_BACKTRACE"]
        .iter()
        .filter_map(|k| {
            let v = std::env::var_os(k)?;
            let mut s = k.as_bytes().to_vec();
            s.push(b'=');
            s.extend_from_slice(v.as_encoded_bytes());
            std::ffi::CString::new(s).ok()
        })
        .collect();
    let mut envp: Vec<*const libc::c_char> = env_strings.iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());

    // Signals cetbox holds for the guest go back to the host kernel, pending and blocked.
    let guest_mask = signals::host::host_mask();
    signals::host::set_host_mask(!0);
    requeue_pending(t);
    crate::fork::release_vfork_parent(&t.proc);
    // The new image starts with an empty profile state: what this one learned goes now.
    cetbox_jit::profile::save();
    // SAFETY: execve with NUL-terminated argument and environment arrays that outlive the
    // call; on success this process image is replaced.
    unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = Errno::last();
    close(fd);
    t.proc.observer.reexec_failed();
    // The re-queued signals come back through the host handler.
    signals::host::set_host_mask(guest_mask);
    Err(e)
}

/// Queues the signals cetbox collected for the guest (this thread's and the process's) back
/// into the host kernel: thread-directed ones to this thread, the rest to the process.
fn requeue_pending(t: &mut Thread) {
    let pid = t.proc.pid;
    let mine: Vec<_> = std::mem::take(&mut t.signals.pending);
    let procs: Vec<_> = std::mem::take(&mut *t.proc.signals.pending());
    for (info, thread) in mine
        .into_iter()
        .map(|i| (i, true))
        .chain(procs.into_iter().map(|i| (i, false)))
    {
        let mut b = info.to_bytes();
        // The kernel refuses si_code >= 0 from user space only for other processes; queued to
        // ourselves it keeps the original sender's fields.
        let p = b.as_mut_ptr();
        // SAFETY: `b` is a 128-byte siginfo image we own; integer arguments otherwise.
        unsafe {
            if thread {
                libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, t.tid, info.signo, p);
            } else {
                libc::syscall(libc::SYS_rt_sigqueueinfo, pid, info.signo, p);
            }
        }
    }
}

/// The fresh cetbox's side: starts the handed-over program in this (new) host process image
/// and runs it to the end. Failures now are after the point of no return: SIGSEGV, as Linux.
pub fn resume(h: Handover, observer: Arc<dyn crate::events::Observer>) -> ! {
    cetbox_jit::profile::configure(h.opts.translation_cache.clone());
    let proc = match Process::new(Arc::new(h.opts.clone()), Some(observer)) {
        Ok(p) => p,
        Err(e) => {
            crate::diag::diag(&format!("execve: cannot set up the address space: {e}"));
            crate::exit::die_by_signal(signals::SIGSEGV)
        }
    };
    let mut t = Thread::new(proc.clone(), proc.pid);
    for sig in 1..=signals::NSIG as i32 {
        if h.ignored & signals::bit(sig) != 0 && sig != signals::SIGKILL && sig != signals::SIGSTOP
        {
            proc.signals.set_action(
                sig,
                signals::SigAction {
                    handler: signals::SIG_IGN,
                    ..signals::SigAction::default()
                },
            );
        }
    }
    let path = String::from_utf8_lossy(&h.path).into_owned();
    let loaded = loader::prepare(&path, &h.argv, h.opts.sysroot.as_deref()).and_then(|mut p| {
        p.execfn = h.execfn.clone();
        loader::load_prepared(&mut t, p, &h.envp)
    });
    if let Err(e) = loaded {
        crate::diag::diag(&format!("execve: {}; killing the process", e.message));
        crate::exit::finish(&proc, crate::process::ExitRequest::Signal(signals::SIGSEGV));
    }
    let exe = proc.image().exe.clone();
    crate::syscalls::process::comm_reset(&t, &exe);
    // As `start::run_program`: the view before the host set-up's waits.
    crate::procview::refresh(&t, true);
    signals::host::install(&mut t);
    crate::thread_group::register_main(&t);
    signals::deliver::set_mask(&mut t, h.mask);
    let how = crate::run::run_thread(&mut t);
    crate::thread::finish_thread(&mut t, how);
    crate::thread_group::park_forever()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handover_round_trips() {
        let h = Handover {
            opts: Options {
                shstk: ShstkPolicy::Auto,
                on_violation: ViolationPolicy::Continue,
                trace_syscalls: true,
                sysroot: Some("/sys root".into()),
                no_cet: true,
                self_exe: Some("/bin/cetbox".into()),
                cpu_level: cetbox_cpu::CpuLevel::V2,
                engine: crate::options::EngineKind::Jit,
                translation_cache: Some("/home/u/.cache/cetbox/hot blocks".into()),
            },
            path: b"/proc/self/fd/3".to_vec(),
            execfn: b"/dev/fd/3".to_vec(),
            argv: vec![b"".to_vec(), b"a b\n\xff".to_vec()],
            envp: vec![b"K=V".to_vec()],
            mask: 1 << 63 | 5,
            ignored: 1 << 12,
            observer: "format=json;root=1".into(),
        };
        let d = Handover::decode(&h.encode()).expect("decodes");
        assert_eq!(format!("{d:?}"), format!("{h:?}"));
        assert!(Handover::decode(b"path 0g\n").is_none());
        assert!(Handover::decode(b"unknown 00\n").is_none());
    }
}
