//! The bytes of one profile file: which blocks of one executable file were hot while one
//! program ran (a library's hot blocks depend on the program using it: ld.so's symbol lookup
//! loops are hot in python3 and visited a few dozen times in /bin/true, where translating
//! them would cost more than interpreting them).
//!
//! ```text
//! magic    8 bytes  "CBHOTv2\0"
//! key      7 x u64  FileKey of the file: dev, inode, size, mtime s, mtime ns, ctime s, ctime ns
//! program  7 x u64  FileKey of the program the process ran (its main executable)
//! count    u32      number of offsets (at most MAX_ENTRIES)
//! offsets  count x u32, file offsets of the first instruction of hot blocks
//! check    u64      FNV-1a 64 of every byte before it
//! ```
//!
//! All little-endian. `decode` accepts only a file of exactly this shape whose key is the one
//! asked for; anything else (truncated, corrupt, forged, another file's) reads as no profile.
//! The checksum catches torn or damaged files, not forgeries: nothing in a profile is trusted
//! (see `super`), so a forged one can only move when blocks are translated.

/// The identity and version of a file as `stat` reports it (stat(2)): a file replaced,
/// rewritten or touched gets another key, and its old profile is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileKey {
    pub fn words(&self) -> [u64; 7] {
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ]
    }

    /// The key of the file at `path` now, if it is still the file (dev, ino) names.
    pub fn of(path: &std::path::Path, dev: u64, ino: u64) -> Option<FileKey> {
        let m = std::fs::metadata(path).ok()?;
        Self::of_metadata(&m).filter(|k| k.dev == dev && k.ino == ino)
    }

    /// The key of a regular file from its metadata (stat(2) or fstat(2)).
    pub fn of_metadata(m: &std::fs::Metadata) -> Option<FileKey> {
        use std::os::unix::fs::MetadataExt;
        m.is_file().then(|| FileKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The name of the profile of `file` under `program`: the FNV-1a hash of both keys in hex
/// (the keys themselves are inside, and `decode` compares them, so a collision only costs a
/// miss).
pub fn file_name(file: &FileKey, program: &FileKey) -> String {
    let mut bytes = [0u8; 112];
    let words = file.words().into_iter().chain(program.words());
    for (c, w) in bytes.chunks_exact_mut(8).zip(words) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    format!("{:016x}", fnv1a(&bytes))
}

const MAGIC: &[u8; 8] = b"CBHOTv2\0";
const HEADER: usize = 8 + 112 + 4;

/// Most offsets one file's profile keeps (python3's start-up makes about 4,200 hot blocks
/// across all its files).
pub const MAX_ENTRIES: usize = 1 << 16;

/// FNV-1a, 64-bit (a fixed function: profiles outlive the process that wrote them).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The file holding `offsets` (at most `MAX_ENTRIES` of them) for `key` under `program`.
pub fn encode(key: &FileKey, program: &FileKey, offsets: &[u32]) -> Vec<u8> {
    let offsets = &offsets[..offsets.len().min(MAX_ENTRIES)];
    let mut out = Vec::with_capacity(HEADER + 4 * offsets.len() + 8);
    out.extend_from_slice(MAGIC);
    for w in key.words().into_iter().chain(program.words()) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    let check = fnv1a(&out);
    out.extend_from_slice(&check.to_le_bytes());
    out
}

/// The offsets of a file `encode` made for `key` under `program`; None for anything else.
pub fn decode(key: &FileKey, program: &FileKey, bytes: &[u8]) -> Option<Vec<u32>> {
    let body = bytes.len().checked_sub(8)?;
    if body < HEADER || bytes[..8] != MAGIC[..] {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let stored = (0..14).map(|i| word(8 + 8 * i));
    if !stored.eq(key.words().into_iter().chain(program.words())) {
        return None;
    }
    let count = u32::from_le_bytes(bytes[120..124].try_into().ok()?) as usize;
    if count > MAX_ENTRIES || body != HEADER + 4 * count || word(body) != fnv1a(&bytes[..body]) {
        return None;
    }
    Some(
        bytes[HEADER..body]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}
