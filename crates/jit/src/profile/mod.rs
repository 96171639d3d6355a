//! The hot-block profile: which blocks of which executable files became hot in earlier
//! processes, kept in the user's cache directory, so that a new process translates them at
//! their first visit instead of interpreting them `HOT_AFTER` times first (most of a
//! start-up's interpreted instructions are those first visits of blocks that become hot).
//!
//! The profile holds no code and nothing the translator trusts: only file offsets of blocks,
//! per file identity (`format::FileKey`) and program (the main executable the process runs:
//! a library's hot blocks depend on the program using it). Acting on one means translating the block at that
//! guest address at its first visit, from the guest's memory as it is then, exactly as a
//! lower hot threshold would; the engine contract holds for every threshold (the
//! differential tests translate every block at its first visit). So a stale, corrupt or
//! forged profile (the directory is writable by any guest running as the same user) can
//! change when blocks are translated, never what any guest instruction does. The worst a
//! hostile profile can do is to have every block a process visits translated at once, which
//! costs start-up time (the cost of `CETBOX_JIT_HOT=0`) and nothing else.
//!
//! Per process: profiles are loaded lazily, the first time a block of a file mapped
//! executable is decoded; newly hot blocks are recorded as (file, offset) and written back
//! by `save` when the process ends or re-executes itself, merged with what the file holds
//! then (`store`). Locks are only ever tried (`try_lock`), never waited for: a host fork can
//! leave the lock held forever in the child, which then just runs without a profile.
//! Design and measurements: docs/ARCHITECTURE.md, "Translator", "The hot-block profile".

pub mod format;
pub mod store;

use cetbox_cpu::Cpu;
use cetbox_mem::{AddressSpace, Backing};
use format::{FileKey, MAX_ENTRIES};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The environment variable that disables the profile ("off", "0", "no") or names its
/// directory (an absolute path).
pub const ENV: &str = "CETBOX_TRANSLATION_CACHE";

/// The profile directory for this process's environment: `CETBOX_TRANSLATION_CACHE` when it
/// is an absolute path, nothing when it says off, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/cetbox/hot-blocks-v1` (the XDG Base Directory
/// Specification's user cache directory; relative values of XDG_CACHE_HOME are ignored, as
/// it says). A HOME that is not an existing directory (HOME=/nonexistent, as the tests and
/// many daemons have it) means no profile: cetbox does not create home directories.
pub fn default_dir() -> Option<PathBuf> {
    let abs = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    match std::env::var_os(ENV) {
        Some(v) if matches!(v.to_str(), Some("off" | "0" | "no" | "false")) => return None,
        Some(v) if Path::new(&v).is_absolute() => return Some(v.into()),
        _ => {}
    }
    let home_cache = || {
        let home = std::env::var_os("HOME").and_then(abs)?;
        home.is_dir().then(|| home.join(".cache"))
    };
    let base = std::env::var_os("XDG_CACHE_HOME")
        .and_then(abs)
        .or_else(home_cache)?;
    Some(base.join("cetbox").join("hot-blocks-v1"))
}

/// Whether a profile directory is configured (read without the lock on every hint).
static ENABLED: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<Option<State>> = Mutex::new(None);

/// A file's (dev, inode), as the VMA records it.
type Id = (u64, u64);

struct State {
    dir: PathBuf,
    /// The program the process runs now (`set_program`); no profile is used without one.
    program: Option<FileKey>,
    /// The files whose profiles this process loaded under `program` (None: not a regular
    /// file any more, or not the file the mapping was made from).
    files: HashMap<Id, Option<Arc<Profile>>>,
    /// Blocks that became hot in this process and were not in their file's profile, by
    /// program and file.
    pending: HashMap<(FileKey, Id), Pending>,
}

/// One file's profile as loaded.
pub struct Profile {
    key: FileKey,
    program: FileKey,
    path: PathBuf,
    hot: HashSet<u32>,
}

struct Pending {
    key: FileKey,
    path: PathBuf,
    offsets: Vec<u32>,
}

fn state() -> Option<MutexGuard<'static, Option<State>>> {
    match STATE.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Uses the profile in `dir`, or none. Called once when a cetbox process starts, before it
/// runs guest code.
pub fn configure(dir: Option<PathBuf>) {
    let mut g = STATE.lock().unwrap_or_else(|p| p.into_inner());
    ENABLED.store(dir.is_some(), Ordering::Relaxed);
    *g = dir.map(|dir| State {
        dir,
        program: None,
        files: HashMap::new(),
        pending: HashMap::new(),
    });
}

/// The process now runs the program `exe` (the main executable, open; after every exec):
/// profiles are looked up under it from now on. Engines drop their regions at exec
/// (`Engine::invalidate`), so none keeps a profile of the previous program.
pub fn set_program(exe: &std::fs::File) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let program = exe.metadata().ok().and_then(|m| FileKey::of_metadata(&m));
    if let Some(Some(st)) = state().as_deref_mut() {
        st.program = program;
        st.files.clear();
    }
}

/// In a forked child: the blocks recorded so far are the parent's to save.
pub fn after_fork_child() {
    if let Some(Some(st)) = state().as_deref_mut() {
        st.pending.clear();
    }
}

