//! A guest process (shared by its threads) and a guest thread.

use crate::events::{Observer, Silent, Switch};
use crate::options::{EngineKind, Options};
use crate::signals::{ProcessSignals, ThreadSignals};
use cetbox_cpu::{Cpu, CpuConfig, Engine, Interpreter};
use cetbox_mem::AddressSpace;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The program image a process runs, for /proc/self/exe, AT_EXECFN and reports.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// Absolute host path of the executable.
    pub exe: String,
    /// argv[0] and the rest, as given.
    pub argv: Vec<Vec<u8>>,
    /// Start and end of the initial brk heap.
    pub brk_start: u64,
    pub brk: u64,
    /// The auxiliary vector given to the program.
    pub auxv: Vec<(u64, u64)>,
    /// Where the main stack's top is, and argv/env ranges for /proc/self/stat and cmdline.
    pub stack_top: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

/// State shared by all threads of a guest process. A host process runs exactly one guest
/// process (a guest fork is a host fork), so this is also everything the Linux personality
/// keeps per host process, apart from the thread registry (`crate::thread`) and what host
/// signal handlers must reach without locks (`crate::signals::host`, the private-descriptor
/// table in `crate::syscalls::fs`).
pub struct Process {
    pub mem: Arc<AddressSpace>,
    pub pid: i32,
    pub opts: Arc<Options>,
    pub cpu_config: Arc<CpuConfig>,
    pub image: Mutex<Image>,
    pub signals: ProcessSignals,
    pub observer: Arc<dyn Observer>,
    /// personality(2): only PER_LINUX execution is emulated; the flag bits are kept and
    /// reported back.
    pub personality: AtomicU32,
    /// Thread names set with PR_SET_NAME, by tid (absent: the executable's base name).
    pub thread_names: Mutex<HashMap<i32, [u8; 16]>>,
    /// PTRACE_TRACEME was called: threads publish their state for the tracer around syscalls.
    pub traced: AtomicBool,
    /// Host descriptors that are the guest's opens of a /proc/PID/mem, with the process whose
    /// memory each one shows: 0 for this process, else another process's pid.
    pub mem_fds: Mutex<HashMap<i32, i32>>,
    /// A vfork child: the pipe end that releases its waiting parent (-1 otherwise), and
    /// whether the child shares the parent's memory (CLONE_VM).
    pub vfork_fd: AtomicI32,
    pub vfork_shared_vm: AtomicBool,
    /// A CLONE_VM vfork child of a multithreaded parent: the host process that holds the
    /// memory as it was at the fork (`crate::fork`), or -1; and the host address of the
    /// shared word that tells it to end (0 when there is none).
    pub vfork_snapshot: AtomicI32,
    pub vfork_snapshot_word: std::sync::atomic::AtomicUsize,
    /// A CLONE_VM vfork child: the mapping watch (`cetbox_mem`'s `watch_mappings`) begun at
    /// the fork, whose copy here tells which of its pages are still the mappings of the fork
    /// (0: none).
    pub vfork_watch: std::sync::atomic::AtomicU64,
    /// System V shared-memory attaches (`syscalls/shm.rs`): address -> length. A fork child
    /// inherits them (Linux's fork copies the attach VMAs).
    pub shm_attaches: Mutex<BTreeMap<u64, u64>>,
    /// The process's guest threads (`thread_group::Threads`): a fork child starts a new one.
    pub threads: crate::thread_group::Threads,
    /// Peak resident size seen (VmHWM in /proc/self/status), in KiB. A fork child starts
    /// from its own current size, as Linux's dup_mm sets hiwater_rss (kernel/fork.c).
    pub rss_peak: AtomicU64,
    /// Host PI futex calls in flight (tid, futex word address), for mapping changes that
    /// take write access away (`syscalls::pi_inflight`).
    pub pi_inflight: crate::syscalls::pi_inflight::Registry,
    /// Threads in FUTEX_WAIT_REQUEUE_PI on private futexes (`syscalls::requeue_pi`).
    pub requeue_pi: crate::syscalls::requeue_pi::Table,
    /// Engines of ended threads, for the next new threads (`crate::engine_pool`).
    pub engines: crate::engine_pool::EnginePool,
    /// The virtual CPUs its rseq-registered threads run on (`crate::vcpu`): a fork child
    /// gets new ones with the same CPU numbers.
    pub vcpus: crate::vcpu::Vcpus,
}

