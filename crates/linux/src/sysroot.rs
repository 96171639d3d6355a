//! `--sysroot=DIR`: a directory that holds a distribution (or just a libc) the guest believes
//! is its root, as qemu-user's `-L` (QEMU_LD_PREFIX, linux-user/path.c).
//!
//! The rules, for every absolute path the guest names:
//! - /proc, /dev and /sys always come from the host (cetbox's /proc view answers for
//!   /proc/self; the sysroot's own proc/, dev/, sys/ directories are never used).
//! - Otherwise the path is looked up under DIR, component by component. Symbolic links met
//!   on the way resolve inside DIR: an absolute target starts again at DIR, `..` never climbs
//!   above DIR. The last component is followed only when the calling syscall follows it
//!   (`follow_last`), so lstat/readlink/unlink see the link itself.
//! - If any component is missing under DIR, the guest's path is used on the host unchanged
//!   (so /tmp, /home and the host's own files stay reachable, and new files are created on
//!   the host unless their directory exists in DIR, as with qemu-user).
//! - Relative paths are left to the host (they are relative to the current directory, which
//!   may itself lie inside DIR); getcwd reports host paths.
//!
//! The reverse direction ([`to_guest`]) turns a host path under DIR back into the path the
//! guest believes in, for /proc/self/exe and /proc/self/maps.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Linux's MAXSYMLINKS (fs/namei.c): more links than this on one lookup is ELOOP; here the
/// lookup stops and the host path is used, so the host kernel gives its own answer.
const MAX_LINKS: usize = 40;

/// Top-level directories that always come from the host.
const HOST_DIRS: &[&[u8]] = &[b"proc", b"dev", b"sys"];

/// The components of a path, without empty ones and `.`.
fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    p.split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

fn join(root: &Path, parts: &[Vec<u8>]) -> PathBuf {
    let mut p = root.as_os_str().as_bytes().to_vec();
    for c in parts {
        p.push(b'/');
        p.extend_from_slice(c);
    }
    PathBuf::from(OsStr::from_bytes(&p))
}

/// The host path for the absolute guest path `guest`, or None when the guest's path is to be
/// used on the host unchanged (relative, /proc, /dev, /sys, or not present under `root`).
/// `root` should be canonical (no symbolic links), see [`canonical_root`].
pub fn map(root: &Path, guest: &[u8], follow_last: bool) -> Option<PathBuf> {
    if guest.first() != Some(&b'/') {
        return None;
    }
    // Components still to walk, last one at the end (a stack read from its end).
    let mut todo: Vec<Vec<u8>> = components(guest).rev().map(<[u8]>::to_vec).collect();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if done.is_empty() && HOST_DIRS.contains(&c.as_slice()) {
            // At the root: this part of the tree is the host's. The rest is the host's too.
            let mut host = Vec::new();
            for part in std::iter::once(c).chain(todo.into_iter().rev()) {
                host.push(b'/');
                host.extend_from_slice(&part);
            }
            return if host.as_slice() == guest {
                None
            } else {
                Some(PathBuf::from(OsStr::from_bytes(&host)))
            };
        }
        if c == b".." {
            done.pop();
            continue;
        }
        done.push(c);
        let here = join(root, &done);
        let md = std::fs::symlink_metadata(&here).ok()?;
        let is_last = todo.is_empty();
        if md.file_type().is_symlink() && (!is_last || follow_last) {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&here).ok()?;
            let t = target.as_os_str().as_bytes();
            done.pop();
            if t.first() == Some(&b'/') {
                done.clear();
            }
            todo.extend(components(t).rev().map(<[u8]>::to_vec));
        }
    }
    let mut out = join(root, &done).into_os_string().into_vec();
    // A trailing slash asks for a directory (ENOTDIR otherwise): keep it.
    if guest.ends_with(b"/") && !done.is_empty() {
        out.push(b'/');
    }
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

use std::os::unix::ffi::OsStringExt;

/// The host path to use for the guest path `guest`: [`map`]'s answer, or `guest` itself.
pub fn host_path(root: Option<&Path>, guest: &[u8], follow_last: bool) -> Vec<u8> {
    root.and_then(|r| map(r, guest, follow_last))
        .map(|p| p.into_os_string().into_vec())
        .unwrap_or_else(|| guest.to_vec())
}

/// The path the guest believes in for a host path: a path under `root` loses the prefix.
pub fn to_guest(root: Option<&Path>, host: &str) -> String {
    let Some(r) = root.and_then(|r| r.to_str()) else {
        return host.to_string();
    };
    match host.strip_prefix(r) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => host.to_string(),
    }
}

