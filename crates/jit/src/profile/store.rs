//! The profile directory: reading one profile, replacing one atomically, keeping the
//! directory bounded. Every failure reads as "no profile" or is dropped: the profile only
//! decides when blocks are translated, so a read-only, full, missing or hostile directory
//! costs speed and nothing else, and nothing here waits on another process.

use super::format::{self, file_name, FileKey, MAX_ENTRIES};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Bytes of profiles the directory keeps; past it the least recently written go first.
pub const MAX_DIR_BYTES: u64 = 8 << 20;

/// The largest file `format::encode` writes.
const MAX_FILE: u64 = (124 + 4 * MAX_ENTRIES + 8) as u64;

/// Temporary files older than this are leftovers of a process that died while writing.
const STALE_TMP_SECS: i64 = 600;

/// The offsets stored for `key` under `program` in `dir`, empty when there is no valid
/// profile. The file is
/// opened without following a symbolic link and without blocking (a FIFO put there would
/// otherwise hang the open), and read only if it is a regular file no larger than a profile.
pub fn load(dir: &Path, key: &FileKey, program: &FileKey) -> Vec<u32> {
    let read = || -> Option<Vec<u32>> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.join(file_name(key, program)))
            .ok()?;
        let m = f.metadata().ok()?;
        if !m.is_file() || m.len() > MAX_FILE {
            return None;
        }
        let mut bytes = Vec::with_capacity(m.len() as usize);
        Read::by_ref(&mut f)
            .take(MAX_FILE)
            .read_to_end(&mut bytes)
            .ok()?;
        format::decode(key, program, &bytes)
    };
    read().unwrap_or_default()
}

/// Replaces the profile of `key` under `program` in `dir` with `offsets`: written to a new
/// temporary file
/// and renamed over the old one (rename(2) is atomic), so a concurrent reader sees the old
/// file or the new one, never a mix; of two concurrent writers the last rename wins.
pub fn store(dir: &Path, key: &FileKey, program: &FileKey, offsets: &[u32]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{seq}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&format::encode(key, program, offsets))?;
        std::fs::rename(&tmp, dir.join(file_name(key, program)))
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Keeps `dir` under `MAX_DIR_BYTES`: removes old temporary files, and when the profiles
/// take more, the least recently written until they take at most three quarters of it.
/// Concurrent evictions may remove the same file twice; the second removal fails, harmlessly.
pub fn evict(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut profiles = Vec::new();
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") {
            if now - m.mtime() > STALE_TMP_SECS {
                let _ = std::fs::remove_file(e.path());
            }
        } else if m.is_file() && name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            total += m.len();
            profiles.push(((m.mtime(), m.mtime_nsec()), m.len(), e.path()));
        }
    }
    if total <= MAX_DIR_BYTES {
        return;
    }
    profiles.sort();
    for (_, len, path) in profiles {
        if total <= MAX_DIR_BYTES / 4 * 3 {
            break;
        }
        let _ = std::fs::remove_file(path);
        total -= len;
    }
}