/// What a forked child inherits from its parent process, copied by the parent before the host
/// fork so the child never touches a lock another parent thread might have held.
pub struct ForkSnapshot {
    image: Image,
    signals: ProcessSignals,
    personality: u32,
    /// The forking thread's name, if it set one (the child's only thread keeps it).
    name: Option<[u8; 16]>,
    mem_fds: HashMap<i32, i32>,
    shm_attaches: BTreeMap<u64, u64>,
}

impl Process {
    pub fn new(
        opts: Arc<Options>,
        observer: Option<Arc<dyn Observer>>,
    ) -> std::io::Result<Arc<Process>> {
        // The guest's memory limits are kept apart from cetbox's own (rlimit.rs).
        crate::rlimit::init();
        let mem = Arc::new(AddressSpace::new()?);
        // Other guest processes check their accesses to this one against its table.
        crate::remote_mem::publish(&mem)?;
        // And read what it publishes for their /proc/PID files (before any guest code runs,
        // so the page is cetbox's).
        crate::procview::reserve();
        Ok(Arc::new(Process {
            mem,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            cpu_config: Arc::new(CpuConfig {
                cet: !opts.no_cet,
                level: opts.cpu_level,
            }),
            opts,
            image: Mutex::new(Image::default()),
            signals: ProcessSignals::default(),
            observer: observer.unwrap_or_else(|| Arc::new(Silent)),
            personality: AtomicU32::new(0),
            thread_names: Mutex::new(HashMap::new()),
            traced: AtomicBool::new(false),
            mem_fds: Mutex::new(HashMap::new()),
            vfork_fd: AtomicI32::new(-1),
            vfork_shared_vm: AtomicBool::new(false),
            vfork_snapshot: AtomicI32::new(-1),
            vfork_snapshot_word: Default::default(),
            vfork_watch: Default::default(),
            shm_attaches: Mutex::new(BTreeMap::new()),
            threads: Default::default(),
            rss_peak: AtomicU64::new(0),
            pi_inflight: Default::default(),
            requeue_pi: Default::default(),
            engines: Default::default(),
            vcpus: crate::vcpu::Vcpus::from_host(),
        }))
    }

    pub fn image(&self) -> MutexGuard<'_, Image> {
        self.image.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// In the parent, before the host fork: what the child will inherit (`forked`).
    pub fn fork_snapshot(&self, forking_tid: i32) -> ForkSnapshot {
        ForkSnapshot {
            image: self.image().clone(),
            signals: self.signals.fork_copy(),
            personality: self.personality.load(Ordering::Relaxed),
            name: self.thread_names().get(&forking_tid).copied(),
            mem_fds: self.mem_fds().clone(),
            shm_attaches: self.shm_attaches().clone(),
        }
    }

    /// In the child: the process it now is. Everything a fork resets or keeps is decided here:
    /// the same address space object (the host fork copied the memory behind it), the image,
    /// signal dispositions (no pending signals), personality, /proc/self/mem descriptors
    /// (descriptors are inherited) and SysV shm attaches; the child's own pid, its one thread named as the forking
    /// one, not traced (PTRACE_TRACEME does not extend to children), no vfork link yet.
    pub fn forked(&self, pid: i32, snap: ForkSnapshot) -> Arc<Process> {
        // The child reports its own violations; the parent's belong to the parent's summary.
        self.observer.forked();
        Arc::new(Process {
            mem: self.mem.clone(),
            pid,
            opts: self.opts.clone(),
            cpu_config: self.cpu_config.clone(),
            image: Mutex::new(snap.image),
            signals: snap.signals,
            observer: self.observer.clone(),
            personality: AtomicU32::new(snap.personality),
            thread_names: Mutex::new(snap.name.map(|n| (pid, n)).into_iter().collect()),
            traced: AtomicBool::new(false),
            // An inherited /proc/self/mem still shows the parent's memory (it names the mm it
            // was opened on: fs/proc/base.c, mem_open).
            mem_fds: Mutex::new(
                snap.mem_fds
                    .into_iter()
                    .map(|(fd, p)| (fd, if p == 0 { self.pid } else { p }))
                    .collect(),
            ),
            vfork_fd: AtomicI32::new(-1),
            vfork_shared_vm: AtomicBool::new(false),
            vfork_snapshot: AtomicI32::new(-1),
            vfork_snapshot_word: Default::default(),
            vfork_watch: Default::default(),
            shm_attaches: Mutex::new(snap.shm_attaches),
            threads: Default::default(),
            rss_peak: AtomicU64::new(0),
            pi_inflight: Default::default(),
            requeue_pi: Default::default(),
            engines: Default::default(),
            vcpus: crate::vcpu::Vcpus::with_ids(&self.vcpus.ids()),
        })
    }

