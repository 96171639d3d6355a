//! The hot-block profile's files (crates/jit/src/profile): what `decode` accepts, what the
//! directory functions do with damaged, forged or hostile contents, and the size bound.
//! Nothing read from a profile is trusted (it only moves when blocks are translated), so these
//! check that bad files read as "no profile" without panicking or blocking.

use cetbox_jit::profile::format::{decode, encode, file_name, FileKey, MAX_ENTRIES};
use cetbox_jit::profile::store::{evict, load, store, MAX_DIR_BYTES};
use std::path::PathBuf;

fn key() -> FileKey {
    FileKey {
        dev: 0xfe00,
        ino: 247030,
        size: 123_456,
        mtime: (1_700_000_000, 5),
        ctime: (1_700_000_001, 999_999_999),
    }
}

/// The program the profiles are for.
fn prog() -> FileKey {
    FileKey {
        dev: 0xfe00,
        ino: 99,
        size: 4096,
        mtime: (1_600_000_000, 0),
        ctime: (1_600_000_000, 0),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cetbox-profile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn round_trip() {
    let offs: Vec<u32> = vec![0, 0x1040, 0xffff_ffff, 7];
    assert_eq!(
        decode(&key(), &prog(), &encode(&key(), &prog(), &offs)),
        Some(offs)
    );
    assert_eq!(
        decode(&key(), &prog(), &encode(&key(), &prog(), &[])),
        Some(vec![])
    );
}

#[test]
fn every_damaged_file_is_refused() {
    let k = key();
    let good = encode(&k, &prog(), &[1, 2, 3, 0x40_0000]);
    // Any single flipped bit, anywhere, is caught (the key fields by comparison, the rest by
    // the checksum).
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            assert_eq!(decode(&k, &prog(), &bad), None, "bit {bit} of byte {i}");
        }
    }
    // Every truncation and an extension.
    for len in 0..good.len() {
        assert_eq!(
            decode(&k, &prog(), &good[..len]),
            None,
            "truncated to {len}"
        );
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(decode(&k, &prog(), &longer), None);
    // Another file's profile (any field of the key differs).
    for other in [
        FileKey { dev: 1, ..k },
        FileKey { ino: 1, ..k },
        FileKey { size: 1, ..k },
        FileKey {
            mtime: (1_700_000_000, 6),
            ..k
        },
        FileKey {
            ctime: (0, 999_999_999),
            ..k
        },
    ] {
        assert_eq!(decode(&other, &prog(), &good), None, "{other:?}");
        assert_ne!(file_name(&other, &prog()), file_name(&k, &prog()));
    }
    // The same file's profile under another program.
    let other_prog = FileKey { ino: 100, ..prog() };
    assert_eq!(decode(&k, &other_prog, &good), None);
    assert_ne!(file_name(&k, &other_prog), file_name(&k, &prog()));
}

#[test]
fn a_count_beyond_the_bound_is_refused_even_with_a_valid_checksum() {
    // A forger can compute the checksum; the count bound still holds.
    let k = key();
    let mut f = encode(&k, &prog(), &[]);
    f.truncate(f.len() - 8);
    let count = MAX_ENTRIES as u32 + 1;
    f[120..124].copy_from_slice(&count.to_le_bytes());
    f.extend(std::iter::repeat_n(0u8, 4 * count as usize));
    let check = cetbox_jit::profile::format::fnv1a(&f);
    f.extend_from_slice(&check.to_le_bytes());
    assert_eq!(decode(&k, &prog(), &f), None);
    // And encode never writes more than the bound.
    let many: Vec<u32> = (0..MAX_ENTRIES as u32 + 10).collect();
    assert_eq!(
        decode(&k, &prog(), &encode(&k, &prog(), &many)).map(|v| v.len()),
        Some(MAX_ENTRIES)
    );
}

#[test]
fn store_then_load_and_hostile_entries_read_as_empty() {
    let d = temp_dir("store");
    let k = key();
    assert!(load(&d, &k, &prog()).is_empty());
    store(&d, &k, &prog(), &[5, 6, 7]).unwrap();
    assert_eq!(load(&d, &k, &prog()), vec![5, 6, 7]);
    store(&d, &k, &prog(), &[9]).unwrap();
    assert_eq!(load(&d, &k, &prog()), vec![9]);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![file_name(&k, &prog())]);

    let at = d.join(file_name(&k, &prog()));
    // A FIFO at the profile's name: opened without blocking, not a regular file, ignored.
    std::fs::remove_file(&at).unwrap();
    let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(load(&d, &k, &prog()).is_empty());
    // Storing replaces it.
    store(&d, &k, &prog(), &[1]).unwrap();
    assert_eq!(load(&d, &k, &prog()), vec![1]);
    // A symbolic link to a valid profile elsewhere is not followed.
    let elsewhere = d.join("elsewhere");
    std::fs::write(&elsewhere, encode(&k, &prog(), &[42])).unwrap();
    std::fs::remove_file(&at).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &at).unwrap();
    assert!(load(&d, &k, &prog()).is_empty());
    // A huge (sparse) file is not read.
    std::fs::remove_file(&at).unwrap();
    let f = std::fs::File::create(&at).unwrap();
    f.set_len(1 << 30).unwrap();
    assert!(load(&d, &k, &prog()).is_empty());
    // A directory there.
    std::fs::remove_file(&at).unwrap();
    std::fs::create_dir(&at).unwrap();
    assert!(load(&d, &k, &prog()).is_empty());
    assert!(store(&d, &k, &prog(), &[1]).is_err());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn store_into_an_impossible_directory_fails_quietly() {
    let d = temp_dir("impossible");
    let file = d.join("file");
    std::fs::write(&file, b"x").unwrap();
    let under = file.join("profiles");
    assert!(store(&under, &key(), &prog(), &[1]).is_err());
    assert!(load(&under, &key(), &prog()).is_empty());
    evict(&under);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eviction_keeps_the_directory_bounded_and_the_newest_profiles() {
    let d = temp_dir("evict");
    // Profiles of about 256 KiB each, oldest first, to twice the bound.
    let n = 2 * MAX_DIR_BYTES / (256 << 10);
    let offs: Vec<u32> = (0..MAX_ENTRIES as u32).collect();
    let mut keys = Vec::new();
    for i in 0..n {
        let k = FileKey { ino: i, ..key() };
        store(&d, &k, &prog(), &offs).unwrap();
        // Distinct, increasing modification times without waiting: set them.
        let f = std::fs::File::options()
            .write(true)
            .open(d.join(file_name(&k, &prog())))
            .unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i);
        f.set_modified(t).unwrap();
        keys.push(k);
    }
    // A stale temporary file of a writer that died.
    let tmp = d.join(".tmp-1-0");
    std::fs::write(&tmp, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH)
        .unwrap();
    evict(&d);
    let total: u64 = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= MAX_DIR_BYTES, "{total} bytes left");
    assert!(!tmp.exists(), "the stale temporary file was kept");
    // The newest survive, the oldest went.
    assert_eq!(load(&d, keys.last().unwrap(), &prog()).len(), MAX_ENTRIES);
    assert!(load(&d, &keys[0], &prog()).is_empty());
    std::fs::remove_dir_all(&d).unwrap();
}
