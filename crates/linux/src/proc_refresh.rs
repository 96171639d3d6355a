//! Synthesized /proc files made anew at reads from offset 0.
//!
//! cetbox gives the guest a memfd holding a /proc file's text as it was at open
//! (`crate::procfs`). Linux makes that text at read time instead, anew at every read from
//! offset 0 (fs/seq_file.c `seq_read_iter` resets its iterator when the position is 0), and
//! programs rely on it: glibc's support_process_state_wait (used by tst-pidfd and many nptl
//! tests) keeps /proc/PID/status open and rewinds it until the State line changes. So the
//! descriptors of synthesized files are recorded here with their path, and a read from offset
//! 0 after the first read writes the text as it is now into the memfd first.
//!
//! The table describes the host process's descriptor table, like `crate::private_fds`, so it
//! is one per host process (copied by fork with the descriptors). A record is used only while
//! the descriptor still names the memfd it was made for (device and inode compared at each
//! use), so one closed in a way cetbox does not follow (close_range, exec's close-on-exec)
//! and reused for another file is never written.

use crate::process::Thread;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

struct Generated {
    path: Vec<u8>,
    dev: u64,
    ino: u64,
    /// Whether the descriptor was read since it was opened: the text made at open serves
    /// the first read, as Linux's would be made at that read.
    read: bool,
}

static FILES: Mutex<BTreeMap<i32, Generated>> = Mutex::new(BTreeMap::new());
/// Whether FILES may hold a record: every read checks it, so a process that never opened a
/// synthesized file pays one load per read, not a lock.
static ANY: AtomicBool = AtomicBool::new(false);

fn files() -> MutexGuard<'static, BTreeMap<i32, Generated>> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The device and inode of the file `fd` names, if it is a memfd (only memfds accept
/// F_GET_SEALS).
fn memfd_identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: fcntl and fstat on a descriptor number; fstat writes into the zeroed struct
    // we own.
    unsafe {
        if libc::fcntl(fd, libc::F_GET_SEALS) < 0 {
            return None;
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return None;
        }
        Some((st.st_dev, st.st_ino))
    }
}

/// `fd` was just opened on the synthesized file at `path`.
pub fn opened(fd: i32, path: &[u8]) {
    let Some((dev, ino)) = memfd_identity(fd) else {
        files().remove(&fd);
        return;
    };
    // /proc/PID/syscall of the reading thread shows the read itself (`procfs::own_syscall`):
    // made at every read from offset 0, the first one too.
    let at_read = crate::procfs::ProcPath::parse(path).and_then(|p| p.file()) == Some(b"syscall");
    let g = Generated {
        path: path.to_vec(),
        dev,
        ino,
        read: at_read,
    };
    let mut f = files();
    f.insert(fd, g);
    ANY.store(true, Ordering::Release);
}

/// `new` is now a copy of `old` (dup, dup2, dup3, F_DUPFD).
pub fn copied(old: i32, new: i32) {
    let mut f = files();
    match f.get(&old) {
        Some(g) => {
            let g = Generated {
                path: g.path.clone(),
                ..*g
            };
            f.insert(new, g);
            ANY.store(true, Ordering::Release);
        }
        None => {
            f.remove(&new);
        }
    }
}

/// `fd` was closed.
pub fn closed(fd: i32) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let mut f = files();
    f.remove(&fd);
    ANY.store(!f.is_empty(), Ordering::Release);
}

/// Before a read of `fd` at `pos` (None: at the descriptor's position): when `fd` is a
/// synthesized /proc file read before and the read starts at offset 0, its text is made
/// again. Failing that (the file no longer made, a host error), the read sees the old text.
pub fn before_read(t: &Thread, fd: i32, pos: Option<u64>) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let path = {
        let mut f = files();
        let Some(g) = f.get_mut(&fd) else { return };
        if memfd_identity(fd) != Some((g.dev, g.ino)) {
            f.remove(&fd);
            return;
        }
        // SAFETY: lseek(SEEK_CUR, 0) only reads the position of the descriptor checked above.
        let at = pos.unwrap_or_else(|| unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) } as u64);
        let again = at == 0 && g.read;
        g.read = true;
        if !again {
            return;
        }
        g.path.clone()
    };
    let Some(text) = crate::procfs::content_now(t, &path) else {
        return;
    };
    rewrite(fd, &text);
}

/// Replaces the contents of file `fd` with `text`: written over the old text from offset 0,
/// then cut to its length, so a reader of another descriptor of the file (a dup, a fork
/// child's copy) at no time finds it empty or shorter than both texts.
fn rewrite(fd: i32, text: &[u8]) {
    let mut done = 0;
    while done < text.len() {
        // SAFETY: writes from our buffer into the descriptor (cetbox's own memfd).
        let n = unsafe {
            libc::pwrite(
                fd,
                text[done..].as_ptr().cast(),
                text.len() - done,
                done as libc::off_t,
            )
        };
        if n <= 0 {
            return;
        }
        done += n as usize;
    }
    // SAFETY: as above; only the length changes.
    unsafe { libc::ftruncate(fd, text.len() as libc::off_t) };
}

#[cfg(test)]
mod tests {
    /// The new text replaces the old whole, whether shorter or longer.
    #[test]
    fn rewrite_replaces_the_text() {
        use std::io::Read as _;
        use std::os::fd::AsRawFd as _;
        let mut f = tempfile_in_memory();
        super::rewrite(f.as_raw_fd(), b"a longer first text");
        super::rewrite(f.as_raw_fd(), b"short");
        let mut got = String::new();
        f.read_to_string(&mut got).unwrap();
        assert_eq!(got, "short");
        super::rewrite(f.as_raw_fd(), b"longer than short");
        let mut got = String::new();
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_string(&mut got).unwrap();
        assert_eq!(got, "longer than short");
    }

    fn tempfile_in_memory() -> std::fs::File {
        use std::os::fd::FromRawFd as _;
        // SAFETY: memfd_create with a valid name; the new descriptor is owned by the File.
        unsafe {
            let fd = libc::memfd_create(c"cetbox-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            std::fs::File::from_raw_fd(fd)
        }
    }
}