    /// Thread names, locked.
    pub fn thread_names(&self) -> MutexGuard<'_, HashMap<i32, [u8; 16]>> {
        self.thread_names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SysV shm attaches, locked.
    pub fn shm_attaches(&self) -> MutexGuard<'_, BTreeMap<u64, u64>> {
        self.shm_attaches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// /proc/self/mem descriptors, locked.
    pub fn mem_fds(&self) -> MutexGuard<'_, HashMap<i32, i32>> {
        self.mem_fds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Kernel-side shadow-stack state of a thread (Linux `struct thread_struct`: features,
/// features_locked, shstk; arch/x86/include/asm/processor.h); the CPU side (SSP, U_CET)
/// lives in `Cpu::cet`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShstkState {
    /// Enabled features: ARCH_SHSTK_SHSTK (1), ARCH_SHSTK_WRSS (2).
    pub features: u64,
    /// Locked feature bits.
    pub locked: u64,
    /// The shadow stack the kernel allocated for this thread (0 = none owned).
    pub base: u64,
    pub size: u64,
    /// Who enabled shadow stacks, for reports.
    pub enabled_by: &'static str,
}

/// Why a thread stopped running guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitRequest {
    /// exit(2): this thread only.
    Thread(i32),
    /// exit_group(2) or the last thread exiting.
    Group(i32),
    /// Killed by a signal (default action terminate or core).
    Signal(i32),
}

/// One guest thread.
pub struct Thread {
    /// The architectural state of the thread's CPU.
    pub cpu: Cpu,
    /// What runs guest code on `cpu` (`cetbox_cpu::engine`).
    pub engine: Box<dyn Engine>,
    pub tid: i32,
    pub proc: Arc<Process>,
    pub signals: ThreadSignals,
    pub shstk: ShstkState,
    /// CLONE_CHILD_CLEARTID / set_tid_address.
    pub clear_child_tid: u64,
    /// set_robust_list head and length.
    pub robust_list: (u64, u64),
    /// Set by exit syscalls and fatal signals; the run loop stops.
    pub exit: Option<ExitRequest>,
    /// Set by syscalls that replace the whole register state (rt_sigreturn, execve): the run
    /// loop must not store a return value in RAX.
    pub keep_rax: bool,
    /// Set (by host signal handlers or other threads) to make the CPU stop at the next block.
    pub stop: Arc<AtomicBool>,
    /// The last shadow-stack switch made by the kernel side, for reports, and `cpu.icount`
    /// when it happened.
    pub last_switch: Option<Switch>,
    pub last_switch_at: u64,
    /// The syscall the thread is in or just returned from (orig_rax), -1 in user code.
    pub orig_rax: i64,
    /// The signal that is killing the process, for the core file's NT_SIGINFO.
    pub fatal_siginfo: Option<crate::signals::SigInfo>,
    /// A thread a guest tracer is to attach to as it starts (PTRACE_O_TRACECLONE): the tid of
    /// the traced thread that created it and the ptrace options it inherits
    /// (syscalls/ptrace/stop.rs `await_attach`).
    pub ptrace_auto_attach: Option<(i32, u64)>,
    /// The registered rseq area and the thread's virtual CPU lease (`crate::rseq`); a new
    /// thread starts unregistered.
    pub rseq: Option<crate::rseq::Registration>,
}

impl Thread {
    pub fn new(proc: Arc<Process>, tid: i32) -> Thread {
        let cpu = Cpu::new(proc.mem.clone(), proc.cpu_config.clone());
        Thread {
            cpu,
            engine: match proc.opts.engine {
                EngineKind::Interp => Box::new(Interpreter::new()),
                EngineKind::Jit => Box::new(cetbox_jit::Translator::new()),
            },
            tid,
            proc,
            signals: ThreadSignals::default(),
            shstk: ShstkState::default(),
            clear_child_tid: 0,
            robust_list: (0, 0),
            exit: None,
            keep_rax: false,
            stop: Arc::new(AtomicBool::new(false)),
            last_switch: None,
            last_switch_at: 0,
            orig_rax: -1,
            fatal_siginfo: None,
            ptrace_auto_attach: None,
            rseq: None,
        }
    }

    pub fn mem(&self) -> &AddressSpace {
        &self.proc.mem
    }
}