/// The sysroot directory with every symbolic link resolved, as [`map`] wants it.
pub fn canonical_root(dir: &Path) -> std::io::Result<PathBuf> {
    let p = std::fs::canonicalize(dir)?;
    if !p.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A small sysroot: lib/x86_64-linux-gnu/libc.so.6, lib64 -> absolute link, usr/lib ->
    /// relative link, etc/ld.so.cache, a link that escapes with `..`, proc/ and dev/ dirs.
    fn tree() -> (tempdir::Dir, PathBuf) {
        let d = tempdir::Dir::new();
        let r = d.path().to_path_buf();
        for dir in [
            "lib/x86_64-linux-gnu",
            "usr",
            "etc",
            "proc/self",
            "dev",
            "lib64",
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::fs::write(r.join("lib/x86_64-linux-gnu/libc.so.6"), b"x").unwrap();
        std::fs::write(r.join("etc/ld.so.cache"), b"x").unwrap();
        symlink(
            "/lib/x86_64-linux-gnu/libc.so.6",
            r.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        symlink("../lib", r.join("usr/lib")).unwrap();
        symlink("../../../../../../etc", r.join("lib/up")).unwrap();
        symlink("/proc/self/mounts", r.join("etc/mtab")).unwrap();
        symlink("loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        let root = canonical_root(&r).unwrap();
        (d, root)
    }

    fn m(root: &Path, g: &str, follow: bool) -> Option<String> {
        map(root, g.as_bytes(), follow).map(|p| p.to_string_lossy().into_owned())
    }

    #[test]
    fn present_files_map_under_the_root() {
        let (_d, r) = tree();
        let rs = r.to_string_lossy();
        assert_eq!(
            m(&r, "/etc/ld.so.cache", true),
            Some(format!("{rs}/etc/ld.so.cache"))
        );
        assert_eq!(
            m(&r, "//etc/./ld.so.cache", true),
            Some(format!("{rs}/etc/ld.so.cache"))
        );
        assert_eq!(m(&r, "/", true), Some(rs.to_string()));
        assert_eq!(m(&r, "/etc/", true), Some(format!("{rs}/etc/")));
    }

    #[test]
    fn absent_files_and_relative_paths_fall_back_to_the_host() {
        let (_d, r) = tree();
        assert_eq!(m(&r, "/etc/passwd", true), None);
        assert_eq!(m(&r, "/tmp", true), None);
        assert_eq!(m(&r, "etc/ld.so.cache", true), None);
        assert_eq!(m(&r, "", true), None);
    }

    #[test]
    fn proc_dev_sys_come_from_the_host() {
        let (_d, r) = tree();
        assert_eq!(m(&r, "/proc/self/maps", true), None);
        assert_eq!(m(&r, "/proc", true), None);
        assert_eq!(m(&r, "/dev/null", true), None);
        assert_eq!(m(&r, "/sys/kernel", true), None);
        // ..and also when reached through `..` or a link inside the root.
        assert_eq!(
            m(&r, "/etc/../proc/self/maps", true),
            Some("/proc/self/maps".into())
        );
        assert_eq!(m(&r, "/etc/mtab", true), Some("/proc/self/mounts".into()));
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let (_d, r) = tree();
        let rs = r.to_string_lossy();
        let libc = format!("{rs}/lib/x86_64-linux-gnu/libc.so.6");
        // An absolute link starts again at the root.
        assert_eq!(
            m(&r, "/lib64/ld-linux-x86-64.so.2", true),
            Some(libc.clone())
        );
        // A relative link in a directory component.
        assert_eq!(
            m(&r, "/usr/lib/x86_64-linux-gnu/libc.so.6", true),
            Some(libc.clone())
        );
        // `..` in a link stops at the root.
        assert_eq!(
            m(&r, "/lib/up/ld.so.cache", true),
            Some(format!("{rs}/etc/ld.so.cache"))
        );
        assert_eq!(
            m(&r, "/../../etc/ld.so.cache", true),
            Some(format!("{rs}/etc/ld.so.cache"))
        );
    }

    #[test]
    fn the_last_link_is_followed_only_when_asked() {
        let (_d, r) = tree();
        let rs = r.to_string_lossy();
        assert_eq!(
            m(&r, "/lib64/ld-linux-x86-64.so.2", false),
            Some(format!("{rs}/lib64/ld-linux-x86-64.so.2"))
        );
    }

    #[test]
    fn link_loops_fall_back_to_the_host() {
        let (_d, r) = tree();
        assert_eq!(m(&r, "/etc/loop1", true), None);
        let rs = r.to_string_lossy();
        assert_eq!(m(&r, "/etc/loop1", false), Some(format!("{rs}/etc/loop1")));
    }

    #[test]
    fn host_paths_under_the_root_read_back_as_guest_paths() {
        let (_d, r) = tree();
        let rs = r.to_string_lossy().into_owned();
        assert_eq!(
            to_guest(Some(&r), &format!("{rs}/lib/x86_64-linux-gnu/libc.so.6")),
            "/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(to_guest(Some(&r), &rs), "/");
        assert_eq!(to_guest(Some(&r), &format!("{rs}x/y")), format!("{rs}x/y"));
        assert_eq!(to_guest(Some(&r), "/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(to_guest(None, "/usr/bin/ls"), "/usr/bin/ls");
    }

    /// A temporary directory removed on drop (no extra crate for one test helper).
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicU32, Ordering};

        pub struct Dir(PathBuf);
        static N: AtomicU32 = AtomicU32::new(0);

        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "cetbox-sysroot-unit-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