/// The profile of the file `path` maps, if it is still the file (dev, ino) names (inner
/// None: no profile); loaded once per process. None when the state is busy (another thread
/// holds the lock): the caller asks again later. The directory is read without the lock.
fn profile_of(path: &str, dev: u64, ino: u64) -> Option<Option<Arc<Profile>>> {
    let (dir, program) = {
        let g = state()?;
        let Some(st) = g.as_ref() else {
            return Some(None);
        };
        if let Some(p) = st.files.get(&(dev, ino)) {
            return Some(p.clone());
        }
        let Some(program) = st.program else {
            return Some(None);
        };
        (st.dir.clone(), program)
    };
    let path = PathBuf::from(path);
    // The profile files are cetbox's own descriptors for a moment (`cetbox_mem::transient`).
    let _hold = cetbox_mem::transient::hold();
    let loaded = FileKey::of(&path, dev, ino).map(|key| {
        Arc::new(Profile {
            hot: store::load(&dir, &key, &program).into_iter().collect(),
            key,
            program,
            path,
        })
    });
    if let Some(Some(st)) = state().as_deref_mut() {
        if st.program == Some(program) {
            return Some(st.files.entry((dev, ino)).or_insert(loaded).clone());
        }
    }
    Some(loaded)
}

/// An executable mapping seen by `Hints` and its file's profile.
struct Region {
    start: u64,
    end: u64,
    /// The file offset at `start`.
    offset: u64,
    file: Option<(Id, Arc<Profile>)>,
}

impl Region {
    fn offset_of(&self, rip: u64) -> Option<u32> {
        u32::try_from((rip - self.start).checked_add(self.offset)?).ok()
    }
}

/// Most regions `Hints` remembers before it starts again.
const MAX_REGIONS: usize = 64;

/// One engine's view of the profile: the mappings its blocks were found in, so that most
/// questions cost a short scan and one set lookup rather than a VMA lookup.
#[derive(Default)]
pub struct Hints {
    /// The code epoch the regions were seen under: unmapping, remapping or protecting pages
    /// holding decoded code changes it, and the regions are looked up again. (A mapping
    /// replaced where no code was decoded is not noticed; that can only misplace hints.)
    epoch: u64,
    regions: Vec<Region>,
}

impl Hints {
    fn region(&mut self, mem: &AddressSpace, rip: u64) -> Option<&Region> {
        let epoch = mem.code_epoch();
        if epoch != self.epoch {
            self.regions.clear();
            self.epoch = epoch;
        }
        if let Some(i) = self
            .regions
            .iter()
            .position(|r| r.start <= rip && rip < r.end)
        {
            return self.regions.get(i);
        }
        let vma = mem.find_vma(rip)?;
        let (offset, file) = match &vma.backing {
            Backing::File {
                path,
                dev,
                inode,
                offset,
            } if vma.prot & libc::PROT_EXEC as u32 != 0 => (
                *offset,
                profile_of(path, *dev, *inode)?.map(|p| ((*dev, *inode), p)),
            ),
            _ => (0, None),
        };
        if self.regions.len() >= MAX_REGIONS {
            self.regions.clear();
        }
        self.regions.push(Region {
            start: vma.start,
            end: vma.end,
            offset,
            file,
        });
        self.regions.last()
    }

    /// Whether the block at RIP was hot in an earlier process.
    pub fn known_hot(&mut self, cpu: &Cpu) -> bool {
        if !ENABLED.load(Ordering::Relaxed) {
            return false;
        }
        let rip = cpu.rip;
        let Some(r) = self.region(&cpu.mem, rip) else {
            return false;
        };
        match (&r.file, r.offset_of(rip)) {
            (Some((_, p)), Some(off)) => p.hot.contains(&off),
            _ => false,
        }
    }

    /// Records that the block at RIP became hot (it was translated), unless its file's
    /// profile already says so.
    pub fn record(&mut self, cpu: &Cpu) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let rip = cpu.rip;
        let Some(r) = self.region(&cpu.mem, rip) else {
            return;
        };
        let (Some((id, p)), Some(off)) = (&r.file, r.offset_of(rip)) else {
            return;
        };
        if p.hot.contains(&off) {
            return;
        }
        if let Some(Some(st)) = state().as_deref_mut() {
            st.pending
                .entry((p.program, *id))
                .or_insert_with(|| Pending {
                    key: p.key,
                    path: p.path.clone(),
                    offsets: Vec::new(),
                })
                .offsets
                .push(off);
        }
    }
}

/// Writes the blocks that became hot in this process into their files' profiles (merged
/// with what each profile holds now; newest first, at most `MAX_ENTRIES`), for files that
/// are still the version they were recorded for. Called when the process ends or
/// re-executes itself; failures are silent (see `store`).
pub fn save() {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let (dir, pending) = {
        let Some(mut g) = state() else { return };
        let Some(st) = g.as_mut() else { return };
        (st.dir.clone(), std::mem::take(&mut st.pending))
    };
    let mut wrote = false;
    for ((program, (dev, ino)), p) in pending {
        if FileKey::of(&p.path, dev, ino) != Some(p.key) {
            continue;
        }
        let old = store::load(&dir, &p.key, &program);
        let mut seen: HashSet<u32> = old.iter().copied().collect();
        let mut all: Vec<u32> = p.offsets.into_iter().filter(|&o| seen.insert(o)).collect();
        if all.is_empty() {
            continue;
        }
        all.extend(old);
        all.truncate(MAX_ENTRIES);
        wrote |= store::store(&dir, &p.key, &program, &all).is_ok();
    }
    if wrote {
        store::evict(&dir);
    }
}
